"""tqdm bars fed by the library's progress callback."""

from __future__ import annotations

from contextlib import contextmanager
from typing import Iterator

from tqdm import tqdm

from vdeid.progress import Progress


@contextmanager
def progress_bar(desc: str, *, quiet: bool) -> Iterator:
    """Yield a callback drawing one tqdm bar (or nothing when ``quiet``)."""
    if quiet:
        yield lambda _: None
        return
    bar = tqdm(desc=desc, unit="frame", dynamic_ncols=True, leave=True)

    def update(p: Progress) -> None:
        if p.total and bar.total != p.total:
            bar.total = p.total
        bar.unit = p.stage.rstrip("s")
        bar.update(p.done - bar.n)
        if p.info:
            bar.set_postfix(p.info, refresh=False)

    try:
        yield update
    finally:
        bar.close()
