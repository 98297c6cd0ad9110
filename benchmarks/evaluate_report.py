"""The compact tables and small figures of ``docs/results.md``, from a ``vdeid evaluate`` output folder.

Reads ``OUTDIR/results.json`` and prints, as markdown:

1. the P-FGVM paper's Table 3 shape, our two recognisers next to its two models;
2. PSR at Top-1 of BIM / ILLC per budget, white box and transfer, next to the
   BIM paper's Table 1 (FaceNet / ResNet-50 rows; those numbers are copied
   from ``shared/seeds/003_*.txt``);
3. every method's quality and protection (attack pixels, no transform);
4. the shipped output (fallback where the attack missed) of every attack;
5. robustness: PSR at Top-1 after JPEG 95 / 75 and resizing.

With ``--figures DIR`` it also copies the run's PNG figures into ``DIR``,
re-encoded with a 128-colour palette so the docs stay small.

Usage::

    python benchmarks/evaluate_report.py OUTDIR --figures docs/results
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from vdeid.evaluate import tables as T

KS = ("1", "5", "10", "25", "50")

#: Ghafourian et al., Table 1, PSR Top-1 (%): source → target → method → ε → value.
PAPER_TOP1 = {
    ("FaceNet", "FaceNet"): {"ILLC": [68, 98, 100, 100, 100, 100], "BIM": [99, 100, 100, 100, 100, 100]},
    ("FaceNet", "ResNet-50"): {"ILLC": [6, 29, 63, 90, 96, 99], "BIM": [19, 51, 91, 99, 99, 100]},
    ("ResNet-50", "ResNet-50"): {"ILLC": [39, 97, 100, 100, 100, 100], "BIM": [99, 100, 100, 100, 100, 100]},
    ("ResNet-50", "FaceNet"): {"ILLC": [7, 12, 34, 48, 63, 72], "BIM": [15, 39, 66, 81, 87, 98]},
}
PAPER_EPS = (4, 8, 16, 32, 64, 128)


def _f(v, fmt: str) -> str:
    return "–" if v is None else format(v, fmt)


def _row(rows, **where):
    found = T.select(rows, **where)
    return found[0] if found else None


def _name(m: str) -> str:
    return m.upper().replace("FG", "-FG")


def table3(rows) -> T.Table:
    """Ours (white box, attack pixels) beside the paper's models A and B."""
    header = ["method"]
    sources = sorted({r["source"] for r in rows if r["method"] == "pfgvm"})
    for s in sources:
        header += [f"{s} L2", f"{s} SI", f"{s} MR %", f"{s} PSR@1 %"]
    header += ["paper A L2", "A SI", "A MR %", "paper B L2", "B SI", "B MR %"]
    out = []
    for m in ("pfgvm", "ifgvm", "ifgsm"):
        line = [_name(m)]
        for s in sources:
            r = _row(rows, method=m, source=s, target=s, variant="attack", transform="none")
            line += ["–"] * 4 if r is None else [f"{r['l2']:.2f}", f"{r['mssim']:.3f}", f"{r['mr']:.1f}", f"{r['psr']['1']:.1f}"]
        for model in ("A", "B"):
            l2, si, mr = T.PAPER_TABLE3[model][m]
            line += [f"{l2:.2f}", f"{si:.3f}", f"{mr:.1f}"]
        out.append(line)
    return header, out


def bim_top1(rows) -> T.Table:
    """PSR Top-1 per budget: our four source → target pairs beside the paper's white box and transfer."""
    sources = sorted({r["source"] for r in rows if r["method"] in ("bim", "illc")})
    targets = sorted({r["target"] for r in rows})
    pairs = [(s, t) for s in sources for t in targets]
    header = ["method", "ε"] + [f"ours {s}→{t}" for s, t in pairs] + [f"paper {s}→{t}" for s, t in PAPER_TOP1]
    out = []
    for m in ("BIM", "ILLC"):
        for i, e in enumerate(PAPER_EPS):
            line = [m, str(e)]
            for s, t in pairs:
                r = _row(rows, method=m.lower(), eps=float(e), source=s, target=t, variant="attack", transform="none")
                line.append(_f(None if r is None else r["psr"]["1"], ".1f"))
            line += [f"{PAPER_TOP1[p][m][i]:.0f}" for p in PAPER_TOP1]
            out.append(line)
    return header, out


ORDER = ["none", "pfgvm", "ifgvm", "ifgsm", "bim", "illc", "blur", "pixelate", "noise", "impulse", "mask", "svd", "pca", "hypersphere"]


def _runs(rows):
    """One row of every run (label × source), attacks by source, then budget.

    A budget whose crops equal the next smaller budget's (same mean L2 and
    PSR: the attack stopped at its target before using the extra budget) is
    left out and named in that budget's label, e.g. ``bim ε=16 (=32, 64)``.
    """
    seen = {}
    key = lambda r: (ORDER.index(r["method"]) if r["method"] in ORDER else 99, r["source"], r["eps"] or 0)  # noqa: E731
    for r in sorted(T.select(rows, transform="none"), key=key):
        seen.setdefault((r["label"], r["source"]), r)
    out, labels = [], {}
    for r in seen.values():
        prev = out[-1] if out else None
        same = (
            prev is not None and r["eps"] is not None and prev["eps"] is not None
            and (prev["method"], prev["source"]) == (r["method"], r["source"])
            and all(_signature(rows, prev, t) == _signature(rows, r, t) for t in {x["target"] for x in rows})
        )
        if same:
            labels[id(prev)].append(f"{r['eps']:g}")
            continue
        out.append(r)
        labels[id(r)] = []
    return [{**r, "shown": r["label"] + (f" (={', '.join(labels[id(r)])})" if labels[id(r)] else "")} for r in out]


