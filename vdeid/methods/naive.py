"""Naive face de-identification: blur, pixelate, noise, impulse, mask, SVD-DID.

The classical methods of Mygdalis, Chatzikyriakidis and Pitas's lecture
notes "Face De-identification for privacy protection" (AUTH): perturbations
``x_p = x + p`` (Gaussian blur, additive Gaussian noise, salt-and-pepper
noise, pixelation, darkening) and the reconstruction method SVD-DID, which
keeps only the ``k`` largest singular values of the face region.

Each method exists twice (kornia's habit): a function working on one image
and its boxes (``blur_faces(image, boxes, *, sigma=None)``) and a class
implementing :class:`~vdeid.methods.base.Method` built from a
:class:`~vdeid.config.Config` (``BlurFaces(config).protect(frames, faces)``).

Every function grows each box by ``margin`` × its size, works on that box's
crop only and blends the result back through the feathered ellipse of
:mod:`vdeid.methods.mask`, so pixels outside the grown boxes keep their exact
values. Faces are processed one after the other; where faces overlap, the
later one is computed from the already protected pixels.
"""

from __future__ import annotations

import contextlib
from typing import Callable, Literal, Optional, Sequence

import cv2
import numpy as np

from ..checks import check_shape
from ..composite import blend_into
from ..config import Config
from ..errors import ShapeError, VdeidError
from ..faces import Faces, expand_boxes
from ..imageops import to_float
from .base import FaceOutcome
from .mask import box_region, ellipse_mask_in_region
from .registry import register_method

__all__ = [
    "blur_faces",
    "pixelate_faces",
    "noise_faces",
    "impulse_faces",
    "mask_faces",
    "svd_faces",
    "default_blur_sigma",
    "default_pixel_block",
    "gaussian_blur",
    "BlurFaces",
    "PixelateFaces",
    "NoiseFaces",
    "ImpulseFaces",
    "MaskFaces",
    "SvdFaces",
]

# transform(crop (h, w, 3) float32 in [0, 1], face_size px) -> same shape, [0, 1]
Transform = Callable[[np.ndarray, float], np.ndarray]


def default_blur_sigma(face_size: float) -> float:
    """Blur sigma, in pixels, that defeats recognition for a face of this size.

    ``0.2 × face_size`` (the detected box's longer side), at least 2 px: 20 px
    for a 100 px face. The lecture notes' σ = 5 suits only small faces; on 74
    real photos (faces ~70-250 px) 0.08 × face size left 12 % recognisable by
    dlib and 0.2 none (``docs/methods.md``).
    """
    return max(2.0, 0.2 * float(face_size))


def default_pixel_block(face_size: float) -> int:
    """Pixelation block side: ``face_size / 8`` (8 blocks across), at least 2 px."""
    return max(2, int(round(float(face_size) / 8.0)))


def blur_faces(
    image: np.ndarray,
    boxes: np.ndarray,
    *,
    sigma: Optional[float] = None,
    feather: float = 0.15,
    margin: float = 0.15,
) -> np.ndarray:
    """Gaussian-blur each face.

    Parameters
    ----------
    image : ndarray of shape (H, W, 3)
        RGB, uint8 in [0, 255], uint16 in [0, 65535] or float in [0, 1].
    boxes : ndarray of shape (N, 4)
        Face boxes ``x0, y0, x1, y1`` in pixels, as detected (not expanded).
    sigma : float, optional
        Standard deviation in pixels; None scales it with each face
        (:func:`default_blur_sigma`). (Default: None)
    feather : float, optional
        Soft edge width as a fraction of the grown box. (Default: 0.15)
    margin : float, optional
        Each box grows by this fraction of its size on every side.
        (Default: 0.15)

    Returns
    -------
    ndarray of shape (H, W, 3)
        A new image with ``image``'s dtype.
    """
    if sigma is not None and not sigma > 0:
        raise VdeidError(f"blur sigma must be > 0, got {sigma}")

    def pad(face_size: float) -> float:
        # The crop carries 3 sigma of real context so the blur does not
        # reflect the crop's own border back into the face.
        return 3.0 * (sigma if sigma is not None else default_blur_sigma(face_size))

    def transform(crop: np.ndarray, face_size: float) -> np.ndarray:
        return gaussian_blur(crop, sigma if sigma is not None else default_blur_sigma(face_size))

    return _protect_boxes(image, boxes, transform, feather=feather, margin=margin, pad=pad)


