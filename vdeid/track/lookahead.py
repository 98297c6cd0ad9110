"""Look-ahead buffer: back-fill new tracks, interpolate between detections.

The buffer holds the last ``frames`` frames before they are emitted. While a
frame waits there it can still be changed:

* **Back-fill.** A track first detected at frame t is added to frames
  t-1, t-2, ... still in the buffer (never across a shot cut) at its first
  box moved back with the camera motion. A face that the detector only picks
  up once it is large or unoccluded enough is thus protected before that.
* **Interpolation.** When a track is detected again after frames where it
  was only predicted (a detection gap, or frames the detector skipped with
  ``detect_every > 1``), those frames get boxes interpolated between the two
  detections instead of extrapolated from the first.
* **Shrunken detections.** A detection with less than 75 % of the area of
  the same track's detection on the next frame (moved back with the camera
  motion) is grown about its centre to that box's width and height. The
  tracker widens a detection much smaller than its prediction, but cannot
  catch one that is too small before it has seen a larger one: detector
  boxes of small or blurred faces jump in size from frame to frame.

* **Confirmation.** A track whose first detection scores below
  ``confirm_score`` is *tentative*: MTCNN's false faces (a suit, a hand, a
  shop window) score 0.7-0.9 and are often seen once, while real faces,
  which can score as low, are detected again within a few frames. A
  tentative track's detected boxes are always emitted, but its back-filled
  and bridged boxes only if a second detection confirms the track before
  their frame leaves the buffer; otherwise they are dropped (and logged).

Boxes not seen by the detector are enlarged for uncertainty before they are
emitted: by ``grow_per_frame`` x their size on each side for every frame
away from the nearest detection, at most ``grow_max``. This comes on top of
the protection margin the methods add later (``DetectConfig.box_margin``).
Memory holds ``frames + 1`` frames at most.
"""

from __future__ import annotations

import logging
from collections import deque
from dataclasses import dataclass, field
from typing import Generic, Iterator, TypeVar

import numpy as np

from ..faces import Faces, expand_boxes
from .tracker import _PARTIAL_COVER, Observation, _area

logger = logging.getLogger(__name__)

__all__ = ["Lookahead"]

T = TypeVar("T")

DETECTED, PREDICTED, INTERPOLATED, BACKFILLED = "detected", "predicted", "interpolated", "backfilled"


@dataclass
class _Entry:
    box: np.ndarray  # (4,) float64
    landmarks: np.ndarray  # (5, 2) float64
    score: float
    kind: str
    distance: int  # frames to the nearest detection of this track


@dataclass
class _Slot(Generic[T]):
    item: T
    entries: dict[int, _Entry] = field(default_factory=dict)
    camera: np.ndarray | None = None  # previous frame -> this frame
    cut: bool = False  # this frame starts a new shot
    frame_size: tuple[int, int] | None = None


@dataclass
class _Tentative:
    score: float  # of the track's one detection
    last_push: int  # the last push whose observations held the track
    dropped: int = 0  # undetected boxes left out so far


def _invert(affine: np.ndarray) -> np.ndarray:
    m = np.vstack([affine, [0.0, 0.0, 1.0]])
    return np.linalg.inv(m)[:2]


def _warp_box(box: np.ndarray, affine: np.ndarray) -> np.ndarray:
    corners = np.array([[box[0], box[1], 1.0], [box[2], box[3], 1.0]])
    p = corners @ affine.T
    return np.array([min(p[0, 0], p[1, 0]), min(p[0, 1], p[1, 1]), max(p[0, 0], p[1, 0]), max(p[0, 1], p[1, 1])])


def _warp_points(points: np.ndarray, affine: np.ndarray) -> np.ndarray:
    return points @ affine[:, :2].T + affine[:, 2]


