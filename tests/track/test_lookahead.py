"""Look-ahead: back-fill before a first detection, interpolation, bounded buffer."""

from __future__ import annotations

import numpy as np
import pytest

from vdeid.config import TrackConfig
from vdeid.faces import Faces
from vdeid.track import FaceTracker, Lookahead, track_faces

BOX = [100, 100, 130, 130]


def _first_seen_at(first, n=20):
    return [(i, Faces.from_arrays([BOX]) if i >= first else Faces()) for i in range(n)]


@pytest.mark.parametrize("lookahead", [0, 3, 8])
def test_backfill_covers_the_frames_before_a_first_detection(lookahead):
    first = 10
    out = dict(track_faces(_first_seen_at(first), TrackConfig(lookahead_frames=lookahead)))
    assert sorted(out) == list(range(20))
    for i in range(20):
        faces = out[i]
        if i < first - lookahead:
            assert len(faces) == 0, f"frame {i} is outside the look-ahead window"
            continue
        assert len(faces) == 1 and faces.track_ids[0] == 0
        assert faces.detected[0] == (i >= first)
        b = faces.boxes[0]
        assert b[0] <= BOX[0] and b[1] <= BOX[1] and b[2] >= BOX[2] and b[3] >= BOX[3]
        if i < first:
            assert faces.scores[0] == 0
            # Enlarged for uncertainty, more the further from the detection, capped.
            grow = min(0.5, 0.04 * (first - i))
            np.testing.assert_allclose(b[2] - b[0], 30 * (1 + 2 * grow), rtol=1e-5)


def test_interpolates_between_sparse_detections():
    """detect_every=4 on a face moving 6 px/frame: skipped frames get the true box."""
    truth = [np.array([[20 + 6 * t, 50, 44 + 6 * t, 74]], np.float32) for t in range(25)]
    items = [(t, Faces.from_arrays(truth[t]) if t % 4 == 0 else None) for t in range(25)]
    out = dict(track_faces(items, TrackConfig(lookahead_frames=8, grow_per_frame=0.0)))
    for t in range(1, 21):  # frames after the last detection (24) are extrapolated
        if t % 4:
            assert not out[t].detected[0]
            np.testing.assert_allclose(out[t].boxes[0], truth[t][0], atol=1e-3)


def test_without_lookahead_skipped_frames_are_extrapolated_and_enlarged():
    truth = [np.array([[20 + 6 * t, 50, 44 + 6 * t, 74]], np.float32) for t in range(13)]
    items = [(t, Faces.from_arrays(truth[t]) if t % 4 == 0 else None) for t in range(13)]
    out = dict(track_faces(items, TrackConfig(lookahead_frames=0)))
    for t in (5, 6, 7, 9, 10, 11):
        b, g = out[t].boxes[0], truth[t][0]
        assert b[0] <= g[0] + 3 and b[2] >= g[2] - 3  # still on the face (Kalman velocity)
        assert b[2] - b[0] > g[2] - g[0]  # and enlarged


def test_buffer_holds_at_most_lookahead_plus_one_frames():
    consumed = []

    def stream():
        for i in range(30):
            consumed.append(i)
            yield i, Faces.from_arrays([BOX]) if i % 7 else Faces()

    lags = []
    for i, _ in track_faces(stream(), TrackConfig(lookahead_frames=5)):
        lags.append(len(consumed) - 1 - i)
    assert len(lags) == 30
    assert max(lags) <= 5
    assert lags[:25] == [5] * 25  # steady state: exactly L frames late


def test_backfill_never_crosses_a_cut():
    """A tracker fed frames with a cut: the new shot's face is not pasted into the old shot."""
    rng = np.random.default_rng(0)
    shot_a = rng.integers(0, 60, (120, 160, 3), dtype=np.uint8)
    shot_b = np.full((120, 160, 3), 220, np.uint8)
    frames = [shot_a] * 6 + [shot_b] * 6
    dets = [Faces() if i < 8 else Faces.from_arrays([[40, 40, 60, 60]]) for i in range(12)]
    out = [f for _, f in track_faces(zip(frames, dets), TrackConfig(lookahead_frames=8))]
    assert [len(f) for f in out] == [0] * 6 + [1] * 6


