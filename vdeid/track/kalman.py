"""Constant-velocity Kalman filter on one face box.

The state is ``(cx, cy, w, h, vx, vy, vw, vh)`` in frame pixels (per
frame for the velocities); measurements are detected boxes. Noise scales
with the face size, as in ByteTrack/BoT-SORT, so a 16 px face and a 400 px
face are tracked with the same relative confidence.
"""

from __future__ import annotations

import numpy as np

__all__ = ["BoxKalman", "box_to_state", "state_to_box"]

# Standard deviations as fractions of the face size (ByteTrack's values).
_STD_POSITION = 1.0 / 20
_STD_VELOCITY = 1.0 / 160

_F = np.eye(8)
_F[:4, 4:] = np.eye(4)
_H = np.eye(4, 8)


def box_to_state(box: np.ndarray) -> np.ndarray:
    """``x0, y0, x1, y1`` -> ``cx, cy, w, h`` (float64)."""
    x0, y0, x1, y1 = (float(v) for v in box)
    return np.array([(x0 + x1) / 2, (y0 + y1) / 2, x1 - x0, y1 - y0])


def state_to_box(state: np.ndarray) -> np.ndarray:
    """``cx, cy, w, h, ...`` -> ``x0, y0, x1, y1`` (float64)."""
    cx, cy, w, h = state[:4]
    return np.array([cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2])


class BoxKalman:
    """Kalman filter of one box moving at constant velocity.

    Parameters
    ----------
    box : ndarray of shape (4,)
        First detection, ``x0, y0, x1, y1`` in frame pixels.
    """

    def __init__(self, box: np.ndarray):
        z = box_to_state(box)
        self.mean = np.concatenate([z, np.zeros(4)])
        s = self._size()
        std = np.concatenate([np.full(4, 2 * _STD_POSITION * s), np.full(4, 10 * _STD_VELOCITY * s)])
        self.cov = np.diag(std**2)

    def _size(self) -> float:
        return max(float(max(self.mean[2], self.mean[3])), 1.0)

    @property
    def box(self) -> np.ndarray:
        """Current estimate, ``x0, y0, x1, y1`` (float64)."""
        return state_to_box(self.mean)

    def warp(self, affine: np.ndarray) -> None:
        """Move the state with the camera: ``affine`` (2, 3) maps last frame's pixels to this frame's."""
        a = np.asarray(affine, np.float64)
        lin = a[:, :2]
        scale = float(np.sqrt(abs(np.linalg.det(lin))))
        self.mean[:2] = lin @ self.mean[:2] + a[:, 2]
        self.mean[4:6] = lin @ self.mean[4:6]
        self.mean[[2, 3, 6, 7]] *= scale
        t = np.eye(8)
        t[:2, :2] = lin
        t[4:6, 4:6] = lin
        t[[2, 3, 6, 7], [2, 3, 6, 7]] = scale
        self.cov = t @ self.cov @ t.T

    def predict(self) -> None:
        """Advance one frame."""
        s = self._size()
        q = np.concatenate([np.full(4, _STD_POSITION * s), np.full(4, _STD_VELOCITY * s)]) ** 2
        self.mean = _F @ self.mean
        self.cov = _F @ self.cov @ _F.T + np.diag(q)

    def update(self, box: np.ndarray) -> None:
        """Correct the state with a detected box ``x0, y0, x1, y1``."""
        s = self._size()
        r = np.diag(np.full(4, _STD_POSITION * s) ** 2)
        innovation = box_to_state(box) - _H @ self.mean
        pht = self.cov @ _H.T
        gain = np.linalg.solve((_H @ pht + r).T, pht.T).T
        self.mean = self.mean + gain @ innovation
        self.cov = (np.eye(8) - gain @ _H) @ self.cov