def gaussian_blur(image: np.ndarray, sigma: float) -> np.ndarray:
    """Gaussian blur, fast for large sigma.

    Parameters
    ----------
    image : ndarray of shape (H, W, 3), float32 in [0, 1]
    sigma : float
        Standard deviation in pixels.

    Returns
    -------
    ndarray of shape (H, W, 3), float32
        Blurred image. Above ``sigma = 6`` the image is area-downscaled by
        ``sigma / 3``, blurred there and linearly upscaled, with the three
        steps' variances adding up to ``sigma²``: a 400 px face's σ = 80 blur
        costs as much as a 100 px face's.
    """
    if sigma <= 6.0:
        return cv2.GaussianBlur(image, (0, 0), sigmaX=sigma, sigmaY=sigma, borderType=cv2.BORDER_REFLECT)
    h, w = image.shape[:2]
    factor = sigma / 3.0
    sw, sh = max(1, int(round(w / factor))), max(1, int(round(h / factor)))
    small = cv2.resize(image, (sw, sh), interpolation=cv2.INTER_AREA)
    # Area averaging adds ~factor²/12 of variance and linear upsampling ~factor²/6.
    rest = np.sqrt(max(sigma**2 - factor**2 / 4.0, 1e-6)) / factor
    small = cv2.GaussianBlur(small, (0, 0), sigmaX=rest, sigmaY=rest, borderType=cv2.BORDER_REFLECT)
    return cv2.resize(small, (w, h), interpolation=cv2.INTER_LINEAR)


def pixelate_faces(
    image: np.ndarray,
    boxes: np.ndarray,
    *,
    block: Optional[int] = None,
    feather: float = 0.15,
    margin: float = 0.15,
) -> np.ndarray:
    """Replace each face by blocks of its mean colour (mosaic).

    Parameters
    ----------
    image : ndarray of shape (H, W, 3)
        RGB, uint8, uint16 or float in [0, 1].
    boxes : ndarray of shape (N, 4)
        Face boxes ``x0, y0, x1, y1`` in pixels, as detected.
    block : int, optional
        Block side in pixels; None uses :func:`default_pixel_block`.
        (Default: None)
    feather, margin : float, optional
        As in :func:`blur_faces`.

    Returns
    -------
    ndarray of shape (H, W, 3)
        A new image with ``image``'s dtype.
    """
    if block is not None and int(block) < 1:
        raise VdeidError(f"pixel block must be >= 1, got {block}")

    def transform(crop: np.ndarray, face_size: float) -> np.ndarray:
        b = int(block) if block is not None else default_pixel_block(face_size)
        return _pixelate(crop, b)

    return _protect_boxes(image, boxes, transform, feather=feather, margin=margin)


def noise_faces(
    image: np.ndarray,
    boxes: np.ndarray,
    *,
    sigma: float = 0.25,
    feather: float = 0.15,
    margin: float = 0.15,
    rng: np.random.Generator | int | None = None,
) -> np.ndarray:
    """Add zero-mean Gaussian noise to each face, then clip to [0, 1].

    Parameters
    ----------
    image : ndarray of shape (H, W, 3)
        RGB, uint8, uint16 or float in [0, 1].
    boxes : ndarray of shape (N, 4)
        Face boxes ``x0, y0, x1, y1`` in pixels, as detected.
    sigma : float, optional
        Noise standard deviation on the [0, 1] pixel scale, drawn
        independently per pixel and channel. (Default: 0.25)
    feather, margin : float, optional
        As in :func:`blur_faces`.
    rng : numpy.random.Generator or int, optional
        Source of randomness (a seed makes the call reproducible).

    Returns
    -------
    ndarray of shape (H, W, 3)
        A new image with ``image``'s dtype.
    """
    if not sigma >= 0:
        raise VdeidError(f"noise sigma must be >= 0, got {sigma}")
    gen = np.random.default_rng(rng)

    def transform(crop: np.ndarray, face_size: float) -> np.ndarray:
        noise = gen.standard_normal(crop.shape, dtype=np.float32) * np.float32(sigma)
        return np.clip(crop + noise, 0.0, 1.0)

    return _protect_boxes(image, boxes, transform, feather=feather, margin=margin)


