#!/usr/bin/env python3
"""Build the committed history reference: a real store from real runs, its site, changes, shots.

    python3 .ci/history_reference.py [--commits 5] [--ab-args "--impl basic_rnn ..."]
        [--out reports/reference/history-smoke-2core-epyc-tf2.21]

1. Runs `rnnbench ab --preset smoke --threads 1` with side A at the commit of .ci/perf-base
   and side B at each of the last N first-parent commits of `main` (oldest first), into
   OUT/runs/ab-<sha>/ (skipped where that folder already holds an ab.json, so a cut build
   resumes). This step is timing: run it on a quiet machine (about 2.5 minutes per commit).
2. Adds to a fresh OUT/history.sqlite: the A/B calibration's 20 A/A and 6 detection runs
   (raw/*.json.gz, a real step in keras_lstm), every committed reference run, tta and A/B
   folder under reports/reference/, and the new A/B runs.
3. Writes OUT/add.txt, OUT/changes.md and OUT/changes.csv (all series), OUT/changes-ab.md
   (the A/B ratio series), OUT/series.md and screenshots OUT/screenshots/*.png (headless
   Chromium, when installed). The store and the site (about 20 MB of pages) are rebuilt in a
   temporary folder, or the site into --site DIR; they are not committed.
"""

from __future__ import annotations

import argparse
import os
import shlex
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "reports/reference/history-smoke-2core-epyc-tf2.21"
CALIBRATION = ROOT / "reports/reference/ab-smoke-2core-epyc-tf2.21-90pairs/raw"


def git(*args: str) -> str:
    """Output of a git command in the repository."""
    return subprocess.run(["git", "-C", str(ROOT), *args], check=True, capture_output=True,
                          text=True).stdout.strip()


def perf_base() -> str:
    """The reference commit of the CI gate (.ci/perf-base)."""
    lines = (ROOT / ".ci/perf-base").read_text().splitlines()
    return next(ln.strip() for ln in lines if ln.strip() and not ln.startswith("#"))


def rnnbench(*args: str, out: Path | None = None) -> int:
    """Run the rnnbench CLI of this tree; its output appended to `out` when given."""
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    cmd = [sys.executable, "-m", "bench", *args]
    print("$ rnnbench " + shlex.join(args), flush=True)
    proc = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, check=False)
    sys.stderr.write(proc.stderr)
    if out is not None:
        out.write_text(f"$ rnnbench {shlex.join(args)}\n\n{proc.stdout}\n"
                       f"(exit {proc.returncode})\n")
    else:
        sys.stdout.write(proc.stdout[-2000:])
    return proc.returncode


def reference_runs() -> list[str]:
    """Committed run, tta and A/B folders under reports/reference (the calibration's examples
    are copies of raw runs, left out; the history reference itself too)."""
    folders = []
    for marker in ("results.json", "ab.json"):
        for path in sorted((ROOT / "reports/reference").glob(f"*/{marker}")):
            folders.append(str(path.parent))
    return folders


def screenshots(site: Path, shots: Path) -> None:
    """PNG screenshots of the index, the machine matrix and the pages of the changes."""
    sys.path.insert(0, str(ROOT))
    from tests import browser as chromium

    reason = chromium.missing_reason()
    if reason:
        print(f"no screenshots: {reason}")
        return
    import tempfile

    shots.mkdir(parents=True, exist_ok=True)
    b = chromium.Browser(Path(tempfile.mkdtemp(prefix="rnnbench-shots-")))
    try:
        b.open(site / "index.html")
        assert not b.console_errors(), b.console_errors()
        assert not b.external_requests(), b.external_requests()
        b.screenshot(shots / "index.png", full_page=False)
        b.open(site / "machines.html")
        b.screenshot(shots / "machines.png", full_page=False)
        from selenium.webdriver.common.by import By

        b.open(site / "index.html")
        hrefs = [a.get_attribute("href") for a in
                 b.driver.find_elements(By.CSS_SELECTOR, "#changes tbody tr a")]
        for i, href in enumerate(dict.fromkeys(hrefs)):
            if i >= 2:
                break
            b.driver.get(href)
            b.screenshot(shots / f"case-{i + 1}.png", full_page=False)
    finally:
        b.close()


def main() -> int:
    """Run the A/B jobs (unless --skip-ab), build the store, write changes, site, screenshots."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=OUT)
    parser.add_argument("--commits", type=int, default=5)
    parser.add_argument("--ab-args", default="", help="extra rnnbench ab flags (tiny builds)")
    parser.add_argument("--skip-ab", action="store_true", help="use the A/B runs already there")
    parser.add_argument("--site", help="where to publish the site (default: next to the "
                                       "temporary store)")
    args = parser.parse_args()
    out = args.out.resolve()
    runs = out / "runs"
    runs.mkdir(parents=True, exist_ok=True)
    base = perf_base()
    commits = git("rev-list", "--first-parent", f"-n{args.commits}", "main").split()[::-1]
    if not args.skip_ab:
        for sha in commits:
            folder = runs / f"ab-{sha[:10]}"
            if (folder / "ab.json").is_file():
                continue
            code = rnnbench("ab", "--a-src", base, "--b-src", sha, "--preset", "smoke",
                            "--threads", "1", *shlex.split(args.ab_args), "--out", str(folder))
            print(f"ab of {sha[:10]} against {base[:10]}: exit {code}")
    store = Path(tempfile.mkdtemp(prefix="rnnbench-history-")) / "history.sqlite"
    for path in (store, Path(f"{store}-wal"), Path(f"{store}-shm")):
        path.unlink(missing_ok=True)
    rnnbench("history", "add", str(CALIBRATION), *reference_runs(), str(runs),
             "--store", str(store), "--repo", str(ROOT), out=out / "add.txt")
    rnnbench("history", "changes", "--store", str(store), "--out", str(out / "changes.csv"),
             out=out / "changes.md")
    rnnbench("history", "changes", "--store", str(store), "--metric", "ab_ratio",
             out=out / "changes-ab.md")
    rnnbench("history", "series", "--store", str(store), out=out / "series.md")
    site = Path(args.site).resolve() if args.site else store.parent / "site"
    rnnbench("publish", "--store", str(store), "--out", str(site))
    screenshots(site, out / "screenshots")
    print(f"store {store}, site {site} (not committed: rebuilt by this script)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
