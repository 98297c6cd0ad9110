"""Range-aware dtype conversions (scikit-image's rule: never a bare astype)."""

from __future__ import annotations

import numpy as np


def to_float(image: np.ndarray) -> np.ndarray:
    """Integer image (uint8 or uint16) → float32 in [0, 1]; floats pass through."""
    if image.dtype == np.uint8:
        return image.astype(np.float32) / 255.0
    if image.dtype == np.uint16:
        return image.astype(np.float32) / 65535.0
    if np.issubdtype(image.dtype, np.floating):
        return image.astype(np.float32, copy=False)
    raise TypeError(f"unsupported image dtype {image.dtype}; expected uint8, uint16 or float")


def from_float(image: np.ndarray, dtype) -> np.ndarray:
    """Float image in [0, 1] → ``dtype`` (uint8 or uint16), rounded and clipped."""
    dtype = np.dtype(dtype)
    if dtype == np.uint8:
        scale = 255.0
    elif dtype == np.uint16:
        scale = 65535.0
    else:
        return np.clip(image, 0.0, 1.0).astype(dtype)
    return np.clip(np.rint(image * scale), 0, scale).astype(dtype)


def to_uint8(image: np.ndarray) -> np.ndarray:
    """uint8 or uint16 image → uint8 (a uint16 keeps its 8 high bits); uint8 passes through."""
    if image.dtype == np.uint8:
        return image
    if image.dtype == np.uint16:
        return (image >> 8).astype(np.uint8)
    raise TypeError(f"frames must be uint8 or uint16, got {image.dtype}")