def _signature(rows, run, target):
    found = T.select(rows, label=run["label"], source=run["source"], target=target)
    return sorted((x["variant"], x["transform"], round(x["l2"], 9), x["psr"]["1"], x["psr"]["50"]) for x in found)


def summary(rows) -> T.Table:
    targets = sorted({r["target"] for r in rows})
    header = ["method", "source", "L2", "MSSIM", "PSNR dB"]
    for t in targets:
        header += [f"{t} PSR@1 % (95% CI)", f"{t} PSR@50 %", f"{t} MR %", f"{t} unlinkable %", f"{t} detected %"]
    out = []
    for first in _runs(rows):
        variant = "attack" if first["method"] in ("pfgvm", "ifgvm", "ifgsm", "bim", "illc") else "-"
        line = None
        for t in targets:
            r = _row(rows, label=first["label"], source=first["source"], target=t, variant=variant, transform="none")
            if r is None:
                continue
            if line is None:
                line = [first["shown"], r["source"], f"{r['l2']:.2f}", f"{r['mssim']:.3f}", _f(r["psnr"], ".1f")]
            lo, hi = r["psr1_ci"]
            line += [f"{r['psr']['1']:.1f} ({lo:.0f}–{hi:.0f})", f"{r['psr']['50']:.1f}", f"{r['mr']:.1f}", f"{r['unlinkability']:.1f}", f"{r['detection']:.1f}"]
        if line is not None:
            out.append(line)
    return header, out


def shipped(rows) -> T.Table:
    targets = sorted({r["target"] for r in rows})
    header = ["attack", "source", "reached %", "L2 attack", "L2 shipped", "MSSIM shipped"]
    header += [f"{t} PSR@1 % attack → shipped" for t in targets]
    out = []
    for first in _runs(rows):
        if first["source"] == "-":
            continue
        a = {t: _row(rows, label=first["label"], source=first["source"], target=t, variant="attack", transform="none") for t in targets}
        s = {t: _row(rows, label=first["label"], source=first["source"], target=t, variant="shipped", transform="none") for t in targets}
        r0, s0 = a[targets[0]], s[targets[0]]
        if r0 is None or s0 is None:
            continue
        line = [first["shown"], r0["source"], _f(r0["reached"], ".0f"), f"{r0['l2']:.2f}", f"{s0['l2']:.2f}", f"{s0['mssim']:.3f}"]
        line += [f"{a[t]['psr']['1']:.1f} → {s[t]['psr']['1']:.1f}" for t in targets]
        out.append(line)
    return header, out


def robustness(rows) -> T.Table:
    targets = sorted({r["target"] for r in rows})
    transforms = list(dict.fromkeys(r["transform"] for r in rows))
    header = ["method", "source"] + [f"{t} {tr}" for t in targets for tr in transforms]
    out = []
    for first in _runs(rows):
        if first["method"] == "none":
            continue
        variant = "attack" if first["source"] != "-" else "-"
        line = [first["shown"], first["source"]]
        for t in targets:
            for tr in transforms:
                r = _row(rows, label=first["label"], source=first["source"], target=t, variant=variant, transform=tr)
                line.append(_f(None if r is None else r["psr"]["1"], ".1f"))
        out.append(line)
    return header, out


def copy_figures(outdir: Path, dest: Path) -> None:
    """Every PNG of the run, palette-quantised (128 colours) into ``dest``."""
    from PIL import Image

    dest.mkdir(parents=True, exist_ok=True)
    for png in sorted(outdir.glob("*.png")):
        im = Image.open(png).convert("RGB")
        im.quantize(colors=128, method=Image.Quantize.MEDIANCUT, dither=Image.Dither.NONE).save(dest / png.name, optimize=True)
        print(f"<!-- {dest / png.name}: {(dest / png.name).stat().st_size // 1024} KB -->")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("outdir", type=Path, help="A `vdeid evaluate` output folder.")
    ap.add_argument("--figures", type=Path, default=None, help="Copy the figures, palette-compressed, here.")
    args = ap.parse_args()
    result = json.loads((args.outdir / "results.json").read_text())
    rows = result["rows"]
    sections = [
        ("Table 3 shape (P-FGVM paper): white box, attack pixels", table3(rows)),
        ("PSR Top-1 of BIM / ILLC per budget, beside the BIM paper's Table 1", bim_top1(rows)),
        ("Table 1 shape (BIM paper): PSR % at Top-k, attack pixels", T.table1(rows)),
        ("Every method, no transform (attacks: their own pixels)", summary(rows)),
        ("What vdeid ships: fallback where an attack missed", shipped(rows)),
        ("Robustness: PSR@1 % after storage transforms", robustness(rows)),
    ]
    print(f"<!-- sample: {json.dumps(result['sample'])} -->")
    print(f"<!-- compute: {sum(result.get('timings', {}).values()) / 60:.1f} min -->")
    for title, table in sections:
        print(f"\n### {title}\n\n{T.markdown(table)}")
    if args.figures is not None:
        copy_figures(args.outdir, args.figures)


if __name__ == "__main__":
    main()
