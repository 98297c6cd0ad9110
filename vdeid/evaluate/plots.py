"""PNG figures of an evaluation, shaped like the seed papers' figures.

- :func:`plot_psr_vs_eps`: protection success rate against the noise budget,
  one panel per Top-k and one row per method, one line per target
  recogniser (Ghafourian et al., Figures 3-5).
- :func:`plot_tradeoff`: image quality against protection, one point per
  method (the lecture notes' quality/protection trade-off).
- :func:`plot_perturbations`: originals, de-identified faces and the
  perturbation's absolute value amplified ×10 (P-FGVM paper, Figure 1).
- :func:`plot_evolution`: a P-FGVM image evolving from Gaussian noise
  (P-FGVM paper, Figure 2).

Figures are drawn on :class:`matplotlib.figure.Figure` objects (no pyplot
global state, no display needed) and written with ``savefig``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Mapping, Optional, Sequence

import numpy as np

from ..imageops import to_float

__all__ = ["plot_psr_vs_eps", "plot_tradeoff", "plot_perturbations", "plot_evolution", "amplified_perturbation"]

_DPI = 110


def _figure(width: float, height: float):
    from matplotlib.figure import Figure

    return Figure(figsize=(width, height), dpi=_DPI, layout="constrained")


def _save(fig, path: str | Path) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, format="png")
    return path


def plot_psr_vs_eps(
    curves: Mapping[str, Mapping[str, Mapping[int, Sequence[tuple[float, float]]]]],
    path: str | Path,
    *,
    title: str = "",
    ks: Sequence[int] = (1, 5, 25),
) -> Path:
    """Protection success rate against the noise budget.

    Parameters
    ----------
    curves : mapping
        ``curves[method][target][k]`` is a sequence of ``(eps, psr)``
        points, eps on the 0-255 scale and PSR in percent.
    path : str or Path
        PNG file to write.
    title : str, optional
        Figure title (e.g. the source recogniser).
    ks : sequence of int, optional
        Top-k panels, left to right. (Default: 1, 5, 25 as in the paper)

    Returns
    -------
    Path
        ``path``.
    """
    methods = list(curves)
    eps_all = sorted({e for m in curves.values() for t in m.values() for pts in t.values() for e, _ in pts})
    fig = _figure(3.2 * len(ks), 2.6 * max(1, len(methods)))
    axes = fig.subplots(max(1, len(methods)), len(ks), squeeze=False, sharey=True)
    for r, method in enumerate(methods):
        for c, k in enumerate(ks):
            ax = axes[r][c]
            for target, by_k in curves[method].items():
                pts = sorted(by_k.get(k, ()))
                if pts:
                    eps, psr = zip(*pts)
                    ax.plot(eps, psr, marker="o", label=target)
            ax.set_xscale("log", base=2)
            if eps_all:
                ax.set_xticks(eps_all, [f"{e:g}" for e in eps_all])
                ax.minorticks_off()
            ax.set_ylim(-3, 103)
            ax.set_title(f"{method.upper()} Top-{k}", fontsize=9)
            ax.grid(True, alpha=0.3)
            if r == len(methods) - 1:
                ax.set_xlabel("ε (0-255)")
            if c == 0:
                ax.set_ylabel("PSR (%)")
    handles, labels = axes[0][0].get_legend_handles_labels()
    if handles:
        fig.legend(handles, labels, loc="outside lower center", ncols=len(labels), fontsize=8)
    if title:
        fig.suptitle(title, fontsize=10)
    return _save(fig, path)


def plot_tradeoff(
    points: Sequence[Mapping],
    path: str | Path,
    *,
    x: str = "psnr",
    y: str = "psr@1",
    title: str = "",
) -> Path:
    """Image quality against protection, one labelled point per method.

    Parameters
    ----------
    points : sequence of mapping
        Each with ``label`` (method name), ``group`` (e.g. the target
        recogniser, one colour each) and the values named by ``x`` and ``y``.
    path : str or Path
        PNG file to write.
    x, y : str, optional
        Keys of the axes (Default: PSNR in dB against PSR at Top-1; PSNR
        spreads the near-invisible attacks better than MSSIM).
    title : str, optional

    Returns
    -------
    Path
    """
    fig = _figure(6.4, 4.4)
    ax = fig.subplots()
    groups = sorted({str(p.get("group", "")) for p in points})
    for g in groups:
        # Points that coincide (e.g. budgets an early-stopped attack never
        # used) get one marker and one joined label.
        merged: dict[tuple, list[str]] = {}
        for p in points:
            if str(p.get("group", "")) != g or p.get(x) is None or p.get(y) is None:
                continue
            merged.setdefault((round(float(p[x]), 2), round(float(p[y]), 1)), []).append(str(p.get("label", "")))
        if not merged:
            continue
        xs = [k[0] for k in merged]
        ys = [k[1] for k in merged]
        ax.scatter(xs, ys, label=g or None, s=22)
        for (xv, yv), labels in merged.items():
            text = ", ".join(labels)
            text = text if len(text) <= 36 else text[:34] + "…"
            ax.annotate(text, (xv, yv), fontsize=6, xytext=(3, 2), textcoords="offset points")
    ax.set_xlabel("PSNR (dB)" if x == "psnr" else x.upper())
    ax.set_ylabel(y.upper().replace("PSR@", "PSR Top-") + " (%)")
    ax.set_ylim(-3, 103)
    ax.grid(True, alpha=0.3)
    if any(groups):
        ax.legend(fontsize=8)
    if title:
        ax.set_title(title, fontsize=10)
    return _save(fig, path)


def amplified_perturbation(original: np.ndarray, protected: np.ndarray, *, amplify: float = 10.0) -> np.ndarray:
    """``|protected - original| × amplify`` clipped to [0, 1], ``(H, W, 3)`` float32."""
    return np.clip(np.abs(to_float(protected) - to_float(original)) * amplify, 0.0, 1.0).astype(np.float32)


def plot_perturbations(
    examples: Sequence[tuple[str, np.ndarray, np.ndarray]],
    path: str | Path,
    *,
    amplify: float = 10.0,
    title: str = "",
) -> Path:
    """Originals, de-identified images and amplified perturbations (Figure 1).

    Parameters
    ----------
    examples : sequence of (label, original, protected)
        ``(H, W, 3)`` images (uint8 or float in [0, 1]); one column each.
    path : str or Path
        PNG file to write.
    amplify : float, optional
        Factor applied to ``|protected - original|``. (Default: 10)
    title : str, optional

    Returns
    -------
    Path
    """
    n = max(1, len(examples))
    fig = _figure(1.9 * n, 6.0)
    axes = fig.subplots(3, n, squeeze=False)
    rows = ("original", "de-identified", f"|perturbation| ×{amplify:g}")
    for c, (label, orig, prot) in enumerate(examples):
        for r, img in enumerate((to_float(orig), to_float(prot), amplified_perturbation(orig, prot, amplify=amplify))):
            ax = axes[r][c]
            ax.imshow(np.clip(img, 0, 1))
            ax.set_xticks([])
            ax.set_yticks([])
            if r == 0:
                ax.set_title(label, fontsize=8)
            if c == 0:
                ax.set_ylabel(rows[r], fontsize=8)
    if title:
        fig.suptitle(title, fontsize=10)
    return _save(fig, path)


def plot_evolution(
    steps: Sequence[tuple[int, np.ndarray]],
    path: str | Path,
    *,
    reference: Optional[np.ndarray] = None,
    title: str = "",
) -> Path:
    """A de-identified image at successive iterations (Figure 2).

    Parameters
    ----------
    steps : sequence of (iteration, image)
        ``(H, W, 3)`` images, uint8 or float in [0, 1].
    path : str or Path
        PNG file to write.
    reference : ndarray, optional
        The original image, shown last.
    title : str, optional

    Returns
    -------
    Path
    """
    panels = [(f"step {i}", img) for i, img in steps]
    if reference is not None:
        panels.append(("original", reference))
    fig = _figure(1.7 * max(1, len(panels)), 2.2)
    axes = fig.subplots(1, max(1, len(panels)), squeeze=False)[0]
    for ax, (label, img) in zip(axes, panels):
        ax.imshow(np.clip(to_float(img), 0, 1))
        ax.set_title(label, fontsize=8)
        ax.set_xticks([])
        ax.set_yticks([])
    if title:
        fig.suptitle(title, fontsize=10)
    return _save(fig, path)
