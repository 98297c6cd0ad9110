"""tqdm bars fed by the library's progress callback."""

from __future__ import annotations

from contextlib import contextmanager
from typing import Iterator, Optional

from tqdm import tqdm

from vdeid.progress import Progress


@contextmanager
def progress_bar(desc: str, *, quiet: bool) -> Iterator:
    """Yield a callback drawing one tqdm bar (or nothing when ``quiet``).

    The bar appears at the first update, so a run that fails while opening
    its input prints only the error line.
    """
    bar: Optional[tqdm] = None

    def update(p: Progress) -> None:
        nonlocal bar
        if quiet:
            return
        if bar is None:
            bar = tqdm(desc=desc, total=p.total, unit=p.stage.rstrip("s"), dynamic_ncols=True)
        if p.total and bar.total != p.total:
            bar.total = p.total
        bar.update(p.done - bar.n)
        if p.info:
            bar.set_postfix(p.info, refresh=False)

    try:
        yield update
    finally:
        if bar is not None:
            bar.close()