def impulse_faces(
    image: np.ndarray,
    boxes: np.ndarray,
    *,
    amount: float = 0.3,
    feather: float = 0.15,
    margin: float = 0.15,
    rng: np.random.Generator | int | None = None,
) -> np.ndarray:
    """Salt-and-pepper noise: set a fraction of each face's pixels to white or black.

    Parameters
    ----------
    image : ndarray of shape (H, W, 3)
        RGB, uint8, uint16 or float in [0, 1].
    boxes : ndarray of shape (N, 4)
        Face boxes ``x0, y0, x1, y1`` in pixels, as detected.
    amount : float, optional
        Fraction of pixels replaced, in [0, 1]; half become white, half black
        (all three channels). (Default: 0.3)
    feather, margin : float, optional
        As in :func:`blur_faces`.
    rng : numpy.random.Generator or int, optional
        Source of randomness (a seed makes the call reproducible).

    Returns
    -------
    ndarray of shape (H, W, 3)
        A new image with ``image``'s dtype.
    """
    if not 0.0 <= amount <= 1.0:
        raise VdeidError(f"impulse amount must be in [0, 1], got {amount}")
    gen = np.random.default_rng(rng)

    def transform(crop: np.ndarray, face_size: float) -> np.ndarray:
        u = gen.random(crop.shape[:2], dtype=np.float32)
        out = crop.copy()
        out[u < amount / 2.0] = 1.0
        out[(u >= amount / 2.0) & (u < amount)] = 0.0
        return out

    return _protect_boxes(image, boxes, transform, feather=feather, margin=margin)


def mask_faces(
    image: np.ndarray,
    boxes: np.ndarray,
    *,
    mode: Literal["solid", "darken"] = "solid",
    color: Sequence[int] = (0, 0, 0),
    darken: float = 0.25,
    feather: float = 0.15,
    margin: float = 0.15,
) -> np.ndarray:
    """Cover each face with a solid colour, or darken it.

    Parameters
    ----------
    image : ndarray of shape (H, W, 3)
        RGB, uint8, uint16 or float in [0, 1].
    boxes : ndarray of shape (N, 4)
        Face boxes ``x0, y0, x1, y1`` in pixels, as detected.
    mode : {"solid", "darken"}, optional
        ``solid`` fills the ellipse with ``color``; ``darken`` multiplies the
        face by ``darken``. Darkening is a visual effect only: brightening
        the output largely restores the face. (Default: "solid")
    color : sequence of 3 int, optional
        RGB fill colour on the 0-255 scale (also for uint16 images).
        (Default: black)
    darken : float, optional
        Brightness factor in [0, 1] for ``mode="darken"``. (Default: 0.25)
    feather, margin : float, optional
        As in :func:`blur_faces`.

    Returns
    -------
    ndarray of shape (H, W, 3)
        A new image with ``image``'s dtype.
    """
    if mode == "solid":
        rgb = np.asarray(color, np.float32).reshape(-1)
        if rgb.shape != (3,) or rgb.min() < 0 or rgb.max() > 255:
            raise VdeidError(f"mask colour must be 3 values in [0, 255], got {tuple(color)}")
        fill = rgb / np.float32(255.0)

        def transform(crop: np.ndarray, face_size: float) -> np.ndarray:
            return np.broadcast_to(fill, crop.shape)

    elif mode == "darken":
        if not 0.0 <= darken <= 1.0:
            raise VdeidError(f"darken factor must be in [0, 1], got {darken}")

        def transform(crop: np.ndarray, face_size: float) -> np.ndarray:
            return crop * np.float32(darken)

    else:
        raise VdeidError(f"unknown mask mode {mode!r}; choose solid or darken")
    return _protect_boxes(image, boxes, transform, feather=feather, margin=margin)


