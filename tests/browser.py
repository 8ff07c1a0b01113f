"""Test helper: the distribution's headless Chromium, driven by selenium through chromedriver.

Not a test file. `browser` (a pytest fixture, registered in conftest.py) gives a `Browser`
that opens a `file://` page and reports what a person would meet: console errors, requests
that left the machine, the row order of a table after a header click, the rendered sizes of
the figures, a screenshot. Where /usr/bin/chromium, /usr/bin/chromedriver or selenium is
missing the test is skipped with the reason (CI installs them with apt-get, so CI never skips).

Selenium is given the driver's path, so it never downloads a driver or a browser.
"""

from __future__ import annotations

import base64
import json
import os
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path

import pytest

CHROMIUM = os.environ.get("RNNBENCH_CHROMIUM", "/usr/bin/chromium")
CHROMEDRIVER = os.environ.get("RNNBENCH_CHROMEDRIVER", "/usr/bin/chromedriver")
FLAGS = ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
         "--disable-component-update", "--disable-sync", "--no-first-run",
         "--disable-default-apps", "--disable-extensions", "--window-size=1400,1000")
LOCAL_SCHEMES = ("file:", "data:")
# The browser's own pages (its new-tab page asks for chrome://favicon2 etc.): never the network.
BROWSER_SCHEMES = ("chrome:", "chrome-untrusted:", "devtools:", "about:")
MAX_SCREENSHOT_HEIGHT = 12000


def missing_reason() -> str | None:
    """Why no browser test can run here (None when Chromium, its driver and selenium exist)."""
    for path, what in ((CHROMIUM, "chromium"), (CHROMEDRIVER, "chromedriver")):
        if not (os.path.isfile(path) and os.access(path, os.X_OK)):
            return f"{what} not installed at {path} (apt-get install chromium chromium-driver)"
    try:
        import selenium  # noqa: F401
    except ImportError:
        return "selenium not installed (pip install -e '.[dev]')"
    return None


requires_browser = pytest.mark.skipif(missing_reason() is not None,
                                      reason=missing_reason() or "")


@dataclass(frozen=True)
class Size:
    """The rendered size of one figure in CSS pixels, and what it is (`img` or `svg`)."""

    tag: str
    width: float
    height: float


class Browser:
    """One headless Chromium with a fresh profile; `open` a page, then inspect it."""

    def __init__(self, profile: Path):
        from selenium import webdriver
        from selenium.webdriver.chrome.service import Service

        options = webdriver.ChromeOptions()
        options.binary_location = CHROMIUM
        for flag in FLAGS:
            options.add_argument(flag)
        options.add_argument(f"--user-data-dir={profile}")
        options.set_capability("goog:loggingPrefs", {"browser": "ALL", "performance": "ALL"})
        self.driver = webdriver.Chrome(service=Service(executable_path=CHROMEDRIVER),
                                       options=options)
        self._requests: list[str] = []

    def close(self) -> None:
        """Quit the browser and its driver."""
        self.driver.quit()

    def open(self, path: Path) -> None:
        """Load a local file and wait until it finished loading (its scripts ran)."""
        from selenium.webdriver.support.ui import WebDriverWait

        self._drain_performance()
        self._requests.clear()
        self.driver.get(Path(path).resolve().as_uri())
        WebDriverWait(self.driver, 30).until(
            lambda d: d.execute_script("return document.readyState") == "complete")

    def console_errors(self) -> list[str]:
        """Messages the page logged at error level (script errors, failed loads) since open."""
        return [e["message"] for e in self.driver.get_log("browser")
                if e.get("level") == "SEVERE"]

    def requests(self) -> list[str]:
        """Every URL the page requested since `open` (from the DevTools performance log)."""
        self._drain_performance()
        return list(self._requests)

    def external_requests(self) -> list[str]:
        """Requested URLs that are not `file:` or `data:` (nor the browser's own `chrome:`
        pages): anything that left the machine."""
        return [u for u in self.requests()
                if not u.startswith(LOCAL_SCHEMES) and not u.startswith(BROWSER_SCHEMES)]

    def _drain_performance(self) -> None:
        for entry in self.driver.get_log("performance"):
            message = json.loads(entry["message"])["message"]
            if message.get("method") == "Network.requestWillBeSent":
                self._requests.append(message["params"]["request"]["url"])

    def _table(self, table: int):
        from selenium.webdriver.common.by import By

        tables = self.driver.find_elements(By.CSS_SELECTOR, "table")
        if table >= len(tables):
            raise AssertionError(f"the page has {len(tables)} tables, not {table + 1}")
        return tables[table]

    def headers(self, table: int = 0) -> list[str]:
        """The header texts of the `table`-th table of the page."""
        from selenium.webdriver.common.by import By

        return [th.text.strip() for th in
                self._table(table).find_elements(By.CSS_SELECTOR, "thead th")]

    def column(self, header: str, table: int = 0) -> list[str]:
        """The texts of one column, in the order the rows are shown."""
        index = self._column_index(header, table)
        return self.driver.execute_script(
            "return Array.from(arguments[0].tBodies[0].rows,"
            " r => r.cells[arguments[1]].textContent.trim());", self._table(table), index)

    def click_header(self, header: str, table: int = 0) -> None:
        """Click a column header of the `table`-th table (sorts it on a sortable table)."""
        from selenium.webdriver.common.by import By

        index = self._column_index(header, table)
        th = self._table(table).find_elements(By.CSS_SELECTOR, "thead th")[index]
        self.driver.execute_script("arguments[0].scrollIntoView({block: 'center'});", th)
        th.click()

    def _column_index(self, header: str, table: int) -> int:
        names = self.headers(table)
        if header not in names:
            raise AssertionError(f"no column {header!r} in table {table}: {names}")
        return names.index(header)

    def figure_sizes(self) -> list[Size]:
        """Rendered size of every `<img>` and `<svg>` inside a `<figure>`; an image that did
        not decode counts as size 0."""
        boxes = self.driver.execute_script(
            "return Array.from(document.querySelectorAll('figure img, figure > svg'), e => {"
            " const r = e.getBoundingClientRect();"
            " const ok = e.tagName.toLowerCase() !== 'img' || (e.complete && e.naturalWidth > 0);"
            " return [e.tagName.toLowerCase(), ok ? r.width : 0, ok ? r.height : 0]; });")
        return [Size(tag, float(w), float(h)) for tag, w, h in boxes]

    def screenshot(self, path: Path, *, full_page: bool = True) -> Path:
        """Save a PNG of the page (the whole height, up to MAX_SCREENSHOT_HEIGHT px)."""
        path = Path(path)
        if not full_page:
            self.driver.save_screenshot(str(path))
            return path
        metrics = self.driver.execute_cdp_cmd("Page.getLayoutMetrics", {})
        size = metrics.get("cssContentSize") or metrics["contentSize"]
        clip = {"x": 0, "y": 0, "width": size["width"],
                "height": min(size["height"], MAX_SCREENSHOT_HEIGHT), "scale": 1}
        shot = self.driver.execute_cdp_cmd("Page.captureScreenshot", {
            "format": "png", "captureBeyondViewport": True, "clip": clip})
        path.write_bytes(base64.b64decode(shot["data"]))
        return path


@pytest.fixture
def browser():
    """A headless Chromium with a fresh profile (skips with the reason where none exists)."""
    reason = missing_reason()
    if reason:
        pytest.skip(reason)
    profile = Path(tempfile.mkdtemp(prefix="rnnbench-chromium-"))
    instance = Browser(profile)
    try:
        yield instance
    finally:
        instance.close()
        shutil.rmtree(profile, ignore_errors=True)
