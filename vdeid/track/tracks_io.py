"""Face tracks as JSON, for ``--tracks-out`` (inspect, edit) and ``--tracks-in`` (reuse).

File layout (``"format": "vdeid-tracks", "version": 1``)::

    {
      "format": "vdeid-tracks", "version": 1,
      "n_frames": 120, "frame_size": [1920, 1080],
      "tracks": [
        {"id": 0,
         "frames":    [3, 4, 5],
         "boxes":     [[x0, y0, x1, y1], ...],           # frame pixels
         "landmarks": [[[x, y] x 5] or null, ...],        # null: unknown
         "scores":    [0.99, 0.0, 0.98],
         "detected":  [true, false, true],                 # false: bridged/back-filled
         "method":    ["pfgvm", "blur", "pfgvm"],          # what protected it (from a run)
         "iterations": [12, 60, 3],
         "distance":  [0.74, 0.52, 0.73],                  # recogniser distance, or null
         "fallback_reason": [null, "encoder", null]}       # why the fallback shipped, or null
      ]
    }

``method``, ``iterations``, ``distance`` and ``fallback_reason`` are written by
``vdeid process --tracks-out`` (one per face: the method whose pixels shipped,
the fallback's name where the attack missed its target, its attack
iterations, the recogniser's distance to the original where known, and why
the fallback shipped, one of
:data:`~vdeid.methods.base.FALLBACK_REASONS`); :func:`read_tracks` ignores
them.

Floats are written with Python's shortest round-trip repr of the float32
values, so reading a file back gives bit-identical arrays. Within a frame,
faces are ordered by track id (as :func:`~vdeid.track.track_faces` emits
them); unknown (NaN) landmarks are written as ``null``.

The file is meant to be corrected by hand and fed back with ``--tracks-in``:
a reviewer may move boxes, delete tracks, or add one with only ``id``,
``frames`` and ``boxes`` (landmarks then unknown, score 0, not detected).
:func:`read_tracks` refuses entries that would protect nothing (NaN or
inverted boxes, frames out of range) rather than let a face through.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable, Iterator, Sequence

import numpy as np

from ..errors import InputError, OutputError
from ..faces import Faces
from ..methods.base import FaceOutcome

__all__ = ["TrackRecorder", "Tracks", "read_tracks", "write_tracks"]

FORMAT = "vdeid-tracks"
VERSION = 1


@dataclass
class _TrackData:
    frames: list[int] = field(default_factory=list)
    boxes: list[list[float]] = field(default_factory=list)
    landmarks: list[list[list[float]] | None] = field(default_factory=list)
    scores: list[float] = field(default_factory=list)
    detected: list[bool] = field(default_factory=list)
    method: list[str | None] = field(default_factory=list)
    iterations: list[int | None] = field(default_factory=list)
    distance: list[float | None] = field(default_factory=list)
    fallback_reason: list[str | None] = field(default_factory=list)


_OUTCOME_KEYS = ("method", "iterations", "distance", "fallback_reason")


def _f(v) -> float | None:
    # float32 -> Python float is exact; repr then round-trips through JSON. NaN -> null.
    v = float(np.float32(v))
    return None if np.isnan(v) else v


class TrackRecorder:
    """Collect the faces of a stream frame by frame, then save them.

    Parameters
    ----------
    frame_size : (int, int), optional
        ``(W, H)``, stored for reference.

    Examples
    --------
    >>> rec = TrackRecorder(frame_size=(1920, 1080))
    >>> for frame, faces in track_faces(stream, config.track):   # doctest: +SKIP
    ...     rec.add(faces)
    >>> rec.save("tracks.json")                                   # doctest: +SKIP
    """

    def __init__(self, *, frame_size: tuple[int, int] | None = None):
        self.frame_size = frame_size
        self.n_frames = 0
        self._tracks: dict[int, _TrackData] = {}
        self._outcomes = False  # whether any frame came with outcomes

    def add(
        self, faces: Faces, frame_index: int | None = None, outcomes: Sequence[FaceOutcome] | None = None
    ) -> None:
        """Record the faces of the next frame (or of ``frame_index``).

        Parameters
        ----------
        faces : Faces
            The frame's faces, with track ids.
        frame_index : int, optional
            The frame's index; the next one when None.
        outcomes : sequence of FaceOutcome, optional
            What protecting each face did, in the order of ``faces``.

        Raises
        ------
        ValueError
            If a face has no track id (``-1``) or an id repeats in the frame,
            or ``outcomes`` does not have one entry per face.
        """
        index = self.n_frames if frame_index is None else int(frame_index)
        ids = [int(i) for i in faces.track_ids]
        if any(i < 0 for i in ids) or len(set(ids)) != len(ids):
            raise ValueError(f"frame {index}: faces need distinct track ids >= 0 to be saved as tracks, got {ids}")
        if outcomes is not None and len(outcomes) != len(faces):
            raise ValueError(f"frame {index}: {len(outcomes)} outcomes for {len(faces)} faces")
        self._outcomes = self._outcomes or outcomes is not None
        for j in np.argsort(faces.track_ids, kind="stable"):
            t = self._tracks.setdefault(ids[j], _TrackData())
            t.frames.append(index)
            t.boxes.append([_f(v) for v in faces.boxes[j]])
            lm = faces.landmarks[j]
            t.landmarks.append(None if np.isnan(lm).all() else [[_f(x), _f(y)] for x, y in lm])
            t.scores.append(_f(faces.scores[j]))
            t.detected.append(bool(faces.detected[j]))
            o = outcomes[j] if outcomes is not None else None
            t.method.append(None if o is None else o.method)
            t.iterations.append(None if o is None else int(o.iterations))
            t.distance.append(None if o is None or o.distance is None else _f(o.distance))
            t.fallback_reason.append(None if o is None else o.fallback_reason)
        self.n_frames = max(self.n_frames, index + 1)

    def to_json(self) -> dict:
        """The file's content as plain JSON types."""
        keys = ("frames", "boxes", "landmarks", "scores", "detected") + (_OUTCOME_KEYS if self._outcomes else ())
        return {
            "format": FORMAT,
            "version": VERSION,
            "n_frames": self.n_frames,
            "frame_size": list(self.frame_size) if self.frame_size else None,
            "tracks": [
                {"id": tid, **{k: getattr(t, k) for k in keys}}
                for tid, t in sorted(self._tracks.items())
            ],
        }

    def save(self, path: str | Path) -> Path:
        """Write the tracks to ``path`` (atomically: a temporary file is renamed).

        Raises
        ------
        OutputError
            If the file cannot be written.
        """
        path = Path(path)
        tmp = path.with_name(path.name + ".part")
        try:
            with open(tmp, "w") as fh:
                json.dump(self.to_json(), fh, separators=(",", ":"), allow_nan=False)
            os.replace(tmp, path)
        except OSError as ex:
            tmp.unlink(missing_ok=True)
            raise OutputError(
                f"cannot write the tracks file ({ex.strerror or ex}); check the folder exists and is writable", path
            ) from ex
        return path


