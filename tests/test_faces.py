"""Boxes of one frame: growing them and their overlaps."""

from __future__ import annotations

import numpy as np

from vdeid.faces import box_iou, expand_boxes


def test_box_iou_pairs_every_box_of_one_set_with_every_box_of_the_other():
    a = np.array([[0, 0, 10, 10], [20, 20, 30, 30]])
    b = np.array([[0, 0, 10, 10], [5, 0, 15, 10], [100, 100, 110, 110], [3, 3, 3, 9]])
    iou = box_iou(a, b)
    assert iou.shape == (2, 4)
    np.testing.assert_allclose(iou[0], [1.0, 50 / 150, 0.0, 0.0])
    assert not iou[1].any()
    assert box_iou(np.zeros((0, 4)), b).shape == (0, 4)


def test_expand_boxes_grows_each_side_by_the_margin_times_the_size():
    np.testing.assert_allclose(expand_boxes([[10, 20, 30, 60]], 0.25), [[5, 10, 35, 70]])
