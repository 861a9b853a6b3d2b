"""The report page: one self-contained HTML document (inline CSS, images as data: URIs).

A Content-Security-Policy in the page forbids every fetch but inline images and styles, so a
report that tried to load anything from the network would fail visibly in the browser.
"""

from __future__ import annotations

import base64
import html
import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

CSP = "default-src 'none'; img-src data:; style-src 'unsafe-inline'"

CSS = """
body { font-family: -apple-system, 'Segoe UI', 'DejaVu Sans', Arial, sans-serif; margin: 0;
       color: #222; background: #fafafa; line-height: 1.45; }
header { background: #0b3d5c; color: #fff; padding: 18px 32px; }
header h1 { margin: 0 0 4px 0; font-size: 22px; }
header p { margin: 0; opacity: .85; font-size: 14px; }
nav { background: #fff; border-bottom: 1px solid #ddd; padding: 8px 32px; position: sticky;
      top: 0; font-size: 14px; }
nav a { margin-right: 18px; color: #0b3d5c; text-decoration: none; }
main { padding: 8px 32px 48px 32px; max-width: 1500px; }
section { background: #fff; border: 1px solid #e3e3e3; border-radius: 6px; margin: 18px 0;
          padding: 8px 22px 18px 22px; }
section h2 { color: #0b3d5c; border-bottom: 2px solid #0b3d5c; padding-bottom: 4px; }
h3 { margin-top: 22px; color: #333; }
figure { margin: 12px 0; }
figure img { max-width: 100%; border: 1px solid #eee; }
figcaption { font-size: 13px; color: #555; }
table { border-collapse: collapse; font-size: 13px; margin: 8px 0; }
th, td { border: 1px solid #ddd; padding: 3px 9px; text-align: right; }
th { background: #f0f4f7; }
td.text, th.text { text-align: left; }
.note { background: #fff8e1; border-left: 4px solid #f0b400; padding: 6px 12px; }
.alarm { background: #fdecea; border-left: 4px solid #c62828; padding: 6px 12px; }
.fine { background: #e8f5e9; border-left: 4px solid #1a7f37; padding: 6px 12px; }
code { background: #f3f3f3; padding: 1px 4px; border-radius: 3px; }
"""


@dataclass(frozen=True, kw_only=True)
class Picture:
    """A PNG shown in the page and saved beside it as `report/<name>`."""

    name: str
    png: bytes
    alt: str
    caption: str = ""


@dataclass(frozen=True, kw_only=True)
class Section:
    """One section of the page: an anchor id, a title, its HTML body, and whether the run had
    what the section needs (`False`: the body says why not)."""

    id: str
    title: str
    body: str
    available: bool = True


def esc(value: Any) -> str:
    """HTML-escaped text of any value."""
    return html.escape(str(value), quote=True)


def fmt(value: Any, digits: int = 4) -> str:
    """A number for a table: floats with `digits` decimals, None/NaN as `n/a`."""
    if value is None:
        return "n/a"
    if isinstance(value, float):
        if math.isnan(value):
            return "n/a"
        small = value != 0 and abs(value) < 10 ** -(digits - 1)
        return f"{value:.{digits}g}" if small else f"{value:.{digits}f}"
    return str(value)


def paragraph(text: str, *, kind: str | None = None) -> str:
    """A paragraph of escaped text; `kind` is `note`, `alarm` or `fine` for a coloured box."""
    css = f' class="{kind}"' if kind else ""
    return f"<p{css}>{esc(text)}</p>"


def rich(html_text: str, *, kind: str | None = None) -> str:
    """A paragraph of HTML the caller built from escaped parts."""
    css = f' class="{kind}"' if kind else ""
    return f"<p{css}>{html_text}</p>"


def figure(picture: Picture) -> str:
    """An inline image (base64 data URI) with its caption."""
    data = base64.b64encode(picture.png).decode("ascii")
    caption = f"<figcaption>{esc(picture.caption)}</figcaption>" if picture.caption else ""
    return (f'<figure><img src="data:image/png;base64,{data}" alt="{esc(picture.alt)}" '
            f'data-file="{esc(picture.name)}">{caption}</figure>')


def table(headers: Sequence[str], rows: Iterable[Sequence[Any]], *,
          text_columns: Sequence[int] = (0,)) -> str:
    """A table of escaped cells; columns in `text_columns` are left-aligned."""
    def cell(tag: str, i: int, value: Any) -> str:
        css = ' class="text"' if i in text_columns else ""
        return f"<{tag}{css}>{esc(fmt(value))}</{tag}>"

    head = "".join(cell("th", i, h) for i, h in enumerate(headers))
    body = "".join("<tr>" + "".join(cell("td", i, v) for i, v in enumerate(row)) + "</tr>"
                   for row in rows)
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def key_values(items: Iterable[tuple[str, Any]]) -> str:
    """A two-column table of names and values."""
    return table(["", "value"], items, text_columns=(0, 1))


def page(*, title: str, subtitle: str, sections: Sequence[Section]) -> str:
    """The whole document: header, a navigation bar of section anchors, the sections."""
    nav = "".join(f'<a href="#{esc(s.id)}">{esc(s.title)}</a>' for s in sections)
    body = "".join(
        f'<section id="{esc(s.id)}" data-section="{esc(s.id)}"><h2>{esc(s.title)}</h2>'
        f"{s.body}</section>"
        for s in sections
    )
    return (
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
        f'<meta http-equiv="Content-Security-Policy" content="{CSP}">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>{esc(title)}</title><style>{CSS}</style></head><body>"
        f"<header><h1>{esc(title)}</h1><p>{esc(subtitle)}</p></header>"
        f"<nav>{nav}</nav><main>{body}</main></body></html>\n"
    )
