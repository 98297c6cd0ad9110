"""One self-contained HTML page: tables and PNG figures inlined as base64.

The page needs no other file (images are ``data:`` URIs), so it can be
mailed or attached to an issue as is.
"""

from __future__ import annotations

import base64
import html
from pathlib import Path
from typing import Sequence

__all__ = ["table_html", "image_html", "write_page"]

_STYLE = """
body{font-family:system-ui,sans-serif;margin:2em auto;max-width:1200px;color:#222}
table{border-collapse:collapse;margin:1em 0;font-size:13px}
th,td{border:1px solid #ccc;padding:3px 7px;text-align:right}
th{background:#f3f3f3}td:first-child,th:first-child{text-align:left}
figure{margin:1.5em 0}img{max-width:100%}figcaption{font-size:13px;color:#555}
pre{background:#f6f6f6;padding:.6em;overflow-x:auto}
"""


def table_html(header: Sequence[str], rows: Sequence[Sequence], *, caption: str = "") -> str:
    """An HTML table; every cell is escaped (``None`` shows as an empty cell)."""
    head = "".join(f"<th>{html.escape(str(h))}</th>" for h in header)
    body = "".join(
        "<tr>" + "".join(f"<td>{'' if v is None else html.escape(str(v))}</td>" for v in row) + "</tr>" for row in rows
    )
    cap = f"<caption>{html.escape(caption)}</caption>" if caption else ""
    return f"<table>{cap}<thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def image_html(png: str | Path | bytes, *, caption: str = "") -> str:
    """A ``<figure>`` holding a PNG as a base64 ``data:`` URI.

    Parameters
    ----------
    png : path or bytes
        A PNG file or its bytes.
    caption : str, optional
    """
    data = png if isinstance(png, (bytes, bytearray)) else Path(png).read_bytes()
    b64 = base64.b64encode(bytes(data)).decode("ascii")
    cap = f"<figcaption>{html.escape(caption)}</figcaption>" if caption else ""
    return f'<figure><img alt="{html.escape(caption)}" src="data:image/png;base64,{b64}">{cap}</figure>'


def write_page(path: str | Path, title: str, parts: Sequence[str]) -> Path:
    """Write ``parts`` (HTML fragments, in order) as one page.

    Use :func:`table_html`, :func:`image_html`, or escaped text wrapped in
    ``<h2>``/``<p>``; ``parts`` are inserted verbatim.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    doc = (
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
        f"<title>{html.escape(title)}</title><style>{_STYLE}</style></head><body>"
        f"<h1>{html.escape(title)}</h1>\n" + "\n".join(parts) + "\n</body></html>\n"
    )
    path.write_text(doc, encoding="utf-8")
    return path
