"""Result tables shaped like the seed papers' tables, as (header, rows) pairs.

- :func:`table3`: L2 / MSSIM / misclassification of P-FGVM, I-FGVM and
  I-FGSM with P-FGVM's percentage improvement (Chatzikyriakidis et al.,
  ICIP 2019, Table 3), one block per source recogniser, judged by the same
  recogniser as in the paper (white box).
- :func:`table1`: PSR at Top-1/5/10/25/50 of BIM and ILLC per noise budget,
  source × target (Ghafourian et al., Table 1).
- :func:`summary_table`: every method's quality and protection per target.
- :func:`robustness_table`: PSR@1 and unlinkability after JPEG and resizing.

:func:`markdown` renders any of them; :mod:`vdeid.evaluate.html` renders
them for the web page.
"""

from __future__ import annotations

from typing import Optional, Sequence

__all__ = [
    "PAPER_TABLE3",
    "table3",
    "table1",
    "summary_table",
    "robustness_table",
    "markdown",
    "select",
]

#: Table 3 of the P-FGVM paper: (L2, MSSIM, MR %) per method, for model A and model B.
PAPER_TABLE3 = {
    "A": {"pfgvm": (3.38, 0.986, 99.6), "ifgvm": (5.31, 0.963, 99.4), "ifgsm": (5.68, 0.962, 98.9)},
    "B": {"pfgvm": (2.11, 0.995, 96.0), "ifgvm": (2.67, 0.993, 93.2), "ifgsm": (5.74, 0.968, 94.4)},
}

Table = tuple[list[str], list[list]]


def select(rows: Sequence[dict], **where) -> list[dict]:
    """Rows whose fields equal every ``where`` value."""
    return [r for r in rows if all(r.get(k) == v for k, v in where.items())]


def _one(rows, **where) -> Optional[dict]:
    found = select(rows, **where)
    return found[0] if found else None


def _f(v, fmt: str) -> str:
    return "–" if v is None else format(v, fmt)


def _adv_variant(rows) -> str:
    return "attack" if any(r["variant"] == "attack" for r in rows) else "-"


def table3(rows: Sequence[dict], *, transform: str = "none") -> Table:
    """P-FGVM Table 3 on our data: one block per source recogniser (target = source).

    Rows hold L2, MSSIM ("SI") and misclassification rate ("MR", closed set
    over the enrolled identities) of the ``attack`` variant, then P-FGVM's
    percentage improvement over each baseline:
    ``(other - pfgvm) / other`` for L2, ``(pfgvm - other) / other`` for SI
    and MR.
    """
    header = ["source = target", "method", "n", "L2", "SI (MSSIM)", "MR %", "reached %"]
    out = []
    sources = sorted({r["source"] for r in rows if r["method"] == "pfgvm"})
    for s in sources:
        got = {}
        for m in ("pfgvm", "ifgvm", "ifgsm"):
            r = _one(rows, method=m, source=s, target=s, variant="attack", transform=transform)
            if r is None:
                continue
            got[m] = r
            out.append([s, m.upper().replace("FG", "-FG"), r["n"], _f(r["l2"], ".2f"), _f(r["mssim"], ".3f"), _f(r["mr"], ".1f"), _f(r["reached"], ".0f")])
        p = got.get("pfgvm")
        for m in ("ifgvm", "ifgsm"):
            o = got.get(m)
            if p is None or o is None:
                continue
            l2 = 100 * (o["l2"] - p["l2"]) / o["l2"] if o["l2"] else None
            si = 100 * (p["mssim"] - o["mssim"]) / o["mssim"] if o["mssim"] else None
            mr = 100 * (p["mr"] - o["mr"]) / o["mr"] if o["mr"] else None
            out.append([s, f"improvement vs {m.upper().replace('FG', '-FG')}", "", _f(l2, "+.1f") + "%", _f(si, "+.1f") + "%", _f(mr, "+.1f") + "%", ""])
    return header, out


