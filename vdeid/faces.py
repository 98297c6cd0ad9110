"""The face record that flows from detection through tracking to protection."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

#: Order of the five landmarks everywhere in vdeid (MTCNN's order).
LANDMARK_NAMES = ("left_eye", "right_eye", "nose", "mouth_left", "mouth_right")


@dataclass
class Faces:
    """Faces of one frame.

    Attributes
    ----------
    boxes : ndarray of shape (N, 4), float32
        ``x0, y0, x1, y1`` in frame pixels (columns, rows), not clipped.
    landmarks : ndarray of shape (N, 5, 2), float32
        ``(x, y)`` of the eyes, nose tip and mouth corners, in
        :data:`LANDMARK_NAMES` order. NaN where unknown (bridged faces).
    scores : ndarray of shape (N,), float32
        Detector confidence in [0, 1]; 0 for predicted (bridged) faces.
    track_ids : ndarray of shape (N,), int64
        Persistent id of each face's track, -1 before tracking.
    detected : ndarray of shape (N,), bool
        False where the box was predicted by the tracker rather than seen.
    """

    boxes: np.ndarray = field(default_factory=lambda: np.zeros((0, 4), np.float32))
    landmarks: np.ndarray = field(default_factory=lambda: np.zeros((0, 5, 2), np.float32))
    scores: np.ndarray = field(default_factory=lambda: np.zeros((0,), np.float32))
    track_ids: np.ndarray = field(default_factory=lambda: np.zeros((0,), np.int64))
    detected: np.ndarray = field(default_factory=lambda: np.zeros((0,), bool))

    def __len__(self) -> int:
        return len(self.boxes)

    def __getitem__(self, index) -> "Faces":
        return Faces(
            self.boxes[index],
            self.landmarks[index],
            self.scores[index],
            self.track_ids[index],
            self.detected[index],
        )

    @classmethod
    def from_arrays(cls, boxes, landmarks=None, scores=None) -> "Faces":
        """Build detected faces from plain arrays (track ids unset)."""
        boxes = np.asarray(boxes, np.float32).reshape(-1, 4)
        n = len(boxes)
        if landmarks is None:
            landmarks = np.full((n, 5, 2), np.nan, np.float32)
        if scores is None:
            scores = np.ones(n, np.float32)
        return cls(
            boxes,
            np.asarray(landmarks, np.float32).reshape(n, 5, 2),
            np.asarray(scores, np.float32).reshape(n),
            np.full(n, -1, np.int64),
            np.ones(n, bool),
        )


def expand_boxes(boxes: np.ndarray, margin: float) -> np.ndarray:
    """Grow ``(N, 4)`` boxes by ``margin`` × their size on every side."""
    boxes = np.asarray(boxes, np.float32).reshape(-1, 4)
    w = boxes[:, 2] - boxes[:, 0]
    h = boxes[:, 3] - boxes[:, 1]
    d = np.stack([-w, -h, w, h], axis=1) * margin
    return boxes + d


def box_iou(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Pairwise intersection over union of two sets of boxes.

    Parameters
    ----------
    a : ndarray of shape (N, 4)
    b : ndarray of shape (M, 4)
        ``x0, y0, x1, y1`` boxes.

    Returns
    -------
    ndarray of shape (N, M)
        IoU in [0, 1]; 0 where a pair has no area.
    """
    a = np.asarray(a, np.float32).reshape(-1, 4)
    b = np.asarray(b, np.float32).reshape(-1, 4)
    x0 = np.maximum(a[:, None, 0], b[None, :, 0])
    y0 = np.maximum(a[:, None, 1], b[None, :, 1])
    x1 = np.minimum(a[:, None, 2], b[None, :, 2])
    y1 = np.minimum(a[:, None, 3], b[None, :, 3])
    inter = np.clip(x1 - x0, 0, None) * np.clip(y1 - y0, 0, None)
    area_a = (a[:, 2] - a[:, 0]) * (a[:, 3] - a[:, 1])
    area_b = (b[:, 2] - b[:, 0]) * (b[:, 3] - b[:, 1])
    union = area_a[:, None] + area_b[None, :] - inter
    return np.where(union > 0, inter / np.maximum(union, 1e-9), 0.0)

