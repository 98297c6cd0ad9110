"""Review frames for ``--preview``: the protected regions, track ids and predicted boxes drawn on.

A reviewer checks the preview for faces without a box, and for boxes the
detector did not see (bridged, interpolated, back-filled), which are drawn in
another colour; wrong tracks are then corrected in the ``--tracks-out`` file
and the video re-rendered with ``--tracks-in``.
"""

from __future__ import annotations

import cv2
import numpy as np

from ..checks import check_shape
from ..faces import Faces, expand_boxes

__all__ = ["DETECTED_COLOR", "PREDICTED_COLOR", "draw_tracks"]

#: RGB (0-255) outline of faces the detector found in this frame.
DETECTED_COLOR = (0, 230, 0)
#: RGB (0-255) outline of faces the tracker supplied: bridged, interpolated or back-filled.
PREDICTED_COLOR = (255, 64, 255)
_TEXT_COLOR = (255, 255, 255)


def draw_tracks(image: np.ndarray, faces: Faces, *, margin: float = 0.0, frame_index: int | None = None) -> np.ndarray:
    """A copy of ``image`` with every face's protected region outlined and labelled.

    Parameters
    ----------
    image : ndarray of shape (H, W, 3)
        RGB frame, uint8 in [0, 255] or uint16 in [0, 65535]. Not modified.
    faces : Faces
        The frame's faces (``track_ids``, ``detected``), boxes before the margin.
    margin : float
        ``DetectConfig.box_margin``: the outline is the box grown by this
        fraction of its size on each side, i.e. the rectangle the method protects.
    frame_index : int, optional
        Written in the top-left corner with the face counts.

    Returns
    -------
    ndarray
        Same shape and dtype as ``image``. Each region gets a rectangle,
        :data:`DETECTED_COLOR` or :data:`PREDICTED_COLOR`, and its track id
        above it (``#7``; ``#7 pred`` for predicted boxes).

    Examples
    --------
    >>> frame = np.zeros((90, 160, 3), np.uint8)
    >>> out = draw_tracks(frame, Faces.from_arrays([[40, 20, 80, 70]]), frame_index=0)
    >>> bool((out[45, 40] == DETECTED_COLOR).all()), bool(frame.any())
    (True, False)
    """
    check_shape(image, ["H", "W", 3], "image")
    h, w = image.shape[:2]
    # One 8-bit coverage layer per colour (OpenCV draws text on 8-bit images
    # only, anti-aliased), blended into a copy of the frame at its own depth.
    layers = {color: np.zeros((h, w), np.uint8) for color in (DETECTED_COLOR, PREDICTED_COLOR, _TEXT_COLOR)}
    thick = max(1, round(min(h, w) / 360))
    font = max(0.35, min(h, w) / 900)
    regions = np.round(expand_boxes(faces.boxes, margin)).astype(np.int64)
    for (x0, y0, x1, y1), tid, seen in zip(regions, faces.track_ids, faces.detected):
        layer = layers[DETECTED_COLOR if seen else PREDICTED_COLOR]
        cv2.rectangle(layer, (int(x0), int(y0)), (int(x1), int(y1)), 255, thick, cv2.LINE_8)
        label = f"#{int(tid)}" + ("" if seen else " pred")
        cv2.putText(layer, label, (int(x0), max(int(y0) - 3 * thick, 10)), cv2.FONT_HERSHEY_SIMPLEX, font, 255, thick)
    if frame_index is not None:
        header = f"frame {frame_index}: {len(faces)} face(s), {int((~faces.detected).sum())} predicted"
        cv2.putText(layers[_TEXT_COLOR], header, (4, int(24 * font) + 4), cv2.FONT_HERSHEY_SIMPLEX, font, 255, thick)
    out = np.array(image, copy=True)
    top = 65535 if out.dtype == np.uint16 else 255
    for color, layer in layers.items():
        drawn = layer > 0
        if drawn.any():
            alpha = layer[drawn, None] / 255.0
            ink = np.array(color, np.float64) * (top / 255)
            out[drawn] = np.round(out[drawn] * (1 - alpha) + ink * alpha).astype(out.dtype)
    return out
