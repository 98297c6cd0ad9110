"""Global (camera) motion between consecutive frames.

Drone footage pans and zooms: every face moves together, often by more than
its own size between detections. Estimating the camera motion and moving
each track's state with it (BoT-SORT's "camera motion compensation") keeps
predictions on the faces, so bridged and back-filled boxes stay on target.

The estimate is a 4-parameter similarity (shift, zoom, roll) fitted with
RANSAC to sparse optical flow (Shi-Tomasi corners + pyramidal Lucas-Kanade)
on a small grey copy of the frame; walking people are outliers.
"""

from __future__ import annotations

import logging

import cv2
import numpy as np

logger = logging.getLogger(__name__)

__all__ = ["CameraMotion", "IDENTITY"]

#: The "no motion" affine, (2, 3) float64.
IDENTITY = np.array([[1.0, 0.0, 0.0], [0.0, 1.0, 0.0]])


class CameraMotion:
    """Estimate how the camera moved since the previous frame.

    Parameters
    ----------
    max_side : int
        Frames are shrunk so their longer side is at most this many pixels
        before feature tracking (cost stays ~5 ms at any resolution).
    min_points : int
        Fewer tracked corners than this and the motion is reported as
        identity (flat or dark frames).

    Examples
    --------
    >>> motion = CameraMotion()
    >>> motion.update(frame0)            # doctest: +SKIP
    >>> affine = motion.update(frame1)   # (2, 3): frame0 pixels -> frame1 pixels  # doctest: +SKIP
    """

    def __init__(self, *, max_side: int = 640, min_points: int = 12):
        self.max_side = int(max_side)
        self.min_points = int(min_points)
        self._prev: np.ndarray | None = None
        self._scale = 1.0

    def reset(self) -> None:
        """Forget the previous frame (after a shot cut)."""
        self._prev = None

    def _grey(self, image: np.ndarray) -> np.ndarray:
        h, w = image.shape[:2]
        self._scale = min(1.0, self.max_side / max(h, w))
        if self._scale < 1.0:
            image = cv2.resize(image, (max(1, round(w * self._scale)), max(1, round(h * self._scale))),
                               interpolation=cv2.INTER_AREA)
        if image.dtype != np.uint8:
            image = (image >> 8).astype(np.uint8) if image.dtype == np.uint16 else image.astype(np.uint8)
        return cv2.cvtColor(np.ascontiguousarray(image), cv2.COLOR_RGB2GRAY)

    def update(self, image: np.ndarray) -> np.ndarray:
        """Feed the next frame and return the motion since the previous one.

        Parameters
        ----------
        image : ndarray of shape (H, W, 3)
            RGB frame, uint8 or uint16.

        Returns
        -------
        ndarray of shape (2, 3), float64
            Affine mapping previous-frame pixels ``(x, y, 1)`` to this frame's;
            :data:`IDENTITY` for the first frame or when the estimate fails.
        """
        grey = self._grey(image)
        prev, self._prev = self._prev, grey
        if prev is None or prev.shape != grey.shape:
            return IDENTITY.copy()
        pts = cv2.goodFeaturesToTrack(prev, maxCorners=300, qualityLevel=0.01, minDistance=8, blockSize=5)
        if pts is None or len(pts) < self.min_points:
            return IDENTITY.copy()
        nxt, status, _ = cv2.calcOpticalFlowPyrLK(prev, grey, pts, None, winSize=(21, 21), maxLevel=3)
        ok = status.reshape(-1) == 1
        if ok.sum() < self.min_points:
            return IDENTITY.copy()
        m, inliers = cv2.estimateAffinePartial2D(
            pts[ok], nxt[ok], method=cv2.RANSAC, ransacReprojThreshold=2.0, maxIters=500, confidence=0.99
        )
        if m is None or inliers is None or int(inliers.sum()) < self.min_points:
            return IDENTITY.copy()
        # Back to full-resolution pixels: only the translation scales.
        m = m.astype(np.float64)
        m[:, 2] /= self._scale
        return m
