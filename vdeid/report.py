"""The run report: what was done to a file, written as JSON by ``--report``."""

from __future__ import annotations

import json
import platform
import time
from collections import Counter
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable, Iterator, Optional

import numpy as np

from .methods.base import FaceOutcome


def library_versions() -> dict:
    """Versions of vdeid and the libraries whose behaviour shapes the output."""
    from importlib import metadata

    out = {"python": platform.python_version()}
    for dist in ("vdeid", "torch", "av", "numpy", "facenet-pytorch", "opencv-python-headless", "scikit-image"):
        try:
            out[dist] = metadata.version(dist)
        except metadata.PackageNotFoundError:
            out[dist] = None
    return out


class StageTimer:
    """Accumulates exclusive wall time per pipeline stage.

    Stages nest (pulling a tracked frame pulls a detected one, which pulls a
    decoded one); each second is charged to the innermost running stage
    only, so the stage times add up to the total.
    """

    def __init__(self) -> None:
        self.seconds: Counter = Counter()
        self._stack: list[list] = []

    @contextmanager
    def time(self, stage: str) -> Iterator[None]:
        now = time.perf_counter()
        if self._stack:
            outer = self._stack[-1]
            self.seconds[outer[0]] += now - outer[1]
        self._stack.append([stage, now])
        try:
            yield
        finally:
            now = time.perf_counter()
            name, start = self._stack.pop()
            self.seconds[name] += now - start
            if self._stack:
                self._stack[-1][1] = now

    def wrap(self, stage: str, items: Iterable) -> Iterator:
        """Yield from ``items``, charging the time spent producing each to ``stage``."""
        it = iter(items)
        while True:
            with self.time(stage):
                try:
                    item = next(it)
                except StopIteration:
                    return
            yield item


def fallback_reasons(outcomes: Iterable[FaceOutcome], primary: str) -> Counter:
    """The faces whose pixels came from a method other than ``primary``, counted by reason.

    Keys are :attr:`~vdeid.methods.base.FaceOutcome.fallback_reason` values
    (``"unknown"`` where a method gave none).
    """
    return Counter(o.fallback_reason or "unknown" for o in outcomes if o.method != primary)


@dataclass
class Report:
    """Summary of one protected file.

    Attributes
    ----------
    faces_per_frame : list of int
        Faces protected in each output frame (detected and bridged).
    outcomes : dict
        Counts by the method that produced the shipped pixels.
    fallback : int
        Faces whose primary method did not reach its target (fail closed).
    fallback_reasons : dict
        Those faces counted by why they fell back (the keys of
        :data:`~vdeid.methods.base.FALLBACK_REASONS`).
    iterations_first, iterations_next : list of int
        Attack iterations on a track's first frame and on later frames.
    """

    input: str
    output: str
    config: dict
    device: str = "cpu"
    video: dict = field(default_factory=dict)
    faces_per_frame: list = field(default_factory=list)
    detected_per_frame: list = field(default_factory=list)
    outcomes: Counter = field(default_factory=Counter)
    fallback: int = 0
    fallback_reasons: Counter = field(default_factory=Counter)
    iterations_first: list = field(default_factory=list)
    iterations_next: list = field(default_factory=list)
    timings: dict = field(default_factory=dict)
    notes: list = field(default_factory=list)
    versions: dict = field(default_factory=library_versions)

    _seen_tracks: set = field(default_factory=set, repr=False)

    @property
    def frames(self) -> int:
        return len(self.faces_per_frame)

    @property
    def faces(self) -> int:
        return int(sum(self.faces_per_frame))

    def fallback_breakdown(self) -> str:
        """The fallbacks by reason, most frequent first (``"encoder 10, attack 4"``; empty if none)."""
        return ", ".join(f"{reason} {n}" for reason, n in self.fallback_reasons.most_common())

    def add_outcomes(self, outcomes: Iterable[FaceOutcome], primary: str) -> None:
        """Count one chunk's face outcomes."""
        outcomes = list(outcomes)
        reasons = fallback_reasons(outcomes, primary)
        self.fallback += sum(reasons.values())
        self.fallback_reasons.update(reasons)
        for o in outcomes:
            self.outcomes[o.method] += 1
            if o.reached is None:
                continue
            first = o.track_id < 0 or o.track_id not in self._seen_tracks
            (self.iterations_first if first else self.iterations_next).append(int(o.iterations))
            if o.track_id >= 0:
                self._seen_tracks.add(o.track_id)

    def to_dict(self) -> dict:
        def median(xs: list) -> Optional[float]:
            return float(np.median(xs)) if xs else None

        return {
            "input": self.input,
            "output": self.output,
            "device": self.device,
            "versions": self.versions,
            "config": self.config,
            "video": self.video,
            "frames": self.frames,
            "faces": self.faces,
            "faces_by_method": dict(self.outcomes),
            "fallback": self.fallback,
            "fallback_reasons": dict(self.fallback_reasons),
            "iterations": {
                "median_first_frame": median(self.iterations_first),
                "median_later_frames": median(self.iterations_next),
                "first_frame": self.iterations_first,
                "later_frames": self.iterations_next,
            },
            "timings_s": {k: round(v, 4) for k, v in self.timings.items()},
            "faces_per_frame": self.faces_per_frame,
            "detected_per_frame": self.detected_per_frame,
            "notes": self.notes,
        }

    def write(self, path: str | Path) -> None:
        """Write the report as JSON (atomically)."""
        from .io.atomic import atomic_output

        with atomic_output(path, overwrite=True) as tmp:
            Path(tmp).write_text(json.dumps(self.to_dict(), indent=2, default=str))
