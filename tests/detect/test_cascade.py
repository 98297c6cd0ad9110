"""The vectorised MTCNN cascade gives facenet-pytorch's detections."""

from __future__ import annotations

import cv2
import numpy as np
import pytest
import torch
from torch.nn.functional import interpolate

from vdeid.detect.cascade import (
    _integral_torch,
    _normalise,
    _pyramid_level,
    area_crops,
    detect_cascade,
    integral_image,
)


@pytest.fixture(scope="module")
def mtcnn():
    from facenet_pytorch import MTCNN

    return MTCNN(keep_all=True, min_face_size=20, post_process=False, device="cpu")


def test_area_crops_equal_torch_area_resampling():
    rng = np.random.default_rng(0)
    frame = rng.integers(0, 256, (97, 131, 3), dtype=np.uint8)
    # Shrinking, enlarging, non-square and one-pixel rectangles, touching the borders.
    rows = np.array([[0, 97], [10, 40], [50, 51], [3, 90], [60, 70]])
    cols = np.array([[0, 131], [20, 50], [7, 8], [100, 131], [0, 57]])
    got = area_crops(integral_image(frame), rows, cols, 24)
    x = torch.from_numpy(frame).permute(2, 0, 1)[None].float()
    for k, ((r0, r1), (c0, c1)) in enumerate(zip(rows, cols)):
        want = interpolate(x[:, :, r0:r1, c0:c1], size=(24, 24), mode="area")[0]
        assert torch.allclose(got[k], want, atol=1e-4), k


def test_pyramid_level_equals_torch_area_resampling():
    frame = np.random.default_rng(2).integers(0, 256, (90, 160, 3), dtype=np.uint8)
    x = torch.from_numpy(frame).permute(2, 0, 1)[None].float()
    for size in [(55, 97), (13, 23), (90, 160)]:
        level = _pyramid_level(integral_image(frame), size)
        assert level.is_contiguous(memory_format=torch.channels_last)
        assert torch.allclose(level, _normalise(interpolate(x, size=size, mode="area")), atol=1e-5)


def test_accelerator_integral_equals_opencv():
    frame = np.random.default_rng(1).integers(0, 256, (40, 70, 3), dtype=np.uint8)
    assert torch.equal(_integral_torch(torch.from_numpy(frame)), torch.from_numpy(cv2.integral(frame, sdepth=cv2.CV_32S)))


def _facenet(frames, m):
    from facenet_pytorch.models.utils.detect_face import detect_face

    with torch.no_grad():
        boxes, points = detect_face(frames, 20, m.pnet, m.rnet, m.onet, [0.6, 0.7, 0.7], 0.709, "cpu")
    return [np.asarray(b, np.float32).reshape(-1, 5) for b in boxes], [np.asarray(p, np.float32).reshape(-1, 5, 2) for p in points]


def test_detections_match_facenet_pytorch(astronaut, mtcnn):
    # Two frames in one batch: the astronaut's head and a shifted, darker copy.
    head = astronaut[:256, 96:352]
    frames = np.stack([head, np.roll(head, (13, -21), (0, 1)) // 2 + 20])
    want_boxes, want_points = _facenet(frames, mtcnn)
    with torch.inference_mode():
        boxes, points = detect_cascade(
            frames, mtcnn.pnet, mtcnn.rnet, mtcnn.onet, min_face=20, thresholds=(0.6, 0.7, 0.7)
        )
    assert [len(b) for b in boxes] == [len(b) for b in want_boxes] and len(boxes[0]) >= 1
    for b, p, wb, wp in zip(boxes, points, want_boxes, want_points):
        order, want_order = np.argsort(b[:, 0]), np.argsort(wb[:, 0])
        np.testing.assert_allclose(b[order, :4], wb[want_order, :4], atol=1e-2)
        np.testing.assert_allclose(b[order, 4], wb[want_order, 4], atol=1e-5)
        np.testing.assert_allclose(p[order], wp[want_order], atol=1e-2)


def test_blank_frames_give_no_faces(mtcnn):
    frames = np.full((2, 64, 80, 3), 128, np.uint8)
    with torch.inference_mode():
        boxes, points = detect_cascade(frames, mtcnn.pnet, mtcnn.rnet, mtcnn.onet, min_face=20, thresholds=(0.6, 0.7, 0.7))
    assert [b.shape for b in boxes] == [(0, 5), (0, 5)] and [p.shape for p in points] == [(0, 5, 2), (0, 5, 2)]


def test_integral_widens_for_very_large_frames():
    # 4096 x 2200 x 255 overflows int32 sums; the table must switch to int64.
    frame = np.full((2200, 4096, 3), 255, np.uint8)
    table = integral_image(frame)
    assert table.dtype == torch.int64 and int(table[-1, -1, 0]) == 255 * 2200 * 4096
    assert torch.equal(_integral_torch(torch.from_numpy(frame), torch.int64), table)
