"""Tracks JSON: export -> import reproduces every frame's Faces exactly."""

from __future__ import annotations

import json

import numpy as np
import pytest

from vdeid.config import TrackConfig
from vdeid.errors import InputError, OutputError
from vdeid.faces import Faces
from vdeid.methods.base import FaceOutcome
from vdeid.track import TrackRecorder, read_tracks, track_faces, write_tracks


def _tracked_frames():
    rng = np.random.default_rng(0)
    items = []
    for t in range(30):
        boxes, lms = [], []
        for k, (x, y) in enumerate([(10, 10), (200, 80), (90, 150)]):
            if (k == 1 and 8 <= t < 12) or (k == 2 and t < 14):
                continue  # a gap (bridged) and a late start (back-filled)
            b = np.array([x + 3.3 * t, y + 0.7 * t, x + 3.3 * t + 21.7, y + 0.7 * t + 25.1]) + rng.normal(0, 0.3, 4)
            boxes.append(b)
            lms.append(rng.uniform(b[:2], b[2:], (5, 2)))
        lm = np.array(lms, np.float32).reshape(-1, 5, 2)
        if t == 3:
            lm[0] = np.nan  # a detector without landmarks for this face
        items.append((t, Faces.from_arrays(np.array(boxes).reshape(-1, 4), lm, rng.uniform(0.9, 1, len(boxes)))))
    return [f for _, f in track_faces(items, TrackConfig(lookahead_frames=6))]


def _same(a: Faces, b: Faces):
    for name in ("boxes", "landmarks", "scores", "track_ids", "detected"):
        x, y = getattr(a, name), getattr(b, name)
        assert x.dtype == y.dtype and x.shape == y.shape, name
        np.testing.assert_array_equal(x, y, err_msg=name)


def test_round_trip_is_exact(tmp_path):
    frames = _tracked_frames()
    assert any(not f.detected.all() for f in frames)  # bridged / back-filled faces are in there
    assert any(np.isnan(f.landmarks).any() for f in frames)
    path = write_tracks(tmp_path / "tracks.json", frames + [Faces()], frame_size=(640, 360))
    tracks = read_tracks(path)
    assert len(tracks) == 31 and tracks.frame_size == (640, 360)
    for i, f in enumerate(frames + [Faces()]):
        _same(tracks.faces(i), f)
    assert len(tracks.faces(99)) == 0


def test_file_is_grouped_by_track(tmp_path):
    frames = _tracked_frames()
    data = json.loads(write_tracks(tmp_path / "t.json", frames).read_text())
    assert data["format"] == "vdeid-tracks" and data["n_frames"] == 30
    by_id = {t["id"]: t for t in data["tracks"]}
    ids = {int(i) for f in frames for i in f.track_ids}
    assert set(by_id) == ids
    for t in data["tracks"]:
        assert t["frames"] == sorted(t["frames"])
        assert len(t["boxes"]) == len(t["frames"]) == len(t["detected"]) == len(t["scores"])


def test_outcomes_follow_their_faces_and_are_ignored_on_reading(tmp_path):
    # Faces arrive in any track order; the file groups them by track.
    faces = Faces.from_arrays([[50, 0, 60, 10], [0, 0, 10, 10]])
    faces.track_ids = np.array([7, 2])
    outcomes = [
        FaceOutcome(0, 7, "blur", True, 60, False, None, fallback_reason="encoder"),
        FaceOutcome(0, 2, "pfgvm", True, 4, True, 0.73),
    ]
    rec = TrackRecorder()
    rec.add(faces, outcomes=outcomes)
    rec.add(faces)  # a frame without outcomes: null entries
    data = rec.to_json()
    by_id = {t["id"]: t for t in data["tracks"]}
    assert by_id[7]["method"] == ["blur", None] and by_id[7]["iterations"] == [60, None]
    assert by_id[7]["distance"] == [None, None] and by_id[7]["fallback_reason"] == ["encoder", None]
    assert by_id[2]["fallback_reason"] == [None, None]
    assert by_id[2]["method"] == ["pfgvm", None] and by_id[2]["distance"][0] == pytest.approx(0.73)
    tracks = read_tracks(rec.save(tmp_path / "t.json"))
    _same(tracks.faces(0), faces[np.array([1, 0])])
    with pytest.raises(ValueError, match="1 outcomes for 2 faces"):
        rec.add(faces, outcomes=outcomes[:1])
    # Without outcomes the file has no such keys.
    plain = TrackRecorder()
    plain.add(faces)
    assert "method" not in plain.to_json()["tracks"][0]


