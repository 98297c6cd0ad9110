"""Shot-cut detection from colour histograms of consecutive frames.

A track must end at a cut: its predicted box would otherwise be drawn on an
unrelated picture, and look-ahead must not back-fill a face into the
previous shot. Histograms ignore where things are, so a pan or zoom over
the same scene changes them little while a cut to another scene changes
them a lot (PySceneDetect's HistogramDetector idea, on HSV).
"""

from __future__ import annotations

import cv2
import numpy as np

__all__ = ["CutDetector", "frame_histogram", "histogram_distance"]

_BINS = (16, 4, 4)


def frame_histogram(image: np.ndarray, *, width: int = 160) -> np.ndarray:
    """Normalised HSV histogram of a small copy of ``image``.

    Parameters
    ----------
    image : ndarray of shape (H, W, 3)
        RGB frame, uint8 (uint16 is reduced to 8 bits).
    width : int
        Width of the copy the histogram is taken on.

    Returns
    -------
    ndarray of shape (16, 4, 4), float32
        Hue x saturation x value counts summing to 1.
    """
    if image.dtype == np.uint16:
        image = (image >> 8).astype(np.uint8)
    h, w = image.shape[:2]
    if w > width:
        image = cv2.resize(image, (width, max(1, round(h * width / w))), interpolation=cv2.INTER_AREA)
    hsv = cv2.cvtColor(np.ascontiguousarray(image), cv2.COLOR_RGB2HSV)
    hist = cv2.calcHist([hsv], [0, 1, 2], None, list(_BINS), [0, 180, 0, 256, 0, 256])
    return (hist / max(float(hist.sum()), 1.0)).astype(np.float32)


def histogram_distance(a: np.ndarray, b: np.ndarray) -> float:
    """Bhattacharyya distance between two histograms, in [0, 1] (0 = identical)."""
    return float(cv2.compareHist(a, b, cv2.HISTCMP_BHATTACHARYYA))


class CutDetector:
    """Flag frames that start a new shot.

    Parameters
    ----------
    threshold : float
        Histogram distance (Bhattacharyya, in [0, 1]) above which two
        consecutive frames belong to different shots. Pans over one scene
        stay below ~0.15; cuts between scenes are usually above 0.5.

    Examples
    --------
    >>> cuts = CutDetector()
    >>> [cuts.update(f) for f in frames]   # doctest: +SKIP
    [False, False, True, False]
    """

    def __init__(self, threshold: float = 0.4):
        self.threshold = float(threshold)
        self._prev: np.ndarray | None = None
        self.last_distance = 0.0

    def reset(self) -> None:
        """Forget the previous frame."""
        self._prev = None

    def update(self, image: np.ndarray) -> bool:
        """Feed the next frame; True when it starts a new shot (never for the first frame)."""
        hist = frame_histogram(image)
        prev, self._prev = self._prev, hist
        if prev is None:
            self.last_distance = 0.0
            return False
        self.last_distance = histogram_distance(prev, hist)
        return self.last_distance > self.threshold
