"""The dlib invader: dlib's own pipeline from vdeid's ports."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.ndimage import gaussian_filter

from vdeid.evaluate.invader import DlibInvader


@pytest.fixture(scope="module")
def invader() -> DlibInvader:
    return DlibInvader()


def test_the_invader_finds_and_re_identifies_an_unprotected_face(invader, astronaut):
    rects = invader.detect(astronaut)
    assert len(rects) == 1
    assert invader.closest(astronaut, astronaut, rects)[0] < 1e-5


def test_a_heavily_blurred_face_is_not_re_identified(invader, astronaut):
    rects = invader.detect(astronaut)
    x0, y0, x1, y1 = rects[0]
    blurred = astronaut.copy()
    region = blurred[y0 - 10 : y1 + 10, x0 - 10 : x1 + 10]
    region[:] = gaussian_filter(region, sigma=(12, 12, 0))
    assert invader.closest(astronaut, blurred, rects)[0] > invader.THRESHOLD


def test_no_face_gives_no_distance(invader, astronaut):
    assert invader.closest(astronaut, astronaut, np.zeros((0, 4), np.int64)).shape == (0,)
