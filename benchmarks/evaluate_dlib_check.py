"""Independent check of ``vdeid evaluate``: its dlib numbers against real dlib.

Reads a finished ``vdeid evaluate`` run: ``OUTDIR/results.json`` (its
spec), ``OUTDIR/records.json`` (what the evaluation measured per probe) and
the crops in its cache. Each run's crop folder is the one whose per-probe
metadata (iterations, timing) match the records, so the check judges exactly
the images behind the published numbers even after the code (and with it the
cache keys) moved on; it computes no protection itself. Real dlib (dlib-bin: HOG
detector, 5-point shape predictor, ``face_recognition_model_v1``, which cuts
its chip with ``get_face_chip``; :class:`_dlib_reference.DlibJudge`) judges
every face the evaluation judged with vdeid's PyTorch port of the dlib ResNet
(MTCNN landmarks):

- unlinkability: the share of protected faces at or above 0.6 from the same
  photo's original face;
- with ``--identify``, PSR at Top-1: the share whose true identity is not
  ranked first in real dlib's own gallery (the identity's other photos plus
  the distractors, each photo's largest HOG face, cosine to identity
  centroids as in the evaluation).

Real dlib looks for the face with HOG on the protected crop and falls back to
the original face's rectangle, as the evaluation falls back to the original
landmarks when MTCNN loses the face. Agreement within sampling error means
each rate lies in the other's 95 % Wilson interval.

Usage (after ``vdeid evaluate ... -o OUTDIR --cache CACHE``; ``--source`` as
given to the evaluation)::

    python benchmarks/evaluate_dlib_check.py OUTDIR --cache CACHE \\
        --methods none,blur,pixelate,noise,svd,pca,hypersphere --attacks pfgvm,bim:8,illc:8 \\
        --source dlib --identify --plot dlib_check.png

Prints one markdown row per method and variant; ``--plot`` also draws the
per-face distances (vdeid against real dlib) and both rates with their
intervals.
"""

from __future__ import annotations

import argparse
import io
import json
import sys
from pathlib import Path

import numpy as np
from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _dlib_reference import DlibJudge  # noqa: E402
from protect_faces import DescriptorCache, build_gallery  # noqa: E402

from vdeid.evaluate.identification import file_digest, split_identities  # noqa: E402
from vdeid.evaluate.metrics import protection_success_rate, unlinkability_rate, wilson_interval  # noqa: E402
from vdeid.evaluate.runner import MethodRun, read_protected, short_name  # noqa: E402

THRESHOLD = DlibJudge.THRESHOLD


def judge_face(judge: DlibJudge, protected: np.ndarray, rect) -> np.ndarray:
    """Real dlib's descriptor of the face at ``rect`` as HOG finds it on ``protected`` (else ``rect`` itself)."""
    overlapping = [r for r in judge.rects(protected) if r.intersect(rect).area() > 0.5 * rect.area()]
    best = max(overlapping, key=lambda r: r.intersect(rect).area()) if overlapping else rect
    return judge.descriptor(protected, best)


def parse_runs(methods: str, attacks: str, sources: list[str]) -> list[MethodRun]:
    runs = [MethodRun(m) for m in methods.split(",") if m]
    for source in sources:
        for a in attacks.split(","):
            if a:
                name, _, eps = a.partition(":")
                runs.append(MethodRun(name, source, float(eps) if eps else None))
    return runs


def _interval(rate: float, n: int) -> tuple[float, float]:
    return wilson_interval(int(round(rate * n / 100)), n)


