"""draw_tracks: protected regions, ids and predicted boxes drawn on a copy of the frame."""

from __future__ import annotations

import numpy as np

from vdeid.faces import Faces, expand_boxes
from vdeid.track.preview import DETECTED_COLOR, PREDICTED_COLOR, draw_tracks


def _faces() -> Faces:
    faces = Faces.from_arrays([[40, 60, 100, 140], [200, 50, 260, 130]])
    faces.track_ids = np.array([3, 5], np.int64)
    faces.detected = np.array([True, False])
    return faces


def test_outlines_use_the_detected_and_predicted_colours():
    image = np.zeros((240, 320, 3), np.uint8)
    out = draw_tracks(image, _faces())
    assert not image.any(), "the input frame must not be drawn on"
    assert out.shape == image.shape and out.dtype == image.dtype
    # Left edges of both boxes, halfway down.
    assert tuple(out[100, 40]) == DETECTED_COLOR
    assert tuple(out[90, 200]) == PREDICTED_COLOR
    # Inside the boxes the picture is untouched (the preview must still show the face).
    assert not out[80:130, 50:95].any() and not out[70:120, 210:255].any()
    # Labels sit above the boxes (anti-aliased text: look for the hue).
    green, magenta = out[35:60, 40:100].astype(int), out[25:50, 200:290].astype(int)
    assert ((green[..., 1] > 60) & (green[..., 0] == 0)).sum() > 10
    assert ((magenta[..., 0] > 60) & (magenta[..., 0] == magenta[..., 2]) & (magenta[..., 1] < magenta[..., 0] / 3)).sum() > 10


def test_outline_is_the_region_grown_by_the_margin():
    faces = _faces()[np.array([0])]
    out = draw_tracks(np.zeros((240, 320, 3), np.uint8), faces, margin=0.25)
    x0, y0, x1, y1 = np.round(expand_boxes(faces.boxes, 0.25)[0]).astype(int)
    assert (x0, x1) == (25, 115)
    assert tuple(out[(y0 + y1) // 2, x0]) == DETECTED_COLOR and tuple(out[(y0 + y1) // 2, x1]) == DETECTED_COLOR
    assert not out[(y0 + y1) // 2, 40].any()  # the unmargined edge is not drawn


def test_uint16_frames_keep_their_depth():
    out = draw_tracks(np.zeros((240, 320, 3), np.uint16), _faces())
    assert out.dtype == np.uint16
    assert tuple(out[100, 40]) == tuple(257 * c for c in DETECTED_COLOR)


def test_frame_header_only_when_asked():
    blank = np.zeros((240, 320, 3), np.uint8)
    assert not draw_tracks(blank, Faces()).any()
    out = draw_tracks(blank, Faces(), frame_index=12)
    assert out[:30, :200].any() and not out[40:].any()