class Lookahead(Generic[T]):
    """Delay frames by ``frames`` to back-fill and interpolate tracks.

    Parameters
    ----------
    frames : int
        Frames held back (``TrackConfig.lookahead_frames``); 0 emits each
        frame at once (no back-fill, no interpolation).
    grow_per_frame, grow_max : float
        Enlargement of undetected boxes per frame away from a detection, and
        its cap, as fractions of the box size on each side.
    confirm_score : float
        A track whose first detection scores below this is bridged and
        back-filled only once a second detection confirms it within the
        buffer (``TrackConfig.confirm_score``). 0, or ``frames`` 0 (no
        buffer to wait in), keeps every undetected box.

    Examples
    --------
    >>> la = Lookahead(8)
    >>> for item, obs in stream:            # doctest: +SKIP
    ...     yield from la.push(item, obs)
    >>> yield from la.flush()               # doctest: +SKIP
    """

    def __init__(
        self, frames: int, *, grow_per_frame: float = 0.04, grow_max: float = 0.5, confirm_score: float = 0.0
    ):
        self.frames = max(0, int(frames))
        self.grow_per_frame = float(grow_per_frame)
        self.grow_max = float(grow_max)
        self.confirm_score = float(confirm_score) if self.frames else 0.0
        self._buffer: deque[_Slot[T]] = deque()
        self._tentative: dict[int, _Tentative] = {}
        self._pushes = 0

    def push(
        self,
        item: T,
        observations: list[Observation],
        *,
        camera: np.ndarray | None = None,
        cut: bool = False,
        frame_size: tuple[int, int] | None = None,
    ) -> Iterator[tuple[T, Faces]]:
        """Add the next frame; yield the frames that leave the buffer.

        Parameters
        ----------
        item : T
            Whatever the caller streams (frame object, image, index).
        observations : list of Observation
            The tracker's output for this frame.
        camera : ndarray of shape (2, 3), optional
            Camera motion from the previous frame to this one.
        cut : bool
            This frame starts a new shot: nothing is back-filled across it.
        frame_size : (int, int), optional
            ``(W, H)``: back-fill stops once a box leaves the frame.

        Yields
        ------
        (T, Faces)
            Frames in input order, with their final faces.
        """
        slot = _Slot(item, camera=camera, cut=cut, frame_size=frame_size)
        for o in observations:
            slot.entries[o.track_id] = _Entry(
                o.box.astype(np.float64),
                o.landmarks.astype(np.float64),
                float(o.score),
                DETECTED if o.detected else PREDICTED,
                int(o.misses),
            )
        self._pushes += 1
        for o in observations:
            self._confirm(o)
            if o.born:
                self._backfill(slot, o.track_id)
            elif o.detected:
                self._widen_shrunken(slot, o.track_id)
                self._interpolate(slot, o.track_id)
        self._buffer.append(slot)
        while len(self._buffer) > self.frames:
            yield self._emit(self._buffer.popleft())
        self._forget_ended()

    def flush(self) -> Iterator[tuple[T, Faces]]:
        """Yield every frame still held (end of stream)."""
        while self._buffer:
            yield self._emit(self._buffer.popleft())
        self._forget_ended(everything=True)

    def _confirm(self, o: Observation) -> None:
        if o.born and o.score < self.confirm_score:
            self._tentative[o.track_id] = _Tentative(float(o.score), self._pushes)
            return
        tentative = self._tentative.get(o.track_id)
        if tentative is None:
            return
        if o.detected:
            del self._tentative[o.track_id]
            logger.debug("track %d confirmed by a second detection", o.track_id)
        else:
            tentative.last_push = self._pushes

    def _forget_ended(self, *, everything: bool = False) -> None:
        # A track the tracker no longer reports can still have boxes in the
        # buffer; it is forgotten once they have all been emitted.
        for track_id, t in list(self._tentative.items()):
            if everything or self._pushes - t.last_push > self.frames:
                del self._tentative[track_id]
                if t.dropped:
                    logger.info(
                        "track %d: one detection (score %.2f), not confirmed by another within %d frames: "
                        "%d bridged or back-filled box(es) left out",
                        track_id, t.score, self.frames, t.dropped,
                    )

    def _backfill(self, slot: _Slot, track_id: int) -> None:
        first = slot.entries[track_id]
        box, lms = first.box, first.landmarks
        newer = slot
        for distance, older in enumerate(reversed(self._buffer), start=1):
            if newer.cut:
                break
            if newer.camera is not None:
                back = _invert(newer.camera)
                box, lms = _warp_box(box, back), _warp_points(lms, back)
            if older.frame_size is not None:
                w, h = older.frame_size
                if box[2] <= 0 or box[3] <= 0 or box[0] >= w or box[1] >= h:
                    break
            if track_id not in older.entries:
                older.entries[track_id] = _Entry(box.copy(), lms.copy(), 0.0, BACKFILLED, distance)
            newer = older

    def _widen_shrunken(self, slot: _Slot, track_id: int) -> None:
        previous = self._buffer[-1].entries.get(track_id) if self._buffer else None
        if previous is None or previous.kind != DETECTED:
            return
        after = slot.entries[track_id].box
        if slot.camera is not None:
            after = _warp_box(after, _invert(slot.camera))
        if _area(previous.box) >= _PARTIAL_COVER * _area(after):
            return
        # Grown in place, not joined with the next box: a fast walker's next
        # box lies elsewhere, and the union would smear along the path.
        centre = (previous.box[:2] + previous.box[2:]) / 2
        half = np.maximum(previous.box[2:] - previous.box[:2], after[2:] - after[:2]) / 2
        previous.box = np.concatenate([centre - half, centre + half])

    def _interpolate(self, slot: _Slot, track_id: int) -> None:
        gap: list[_Slot] = []
        anchor = None
        for older in reversed(self._buffer):
            entry = older.entries.get(track_id)
            if entry is None:
                return
            if entry.kind == DETECTED:
                anchor = entry
                break
            gap.append(older)
        if anchor is None or not gap:
            return
        gap.reverse()
        chain = gap + [slot]  # every frame after the anchor, in order
        end = slot.entries[track_id]
        n = len(chain)
        # Carry both detections through the camera motion to every gap frame,
        # then blend: the pan/zoom is followed exactly, the face's own motion linearly.
        fwd_box, fwd_lms = [anchor.box], [anchor.landmarks]
        for s_ in chain[:-1]:
            m = s_.camera if s_.camera is not None else None
            fwd_box.append(_warp_box(fwd_box[-1], m) if m is not None else fwd_box[-1])
            fwd_lms.append(_warp_points(fwd_lms[-1], m) if m is not None else fwd_lms[-1])
        bwd_box, bwd_lms = [end.box], [end.landmarks]
        for s_ in reversed(chain[1:]):
            m = _invert(s_.camera) if s_.camera is not None else None
            bwd_box.append(_warp_box(bwd_box[-1], m) if m is not None else bwd_box[-1])
            bwd_lms.append(_warp_points(bwd_lms[-1], m) if m is not None else bwd_lms[-1])
        bwd_box.reverse()
        bwd_lms.reverse()
        for k, older in enumerate(gap, start=1):
            a = k / n
            lms = (1 - a) * fwd_lms[k] + a * bwd_lms[k - 1]
            if np.isnan(lms).any():
                lms = older.entries[track_id].landmarks
            older.entries[track_id] = _Entry(
                (1 - a) * fwd_box[k] + a * bwd_box[k - 1], lms, 0.0, INTERPOLATED, min(k, n - k)
            )

    def _emit(self, slot: _Slot) -> tuple[T, Faces]:
        for track_id, t in self._tentative.items():
            entry = slot.entries.get(track_id)
            if entry is not None and entry.kind != DETECTED:
                del slot.entries[track_id]
                t.dropped += 1
        ids = sorted(slot.entries)
        if not ids:
            return slot.item, Faces()
        entries = [slot.entries[i] for i in ids]
        boxes = np.array([e.box for e in entries], np.float32)
        grow = np.array(
            [0.0 if e.kind == DETECTED else min(self.grow_max, self.grow_per_frame * e.distance) for e in entries]
        )
        for j, g in enumerate(grow):
            if g > 0:
                boxes[j] = expand_boxes(boxes[j], float(g))[0]
        return slot.item, Faces(
            boxes,
            np.array([e.landmarks for e in entries], np.float32),
            np.array([e.score for e in entries], np.float32),
            np.array(ids, np.int64),
            np.array([e.kind == DETECTED for e in entries], bool),
        )
