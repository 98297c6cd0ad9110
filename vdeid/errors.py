"""Exceptions raised by vdeid.

Every error a user can cause carries the offending path so the CLI can print
one line (``vdeid: error: <path>: <problem>``) without a traceback.
"""

from __future__ import annotations

from pathlib import Path


class VdeidError(Exception):
    """Base class of every error vdeid raises on purpose.

    Parameters
    ----------
    message : str
        What went wrong and, where possible, what to do next.
    path : str or Path, optional
        The file the problem is about; shown first in the one-line message.
    """

    def __init__(self, message: str, path: str | Path | None = None):
        super().__init__(message)
        self.message = message
        self.path = None if path is None else str(path)

    def __str__(self) -> str:
        return f"{self.path}: {self.message}" if self.path else self.message


class InputError(VdeidError, ValueError):
    """The input file is missing, unreadable, not media, corrupt or empty."""


class OutputError(VdeidError, OSError):
    """The output cannot be written (exists, unwritable, same as the input)."""


class ModelError(VdeidError, RuntimeError):
    """A recogniser or detector cannot be built (unknown name, missing weights)."""


class ShapeError(VdeidError, ValueError):
    """A tensor or array does not have the documented shape."""
