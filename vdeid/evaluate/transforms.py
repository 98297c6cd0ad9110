"""What can happen to a protected photo before a recogniser sees it.

Ghafourian et al. store their adversarial examples as JPEG and note that
resizing to another network's input size weakens them; these transforms
replay that on the shipped uint8 pixels:

- ``none``: the image as written;
- ``jpegQ`` (e.g. ``jpeg75``): a JPEG round trip at quality ``Q`` with
  standard 4:2:0 chroma subsampling (how most platforms re-encode uploads);
- ``resize``: the photo rescaled so the face box measures another
  recogniser's input size (area averaging when shrinking, bilinear when
  enlarging), as when a photo is stored at the size a different model takes.
"""

from __future__ import annotations

import io
import re

import cv2
import numpy as np

from ..checks import check_shape
from ..errors import VdeidError

__all__ = ["apply_transform", "parse_transform"]


def parse_transform(name: str) -> tuple[str, int]:
    """``("none", 0)``, ``("jpeg", Q)`` or ``("resize", 0)`` for a transform name.

    Raises
    ------
    VdeidError
        Unknown name or JPEG quality outside [1, 100].
    """
    if name in ("none", "resize"):
        return name, 0
    m = re.fullmatch(r"jpeg(\d{1,3})", name)
    if m and 1 <= int(m.group(1)) <= 100:
        return "jpeg", int(m.group(1))
    raise VdeidError(f"unknown transform {name!r}; use none, resize or jpegQ with Q in 1..100 (e.g. jpeg75)")


def apply_transform(image: np.ndarray, name: str, *, scale: float = 1.0) -> tuple[np.ndarray, float]:
    """Apply one transform to a uint8 RGB image.

    Parameters
    ----------
    image : ndarray of shape (H, W, 3), uint8
    name : str
        ``none``, ``jpegQ`` or ``resize``.
    scale : float, optional
        Size factor of ``resize`` (new size / old size). (Default: 1)

    Returns
    -------
    image : ndarray of shape (H', W', 3), uint8
    scale : float
        Factor that maps the input's pixel coordinates to the output's
        (1 except for ``resize``).
    """
    check_shape(image, ["H", "W", 3], "image")
    kind, quality = parse_transform(name)
    if kind == "none":
        return image, 1.0
    if kind == "jpeg":
        from PIL import Image

        buf = io.BytesIO()
        Image.fromarray(image).save(buf, format="JPEG", quality=quality, subsampling=2)
        buf.seek(0)
        with Image.open(buf) as im:
            return np.asarray(im.convert("RGB")), 1.0
    if not scale > 0:
        raise VdeidError(f"resize scale must be > 0, got {scale}")
    h, w = image.shape[:2]
    size = (max(1, round(w * scale)), max(1, round(h * scale)))
    interp = cv2.INTER_AREA if scale < 1 else cv2.INTER_LINEAR
    out = cv2.resize(image, size, interpolation=interp)
    # The realised factor (rounding) maps coordinates exactly enough for matching.
    return out, float(size[0] / w)
