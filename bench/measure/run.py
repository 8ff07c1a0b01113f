"""Run a step-time preset through the pytest-benchmark suite and write a run folder.

`rnnbench run` translates its flags into options of `bench/measure/suites/conftest.py` and
calls `pytest.main` on `bench/measure/suites/test_step_time.py` with a `Collector` plugin: the
same suite as `pytest bench/measure/suites`, plus progress on stderr, a results snapshot after
every case and a summary table at the end.
"""

from __future__ import annotations

import argparse
import os
import shlex
import sys
import time
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path

from bench import cases as cases_mod
from bench.errors import UserError, one_line

SUITES = Path(__file__).resolve().parent / "suites"
STEP_TIME_SUITE = SUITES / "test_step_time.py"
DEFAULT_PRESET = "smoke"
# A run keeps up to `cores` threads busy itself; load beyond 1.5× the cores means other work.
BUSY_LOAD_PER_CORE = 1.5


# Case selection (shared with the suite's conftest) ------------------------------------------
def split_values(values: Sequence[str] | None) -> list[str] | None:
    """Flatten repeatable, comma-separated option values; None when nothing was given."""
    out = [v.strip() for value in values or () for v in value.split(",") if v.strip()]
    return out or None


def selected_cases(preset: str, *, impl=None, unroll=None, phase=None, device=None,
                   keyword: str | None = None, xla: bool = False) -> list[cases_mod.Case]:
    """The preset's cases after the filters (UserError for unknown names)."""
    chosen = cases_mod.select(cases_mod.preset(preset), impl=split_values(impl),
                              unroll=split_values(unroll), phase=split_values(phase),
                              device=split_values(device), keyword=keyword)
    if xla:
        chosen = [replace(case, xla=True) for case in chosen]
    return chosen


# Rows ----------------------------------------------------------------------------------------
def make_row(case: cases_mod.Case, status: str, *, reason: str | None = None,
             stats: dict | None = None, code_version: str | None = None) -> dict:
    """A results row (bench.results schema v1)."""
    return {"id": case.id, "case": case.params(), "status": status, "reason": reason,
            "stats": {"samples_s": [], "warnings": [], **(stats or {})},
            "code_version": code_version}


# The pytest plugin ----------------------------------------------------------------------------
class Collector:
    """pytest plugin: environment and calibration once, rows as cases finish, progress, saves."""

    def __init__(self, run_dir: str | os.PathLike | None, *, run_id: str, command: str,
                 preset: str | None, threads: int | None = None, progress: bool = True,
                 stream=None):
        self.run_dir = Path(run_dir) if run_dir is not None else None
        self.run_id, self.command, self.preset, self.threads = run_id, command, preset, threads
        self.progress = progress
        self.stream = stream or sys.stderr
        self.started = time.perf_counter()
        self.doc: dict | None = None
        self.total = 0
        self.done = 0
        self.resolution = 1e-9
        self._last: dict | None = None
        self._tty = hasattr(self.stream, "isatty") and self.stream.isatty()

    # hooks
    def pytest_collection_finish(self, session) -> None:
        """Count the step-time cases, fingerprint the environment and calibrate the devices."""
        from bench.impls.devices import skip_reason
        from bench.measure import calibration, timing
        from bench.measure.env import collect_env
        from bench.registry import get_spec
        from bench.results import empty_document

        cases = [item.callspec.params["case"] for item in session.items
                 if hasattr(item, "callspec") and "case" in item.callspec.params]
        self.total = len(cases)
        if not cases:  # e.g. only the harness-overhead benchmark was collected
            return
        runnable = [c.device for c in cases if skip_reason(get_spec(c.impl), c.device) is None]
        devices = ", ".join(dict.fromkeys(runnable)) or "none"
        self._say(f"environment and matmul calibration ({devices}) ...")
        self.resolution = timing.clock_resolution()
        calib = calibration.calibrate_devices(runnable)
        if calib:
            calib["clock_resolution_s"] = self.resolution
        self.doc = empty_document(run_id=self.run_id, env=collect_env(self.threads),
                                  command=self.command, preset=self.preset, calibration=calib)
        if calib:
            self._say(f"matmul peak {calib['matmul_gflops']:.1f} GFLOP/s on {calib['device']} "
                      f"(n={calib['matmul_n']}); {self.total} cases")
        self.save()

    def pytest_runtest_logstart(self, nodeid: str, location) -> None:
        """Show which case is starting (on a terminal, overwritten when it finishes)."""
        if self.progress and self._tty and "[" in nodeid:
            case_id = nodeid.rsplit("[", 1)[1].rstrip("]")
            self.stream.write(f"\r\x1b[K{self._prefix(self.done + 1)} {case_id}")
            self.stream.flush()

    def pytest_sessionfinish(self, session) -> None:
        """Record the load at the end (a busy machine explains unstable timings) and save."""
        from bench.measure.env import load_average

        if self.doc is not None:
            self.doc["env"]["loadavg_end"] = load_average()
            self.save()

    def pytest_runtest_logfinish(self, nodeid: str, location) -> None:
        """Print the finished case's line (outside pytest's output capture)."""
        row, self._last = self._last, None
        if row is not None and self.progress:
            prefix = "\r\x1b[K" if self._tty else ""
            self._say(f"{prefix}{self._prefix(self.done)} {_status_cell(row):<24} {row['id']}")

    # rows
    def record(self, row: dict) -> None:
        """Add a finished case and save a snapshot of the whole run."""
        if self.doc is None:  # a case ran outside a collected session (should not happen)
            return
        self.doc["cases"].append(row)
        self.done += 1
        self._last = row
        self.save()

    def save(self) -> None:
        """Write the current snapshot (atomic) when this run has a folder."""
        if self.run_dir is not None and self.doc is not None:
            from bench.results import save_run

            save_run(self.run_dir, self.doc)

    # output
    def _prefix(self, n: int) -> str:
        width = len(str(self.total))
        return f"[{n:>{width}}/{self.total} {time.perf_counter() - self.started:6.1f}s]"

    def _say(self, text: str) -> None:
        if self.progress:
            print(text, file=self.stream, flush=True)


