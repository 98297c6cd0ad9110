"""``vdeid evaluate`` and ``vdeid evaluate-video``: measure how well protection works."""

from __future__ import annotations

import json
import shlex
import sys
from dataclasses import replace
from pathlib import Path

import click
from tqdm.contrib.logging import logging_redirect_tqdm

from .progress import progress_bar


def _csv(text: str | None) -> list[str]:
    return [p.strip() for p in (text or "").split(",") if p.strip()]


def _ints(text: str, name: str, lo: int, hi: int) -> tuple[int, ...]:
    if text.strip().lower() in ("", "none"):
        return ()
    try:
        values = tuple(int(v) for v in _csv(text))
    except ValueError:
        raise click.BadParameter(f"expected comma-separated integers, got {text!r}", param_hint=name) from None
    if not all(lo <= v <= hi for v in values):
        raise click.BadParameter(f"values must be in [{lo}, {hi}], got {text!r}", param_hint=name)
    return values


def _set_threads(threads: int | None) -> None:
    if threads:
        import torch

        torch.set_num_threads(threads)


@click.command("evaluate")
@click.argument("faces_dir", type=click.Path(exists=True, file_okay=False, path_type=Path))
@click.option("--gallery", "gallery_dir", required=True, type=click.Path(exists=True, file_okay=False, path_type=Path), help="Distractor photos (one identity each), e.g. an LFW subset.")
@click.option("--methods", default="pfgvm,blur", show_default=True, help="Comma-separated methods: pfgvm, ifgvm, ifgsm, bim, illc, blur, pixelate, noise, impulse, mask, svd, pca, hypersphere.")
@click.option("--source", "sources", default="dlib", show_default=True, metavar="SPEC[,SPEC]", help="Recognisers the attacks are crafted on (each evaluated separately).")
@click.option("--target", "targets", default="dlib", show_default=True, metavar="SPEC[,SPEC]", help="Recognisers that try to identify the protected faces.")
@click.option("-o", "--output", "outdir", required=True, type=click.Path(file_okay=False, path_type=Path), help="Folder for results.json, results.md, PNG figures and index.html.")
@click.option("--probes", "probes_per_identity", type=click.IntRange(1, 1000), default=2, show_default=True, help="Held-out probe photos per identity; the identity's other photos are its enrolment.")
@click.option("--limit-identities", type=click.IntRange(1), default=None, help="Use only the first N identities (quick runs).")
@click.option("--limit-distractors", type=click.IntRange(0), default=None, help="Use only the first N distractor photos.")
@click.option("--eps-sweep", default="4,8,16,32,64,128", show_default=True, help="BIM/ILLC noise budgets on the 0-255 scale.")
@click.option("--jpeg", default="95,75", show_default=True, help="JPEG qualities of the robustness check ('none' to skip).")
@click.option("--resize/--no-resize", default=True, show_default=True, help="Also measure after resizing the face to another recogniser's input size.")
@click.option("--seed", type=int, default=0, show_default=True, help="Seed of the probe draw and the methods' randomness.")
@click.option("--cache", "cache_dir", type=click.Path(file_okay=False, path_type=Path), default=None, help="Cache folder (default OUTDIR/cache); reuse it to skip finished work.")
@click.option("--device", type=click.Choice(["auto", "cpu", "cuda"]), default="cpu", show_default=True, help="Where detection, attacks and recognisers run.")
@click.option("--threads", type=click.IntRange(1, 256), default=None, help="Torch CPU threads (1 is fastest on a busy machine).")
@click.option("--chunk", type=click.IntRange(1, 256), default=12, show_default=True, help="Probes an attack protects in one batch.")
@click.option("--jobs", type=click.IntRange(1, 64), default=1, show_default=True, help="Worker processes (runs are split between them; the cache is shared).")
@click.option("--no-figures", is_flag=True, help="Skip the image figures (perturbations, evolution from noise).")
@click.option("-q", "--quiet", is_flag=True, help="No progress bar or summary.")
def evaluate(
    faces_dir: Path,
    gallery_dir: Path,
    methods: str,
    sources: str,
    targets: str,
    outdir: Path,
    probes_per_identity: int,
    limit_identities: int | None,
    limit_distractors: int | None,
    eps_sweep: str,
    jpeg: str,
    resize: bool,
    seed: int,
    cache_dir: Path | None,
    device: str,
    threads: int | None,
    chunk: int,
    jobs: int,
    no_figures: bool,
    quiet: bool,
) -> None:
    """Measure de-identification on FACES_DIR (<Identity>/<photo> folders).

    Each identity's held-out photos are protected by every method (attacks
    crafted on each --source recogniser), then identified by each --target
    recogniser among the enrolled identities plus the --gallery distractors.
    Reports L2, MSSIM and PSNR, closed-set misclassification, protection
    success rate at Top-1/5/10/25/50, unlinkability to the original photo,
    MTCNN re-detection, and robustness to JPEG and resizing.
    """
    from vdeid.config import Config, resolve_device
    from vdeid.evaluate.outputs import write_outputs
    from vdeid.evaluate.runner import Evaluation, EvaluationSpec

    _set_threads(threads)
    spec = EvaluationSpec(
        faces_dir=faces_dir,
        gallery_dir=gallery_dir,
        methods=_csv(methods),
        sources=_csv(sources),
        targets=_csv(targets) or ["dlib"],
        probes_per_identity=probes_per_identity,
        limit_identities=limit_identities,
        limit_distractors=limit_distractors,
        eps_sweep=tuple(float(e) for e in _ints(eps_sweep, "--eps-sweep", 1, 255)),
        jpeg=_ints(jpeg, "--jpeg", 1, 100),
        resize=resize,
        seed=seed,
        config=Config(device=device),
        chunk=chunk,
    )
    evaluation = Evaluation(spec, cache_dir or outdir / "cache", device=resolve_device(device))
    with logging_redirect_tqdm(), progress_bar("evaluate", quiet=quiet) as progress:
        # One bar for several stages: name the stage next to the counts.
        evaluation.progress = lambda p: progress(replace(p, info={"stage": p.stage, **p.info}))
        result = evaluation.run(jobs=jobs)
    command = "vdeid " + " ".join(shlex.quote(a) for a in sys.argv[1:])
    paths = write_outputs(result, outdir, evaluation=None if no_figures else evaluation, command=command)
    if not quiet:
        s = result["sample"]
        click.echo(
            f"{s['probes']} probes of {s['identities']} identities, {len(result['rows'])} result rows;"
            f" report: {paths['index.html']}",
            err=True,
        )


