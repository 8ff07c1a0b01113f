"""Self-contained HTML pages: shell, sortable tables from DataFrames, inline figures (no TF).

A page is one file a person opens with a double click, from a CI artifact or a laptop: the CSS
and the few lines of sorting script are inline, figures are inline SVG or base64 PNG, and
nothing is fetched from the network. Every text that comes from a results file (case ids,
reasons, environment values, titles) goes through `html.escape`.

Building blocks return HTML fragments (str); `page` wraps them into a document and
`write_page` stores it atomically. Tables are rendered from the same DataFrames as the
Markdown reports (compute, then render): `table` formats cells as `markdown_table` does.
"""

from __future__ import annotations

import base64
import html
import io
import math
import numbers
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path

from bench.analysis.fmt import fmt_num
from bench.storage import atomic_write_text

REPORT_HTML = "report.html"
TOTAL = "total"  # row class of summary rows (geometric mean): in <tfoot>, never sorted
MISSING = "–"

_CSS = """
:root { --fg:#1d2329; --muted:#5f6b76; --line:#d8dee4; --head:#f3f5f7; --accent:#2f5f8f;
        --warn:#8a5a00; --bad:#a12626; --good:#1f6f3a; }
* { box-sizing: border-box; }
body { font: 14px/1.45 system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; color: var(--fg);
       margin: 0 auto; padding: 1.2rem 1.6rem 3rem; max-width: 1400px; }
h1 { font-size: 1.5rem; margin: .2rem 0 .4rem; }
h2 { font-size: 1.2rem; margin: 2rem 0 .5rem; border-bottom: 1px solid var(--line);
     padding-bottom: .2rem; }
h3 { font-size: 1rem; margin: 1.3rem 0 .4rem; }
p, ul { max-width: 95ch; }
.subtitle { color: var(--muted); margin: 0 0 1rem; }
nav.links { margin: .3rem 0 1rem; }
nav.links a { margin-right: 1rem; }
a { color: var(--accent); }
code { font: 12.5px ui-monospace, SFMono-Regular, Menlo, monospace; background: var(--head);
       padding: 0 .2em; border-radius: 3px; }
.scroll { overflow-x: auto; max-width: 100%; }
table { border-collapse: collapse; margin: .4rem 0 1rem; font-size: 13px; }
caption { text-align: left; color: var(--muted); padding-bottom: .3rem; caption-side: top; }
th, td { border: 1px solid var(--line); padding: .25rem .55rem; vertical-align: top; }
th { background: var(--head); text-align: left; white-space: nowrap; position: sticky; top: 0; }
th.sortable { cursor: pointer; user-select: none; }
th.sortable::after { content: " \\2195"; color: var(--muted); font-size: 11px; }
th[aria-sort="ascending"]::after { content: " \\2191"; color: var(--fg); }
th[aria-sort="descending"]::after { content: " \\2193"; color: var(--fg); }
td.num { text-align: right; font-variant-numeric: tabular-nums; white-space: nowrap; }
tbody tr:nth-child(even) { background: #fafbfc; }
tbody tr:hover { background: #eef3f8; }
tfoot td { font-weight: 600; border-top: 2px solid var(--fg); }
figure { margin: 1rem 0 1.6rem; }
figure img, figure svg { max-width: 100%; height: auto; border: 1px solid var(--line); }
figcaption { color: var(--muted); font-size: 13px; margin-top: .3rem; max-width: 95ch; }
dl.env { display: grid; grid-template-columns: max-content 1fr; gap: .15rem 1rem;
         font-size: 13px; }
dl.env dt { color: var(--muted); }
dl.env dd { margin: 0; word-break: break-word; }
.callout { border-left: 4px solid var(--warn); background: #fff8e8; padding: .5rem .8rem;
           max-width: 95ch; }
.bad { color: var(--bad); font-weight: 600; }
.good { color: var(--good); font-weight: 600; }
footer { margin-top: 3rem; color: var(--muted); font-size: 12px; }
"""

