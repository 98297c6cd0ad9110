"""Write an output file all at once or not at all.

An interrupted protection run must never leave a half-written video that
looks finished (it could hold unprotected frames, or be mistaken for the
protected result), and it must never overwrite its own input.
"""

from __future__ import annotations

import contextlib
import logging
import os
import secrets
from pathlib import Path
from typing import Iterable, Iterator

from ..errors import OutputError

log = logging.getLogger(__name__)


def _same_file(a: Path, b: Path) -> bool:
    """True when two paths name one file (symlinks, ``..``, hard links)."""
    if os.path.realpath(a) == os.path.realpath(b):
        return True
    try:
        return os.path.samefile(a, b)
    except OSError:
        return False


def check_output_path(path: str | Path, *, overwrite: bool = False, inputs: Iterable[str | Path] = ()) -> Path:
    """Refuse an output path that cannot or must not be written.

    Parameters
    ----------
    path : str or Path
        The final output file.
    overwrite : bool
        Allow replacing an existing file (never one of ``inputs``).
    inputs : iterable of str or Path
        Files the run reads; the output may not be any of them.

    Returns
    -------
    Path
        ``path`` as a :class:`~pathlib.Path`.

    Raises
    ------
    OutputError
        The output is an input, exists (without ``overwrite``) or is a folder,
        or its folder is missing or not writable.
    """
    path = Path(path)
    for source in inputs:
        if _same_file(path, Path(source)):
            raise OutputError(
                "output is the input file; choose another output name (inputs are never overwritten)", path
            )
    if path.is_dir():
        raise OutputError("output is a folder; give a file name", path)
    if path.exists() and not overwrite:
        raise OutputError("output already exists; pass --overwrite to replace it", path)
    folder = path.parent if str(path.parent) else Path(".")
    if not folder.is_dir():
        raise OutputError(f"output folder {folder} does not exist; create it first", path)
    if not os.access(folder, os.W_OK | os.X_OK):
        raise OutputError(f"output folder {folder} is not writable; choose another output folder", path)
    return path


@contextlib.contextmanager
def atomic_output(path: str | Path, *, overwrite: bool = False, inputs: Iterable[str | Path] = ()) -> Iterator[Path]:
    """Yield a temporary path that becomes ``path`` only if the block succeeds.

    The temporary file is hidden (leading dot) in the output's folder, so the
    final :func:`os.replace` is atomic, and keeps the output's extension, so
    muxers that guess the format from the name pick the right one. On any
    exception, ``KeyboardInterrupt`` included, it is removed and the output is
    left untouched.

    Parameters
    ----------
    path : str or Path
        The final output file.
    overwrite : bool
        Allow replacing an existing output (never one of ``inputs``).
    inputs : iterable of str or Path
        Files the run reads; the output may not resolve to any of them.

    Yields
    ------
    Path
        Where to write. The file does not exist yet.

    Raises
    ------
    OutputError
        See :func:`check_output_path`; also when the block wrote nothing.

    Examples
    --------
    >>> with atomic_output("out.mp4") as tmp:  # doctest: +SKIP
    ...     write_video(tmp)
    """
    inputs = tuple(inputs)
    path = check_output_path(path, overwrite=overwrite, inputs=inputs)
    tmp = path.with_name(f".{path.stem}.{secrets.token_hex(4)}.vdeid-partial{path.suffix}")
    try:
        yield tmp
        if not tmp.exists():
            raise OutputError("nothing was written", path)
        # Re-check: the output may have appeared while we were working.
        check_output_path(path, overwrite=overwrite, inputs=inputs)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()
        raise
    log.debug("wrote %s", path)
