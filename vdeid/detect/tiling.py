"""Tiled, upscaled detection for small faces in large (aerial) frames.

MTCNN's first stage looks at 12 px windows of an image pyramid that starts
at ``12 / min_face``; faces smaller than ``min_face`` are never seen, and a
4K frame upscaled as a whole would need gigabytes. :class:`TiledDetector`
cuts each frame into overlapping tiles, upscales every tile by ``upscale``
(so a 14 px face reaches the 20 px the detector looks for), detects on all
tiles of all frames in equal-size batches, maps the boxes back and merges
them with NMS. A pass on the whole frame as it is finds faces too large to
sit inside one tile's overlap, and keeps every face plain detection finds.

Why overlap suffices: tiles overlap by ``overlap`` frame pixels, so every
face whose side is at most ``overlap`` lies entirely inside at least one
tile. Detections that touch a tile's inner border (cut-off faces) are set
aside; the tile that holds the whole face, or the whole-frame pass for
faces larger than ``overlap``, should report it. MTCNN depends on scale
and context and does not always, so a cut-off face that overlaps nothing
else found is kept after all: a part of a face is better protected than
none.
"""

from __future__ import annotations

import logging
import math
from typing import Protocol, Sequence

import cv2
import numpy as np

from ..checks import check_shape
from ..config import DetectConfig
from ..faces import Faces, box_iou
from .mtcnn import FaceDetector

logger = logging.getLogger(__name__)

__all__ = ["TiledDetector", "create_detector", "nms_faces", "tile_grid", "wants_tiling"]

#: Frames whose shorter side reaches this many pixels are tiled by default.
LARGE_FRAME_SIDE = 1440
_TILES_PER_CALL = 32


class Detector(Protocol):
    """Anything with ``detect(frames) -> list[Faces]`` (e.g. :class:`~vdeid.detect.mtcnn.FaceDetector`)."""

    def detect(self, frames: list[np.ndarray]) -> list[Faces]: ...


def wants_tiling(frame_size: tuple[int, int], *, small_faces: bool = False) -> bool:
    """Whether frames of ``frame_size = (W, H)`` should be detected tile by tile.

    True when ``small_faces`` is asked for, or when the shorter side is at
    least :data:`LARGE_FRAME_SIDE` (1440p, 4K: aerial footage where faces
    are a few dozen pixels).
    """
    return bool(small_faces) or min(int(frame_size[0]), int(frame_size[1])) >= LARGE_FRAME_SIDE


def create_detector(
    config: DetectConfig, device: str, frame_size: tuple[int, int], *, small_faces: bool = False
) -> Detector:
    """The detector for frames of ``frame_size = (W, H)``.

    A :class:`~vdeid.detect.mtcnn.FaceDetector`, wrapped in a
    :class:`TiledDetector` with its default tiles when
    :func:`wants_tiling` says so (``small_faces`` or a large frame).

    Parameters
    ----------
    config : DetectConfig
        ``min_face``, ``thresholds``, ``batch_size`` of the inner detector.
    device : str
        ``"cpu"`` or ``"cuda"``, already resolved.
    frame_size : (int, int)
        ``(W, H)`` of the frames to come.
    small_faces : bool
        ``TrackConfig.small_faces`` (``--small-faces``).
    """
    detector = FaceDetector(config, device)
    if wants_tiling(frame_size, small_faces=small_faces):
        return TiledDetector(detector)
    return detector


def tile_grid(length: int, tile: int, overlap: int) -> tuple[list[int], int]:
    """Lay out equal tiles of at most ``tile`` pixels over ``[0, length)``.

    Uses the fewest tiles for which neighbours share at least ``overlap``
    pixels, then shrinks them to the smallest equal size that still covers
    ``length`` with that overlap (less area to detect on than fixed tiles).

    Returns
    -------
    starts : list of int
        Offset of each tile; the first is 0 and the last ends at ``length``.
    size : int
        Side of every tile along this axis.
    """
    if length <= tile:
        return [0], int(length)
    if tile <= overlap:
        raise ValueError(f"overlap ({overlap}) must be smaller than the tile ({tile})")
    n = math.ceil((length - overlap) / (tile - overlap))
    size = min(int(tile), math.ceil((length + (n - 1) * overlap) / n))
    return [int(round(v)) for v in np.linspace(0, length - size, n)], size


def _iou_and_iomin(boxes: np.ndarray, box: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    ix = np.clip(np.minimum(boxes[:, 2], box[2]) - np.maximum(boxes[:, 0], box[0]), 0, None)
    iy = np.clip(np.minimum(boxes[:, 3], box[3]) - np.maximum(boxes[:, 1], box[1]), 0, None)
    inter = ix * iy
    a = (boxes[:, 2] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 1])
    b = (box[2] - box[0]) * (box[3] - box[1])
    return inter / np.maximum(a + b - inter, 1e-6), inter / np.maximum(np.minimum(a, b), 1e-6)


