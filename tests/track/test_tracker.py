"""FaceTracker: persistent ids through pans, gap bridging, detect_every."""

from __future__ import annotations

import numpy as np
import pytest

from vdeid.config import TrackConfig
from vdeid.faces import Faces
from vdeid.track import FaceTracker, track_faces


def _square(cx, cy, side):
    return [cx - side / 2, cy - side / 2, cx + side / 2, cy + side / 2]


def _panning_faces(n_frames=40, seed=0):
    """Three small faces under an accelerating pan, with detector jitter."""
    rng = np.random.default_rng(seed)
    starts = np.array([[100.0, 100.0], [160.0, 110.0], [130.0, 200.0]])
    sides = np.array([16.0, 20.0, 24.0])
    # Pan speed ramps from 0 to 22 px/frame: the tracker cannot know it in advance.
    speed = np.linspace(0, 22, n_frames)
    shift = np.cumsum(speed)
    frames = []
    for t in range(n_frames):
        boxes = [
            _square(sx + shift[t] + rng.normal(0, 0.8), sy + 0.3 * shift[t] + rng.normal(0, 0.8), s)
            for (sx, sy), s in zip(starts, sides)
        ]
        frames.append(np.array(boxes, np.float32))
    return frames


def _ids_per_person(frames, outputs):
    """For each true face, the set of track ids whose box has its centre."""
    ids = {p: set() for p in range(len(frames[0]))}
    for truth, faces in zip(frames, outputs):
        for p, b in enumerate(truth):
            c = (b[:2] + b[2:]) / 2
            hit = [
                int(tid)
                for tid, fb in zip(faces.track_ids, faces.boxes)
                if fb[0] <= c[0] <= fb[2] and fb[1] <= c[1] <= fb[3]
            ]
            ids[p].add(hit[0] if len(hit) == 1 else None)
    return ids


@pytest.mark.parametrize("detect_every", [1, 2])
def test_ids_survive_an_accelerating_pan(detect_every):
    truth = _panning_faces()
    items = [(i, Faces.from_arrays(b) if i % detect_every == 0 else None) for i, b in enumerate(truth)]
    config = TrackConfig(lookahead_frames=0, detect_every=detect_every)
    outputs = [f for _, f in track_faces(items, config)]
    ids = _ids_per_person(truth, outputs)
    # One id per face, never shared, never missing.
    assert all(len(v) == 1 and None not in v for v in ids.values()), ids
    assert len({next(iter(v)) for v in ids.values()}) == 3


def test_iou_alone_would_lose_a_small_fast_face():
    """Sanity check of the test above: the pan moves faces by more than their size."""
    truth = _panning_faces()
    step = np.abs(truth[-1][0, 0] - truth[-2][0, 0])
    assert step > truth[-1][0, 2] - truth[-1][0, 0]


def _gap_stream(gap, *, before=10, after=6, box=(100, 100, 130, 130)):
    items = []
    for i in range(before + gap + after):
        seen = i < before or i >= before + gap
        items.append((i, Faces.from_arrays([box]) if seen else Faces()))
    return items


@pytest.mark.parametrize("gap", [1, 5, 15])
def test_gap_up_to_bridge_frames_is_bridged(gap):
    config = TrackConfig(bridge_frames=15, lookahead_frames=0)
    out = list(track_faces(_gap_stream(gap), config))
    assert [i for i, _ in out] == list(range(len(out)))
    for i, faces in out:
        assert len(faces) == 1, f"frame {i} has {len(faces)} faces"
        assert faces.track_ids[0] == 0  # same id after the gap
        assert faces.detected[0] == (not 10 <= i < 10 + gap)
        if not faces.detected[0]:
            assert faces.scores[0] == 0
            # The bridged box still contains the face.
            b = faces.boxes[0]
            assert b[0] <= 100 and b[1] <= 100 and b[2] >= 130 and b[3] >= 130