def plot(rows: list[dict], path: Path) -> None:
    """Left: per-face distance, vdeid against real dlib. Right: both rates with 95 % intervals."""
    from matplotlib import colormaps
    from matplotlib.figure import Figure

    fig = Figure(figsize=(10, max(4.2, 1.8 + 0.3 * len(rows))), dpi=90, layout="constrained")
    left, right = fig.subplots(1, 2, width_ratios=[1, 1.4])
    for i, r in enumerate(rows):
        left.scatter(r["ours"], r["theirs"], s=9, alpha=0.7, color=colormaps["tab20"](i % 20), label=r["name"])
    lim = max(1.0, max(float(np.nanmax(np.r_[r["ours"], r["theirs"]])) for r in rows) * 1.05)
    left.plot([0, lim], [0, lim], color="grey", lw=0.8)
    left.axvline(THRESHOLD, color="k", ls=":", lw=0.8)
    left.axhline(THRESHOLD, color="k", ls=":", lw=0.8)
    left.set(xlim=(0, lim), ylim=(0, lim), xlabel="distance to original, vdeid dlib port", ylabel="distance to original, real dlib")
    left.set_title("per face (dotted: threshold 0.6)", fontsize=9)
    left.legend(fontsize=6, loc="upper left")
    measures = [("unlinkable", "unlink")] + ([("PSR@1", "psr1")] if rows[0].get("psr1_ours") is not None else [])
    y = np.arange(len(rows))
    h = 0.8 / (2 * len(measures))
    for m_i, (title, key) in enumerate(measures):
        for who_i, (who, marker) in enumerate((("ours", "o"), ("theirs", "s"))):
            vals = np.array([r[f"{key}_{who}"] for r in rows])
            ci = np.array([r[f"{key}_{who}_ci"] for r in rows])
            off = (2 * m_i + who_i - (2 * len(measures) - 1) / 2) * h
            right.errorbar(
                vals, y + off, xerr=np.clip([vals - ci[:, 0], ci[:, 1] - vals], 0, None), fmt=marker, ms=4, capsize=2,
                label=f"{title}, {'vdeid' if who == 'ours' else 'real dlib'}",
            )
    right.set_yticks(y, [r["name"] for r in rows], fontsize=7)
    right.invert_yaxis()
    right.set(xlim=(-3, 103), xlabel="% of probes (95 % Wilson interval)")
    right.grid(True, axis="x", alpha=0.3)
    fig.legend(*right.get_legend_handles_labels(), fontsize=7, loc="outside lower right", ncols=4)
    right.set_title("rates, vdeid evaluation vs real dlib", fontsize=9)
    path.parent.mkdir(parents=True, exist_ok=True)
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png")
    # A 128-colour palette keeps the figure small enough for the docs.
    Image.open(buffer).convert("RGB").quantize(colors=128, method=Image.Quantize.MEDIANCUT, dither=Image.Dither.NONE).save(path, optimize=True)