def test_recorder_rejects_untracked_faces():
    with pytest.raises(ValueError, match="track ids"):
        TrackRecorder().add(Faces.from_arrays([[0, 0, 5, 5]]))


def test_bad_files_raise_input_error(tmp_path):
    with pytest.raises(InputError):
        read_tracks(tmp_path / "missing.json")
    bad = tmp_path / "bad.json"
    bad.write_text("{nope")
    with pytest.raises(InputError, match="JSON"):
        read_tracks(bad)
    bad.write_text(json.dumps({"format": "something-else"}))
    with pytest.raises(InputError, match="vdeid tracks"):
        read_tracks(bad)
    bad.write_text(json.dumps({"format": "vdeid-tracks", "version": 1, "n_frames": 1, "tracks": [{"id": 0}]}))
    with pytest.raises(InputError, match="malformed"):
        read_tracks(bad)


def test_hand_written_track_needs_only_frames_and_boxes(tmp_path):
    path = tmp_path / "edited.json"
    path.write_text(json.dumps({
        "format": "vdeid-tracks", "version": 1, "n_frames": 3, "frame_size": [64, 48],
        "tracks": [{"id": 7, "frames": [2, 0], "boxes": [[10, 10, 20, 22], [1.5, 2, 9, 9]]}],
    }))
    tracks = read_tracks(path)
    assert [len(f) for f in tracks] == [1, 0, 1]
    face = tracks.faces(0)
    np.testing.assert_array_equal(face.boxes, [[1.5, 2, 9, 9]])
    assert face.track_ids.tolist() == [7] and face.detected.tolist() == [False] and face.scores.tolist() == [0]
    assert np.isnan(face.landmarks).all() and face.landmarks.shape == (1, 5, 2)


@pytest.mark.parametrize(
    "track,problem",
    [
        ({"id": 0, "frames": [0], "boxes": [[5, 5, 1, 9]]}, "x0 < x1"),  # inverted
        ({"id": 0, "frames": [0], "boxes": [[float("nan"), 0, 4, 4]]}, "x0 < x1"),  # NaN box protects nothing
        ({"id": 0, "frames": [3], "boxes": [[0, 0, 4, 4]]}, "n_frames"),  # past the end
        ({"id": 0, "frames": [-1], "boxes": [[0, 0, 4, 4]]}, "n_frames"),  # would wrap to the last frame
        ({"id": 0, "frames": [0, 0], "boxes": [[0, 0, 4, 4]] * 2}, "distinct"),
        ({"id": 0, "frames": [0, 1], "boxes": [[0, 0, 4, 4]]}, "1 boxes for 2 frames"),
        ({"id": 0, "frames": [0], "boxes": [[0, 0, 4, 4]], "detected": ["yes"]}, "true or false"),
        ({"id": 0, "frames": [0], "boxes": [[0, 0, 4, 4]], "landmarks": [[[1, 2]]]}, "reshape"),
    ],
)
def test_entries_that_would_leak_are_refused(tmp_path, track, problem):
    path = tmp_path / "edited.json"
    path.write_text(json.dumps({"format": "vdeid-tracks", "version": 1, "n_frames": 3, "tracks": [track]}))
    with pytest.raises(InputError, match=problem) as err:
        read_tracks(path)
    assert str(path) in str(err.value)


def test_repeated_track_id_is_refused(tmp_path):
    path = tmp_path / "edited.json"
    track = {"id": 1, "frames": [0], "boxes": [[0, 0, 4, 4]]}
    path.write_text(json.dumps({"format": "vdeid-tracks", "version": 1, "n_frames": 1, "tracks": [track, track]}))
    with pytest.raises(InputError, match="used twice"):
        read_tracks(path)


def test_unwritable_path_raises_output_error(tmp_path):
    with pytest.raises(OutputError):
        write_tracks(tmp_path / "no" / "such" / "dir.json", [Faces()])
