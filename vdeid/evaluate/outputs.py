"""Write an evaluation's outputs: JSON, markdown tables, PNG figures, one HTML page.

``OUTDIR/results.json`` (aggregated rows, sample sizes, spec, timings),
``OUTDIR/records.json`` (one record per probe × method × target × transform),
``OUTDIR/results.md`` (tables shaped like the papers'), ``OUTDIR/*.png`` and
``OUTDIR/index.html`` (everything inlined).
"""

from __future__ import annotations

import json
import logging
import math
from pathlib import Path
from typing import Optional

from . import tables as T
from .html import image_html, table_html, write_page
from .plots import plot_evolution, plot_perturbations, plot_psr_vs_eps, plot_tradeoff

logger = logging.getLogger(__name__)

__all__ = ["write_outputs"]


def _clean(obj):
    """JSON-safe copy: non-finite floats become None (strict JSON has no Infinity)."""
    if isinstance(obj, float):
        return obj if math.isfinite(obj) else None
    if isinstance(obj, dict):
        return {str(k): _clean(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_clean(v) for v in obj]
    return obj


def _curves(rows: list[dict], source: str) -> dict:
    curves: dict = {}
    for r in rows:
        if r["source"] != source or r["method"] not in ("illc", "bim") or r["eps"] is None:
            continue
        if r["transform"] != "none" or r["variant"] != "attack":
            continue
        by_k = curves.setdefault(r["method"], {}).setdefault(r["target"], {})
        for k, v in r["psr"].items():
            by_k.setdefault(int(k), []).append((r["eps"], v))
    return {m: curves[m] for m in ("illc", "bim") if m in curves}


def write_outputs(result: dict, outdir: str | Path, *, evaluation=None, command: Optional[str] = None) -> dict[str, Path]:
    """Write every output of an evaluation.

    Parameters
    ----------
    result : dict
        What :meth:`vdeid.evaluate.runner.Evaluation.run` returned.
    outdir : str or Path
        Created when missing.
    evaluation : Evaluation, optional
        Gives the images for the perturbation and noise-evolution figures
        (left out without it).
    command : str, optional
        The command line that produced the result, quoted in the reports.

    Returns
    -------
    dict
        Output name → path.
    """
    out = Path(outdir)
    out.mkdir(parents=True, exist_ok=True)
    rows = result["rows"]
    paths: dict[str, Path] = {}

    summary = {k: v for k, v in result.items() if k != "records"}
    if command:
        summary["command"] = command
    paths["results.json"] = out / "results.json"
    paths["results.json"].write_text(json.dumps(_clean(summary), indent=1, sort_keys=True))
    paths["records.json"] = out / "records.json"
    paths["records.json"].write_text(json.dumps(_clean(result.get("records", [])), separators=(",", ":")))

    figures: list[tuple[str, Path]] = []
    for s in sorted({r["source"] for r in rows if r["method"] in ("bim", "illc")}):
        curves = _curves(rows, s)
        if curves:
            p = plot_psr_vs_eps(curves, out / f"psr_vs_eps_{s}.png", title=f"adversarial examples crafted on {s}")
            figures.append((f"PSR against ε, source {s} (Ghafourian et al., Figs 3-5)", p))
    for t in sorted({r["target"] for r in rows}):
        pts = []
        for r in T.select(rows, target=t, transform="none"):
            if r["variant"] == "shipped" or r["method"] == "none":
                continue
            tag = r["label"].replace(" ε=", "") + ("" if r["source"] == "-" else f"/{r['source']}")
            group = "naive / reconstruction" if r["source"] == "-" else f"attack on {r['source']}"
            pts.append({"label": tag, "group": group, "mssim": r["mssim"], "psnr": r["psnr"], "psr@1": r["psr"]["1"]})
        if pts:
            p = plot_tradeoff(pts, out / f"tradeoff_{t}.png", title=f"quality vs protection, identified by {t}")
            figures.append((f"Quality/protection trade-off, target {t}", p))
    if evaluation is not None and evaluation.probes:
        figures += _image_figures(evaluation, out)

    md = _markdown(result, command, figures)
    paths["results.md"] = out / "results.md"
    paths["results.md"].write_text(md)
    parts = [f"<p>{_sample_line(result)}</p>"]
    if command:
        parts.append(f"<pre>{_escape(command)}</pre>")
    for title, table in _tables(rows):
        parts.append(f"<h2>{_escape(title)}</h2>")
        parts.append(table_html(*table))
    parts.append(f"<h2>Figures</h2>")
    for caption, p in figures:
        parts.append(image_html(p, caption=caption))
        paths[p.name] = p
    paths["index.html"] = write_page(out / "index.html", "vdeid evaluation", parts)
    return paths


def _image_figures(evaluation, out: Path) -> list[tuple[str, Path]]:
    from .evolution import evolution_from_noise
    from .runner import MethodRun

    figures = []
    probes = evaluation.probes[:2]
    examples = []
    for s in evaluation.spec.sources:
        if "pfgvm" not in [m.strip().lower() for m in evaluation.spec.methods]:
            break
        got = evaluation.protect(MethodRun("pfgvm", s), probes)
        for i, p in enumerate(probes):
            examples.append((f"{p.identity[:14]} / {s.partition(':')[0]}", p.image, got[p.key]["variants"]["attack"]))
    if examples:
        path = plot_perturbations(examples, out / "perturbations.png", title="P-FGVM de-identification (attack pixels)")
        figures.append(("P-FGVM: originals, de-identified faces, |perturbation| ×10 (P-FGVM paper, Fig. 1)", path))
    source = evaluation.spec.sources[0] if evaluation.spec.sources else evaluation.spec.targets[0]
    p = evaluation.probes[0]
    try:
        snaps = evolution_from_noise(p.image, p.landmarks, evaluation.recognizer(source))
    except Exception as exc:  # noqa: BLE001 -- a figure must not sink the report
        logger.warning("noise-evolution figure left out: %s", exc)
        return figures
    rec = evaluation.recognizer(source)
    path = plot_evolution(
        [(n, img) for n, img, _ in snaps],
        out / "evolution.png",
        reference=p.image,
        title=f"P-FGVM from Gaussian noise against {source.partition(':')[0]} (distance to original: "
        + ", ".join(f"{d:.2f}" for _, _, d in snaps)
        + f"; threshold {rec.cfg.threshold})",
    )
    figures.append(("P-FGVM evolution from Gaussian noise (P-FGVM paper, Fig. 2)", path))
    return figures


def _escape(text: str) -> str:
    import html

    return html.escape(text)


def _sample_line(result: dict) -> str:
    s = result.get("sample", {})
    return (
        f"{s.get('probes', '?')} probe photos of {s.get('identities', '?')} identities; gallery "
        f"{s.get('closed_set_identities', '?')} enrolled identities ({s.get('enrolment_photos', '?')} photos) + "
        f"{s.get('distractors', '?')} one-photo distractors."
    )


def _tables(rows: list[dict]) -> list[tuple[str, T.Table]]:
    out = [
        ("P-FGVM paper, Table 3 shape (attack pixels, target = source)", T.table3(rows)),
        ("BIM/ILLC paper, Table 1 shape: PSR % at Top-k (attack pixels)", T.table1(rows)),
        ("All methods (no transform)", T.summary_table(rows)),
    ]
    if len({r["transform"] for r in rows}) > 1:
        out += [
            ("Robustness: PSR@1 % after storage transforms", T.robustness_table(rows, measure="psr1")),
            ("Robustness: unlinkable % after storage transforms", T.robustness_table(rows, measure="unlinkability")),
            ("Robustness: face still detected (MTCNN) %", T.robustness_table(rows, measure="detection")),
        ]
    return out


def _markdown(result: dict, command: Optional[str], figures) -> str:
    rows = result["rows"]
    lines = ["# vdeid evaluation", "", _sample_line(result), ""]
    if command:
        lines += ["```", command, "```", ""]
    lines += [
        "PSR@k: share of probes whose true identity is *not* among the k best-scoring of all enrolled",
        "identities and distractors. MR: closed-set misclassification over the enrolled identities.",
        "Unlinkable: recogniser distance to the same photo's original at or above its threshold.",
        "`attack` = the attack's own pixels (also where it missed its target); `shipped` = what vdeid",
        "writes (faces that missed get the fallback). L2 on [0, 1] pixels of the face crop.",
        "",
    ]
    for title, table in _tables(rows):
        lines += [f"## {title}", "", T.markdown(table), ""]
        if title.startswith("P-FGVM paper"):
            lines += ["Published (CelebA crops, closed-set CNN classifiers):", "", T.markdown(_paper_table3()), ""]
    if figures:
        lines += ["## Figures", ""]
        lines += [f"- `{p.name}`: {caption}" for caption, p in figures]
        lines.append("")
    timings = result.get("timings", {})
    if timings:
        total = sum(timings.values())
        lines += [f"Compute: {total / 60:.1f} min in this run (cached steps cost ~0).", ""]
    return "\n".join(lines)


def _paper_table3() -> T.Table:
    header = ["model", "method", "L2", "SI (MSSIM)", "MR %"]
    rows = []
    for model, by_m in T.PAPER_TABLE3.items():
        for m, (l2, si, mr) in by_m.items():
            rows.append([model, m.upper().replace("FG", "-FG"), f"{l2:.2f}", f"{si:.3f}", f"{mr:.1f}"])
    return header, rows
