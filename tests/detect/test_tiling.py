"""TiledDetector: tile layout, box mapping and merging, small faces found."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import ndimage

from vdeid.faces import Faces, box_iou
from vdeid.detect.tiling import TiledDetector, create_detector, nms_faces, tile_grid, wants_tiling
from vdeid_testing import DEVICE


@pytest.mark.parametrize("length,tile,overlap", [(1920, 640, 96), (2160, 640, 96), (500, 640, 96), (1000, 300, 100)])
def test_tile_grid_covers_with_overlap(length, tile, overlap):
    starts, size = tile_grid(length, tile, overlap)
    assert size <= tile and starts[0] == 0 and starts[-1] + size == length
    if len(starts) > 1:
        assert min(b - a for a, b in zip(starts, starts[1:])) <= size - overlap


class SquareDetector:
    """Fake detector: every bright square of at least ``min_face`` px is a face."""

    def __init__(self, min_face=20):
        self.min_face = min_face
        self.calls = []

    def detect(self, frames):
        self.calls.append([f.shape for f in frames])
        out = []
        for f in frames:
            labels, _ = ndimage.label(f.min(axis=2) > 128)
            boxes = [
                [s[1].start, s[0].start, s[1].stop, s[0].stop]
                for s in ndimage.find_objects(labels)
                if min(s[0].stop - s[0].start, s[1].stop - s[1].start) >= self.min_face
            ]
            faces = Faces.from_arrays(np.array(boxes, np.float32).reshape(-1, 4))
            faces.landmarks = (faces.boxes[:, None, :2] + faces.boxes[:, None, 2:]) / 2 * np.ones((1, 5, 1), np.float32)
            out.append(faces)
        return out


def _frame_with_squares(squares, size=(300, 500)):
    frame = np.zeros(size + (3,), np.uint8)
    for x, y, s in squares:
        frame[y : y + s, x : x + s] = 255
    return frame


def test_boxes_map_back_and_merge_once():
    # 12 px squares (below min_face) anywhere, incl. on tile seams; a 70 px one across a seam.
    squares = [(5, 5, 12), (95, 140, 12), (196, 60, 14), (320, 200, 12), (150, 150, 70), (420, 20, 30)]
    frame = _frame_with_squares(squares)
    inner = SquareDetector(min_face=20)
    assert len(inner.detect([frame])[0]) == 2  # plain detection misses the small ones
    tiled = TiledDetector(inner, tile=200, overlap=40, upscale=2.0)
    faces = tiled.detect([frame, frame[:, ::-1].copy()])
    assert len(faces) == 2
    found = faces[0]
    assert len(found) == len(squares)
    expected = np.array([[x, y, x + s, y + s] for x, y, s in squares], np.float32)
    order = np.lexsort((found.boxes[:, 1], found.boxes[:, 0]))
    exp_order = np.lexsort((expected[:, 1], expected[:, 0]))
    np.testing.assert_allclose(found.boxes[order], expected[exp_order], atol=1.5)
    # Landmarks move with their boxes.
    centres = (found.boxes[:, :2] + found.boxes[:, 2:]) / 2
    np.testing.assert_allclose(found.landmarks[:, 0], centres, atol=1.0)
    assert len(faces[1]) == len(squares)  # mirrored frame in the same call
    # Tiles of both frames went through the inner detector in one batch.
    assert any(len(c) >= 2 * 2 * 3 for c in inner.calls)


class WholeFrameDetector:
    """Fake detector that finds its face only in images of the whole frame's size (as MTCNN
    can find a face in the whole frame and miss it in every tile)."""

    def __init__(self, shape, box):
        self.shape, self.box = shape, box

    def detect(self, frames):
        return [Faces.from_arrays([self.box] if f.shape == self.shape else []) for f in frames]


def test_what_plain_detection_finds_tiling_keeps():
    frame = np.zeros((300, 500, 3), np.uint8)
    box = [210.0, 120.0, 236.0, 150.0]  # whole inside a tile: the tiles alone would report it
    found = TiledDetector(WholeFrameDetector(frame.shape, box), tile=200, overlap=40).detect([frame])[0]
    np.testing.assert_allclose(found.boxes, [box])
    plain_only = TiledDetector(WholeFrameDetector(frame.shape, box), tile=200, overlap=40, full_frame=False)
    assert len(plain_only.detect([frame])[0]) == 0


def test_a_face_found_only_cut_off_is_kept():
    # A 110 px square across a tile seam, over twice the overlap: whole in no tile, and the
    # whole-frame pass is off, so only the cut-off parts in the two tiles report it.
    frame = _frame_with_squares([(140, 20, 110)])
    tiled = TiledDetector(SquareDetector(min_face=20), tile=200, overlap=40, upscale=1.0, full_frame=False)
    found = tiled.detect([frame])[0]
    assert len(found) >= 1
    union = np.concatenate([found.boxes[:, :2].min(axis=0), found.boxes[:, 2:].max(axis=0)])
    np.testing.assert_allclose(union, [140, 20, 250, 130], atol=1.5)
    # A cut-off part of a face reported whole elsewhere adds nothing.
    whole = TiledDetector(SquareDetector(min_face=20), tile=200, overlap=40, upscale=1.0).detect([frame])[0]
    np.testing.assert_allclose(whole.boxes, [[140, 20, 250, 130]], atol=1.5)


def test_nms_keeps_best_and_never_shrinks():
    faces = Faces.from_arrays(
        [[0, 0, 20, 20], [1, 1, 21, 21], [50, 50, 70, 70], [2, 2, 12, 12]], scores=[0.9, 0.95, 0.5, 0.99]
    )
    kept = nms_faces(faces)
    np.testing.assert_allclose(kept.scores, [0.99, 0.5])
    # The best box was nested in larger duplicates: it grows to their union.
    np.testing.assert_allclose(kept.boxes, [[0, 0, 21, 21], [50, 50, 70, 70]])
    dupes = Faces.from_arrays([[0, 0, 20, 20], [1, 0, 21, 20]], scores=[0.9, 0.95])
    np.testing.assert_allclose(nms_faces(dupes).boxes, [[1, 0, 21, 20]])


def test_wants_tiling():
    assert wants_tiling((3840, 2160))
    assert not wants_tiling((1920, 1080))
    assert wants_tiling((1920, 1080), small_faces=True)


@pytest.mark.parametrize(
    "size,small_faces,tiled", [((1920, 1080), False, False), ((1920, 1080), True, True), ((3840, 2160), False, True)]
)
def test_create_detector_tiles_large_frames_and_small_faces(size, small_faces, tiled):
    from vdeid.config import DetectConfig
    from vdeid.detect.mtcnn import FaceDetector

    config = DetectConfig(min_face=16)
    detector = create_detector(config, DEVICE, size, small_faces=small_faces)
    assert isinstance(detector, TiledDetector) == tiled
    inner = detector.detector if tiled else detector
    assert isinstance(inner, FaceDetector) and inner.config is config


@pytest.fixture(scope="module")
def detector():
    from vdeid.config import DetectConfig
    from vdeid.detect.mtcnn import FaceDetector

    return FaceDetector(DetectConfig(), device=DEVICE)


def test_tiling_finds_a_small_face_plain_detection_misses(astronaut, detector):
    from vdeid.synthetic import _paste, aerial_background, sprite_from_image

    sprite = sprite_from_image(astronaut, (175, 70, 265, 185))
    frame = aerial_background(200, 320, seed=2)
    box = np.array([200, 110, 215, 125], np.float32)  # a 15 px face
    _paste(frame, sprite, box)
    assert len(detector.detect([frame])[0]) == 0
    found = TiledDetector(detector, tile=160, overlap=48, upscale=2.0).detect([frame])[0]
    assert len(found) >= 1
    centres = (found.boxes[:, :2] + found.boxes[:, 2:]) / 2
    assert np.any(np.linalg.norm(centres - (box[:2] + box[2:]) / 2, axis=1) < 5)


def test_tiling_keeps_the_street_faces_plain_detection_finds(shared_dir, detector):
    # Frame 52 of the street clip: a 27 px face at (1370, 714) that MTCNN finds on the
    # whole frame (0.994) but not in the one upscaled tile that holds it whole.
    from vdeid.io.video_source import open_video

    with open_video(shared_dir / "data" / "videos" / "street_pedestrians_1080p.mp4") as source:
        frame = next(f.image for f in source.frames() if f.index == 52)
    plain = detector.detect([frame])[0]
    tiled = TiledDetector(detector).detect([frame])[0]
    assert len(plain) >= 6
    for box in plain.boxes:
        assert box_iou(box[None], tiled.boxes).max() > 0.5