# Click a header to sort its table's body rows; a second click reverses. A cell sorts by its
# data-sort attribute when it has one, else by its leading number, else by its text; empty
# cells and dashes go last in either direction.
_SORT_JS = """
(function () {
  function key(cell) {
    var raw = cell.getAttribute("data-sort");
    var text = raw !== null ? raw : cell.textContent.trim();
    if (text === "" || text === "\\u2013" || text === "-") { return null; }
    var num = parseFloat(text.replace(/,/g, "").replace(/^[^0-9.+-]+/, ""));
    return isNaN(num) ? text.toLowerCase() : num;
  }
  function compare(a, b, dir) {
    if (a === null || b === null) { return a === b ? 0 : (a === null ? 1 : -1); }
    if (typeof a !== typeof b) { return (typeof a === "number" ? -1 : 1) * dir; }
    return (a < b ? -1 : a > b ? 1 : 0) * dir;
  }
  document.querySelectorAll("table.sortable").forEach(function (table) {
    var heads = table.querySelectorAll("thead th");
    heads.forEach(function (th, col) {
      th.classList.add("sortable");
      th.addEventListener("click", function () {
        var dir = th.getAttribute("aria-sort") === "ascending" ? -1 : 1;
        heads.forEach(function (h) { h.removeAttribute("aria-sort"); });
        th.setAttribute("aria-sort", dir === 1 ? "ascending" : "descending");
        var body = table.tBodies[0];
        var rows = Array.prototype.slice.call(body.rows);
        rows.forEach(function (r, i) { r._order = i; });
        rows.sort(function (r1, r2) {
          var c = compare(key(r1.cells[col]), key(r2.cells[col]), dir);
          return c !== 0 ? c : r1._order - r2._order;
        });
        rows.forEach(function (r) { body.appendChild(r); });
      });
    });
  });
})();
"""


def esc(value) -> str:
    """Any value as escaped HTML text (quotes included)."""
    return html.escape("" if value is None else str(value), quote=True)


def cell_text(value) -> str:
    """A table cell's text as the Markdown tables show it: floats to 3 figures, None as '–'."""
    if isinstance(value, bool):
        return str(value)
    if isinstance(value, float):
        return fmt_num(value)
    return MISSING if value is None else str(value)


def _is_number(value) -> bool:
    return (isinstance(value, numbers.Real) and not isinstance(value, bool)
            and math.isfinite(value))


def table(frame, *, caption: str | None = None, sortable: bool = True,
          table_id: str | None = None, row_classes: Sequence[str] | None = None,
          html_columns: Sequence[str] = ()) -> str:
    """A DataFrame as a `<table>` (sortable by clicking a header); numbers right-aligned.

    Numeric cells carry their exact value in `data-sort`, so sorting never depends on the
    shown rounding. `row_classes` (one CSS class per row, '' for none) marks rows, e.g. `bad`;
    rows marked TOTAL go into the table's footer, below the rows that sorting reorders.
    Cells of `html_columns` are fragments built by the caller (links, sparklines), not escaped.
    """
    import pandas as pd

    headers = [str(c) for c in frame.columns]
    numeric = [pd.api.types.is_numeric_dtype(frame[c]) and not pd.api.types.is_bool_dtype(
        frame[c]) for c in frame.columns]
    classes = " ".join(c for c in ("sortable" if sortable else "",) if c)
    attrs = (f' id="{esc(table_id)}"' if table_id else "") + (
        f' class="{classes}"' if classes else "")
    out = [f"<div class=\"scroll\"><table{attrs}>"]
    if caption:
        out.append(f"<caption>{esc(caption)}</caption>")
    out.append("<thead><tr>" + "".join(f'<th scope="col">{esc(h)}</th>' for h in headers)
               + "</tr></thead><tbody>")
    footer = []
    for index, row in enumerate(frame.itertuples(index=False)):
        css = row_classes[index] if row_classes else ""
        cells = []
        for value, is_num, header in zip(row, numeric, headers, strict=True):
            if header in html_columns:
                cells.append(f"<td>{value}</td>")
                continue
            sort = f' data-sort="{float(value)!r}"' if _is_number(value) else ""
            num = ' class="num"' if is_num or _looks_numeric(value) else ""
            cells.append(f"<td{num}{sort}>{esc(cell_text(value))}</td>")
        line = (f'<tr class="{esc(css)}">' if css else "<tr>") + "".join(cells) + "</tr>"
        (footer if css == TOTAL else out).append(line)
    out.append("</tbody>" + (f"<tfoot>{''.join(footer)}</tfoot>" if footer else "")
               + "</table></div>")
    return "".join(out)


