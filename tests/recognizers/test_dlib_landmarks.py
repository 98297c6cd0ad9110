"""vdeid's port of dlib's 5-point shape predictor on tensors (no dlib needed; on VDEID_TEST_DEVICE).

Its agreement with real dlib is tested in test_dlib_resnet.py, which needs dlib-bin.
"""

from __future__ import annotations

import numpy as np
import torch

from vdeid.recognizers import dlib_landmarks
from vdeid_testing import DEVICE


def test_shape_predictor_reads_tensors_on_their_device(astronaut):
    """The attack's path: grey levels and boxes as tensors on VDEID_TEST_DEVICE, the same points as from numpy."""
    ours = dlib_landmarks.load_shape_predictor()
    grays = np.stack([dlib_landmarks.rgb_to_dlib_gray(im) for im in (astronaut, astronaut[::-1])])
    boxes = np.array([[[180.0, 60, 300, 180], [170, 50, 310, 190]], [[180, 330, 300, 450], [0, 0, 80, 80]]])
    expected = ours(grays, boxes)
    for host_below in (0, 32):  # on a GPU: the cascade on the device, then on the host
        ours.host_below = host_below
        points = ours(torch.from_numpy(grays).to(DEVICE), torch.from_numpy(boxes).to(DEVICE))
        assert points.device.type == torch.device(DEVICE).type
        assert points.dtype == torch.float64
        np.testing.assert_array_equal(points.cpu().numpy(), expected)


def test_leaves_add_one_after_another_as_dlib_adds_them():
    """The sum off the CPU adds in dlib's order: parallel sums moved 3.7 % of boxes by over 1 % of their side."""
    gen = torch.Generator().manual_seed(0)
    start = torch.randn(40, 10, generator=gen)
    terms = torch.randn(40, 500, 10, generator=gen) * torch.rand(1, 500, 1, generator=gen)
    expected = torch.from_numpy(np.cumsum(np.concatenate([start[:, None], terms], 1), axis=1, dtype=np.float32)[:, -1])
    assert torch.equal(dlib_landmarks._add_in_order(start, terms), expected)
    assert torch.equal(dlib_landmarks._add_one_by_one(start, terms), expected)
    assert not torch.equal(start + terms.sum(dim=1), expected)