def svd_faces(
    image: np.ndarray,
    boxes: np.ndarray,
    *,
    rank: int = 3,
    feather: float = 0.15,
    margin: float = 0.15,
) -> np.ndarray:
    """SVD-DID: rebuild each face region from its ``rank`` largest singular values.

    Each colour channel of the grown box's crop, an ``(h, w)`` matrix
    ``U S Vᵀ``, is replaced by ``U_k S_k V_kᵀ``. A small ``rank`` keeps the
    coarse layout (skin tone, light) and removes identity detail; ``rank >=
    min(h, w)`` reproduces the crop.

    Parameters
    ----------
    image : ndarray of shape (H, W, 3)
        RGB, uint8, uint16 or float in [0, 1].
    boxes : ndarray of shape (N, 4)
        Face boxes ``x0, y0, x1, y1`` in pixels, as detected.
    rank : int, optional
        Singular values kept per channel, >= 1. (Default: 3)
    feather, margin : float, optional
        As in :func:`blur_faces`.

    Returns
    -------
    ndarray of shape (H, W, 3)
        A new image with ``image``'s dtype.
    """
    if int(rank) < 1:
        raise VdeidError(f"SVD rank must be >= 1, got {rank}")
    k = int(rank)

    def transform(crop: np.ndarray, face_size: float) -> np.ndarray:
        channels = np.moveaxis(crop, -1, 0).astype(np.float64)  # (3, h, w)
        with _single_threaded_blas():
            u, s, vt = np.linalg.svd(channels, full_matrices=False)
        kk = min(k, s.shape[-1])
        # einsum without optimize= stays out of BLAS (see _single_threaded_blas).
        low = np.einsum("cik,ckj->cij", u[..., :kk] * s[:, None, :kk], vt[:, :kk, :])
        return np.clip(np.moveaxis(low, 0, -1), 0.0, 1.0).astype(np.float32)

    return _protect_boxes(image, boxes, transform, feather=feather, margin=margin)


_BLAS_CONTROLLER = None


def _single_threaded_blas():
    """Context running OpenBLAS on one thread, when threadpoolctl is installed.

    Face crops are small matrices; OpenBLAS's worker threads spin-wait, and
    when the cores are busy (detector, attacks, other processes) a 130 × 110
    SVD measured 3 s instead of 30 ms.
    """
    global _BLAS_CONTROLLER
    try:
        from threadpoolctl import ThreadpoolController
    except ImportError:
        return contextlib.nullcontext()
    if _BLAS_CONTROLLER is None:
        _BLAS_CONTROLLER = ThreadpoolController()
    return _BLAS_CONTROLLER.limit(limits=1, user_api="blas")


