"""``process_corpus``: a folder of videos and photos → a protected mirror and a manifest."""

from __future__ import annotations

import logging
import os
import secrets
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Literal, Optional

from ..config import Config
from ..errors import OutputError, VdeidError
from ..progress import Progress, ProgressCallback, no_progress
from .manifest import MANIFEST_VERSION, ManifestWriter, file_sha256, latest_records, read_manifest
from .provenance import model_checksums
from .resume import why_not_done
from .walk import MANIFEST_NAME, Item, collect_items

logger = logging.getLogger(__name__)

Engine = Literal["local", "ray"]


@dataclass
class BatchSummary:
    """What a corpus run did.

    Attributes
    ----------
    ok : int
        Files protected (or copied) in this run.
    resumed : int
        Files left as they were: done by an earlier run with the same
        parameters.
    skipped : int
        Files that are neither video nor photo, not copied.
    failed : int
        Files that could not be protected; ``failures`` says why.
    frames, faces, fallback : int
        Frames (a photo counts as one), face-frames protected and those that
        needed the fallback method, over the files protected in this run.
    seconds : float
        Wall time of the run.
    failures : list of (str, str)
        ``(input path relative to the input folder, error message)``.
    manifest : Path
        The manifest the records were appended to.
    run : str
        This run's id, the ``run`` field of its manifest records.
    """

    ok: int = 0
    resumed: int = 0
    skipped: int = 0
    failed: int = 0
    frames: int = 0
    faces: int = 0
    fallback: int = 0
    seconds: float = 0.0
    failures: list = field(default_factory=list)
    manifest: Optional[Path] = None
    run: str = ""

    @property
    def total(self) -> int:
        return self.ok + self.resumed + self.skipped + self.failed


def process_corpus(
    input_dir: str | Path,
    output_dir: str | Path,
    config: Optional[Config] = None,
    *,
    workers: int = 1,
    engine: Engine = "local",
    ray_address: Optional[str] = None,
    gpus_per_task: Optional[float] = None,
    copy_other: bool = False,
    resume: bool = True,
    progress: ProgressCallback = no_progress,
) -> BatchSummary:
    """Protect every video and photo under ``input_dir`` into a mirror tree.

    Each file's output has the same relative path under ``output_dir``
    (photos change suffix with ``config.encode.image_format``). One record
    per file and run is appended to ``output_dir/manifest.jsonl``; a rerun
    skips files already done with the same inputs, parameters and weights
    (see :mod:`vdeid.batch.resume`). A file that fails is recorded and the
    run goes on.

    Parameters
    ----------
    input_dir : str or Path
        The corpus folder, read recursively. Never modified.
    output_dir : str or Path
        Created if missing. Outputs of files that must be (re)done are
        replaced when the folder already holds a manifest (it is a batch
        output folder); in a folder without one, existing files are only
        replaced with ``config.overwrite``.
    config : Config, optional
        Method and options, as for :func:`vdeid.process_video`.
    workers : int, optional
        Local engine: processes protecting files side by side. (Default: 1)
    engine : {"local", "ray"}, optional
        ``ray`` runs one Ray task per file (needs ``pip install ray``).
    ray_address : str, optional
        Ray cluster address (``"auto"``, ``"ray://HOST:10001"``); None
        starts a local Ray instance.
    gpus_per_task : float, optional
        Ray GPUs per file; defaults to 1 when ``config.device`` is ``"cuda"``,
        else 0.
    copy_other : bool, optional
        Copy files that are neither video nor photo, unchanged (sidecar
        files such as DJI ``.SRT`` hold GPS tracks). (Default: False)
    resume : bool, optional
        Skip files done by an earlier run; False redoes every file.
    progress : callable, optional
        Receives ``Progress("files", done, total, info)`` after each file.

    Returns
    -------
    BatchSummary

    Raises
    ------
    InputError
        ``input_dir`` is not a folder, or is ``output_dir``.
    OutputError
        The output folder or its manifest cannot be written, or another
        run is writing there.
    ModelError
        The recogniser weights the method needs cannot be found.
    """
    config = config or Config()
    started = time.perf_counter()
    if workers < 1:
        raise VdeidError(f"--workers must be at least 1, got {workers}")
    if engine not in ("local", "ray"):
        raise VdeidError(f"unknown engine {engine!r}; choose local or ray")
    if engine == "ray":
        from .ray_engine import import_ray

        import_ray()  # fail before any work when Ray is missing
    items = collect_items(input_dir, output_dir, image_format=config.encode.image_format, copy_other=copy_other)
    models = model_checksums(config) if any(i.kind != "other" for i in items) else []
    out_root = Path(os.path.abspath(output_dir))
    try:
        out_root.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise OutputError(f"cannot create the output folder ({exc.strerror or exc})", out_root) from exc
    manifest_path = out_root / MANIFEST_NAME
    # A folder that already holds a manifest is this tool's: redoing a file
    # may replace its old output. Elsewhere existing files are the user's.
    owned = manifest_path.exists()
    summary = BatchSummary(manifest=manifest_path, run=_run_id())
    with ManifestWriter(manifest_path) as writer:
        _remove_partials(out_root)
        history = read_manifest(manifest_path)
        latest = latest_records(history)
        base = {
            "manifest_version": MANIFEST_VERSION,
            "run": summary.run,
            "vdeid_version": _vdeid_version(),
            "input_root": str(Path(os.path.abspath(input_dir))),
            "method": config.method,
            "config": config.to_dict(),
        }
        total = len(items)
        done = 0

        def emit(item: Item, record: dict) -> None:
            nonlocal done
            full = {**base, **_item_fields(item), "models": models if item.kind != "other" else [], **record}
            full.setdefault("reason", reasons.get(item.rel))
            full["time"] = datetime.now(timezone.utc).isoformat(timespec="seconds")
            writer.append(full)
            _count(summary, item, full)
            done += 1
            progress(
                Progress(
                    "files",
                    done,
                    total,
                    {"ok": summary.ok + summary.resumed, "failed": summary.failed, "faces": summary.faces},
                )
            )

        tasks = []
        reasons: dict[str, str] = {}
        for item, record, reason in _plan(items, latest, config, models, resume=resume):
            if record is not None:
                emit(item, record)
                continue
            overwrite = bool(config.overwrite or owned)
            logger.debug("%s: to do (%s)", item.rel, reason)
            reasons[item.rel] = reason
            tasks.append((item, overwrite))
        if engine == "ray":
            from .ray_engine import run_ray

            gpus = gpus_per_task if gpus_per_task is not None else (1.0 if config.device == "cuda" else 0.0)
            run_ray(tasks, config, emit, address=ray_address, gpus_per_task=gpus)
        else:
            from .runner import run_local

            run_local(tasks, config, emit, workers=workers)
    summary.seconds = time.perf_counter() - started
    return summary


