"""The self-contained HTML page: escaping, sortable tables, inline figures, no network."""

from __future__ import annotations

import math
import re

import pandas as pd
import pytest

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
    footed = html.table(frame, row_classes=["", html.TOTAL])
    assert footed.index("<tfoot>") < footed.index(">b<")  # the total row is in the footer


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


def _demo_page(tmp_path, extra: str = ""):
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib.figure import Figure

    fig = Figure(figsize=(4, 2))
    fig.add_subplot().bar(["a", "b"], [1, 2])
    frame = pd.DataFrame({"case": ["b", "c", "a", "d"], "ms": [2.0, 10.0, 1.0, math.nan],
                          "ratio": ["1.10×", "0.91×", "12.5×", "–"]})
    doc = html.page("demo", [html.section("Table", html.table(frame)),
                             html.section("Figure", html.figure(html.svg(fig), "bars")), extra])
    return html.write_page(tmp_path / "demo.html", doc)


def test_page_sorts_and_stays_local_in_a_real_browser(browser, tmp_path):
    browser.open(_demo_page(tmp_path))
    assert browser.console_errors() == []
    assert browser.column("case") == ["b", "c", "a", "d"]
    browser.click_header("ms")
    assert browser.column("case") == ["a", "b", "c", "d"]  # numeric, the dash last
    browser.click_header("ms")
    assert browser.column("case") == ["c", "b", "a", "d"]
    browser.click_header("ratio")
    assert browser.column("ratio") == ["0.91×", "1.10×", "12.5×", "–"]
    browser.click_header("case")
    assert browser.column("case") == ["a", "b", "c", "d"]
    sizes = browser.figure_sizes()
    assert len(sizes) == 1
    assert sizes[0].tag == "svg"
    assert sizes[0].width > 100
    assert browser.external_requests() == []
    assert browser.requests()  # the page itself was seen: the log works
    shot = browser.screenshot(tmp_path / "demo.png")
    assert shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_the_helper_sees_requests_and_errors_that_a_page_makes(browser, tmp_path):
    bad = ('<figure><img alt="x" src="http://127.0.0.1:9/missing.png"></figure>'
           "<script>throw new Error('planted');</script>")
    browser.open(_demo_page(tmp_path, bad))
    assert browser.external_requests() == ["http://127.0.0.1:9/missing.png"]
    assert any("planted" in m for m in browser.console_errors())
    assert any(s.tag == "img" and s.width == 0 for s in browser.figure_sizes())


def test_missing_table_column_is_a_clear_failure(browser, tmp_path):
    browser.open(_demo_page(tmp_path))
    with pytest.raises(AssertionError, match="no column 'nope'"):
        browser.column("nope")
