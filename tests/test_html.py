"""The self-contained HTML page: escaping, sortable tables, inline figures, no network."""

from __future__ import annotations

import math
import re

import pandas as pd

from bench.analysis import html


def test_every_user_text_is_escaped():
    hostile = '<script>alert("x")</script>&'
    frame = pd.DataFrame({"case": [hostile], "median": [1.5]})
    doc = html.page(hostile, [html.section(hostile, html.table(frame), html.paragraph(hostile),
                                           html.env_block({hostile: hostile}))],
                    subtitle=hostile, links=[(hostile, hostile)])
    assert "<script>alert" not in doc
    assert doc.count("&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt;&amp;") >= 6
    assert doc.count("<script>") == 1  # the page's own sorting script only


def test_table_cells_read_like_the_markdown_tables():
    frame = pd.DataFrame({"impl": ["a", "b"], "ms": [0.0012345, math.nan], "text": ["1.2×", None]})
    out = html.table(frame)
    assert "<td>a</td>" in out
    assert '<td class="num" data-sort="0.0012345">0.00123</td>' in out
    assert '<td class="num">–</td>' in out  # NaN: no data-sort, shown as a dash
    assert '<td class="num">1.2×</td>' in out
    assert "<td>–</td>" in out
    assert 'class="sortable"' in out
    assert 'class="sortable"' not in html.table(frame, sortable=False)


def test_figures_are_inline():
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib.figure import Figure

    fig = Figure(figsize=(2, 1))
    fig.add_subplot().plot([1, 2], [3, 4])
    markup = html.svg(fig)
    assert markup.startswith("<svg")
    assert markup.rstrip().endswith("</svg>")
    img = html.png_img(b"\x89PNG\r\n", "alt <text>")
    assert img.startswith('<img alt="alt &lt;text&gt;" src="data:image/png;base64,')
    doc = html.page("t", [html.figure(markup, "cap"), html.figure(img, "cap")])
    assert not re.search(r"(src|href)=\"(https?:)?//", doc)
