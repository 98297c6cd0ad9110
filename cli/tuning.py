"""Process-wide settings the ``vdeid`` command makes before torch loads."""

from __future__ import annotations

import os


def tune_process() -> None:
    """Make PyTorch's OpenMP threads sleep, not spin, while they wait for work.

    Spinning threads take the time of the decoder's and encoder's threads on
    a few cores, and one descheduled thread stalls every parallel op: a
    1080p blur run took 2.5x the CPU and 3.8x the wall time without
    ``OMP_WAIT_POLICY=PASSIVE`` (docs/performance.md). OpenMP reads the
    variable once, when torch loads, so this runs first; a value the user
    set is kept. Library users set the variable themselves.
    """
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
