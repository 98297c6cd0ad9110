"""Frame-by-frame face tracker: association, persistent ids, gap bridging.

Each track carries a constant-velocity Kalman filter (:mod:`.kalman`),
moved with the camera when its motion is known (:mod:`.camera_motion`).
Detections are assigned to tracks with the Hungarian solver
(:func:`scipy.optimize.linear_sum_assignment`) on a cost made of the centre
distance in face sizes plus the log size ratio. Distances are normalised by
the face size, not IoU: a 16 px face moving 10 px in a pan has IoU 0 with
its prediction but is only 0.6 face sizes away.

Privacy first: every detection is emitted (matched or new track), and a
track that loses its detection keeps being emitted at its predicted
position for ``bridge_frames`` frames (``detected=False``). A matched
detection that suddenly shrinks inside the prediction (a face half behind
an occluder) is widened to the union of both.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np
from scipy.optimize import linear_sum_assignment

from ..config import TrackConfig
from ..faces import Faces
from .kalman import BoxKalman

logger = logging.getLogger(__name__)

__all__ = ["FaceTracker", "Observation"]

_MAX_SIZE_RATIO = 2.0  # a detection may be at most 2x larger/smaller than the prediction
_INVALID = 1e6
_PARTIAL_COVER = 0.75  # a matched detection covering less of its prediction may be a partial face


@dataclass
class Observation:
    """One track in one frame, as the tracker sees it.

    Attributes
    ----------
    track_id : int
        Persistent id.
    box : ndarray of shape (4,), float32
        ``x0, y0, x1, y1``: the detection, or the prediction when not detected.
    landmarks : ndarray of shape (5, 2), float32
        Detected landmarks, or the last ones moved with the box (NaN if the
        detector gave none).
    score : float
        Detector confidence; 0 when predicted.
    detected : bool
        Whether a detection was matched in this frame.
    misses : int
        Frames since the track's last detection (0 when detected).
    born : bool
        True in the frame where the track starts.
    """

    track_id: int
    box: np.ndarray
    landmarks: np.ndarray
    score: float
    detected: bool
    misses: int
    born: bool = False


class _Track:
    def __init__(self, track_id: int, box: np.ndarray, landmarks: np.ndarray, score: float):
        self.id = track_id
        self.kf = BoxKalman(box)
        self.misses = 0
        self.hits = 1
        self.locked = False
        self.set_detection(box, landmarks, score)

    def set_detection(self, box: np.ndarray, landmarks: np.ndarray, score: float, *, trusted: bool = True) -> None:
        self.box = np.asarray(box, np.float64)
        if trusted or not hasattr(self, "ref_size"):
            # Size of the last whole-face detection: what predictions are sized by.
            self.ref_size = np.array([self.box[2] - self.box[0], self.box[3] - self.box[1]])
        size = np.maximum(self.ref_size, 1e-6)
        # Landmarks relative to the box, so they follow the predicted box.
        self.landmarks_rel = (np.asarray(landmarks, np.float64) - self.box[:2]) / size
        self.score = float(score)

    def predicted_box(self) -> np.ndarray:
        box = self.kf.box
        # Size velocity is noisy, and partial detections shrink the filter's
        # size: never below the last whole-face detection, at most twice it.
        w = np.clip(box[2] - box[0], self.ref_size[0], self.ref_size[0] * 2)
        h = np.clip(box[3] - box[1], self.ref_size[1], self.ref_size[1] * 2)
        cx, cy = (box[0] + box[2]) / 2, (box[1] + box[3]) / 2
        return np.array([cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2])

    def trusted_prediction(self) -> np.ndarray:
        """Predicted centre with the size of the last whole-face detection (for :func:`_guard_partial`)."""
        box = self.kf.box
        cx, cy = (box[0] + box[2]) / 2, (box[1] + box[3]) / 2
        w, h = self.ref_size
        return np.array([cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2])

    def landmarks_for(self, box: np.ndarray) -> np.ndarray:
        return box[:2] + self.landmarks_rel * (box[2:] - box[:2])


def _area(b: np.ndarray) -> float:
    return max(b[2] - b[0], 0.0) * max(b[3] - b[1], 0.0)


def _guard_partial(det: np.ndarray, pred: np.ndarray, *, locked: bool) -> tuple[np.ndarray, bool]:
    """The detection, or its union with the prediction when it looks like part of the face.

    A face sliding behind an occluder is often still detected on its visible
    part, with a box that suddenly shrinks or slides off the face. Real faces
    change size slowly and the prediction follows the camera, so once a
    track's predictions have been confirmed (``locked``), a detection covering
    less than 75 % of the predicted box (sized like the last whole-face
    detection) is widened to the union of both. Ordinary matches cover
    80-98 % of it (benchmarks/aerial_recall.py clips).

    Returns
    -------
    box : ndarray of shape (4,)
        What to emit and update the track with.
    partial : bool
        Whether the detection looked partial (or the prediction was off).
    """
    inter = _area(np.concatenate([np.maximum(det[:2], pred[:2]), np.minimum(det[2:], pred[2:])]))
    partial = inter < _PARTIAL_COVER * _area(pred)
    if partial and locked:
        return np.concatenate([np.minimum(det[:2], pred[:2]), np.maximum(det[2:], pred[2:])]), True
    return det, partial


def _centres_sizes(boxes: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    centres = (boxes[:, :2] + boxes[:, 2:]) / 2
    sizes = np.sqrt(np.clip(boxes[:, 2] - boxes[:, 0], 1e-6, None) * np.clip(boxes[:, 3] - boxes[:, 1], 1e-6, None))
    return centres, sizes


class FaceTracker:
    """Give detections persistent ids and bridge short detection gaps.

    Parameters
    ----------
    config : TrackConfig
        ``bridge_frames`` and ``gate`` are used here.
    frame_size : (int, int), optional
        ``(W, H)``; tracks whose prediction leaves the frame entirely end.

    Examples
    --------
    >>> tracker = FaceTracker(TrackConfig())
    >>> obs = tracker.step(Faces.from_arrays([[10, 10, 40, 40]]))
    >>> obs[0].track_id, obs[0].detected
    (0, True)
    >>> tracker.step(None)[0].detected      # detector not run on this frame
    False
    """

    def __init__(self, config: TrackConfig, *, frame_size: tuple[int, int] | None = None):
        self.config = config
        self.frame_size = frame_size
        self._tracks: list[_Track] = []
        self._next_id = 0

    def reset(self) -> None:
        """End every track (a shot cut); ids keep increasing."""
        if self._tracks:
            logger.debug("ending %d tracks", len(self._tracks))
        self._tracks = []

    def step(self, faces: Faces | None, *, camera: np.ndarray | None = None) -> list[Observation]:
        """Advance one frame.

        Parameters
        ----------
        faces : Faces or None
            This frame's detections; ``None`` when the detector was not run
            on this frame (``detect_every > 1``), as opposed to an empty
            :class:`Faces` (run, nothing found).
        camera : ndarray of shape (2, 3), optional
            Camera motion from the previous frame to this one (previous
            pixels -> current pixels), see :class:`.CameraMotion`.

        Returns
        -------
        list of Observation
            Every live track in this frame, sorted by id.
        """
        for t in self._tracks:
            if camera is not None:
                t.kf.warp(camera)
            t.kf.predict()
            t.misses += 1
        out: list[Observation] = []
        if faces is not None:
            matches, new = self._associate(faces)
            for ti, di in matches:
                t = self._tracks[ti]
                det = faces.boxes[di].astype(np.float64)
                box, partial = _guard_partial(det, t.trusted_prediction(), locked=t.locked)
                # Until a prediction has been confirmed once (velocity known),
                # a lagging prediction is no evidence of a partial face.
                t.locked = t.locked or not partial
                # Motion follows the detections themselves: updating with the
                # union would slow the filter down whenever it lags (a pan
                # speeding up) and keep it lagging.
                t.kf.update(det)
                t.set_detection(box, faces.landmarks[di], faces.scores[di], trusted=box is det)
                t.misses = 0
                t.hits += 1
            for di in new:
                t = _Track(self._next_id, faces.boxes[di], faces.landmarks[di], faces.scores[di])
                self._next_id += 1
                self._tracks.append(t)
                logger.debug("track %d starts", t.id)
            # A track ends only on a frame the detector looked at: between
            # detector runs every track is kept, whatever bridge_frames says.
            alive = []
            for t in self._tracks:
                if t.misses > self.config.bridge_frames:
                    logger.debug("track %d ends after %d frames without detection", t.id, t.misses)
                else:
                    alive.append(t)
            self._tracks = alive
        kept = []
        for t in self._tracks:
            box = t.box if t.misses == 0 else t.predicted_box()
            if t.misses and self._outside(box):
                logger.debug("track %d left the frame", t.id)
                continue
            kept.append(t)
            out.append(
                Observation(
                    t.id,
                    box.astype(np.float32),
                    t.landmarks_for(box).astype(np.float32),
                    t.score if t.misses == 0 else 0.0,
                    t.misses == 0,
                    t.misses,
                    born=t.hits == 1 and t.misses == 0,
                )
            )
        self._tracks = kept
        out.sort(key=lambda o: o.track_id)
        return out

    def _outside(self, box: np.ndarray) -> bool:
        if self.frame_size is None:
            return False
        w, h = self.frame_size
        return bool(box[2] <= 0 or box[3] <= 0 or box[0] >= w or box[1] >= h)

    def _associate(self, faces: Faces) -> tuple[list[tuple[int, int]], list[int]]:
        n_det = len(faces)
        if not self._tracks or n_det == 0:
            return [], list(range(n_det))
        pred = np.stack([t.predicted_box() for t in self._tracks])
        det = faces.boxes.astype(np.float64)
        pc, ps = _centres_sizes(pred)
        dc, ds = _centres_sizes(det)
        dist = np.linalg.norm(pc[:, None] - dc[None], axis=2) / np.maximum(ps[:, None], ds[None])
        ratio = np.abs(np.log(ds[None] / ps[:, None]))
        misses = np.array([t.misses for t in self._tracks], np.float64)
        # Uncertainty grows with the frames since the last detection.
        gate = self.config.gate * (1.0 + 0.5 * (misses - 1.0))
        valid = (dist <= gate[:, None]) & (ratio <= np.log(_MAX_SIZE_RATIO))
        cost = np.where(valid, dist + ratio, _INVALID)
        rows, cols = linear_sum_assignment(cost)
        matches = [(int(r), int(c)) for r, c in zip(rows, cols) if valid[r, c]]
        used = {c for _, c in matches}
        return matches, [d for d in range(n_det) if d not in used]
