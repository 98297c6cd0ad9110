"""Carry a face's perturbation onto the same face in another frame.

A warm start begins a face's attack from the perturbation its track found in
an earlier frame (see :mod:`vdeid.engine`). The face has moved, so the
perturbation is moved with it: by the similarity transform between the two
faces' landmarks, and by whole pixels when that transform is nearly a
translation. Only the *start* of the next attack is resampled; what ships
is optimised in the new frame's own pixels.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

from .methods.mask import Region
from .recognizers.align import similarity_transform

__all__ = ["move_points", "transfer_perturbation"]

#: A similarity within these of a translation (3 % in scale, 0.02 rad, about
#: 1.1°, in angle) moves the perturbation by whole pixels instead.
_TRANSLATION_SCALE = 0.03
_TRANSLATION_ANGLE = 0.02


def move_points(points: np.ndarray, src_box: np.ndarray, dst_box: np.ndarray) -> np.ndarray:
    """Carry points from one box to another: shifted with the centre, scaled with the side.

    Parameters
    ----------
    points : ndarray of shape (..., 2)
        ``(x, y)`` pixels, placed relative to ``src_box``.
    src_box, dst_box : ndarray of shape (4,)
        ``x0, y0, x1, y1``; the scale is the ratio of the boxes' geometric-mean sides.

    Returns
    -------
    ndarray of shape (..., 2), float64
    """
    src_box = np.asarray(src_box, np.float64)
    dst_box = np.asarray(dst_box, np.float64)
    sc = (src_box[:2] + src_box[2:]) / 2
    dc = (dst_box[:2] + dst_box[2:]) / 2
    ss = max(float(np.sqrt(np.prod(src_box[2:] - src_box[:2]))), 1e-6)
    ds = float(np.sqrt(max(np.prod(dst_box[2:] - dst_box[:2]), 0.0)))
    return (np.asarray(points, np.float64) - sc) * (ds / ss) + dc


def transfer_perturbation(
    delta: torch.Tensor,
    src_ctx: Region,
    src_landmarks: np.ndarray,
    dst_ctx: Region,
    dst_landmarks: np.ndarray,
    dst_shape: tuple,
) -> torch.Tensor:
    """Resample a perturbation from one face's crop onto another's, aligned by landmarks.

    Parameters
    ----------
    delta : Tensor of shape (3, h, w)
        Perturbation in the source context crop (float, signed).
    src_ctx, dst_ctx : Region
        The two context crops in their frames.
    src_landmarks, dst_landmarks : ndarray of shape (5, 2)
        Frame-pixel landmarks of the two faces.
    dst_shape : tuple of int
        ``(h, w)`` of the destination crop.

    Returns
    -------
    Tensor of shape (3, h', w')
        The perturbation in destination crop pixels, on ``delta``'s device
        (0 where the source had none).
    """
    src = np.asarray(src_landmarks, np.float64) - [src_ctx.x0, src_ctx.y0]
    dst = np.asarray(dst_landmarks, np.float64) - [dst_ctx.x0, dst_ctx.y0]
    sim = similarity_transform(torch.from_numpy(dst), torch.from_numpy(src))[0].numpy()  # dst px -> src px
    h, w = int(dst_shape[0]), int(dst_shape[1])
    sh, sw = delta.shape[1:]
    scale = float(np.hypot(sim[0, 0], sim[1, 0]))
    angle = float(np.arctan2(sim[1, 0], sim[0, 0]))
    if abs(scale - 1.0) < _TRANSLATION_SCALE and abs(angle) < _TRANSLATION_ANGLE:
        # Shift by whole pixels instead of resampling, which would smear the
        # perturbation's finest detail.
        ox, oy = int(round(sim[0, 2])), int(round(sim[1, 2]))
        out = delta.new_zeros(3, h, w)
        y0, y1 = max(0, -oy), min(h, sh - oy)
        x0, x1 = max(0, -ox), min(w, sw - ox)
        if y1 > y0 and x1 > x0:
            out[:, y0:y1, x0:x1] = delta[:, y0 + oy : y1 + oy, x0 + ox : x1 + ox]
        return out
    m = torch.as_tensor(sim, dtype=delta.dtype, device=delta.device)
    ys, xs = torch.meshgrid(
        torch.arange(h, dtype=delta.dtype, device=delta.device),
        torch.arange(w, dtype=delta.dtype, device=delta.device),
        indexing="ij",
    )
    pts = torch.stack([xs, ys, torch.ones_like(xs)], -1) @ m.T
    grid = torch.stack([2 * pts[..., 0] / max(sw - 1, 1) - 1, 2 * pts[..., 1] / max(sh - 1, 1) - 1], -1)
    return F.grid_sample(delta[None], grid[None], mode="bilinear", padding_mode="zeros", align_corners=True)[0]