@click.command("evaluate-video")
@click.argument("original", type=click.Path(path_type=Path))
@click.argument("protected", type=click.Path(path_type=Path))
@click.option("--target", "targets", default="dlib", show_default=True, metavar="SPEC[,SPEC]", help="Recognisers that try to re-identify the faces.")
@click.option("--every", type=click.IntRange(1, 10000), default=5, show_default=True, help="Check the faces of every N-th frame.")
@click.option("--max-frames", type=click.IntRange(1), default=None, help="Stop after N frames.")
@click.option("--invader", is_flag=True, help="Also judge with dlib's own pipeline (its CNN detector, landmarks and ResNet).")
@click.option("-o", "--output", "output", type=click.Path(dir_okay=False, path_type=Path), default=None, help="Also write the report as JSON here.")
@click.option("--device", type=click.Choice(["auto", "cpu", "cuda"]), default="cpu", show_default=True)
@click.option("--threads", type=click.IntRange(1, 256), default=None, help="Torch CPU threads.")
@click.option("-q", "--quiet", is_flag=True, help="No progress bar.")
def evaluate_video(
    original: Path,
    protected: Path,
    targets: str,
    every: int,
    max_frames: int | None,
    invader: bool,
    output: Path | None,
    device: str,
    threads: int | None,
    quiet: bool,
) -> None:
    """Compare PROTECTED (vdeid's output) with ORIGINAL.

    Prints stream fidelity (frames, fps, timestamps, audio packets
    bit-identical), the share of face-frames each --target recogniser still
    matches to the original face, MTCNN re-detection, per-face SSIM and the
    perturbation's frame-to-frame flicker, as JSON. With --invader, also the
    share of face-frames dlib's own pipeline still matches. Each judge also
    counts the face-frames whose original it matches to a black frame too
    (no blur or mask can move those) and gives the share of the others that
    still match.
    """
    from vdeid.config import resolve_device
    from vdeid.evaluate.video import evaluate_video as run

    _set_threads(threads)
    with logging_redirect_tqdm(), progress_bar(protected.name, quiet=quiet) as progress:
        report = run(
            original, protected, targets=_csv(targets) or ["dlib"], every=every, device=resolve_device(device),
            max_frames=max_frames, invader=invader, progress=progress,
        )
    text = json.dumps(report, indent=2)
    if output is not None:
        output.parent.mkdir(parents=True, exist_ok=True)
        output.write_text(text + "\n")
    click.echo(text)
