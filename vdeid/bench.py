"""Throughput measurements behind ``vdeid bench``: the pipeline per stage, and the attack kernel.

:func:`bench_pipeline` protects one video with :func:`vdeid.process_video`
(output to a temporary folder) and turns its stage timings into rates;
:func:`bench_kernel` times the attack's inner loop (P-FGVM steps, each a
forward and a backward pass through the differentiable alignment and the
dlib network, as :mod:`vdeid.engine` runs them) at several batch sizes.
Both also record peak memory and, on CUDA, GPU utilisation.
"""

from __future__ import annotations

import logging
import os
import shutil
import subprocess
import tempfile
import threading
import time
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Optional, Sequence

import numpy as np
import torch

from .config import Config, resolve_device
from .progress import ProgressCallback, no_progress

logger = logging.getLogger(__name__)

__all__ = ["PipelineBench", "KernelBench", "bench_pipeline", "bench_kernel", "host_info"]

#: Side of the context crops the kernel benchmark attacks: a 100 px face
#: grown by ``vdeid.engine.CONTEXT`` on each side. The recogniser always sees
#: a 150x150 chip, so the crop size changes little.
KERNEL_CROP = 200

# Landmarks of a frontal 100 px face centred in a KERNEL_CROP crop
# (eyes, nose tip, mouth corners; x, y in crop pixels).
_KERNEL_LANDMARKS = ((80.0, 90.0), (120.0, 90.0), (100.0, 112.0), (84.0, 132.0), (116.0, 132.0))

# Stages in pipeline order; others the report may add come after them.
_STAGE_ORDER = ("decode", "wait_decode", "detect", "track", "wait_detect", "protect", "wait_encode", "encode", "finish")


@dataclass
class PipelineBench:
    """End-to-end and per-stage figures of one :func:`vdeid.process_video` run.

    Attributes
    ----------
    stages : dict
        Per stage: ``seconds``, ``frames_per_s`` and ``faces_per_s``
        (``None`` where the stage took no time). ``decode``, ``detect`` with
        ``track``, and ``encode`` run on their own threads, overlapping the
        others, and are measured there; ``wait_decode`` (the detection
        thread's), ``wait_detect`` and ``wait_encode`` (the main thread's)
        are the waits for them. ``end_to_end`` is the wall time of the whole call.
    cpu_seconds : float
        User + system CPU time of this process during the run (all threads);
        steadier than wall time on a shared machine.
    attack_iterations : int
        Attack iterations summed over every attacked face.
    attack_face_iterations_per_s : float or None
        ``attack_iterations`` over the ``protect`` stage's seconds (which
        also includes reference embeddings, verification and fallbacks).
    gpu_utilisation : float or None
        Mean GPU utilisation in percent, sampled during the run; None where
        it cannot be measured (CPU runs, no NVML or ``nvidia-smi``).
    peak_rss_bytes : int
        Peak resident memory of this process during the run (over its whole
        life where the OS cannot reset the peak).
    peak_cuda_bytes : int or None
        ``torch.cuda.max_memory_allocated`` during the run on CUDA.
    """

    video: str
    method: str
    device: str
    width: int
    height: int
    frames: int
    faces: int
    stages: dict
    cpu_seconds: float
    attack_iterations: int
    attack_face_iterations_per_s: Optional[float]
    gpu_utilisation: Optional[float]
    peak_rss_bytes: int
    peak_cuda_bytes: Optional[int]

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass
class KernelBench:
    """Attack-kernel throughput at one batch size.

    Attributes
    ----------
    batch : int
        Faces per forward/backward pass.
    iterations : int
        Attack steps timed (after one untimed warm-up step).
    seconds : float
        Wall time of the timed steps.
    face_iterations_per_s : float
        ``batch * iterations / seconds``.
    peak_rss_bytes, peak_cuda_bytes, gpu_utilisation
        As in :class:`PipelineBench`, for this batch size alone.
    """

    batch: int
    iterations: int
    seconds: float
    face_iterations_per_s: float
    peak_rss_bytes: int
    peak_cuda_bytes: Optional[int] = None
    gpu_utilisation: Optional[float] = None
    crop: int = KERNEL_CROP
    recognizer: str = "dlib"
    device: str = "cpu"

    def to_dict(self) -> dict:
        return asdict(self)


def host_info(device: str) -> dict:
    """What the figures were measured on: CPU cores, threads, GPU, library versions."""
    from .report import library_versions

    info = {
        "cpu": _cpu_model(),
        "cpu_cores": os.cpu_count(),
        "torch_threads": torch.get_num_threads(),
        "device": device,
        "gpu": torch.cuda.get_device_name() if device == "cuda" else None,
        "load_average": list(os.getloadavg()) if hasattr(os, "getloadavg") else None,
        "versions": library_versions(),
    }
    return info


