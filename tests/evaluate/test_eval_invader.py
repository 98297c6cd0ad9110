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


def test_a_clear_face_is_far_from_a_black_frame_and_a_black_frame_is_not(invader, astronaut):
    rects = invader.detect(astronaut)
    assert invader.blank_distance(astronaut, rects)[0] > invader.THRESHOLD
    black = np.zeros_like(astronaut)
    assert invader.blank_distance(black, rects)[0] < 1e-5
    # What the control stands for: a solid mask over the clear face does not match it.
    assert invader.closest(astronaut, black, rects)[0] > invader.THRESHOLD


def test_a_face_lost_in_the_dark_matches_a_black_frame(invader, astronaut):
    # The astronaut at 2 % of her brightness (grey levels 0-5): the invader's
    # descriptor of her lies near that of nothing, so a mask would still "match" her.
    rects = invader.detect(astronaut)
    dark = (astronaut.astype(np.float32) * 0.02).astype(np.uint8)
    assert invader.blank_distance(dark, rects)[0] < invader.THRESHOLD
    assert invader.closest(dark, np.zeros_like(dark), rects)[0] < invader.THRESHOLD