def nms_faces(faces: Faces, *, iou: float = 0.4, contained: float = 0.8) -> Faces:
    """Greedy non-maximum suppression on a :class:`Faces` record.

    A face is dropped when a higher-scoring kept face overlaps it with IoU
    above ``iou`` or covers at least ``contained`` of the smaller box (the
    same face found at two tile scales can give nested boxes with low IoU).
    When the dropped box is the larger of a nested pair, the kept box grows
    to their union: merging must never shrink the protected region.

    Parameters
    ----------
    faces : Faces
        Candidates, any order.
    iou, contained : float
        Thresholds in [0, 1].

    Returns
    -------
    Faces
        The kept faces, highest score first.
    """
    if len(faces) <= 1:
        return faces
    order = np.argsort(-faces.scores, kind="stable")
    boxes = faces.boxes.astype(np.float64)
    keep: list[int] = []
    grown: dict[int, np.ndarray] = {}
    for i in order:
        if keep:
            o_iou, o_min = _iou_and_iomin(boxes[keep], boxes[i])
            hit = (o_iou > iou) | (o_min >= contained)
            if hit.any():
                j = keep[int(np.argmax(np.where(hit, o_min, -1.0)))]
                area = lambda b: (b[2] - b[0]) * (b[3] - b[1])  # noqa: E731
                if o_min[keep.index(j)] >= contained and area(boxes[i]) > area(boxes[j]):
                    g = grown.get(j, boxes[j])
                    grown[j] = np.concatenate([np.minimum(g[:2], boxes[i][:2]), np.maximum(g[2:], boxes[i][2:])])
                continue
        keep.append(int(i))
    out = faces[np.array(keep, np.int64)]
    if grown:
        out.boxes = out.boxes.copy()
        for k, j in enumerate(keep):
            if j in grown:
                out.boxes[k] = grown[j]
    return out


class TiledDetector:
    """Detect small faces by running ``detector`` on overlapping, upscaled tiles.

    Parameters
    ----------
    detector : Detector
        Inner detector with ``detect(frames) -> list[Faces]`` (e.g.
        :class:`~vdeid.detect.mtcnn.FaceDetector`); its own ``min_face``
        applies to the upscaled tiles, so the smallest face found in frame
        pixels is about ``min_face / upscale``.
    tile : int
        Tile side in frame pixels (before upscaling). (Default: 640)
    overlap : int
        Pixels shared by neighbouring tiles; faces up to this side are always
        whole in some tile. (Default: 96)
    upscale : float
        Factor applied to each tile before detection. 1.5 finds 12-16 px faces
        with ``min_face=20`` (see docs/tracking.md). (Default: 1.5)
    full_frame : bool
        Also run ``detector`` on the whole frame as it is, and keep what it
        finds: faces larger than ``overlap``, and faces the detector finds
        in the whole frame but misses in every tile. MTCNN depends on
        scale and context: on the shared street clip a 27 px face (score
        0.994 on the frame) is missed in the one tile that holds it whole,
        and an 88 px face (0.926) in every tile and in the frame shrunk.
        So tiling only ever adds to plain detection. (Default: True)

    Examples
    --------
    >>> from vdeid.config import DetectConfig
    >>> from vdeid.detect.mtcnn import FaceDetector
    >>> tiled = TiledDetector(FaceDetector(DetectConfig()), upscale=2.0)
    >>> faces = tiled.detect([frame])[0]  # doctest: +SKIP
    """

    def __init__(
        self,
        detector: Detector,
        *,
        tile: int = 640,
        overlap: int = 96,
        upscale: float = 1.5,
        full_frame: bool = True,
    ):
        if tile <= overlap:
            raise ValueError(f"tile ({tile}) must be larger than overlap ({overlap})")
        if upscale <= 0:
            raise ValueError(f"upscale must be positive, got {upscale}")
        self.detector = detector
        self.tile = int(tile)
        self.overlap = int(overlap)
        self.upscale = float(upscale)
        self.full_frame = bool(full_frame)

    def __repr__(self) -> str:
        return (
            f"TiledDetector(tile={self.tile}, overlap={self.overlap}, upscale={self.upscale}, "
            f"full_frame={self.full_frame})"
        )

    def detect(self, frames: Sequence[np.ndarray]) -> list[Faces]:
        """Detect faces in each frame.

        Parameters
        ----------
        frames : sequence of ndarray of shape (H, W, 3)
            RGB frames, uint8 in [0, 255] (what the inner detector accepts).
            Frames of one call may differ in size.

        Returns
        -------
        list of Faces
            One record per frame, in frame pixels, duplicates merged.
        """
        frames = list(frames)
        for f in frames:
            check_shape(f, ["H", "W", 3], "frame")
        found: list[list[Faces]] = [[] for _ in frames]
        cut_off: list[list[Faces]] = [[] for _ in frames]
        # Tiles of every frame, grouped by tile size so the inner detector batches them.
        groups: dict[tuple[int, int], list[tuple[int, int, int, np.ndarray]]] = {}
        for i, frame in enumerate(frames):
            h, w = frame.shape[:2]
            ys, th = tile_grid(h, self.tile, self.overlap)
            xs, tw = tile_grid(w, self.tile, self.overlap)
            for y in ys:
                for x in xs:
                    groups.setdefault((th, tw), []).append((i, x, y, frame[y : y + th, x : x + tw]))
        for (th, tw), tiles in groups.items():
            size = (max(1, round(tw * self.upscale)), max(1, round(th * self.upscale)))
            # Upscaled tiles are made a few dozen at a time to bound memory (4K: ~2.6 MB each).
            for start in range(0, len(tiles), _TILES_PER_CALL):
                chunk = tiles[start : start + _TILES_PER_CALL]
                images = [self._resize(t[3], size) for t in chunk]
                for (i, x, y, _), faces in zip(chunk, self.detector.detect(images)):
                    h, w = frames[i].shape[:2]
                    faces = _rescale(faces, tw / size[0], th / size[1], x, y)
                    cut = _cut_off(faces, x, y, tw, th, w, h)
                    found[i].append(faces[~cut])
                    cut_off[i].append(faces[cut])
        if self.full_frame:
            for i, faces in enumerate(self.detector.detect(frames)):
                found[i].append(faces)
        return [_add_unmatched(nms_faces(_concat(parts)), _concat(cut)) for parts, cut in zip(found, cut_off)]

    @staticmethod
    def _resize(image: np.ndarray, size: tuple[int, int]) -> np.ndarray:
        if (image.shape[1], image.shape[0]) == size:
            return np.ascontiguousarray(image)
        shrink = size[0] < image.shape[1]
        return cv2.resize(image, size, interpolation=cv2.INTER_AREA if shrink else cv2.INTER_LINEAR)