def run_folder(cache: Path, run: MethodRun, records: dict[str, dict]) -> Path:
    """The crop folder of ``run`` whose metadata match the records (probe key → record)."""
    wanted = {k: (r["reached"], r["iterations"], r["seconds"]) for k, r in records.items()}
    for folder in sorted((cache / "protected").glob(f"{run.method}-{short_name(run.source)}-*")):
        found = {}
        for key in wanted:
            meta = folder / f"{key}.json"
            if meta.is_file():
                m = json.loads(meta.read_text())
                found[key] = (m["reached"], m["iterations"], m["seconds"])
        if found == wanted:
            return folder
    raise SystemExit(f"{run.label} / {short_name(run.source)}: no crop folder in {cache} matches the records")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("outdir", type=Path, help="The evaluation's output folder (results.json, records.json).")
    ap.add_argument("--cache", type=Path, default=None, help="The evaluation's cache folder (default OUTDIR/cache).")
    ap.add_argument("--methods", default="none,blur,pixelate,noise,svd,pca,hypersphere")
    ap.add_argument("--attacks", default="pfgvm,bim:8,illc:8", help="attack[:eps], crafted on each --source")
    ap.add_argument("--source", default="dlib", help="Comma-separated recogniser specs the attacks were crafted on.")
    ap.add_argument("--identify", action="store_true", help="Also compare PSR@1 in real dlib's own 1:N gallery.")
    ap.add_argument("--plot", type=Path, default=None, help="Write the comparison figure here (PNG).")
    args = ap.parse_args()

    sources = [s for s in args.source.split(",") if s]
    cache = args.cache or args.outdir / "cache"
    spec = json.loads((args.outdir / "results.json").read_text())["spec"]
    records = [r for r in json.loads((args.outdir / "records.json").read_text()) if r["target"] == "dlib" and r["transform"] == "none"]
    by = {(r["label"], r["source"], r["variant"], r["probe"]): r for r in records}
    probes = sorted({(r["probe"], r["identity"]) for r in records if r["label"] == "none"})
    keys = {path: file_digest(path) for path, _ in probes}

    def crops_of(run: MethodRun) -> dict[str, dict]:
        variant = "attack" if run.adversarial else "-"
        mine = {keys[path]: by[(run.label, short_name(run.source), variant, path)] for path, _ in probes}
        return read_protected(run_folder(cache, run, mine), keys.values())

    crops = crops_of(MethodRun("none"))
    judge = DlibJudge()
    gallery = None
    if args.identify:
        splits = split_identities(
            spec["faces_dir"], probes_per_identity=spec["probes_per_identity"], limit_identities=spec["limit_identities"], seed=spec["seed"]
        )
        photos = DescriptorCache(cache / "real-dlib" / "photos.npz", judge)
        gallery = build_gallery(judge, splits, photos, Path(spec["gallery_dir"]))
    originals, missed = {}, 0
    for path, _ in probes:
        image = crops[keys[path]]["variants"]["-"]
        found = judge.rects(image)
        h, w = image.shape[:2]
        if found:
            # The probe's face is the one nearest the crop's centre.
            rect = min(found, key=lambda r: (r.center().x - w / 2) ** 2 + (r.center().y - h / 2) ** 2)
        else:
            # The crop is the face box grown by half a side each way.
            rect, missed = judge.rect((w / 4, h / 4, 3 * w / 4, 3 * h / 4)), missed + 1
        originals[path] = (rect, judge.descriptor(image, rect))
    print(f"{len(probes)} probes ({missed} without a HOG face on the original: central box used); "
          f"real dlib gallery: {'-' if gallery is None else len(gallery)} identities")
    print(
        "| method | variant | n | unlinkable %, vdeid (95% CI) | unlinkable %, real dlib (95% CI) | same decision % "
        "| mean abs distance diff |" + (" PSR@1 %, vdeid (95% CI) | PSR@1 %, real dlib (95% CI) | same decision % |" if gallery else "")
    )
    print("|:---|---|---:|---:|---:|---:|---:|" + ("---:|---:|---:|" if gallery else ""))
    rows = []
    for run in parse_runs(args.methods, args.attacks, sources):
        protected = crops_of(run)
        for v in (["attack", "shipped"] if run.adversarial else ["-"]):
            ours, theirs, rank_ours, rank_theirs = [], [], [], []
            for path, identity in probes:
                img = protected[keys[path]]["variants"][v]
                m = by[(run.label, short_name(run.source), v, path)]
                ours.append(m["distance"])
                rank_ours.append(m["rank"])
                rect, ref = originals[path]
                d = judge_face(judge, img, rect)
                theirs.append(float(np.linalg.norm(ref - d)))
                if gallery is not None:
                    rank_theirs.append(int(gallery.ranks(d[None], [identity])[0]))
            ours, theirs = np.array(ours), np.array(theirs)
            n = len(ours)
            name = run.label + ("" if run.source is None else f" / {short_name(run.source)}") + ("" if v == "-" else f" ({v})")
            row = {"name": name, "ours": ours, "theirs": theirs}
            row["unlink_ours"], row["unlink_theirs"] = unlinkability_rate(ours, THRESHOLD), unlinkability_rate(theirs, THRESHOLD)
            row["unlink_ours_ci"], row["unlink_theirs_ci"] = _interval(row["unlink_ours"], n), _interval(row["unlink_theirs"], n)
            line = (
                f"| {run.label}{'' if run.source is None else ' / ' + short_name(run.source)} | {v} | {n} "
                f"| {row['unlink_ours']:.1f} ({row['unlink_ours_ci'][0]:.0f}–{row['unlink_ours_ci'][1]:.0f}) "
                f"| {row['unlink_theirs']:.1f} ({row['unlink_theirs_ci'][0]:.0f}–{row['unlink_theirs_ci'][1]:.0f}) "
                f"| {100.0 * np.mean((ours >= THRESHOLD) == (theirs >= THRESHOLD)):.0f} | {np.abs(ours - theirs).mean():.3f} |"
            )
            if gallery is not None:
                ro, rt = np.array(rank_ours), np.array(rank_theirs)
                row["psr1_ours"], row["psr1_theirs"] = protection_success_rate(ro, 1), protection_success_rate(rt, 1)
                row["psr1_ours_ci"], row["psr1_theirs_ci"] = _interval(row["psr1_ours"], n), _interval(row["psr1_theirs"], n)
                line += (
                    f" {row['psr1_ours']:.1f} ({row['psr1_ours_ci'][0]:.0f}–{row['psr1_ours_ci'][1]:.0f})"
                    f" | {row['psr1_theirs']:.1f} ({row['psr1_theirs_ci'][0]:.0f}–{row['psr1_theirs_ci'][1]:.0f})"
                    f" | {100.0 * np.mean((ro > 1) == (rt > 1)):.0f} |"
                )
            print(line, flush=True)
            rows.append(row)
    if args.plot is not None:
        plot(rows, args.plot)
        print(f"figure: {args.plot}")


if __name__ == "__main__":
    main()
