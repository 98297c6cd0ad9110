"""Blend protected pixels into a frame through a soft mask.

``out = mask * protected + (1 - mask) * image``, computed only over the
bounding rectangle of ``mask > 0``: on a 1080p frame a few face regions are a
small fraction of the pixels. Pixels where the mask is 0 are copied bit for
bit (no float round trip), so everything outside the faces is untouched.
"""

from __future__ import annotations

import numpy as np

from .checks import check_shape
from .imageops import from_float, to_float
from .methods.mask import Region


def composite(image: np.ndarray, protected: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """Blend ``protected`` into ``image`` where ``mask`` is non-zero.

    Parameters
    ----------
    image : ndarray of shape (H, W, 3)
        The original frame: uint8 in [0, 255], uint16 in [0, 65535] or float
        in [0, 1].
    protected : ndarray of shape (H, W, 3)
        The protected frame, any of the same dtypes (need not match
        ``image``'s; both are compared on the [0, 1] scale).
    mask : ndarray of shape (H, W)
        Float in [0, 1]: 1 takes ``protected``, 0 keeps ``image``.

    Returns
    -------
    out : ndarray of shape (H, W, 3)
        A new frame with ``image``'s dtype.
    """
    check_shape(image, ["H", "W", 3], "image")
    check_shape(protected, [image.shape[0], image.shape[1], 3], "protected")
    check_shape(mask, [image.shape[0], image.shape[1]], "mask")
    out = image.copy()
    rows = np.flatnonzero(mask.any(axis=1))
    if rows.size == 0:
        return out
    cols = np.flatnonzero(mask.any(axis=0))
    region = Region(int(rows[0]), int(rows[-1]) + 1, int(cols[0]), int(cols[-1]) + 1)
    sl = region.slices
    blend_into(out, region, protected[sl], mask[sl])
    return out


def blend_into(out: np.ndarray, region: Region, protected: np.ndarray, mask: np.ndarray) -> None:
    """Blend a protected crop into ``out[region]`` in place.

    Parameters
    ----------
    out : ndarray of shape (H, W, 3)
        Frame to modify: uint8, uint16 or float in [0, 1].
    region : Region
        Where the crop sits in ``out``.
    protected : ndarray of shape (h, w, 3)
        Protected pixels of the region, uint8/uint16 or float in [0, 1];
        ``(h, w) = region.shape``.
    mask : ndarray of shape (h, w)
        Float in [0, 1] over the region.
    """
    if region.empty:
        return
    h, w = region.shape
    check_shape(protected, [h, w, 3], "protected crop")
    check_shape(mask, [h, w], "mask crop")
    sl = region.slices
    base = out[sl]
    m = np.asarray(mask, np.float32)[..., None]
    original = to_float(base)
    blended = original + m * (to_float(protected) - original)
    result = from_float(blended, out.dtype)
    # Mask-0 pixels keep their exact stored value (no float round trip).
    np.copyto(base, result, where=m > 0)