def write_tracks(path: str | Path, frames: Iterable[Faces], *, frame_size: tuple[int, int] | None = None) -> Path:
    """Save one :class:`Faces` per frame (frame 0 first) as a tracks JSON file."""
    rec = TrackRecorder(frame_size=frame_size)
    for faces in frames:
        rec.add(faces)
    return rec.save(path)


class Tracks:
    """Tracks read from a file: the faces of any frame, by index.

    Attributes
    ----------
    n_frames : int
        Frames the tracks were recorded on.
    frame_size : (int, int) or None
        ``(W, H)`` when recorded.
    """

    def __init__(self, frames: list[Faces], frame_size: tuple[int, int] | None):
        self._frames = frames
        self.n_frames = len(frames)
        self.frame_size = frame_size

    def __len__(self) -> int:
        return self.n_frames

    def faces(self, index: int) -> Faces:
        """Faces of frame ``index``; empty past the recorded frames (a longer video)."""
        if 0 <= index < self.n_frames:
            return self._frames[index]
        return Faces()

    def __iter__(self) -> Iterator[Faces]:
        return iter(self._frames)


def read_tracks(path: str | Path) -> Tracks:
    """Read a file written by :class:`TrackRecorder` / :func:`write_tracks`.

    Raises
    ------
    InputError
        If the file is missing, not JSON, not a vdeid tracks file, or holds
        an invalid entry (non-finite or inverted box, frame out of range,
        repeated track id or frame, lists of different lengths).
    """
    path = Path(path)
    try:
        data = json.loads(path.read_text())
    except OSError as ex:
        raise InputError(f"cannot read the tracks file ({ex.strerror or ex})", path) from ex
    except ValueError as ex:
        raise InputError(f"the tracks file is not valid JSON ({ex})", path) from ex
    if not isinstance(data, dict) or data.get("format") != FORMAT:
        raise InputError("not a vdeid tracks file (no \"format\": \"vdeid-tracks\"); write one with --tracks-out", path)
    if data.get("version") != VERSION:
        raise InputError(f"tracks file version {data.get('version')} is not supported (expected {VERSION})", path)
    try:
        n = int(data["n_frames"])
        if n < 0:
            raise ValueError(f"n_frames is {n}")
        per_frame: list[list[tuple]] = [[] for _ in range(n)]
        seen: set[int] = set()
        for t in data["tracks"]:
            tid = int(t["id"])
            if tid < 0 or tid in seen:
                raise ValueError(f"track id {tid} is negative or used twice")
            seen.add(tid)
            for row in _track_rows(t, n):
                per_frame[row[0]].append((tid, *row[1:]))
        size = data.get("frame_size")
        frame_size = tuple(int(v) for v in size) if size else None
        if frame_size is not None and len(frame_size) != 2:
            raise ValueError(f"frame_size must be [width, height], got {size}")
    except KeyError as ex:
        message = f"malformed tracks file (missing field {ex}); see docs/tracking.md for the layout"
        raise InputError(message, path) from ex
    except (TypeError, ValueError, IndexError) as ex:
        raise InputError(f"malformed tracks file ({type(ex).__name__}: {ex})", path) from ex
    frames = []
    for rows in per_frame:
        rows.sort(key=lambda r: r[0])
        if not rows:
            frames.append(Faces())
            continue
        frames.append(
            Faces(
                np.array([r[1] for r in rows], np.float32).reshape(-1, 4),
                np.stack([r[2] for r in rows]).astype(np.float32),
                np.array([r[3] for r in rows], np.float32),
                np.array([r[0] for r in rows], np.int64),
                np.array([r[4] for r in rows], bool),
            )
        )
    return Tracks(frames, frame_size)


