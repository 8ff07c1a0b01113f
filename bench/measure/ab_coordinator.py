"""The A/B coordinator: set both sides up, check they agree, measure blocks in ABBA order.

A side is any object with `name` ("A"/"B"), `setup(cases, threads, equivalence, progress)` ->
ready message, `measure(case_id, rounds, warmup)` -> raw seconds (CaseFailed when the case
raised), and `close()`. The real one is bench.measure.ab_sides.WorkerSide; tests use fakes.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable, Sequence
from concurrent.futures import FIRST_EXCEPTION, ThreadPoolExecutor, wait
from dataclasses import dataclass, field

from bench.cases import Case
from bench.errors import UserError
from bench.measure.ab_sides import CaseFailed

SIDES = ("A", "B")


@dataclass(frozen=True)
class Schedule:
    """Pairs of blocks per case, timed rounds per block, untimed calls before each block, and
    worker generations (fresh processes per side) the pairs are split over."""

    blocks: int
    rounds: int
    warmup: int
    generations: int = 1

    def passes_of(self, generation: int) -> range:
        """The passes generation `generation` measures (the pairs split as evenly as can be)."""
        edges = [round(g * self.blocks / self.generations) for g in range(self.generations + 1)]
        return range(edges[generation], edges[generation + 1])


@dataclass
class ABState:
    """Everything measured so far (what ab.json stores, also when a run is cut short)."""

    cases: list[Case]
    ready: dict[str, dict] = field(default_factory=dict)
    samples: dict[str, dict[str, list[list[float]]]] = field(default_factory=dict)
    failures: dict[str, dict[str, str]] = field(default_factory=dict)  # side -> id -> reason
    passes_done: int = 0
    pass_generation: list[int] = field(default_factory=list)  # worker generation of each pass

    def status(self, case_id: str, side: str) -> tuple[str, str | None]:
        """(status, reason) of a case on a side, measurement failures included."""
        if case_id in self.failures.get(side, {}):
            return "error", self.failures[side][case_id]
        row = self.ready.get(side, {}).get("cases", {}).get(case_id)
        if row is None:
            return "missing", None
        return row.get("status"), row.get("reason")

    def runnable(self) -> list[str]:
        """Ids ok on both sides and not failed during measurement, in case order."""
        return [c.id for c in self.cases
                if all(self.status(c.id, s)[0] == "ok" for s in SIDES)]

    def generations(self) -> list[int]:
        """Worker generation of each measured pass (what the statistics group pairs by)."""
        return list(self.pass_generation)

    def stats_input(self) -> dict[str, dict]:
        """Per-case input of bench.analysis.ab_stats.verdict_frame."""
        out = {}
        for case in self.cases:
            (a_status, a_why), (b_status, b_why) = (self.status(case.id, s) for s in SIDES)
            blocks = self.samples.get(case.id, {})
            out[case.id] = {"a_status": a_status, "b_status": b_status, "a_reason": a_why,
                            "b_reason": b_why, "a": blocks.get("A", []), "b": blocks.get("B", [])}
        return out


def setup_sides(sides: Sequence, state: ABState, *, threads: int | None, equivalence: bool,
                progress: Callable | None = None) -> None:
    """Set both sides up concurrently (each side is mostly waiting on its own process).

    When one side fails (or on Ctrl-C) every side is closed at once, so nobody waits for the
    other side's setup to finish; the first failure in side order is raised. A later worker
    generation (state.ready already filled) must bring up the same cases: one that no longer
    runs becomes a failure of that side, like a case that raised during measurement.
    """
    earlier = dict(state.ready)
    params = [c.params() for c in state.cases]
    pool = ThreadPoolExecutor(max_workers=len(sides))
    try:
        futures = {side.name: pool.submit(side.setup, params, threads, equivalence, progress)
                   for side in sides}
        wait(futures.values(), return_when=FIRST_EXCEPTION)
        failed = [f.exception() for f in futures.values() if f.done() and f.exception()]
        if failed:
            raise failed[0]
        for name, future in futures.items():
            state.ready[name] = future.result()
    except BaseException:
        for side in sides:
            side.close()
        raise
    finally:
        pool.shutdown(wait=True)
    if earlier:
        _carry_over(earlier, state)
    check_agreement(state)


def _carry_over(earlier: dict[str, dict], state: ABState) -> None:
    """Keep the first generation's ready messages; record cases a new generation lost."""
    for name, first in earlier.items():
        now = state.ready[name].get("cases", {})
        for case_id, row in first.get("cases", {}).items():
            new = now.get(case_id, {})
            if row.get("status") == "ok" and new.get("status") != "ok":
                state.failures.setdefault(name, {}).setdefault(
                    case_id, f"a new worker could not run it: {new.get('reason')}")
        state.ready[name] = first


def check_agreement(state: ABState) -> None:
    """Both sides must run the same cases: unknown or ok-vs-skipped on one side is an input error.

    Errors are not input errors: error on B only -> broken (exit 1), on A only -> unreliable.
    """
    for name in SIDES:
        got = set(state.ready[name].get("cases", {}))
        wanted = {c.id for c in state.cases}
        if got != wanted:
            raise UserError(f"side {name}: worker answered for {len(got)} case(s) instead of "
                            f"the {len(wanted)} asked for")
    for case in state.cases:
        (a, a_why), (b, b_why) = (state.status(case.id, s) for s in SIDES)
        for name, status, why in (("A", a, a_why), ("B", b, b_why)):
            if status == "unknown":
                raise UserError(f"side {name} does not know case {case.id} ({why}): the sides "
                                "select different cases; narrow the selection (--impl, -k)")
        if {a, b} == {"ok", "skipped"}:
            side, why = ("A", a_why) if a == "skipped" else ("B", b_why)
            raise UserError(f"case {case.id} is skipped on side {side} only ({why}): the sides "
                            "select different cases; narrow the selection or fix that side")


def measure_sides(sides: Sequence, state: ABState, schedule: Schedule, *,
                  progress: Callable[[str], None] | None = None,
                  clock: Callable[[], float] = time.perf_counter, generation: int = 0) -> None:
    """The passes of `generation` over the runnable cases; A then B on even passes, B then A on
    odd ones."""
    by_name = {side.name: side for side in sides}
    started = clock()
    for k in schedule.passes_of(generation):
        order = SIDES if k % 2 == 0 else SIDES[::-1]
        for case_id in state.runnable():
            for name in order:
                try:
                    block = by_name[name].measure(case_id, schedule.rounds, schedule.warmup)
                except CaseFailed as exc:
                    state.failures.setdefault(name, {})[case_id] = str(exc)
                    break
                state.samples.setdefault(case_id, {"A": [], "B": []})[name].append(block)
        state.passes_done = k + 1
        state.pass_generation.append(generation)
        if progress is not None:
            progress(f"[pass {k + 1}/{schedule.blocks} {clock() - started:6.1f}s] "
                     f"{len(state.runnable())} case(s) x 2 sides")


def print_progress(text: str) -> None:
    """Progress lines on stderr."""
    print(text, file=sys.stderr, flush=True)


def setup_progress(stream=None) -> Callable[[str, dict], None]:
    """A setup-progress callback that prints every 10th case (and the first) per side."""
    def report(side: str, msg: dict) -> None:
        done, total = msg.get("done", 0), msg.get("total", 0)
        if done % 10 == 0:
            print(f"  side {side}: setting up case {done + 1}/{total} ({msg.get('id')})",
                  file=stream or sys.stderr, flush=True)
    return report
