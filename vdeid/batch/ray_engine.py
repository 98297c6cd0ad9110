"""The Ray engine: one task per file, spread over a Ray cluster.

Every node must see the input and output folders at the same paths (a shared
filesystem) and have vdeid installed; see docs/batch.md.
"""

from __future__ import annotations

import json
import logging
from collections import deque
from typing import Iterable, Optional

from ..config import Config
from ..errors import VdeidError
from .runner import ResultCallback, Task
from .walk import Item
from .worker import FileProcessor, configure_threads

logger = logging.getLogger(__name__)


def import_ray():
    """The ``ray`` module, or a VdeidError saying how to install it."""
    try:
        import ray
    except ImportError as exc:
        raise VdeidError(
            "--engine ray needs Ray, which is not installed; pip install 'vdeid[ray]' "
            "(or pip install ray), or use --engine local"
        ) from exc
    return ray


def run_ray(
    tasks: Iterable[Task],
    config: Config,
    on_result: ResultCallback,
    *,
    address: Optional[str] = None,
    cpus_per_task: float = 1.0,
    gpus_per_task: float = 0.0,
) -> None:
    """Protect every task's file as a Ray task, calling ``on_result`` as each finishes.

    Parameters
    ----------
    tasks : iterable of (Item, bool)
        Files to protect and whether each may replace an existing output.
    config : Config
        The run's configuration.
    on_result : callable
        Called in this process, in completion order, with ``(item, record)``.
    address : str, optional
        Cluster to join: ``"auto"`` (a ``ray start --head`` on this machine
        or the one ``RAY_ADDRESS`` names) or ``"ray://HOST:10001"``. None
        starts a private local Ray instance for this run. Ignored when Ray
        is already initialised in this process.
    cpus_per_task, gpus_per_task : float, optional
        Ray resources each file needs; the math libraries of a task use its
        CPU share. Use ``gpus_per_task=1`` (or 0.5 to share a GPU) with
        ``device="cuda"``.

    Raises
    ------
    VdeidError
        Ray is not installed or the cluster cannot be reached.
    """
    ray = import_ray()
    started_here = False
    if not ray.is_initialized():
        try:
            ray.init(address=address, include_dashboard=False, logging_level=logging.WARNING)
        except (ConnectionError, RuntimeError, ValueError) as exc:
            raise VdeidError(f"cannot connect to the Ray cluster at {address!r}: {exc}") from exc
        started_here = True
    try:
        remote = ray.remote(process_in_ray).options(num_cpus=cpus_per_task, num_gpus=gpus_per_task)
        config_ref = ray.put(config)
        cluster_cpus = float(ray.cluster_resources().get("CPU", 1))
        # Enough queued to keep every slot busy, few enough that an interrupt loses little.
        limit = max(2, int(2 * cluster_cpus / max(cpus_per_task, 1e-3)))
        _drain(ray, remote, config_ref, deque(tasks), on_result, limit=limit)
    finally:
        if started_here:
            ray.shutdown()


def _drain(ray, remote, config_ref, tasks: deque, on_result: ResultCallback, *, limit: int) -> None:
    in_flight: dict = {}
    try:
        while tasks or in_flight:
            while tasks and len(in_flight) < limit:
                item, overwrite = tasks.popleft()
                in_flight[remote.remote(config_ref, item, overwrite)] = item
            done, _ = ray.wait(list(in_flight), num_returns=1)
            for ref in done:
                item = in_flight.pop(ref)
                try:
                    record = ray.get(ref)
                except ray.exceptions.RayError as exc:
                    # The file's own errors are caught in the task; this is the
                    # task itself dying (node lost, out of memory) after Ray's retries.
                    record = {"status": "failed", "error": f"{item.source}: Ray task failed: {_first_line(exc)}"}
                on_result(item, record)
    except BaseException:
        for ref in in_flight:
            ray.cancel(ref, force=True)
        raise


# Per Ray worker process: one processor per configuration, models built once.
_PROCESSORS: dict[str, FileProcessor] = {}


def process_in_ray(config: Config, item: Item, overwrite: bool) -> dict:
    """Ray task body: protect one file with this worker process's processor."""
    key = json.dumps(config.to_dict(), sort_keys=True, default=str)
    processor = _PROCESSORS.get(key)
    if processor is None:
        import ray

        cpus = ray.get_runtime_context().get_assigned_resources().get("CPU", 1)
        configure_threads(max(1, round(cpus)))
        logging.getLogger("libav").setLevel(logging.ERROR)
        processor = _PROCESSORS[key] = FileProcessor(config)
    return processor(item, overwrite=overwrite)


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return text[-1] if text else type(exc).__name__