def _cut_off(faces: Faces, x: int, y: int, tw: int, th: int, w: int, h: int) -> np.ndarray:
    """``(N,)`` bool: the faces touching an inner border of the tile.

    The tile is ``tw`` x ``th`` at ``x, y`` in a ``w`` x ``h`` frame.
    """
    b = faces.boxes
    tol = 1.0
    cut = np.zeros(len(faces), bool)
    if x > 0:
        cut |= b[:, 0] <= x + tol
    if y > 0:
        cut |= b[:, 1] <= y + tol
    if x + tw < w:
        cut |= b[:, 2] >= x + tw - tol
    if y + th < h:
        cut |= b[:, 3] >= y + th - tol
    return cut


def _add_unmatched(kept: Faces, cut: Faces) -> Faces:
    """``kept`` plus the cut-off faces that overlap none of them.

    A face cut by a tile border is usually reported whole by a neighbouring
    tile or the whole-frame pass, and its partial box would only duplicate
    it. But MTCNN can miss a face in every place that holds it whole; then
    the partial box is all there is, and a part of the face is better
    protected than none.
    """
    if len(cut) and len(kept):
        cut = cut[box_iou(cut.boxes, kept.boxes).max(axis=1) == 0]
    return nms_faces(_concat([kept, cut])) if len(cut) else kept


def _rescale(faces: Faces, sx: float, sy: float, dx: float, dy: float) -> Faces:
    scale = np.array([sx, sy, sx, sy], np.float32)
    shift = np.array([dx, dy, dx, dy], np.float32)
    return Faces(
        faces.boxes * scale + shift,
        faces.landmarks * np.array([sx, sy], np.float32) + np.array([dx, dy], np.float32),
        faces.scores,
        faces.track_ids,
        faces.detected,
    )


def _concat(parts: list[Faces]) -> Faces:
    parts = [p for p in parts if len(p)]
    if not parts:
        return Faces()
    return Faces(
        np.concatenate([p.boxes for p in parts]).astype(np.float32),
        np.concatenate([p.landmarks for p in parts]).astype(np.float32),
        np.concatenate([p.scores for p in parts]).astype(np.float32),
        np.concatenate([p.track_ids for p in parts]),
        np.concatenate([p.detected for p in parts]),
    )
