"""Feathered elliptical face masks.

A face is protected inside the ellipse inscribed in its (already expanded)
box. The mask is 1 in the ellipse's core and falls smoothly to exactly 0 on
the ellipse, so blending a protected face into a frame leaves no visible seam
and never touches a pixel outside the box.

The edge is ``feather`` × the box size wide along each axis: with the
normalised radius ``r = sqrt(((x - cx) / a)² + ((y - cy) / b)²)`` (``a``, ``b``
the half width and half height), the mask is 1 for ``r <= 1 - 2 feather``,
0 for ``r >= 1``, and a smoothstep in between.
"""

from __future__ import annotations

from typing import NamedTuple, Sequence

import numpy as np

from ..checks import check_shape
from ..errors import VdeidError

#: Smallest half axis, in pixels: a box narrower than 2 px still covers the
#: pixel its centre falls in (fail closed) at the cost of spilling a pixel.
MIN_HALF_AXIS = 1.0


class Region(NamedTuple):
    """Integer pixel rectangle ``[y0, y1) × [x0, x1)`` inside a frame.

    ``empty`` when the box lies wholly outside the frame.
    """

    y0: int
    y1: int
    x0: int
    x1: int

    @property
    def slices(self) -> tuple[slice, slice]:
        """``(rows, columns)`` slices for indexing ``frame[region.slices]``."""
        return slice(self.y0, self.y1), slice(self.x0, self.x1)

    @property
    def empty(self) -> bool:
        return self.y1 <= self.y0 or self.x1 <= self.x0

    @property
    def shape(self) -> tuple[int, int]:
        return max(self.y1 - self.y0, 0), max(self.x1 - self.x0, 0)


def box_region(box: Sequence[float], shape: tuple[int, int], *, pad: float = 0.0) -> Region:
    """The pixels a box's ellipse can touch, clipped to the frame.

    Parameters
    ----------
    box : sequence of 4 float
        ``x0, y0, x1, y1`` in frame pixels (may lie partly or wholly outside).
    shape : tuple of int
        ``(H, W)`` of the frame.
    pad : float, optional
        Extra pixels on every side (context for filters such as blur).

    Returns
    -------
    Region
        Pixel rectangle covering every pixel whose centre can get a non-zero
        mask value; empty when the box is outside the frame.
    """
    h, w = int(shape[0]), int(shape[1])
    x0, y0, x1, y1 = _safe_box(box)
    rx0 = int(np.clip(np.floor(x0 - pad), 0, w))
    rx1 = int(np.clip(np.ceil(x1 + pad), 0, w))
    ry0 = int(np.clip(np.floor(y0 - pad), 0, h))
    ry1 = int(np.clip(np.ceil(y1 + pad), 0, h))
    return Region(ry0, max(ry1, ry0), rx0, max(rx1, rx0))


def ellipse_mask_in_region(box: Sequence[float], region: Region, *, feather: float = 0.15) -> np.ndarray:
    """The feathered ellipse of one box, evaluated over a region only.

    Parameters
    ----------
    box : sequence of 4 float
        ``x0, y0, x1, y1`` in frame pixels; the ellipse is inscribed in it.
    region : Region
        Frame pixels to evaluate (usually :func:`box_region` of ``box``).
    feather : float, optional
        Width of the soft edge as a fraction of the box size, in [0, 0.5].
        0 gives a hard edge. (Default: 0.15)

    Returns
    -------
    mask : ndarray of shape (h, w), float32 in [0, 1]
        ``(h, w) = region.shape``; pixel ``(i, j)`` is frame pixel
        ``(region.y0 + i, region.x0 + j)`` sampled at its centre.
    """
    if not 0.0 <= feather <= 0.5:
        raise VdeidError(f"feather must be in [0, 0.5], got {feather}")
    rh, rw = region.shape
    if rh == 0 or rw == 0:
        return np.zeros((rh, rw), np.float32)
    x0, y0, x1, y1 = _safe_box(box)
    cx, cy = (x0 + x1) / 2.0, (y0 + y1) / 2.0
    a, b = (x1 - x0) / 2.0, (y1 - y0) / 2.0
    # Pixel centres are at integer + 0.5 in the x0,y0,x1,y1 convention.
    u = ((np.arange(region.x0, region.x1, dtype=np.float64) + 0.5 - cx) / a) ** 2
    v = ((np.arange(region.y0, region.y1, dtype=np.float64) + 0.5 - cy) / b) ** 2
    r = np.sqrt(v[:, None] + u[None, :])
    ramp = 2.0 * feather
    if ramp == 0.0:
        return (r < 1.0).astype(np.float32)
    t = np.clip((1.0 - r) / ramp, 0.0, 1.0)
    # Smoothstep: C1-continuous at both ends of the edge, so no Mach band.
    return (t * t * (3.0 - 2.0 * t)).astype(np.float32)


def ellipse_mask(shape: tuple[int, int], boxes: np.ndarray, *, feather: float = 0.15) -> np.ndarray:
    """Feathered ellipses inscribed in boxes, over a whole frame.

    Parameters
    ----------
    shape : tuple of int
        ``(H, W)`` of the frame.
    boxes : ndarray of shape (N, 4)
        ``x0, y0, x1, y1`` in frame pixels, already expanded by the safety
        margin; may be partly or wholly outside the frame.
    feather : float, optional
        Width of the soft edge as a fraction of each box's size, in
        [0, 0.5]. (Default: 0.15)

    Returns
    -------
    mask : ndarray of shape (H, W), float32 in [0, 1]
        1 in the core of each ellipse, 0 outside every ellipse (hence outside
        every box); overlapping faces take the maximum.
    """
    boxes = np.asarray(boxes, np.float64).reshape(-1, 4)
    check_shape(boxes, ["N", 4], "boxes")
    mask = np.zeros((int(shape[0]), int(shape[1])), np.float32)
    for box in boxes:
        region = box_region(box, shape)
        if region.empty:
            continue
        sl = region.slices
        np.maximum(mask[sl], ellipse_mask_in_region(box, region, feather=feather), out=mask[sl])
    return mask


def _safe_box(box) -> tuple[float, float, float, float]:
    x0, y0, x1, y1 = (float(v) for v in box)
    if not np.all(np.isfinite([x0, y0, x1, y1])):
        raise ValueError(f"box has non-finite coordinates: {[x0, y0, x1, y1]}")
    # Normalise swapped corners rather than silently protecting nothing.
    x0, x1 = min(x0, x1), max(x0, x1)
    y0, y1 = min(y0, y1), max(y0, y1)
    # Tiny boxes are widened around their centre to MIN_HALF_AXIS.
    cx, cy = (x0 + x1) / 2.0, (y0 + y1) / 2.0
    hw = max((x1 - x0) / 2.0, MIN_HALF_AXIS)
    hh = max((y1 - y0) / 2.0, MIN_HALF_AXIS)
    return cx - hw, cy - hh, cx + hw, cy + hh
