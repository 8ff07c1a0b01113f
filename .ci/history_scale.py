#!/usr/bin/env python3
"""The history store and site at fleet scale: a synthetic store, its row counts and timings.

    python3 .ci/history_scale.py --backend sqlite|postgresql [--machines 100 --cases 200
        --runs-per-machine 100] [--out FILE.md]

Fills a fresh store with machines × runs-per-machine runs of `cases` cases each (the points
go in through the store's own insert path, a run per transaction, batched for speed), then
times what a user meets: adding one more real run folder (`history add`, 1 run), reading every
point, `history changes` over every series, and `publish` of the whole site. PostgreSQL runs
on a throw-away local server (tests/postgres.py). Timings depend on the machine and its load:
the load average is printed with them.
"""

from __future__ import annotations

import argparse
import os
import shutil
import sqlite3
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import numpy as np  # noqa: E402

from bench.history.ingest import _insert, add_paths  # noqa: E402
from bench.history.points import Machine, Point, RunRecord, series_key  # noqa: E402
from bench.history.schema import MACHINE_COLUMNS, POINT_COLUMNS, RUN_COLUMNS  # noqa: E402
from bench.history.store import open_store  # noqa: E402
from bench.registry import CORE  # noqa: E402
from bench.rows import MEDIAN_S  # noqa: E402
from bench.storage import atomic_write_text  # noqa: E402

PHASES = ("forward", "backward", "train_step")


def case_ids(n: int) -> list[tuple[str, str, str]]:
    """n distinct (case id, impl, phase) in the project's id format."""
    out = []
    for batch in (16, 32, 64, 128, 256, 512, 1024):
        for impl in CORE:
            for unroll in ("static", "dynamic"):
                for phase in PHASES:
                    out.append((f"{impl}/{unroll}/cpu/b{batch}-t10-i8-h32-l1/fp32/{phase}",
                                impl, phase))
    return out[:n]


def fill(store, machines: int, cases: int, runs: int, batch: int = 50) -> None:
    """machines × runs synthetic runs of `cases` points each."""
    rng = np.random.default_rng(0)
    ids = case_ids(cases)
    run_rows, point_rows = [], []
    for m in range(machines):
        machine = Machine.from_env({"cpu_model": f"Synthetic CPU {m:03d}", "intra_op_threads": 1})
        store.execute(_insert("machines", MACHINE_COLUMNS, conflict="(machine)"),
                      (machine.machine, machine.label, machine.identity_json,
                       "2026-01-01T00:00:00Z"))
        base = np.exp(rng.normal(-7, 1, cases))
        for r in range(runs):
            run_id = f"m{m:03d}-r{r:04d}"
            commit = f"{r:040x}"
            when = f"2026-{1 + r // 28 % 12:02d}-{1 + r % 28:02d}T{m % 24:02d}:00:00Z"
            run_rows.append(RunRecord(run_id, "run", f"{m}-{r}", "synthetic", machine.machine,
                                      commit, when, when, "complete", None, cases, when).row())
            values = base * np.exp(rng.normal(0, 0.03, cases))
            for (cid, impl, phase), v in zip(ids, values, strict=True):
                point_rows.append(Point(series_key(cid, MEDIAN_S, machine.machine), run_id,
                                        cid, MEDIAN_S, machine.machine, impl, phase, commit,
                                        when, when, float(v), float(v) * 0.98, float(v) * 1.02,
                                        9, "complete", None, 50.0).row())
            if len(run_rows) >= batch:
                _flush(store, run_rows, point_rows)
    _flush(store, run_rows, point_rows)


def _flush(store, run_rows, point_rows) -> None:
    with store.writing():
        store.executemany(_insert("runs", RUN_COLUMNS), run_rows)
        store.executemany(_insert("points", POINT_COLUMNS), point_rows)
    run_rows.clear()
    point_rows.clear()


def timed(fn):
    """(seconds, result) of one call."""
    start = time.perf_counter()
    result = fn()
    return time.perf_counter() - start, result