def _pixelate(crop: np.ndarray, block: int) -> np.ndarray:
    h, w = crop.shape[:2]
    nh, nw = -(-h // block), -(-w // block)
    # Edge padding makes the last partial row/column of blocks the mean of
    # the real pixels it covers, weighted toward the edge.
    padded = np.pad(crop, ((0, nh * block - h), (0, nw * block - w), (0, 0)), mode="edge")
    means = padded.reshape(nh, block, nw, block, 3).mean(axis=(1, 3))
    return np.repeat(np.repeat(means, block, axis=0), block, axis=1)[:h, :w]


def _protect_boxes(
    image: np.ndarray,
    boxes: np.ndarray,
    transform: Transform,
    *,
    feather: float,
    margin: float,
    pad: Optional[Callable[[float], float]] = None,
) -> np.ndarray:
    check_shape(image, ["H", "W", 3], "image")
    boxes = np.asarray(boxes, np.float32).reshape(-1, 4)
    if not np.isfinite(boxes).all():
        raise ShapeError(f"face boxes must be finite, got {boxes.tolist()}")
    out = image.copy()
    shape = image.shape[:2]
    for face_box, box in zip(boxes, expand_boxes(boxes, margin)):
        region = box_region(box, shape)
        if region.empty:
            continue
        face_size = float(max(face_box[2] - face_box[0], face_box[3] - face_box[1], 1.0))
        context = box_region(box, shape, pad=pad(face_size)) if pad is not None else region
        protected = transform(to_float(out[context.slices]), face_size)
        dy, dx = region.y0 - context.y0, region.x0 - context.x0
        protected = protected[dy : dy + region.shape[0], dx : dx + region.shape[1]]
        mask = ellipse_mask_in_region(box, region, feather=feather)
        blend_into(out, region, protected, mask)
    return out


class _NaiveMethod:
    """Shared :class:`~vdeid.methods.base.Method` plumbing of the naive methods."""

    name = ""

    def __init__(self, config: Optional[Config] = None):
        self.config = config if config is not None else Config()
        self.margin = self.config.detect.box_margin
        self.feather = self.config.naive.feather
        # One generator per method instance: a run is reproducible for a
        # given seed and frame order, and successive frames get fresh noise.
        self.rng = np.random.default_rng(self.config.naive.seed)

    def protect(self, frames: list[np.ndarray], faces: list[Faces]) -> tuple[list[np.ndarray], list[FaceOutcome]]:
        """Protect every face of every frame (see :class:`~vdeid.methods.base.Method`)."""
        if len(frames) != len(faces):
            raise ShapeError(f"got {len(frames)} frames but {len(faces)} face lists")
        out, outcomes = [], []
        for i, (frame, frame_faces) in enumerate(zip(frames, faces)):
            # NaN landmarks and bridged (detected=False) faces are treated
            # alike: only the boxes matter here.
            out.append(self.protect_image(frame, frame_faces.boxes))
            outcomes.extend(FaceOutcome(i, int(t), self.name) for t in frame_faces.track_ids)
        return out, outcomes

    def reset(self) -> None:
        """Reseed the random generator, so each photo's noise does not depend
        on the photos processed before it."""
        self.rng = np.random.default_rng(self.config.naive.seed)

    def protect_image(self, image: np.ndarray, boxes: np.ndarray) -> np.ndarray:
        """Protect one ``(H, W, 3)`` image given its ``(N, 4)`` detected boxes."""
        raise NotImplementedError

    def _params(self) -> dict:
        return {}

    def __repr__(self) -> str:
        params = ", ".join(f"{k}={v!r}" for k, v in self._params().items())
        return f"{type(self).__name__}({params}, feather={self.feather}, margin={self.margin})"


@register_method("blur")
class BlurFaces(_NaiveMethod):
    """Gaussian blur inside the face ellipse (sigma scales with the face)."""

    name = "blur"

    def protect_image(self, image, boxes):
        return blur_faces(image, boxes, sigma=self.config.naive.blur_sigma, feather=self.feather, margin=self.margin)

    def _params(self):
        return {"sigma": self.config.naive.blur_sigma}


@register_method("pixelate")
class PixelateFaces(_NaiveMethod):
    """Mosaic of mean-colour blocks (about 8 blocks across the face)."""

    name = "pixelate"

    def protect_image(self, image, boxes):
        return pixelate_faces(
            image, boxes, block=self.config.naive.pixel_block, feather=self.feather, margin=self.margin
        )

    def _params(self):
        return {"block": self.config.naive.pixel_block}


@register_method("noise")
class NoiseFaces(_NaiveMethod):
    """Additive Gaussian noise (sigma on the [0, 1] scale)."""

    name = "noise"

    def protect_image(self, image, boxes):
        return noise_faces(
            image, boxes, sigma=self.config.naive.noise_sigma, feather=self.feather, margin=self.margin, rng=self.rng
        )

    def _params(self):
        return {"sigma": self.config.naive.noise_sigma, "seed": self.config.naive.seed}


@register_method("impulse")
class ImpulseFaces(_NaiveMethod):
    """Salt-and-pepper noise on a fraction of the face's pixels."""

    name = "impulse"

    def protect_image(self, image, boxes):
        return impulse_faces(
            image,
            boxes,
            amount=self.config.naive.impulse_amount,
            feather=self.feather,
            margin=self.margin,
            rng=self.rng,
        )

    def _params(self):
        return {"amount": self.config.naive.impulse_amount, "seed": self.config.naive.seed}


@register_method("mask")
class MaskFaces(_NaiveMethod):
    """Solid colour fill (or darkening) of the face ellipse."""

    name = "mask"

    def protect_image(self, image, boxes):
        n = self.config.naive
        return mask_faces(
            image,
            boxes,
            mode=n.mask_mode,
            color=n.mask_color,
            darken=n.darken_factor,
            feather=self.feather,
            margin=self.margin,
        )

    def _params(self):
        n = self.config.naive
        return {"mode": n.mask_mode, "color": n.mask_color, "darken": n.darken_factor}


@register_method("svd")
class SvdFaces(_NaiveMethod):
    """SVD-DID: the face rebuilt from its k largest singular values per channel."""

    name = "svd"

    def protect_image(self, image, boxes):
        return svd_faces(image, boxes, rank=self.config.naive.svd_rank, feather=self.feather, margin=self.margin)

    def _params(self):
        return {"rank": self.config.naive.svd_rank}
