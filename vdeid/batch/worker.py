"""Protect one corpus file and describe what happened, in any process.

The same :class:`FileProcessor` runs in the calling process (one worker),
in each process of a local pool, and in each Ray worker; it builds the photo
detector and method once and reuses them for every photo it is given.
"""

from __future__ import annotations

import logging
import os
import shutil
import socket
import time
from dataclasses import replace
from typing import Optional

from ..config import Config
from ..errors import VdeidError
from ..progress import ProgressCallback, no_progress
from ..report import fallback_reasons
from .manifest import file_sha256
from .walk import Item

logger = logging.getLogger(__name__)


def configure_threads(threads: int) -> None:
    """Cap the math libraries of this process at ``threads`` threads.

    N workers on one machine each using every core would fight over them
    (oversubscription makes the whole run slower), so each gets its share.
    """
    threads = max(1, int(threads))
    os.environ["OMP_NUM_THREADS"] = str(threads)
    import torch

    torch.set_num_threads(threads)
    try:
        torch.set_num_interop_threads(threads)
    except RuntimeError:
        pass  # Only settable before the first parallel op; the intra-op cap matters most.
    try:
        import cv2

        cv2.setNumThreads(threads)
    except ImportError:
        pass


class FileProcessor:
    """Protects corpus files with one configuration.

    Parameters
    ----------
    config : Config
        Method and options; ``overwrite`` is decided per file by the caller.
    """

    def __init__(self, config: Config):
        self.config = config
        self._protector = None

    def __call__(self, item: Item, *, overwrite: bool = False, progress: ProgressCallback = no_progress) -> dict:
        """Protect (or copy) ``item`` and return the worker's half of its manifest record.

        Never raises for a bad file: the error goes into the record
        (``status="failed"``, ``error``) so the run goes on. Interrupts
        (``KeyboardInterrupt``) propagate.

        Returns
        -------
        dict
            ``status``, ``error``, ``input_sha256``, ``input_bytes``,
            ``output_sha256``, ``output_bytes``, ``frames``, ``faces``,
            ``fallback``, ``fallback_reasons``, ``timings`` (seconds), ``notes``,
            ``host``, ``pid``,
            ``torch_threads``.
        """
        started = time.perf_counter()
        record: dict = {
            "status": "failed",
            "error": None,
            "input_sha256": None,
            "input_bytes": None,
            "output_sha256": None,
            "output_bytes": None,
            "frames": 0,
            "faces": 0,
            "fallback": 0,
            "fallback_reasons": {},
            "timings": {},
            "notes": [],
            "host": socket.gethostname(),
            "pid": os.getpid(),
            # Float reductions depend on the thread count, so outputs are
            # bit-identical only between runs with the same count.
            "torch_threads": _torch_threads(),
        }
        try:
            if item.conflict:
                raise VdeidError(item.conflict, item.source)
            record["input_bytes"] = item.source.stat().st_size
            record["input_sha256"] = file_sha256(item.source)
            item.output.parent.mkdir(parents=True, exist_ok=True)
            if item.kind == "video":
                self._video(item, overwrite, progress, record)
            elif item.kind == "photo":
                self._photo(item, overwrite, record)
            else:
                self._copy(item, overwrite)
            record["output_bytes"] = item.output.stat().st_size
            record["output_sha256"] = file_sha256(item.output)
            record["status"] = "ok"
        except VdeidError as exc:
            record["error"] = str(exc)
        except OSError as exc:
            record["error"] = f"{item.source}: {exc.strerror or exc}"
        except Exception as exc:  # noqa: BLE001 -- one bad file must not stop a corpus run
            logger.debug("unexpected failure on %s", item.source, exc_info=True)
            record["error"] = f"{item.source}: unexpected {type(exc).__name__}: {exc}"
        record["timings"]["total"] = round(time.perf_counter() - started, 4)
        return record

    def _video(self, item: Item, overwrite: bool, progress: ProgressCallback, record: dict) -> None:
        from ..pipeline import process_video

        report = process_video(item.source, item.output, replace(self.config, overwrite=overwrite), progress=progress)
        record.update(
            frames=report.frames,
            faces=report.faces,
            fallback=report.fallback,
            fallback_reasons=dict(report.fallback_reasons),
            notes=list(report.notes),
            timings={k: round(v, 4) for k, v in report.timings.items()},
        )

    def _photo(self, item: Item, overwrite: bool, record: dict) -> None:
        from ..io.images import read_image, write_image

        started = time.perf_counter()
        protector = self._image_protector()
        result = protector(read_image(item.source))
        protected = time.perf_counter()
        reasons = fallback_reasons(result.outcomes, protector.method.name)
        write_image(
            item.output,
            result.image,
            format=self.config.encode.image_format,
            quality=self.config.encode.jpeg_quality,
            source_suffix=item.source.suffix,
            overwrite=overwrite,
            inputs=(item.source,),
        )
        record.update(
            frames=1,
            faces=len(result.faces),
            fallback=sum(reasons.values()),
            fallback_reasons=dict(reasons),
            timings={"protect": round(protected - started, 4), "encode": round(time.perf_counter() - protected, 4)},
        )

    def _copy(self, item: Item, overwrite: bool) -> None:
        from ..io.atomic import atomic_output

        with atomic_output(item.output, overwrite=overwrite, inputs=(item.source,)) as tmp:
            shutil.copyfile(item.source, tmp)

    def _image_protector(self):
        if self._protector is None:
            from ..photos import ImageProtector

            self._protector = ImageProtector(self.config)
        return self._protector


def _torch_threads() -> int:
    import torch

    return torch.get_num_threads()


# One processor per pool process, built by the pool's initializer.
_PROCESSOR: Optional[FileProcessor] = None


def init_pool_worker(config: Config, threads: int, log_level: int = logging.WARNING) -> None:
    """``ProcessPoolExecutor`` initializer: cap threads, log like the parent, build the processor."""
    global _PROCESSOR
    configure_threads(threads)
    # A spawned process starts with no logging set up; show warnings the way the CLI does.
    logging.basicConfig(level=log_level, format="vdeid: %(message)s")
    logging.getLogger("libav").setLevel(logging.ERROR)
    _PROCESSOR = FileProcessor(config)


def run_in_pool_worker(item: Item, overwrite: bool) -> dict:
    """Process one item with this pool process's :class:`FileProcessor`."""
    if _PROCESSOR is None:
        raise RuntimeError("init_pool_worker was not run in this process")
    return _PROCESSOR(item, overwrite=overwrite)
