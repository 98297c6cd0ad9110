"""The local engine: files protected in this process or in a pool of processes."""

from __future__ import annotations

import logging
import multiprocessing
import os
from collections import deque
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from concurrent.futures.process import BrokenProcessPool
from typing import Callable, Iterable

from ..config import Config
from ..errors import VdeidError
from .walk import Item
from .worker import FileProcessor, init_pool_worker, run_in_pool_worker

logger = logging.getLogger(__name__)

#: ``(item, overwrite)``: one file to protect and whether it may replace an existing output.
Task = tuple[Item, bool]
ResultCallback = Callable[[Item, dict], None]

#: Message recorded for the files of a pool whose process died.
WORKER_DIED = (
    "the worker process died (crash or out of memory) while this file or one processed beside it "
    "was running; rerun to retry it, with fewer --workers if memory is short"
)


def threads_per_worker(workers: int, cpus: int | None = None) -> int:
    """Math-library threads for each of ``workers`` processes sharing ``cpus`` cores."""
    cpus = cpus or os.cpu_count() or 1
    return max(1, cpus // max(1, workers))


def run_local(tasks: Iterable[Task], config: Config, on_result: ResultCallback, *, workers: int = 1) -> None:
    """Protect every task's file, calling ``on_result(item, record)`` as each finishes.

    Parameters
    ----------
    tasks : iterable of (Item, bool)
        Files to protect and whether each may replace an existing output.
    config : Config
        The run's configuration.
    on_result : callable
        Called in this process, in completion order, with the worker's
        record (see :class:`~vdeid.batch.worker.FileProcessor`).
    workers : int, optional
        1 runs in this process; more start that many processes (``spawn``),
        each with ``cpu_count // workers`` math threads and its own models.
        At most two files per worker are handed out ahead, so an interrupt
        loses little work. (Default: 1)
    """
    tasks = deque(tasks)
    if workers <= 1:
        processor = FileProcessor(config)
        while tasks:
            item, overwrite = tasks.popleft()
            on_result(item, processor(item, overwrite=overwrite))
        return
    context = multiprocessing.get_context("spawn")
    threads = threads_per_worker(workers)
    level = logging.getLogger("vdeid").getEffectiveLevel()
    while tasks:
        # A pool whose process died is broken for good: the rest go to a new one.
        pool = ProcessPoolExecutor(workers, mp_context=context, initializer=init_pool_worker, initargs=(config, threads, level))
        left = len(tasks)
        try:
            _drain(pool, tasks, on_result, limit=2 * workers)
        except BaseException:
            _stop_now(pool)
            raise
        pool.shutdown(wait=True)
        if tasks and len(tasks) == left:
            raise VdeidError("worker processes keep dying before taking any file; try --workers 1 to see why")


def _stop_now(pool: ProcessPoolExecutor) -> None:
    """Cancel queued files and end the workers at once (Ctrl-C must not wait for a long video).

    Killing a worker mid-file is safe: outputs are renamed into place only
    when complete, and the next run deletes the temporary file.
    """
    processes = list((getattr(pool, "_processes", None) or {}).values())
    pool.shutdown(wait=False, cancel_futures=True)
    for process in processes:
        if process.is_alive():
            process.terminate()
    for process in processes:
        process.join(timeout=5)


def _drain(pool: ProcessPoolExecutor, tasks: deque, on_result: ResultCallback, *, limit: int) -> None:
    """Feed ``tasks`` to ``pool`` until done or the pool breaks."""
    in_flight: dict[Future, Task] = {}
    while tasks or in_flight:
        while tasks and len(in_flight) < limit:
            task = tasks.popleft()
            try:
                in_flight[pool.submit(run_in_pool_worker, *task)] = task
            except BrokenProcessPool:
                tasks.appendleft(task)
                break
        if not in_flight:
            return  # broken before anything was handed out: the caller starts a new pool
        done, _ = wait(in_flight, return_when=FIRST_COMPLETED)
        broken = False
        for future in done:
            item, _ = in_flight.pop(future)
            try:
                record = future.result()
            except BrokenProcessPool:
                broken = True
                record = {"status": "failed", "error": f"{item.source}: {WORKER_DIED}"}
            on_result(item, record)
        if broken:
            for future, (item, _) in list(in_flight.items()):
                on_result(item, {"status": "failed", "error": f"{item.source}: {WORKER_DIED}"})
            return
