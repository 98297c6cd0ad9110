"""Soft-mask compositing: exact outside the mask, the blend formula inside."""

import numpy as np
import pytest

from vdeid.composite import blend_into, composite
from vdeid.errors import ShapeError
from vdeid.imageops import from_float, to_float
from vdeid.methods.mask import Region, ellipse_mask


@pytest.fixture
def pair():
    rng = np.random.default_rng(0)
    image = rng.integers(0, 256, (60, 80, 3), dtype=np.uint8)
    protected = rng.integers(0, 256, (60, 80, 3), dtype=np.uint8)
    return image, protected


def test_zero_mask_keeps_the_image_and_does_not_alias(pair):
    image, protected = pair
    out = composite(image, protected, np.zeros(image.shape[:2], np.float32))
    np.testing.assert_array_equal(out, image)
    assert out is not image


def test_full_mask_takes_protected(pair):
    image, protected = pair
    out = composite(image, protected, np.ones(image.shape[:2], np.float32))
    np.testing.assert_array_equal(out, protected)


@pytest.mark.parametrize("dtype", [np.uint8, np.uint16, np.float32])
def test_matches_the_blend_formula(dtype):
    rng = np.random.default_rng(1)
    image = from_float(rng.random((50, 70, 3), dtype=np.float32), dtype)
    protected = from_float(rng.random((50, 70, 3), dtype=np.float32), dtype)
    mask = ellipse_mask((50, 70), np.array([[10, 5, 50, 45]]), feather=0.3)
    out = composite(image, protected, mask)
    assert out.dtype == image.dtype
    expected = from_float(mask[..., None] * to_float(protected) + (1 - mask[..., None]) * to_float(image), dtype)
    tol = 1 if dtype != np.float32 else 1e-6
    np.testing.assert_allclose(out.astype(np.float64), expected.astype(np.float64), atol=tol)
    # Outside the mask's support the pixels are bit-identical.
    np.testing.assert_array_equal(out[mask == 0], image[mask == 0])


def test_mixed_dtypes_compare_on_the_unit_scale():
    image = np.full((20, 20, 3), 1000, np.uint16)
    protected = np.full((20, 20, 3), 0.5, np.float32)
    out = composite(image, protected, np.ones((20, 20), np.float32))
    assert out.dtype == np.uint16
    assert np.all(out == 32768)


def test_inputs_are_not_modified(pair):
    image, protected = pair
    before = image.copy(), protected.copy()
    mask = ellipse_mask(image.shape[:2], np.array([[0, 0, 40, 40]]))
    composite(image, protected, mask)
    np.testing.assert_array_equal(image, before[0])
    np.testing.assert_array_equal(protected, before[1])


def test_blend_into_writes_only_the_region(pair):
    image, protected = pair
    out = image.copy()
    region = Region(10, 30, 20, 50)
    mask = np.ones(region.shape, np.float32)
    mask[0, 0] = 0.0
    blend_into(out, region, protected[region.slices], mask)
    np.testing.assert_array_equal(out[region.slices][1:], protected[region.slices][1:])
    assert np.all(out[10, 20] == image[10, 20])
    rest = np.ones(image.shape[:2], bool)
    rest[region.slices] = False
    np.testing.assert_array_equal(out[rest], image[rest])


def test_shape_mismatch_raises(pair):
    image, protected = pair
    with pytest.raises(ShapeError, match="mask"):
        composite(image, protected, np.zeros((10, 10), np.float32))
    with pytest.raises(ShapeError, match="protected"):
        composite(image, protected[:, :10], np.zeros(image.shape[:2], np.float32))
