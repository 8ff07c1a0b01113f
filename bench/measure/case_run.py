"""One case measured, the same way for every driver: checks, build, first call, rounds, row.

The pytest suite's `measure_case` fixture and the A/B worker are thin adapters over `CaseRun`:

  check()    validate against this registry, code version, skip reason, equivalence
  build()    memory probe on, build the step, first call timed as `compile_s`
  settle()   memory probe off, kernel from the traced graph, kernel promise
  plan_rounds(policy)  warm-up (calls and seconds), then rounds planned from one more call
  time(...)  one block of timed rounds (warm-up discarded), any number of times
  row(...)   the finished `CaseRow` (ok with statistics, skipped or error)

A method that raises leaves the case to `fail(exc)`, which makes it an error row. The suite
settles after its timed rounds (memory covers build, trace and rounds); the worker settles
after the first call (memory covers build and trace: its blocks interleave with other cases).
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Any

from bench import rows
from bench.cases import Case
from bench.errors import UserError, one_line
from bench.measure import calibration, kernel, memory, phases, timing
from bench.rows import CaseRow

# A case that ran here, was skipped with a reason, raised, or is not in this side's registry.
STATUSES = ("ok", "skipped", "error", "unknown")


class NotEquivalentError(AssertionError):
    """An implementation disagrees with the reference: its timings would mean nothing."""


class CaseRun:
    """The state of one case from its checks to its row (see the module docstring)."""

    def __init__(self, case: Case, *, equivalence: dict | None = None,
                 timer: timing.Timer = time.perf_counter):
        self.case, self.equivalence, self.timer = case, equivalence, timer
        self.status, self.reason = "ok", None
        self.code_version: str | None = None
        self.compile_s: float | None = None
        self.kernel: str | None = None
        self.memory: dict = {}
        self.step: Any = None
        self._probe: Any = None
        self.setup_s: dict[str, float] = {}  # seconds per prepare() step

    @property
    def runnable(self) -> bool:
        """True while nothing has stopped the case from being timed."""
        return self.status == "ok"

    def check(self) -> bool:
        """Registry, code version, skip reason, equivalence (`equivalence` is its cache, None
        to skip it); False when the case is unknown here or skipped. NotEquivalentError when
        it disagrees with the reference."""
        from bench.impls.devices import case_skip_reason
        from bench.impls.equivalence import equivalence_problem

        try:
            self.case.validate()
        except UserError as exc:
            self.status, self.reason = "unknown", one_line(exc)
            return False
        self.code_version = phases.code_version(self.case)
        reason = case_skip_reason(self.case)
        if reason is not None:
            self.status, self.reason = "skipped", reason
            return False
        if self.equivalence is not None:
            problem = equivalence_problem(self.case, self.equivalence)
            if problem is not None:
                raise NotEquivalentError(problem)
        return True

    def build(self) -> None:
        """Start the memory probe, build the step and time its first call as `compile_s`."""
        self._probe = memory.start_probe(self.case.device)
        self.step = phases.build_step(self.case)
        self.compile_s, _ = timing.time_call(self.step.call, self.timer)

    def settle(self) -> None:
        """Stop the memory probe, then read the kernel (not the case's memory) and check the
        implementation's kernel promise."""
        if self._probe is not None:
            probe, self._probe = self._probe, None
            self.memory = probe.stop().row_fields()
        self.kernel = kernel.step_kernel(self.step)
        kernel.check_promise(self.case.impl, self.kernel)

    def prepare(self) -> bool:
        """check, build and settle, an exception making the case an error; True if runnable.
        The seconds of each step are kept in `setup_s` (check, build, first_call, settle)."""
        clock = time.perf_counter
        try:
            start = clock()
            ok = self.check()
            self.setup_s["check"] = clock() - start
            if ok:
                start = clock()
                self.build()
                self.setup_s["first_call"] = self.compile_s or 0.0
                self.setup_s["build"] = clock() - start - self.setup_s["first_call"]
                start = clock()
                self.settle()
                self.setup_s["settle"] = clock() - start
        except Exception as exc:  # a case that cannot run is a row, not a dead driver
            self.fail(exc)
        return self.runnable

    def plan_rounds(self, policy: timing.RoundsPolicy) -> int:
        """Warm up as the policy says, then time one more call to plan the rounds from it.

        The planning call counts as one of the policy's warm-up calls (build's first call,
        `compile_s`, does not).
        """
        timing.warm_up(self.step.call, calls=max(policy.warmup - 1, 0),
                       seconds=policy.warmup_s, timer=self.timer)
        estimate, _ = timing.time_call(self.step.call, self.timer)
        return policy.plan(estimate)

    def time(self, rounds: int, warmup: int = 0) -> list[float]:
        """One block: `warmup` untimed calls, then the raw seconds of `rounds` timed ones."""
        return timing.measure(self.step.call, rounds=rounds, warmup=warmup, timer=self.timer)

    def fail(self, exc: BaseException) -> None:
        """The case raised: it becomes an error row with the exception's one line."""
        self.status, self.reason = "error", one_line(exc)

    def row(self, samples: Sequence[float] = (), *, calibration_doc: dict | None = None,
            resolution: float = 1e-9, min_rounds: int = timing.MIN_RELIABLE_ROUNDS) -> CaseRow:
        """The case's row: statistics of `samples` when ok, else its reason (values checked)."""
        stats: dict = {rows.COMPILE_S: self.compile_s, rows.FLOPS: self.case.flops()}
        status = self.status
        if status == "ok":
            if not samples:
                raise ValueError(f"{self.case.id}: an ok row needs samples")
            stats.update(timing.summarize(samples))
            stats.update(calibration.roofline(self.case, stats[rows.MEDIAN_S],
                                              calibration_doc or {}))
            stats[rows.WARNINGS] = timing.stability_warnings(samples, resolution=resolution,
                                                             min_rounds=min_rounds)
        elif status == "skipped":
            stats = {rows.FLOPS: self.case.flops()}
        elif status == "unknown":  # not in this registry: as a row, it is an error
            status = "error"
        return make_row(self.case, status, reason=self.reason, stats=stats,
                        code_version=None if status == "skipped" else self.code_version,
                        kernel=self.kernel, **self.memory)


def make_row(case: Case, status: str, *, reason: str | None = None,
             stats: dict | None = None, code_version: str | None = None,
             kernel: str | None = None, memory_peak_bytes: int | None = None,
             memory_method: str | None = None) -> CaseRow:
    """A results row built through the typed row (bench.rows), values checked on the way."""
    # Through from_dict: every value is checked, and kernel and memory are written even when
    # None (null: not recorded by this run), unlike rows of older files that lack them.
    return CaseRow.from_dict({"id": case.id, "case": case.params(), "status": status,
                              "reason": reason, "stats": stats or {},
                              "code_version": code_version, "kernel": kernel,
                              "memory_peak_bytes": memory_peak_bytes,
                              "memory_method": memory_method}, "this run")
