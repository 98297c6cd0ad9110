"""The ``vdeid`` command: a thin click layer over the library."""

from __future__ import annotations

import json
import logging
import signal
import sys
from pathlib import Path

import click
from tqdm.contrib.logging import logging_redirect_tqdm

from .tuning import tune_process

tune_process()  # before torch loads (vdeid imports it): see cli/tuning.py

from vdeid.errors import VdeidError  # noqa: E402

from .options import build_config, config_options
from .progress import progress_bar

logger = logging.getLogger("vdeid")


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="vdeid")
@click.option("-v", "--verbose", is_flag=True, help="Also log routine notes (metadata dropped, encoder chosen).")
def cli(verbose: bool) -> None:
    """De-identify faces in videos and photos.

    Faces are protected with adversarial perturbations (P-FGVM, the default)
    that leave them looking the same to people while face recognisers no
    longer identify them, or with a naive method (blur, pixelate...).
    """
    # Routine notes (tags dropped, encoder chosen) go to the --report; -v shows them live.
    logging.basicConfig(level=logging.INFO if verbose else logging.WARNING, format="vdeid: %(message)s")
    # Third-party libraries log at INFO about things users need not see.
    logging.getLogger("libav").setLevel(logging.ERROR)


@cli.command()
@click.argument("input", type=click.Path(path_type=Path))
@click.option("-o", "--output", required=True, type=click.Path(path_type=Path), help="Output video file.")
@click.option("--report", "report_path", type=click.Path(path_type=Path), help="Write a JSON report here.")
@click.option("--tracks-out", type=click.Path(path_type=Path), help="Also write the face tracks (frames, boxes, landmarks, detected or bridged) and what protected each face (method, iterations, why it fell back) as JSON.")
@click.option("--tracks-in", type=click.Path(path_type=Path), help="Protect the tracks of this file (from --tracks-out, maybe corrected) instead of detecting.")
@click.option("--preview", type=click.Path(path_type=Path), help="Also write a review video with the boxes, track ids and bridged boxes drawn.")
@click.option("-q", "--quiet", is_flag=True, help="No progress bar or summary.")
@config_options
def process(
    input: Path,
    output: Path,
    report_path: Path | None,
    tracks_out: Path | None,
    tracks_in: Path | None,
    preview: Path | None,
    quiet: bool,
    **params,
) -> None:
    """Protect every face in the video INPUT and write it to --output.

    Audio is copied bit for bit; location and device metadata are dropped
    unless --keep-metadata is given. To review and correct the faces: run
    with --tracks-out and --preview, edit the tracks file, then run again
    with --tracks-in.
    """
    from vdeid import process_video

    config = build_config(params)
    with logging_redirect_tqdm(), progress_bar(input.name, quiet=quiet) as progress:
        report = process_video(
            input, output, config, progress=progress, report_path=report_path,
            tracks_out=tracks_out, tracks_in=tracks_in, preview=preview,
        )
    if not quiet:
        reasons = report.fallback_breakdown()
        click.echo(
            f"{output}: {report.frames} frames, {report.faces} face-frames protected"
            f" ({report.fallback} by the fallback{': ' + reasons if reasons else ''})"
            f" in {report.timings['total']:.1f} s",
            err=True,
        )


@cli.command()
@click.argument("photos", nargs=-1, required=True, type=click.Path(path_type=Path))
@click.option("-o", "--output", "output_dir", required=True, type=click.Path(path_type=Path), help="Output folder (mirrors the inputs' relative paths).")
@click.option("--format", "image_format", type=click.Choice(["same", "png", "jpg"]), default="same", show_default=True, help="Output image format.")
@click.option("-q", "--quiet", is_flag=True, help="No progress bar or summary.")
@config_options
def protect(photos: tuple[Path, ...], output_dir: Path, image_format: str, quiet: bool, **params) -> None:
    """Protect every face in PHOTOS (files or folders, recursively).

    EXIF, XMP and GPS data are dropped and the EXIF orientation is applied.
    A photo that fails is reported and the others go on; the exit status is
    1 if any failed.
    """
    from vdeid import protect_photos

    config = build_config(params, encode={"image_format": image_format})
    with logging_redirect_tqdm(), progress_bar("photos", quiet=quiet) as progress:
        results = protect_photos(photos, output_dir, config, progress=progress)
    # Each failure was already logged, one line per photo, as it happened.
    failed = [r for r in results if r.error]
    if not quiet:
        faces = sum(r.faces for r in results)
        click.echo(
            f"{len(results) - len(failed)} of {len(results)} photos written to {output_dir}, {faces} faces protected"
            + (f"; {len(failed)} failed" if failed else ""),
            err=True,
        )
    if failed:
        sys.exit(1)


@cli.command()
@click.option("--json", "as_json", is_flag=True, help="Print machine-readable JSON.")
def models(as_json: bool) -> None:
    """List the face recognisers, where their weights come from, and how they compare faces."""
    from vdeid.recognizers import describe_models

    rows = describe_models()
    if as_json:
        click.echo(json.dumps(rows, indent=2))
        return
    for row in rows:
        click.echo(f"{row['name']:<11} {row['status']}")
        click.echo(f"{'':<11} {row['description']}")
        if row.get("input_size"):
            click.echo(
                f"{'':<11} input {row['input_size']}x{row['input_size']}, {row['embedding_dim']}-D,"
                f" {row['metric']} distance, same person below {row['threshold']}"
            )
        click.echo(f"{'':<11} weights: {row['source']}")


from .batch import batch  # noqa: E402 -- registered after the group is defined

cli.add_command(batch)


def _terminate(signum, frame) -> None:
    # A killed run (SIGTERM: a job scheduler, `timeout`, `kill`) removes its
    # partial outputs exactly as Ctrl-C does.
    raise KeyboardInterrupt


def main() -> None:
    """Entry point: one-line errors and exit codes instead of tracebacks."""
    signal.signal(signal.SIGTERM, _terminate)
    try:
        cli.main(standalone_mode=False)
    except click.exceptions.Abort:
        click.echo("vdeid: interrupted; no partial output was left", err=True)
        sys.exit(130)
    except click.ClickException as exc:
        exc.show()
        sys.exit(exc.exit_code)
    except VdeidError as exc:
        click.echo(f"vdeid: error: {exc}", err=True)
        sys.exit(1)
    except KeyboardInterrupt:
        click.echo("vdeid: interrupted; no partial output was left", err=True)
        sys.exit(130)
    except click.exceptions.Exit as exc:
        sys.exit(exc.exit_code)


from .evaluate import evaluate as _evaluate, evaluate_video as _evaluate_video  # noqa: E402

cli.add_command(_evaluate)
cli.add_command(_evaluate_video)

from .bench import bench as _bench  # noqa: E402

cli.add_command(_bench)


if __name__ == "__main__":
    main()