def test_a_detection_smaller_than_the_next_is_widened():
    """The broadcast clip's case: 43, 36, 30 px boxes, then 43 px again (detector jitter)."""
    sizes = [43, 36, 30, 43, 43]
    boxes = [[100 + 5 * t, 100, 100 + 5 * t + s, 100 + 1.3 * s] for t, s in enumerate(sizes)]
    items = [(t, Faces.from_arrays([b])) for t, b in enumerate(boxes)]
    out = dict(track_faces(items, TrackConfig(lookahead_frames=2)))
    assert all(out[t].detected[0] for t in range(5))
    # 30 px has 49 % of the next box's area: grown about its own centre to 43 px.
    centre = np.array([110 + 15, 100 + 1.3 * 15])
    half = np.array([43, 1.3 * 43]) / 2
    np.testing.assert_allclose(out[2].boxes[0], np.concatenate([centre - half, centre + half]), atol=1e-3)
    # 36 px has 70 % of 43 px, but the next detection is 30 px; 43 px is left alone.
    for t in (0, 1, 3, 4):
        np.testing.assert_allclose(out[t].boxes[0], boxes[t], atol=1e-3)
    plain = dict(track_faces(items, TrackConfig(lookahead_frames=0)))
    np.testing.assert_allclose(plain[2].boxes[0], boxes[2], atol=1e-3)


def _seen_at(frames_seen, score, n=30):
    return [
        (i, Faces.from_arrays([BOX], scores=[score]) if i in frames_seen else Faces()) for i in range(n)
    ]


def _frames_with_face(out):
    return [i for i in sorted(out) if len(out[i])]


def test_a_low_score_face_seen_once_is_protected_on_its_own_frame_only(caplog):
    """The README sample's suit (score 0.79, one detection) is neither back-filled nor bridged."""
    caplog.set_level("INFO", logger="vdeid.track.lookahead")
    out = dict(track_faces(_seen_at({10}, 0.79), TrackConfig(lookahead_frames=8, confirm_score=0.9)))
    assert sorted(out) == list(range(30))
    assert _frames_with_face(out) == [10]
    assert out[10].detected[0] and out[10].scores[0] == pytest.approx(0.79)
    assert "not confirmed" in caplog.text
    assert "23 bridged or back-filled box(es) left out" in caplog.text  # 8 back-filled + 15 bridged


@pytest.mark.parametrize(
    "score, config",
    [
        (0.95, TrackConfig(lookahead_frames=8, confirm_score=0.9)),  # a confident detection
        (0.79, TrackConfig(lookahead_frames=8, confirm_score=0.0)),  # the rule off
        (0.79, TrackConfig(lookahead_frames=0, confirm_score=0.9)),  # no buffer to wait for a second detection
    ],
)
def test_other_faces_seen_once_are_still_bridged(score, config):
    out = dict(track_faces(_seen_at({10}, score), config))
    first = 10 - config.lookahead_frames
    assert _frames_with_face(out) == list(range(first, 10 + config.bridge_frames + 1))


def test_a_second_detection_within_the_lookahead_confirms_the_track():
    """Frames still in the buffer when the second detection comes are protected, earlier ones not."""
    out = dict(track_faces(_seen_at({10, 16}, 0.79), TrackConfig(lookahead_frames=8, confirm_score=0.9)))
    # Back-filled frames 2..9 leave the buffer at the pushes of frames 10..17: those
    # emitted before frame 16 arrived (2..7) are left out, 8..9 wait long enough.
    assert _frames_with_face(out) == list(range(8, 30))  # bridged to the end
    assert [bool(out[i].detected[0]) for i in (10, 12, 16, 17)] == [True, False, True, False]
    assert len(set(int(out[i].track_ids[0]) for i in _frames_with_face(out))) == 1


def test_tentative_tracks_are_forgotten_once_emitted():
    """A long stream with a false face every few frames keeps a bounded memory."""
    tracker, lookahead = FaceTracker(TrackConfig(bridge_frames=3)), Lookahead(4, confirm_score=0.9)
    sizes = []
    for i in range(200):
        # A new place every time, so every detection starts a tentative track.
        x = 20 + 40 * (i % 50)
        faces = Faces.from_arrays([[x, 10, x + 20, 30]], scores=[0.75]) if i % 5 == 0 else Faces()
        list(lookahead.push(i, tracker.step(faces)))
        sizes.append(len(lookahead._tentative))
    assert max(sizes) <= 2
    assert len(list(lookahead.flush())) == 4 and not lookahead._tentative


def test_no_confirmation_when_the_detector_runs_less_often_than_the_lookahead_waits():
    items = [(i, Faces.from_arrays([BOX], scores=[0.79]) if i == 10 else (Faces() if i % 10 == 0 else None))
             for i in range(30)]
    out = dict(track_faces(items, TrackConfig(lookahead_frames=8, detect_every=10, confirm_score=0.9)))
    assert _frames_with_face(out) == list(range(2, 30))  # back-filled and bridged as without the rule
