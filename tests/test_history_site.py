"""`rnnbench publish`: the static history site, checked as files and in a real headless Chromium."""

from __future__ import annotations

import re
from pathlib import Path
from urllib.parse import unquote, urlparse

import pytest

from bench import cli
from tests.history_data import write_ab_history, write_history

SHOTS = Path("/tmp/rnnbench-history-site-shots")


@pytest.fixture(scope="module")
def site(tmp_path_factory, ab_doc):
    """A store with two machines' runs (a step on one) and A/B runs (a step), published once
    per module (the tests that publish again publish the same store)."""
    tmp_path = tmp_path_factory.mktemp("history-site")
    write_history(tmp_path / "runs" / "m1", 16, step_at=10, step=1.2, prefix="m1-")
    write_history(tmp_path / "runs" / "m2", 12, prefix="m2-", env={"cpu_model": "Other CPU"})
    write_ab_history(tmp_path / "ab", ab_doc, 14, step_at=8, step=1.15)
    store = tmp_path / "h.sqlite"
    assert cli.main(["history", "add", str(tmp_path / "runs"), str(tmp_path / "ab"),
                     "--store", str(store)]) == 0
    out = tmp_path / "site"
    assert cli.main(["publish", "--store", str(store), "--out", str(out)]) == 0
    return out


def test_site_files_index_matrix_and_case_pages(site):
    index = (site / "index.html").read_text()
    assert (site / "machines.html").is_file()
    pages = sorted((site / "cases").glob("*.html"))
    # The 12 run cases (both machines share ids) and the A/B cases, of which only gru's
    # forward case is not a run case too: one page per case id, ratio series on its own panel.
    assert len(pages) == 12 + 1 + 2  # + a page per implementation series (basic_rnn, keras_lstm)
    # Regressions first: the changes table lists regressions before anything else.
    start = index.index('id="changes"')
    changes = index[start:index.index("</table>", start)]
    kinds = re.findall(r'<tr class="(bad|good)"', changes)
    assert kinds
    assert kinds == sorted(kinds)
    assert "keras_lstm/* (" in changes  # the implementation's series found it too
    matrix = (site / "machines.html").read_text()
    assert "Test CPU 9000, 1 thread" in matrix
    assert "Other CPU, 1 thread" in matrix
    assert "http://" not in index
    assert "https://" not in index


def test_publish_refuses_a_folder_that_is_not_a_site(tmp_path, capsys):
    (tmp_path / "other").mkdir()
    (tmp_path / "other" / "notes.txt").write_text("mine")
    write_history(tmp_path / "runs", 2)
    cli.main(["history", "add", str(tmp_path / "runs"), "--store", str(tmp_path / "h.sqlite")])
    code = cli.main(["publish", "--store", str(tmp_path / "h.sqlite"), "--out",
                     str(tmp_path / "other")])
    err = capsys.readouterr().err
    assert code == 2
    assert "is not an rnnbench site" in err
    assert (tmp_path / "other" / "notes.txt").read_text() == "mine"


def test_publish_again_replaces_the_site_as_a_whole(site, capsys):
    (site / "cases" / "stale.html").write_text("old")
    assert cli.main(["publish", "--store", str(site.parent / "h.sqlite"), "--out",
                     str(site)]) == 0
    assert not (site / "cases" / "stale.html").exists()
    assert (site / "index.html").is_file()
    assert not [p for p in site.parent.iterdir() if p.name.startswith(".site")]


def _local_links(browser) -> list[Path]:
    hrefs = browser.driver.execute_script(
        "return Array.from(document.querySelectorAll('a[href]'), a => a.href);")
    return [Path(unquote(urlparse(h).path)) for h in hrefs if h.startswith("file:")]


def test_site_in_headless_chromium(site, browser):
    SHOTS.mkdir(exist_ok=True)
    browser.open(site / "index.html")
    assert browser.console_errors() == []
    assert browser.external_requests() == []
    links = _local_links(browser)
    assert links
    assert all(p.is_file() for p in links), [p for p in links if not p.is_file()]
    sparks = browser.driver.execute_script(
        "return Array.from(document.querySelectorAll('svg.spark'), s => "
        "s.getBoundingClientRect().width * s.getBoundingClientRect().height);")
    assert sparks
    assert min(sparks) > 0
    browser.screenshot(SHOTS / "index.png")
    # Follow the first change's link to its case page: a history plot with a size.
    from selenium.webdriver.common.by import By

    first = browser.driver.find_element(By.CSS_SELECTOR, "#changes tbody tr a")
    first.click()
    assert "/cases/" in browser.driver.current_url
    sizes = browser.figure_sizes()
    assert sizes
    assert all(s.width > 100 and s.height > 100 for s in sizes)
    assert browser.console_errors() == []
    assert all(p.is_file() for p in _local_links(browser))
    browser.screenshot(SHOTS / "case.png")
    browser.open(site / "machines.html")
    assert browser.console_errors() == []
    assert browser.external_requests() == []
    assert "Other CPU, 1 thread" in browser.headers(1)
    browser.screenshot(SHOTS / "machines.png")
