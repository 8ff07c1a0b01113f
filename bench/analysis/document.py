"""One report, two renderings: a list of parts rendered to Markdown (report.md) and HTML.

A document is a list of parts: Markdown text (str: headings, paragraphs, bullets), `Table`
(a DataFrame) and `Figure` (PNG bytes and a caption). `to_markdown` gives report.md (tables
through `markdown_table`, figures as links into figures/), `to_html` a self-contained page
(tables sortable, figures inline) from the very same parts, so the two cannot disagree.

Markdown text becomes HTML through markdown-it-py with raw HTML and images turned off: text
from a results file can neither inject markup nor make the page fetch anything.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from bench.analysis import html

FIGURES = "figures"


@dataclass(frozen=True)
class Table:
    """A DataFrame shown as a table (Markdown: `markdown_table`; HTML: sortable)."""

    frame: object
    index: bool = False
    row_classes: tuple[str, ...] = field(default=())


@dataclass(frozen=True)
class Figure:
    """A figure: file name under figures/, caption, PNG bytes."""

    name: str
    caption: str
    png: bytes


Part = str | Table | Figure


def _cell(value) -> str:
    """A Markdown cell: the text html.cell_text gives the page's cell, pipes escaped."""
    return html.cell_text(value).replace("|", "\\|").replace("\n", " ")


def markdown_table(frame, index: bool = False) -> str:
    """A GitHub Markdown table of a DataFrame (numbers right-aligned, floats to 3 figures)."""
    import pandas as pd

    if index:
        frame = frame.reset_index()
    headers = [str(c) for c in frame.columns]
    numeric = [pd.api.types.is_numeric_dtype(frame[c]) and not pd.api.types.is_bool_dtype(
        frame[c]) for c in frame.columns]
    lines = ["| " + " | ".join(h.replace("|", "\\|") for h in headers) + " |",
             "|" + "|".join("---:" if n else "---" for n in numeric) + "|"]
    for row in frame.itertuples(index=False):
        lines.append("| " + " | ".join(_cell(v) for v in row) + " |")
    return "\n".join(lines) + "\n"


def figures_of(parts: Sequence[Part]) -> list[Figure]:
    """The figures of a document, in order."""
    return [p for p in parts if isinstance(p, Figure)]


def to_markdown(parts: Sequence[Part]) -> str:
    """The document as Markdown; figures link to FIGURES/<name>."""
    out = []
    for part in parts:
        if isinstance(part, Table):
            out.append(markdown_table(part.frame, index=part.index))
        elif isinstance(part, Figure):
            out.append(f"![{part.caption}]({FIGURES}/{part.name})\n\n*{part.caption}.*\n")
        else:
            out.append(part)
    return "\n".join(out).rstrip() + "\n"


def _unbold(value):
    """`**geomean**` (Markdown bold in a cell) as plain text for the HTML table."""
    if (isinstance(value, str) and len(value) > 4 and value.startswith("**")
            and value.endswith("**")):
        return value[2:-2]
    return value


def _markdown_renderer():
    from markdown_it import MarkdownIt

    return MarkdownIt("commonmark", {"html": False}).enable("table").disable("image")


def to_html(title: str, parts: Sequence[Part], *, subtitle: str | None = None,
            links: Sequence[tuple[str, str]] = ()) -> str:
    """The document as one self-contained HTML page; a leading `# title` line is dropped (the
    page has its own title)."""
    md = _markdown_renderer()
    body: list[str] = []
    merged: list[Part] = []
    for part in parts:  # neighbouring text parts form one Markdown block (one list, not many)
        if isinstance(part, str) and merged and isinstance(merged[-1], str):
            merged[-1] = merged[-1] + "\n" + part
        else:
            merged.append(part)
    for part in merged:
        if isinstance(part, Table):
            frame = part.frame.reset_index() if part.index else part.frame
            classes = list(part.row_classes) or [""] * len(frame)
            for i, row in enumerate(frame.itertuples(index=False)):
                if any(_unbold(v) is not v for v in row):
                    classes[i] = html.TOTAL  # a summary row: kept below the sorted rows
            body.append(html.table(frame.map(_unbold), row_classes=classes))
        elif isinstance(part, Figure):
            body.append(html.figure(html.png_img(part.png, part.caption), part.caption))
        else:
            text = part
            if not body and text.startswith("# "):
                text = text.split("\n", 1)[1] if "\n" in text else ""
            body.append(md.render(text))
    return html.page(title, body, subtitle=subtitle, links=links)