def table1(rows: Sequence[dict], *, transform: str = "none", ks: Sequence[int] = (1, 5, 10, 25, 50)) -> Table:
    """Ghafourian et al.'s Table 1: PSR at Top-k per source, method, budget and target."""
    targets = sorted({r["target"] for r in rows})
    header = ["source", "method", "ε"] + [f"{t} Top-{k}" for t in targets for k in ks]
    out = []
    swept = [r for r in rows if r["method"] in ("bim", "illc") and r["eps"] is not None]
    variant = _adv_variant(swept)
    for s in sorted({r["source"] for r in swept}):
        for m in ("illc", "bim"):
            for e in sorted({r["eps"] for r in swept if r["method"] == m and r["source"] == s}):
                line = [s, m.upper(), f"{e:g}"]
                for t in targets:
                    r = _one(swept, method=m, source=s, target=t, eps=e, variant=variant, transform=transform)
                    line += [_f(None if r is None else r["psr"][str(k)], ".1f") for k in ks]
                out.append(line)
    return header, out


def summary_table(rows: Sequence[dict], *, transform: str = "none") -> Table:
    """Every method (and variant) × source × target: quality and protection."""
    header = [
        "method", "variant", "source", "target", "n", "L2", "MSSIM", "PSNR dB",
        "MR %", "PSR@1 %", "PSR@1 95% CI", "PSR@5 %", "PSR@50 %", "unlinkable %", "detected %", "fallback %",
    ]
    out = []
    for r in sorted(select(rows, transform=transform), key=_order):
        lo, hi = r["psr1_ci"]
        out.append([
            r["label"], r["variant"], r["source"], r["target"], r["n"], _f(r["l2"], ".2f"), _f(r["mssim"], ".3f"),
            _f(r["psnr"], ".1f"), _f(r["mr"], ".1f"), _f(r["psr"]["1"], ".1f"), f"{lo:.0f}–{hi:.0f}",
            _f(r["psr"]["5"], ".1f"), _f(r["psr"]["50"], ".1f"), _f(r["unlinkability"], ".1f"), _f(r["detection"], ".1f"),
            _f(r["fallback"], ".0f"),
        ])
    return header, out


def robustness_table(rows: Sequence[dict], *, measure: str = "psr1") -> Table:
    """PSR@1 (``measure="psr1"``) or unlinkability per transform, one row per method × source × target."""
    transforms = list(dict.fromkeys(r["transform"] for r in rows))
    header = ["method", "variant", "source", "target"] + transforms
    keyed: dict[tuple, dict] = {}
    for r in rows:
        keyed.setdefault((r["label"], r["variant"], r["source"], r["target"]), {})[r["transform"]] = r
    out = []
    for key in sorted(keyed, key=lambda k: _order(next(iter(keyed[k].values())))):
        by_t = keyed[key]
        vals = []
        for t in transforms:
            r = by_t.get(t)
            v = None if r is None else (r["psr"]["1"] if measure == "psr1" else r["unlinkability"] if measure == "unlinkability" else r["detection"])
            vals.append(_f(v, ".1f"))
        out.append(list(key) + vals)
    return header, out


_METHOD_ORDER = {m: i for i, m in enumerate(["none", "pfgvm", "ifgvm", "ifgsm", "bim", "illc", "blur", "pixelate", "noise", "impulse", "mask", "svd", "pca", "hypersphere"])}


def _order(r: dict):
    return (_METHOD_ORDER.get(r["method"], 99), r["eps"] or 0, r["variant"], r["source"], r["target"])


def markdown(table: Table) -> str:
    """A GitHub-flavoured markdown table (first column left-aligned, others right)."""
    header, rows = table
    lines = ["| " + " | ".join(str(h) for h in header) + " |", "|" + "|".join([":---"] + ["---:"] * (len(header) - 1)) + "|"]
    lines += ["| " + " | ".join("" if v is None else str(v) for v in row) + " |" for row in rows]
    return "\n".join(lines)