def _plan(items: list[Item], latest: dict, config: Config, models: list[dict], *, resume: bool):
    """Yield ``(item, record or None, reason)``: a ready record for files with nothing to do.

    Resume checks hash files, so they run on a few threads (hashlib
    releases the GIL).
    """
    config_dict = config.to_dict()

    def check(item: Item):
        if item.output is None:
            return item, _skipped_other(item), "not media"
        previous = latest.get(item.rel)
        if not resume or previous is None:
            return item, None, "new" if previous is None else "resume off"
        reason = why_not_done(previous, item, config=config_dict, models=models)
        if reason is None:
            return item, _resumed(previous), "done earlier"
        return item, None, reason

    with ThreadPoolExecutor(max_workers=min(4, os.cpu_count() or 1)) as pool:
        yield from pool.map(check, items)


def _skipped_other(item: Item) -> dict:
    try:
        sha, size = file_sha256(item.source), item.source.stat().st_size
    except OSError:
        sha, size = None, None
    return {
        "status": "skipped",
        "reason": "not a video or photo (pass --copy-other to copy such files)",
        "input_sha256": sha,
        "input_bytes": size,
        "output": None,
        "output_sha256": None,
        "error": None,
    }


def _resumed(previous: dict) -> dict:
    """This run's record for a file an earlier run finished: its results carried forward."""
    keep = (
        "input_sha256", "input_bytes", "output_sha256", "output_bytes", "frames", "faces", "fallback",
        "fallback_reasons", "timings", "notes", "host",
    )
    record = {k: previous.get(k) for k in keep}
    record.update(status="skipped", reason="resumed", resumed_from=previous.get("resumed_from") or previous.get("run"), error=None)
    return record


def _item_fields(item: Item) -> dict:
    return {"input": item.rel, "kind": item.kind, "output": item.output_rel}


def _count(summary: BatchSummary, item: Item, record: dict) -> None:
    status = record.get("status")
    if status == "ok":
        summary.ok += 1
        summary.frames += int(record.get("frames") or 0)
        summary.faces += int(record.get("faces") or 0)
        summary.fallback += int(record.get("fallback") or 0)
    elif status == "failed":
        summary.failed += 1
        summary.failures.append((item.rel, record.get("error") or "unknown error"))
        logger.warning("%s", record.get("error") or f"{item.source}: failed")
    elif record.get("reason") == "resumed":
        summary.resumed += 1
    else:
        summary.skipped += 1


def _remove_partials(out_root: Path) -> None:
    """Delete temporary outputs left by a run that was killed (they are never valid outputs)."""
    for tmp in out_root.rglob(".*.vdeid-partial*"):
        try:
            tmp.unlink()
            logger.info("removed %s, left by an interrupted run", tmp)
        except OSError:
            pass


def _run_id() -> str:
    return datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%SZ") + "-" + secrets.token_hex(3)


def _vdeid_version() -> str:
    from .. import __version__

    return __version__