def _looks_numeric(value) -> bool:
    """Formatted numbers such as '1.19 ±3.1 %' or '0.91×' are right-aligned like numbers."""
    if not isinstance(value, str) or not value:
        return False
    head = value.lstrip("+-").split(" ")[0].rstrip("×%").replace(",", "")
    try:
        float(head)
    except ValueError:
        return False
    return True


def svg(fig) -> str:
    """A matplotlib figure as inline `<svg>` markup (text kept as paths: no font needed)."""
    import matplotlib

    buf = io.StringIO()
    with matplotlib.rc_context({"svg.fonttype": "path"}):
        fig.savefig(buf, format="svg")
    text = buf.getvalue()
    return text[text.index("<svg"):]


def png_img(data: bytes, alt: str) -> str:
    """PNG bytes as an `<img>` with a base64 data URI."""
    encoded = base64.b64encode(data).decode("ascii")
    return f'<img alt="{esc(alt)}" src="data:image/png;base64,{encoded}">'


def figure(content: str, caption: str) -> str:
    """A `<figure>` around inline SVG or an `<img>` (from `svg` / `png_img`), with a caption."""
    return f"<figure>{content}<figcaption>{esc(caption)}</figcaption></figure>"


def env_block(fields: Mapping[str, object] | Iterable[tuple[str, object]]) -> str:
    """Key/value pairs (the environment fingerprint) as a definition list."""
    pairs = fields.items() if isinstance(fields, Mapping) else fields
    body = "".join(f"<dt>{esc(k)}</dt><dd>{esc(cell_text(v))}</dd>" for k, v in pairs)
    return f'<dl class="env">{body}</dl>'


def paragraph(text: str, css: str | None = None) -> str:
    """Escaped text as a paragraph (optionally with a CSS class such as `callout`)."""
    return f'<p class="{esc(css)}">{esc(text)}</p>' if css else f"<p>{esc(text)}</p>"


def link(href: str, text: str) -> str:
    """A link to another page or file, relative paths kept as they are."""
    return f'<a href="{esc(href)}">{esc(text)}</a>'


def section(heading: str, *parts: str, level: int = 2, anchor: str | None = None) -> str:
    """A heading (h2 by default) followed by already-built fragments."""
    ident = f' id="{esc(anchor)}"' if anchor else ""
    return f"<section><h{level}{ident}>{esc(heading)}</h{level}>" + "".join(parts) + "</section>"


def page(title: str, parts: Sequence[str], *, subtitle: str | None = None,
         links: Sequence[tuple[str, str]] = ()) -> str:
    """A whole self-contained HTML document: title, optional subtitle and links, the parts."""
    nav = ("<nav class=\"links\">" + "".join(link(h, t) for h, t in links) + "</nav>"
           if links else "")
    sub = f'<p class="subtitle">{esc(subtitle)}</p>' if subtitle else ""
    return ("<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
            "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">"
            f"<title>{esc(title)}</title><style>{_CSS}</style></head><body>"
            f"<header><h1>{esc(title)}</h1>{sub}{nav}</header><main>" + "".join(parts)
            + "</main><footer>Written by rnnbench; a self-contained page (no network).</footer>"
            f"<script>{_SORT_JS}</script></body></html>\n")


def write_page(path: Path, document: str) -> Path:
    """Write an HTML document atomically (temp file + rename); return its path."""
    atomic_write_text(Path(path), document)
    return Path(path)