def find_collector(config) -> Collector | None:
    """The Collector registered with this pytest session, if any."""
    for plugin in config.pluginmanager.get_plugins():
        if isinstance(plugin, Collector):
            return plugin
    return None


# Summary table --------------------------------------------------------------------------------
def fmt_time(seconds: float | None) -> str:
    """Seconds in a readable unit (ns, µs, ms, s)."""
    if seconds is None:
        return "-"
    for unit, scale in (("s", 1.0), ("ms", 1e-3), ("µs", 1e-6)):
        if seconds >= scale:
            return f"{seconds / scale:.3g} {unit}"
    return f"{seconds / 1e-9:.3g} ns"


def _status_cell(row: dict) -> str:
    if row["status"] == "ok":
        stats = row["stats"]
        warn = f" ({len(stats.get('warnings') or [])} warn)" if stats.get("warnings") else ""
        return f"ok {fmt_time(stats.get('median_s'))}{warn}"
    return row["status"]


def summary_table(rows: Sequence[dict], highlight: bool = False) -> str:
    """Text table of a run, grouped by device/shape/phase; the fastest impl marked with `*`."""
    groups: dict[tuple, list[dict]] = {}
    for row in rows:
        c = row["case"]
        case = cases_mod.Case.from_params(c)
        key = (c["device"], case.shape.label, c["dtype"] + ("-xla" if c["xla"] else ""),
               c["phase"])
        groups.setdefault(key, []).append(row)
    head = (f"  {'impl/unroll':<26} {'median':>10} {'IQR':>10} {'min':>10} {'rounds':>6} "
            f"{'GFLOP/s':>8} {'%peak':>6} {'compile':>8}  note")
    lines = []
    for (device, shape, dtype, phase), members in groups.items():
        ok = sorted((r for r in members if r["status"] == "ok"),
                    key=lambda r: r["stats"].get("median_s") or float("inf"))
        rest = [r for r in members if r["status"] != "ok"]
        lines += ["", f"{phase} · {device} · {shape} · {dtype}", head]
        for i, row in enumerate(ok + rest):
            s, c = row["stats"], row["case"]
            mark = "*" if i == 0 and row["status"] == "ok" and len(ok) > 1 else " "
            name = f"{c['impl']}/{c['unroll']}"
            if row["status"] == "ok":
                note = f"{len(s.get('warnings') or [])} warning(s)" if s.get("warnings") else ""
                line = (f"{mark} {name:<26} {fmt_time(s.get('median_s')):>10} "
                        f"{fmt_time(s.get('iqr_s')):>10} {fmt_time(s.get('min_s')):>10} "
                        f"{s.get('rounds', 0):>6} {_num(s.get('gflops'), '.2f'):>8} "
                        f"{_num(s.get('pct_peak'), '.1f'):>6} "
                        f"{_num(s.get('compile_s'), '.2f'):>7}s  {note}")
            else:
                line = f"  {name:<26} {row['status'] + ': ' + (row.get('reason') or '')}"
            if mark == "*" and highlight:
                line = f"\x1b[1;32m{line}\x1b[0m"
            lines.append(line)
    warned = [r for r in rows if r["status"] == "ok" and r["stats"].get("warnings")]
    if warned:
        from bench.measure.timing import ADVICE

        lines += ["", f"stability warnings ({len(warned)} case(s)):"]
        for row in warned:
            texts = [w.replace("; " + ADVICE, "").replace(ADVICE, "").rstrip("; ")
                     for w in row["stats"]["warnings"]]
            lines.append(f"  {row['id']}: " + " | ".join(texts))
        lines.append(f"  advice: {ADVICE}")
    counts = {s: sum(r["status"] == s for r in rows) for s in ("ok", "skipped", "error")}
    lines += ["", f"{counts['ok']} ok, {counts['skipped']} skipped, {counts['error']} error"
                  "   (* = fastest in its group; times are medians of raw rounds)"]
    return "\n".join(lines)


