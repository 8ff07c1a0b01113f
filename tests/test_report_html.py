"""report.html of a real run, opened from file:// in the distribution's headless Chromium."""

from __future__ import annotations

import re

import pytest

from bench.analysis.html import REPORT_HTML
from bench.cli import main

# Four real cases: two implementations × two unroll modes, forward only.
TINY = ["--impl", "basic_rnn,gru", "--phase", "forward", "--rounds", "12", "--warmup", "1",
        "--warmup-time", "0", "--device", "cpu"]
MEDIAN = "median (ms) ±95 %"


@pytest.fixture(scope="module")
def smoke_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("html") / "run"
    assert main(["run", *TINY, "--out", str(out)]) == 0
    return out


def _ms(cell: str) -> float:
    return float(cell.split(" ", maxsplit=1)[0].replace(",", ""))


@pytest.mark.tf
@pytest.mark.slow
def test_run_folder_has_a_self_contained_report_html(smoke_run):
    page = (smoke_run / REPORT_HTML).read_text(encoding="utf-8")
    assert not re.search(r"""(src|href)=["']?(https?:)?//""", page)
    assert page.count("<table") >= 3  # environment, roofline, the step-time table
    assert "data:image/png;base64," in page
    assert MEDIAN in page
    md = (smoke_run / "report.md").read_text(encoding="utf-8")
    for cell in re.findall(r"\| (\d[\d.,]* ±\d+\.\d %) \|", md):  # the same numbers
        assert f">{cell}<" in page


@pytest.mark.tf
@pytest.mark.slow
def test_report_html_in_a_real_browser(smoke_run, browser, tmp_path):
    browser.open(smoke_run / REPORT_HTML)
    assert browser.console_errors() == []
    sizes = browser.figure_sizes()
    assert sizes
    assert all(s.width > 0 and s.height > 0 for s in sizes)
    step = next(i for i in range(10) if MEDIAN in browser.headers(i))
    assert len(browser.column("impl", step)) == 4
    browser.click_header("impl", step)
    impls = browser.column("impl", step)
    assert impls == sorted(impls)
    browser.click_header(MEDIAN, step)
    medians = [_ms(c) for c in browser.column(MEDIAN, step)]
    assert medians == sorted(medians)
    browser.click_header(MEDIAN, step)
    assert [_ms(c) for c in browser.column(MEDIAN, step)] == sorted(medians, reverse=True)
    assert browser.external_requests() == []
    shot = browser.screenshot(tmp_path / "report.png")
    assert shot.stat().st_size > 10_000


def test_compare_page_in_a_real_browser(rnnbench, browser, tmp_path):
    from pathlib import Path

    fixtures = Path(__file__).parent / "fixtures"
    out = tmp_path / "cmp"
    code, _, err = rnnbench("compare", fixtures / "run_a", fixtures / "run_b", "--cross-machine",
                            "--out", out)
    assert code == 0, err
    browser.open(out / REPORT_HTML)
    assert browser.console_errors() == []
    sizes = browser.figure_sizes()
    assert len(sizes) == 1  # the heatmap
    assert sizes[0].width > 200
    assert sizes[0].height > 200
    main = next(i for i in range(10) if "B/A" in browser.headers(i)
                and "fastest" in browser.headers(i))
    before = browser.column("case", main)
    assert "geomean" not in before  # the summary row sits in the footer, never sorted
    browser.click_header("B/A", main)
    ratios = [float(c.split("×")[0]) for c in browser.column("B/A", main)]
    assert ratios == sorted(ratios)
    assert browser.column("case", main) != before
    assert browser.external_requests() == []
    assert browser.screenshot(tmp_path / "compare.png").stat().st_size > 10_000
