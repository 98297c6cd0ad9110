"""Boxes of faces turned sideways grow towards the nose; frontal faces keep theirs."""

from __future__ import annotations

import numpy as np

from vdeid.config import TrackConfig
from vdeid.faces import Faces
from vdeid.track import track_faces, widen_turned_boxes, widen_turned_faces
from vdeid.track.turned import FRONTAL_OFFSET, GAIN, MAX_WIDEN

BOX = np.array([[100.0, 50.0, 200.0, 170.0]], np.float32)  # 100 px wide


def _landmarks(nose_x: float) -> np.ndarray:
    """Eyes at x 130 and 170 (midpoint 150), mouth corners below, nose tip at ``nose_x``."""
    return np.array([[[130, 90], [170, 90], [nose_x, 115], [135, 140], [165, 140]]], np.float32)


def test_frontal_face_keeps_its_box():
    # Nose 2 px (0.02 box widths) off the eyes' midpoint: within FRONTAL_OFFSET.
    for nose_x in (150.0, 148.0, 152.0):
        np.testing.assert_array_equal(widen_turned_boxes(BOX, _landmarks(nose_x)), BOX)


def test_profile_grows_towards_the_nose_only():
    # Nose 20 px right of the eyes' midpoint: turned towards image right.
    right = widen_turned_boxes(BOX, _landmarks(170.0))[0]
    expected = GAIN * (0.20 - FRONTAL_OFFSET) * 100
    np.testing.assert_allclose(right, [100, 50, 200 + expected, 170], atol=1e-3)
    left = widen_turned_boxes(BOX, _landmarks(130.0))[0]
    np.testing.assert_allclose(left, [100 - expected, 50, 200, 170], atol=1e-3)


def test_growth_is_capped_and_unknown_landmarks_keep_the_box():
    far = widen_turned_boxes(BOX, _landmarks(400.0))[0]
    assert far[2] == 200 + MAX_WIDEN * 100
    unknown = np.full((1, 5, 2), np.nan, np.float32)
    np.testing.assert_array_equal(widen_turned_boxes(BOX, unknown), BOX)


def test_faces_keep_everything_but_the_boxes():
    faces = Faces.from_arrays(np.vstack([BOX, BOX + 300]), np.vstack([_landmarks(170.0), _landmarks(150.0) + 300]))
    out = widen_turned_faces(faces)
    assert out.boxes[0, 2] > faces.boxes[0, 2]
    np.testing.assert_array_equal(out.boxes[1], faces.boxes[1])
    np.testing.assert_array_equal(out.landmarks, faces.landmarks)
    np.testing.assert_array_equal(out.detected, faces.detected)


def test_track_faces_widens_detected_and_bridged_profiles():
    dets = [Faces.from_arrays(BOX, _landmarks(170.0))] * 3 + [Faces()] * 2
    config = TrackConfig(lookahead_frames=2, grow_per_frame=0.0)
    out = [f for _, f in track_faces(zip(range(5), dets), config, frame_size=(640, 360))]
    assert [bool(f.detected[0]) for f in out] == [True] * 3 + [False] * 2
    for faces in out:
        # The landmarks that move with a bridged box still say "turned right".
        assert faces.boxes[0, 2] > faces.boxes[0, 0] + 100 * 1.4
        assert abs(faces.boxes[0, 0] - 100) < 1.0