def test_gap_longer_than_bridge_frames_is_dropped():
    bridge, gap = 4, 9
    config = TrackConfig(bridge_frames=bridge, lookahead_frames=0)
    out = dict(track_faces(_gap_stream(gap), config))
    for i in range(10, 10 + bridge):
        assert len(out[i]) == 1 and not out[i].detected[0]
    for i in range(10 + bridge, 10 + gap):
        assert len(out[i]) == 0, f"frame {i} should no longer be bridged"
    # The face coming back is a new track.
    assert out[10 + gap].track_ids[0] != out[0].track_ids[0]


def test_bridged_landmarks_move_with_the_box():
    lm = np.array([[[10, 12], [20, 12], [15, 16], [11, 20], [19, 20]]], np.float32)
    tracker = FaceTracker(TrackConfig())
    for t in range(5):  # moving right 4 px/frame
        shift = np.array([4.0 * t, 0], np.float32)
        tracker.step(Faces.from_arrays([[5 + 4 * t, 5, 25 + 4 * t, 25]], lm + shift))
    obs = tracker.step(Faces())[0]
    assert not obs.detected and obs.misses == 1
    expected = lm[0] + (obs.box[:2] - np.array([5.0, 5.0]))
    np.testing.assert_allclose(obs.landmarks, expected, atol=0.5)
    assert obs.box[0] > 5 + 4 * 4  # it kept moving


def test_tracks_are_kept_between_detector_runs():
    """detect_every > bridge_frames: frames the detector skips never end a track."""
    config = TrackConfig(bridge_frames=2, lookahead_frames=0)
    items = [(i, Faces.from_arrays([[50, 50, 80, 80]]) if i % 5 == 0 else None) for i in range(16)]
    out = [f for _, f in track_faces(items, config)]
    assert all(len(f) == 1 and f.track_ids[0] == 0 for f in out)
    assert [bool(f.detected[0]) for f in out] == [i % 5 == 0 for i in range(16)]


def test_track_leaving_the_frame_ends():
    tracker = FaceTracker(TrackConfig(bridge_frames=50), frame_size=(200, 100))
    for t in range(4):
        tracker.step(Faces.from_arrays([[100 + 15 * t, 40, 120 + 15 * t, 60]]))
    alive = [len(tracker.step(None)) for _ in range(10)]
    assert alive[0] == 1 and alive[-1] == 0


def test_every_detection_is_emitted():
    """Two faces appearing on top of a track: one matches, the other starts a track."""
    tracker = FaceTracker(TrackConfig())
    tracker.step(Faces.from_arrays([[0, 0, 20, 20]]))
    obs = tracker.step(Faces.from_arrays([[1, 0, 21, 20], [3, 2, 23, 22]]))
    assert len(obs) == 2 and all(o.detected for o in obs)
    assert sorted(o.track_id for o in obs) == [0, 1]


def test_partial_detection_behind_an_occluder_is_widened():
    """The detector sees only the right half of a face sliding behind a tree: keep the whole face."""
    tracker = FaceTracker(TrackConfig())
    for t in range(4):
        tracker.step(Faces.from_arrays([[100 + 2 * t, 50, 140 + 2 * t, 90]]))
    half = tracker.step(Faces.from_arrays([[128, 52, 148, 92]]))[0]  # the face is at 108..148 now
    assert half.detected
    assert half.box[0] <= 109 and half.box[2] >= 147  # union with the prediction
    hidden = tracker.step(Faces())[0]
    assert not hidden.detected
    assert hidden.box[2] - hidden.box[0] >= 40  # bridged at the whole-face size


def test_lagging_prediction_of_a_new_track_is_not_widened():
    """Before its velocity is known a track's prediction lags: trust the detection."""
    tracker = FaceTracker(TrackConfig())
    tracker.step(Faces.from_arrays([[100, 50, 120, 70]]))
    second = tracker.step(Faces.from_arrays([[112, 50, 132, 70]]))[0]
    np.testing.assert_allclose(second.box, [112, 50, 132, 70])
