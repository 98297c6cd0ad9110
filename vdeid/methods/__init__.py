"""Protection methods: the :class:`Method` protocol, face masks, naive methods, registry.

The naive methods (``blur_faces``, ``BlurFaces``...) load lazily
(scikit-image's habit), so importing :mod:`vdeid.methods.mask` or
:mod:`vdeid.composite` does not pull them in.
"""

from __future__ import annotations

import importlib

from .base import FaceOutcome as FaceOutcome
from .base import Method as Method
from .mask import Region as Region
from .mask import box_region as box_region
from .mask import ellipse_mask as ellipse_mask
from .mask import ellipse_mask_in_region as ellipse_mask_in_region
from .registry import create_fallback as create_fallback
from .registry import create_method as create_method
from .registry import describe_method as describe_method
from .registry import list_methods as list_methods
from .registry import register_method as register_method

_LAZY = {
    "blur_faces": "naive",
    "pixelate_faces": "naive",
    "noise_faces": "naive",
    "impulse_faces": "naive",
    "mask_faces": "naive",
    "svd_faces": "naive",
    "default_blur_sigma": "naive",
    "default_pixel_block": "naive",
    "BlurFaces": "naive",
    "PixelateFaces": "naive",
    "NoiseFaces": "naive",
    "ImpulseFaces": "naive",
    "MaskFaces": "naive",
    "SvdFaces": "naive",
}

__all__ = [
    "FaceOutcome",
    "Method",
    "Region",
    "box_region",
    "ellipse_mask",
    "ellipse_mask_in_region",
    "create_fallback",
    "create_method",
    "describe_method",
    "list_methods",
    "register_method",
    *_LAZY,
]


def __getattr__(name: str):
    if name in _LAZY:
        module = importlib.import_module(f".{_LAZY[name]}", __name__)
        return getattr(module, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__():
    return sorted(__all__)