def bench_pipeline(
    video: str | Path,
    config: Optional[Config] = None,
    *,
    progress: ProgressCallback = no_progress,
) -> PipelineBench:
    """Protect ``video`` once (output discarded) and measure it.

    Parameters
    ----------
    video : str or Path
        Any video :func:`vdeid.process_video` accepts.
    config : Config, optional
        Method, device and the other options, as for a real run.
    progress : callable, optional
        Passed on to :func:`vdeid.process_video`.

    Returns
    -------
    PipelineBench
    """
    from .pipeline import process_video

    config = replace(config or Config(), overwrite=True)
    device = resolve_device(config.device)
    with tempfile.TemporaryDirectory(prefix="vdeid-bench-") as tmp:
        out = Path(tmp) / f"bench{Path(video).suffix or '.mp4'}"
        with _Measure(device) as measure:
            report = process_video(video, out, config, progress=progress)
    timings = dict(report.timings)
    total = timings.pop("total", measure.seconds)
    names = [s for s in _STAGE_ORDER if s in timings] + sorted(set(timings) - set(_STAGE_ORDER))
    stages = {name: _rates(timings[name], report.frames, report.faces) for name in names}
    stages["end_to_end"] = _rates(total, report.frames, report.faces)
    iterations = int(sum(report.iterations_first) + sum(report.iterations_next))
    protect = timings.get("protect", 0.0)
    return PipelineBench(
        video=str(video),
        method=config.method,
        device=device,
        width=int(report.video.get("width", 0)),
        height=int(report.video.get("height", 0)),
        frames=report.frames,
        faces=report.faces,
        stages=stages,
        cpu_seconds=measure.cpu_seconds,
        attack_iterations=iterations,
        attack_face_iterations_per_s=iterations / protect if iterations and protect > 0 else None,
        gpu_utilisation=measure.gpu_utilisation,
        peak_rss_bytes=measure.peak_rss,
        peak_cuda_bytes=measure.peak_cuda,
    )


def bench_kernel(
    batches: Sequence[int] = (1, 16, 64, 256),
    *,
    config: Optional[Config] = None,
    iterations: int = 3,
) -> list[KernelBench]:
    """Face-iterations per second of the P-FGVM step against dlib, per batch size.

    Each step is what :class:`vdeid.engine.AdversarialMethod` runs per
    iteration: compression proxy, jittered landmarks, differentiable
    alignment (with the shape-predictor refinement) and the dlib ResNet
    forward, then the backward pass to the crop pixels and the update.
    Crops are random ``KERNEL_CROP`` squares (the cost does not depend on
    the content); every face takes every step (no early exit).

    Parameters
    ----------
    batches : sequence of int
        Batch sizes to time.
    config : Config, optional
        ``device`` and the ``attack`` options (alpha, lam, margin, jitter,
        compression, precision, cuda_graphs) as the engine uses them.
    iterations : int
        Timed steps per batch size, after one untimed warm-up step.

    Returns
    -------
    list of KernelBench
        One per batch size, in the given order.
    """
    from .attacks import DodgeObjective, create_attack
    from .attacks.transforms import CompressionProxy
    from .engine import attack_precision, use_cuda_graphs
    from .recognizers import create_recognizers

    config = config or Config()
    device = resolve_device(config.device)
    cfg = config.attack
    recognizer = create_recognizers("dlib", device)[0]
    if cfg.cuda_graphs:
        use_cuda_graphs([recognizer])
    gen = torch.Generator().manual_seed(cfg.seed)
    out = []
    for batch in batches:
        batch = int(batch)
        crops = torch.rand(batch, 3, KERNEL_CROP, KERNEL_CROP, generator=gen).to(device)
        landmarks = torch.tensor(_KERNEL_LANDMARKS, device=device).expand(batch, 5, 2).contiguous()
        with torch.no_grad():
            reference = recognizer(crops, landmarks)

        def attack(steps: int):
            objective = DodgeObjective(
                recognizer,
                landmarks,
                reference=reference,
                margin=cfg.margin,
                jitter=cfg.jitter * 100.0,  # the engine scales jitter by the face size (100 px here)
                seed=cfg.seed,
                transform=CompressionProxy() if cfg.compression else None,
            )
            return create_attack(
                "pfgvm", objective, alpha=cfg.alpha, lam=cfg.lam, calibrate=True,
                steps=steps, early_stop=False, levels=255,
            )

        with attack_precision(cfg, device):
            attack(1)(crops)  # warm-up: allocator, oneDNN/cuDNN algorithm choice
            with _Measure(device) as measure:
                # A run of n steps makes n forward+backward passes plus one final
                # forward; timing n+1 and 1 steps and subtracting leaves n steps.
                attack(iterations + 1)(crops)
                measure.lap()
                attack(1)(crops)
        seconds = measure.laps[0] - (measure.seconds - measure.laps[0])
        if seconds <= 0:  # timing noise larger than a step: keep the upper bound
            seconds = measure.laps[0]
        out.append(
            KernelBench(
                batch=batch,
                iterations=int(iterations),
                seconds=seconds,
                face_iterations_per_s=batch * iterations / seconds,
                peak_rss_bytes=measure.peak_rss,
                peak_cuda_bytes=measure.peak_cuda,
                gpu_utilisation=measure.gpu_utilisation,
                device=device,
            )
        )
        logger.info("kernel batch %d: %.1f face-iterations/s", batch, out[-1].face_iterations_per_s)
        del crops, reference
    return out


