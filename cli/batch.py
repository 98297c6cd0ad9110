"""``vdeid batch``: protect a whole corpus folder, resumably, locally or on Ray."""

from __future__ import annotations

import sys
from pathlib import Path

import click
from tqdm.contrib.logging import logging_redirect_tqdm

from .options import build_config, config_options
from .progress import progress_bar


@click.command("batch")
@click.argument("input_dir", type=click.Path(exists=True, file_okay=False, path_type=Path))
@click.option("-o", "--output", "output_dir", required=True, type=click.Path(file_okay=False, path_type=Path), help="Output folder: mirrors INPUT_DIR and holds manifest.jsonl.")
@click.option("--format", "image_format", type=click.Choice(["same", "png", "jpg"]), default="same", show_default=True, help="Output format of photos.")
@click.option("--workers", "-j", type=click.IntRange(1, 1024), default=1, show_default=True, help="Local engine: files protected side by side, one process each.")
@click.option("--engine", type=click.Choice(["local", "ray"]), default="local", show_default=True, help="local: this machine; ray: one Ray task per file (pip install 'vdeid[ray]').")
@click.option("--ray-address", metavar="ADDRESS", help="Ray cluster to use: auto (ray start --head on this machine) or ray://HOST:10001. Default: a private local Ray instance.")
@click.option("--gpus-per-task", type=click.FloatRange(0, 64), help="Ray GPUs per file (default 1 with --device cuda, else 0; 0.5 lets two files share a GPU).")
@click.option("--copy-other", is_flag=True, help="Copy files that are neither video nor photo, unchanged (sidecars like DJI .SRT keep their GPS track).")
@click.option("--no-resume", is_flag=True, help="Redo every file, even those an earlier run finished.")
@click.option("-q", "--quiet", is_flag=True, help="No progress bar or summary.")
@config_options
def batch(
    input_dir: Path,
    output_dir: Path,
    image_format: str,
    workers: int,
    engine: str,
    ray_address: str | None,
    gpus_per_task: float | None,
    copy_other: bool,
    no_resume: bool,
    quiet: bool,
    **params,
) -> None:
    """Protect every video and photo under INPUT_DIR into --output.

    The output folder mirrors INPUT_DIR (same relative paths and names) and
    gets a manifest.jsonl with one record per file: input and output
    SHA-256, method and parameters, model checksums, faces found, timings
    and status. Rerunning the same command skips the files already done, so
    an interrupted run is finished by running it again. A file that fails is
    recorded and the others go on; the exit status is 1 if any failed.
    """
    from vdeid.batch import process_corpus

    config = build_config(params, encode={"image_format": image_format})
    with logging_redirect_tqdm(), progress_bar("files", quiet=quiet) as progress:
        summary = process_corpus(
            input_dir,
            output_dir,
            config,
            workers=workers,
            engine=engine,
            ray_address=ray_address,
            gpus_per_task=gpus_per_task,
            copy_other=copy_other,
            resume=not no_resume,
            progress=progress,
        )
    for _, error in summary.failures:
        click.echo(f"vdeid: failed: {error}", err=True)
    if not quiet:
        click.echo(
            f"{summary.total} files: {summary.ok} protected, {summary.resumed} already done, "
            f"{summary.skipped} skipped (not media), {summary.failed} failed; "
            f"{summary.faces} face-frames protected ({summary.fallback} by the fallback) "
            f"in {summary.seconds:.1f} s; manifest: {summary.manifest}",
            err=True,
        )
    if summary.failed:
        sys.exit(1)