def busy_machine_warning(env: dict) -> str | None:
    """A run-level warning when other work loaded the cores during the run, else None."""
    cores = env.get("cpu_count") or 1
    loads = [x[0] for x in (env.get("loadavg"), env.get("loadavg_end")) if x]
    if not loads or max(loads) <= BUSY_LOAD_PER_CORE * cores:
        return None
    return (f"warning: the machine was busy (1-min load up to {max(loads):.1f} on {cores} "
            "cores, this run included): timings are unreliable; rerun on an idle machine")


def _num(value: float | None, spec: str) -> str:
    return "-" if value is None else format(value, spec)


# CLI -------------------------------------------------------------------------------------------
def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Register the `run` flags."""
    presets = ", ".join(f"{k} ({v})" for k, v in cases_mod.PRESET_HELP.items())
    parser.add_argument("--preset", default=DEFAULT_PRESET,
                        help=f"named case list (default: {DEFAULT_PRESET}); one of: {presets}")
    for flag, what in (("--impl", "implementation"), ("--unroll", "unroll mode"),
                       ("--phase", "phase"), ("--device", "device")):
        parser.add_argument(flag, action="append", metavar="NAME",
                            help=f"keep only this {what} (repeatable, or comma-separated)")
    parser.add_argument("-k", dest="keyword", metavar="TEXT",
                        help="keep cases whose id contains TEXT or matches it as a glob")
    parser.add_argument("--xla", action="store_true",
                        help="compile every case with XLA (tf.function(jit_compile=True))")
    parser.add_argument("--threads", type=int, metavar="N",
                        help="TensorFlow intra-op threads (default: TF's choice); recorded in env")
    parser.add_argument("--out", metavar="DIR",
                        help="run folder to create (default: reports/<run-id>); never overwritten")
    parser.add_argument("--rounds", type=int, metavar="N",
                        help="fixed timed rounds per case (default: the preset's time budget)")
    parser.add_argument("--min-rounds", type=int, metavar="N",
                        help="at least N timed rounds per case (smoke default: 10)")
    parser.add_argument("--max-time", type=float, metavar="SEC",
                        help="time budget per case for the timed rounds (smoke: 0.25 s)")
    parser.add_argument("--warmup", type=int, metavar="N",
                        help="discarded warm-up rounds after the first call (default: 2)")
    parser.add_argument("--no-equivalence", action="store_true",
                        help="skip the check against the NumPy reference that runs before "
                             "each impl/unroll is timed (a few seconds per preset)")
    parser.add_argument("-v", "--verbose", action="store_true",
                        help="show pytest's own output and tracebacks of failing cases")
    parser.add_argument("pytest_args", nargs="*", metavar="-- PYTEST_ARGS",
                        help="extra arguments passed to pytest after `--`")


def suite_options(args: argparse.Namespace) -> list[str]:
    """The suite conftest options equivalent to the parsed `run` flags."""
    opts = ["--preset", args.preset]
    for name in ("impl", "unroll", "phase", "device"):
        for value in split_values(getattr(args, name)) or ():
            opts += [f"--{name}", value]
    if args.keyword:
        opts += ["--match", args.keyword]
    if args.xla:
        opts.append("--xla")
    if getattr(args, "no_equivalence", False):
        opts.append("--no-equivalence")
    for name in ("threads", "rounds", "min_rounds", "max_time", "warmup"):
        value = getattr(args, name)
        if value is not None:
            opts += [f"--{name.replace('_', '-')}", str(value)]
    return opts


def pytest_arguments(args: argparse.Namespace) -> list[str]:
    """The full pytest command line `run` uses (config isolated from any project ini)."""
    base = [str(STEP_TIME_SUITE), "-c", os.devnull, "--rootdir", str(SUITES),
            "-p", "no:cacheprovider", "--import-mode=importlib", "--benchmark-quiet"]
    base += ["-v", "--tb=short"] if args.verbose else ["-p", "no:terminal"]
    return base + suite_options(args) + list(args.pytest_args or [])


def _check_numbers(args: argparse.Namespace) -> None:
    for name in ("rounds", "min_rounds", "threads"):
        value = getattr(args, name)
        if value is not None and value < 1:
            raise UserError(f"--{name.replace('_', '-')} must be at least 1, got {value}")
    if args.warmup is not None and args.warmup < 0:
        raise UserError(f"--warmup must be 0 or more, got {args.warmup}")
    if args.max_time is not None and args.max_time <= 0:
        raise UserError(f"--max-time must be positive, got {args.max_time}")


def _write_report(run_dir: Path) -> None:
    try:
        from bench.analysis import report
    except ImportError:
        return
    write = getattr(report, "write_report", None)
    if write is None:
        return
    try:
        write(run_dir)
    except Exception as exc:  # the results are saved; the report can be rebuilt later
        print(f"rnnbench run: report not written ({one_line(exc)}); results are saved: "
              f"run `rnnbench report {run_dir}`", file=sys.stderr)


def main(args: argparse.Namespace) -> int:
    """Run the selected cases; 0 when all ran or were skipped, 1 if any errored, 130 on Ctrl-C."""
    import pytest

    from bench.results import make_run_dir, new_run_id

    _check_numbers(args)
    chosen = selected_cases(args.preset, impl=args.impl, unroll=args.unroll, phase=args.phase,
                            device=args.device, keyword=args.keyword, xla=args.xla)
    if not chosen:
        raise UserError(f"no case of preset {args.preset!r} matches the filters")
    if args.threads is not None:
        from bench.measure.env import apply_threads

        apply_threads(args.threads)
    if "gpu" in (split_values(args.device) or ()):
        from bench.impls.devices import require_device

        require_device("gpu")
    filtered = any(getattr(args, n) for n in ("impl", "unroll", "phase", "device", "keyword"))
    run_id = new_run_id(args.preset + ("-filtered" if filtered else "") + ("-xla" if args.xla
                                                                           else ""))
    run_dir = make_run_dir(args.out, run_id)
    command = shlex.join(["rnnbench", "run", *("-k" if t == "--match" else t
                                               for t in suite_options(args))])
    collector = Collector(run_dir, run_id=run_id, command=command, preset=args.preset,
                          threads=args.threads)
    print(f"rnnbench run: {len(chosen)} cases of preset {args.preset!r} → {run_dir}",
          file=sys.stderr)
    code = pytest.main(pytest_arguments(args), plugins=[collector])
    rows = collector.doc["cases"] if collector.doc else []
    if rows:
        print(summary_table(rows, highlight=sys.stdout.isatty()))
        busy = busy_machine_warning(collector.doc["env"])
        if busy:
            print(busy)
    if collector.doc is not None:
        _write_report(run_dir)
    print(f"results: {run_dir}", file=sys.stderr)
    if code == pytest.ExitCode.INTERRUPTED:
        print(f"rnnbench run: interrupted; {len(rows)} finished case(s) kept in {run_dir}",
              file=sys.stderr)
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
    errors = sum(r["status"] == "error" for r in rows)
    if errors:
        print(f"rnnbench run: {errors} case(s) errored (see the table)", file=sys.stderr)
        return 1
    return 0