# -- measuring -------------------------------------------------------------------------


class _Measure:
    """Wall time, CPU time, peak memory and GPU utilisation of a block."""

    def __init__(self, device: str, *, sample_every: float = 0.5):
        self.device = device
        self.sample_every = sample_every
        self.seconds = 0.0
        self.cpu_seconds = 0.0
        self.laps: list[float] = []
        self.peak_rss = 0
        self.peak_cuda: Optional[int] = None
        self.gpu_utilisation: Optional[float] = None
        self._samples: list[float] = []
        self._stop = threading.Event()
        self._thread: Optional[threading.Thread] = None

    def __enter__(self) -> "_Measure":
        _reset_peak_rss()
        if self.device == "cuda":
            torch.cuda.synchronize()
            torch.cuda.reset_peak_memory_stats()
            read = _gpu_utilisation_reader()
            if read is not None:
                self._thread = threading.Thread(target=self._sample, args=(read,), name="vdeid-gpu-sampler", daemon=True)
                self._thread.start()
        self._cpu0 = _cpu_time()
        self._t0 = time.perf_counter()
        return self

    def lap(self) -> None:
        if self.device == "cuda":
            torch.cuda.synchronize()
        self.laps.append(time.perf_counter() - self._t0)

    def __exit__(self, *exc) -> None:
        if self.device == "cuda":
            torch.cuda.synchronize()
        self.seconds = time.perf_counter() - self._t0
        self.cpu_seconds = _cpu_time() - self._cpu0
        self.peak_rss = _peak_rss()
        if self.device == "cuda":
            self.peak_cuda = int(torch.cuda.max_memory_allocated())
        if self._thread is not None:
            self._stop.set()
            self._thread.join()
            if self._samples:
                self.gpu_utilisation = float(np.mean(self._samples))

    def _sample(self, read) -> None:
        while not self._stop.wait(self.sample_every):
            value = read()
            if value is not None:
                self._samples.append(value)


def _rates(seconds: float, frames: int, faces: int) -> dict:
    ok = seconds > 0
    return {
        "seconds": round(float(seconds), 4),
        "frames_per_s": frames / seconds if ok else None,
        "faces_per_s": faces / seconds if ok else None,
    }


def _cpu_time() -> float:
    t = os.times()
    return t.user + t.system


def _reset_peak_rss() -> None:
    # Linux: writing 5 to clear_refs resets VmHWM, so a peak belongs to one block.
    try:
        Path("/proc/self/clear_refs").write_text("5")
    except OSError:
        pass


def _peak_rss() -> int:
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    import resource
    import sys

    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return int(peak if sys.platform == "darwin" else peak * 1024)  # bytes on macOS, KiB elsewhere


def _gpu_utilisation_reader():
    """A callable returning the current GPU utilisation in percent, or None if unmeasurable."""
    index = torch.cuda.current_device()
    try:
        torch.cuda.utilization(index)  # needs NVML (the nvidia-ml-py package)

        def read_nvml() -> Optional[float]:
            try:
                return float(torch.cuda.utilization(index))
            except Exception:  # noqa: BLE001 -- a failed sample is skipped, not fatal
                return None

        return read_nvml
    except Exception:  # noqa: BLE001 -- fall back to nvidia-smi
        pass
    smi = shutil.which("nvidia-smi")
    if smi is None:
        return None
    # nvidia-smi numbers GPUs as CUDA does only without CUDA_VISIBLE_DEVICES remapping.
    physical = os.environ.get("CUDA_VISIBLE_DEVICES", str(index)).split(",")[index].strip()

    def read_smi() -> Optional[float]:
        try:
            text = subprocess.run(
                [smi, "--query-gpu=utilization.gpu", "--format=csv,noheader,nounits", "-i", physical],
                capture_output=True, text=True, timeout=5, check=True,
            ).stdout
            return float(text.strip().splitlines()[0])
        except (OSError, subprocess.SubprocessError, ValueError, IndexError):
            return None

    return read_smi if read_smi() is not None else None


def _cpu_model() -> Optional[str]:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    import platform

    return platform.processor() or None
