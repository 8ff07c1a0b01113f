"""The Collector pytest plugin: environment and calibration once, a row per case, saves."""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path

from bench.analysis.summary import status_cell
from bench.rows import CaseRow


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
        self.doc: dict | None = None  # the run's document without its rows (saved with them)
        self.rows: list[CaseRow] = []  # typed until saved
        self.total = 0
        self.done = 0
        self.resolution = 1e-9
        self.calibrator = None  # a calibration.Calibrator once the cases are known
        self._last: CaseRow | None = None
        self.write_error = None  # the storage.WriteError that stopped the run, if any
        self.saved = 0  # rows in the last snapshot that reached the disk
        self._tty = hasattr(self.stream, "isatty") and self.stream.isatty()

    # hooks
    def pytest_collection_finish(self, session) -> None:
        """Count the step-time cases, fingerprint the environment and calibrate the devices."""
        from bench.impls.devices import case_skip_reason
        from bench.measure import calibration, timing
        from bench.measure.env import collect_env
        from bench.results import empty_document

        cases = [item.callspec.params["case"] for item in session.items
                 if hasattr(item, "callspec") and "case" in item.callspec.params]
        self.total = len(cases)
        if not cases:  # e.g. only the harness-overhead benchmark was collected
            return
        pairs = [(c.device, c.dtype) for c in cases if case_skip_reason(c) is None]
        self.calibrator = calibration.Calibrator(pairs)
        names = ", ".join(f"{d} {t}" for d, t in self.calibrator.pairs) or "none"
        self._say(f"environment and matmul calibration ({names}) ...")
        self.resolution = timing.clock_resolution()
        calib = self.calibrator.measure("start") if self.calibrator.pairs else {}
        if calib:
            calib["clock_resolution_s"] = self.resolution
        self.doc = empty_document(run_id=self.run_id, env=collect_env(self.threads),
                                  command=self.command, preset=self.preset, calibration=calib,
                                  planned=self.total)
        if calib:
            self._say(f"matmul peak {calibration.describe(calib)}; {self.total} cases")
        self.save()

    def pytest_runtest_logstart(self, nodeid: str, location) -> None:
        """Show which case is starting (on a terminal, overwritten when it finishes)."""
        if self.progress and self._tty and "[" in nodeid:
            case_id = nodeid.rsplit("[", 1)[1].rstrip("]")
            self.stream.write(f"\r\x1b[K{self._prefix(self.done + 1)} {case_id}")
            self.stream.flush()

    def pytest_sessionfinish(self, session, exitstatus) -> None:
        """Record the load at the end (a busy machine explains unstable timings), whether every
        planned case finished (`status`), and save."""
        import pytest

        from bench.measure.env import load_average
        from bench.results import mark_finished

        if self.doc is not None:
            ended = exitstatus in (pytest.ExitCode.OK, pytest.ExitCode.TESTS_FAILED)
            if ended and self.done:
                self.calibrate_again("end")
            self.doc["env"]["loadavg_end"] = load_average()
            mark_finished(self.doc, self.done, complete=ended)
            self.save(stop=False)

    def pytest_runtest_logfinish(self, nodeid: str, location) -> None:
        """Print the finished case's line (outside pytest's output capture)."""
        row, self._last = self._last, None
        if row is not None and self.progress:
            prefix = "\r\x1b[K" if self._tty else ""
            self._say(f"{prefix}{self._prefix(self.done)} {status_cell(row):<24} {row.id}")
        if self.calibrator is not None and self.doc is not None and self.calibrator.due():
            self.calibrate_again(f"after {self.done} cases")

    # rows
    def record(self, row: CaseRow) -> None:
        """Add a finished case and save a snapshot of the whole run."""
        if self.doc is None:  # a case ran outside a collected session (should not happen)
            return
        from bench import roofline
        from bench.results import mark_finished

        self.rows.append(row)
        self.done += 1
        if roofline.record_case(self.doc["calibration"], row):
            self.rows = roofline.rescore_rows(self.rows, self.doc["calibration"])
        mark_finished(self.doc, self.done, complete=False)
        self._last = row
        self.save()

    def calibrate_again(self, label: str) -> None:
        """Measure the matmul peaks again (kept with the earlier ones) and rescore the rows."""
        from bench import roofline
        from bench.measure.calibration import describe

        if self.calibrator is None or not self.calibrator.pairs or self.doc is None:
            return
        self._say(f"matmul calibration again ({label}) ...")
        self.calibrator.measure(label, self.done)
        self._say(f"matmul peak {describe(self.doc['calibration'])}")
        self.rows = roofline.rescore_rows(self.rows, self.doc["calibration"])
        self.save(stop=label != "end")

    def save(self, *, stop: bool = True) -> None:
        """Write the current snapshot (atomic) when this run has a folder.

        When the disk refuses it (full, read-only) the last snapshot on disk stays as it was,
        the error is kept in `write_error`, and the session stops (`stop`): nothing measured
        from here on could be saved.
        """
        if self.run_dir is None or self.doc is None or self.write_error is not None:
            return
        import pytest

        from bench.results import save_run
        from bench.storage import WriteError

        try:
            save_run(self.run_dir, self.doc, cases=self.rows)
        except WriteError as exc:
            self.write_error = exc
            if stop:
                pytest.exit(f"rnnbench: {exc}", returncode=pytest.ExitCode.INTERRUPTED)
            return
        self.saved = len(self.rows)

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
