"""Feathered ellipse masks: range, support, soft edge, frame borders."""

import numpy as np
import pytest

from vdeid.errors import VdeidError
from vdeid.methods.mask import box_region, ellipse_mask, ellipse_mask_in_region


def _pixel_centres(shape):
    ys, xs = np.mgrid[0 : shape[0], 0 : shape[1]]
    return xs + 0.5, ys + 0.5


def test_range_dtype_and_core():
    box = np.array([[20, 10, 80, 70]], np.float32)
    m = ellipse_mask((100, 120), box, feather=0.15)
    assert m.shape == (100, 120) and m.dtype == np.float32
    assert m.min() >= 0.0 and m.max() <= 1.0
    assert m[40, 50] == 1.0  # centre of the box


@pytest.mark.parametrize("feather", [0.0, 0.1, 0.3])
def test_zero_outside_the_inscribed_ellipse(feather):
    x0, y0, x1, y1 = 13.3, 7.6, 71.2, 88.9
    m = ellipse_mask((100, 90), np.array([[x0, y0, x1, y1]]), feather=feather)
    xs, ys = _pixel_centres(m.shape)
    r = np.hypot((xs - (x0 + x1) / 2) / ((x1 - x0) / 2), (ys - (y0 + y1) / 2) / ((y1 - y0) / 2))
    assert np.all(m[r >= 1.0] == 0.0)
    outside_box = (xs < x0) | (xs > x1) | (ys < y0) | (ys > y1)
    assert np.all(m[outside_box] == 0.0)
    # The core (inside the feathered band) is fully protected.
    assert np.all(m[r <= 1.0 - 2 * feather - 1e-6] == 1.0)


def test_hard_edge_when_feather_is_zero():
    m = ellipse_mask((64, 64), np.array([[8, 8, 56, 56]]), feather=0.0)
    assert set(np.unique(m)) == {0.0, 1.0}


def test_edge_is_monotonic_along_rays():
    m = ellipse_mask((101, 151), np.array([[10, 5, 140, 95]]), feather=0.2)
    cy, cx = 50, 75
    for ray in (m[cy, cx:], m[cy, cx::-1], m[cy:, cx], m[cy::-1, cx], np.diagonal(m[cy:, cx:])):
        assert np.all(np.diff(ray) <= 0), "mask must not increase away from the centre"
    # The soft edge really is soft: several intermediate values along a ray.
    assert np.count_nonzero((m[cy, cx:] > 0) & (m[cy, cx:] < 1)) >= 5


def test_edge_width_scales_with_feather_and_box():
    # Along the horizontal axis the edge is feather x box width wide.
    for width, feather in ((100, 0.15), (200, 0.15), (200, 0.3)):
        m = ellipse_mask((50, width + 20), np.array([[10, 0, 10 + width, 50]]), feather=feather)
        soft = np.count_nonzero((m[25] > 0) & (m[25] < 1)) / 2
        assert abs(soft - feather * width) <= 2


def test_symmetric_for_a_symmetric_box():
    m = ellipse_mask((60, 80), np.array([[10, 10, 70, 50]]), feather=0.15)
    np.testing.assert_allclose(m, m[:, ::-1], atol=1e-6)
    np.testing.assert_allclose(m, m[::-1, :], atol=1e-6)


@pytest.mark.parametrize("dx, dy", [(-30, 0), (0, -25), (60, 40), (-30, -25)])
def test_partly_outside_equals_crop_of_a_bigger_frame(dx, dy):
    box = np.array([[dx + 10, dy + 5, dx + 70, dy + 75]], np.float32)
    shape = (60, 80)
    pad = 100
    big = ellipse_mask((shape[0] + 2 * pad, shape[1] + 2 * pad), box + pad, feather=0.15)
    small = ellipse_mask(shape, box, feather=0.15)
    np.testing.assert_array_equal(small, big[pad : pad + shape[0], pad : pad + shape[1]])
    assert small.max() > 0


def test_fully_outside_box_gives_empty_region_and_zero_mask():
    box = np.array([200, 200, 260, 260], np.float32)
    assert box_region(box, (100, 100)).empty
    assert ellipse_mask((100, 100), box[None], feather=0.15).max() == 0.0
    assert ellipse_mask((100, 100), np.zeros((0, 4)), feather=0.15).max() == 0.0


def test_tiny_and_subpixel_boxes_still_cover_their_centre():
    m = ellipse_mask((20, 20), np.array([[8, 8, 12, 12]]), feather=0.15)  # 4 px box
    assert m[9:11, 9:11].min() > 0.9
    assert np.all(m[:7] == 0) and np.all(m[13:] == 0)
    m = ellipse_mask((20, 20), np.array([[10.6, 10.6, 11.4, 11.4]]), feather=0.15)
    assert m.max() > 0.5


def test_large_box_covering_the_frame():
    m = ellipse_mask((40, 60), np.array([[-500, -500, 560, 540]]), feather=0.15)
    assert np.all(m == 1.0)


def test_region_variant_matches_full_frame():
    box = np.array([33.2, 12.7, 95.1, 101.4])
    shape = (90, 120)
    region = box_region(box, shape)
    assert (region.y0, region.x0) == (12, 33) and region.y1 == 90 and region.x1 == 96
    crop = ellipse_mask_in_region(box, region, feather=0.2)
    full = ellipse_mask(shape, box[None], feather=0.2)
    np.testing.assert_array_equal(crop, full[region.slices])
    # Nothing outside the region is non-zero.
    outside = full.copy()
    outside[region.slices] = 0
    assert outside.max() == 0


def test_overlapping_boxes_take_the_maximum():
    a, b = np.array([10, 10, 60, 60.0]), np.array([40, 20, 90, 70.0])
    both = ellipse_mask((80, 100), np.stack([a, b]), feather=0.15)
    np.testing.assert_array_equal(
        both, np.maximum(ellipse_mask((80, 100), a[None]), ellipse_mask((80, 100), b[None]))
    )


def test_box_region_padding_is_clipped():
    region = box_region([5, 5, 20, 20], (30, 30), pad=10)
    assert tuple(region) == (0, 30, 0, 30)


@pytest.mark.parametrize("feather", [-0.1, 0.6])
def test_invalid_feather(feather):
    with pytest.raises(VdeidError, match="feather"):
        ellipse_mask((10, 10), np.array([[0, 0, 5, 5]]), feather=feather)


def test_non_finite_box_is_refused():
    with pytest.raises(ValueError):
        ellipse_mask((10, 10), np.array([[0, 0, np.nan, 5]]))
