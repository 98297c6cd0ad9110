"""The append-only JSON Lines manifest of a batch run.

Each line is one JSON object, the record of one input file in one run. A
record is written whole with a single ``write`` on a file opened for append,
then flushed to disk (``fsync``), so a crash loses at most the record being
written; a torn last line is ignored when the manifest is read back, and the
next run starts on a fresh line.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
from pathlib import Path
from typing import Iterable, Optional

from ..errors import OutputError

logger = logging.getLogger(__name__)

#: Bumped when a record's fields change meaning.
MANIFEST_VERSION = 1


def file_sha256(path: str | Path, *, chunk_size: int = 1 << 20) -> str:
    """Hex SHA-256 of a file's bytes, read in ``chunk_size`` pieces."""
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(chunk_size):
            digest.update(block)
    return digest.hexdigest()


def read_manifest(path: str | Path) -> list[dict]:
    """Every complete record of a manifest, in the order written.

    Lines that are not a JSON object (a record torn by a crash) are skipped
    with a warning; a missing manifest reads as no records.
    """
    path = Path(path)
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        return []
    records = []
    lines = data.split(b"\n")
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except ValueError:
            record = None
        if not isinstance(record, dict):
            logger.warning("%s: line %d is not a whole JSON record (torn by an interrupted run?); ignored", path, number)
            continue
        records.append(record)
    return records


def latest_records(records: Iterable[dict]) -> dict[str, dict]:
    """The last record of each input (keyed by its relative path ``input``)."""
    latest: dict[str, dict] = {}
    for record in records:
        key = record.get("input")
        if isinstance(key, str):
            latest[key] = record
    return latest


class ManifestWriter:
    """Append records to a manifest, one durable line each.

    Holds an exclusive lock on the manifest while open (where the platform
    has ``fcntl``), so two runs cannot write into one output folder.

    Parameters
    ----------
    path : str or Path
        The manifest file; created when missing.

    Raises
    ------
    OutputError
        The manifest cannot be opened, or another run holds it.
    """

    def __init__(self, path: str | Path):
        self.path = Path(path)
        try:
            self._fd: Optional[int] = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        except OSError as exc:
            raise OutputError(f"cannot open the manifest ({exc.strerror or exc})", self.path) from exc
        try:
            self._lock()
            self._end_torn_line()
        except BaseException:
            self.close()
            raise
        _fsync_folder(self.path.parent)

    def append(self, record: dict) -> None:
        """Write ``record`` as one JSON line and flush it to disk."""
        if self._fd is None:
            raise ValueError("manifest writer is closed")
        line = json.dumps(record, sort_keys=True, default=str, ensure_ascii=False).encode() + b"\n"
        # One write of the whole line: O_APPEND keeps it contiguous.
        written = os.write(self._fd, line)
        if written != len(line):
            raise OutputError(f"short write to the manifest ({written} of {len(line)} bytes); is the disk full?", self.path)
        os.fsync(self._fd)

    def close(self) -> None:
        if self._fd is not None:
            os.close(self._fd)  # also releases the lock
            self._fd = None

    def __enter__(self) -> "ManifestWriter":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def _lock(self) -> None:
        try:
            import fcntl
        except ImportError:  # Windows: no advisory locks; one run per folder is on the user.
            return
        try:
            fcntl.flock(self._fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError as exc:
            raise OutputError(
                "another vdeid batch run is writing to this output folder; wait for it or choose another -o folder",
                self.path,
            ) from exc

    def _end_torn_line(self) -> None:
        # A crash mid-write can leave a line without its newline; appending
        # straight after it would glue the next record onto the torn one.
        size = os.fstat(self._fd).st_size
        if size == 0:
            return
        with open(self.path, "rb") as f:
            f.seek(size - 1)
            if f.read(1) != b"\n":
                os.write(self._fd, b"\n")
                os.fsync(self._fd)


def _fsync_folder(folder: Path) -> None:
    # Makes a newly created manifest's directory entry durable (POSIX only).
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)
