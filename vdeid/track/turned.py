"""Wider boxes for faces turned sideways.

MTCNN's box of a face turned towards profile stops short of the side the nose
points to: nose tip, nostrils and lips reach past it. An independent detector
(dlib HOG, ``benchmarks/independent_coverage.py``) puts up to 38 % of such a
face outside the box plus ``DetectConfig.box_margin``, and the feathered
ellipse of the methods then only partly replaces the nose and mouth.

How far a face is turned shows in its landmarks: the nose tip moves sideways
from the midpoint of the eyes, by at most about 5 % of the box width on
frontal faces and by 15-27 % in near profile. The box's edge on the nose's
side moves out by :data:`GAIN` times the offset beyond
:data:`FRONTAL_OFFSET`, at most :data:`MAX_WIDEN` box widths; frontal faces
and faces without landmarks keep their box. The constants were chosen on the
two clips of ``../shared/data/videos`` with turned faces (docs/tracking.md),
a little above the smallest gain that covers their HOG faces.
"""

from __future__ import annotations

import numpy as np

from ..faces import Faces

__all__ = ["FRONTAL_OFFSET", "GAIN", "MAX_WIDEN", "widen_turned_boxes", "widen_turned_faces"]

#: Nose offset from the eyes' midpoint, in box widths, still taken as frontal.
FRONTAL_OFFSET = 0.03
#: Box widths added on the nose's side per box width of offset beyond FRONTAL_OFFSET.
GAIN = 3.0
#: Most a box is widened, in box widths (landmarks far off the face must not blow it up).
MAX_WIDEN = 1.0


def widen_turned_boxes(boxes: np.ndarray, landmarks: np.ndarray) -> np.ndarray:
    """Boxes widened towards the nose for faces turned sideways.

    Parameters
    ----------
    boxes : ndarray of shape (N, 4)
        ``x0, y0, x1, y1`` in frame pixels.
    landmarks : ndarray of shape (N, 5, 2)
        ``(x, y)`` in :data:`vdeid.faces.LANDMARK_NAMES` order; a face with
        any NaN landmark keeps its box.

    Returns
    -------
    boxes : ndarray of shape (N, 4), float32
        A copy; only ``x0`` (nose to the left) or ``x1`` (nose to the right)
        of turned faces moves outwards, never inwards.
    """
    out = np.array(boxes, np.float32).reshape(-1, 4)
    lm = np.asarray(landmarks, np.float64).reshape(len(out), 5, 2)
    known = np.isfinite(lm).all(axis=(1, 2))
    width = np.maximum(out[:, 2].astype(np.float64) - out[:, 0], 1e-6)
    offset = np.zeros(len(out))
    offset[known] = (lm[known, 2, 0] - (lm[known, 0, 0] + lm[known, 1, 0]) / 2) / width[known]
    widen = np.minimum(GAIN * np.maximum(np.abs(offset) - FRONTAL_OFFSET, 0.0), MAX_WIDEN) * width
    out[:, 0] -= np.where(offset < 0, widen, 0.0).astype(np.float32)
    out[:, 2] += np.where(offset > 0, widen, 0.0).astype(np.float32)
    return out


def widen_turned_faces(faces: Faces) -> Faces:
    """``faces`` with :func:`widen_turned_boxes` applied; everything else is shared."""
    return Faces(
        widen_turned_boxes(faces.boxes, faces.landmarks), faces.landmarks, faces.scores, faces.track_ids, faces.detected
    )
