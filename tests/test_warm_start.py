"""Moving a perturbation onto the same face in the next frame."""

from __future__ import annotations

import numpy as np
import torch

from vdeid.methods.mask import Region
from vdeid.warm_start import move_points, transfer_perturbation

LANDMARKS = np.array([[40.0, 40.0], [70.0, 40.0], [55.0, 55.0], [43.0, 70.0], [67.0, 70.0]])


def _dot(h: int, w: int, y: int, x: int) -> torch.Tensor:
    delta = torch.zeros(3, h, w)
    delta[:, y, x] = 1.0
    return delta


def test_a_moved_face_takes_its_perturbation_by_whole_pixels():
    """A translation shifts the perturbation, pixel for pixel, with no resampling blur."""
    delta = torch.randn(3, 100, 110)
    src, dst = Region(0, 100, 0, 110), Region(10, 110, 20, 130)  # the next frame's crop sits elsewhere
    moved = LANDMARKS + [23.4, 13.6]  # frame pixels
    out = transfer_perturbation(delta, src, LANDMARKS, dst, moved, (100, 110))
    # In crop pixels the face moved by (3.4, 3.6): rounded to (3, 4), not interpolated.
    assert torch.equal(out[:, 4:, 3:], delta[:, :-4, :-3])
    assert not out[:, :4].any() and not out[:, :, :3].any()  # nothing came from outside the source


def test_a_face_twice_as_large_gets_its_perturbation_scaled_about_the_landmarks():
    delta = _dot(100, 100, 55, 55)  # on the nose
    centre = LANDMARKS.mean(axis=0)
    bigger = (LANDMARKS - centre) * 2 + centre + [60, 60]
    region = Region(0, 300, 0, 300)
    out = transfer_perturbation(delta, Region(0, 100, 0, 100), LANDMARKS, region, bigger, (300, 300))
    y, x = np.unravel_index(int(out[0].argmax()), out.shape[1:])
    nose = (LANDMARKS[2] - centre) * 2 + centre + [60, 60]
    assert abs(x - nose[0]) <= 1 and abs(y - nose[1]) <= 1
    assert out.shape == (3, 300, 300)


def test_move_points_follows_the_box_centre_and_side():
    src, dst = np.array([0, 0, 10, 10]), np.array([100, 50, 120, 70])
    np.testing.assert_allclose(move_points([[5, 5], [10, 0]], src, dst), [[110, 60], [120, 50]])
