"""Progress reporting: the library calls a callback, the CLI draws the bar."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable, Optional


@dataclass
class Progress:
    """One progress update.

    Attributes
    ----------
    stage : str
        What is being counted (``"frames"``, ``"images"``, ``"files"``).
    done : int
        Units finished so far.
    total : int or None
        Expected units, when known.
    info : dict
        Extra counters to show (``faces``, ``fallback``...).
    """

    stage: str
    done: int
    total: Optional[int] = None
    info: dict = field(default_factory=dict)


ProgressCallback = Callable[[Progress], None]


def no_progress(_: Progress) -> None:
    """The default callback: report nothing."""