def _track_rows(track: dict, n_frames: int) -> Iterator[tuple]:
    """``(frame, box, landmarks, score, detected)`` of one track entry, checked.

    ``landmarks``, ``scores`` and ``detected`` may be left out of a
    hand-written track (unknown landmarks, score 0, not detected); ``id``,
    ``frames`` and ``boxes`` are required.
    """
    frames = [int(f) for f in track["frames"]]
    count = len(frames)
    boxes = track["boxes"]
    landmarks = track.get("landmarks", [None] * count)
    scores = track.get("scores", [0.0] * count)
    detected = track.get("detected", [False] * count)
    for name, values in (("boxes", boxes), ("landmarks", landmarks), ("scores", scores), ("detected", detected)):
        if len(values) != count:
            raise ValueError(f"track {track['id']}: {len(values)} {name} for {count} frames")
    if len(set(frames)) != count or any(not 0 <= f < n_frames for f in frames):
        raise ValueError(f"track {track['id']}: frames must be distinct and in [0, n_frames={n_frames})")
    for f, box, lm, score, det in zip(frames, boxes, landmarks, scores, detected):
        box = [float(v) for v in box]
        # A NaN or inverted box would protect nothing: refuse it rather than leak the face.
        if len(box) != 4 or not np.isfinite(box).all() or box[2] <= box[0] or box[3] <= box[1]:
            raise ValueError(f"track {track['id']} frame {f}: box {box} is not x0, y0, x1, y1 with x0 < x1, y0 < y1")
        if not isinstance(det, bool):
            raise ValueError(f"track {track['id']} frame {f}: detected must be true or false, got {det!r}")
        # null (whole face or one coordinate) is NaN: unknown.
        points = np.array([[None, None]] * 5 if lm is None else lm, dtype=np.float64).reshape(5, 2)
        yield f, box, points, float(score), det
