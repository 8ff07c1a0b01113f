"""Run a step-time preset through the pytest-benchmark suite and write a run folder.

`rnnbench run` turns its flags into the suite's options (bench/measure/options.py, one table
for both) and calls `pytest.main` on `bench/measure/suites/test_step_time.py` with a Collector
plugin: the same suite as `pytest bench/measure/suites`, plus progress on stderr, a results
snapshot after every case and a summary table at the end.
"""

from __future__ import annotations

import argparse
import os
import shlex
import sys
from pathlib import Path

from bench.analysis.summary import busy_machine_warning, summary_table
from bench.args import add_out, split_values
from bench.errors import UserError
from bench.measure.options import (
    DEFAULT_PRESET,
    add_run_options,
    is_filtered,
    selection_kwargs,
    suite_options,
)
from bench.measure.run.collector import Collector
from bench.measure.run.finish import write_report
from bench.measure.selection import nothing_runs, selected_cases
from bench.rows import CaseRow

__all__ = ["DEFAULT_PRESET", "add_arguments", "main", "pytest_arguments", "selected_cases",
           "split_values"]

SUITES = Path(__file__).resolve().parents[1] / "suites"
STEP_TIME_SUITE = SUITES / "test_step_time.py"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Register the `run` flags."""
    add_run_options(parser)
    add_out(parser, "run folder to create (default: reports/<run-id>); never overwritten")
    parser.add_argument("-v", "--verbose", action="store_true",
                        help="show pytest's own output and tracebacks of failing cases")
    parser.add_argument("pytest_args", nargs="*", metavar="-- PYTEST_ARGS",
                        help="extra arguments passed to pytest after `--`")


def pytest_arguments(args: argparse.Namespace) -> list[str]:
    """The full pytest command line `run` uses (config isolated from any project ini)."""
    base = [str(STEP_TIME_SUITE), "-c", os.devnull, "--rootdir", str(SUITES),
            "-p", "no:cacheprovider", "--import-mode=importlib", "--benchmark-quiet"]
    base += ["-v", "--tb=short"] if args.verbose else ["-p", "no:terminal"]
    return base + suite_options(args) + list(args.pytest_args or [])


def main(args: argparse.Namespace) -> int:
    """Run the selected cases; 0 when all ran or were skipped, 1 if any errored, 130 on Ctrl-C.

    A run in which no case can be measured (all would be skipped) is refused up front with
    exit 2 and no folder; if it still happens (all rows skipped), exit 2 without a report.
    """
    import pytest

    from bench.impls.tfsetup import import_tensorflow
    from bench.results import new_run_id
    from bench.storage import make_run_dir

    chosen = selected_cases(args.preset, **selection_kwargs(lambda name: getattr(args, name)))
    if args.out is not None:
        make_run_dir(args.out, "", dry_run=True)  # a taken --out fails before TensorFlow loads
    import_tensorflow(verbose=args.verbose)
    if args.threads is not None:
        from bench.measure.env import apply_threads

        apply_threads(args.threads)
    if "gpu" in (split_values(args.device) or ()):
        from bench.impls.devices import require_device

        require_device("gpu")
    reason = nothing_runs(chosen)
    if reason:
        raise UserError(f"nothing to measure: {reason}")
    run_id = new_run_id(args.preset + ("-filtered" if is_filtered(args) else "")
                        + ("-xla" if args.xla else ""))
    run_dir = make_run_dir(args.out, run_id)
    command = shlex.join(["rnnbench", "run", *suite_options(args, run_flags=True)])
    collector = Collector(run_dir, run_id=run_id, command=command, preset=args.preset,
                          threads=args.threads)
    print(f"rnnbench run: {len(chosen)} cases of preset {args.preset!r} → {run_dir}",
          file=sys.stderr)
    code = pytest.main(pytest_arguments(args), plugins=[collector])
    if collector.write_error is not None:
        raise UserError(write_failure(collector, run_dir))
    rows = collector.rows if collector.doc else []
    measured = any(r.status != "skipped" for r in rows)
    if rows:
        print(summary_table(rows, highlight=sys.stdout.isatty(), verbose=bool(args.verbose)))
        busy = busy_machine_warning(collector.doc["env"])
        if busy:
            print(busy)
    if collector.doc is not None and measured:
        write_report(run_dir, "run")
    print(f"results: {run_dir}", file=sys.stderr)
    return _exit_code(code, collector, rows, run_dir)


def write_failure(collector: Collector, run_dir: Path) -> str:
    """The one line of a run stopped by a write error: the error, and what the disk holds."""
    from bench.results import RESULTS_JSON

    planned = collector.total
    if not (run_dir / RESULTS_JSON).exists():
        return f"{collector.write_error}; nothing was saved"
    return (f"{collector.write_error}; {collector.saved} of {planned} case(s) are saved in "
            f"{run_dir / RESULTS_JSON} (status partial); free space or choose another --out")


def _exit_code(code, collector: Collector, rows: list[CaseRow], run_dir: Path) -> int:
    import pytest

    if code == pytest.ExitCode.INTERRUPTED:
        print(f"rnnbench run: interrupted; {len(rows)} finished case(s) kept in {run_dir} "
              "(marked partial)", file=sys.stderr)
        return 130
    if code in (pytest.ExitCode.USAGE_ERROR, pytest.ExitCode.INTERNAL_ERROR):
        raise UserError(f"pytest could not run the suite (exit {int(code)}); rerun with -v")
    if collector.doc is None:
        raise UserError("the suite collected no cases; rerun with -v")
    missing = collector.total - len(rows)
    if missing:
        print(f"rnnbench run: {missing} case(s) ended without a result row (a harness failure, "
              "not a case error); rerun with -v to see pytest's report", file=sys.stderr)
        return 1
    if rows and all(r.status == "skipped" for r in rows):
        raise UserError(f"nothing was measured: all {len(rows)} cases were skipped "
                        f"({rows[0].reason}); no report written")
    errors = sum(r.status == "error" for r in rows)
    if errors:
        print(f"rnnbench run: {errors} case(s) errored (see the table)", file=sys.stderr)
        return 1
    return 0