def cli(*args: str) -> None:
    """Run the rnnbench CLI of this tree; fail loudly on exit 2."""
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    proc = subprocess.run([sys.executable, "-m", "bench", *args], env=env, capture_output=True,
                          text=True, check=False)
    if proc.returncode == 2:
        raise SystemExit(proc.stderr)


def measure(url: str, args, work: Path) -> list[tuple[str, str]]:
    """Fill the store, then time add / read / changes / publish; (what, value) rows."""
    from bench.history.series import points_frame
    from tests.history_data import write_run

    rows = []
    with open_store(url) as store:
        seconds, _ = timed(lambda: fill(store, args.machines, args.cases, args.runs_per_machine))
        rows.append(("fill (synthetic, batched)", f"{seconds:.1f} s"))
        for table in ("machines", "runs", "points"):
            count = store.execute(f"SELECT COUNT(*) FROM {table}")[0][0]
            rows.append((f"rows in {table}", f"{count:,}"))
        folder = write_run(work / "one-more", "one-more-run", commit="f" * 40,
                           created="2027-01-01T00:00:00Z")
        seconds, outcomes = timed(lambda: add_paths(store, [str(folder)]))
        assert outcomes[0].result == "added", outcomes
        rows.append(("history add of one run folder", f"{seconds * 1000:.0f} ms"))
        seconds, frame = timed(lambda: points_frame(store))
        rows.append(("read every point into a DataFrame", f"{seconds:.1f} s ({len(frame):,})"))
        case = case_ids(1)[0][0]
        seconds, one = timed(lambda: store.frame(
            "SELECT * FROM points WHERE case_id = ? AND machine = ?",
            (case, Machine.from_env({"cpu_model": "Synthetic CPU 000",
                                     "intra_op_threads": 1}).machine)))
        rows.append(("one series by index (case, machine)", f"{seconds * 1000:.0f} ms "
                                                            f"({len(one)} points)"))
    seconds, _ = timed(lambda: cli("history", "changes", "--store", url, "--metric", MEDIAN_S))
    rows.append(("history changes over every series", f"{seconds:.0f} s"))
    site = work / "site"
    seconds, _ = timed(lambda: cli("publish", "--store", url, "--out", str(site)))
    pages = sum(1 for _ in site.rglob("*.html"))
    size = sum(p.stat().st_size for p in site.rglob("*")) / 1e6
    rows.append(("publish (whole site)", f"{seconds:.0f} s ({pages} pages, {size:.0f} MB)"))
    if url.endswith(".sqlite"):
        rows.append(("store size", f"{Path(url).stat().st_size / 1e6:.0f} MB"))
    return rows


def main() -> int:
    """Build the store on one back end, measure, print (and write) a Markdown table."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--backend", choices=("sqlite", "postgresql"), default="sqlite")
    parser.add_argument("--machines", type=int, default=100)
    parser.add_argument("--cases", type=int, default=200)
    parser.add_argument("--runs-per-machine", type=int, default=100)
    parser.add_argument("--out", type=Path)
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="rnnbench-scale-"))
    load = os.getloadavg()
    try:
        if args.backend == "sqlite":
            rows = measure(str(work / "history.sqlite"), args, work)
        else:
            from tests import postgres

            with postgres.running() as server:
                rows = measure(server.new_database(), args, work)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    end = os.getloadavg()
    lines = [f"# History store at scale: {args.backend}", "",
             f"{args.machines} machines × {args.cases} cases × {args.runs_per_machine} runs per "
             f"machine ({args.machines * args.runs_per_machine:,} runs). sqlite "
             f"{sqlite3.sqlite_version}. Load average at start {load[0]:.2f}, at end "
             f"{end[0]:.2f} (2-core VM, shared: other jobs ran). Command: `python3 "
             f".ci/history_scale.py --backend {args.backend} --machines {args.machines} "
             f"--cases {args.cases} --runs-per-machine {args.runs_per_machine}`.", "",
             "| what | value |", "|---|---|", *[f"| {a} | {b} |" for a, b in rows]]
    text = "\n".join(lines) + "\n"
    print(text)
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        atomic_write_text(args.out, text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
