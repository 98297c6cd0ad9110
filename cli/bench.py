"""``vdeid bench``: throughput of the pipeline and of the attack kernel on this machine."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path
from typing import Optional

import click
from tqdm.contrib.logging import logging_redirect_tqdm

from .options import build_config, config_options
from .progress import progress_bar

SAMPLE = Path(__file__).resolve().parents[1] / "samples" / "astronaut_drone.mp4"


def _batches(ctx, param, text: str) -> tuple[int, ...]:
    try:
        values = tuple(int(v) for v in text.split(",") if v.strip())
    except ValueError:
        values = ()
    if not values or min(values) < 1:
        raise click.BadParameter(f"expected positive integers like 1,16,64,256, got {text!r}")
    return values


@click.command()
@click.argument("video", required=False, type=click.Path(path_type=Path))
@click.option("--kernel-batches", default="1,16,64,256", show_default=True, metavar="N[,N]", callback=_batches, help="Batch sizes of the attack-kernel benchmark.")
@click.option("--kernel-iters", type=click.IntRange(1, 1000), default=3, show_default=True, help="Timed attack steps per kernel batch size.")
@click.option("--no-kernel", is_flag=True, help="Skip the attack-kernel benchmark.")
@click.option("--no-pipeline", is_flag=True, help="Skip the end-to-end run.")
@click.option("--json", "as_json", is_flag=True, help="Print machine-readable JSON.")
@click.option("-q", "--quiet", is_flag=True, help="No progress bar.")
@config_options
def bench(
    video: Optional[Path],
    kernel_batches: tuple[int, ...],
    kernel_iters: int,
    no_kernel: bool,
    no_pipeline: bool,
    as_json: bool,
    quiet: bool,
    **params,
) -> None:
    """Measure throughput on VIDEO (default: the bundled sample clip).

    Runs the whole pipeline once (the output is discarded) and reports, per
    stage and end to end, frames/s and faces/s, the attack's
    face-iterations/s, GPU utilisation where measurable and peak memory;
    then times the attack kernel (P-FGVM steps against dlib) at each of
    --kernel-batches.
    """
    from vdeid.bench import bench_kernel, bench_pipeline, host_info
    from vdeid.config import resolve_device

    config = build_config(params)
    config = replace(config, device=resolve_device(config.device))
    video = video or SAMPLE
    result: dict = {"host": host_info(config.device), "pipeline": None, "kernel": None}
    if not no_pipeline:
        with logging_redirect_tqdm(), progress_bar(video.name, quiet=quiet or as_json) as progress:
            result["pipeline"] = bench_pipeline(video, config, progress=progress).to_dict()
    if not no_kernel:
        result["kernel"] = [k.to_dict() for k in bench_kernel(kernel_batches, config=config, iterations=kernel_iters)]
    if as_json:
        click.echo(json.dumps(result, indent=2))
    else:
        click.echo(format_bench(result))


def format_bench(result: dict) -> str:
    """The human-readable table of a ``vdeid bench`` result."""
    host = result["host"]
    lines = [
        f"host: {host['cpu'] or 'unknown CPU'}, {host['cpu_cores']} cores, torch {host['torch_threads']} threads, "
        f"device {host['device']}" + (f" ({host['gpu']})" if host.get("gpu") else ""),
    ]
    p = result.get("pipeline")
    if p:
        lines += [
            "",
            f"pipeline: {p['video']} ({p['width']}x{p['height']}, {p['frames']} frames, {p['faces']} face-frames), "
            f"method {p['method']}",
            f"{'stage':<12} {'seconds':>9} {'frames/s':>9} {'faces/s':>9}",
        ]
        for name, s in p["stages"].items():
            lines.append(f"{name:<12} {s['seconds']:>9.2f} {_num(s['frames_per_s']):>9} {_num(s['faces_per_s']):>9}")
        lines += [
            "(decode, detect with track, and encode run on their own threads, overlapping the other stages)",
            f"CPU time: {p['cpu_seconds']:.1f} s",
            f"attack: {p['attack_iterations']} face-iterations, "
            f"{_num(p['attack_face_iterations_per_s'])} face-iterations/s",
            f"GPU utilisation: {_percent(p['gpu_utilisation'])}",
            f"peak memory: RSS {_mib(p['peak_rss_bytes'])}, CUDA {_mib(p['peak_cuda_bytes'])}",
        ]
    k = result.get("kernel")
    if k:
        lines += [
            "",
            f"attack kernel: P-FGVM steps against dlib, {k[0]['crop']}x{k[0]['crop']} crops, device {k[0]['device']}",
            f"{'batch':>6} {'face-it/s':>10} {'ms/step':>9} {'GPU':>6} {'peak RSS':>10} {'peak CUDA':>10}",
        ]
        for row in k:
            step_ms = 1000 * row["seconds"] / row["iterations"]
            lines.append(
                f"{row['batch']:>6} {row['face_iterations_per_s']:>10.1f} {step_ms:>9.0f} "
                f"{_percent(row['gpu_utilisation']):>6} {_mib(row['peak_rss_bytes']):>10} {_mib(row['peak_cuda_bytes']):>10}"
            )
    return "\n".join(lines)


def _num(value) -> str:
    return "n/a" if value is None else f"{value:.1f}"


def _percent(value) -> str:
    return "n/a" if value is None else f"{value:.0f}%"


def _mib(value) -> str:
    return "n/a" if value is None else f"{value / 2**20:.0f} MiB"
