"""Figures and the self-contained HTML page."""

from __future__ import annotations

import base64
import re

import numpy as np

from vdeid.evaluate.html import image_html, table_html, write_page
from vdeid.evaluate.plots import (
    amplified_perturbation,
    plot_evolution,
    plot_perturbations,
    plot_psr_vs_eps,
    plot_tradeoff,
)

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def test_figures_are_written_as_png(tmp_path, astronaut):
    small = astronaut[::8, ::8]
    curves = {"bim": {"dlib": {1: [(4, 10.0), (8, 40.0)], 5: [(4, 0.0), (8, 20.0)], 25: [(4, 0.0), (8, 5.0)]}}}
    pts = [{"label": "blur", "group": "dlib", "psnr": 28.0, "psr@1": 60.0}, {"label": "b", "group": "dlib", "psnr": 28.0, "psr@1": 60.0}]
    written = [
        plot_psr_vs_eps(curves, tmp_path / "psr.png", title="source dlib"),
        plot_tradeoff(pts, tmp_path / "trade.png"),
        plot_perturbations([("a", small, np.clip(small.astype(int) + 3, 0, 255).astype(np.uint8))], tmp_path / "p.png"),
        plot_evolution([(0, small), (5, small)], tmp_path / "e.png", reference=small),
    ]
    for path in written:
        assert path.read_bytes()[:8] == PNG_MAGIC


def test_amplified_perturbation_scales_by_ten():
    a = np.zeros((2, 2, 3), np.float32)
    b = a + 0.01
    assert np.allclose(amplified_perturbation(a, b), 0.1)
    assert amplified_perturbation(a, a + 0.5).max() == 1.0


def test_page_is_self_contained(tmp_path):
    png = PNG_MAGIC + b"rest"
    page = write_page(
        tmp_path / "index.html", "Results <1>", [table_html(["m", "L2"], [["<b>", 1.5], ["x", None]]), image_html(png, caption="c")]
    )
    text = page.read_text()
    assert "&lt;b&gt;" in text and "Results &lt;1&gt;" in text
    uri = re.search(r'src="data:image/png;base64,([^"]+)"', text).group(1)
    assert base64.b64decode(uri) == png
    assert "src=\"http" not in text and "href=" not in text
