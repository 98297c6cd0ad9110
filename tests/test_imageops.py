"""Range-aware dtype conversions."""

from __future__ import annotations

import numpy as np
import pytest

from vdeid.imageops import to_uint8


def test_to_uint8_keeps_the_high_byte_of_uint16_and_passes_uint8_through():
    eight = np.array([[0, 128, 255]], np.uint8)
    assert to_uint8(eight) is eight
    np.testing.assert_array_equal(to_uint8(np.array([[0, 257 * 128, 65535]], np.uint16)), eight)


def test_to_uint8_refuses_other_dtypes():
    with pytest.raises(TypeError, match="uint8 or uint16"):
        to_uint8(np.zeros((2, 2), np.float32))
