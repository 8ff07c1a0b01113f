"""The A/B coordinator: set both sides up, check they agree, measure blocks in ABBA order.

A side is any object with `name` ("A"/"B"), `setup(cases, threads, equivalence, progress)` ->
ready message, `measure(case_id, rounds, warmup)` -> raw seconds (CaseFailed when the case
raised), and `close()`. The real one is bench.measure.ab.sides.WorkerSide; tests use fakes.
"""

from __future__ import annotations

import os
import sys
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import FIRST_EXCEPTION, ThreadPoolExecutor, wait
from dataclasses import dataclass, field

from bench.ab_rows import SIDES
from bench.cases import Case
from bench.errors import UserError
from bench.measure.ab.sides import CaseFailed

PROGRESS_EVERY_S = 5.0  # at most this long between two progress lines (and at every look)


@dataclass(frozen=True)
class Schedule:
    """Pairs of blocks per case, timed rounds per block, untimed calls before each block, and
    worker generations (separate processes per side) that take turns pass by pass."""

    blocks: int
    rounds: int
    warmup: int
    generations: int = 1

    def generation_of(self, k: int) -> int:
        """The worker generation that measures pass k: generations take turns, pass by pass."""
        return k % self.generations


@dataclass
class ABState:
    """Everything measured so far (what ab.json stores, also when a run is cut short)."""

    cases: list[Case]
    ready: dict[str, dict] = field(default_factory=dict)
    samples: dict[str, dict[str, list[list[float]]]] = field(default_factory=dict)
    failures: dict[str, dict[str, str]] = field(default_factory=dict)  # side -> id -> reason
    passes_done: int = 0
    pass_generation: list[int] = field(default_factory=list)  # worker generation of each pass
    setup: list[dict] = field(default_factory=list)  # per worker: seconds of its set-up steps

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

    def open_cases(self, sequential=None) -> list[str]:
        """Runnable ids still measured: not settled by `sequential` (None: all runnable)."""
        ids = self.runnable()
        return ids if sequential is None else sequential.open_cases(ids)

    def progress_words(self, sequential=None) -> str:
        """'45 case(s) x 2 sides', or how many are settled and how many still measured."""
        ids = self.runnable()
        if sequential is None:
            return f"{len(ids)} case(s) x 2 sides"
        settled = [sequential.stops[c].reason for c in ids if c in sequential.stops]
        kinds = ", ".join(f"{settled.count(r)} {r.removeprefix('settled ')}"
                          for r in sorted(set(settled)))
        return (f"{len(settled)}/{len(ids)} case(s) settled" + (f" ({kinds})" if kinds else "")
                + f"; measuring {len(ids) - len(settled)}")

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


def setup_sides(generations: Sequence[Sequence], state: ABState, *, threads: int | None,
                equivalence: bool, progress: Callable | None = None,
                at_once: int | None = None) -> None:
    """Set every worker of every generation up, at most `at_once` at a time (default: one per
    CPU this process may use; set-up is CPU-bound, and more at once only thrash each other).

    Equivalence is checked once per job, by side B's first worker: B is the code under test,
    and the code is the same in all of a side's generations. When one side fails (or on
    Ctrl-C) every side is closed at once and the first failure in order is raised. Later
    generations must bring up the same cases: one that no longer runs becomes a failure of
    that side, like a case that raised during measurement.
    """
    params = [c.params() for c in state.cases]
    everyone = [side for sides in generations for side in sides]
    gate = threading.BoundedSemaphore(max(1, at_once or usable_cpus()))

    def set_up(side, check: bool):
        with gate:
            start = time.perf_counter()
            ready = side.setup(params, threads, check, progress)
            ready.setdefault("setup_s", {})["wall"] = round(time.perf_counter() - start, 3)
            return ready

    pool = ThreadPoolExecutor(max_workers=len(everyone))
    try:
        futures = [[pool.submit(set_up, side, equivalence and g == 0 and side.name == "B")
                    for side in sides] for g, sides in enumerate(generations)]
        flat = [f for row in futures for f in row]
        wait(flat, return_when=FIRST_EXCEPTION)
        failed = [f.exception() for f in flat if f.done() and f.exception()]
        if failed:
            raise failed[0]
        readies = [{side.name: f.result() for side, f in zip(sides, row, strict=True)}
                   for sides, row in zip(generations, futures, strict=True)]
    except BaseException:
        for side in everyone:
            side.close()
        raise
    finally:
        pool.shutdown(wait=True)
    state.ready.update(readies[0])
    state.setup = [{"side": name, "generation": g + 1, **ready.get("setup_s", {})}
                   for g, ready_of in enumerate(readies) for name, ready in ready_of.items()]
    for later in readies[1:]:
        _carry_over(later, state)
    check_agreement(state)


def usable_cpus() -> int:
    """CPUs this process may run on (its affinity), at least 1."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except (AttributeError, OSError):
        return max(1, os.cpu_count() or 1)


def _carry_over(later: dict[str, dict], state: ABState) -> None:
    """Record the cases a later generation's worker could not run (the first one could)."""
    for name, ready in later.items():
        now = ready.get("cases", {})
        for case_id, row in state.ready.get(name, {}).get("cases", {}).items():
            new = now.get(case_id, {})
            if row.get("status") == "ok" and new.get("status") != "ok":
                state.failures.setdefault(name, {}).setdefault(
                    case_id, f"another worker could not run it: {new.get('reason')}")


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


def measure_sides(generations: Sequence[Sequence], state: ABState, schedule: Schedule, *,
                  progress: Callable[[str], None] | None = None,
                  clock: Callable[[], float] = time.perf_counter,
                  sequential=None, every_s: float = PROGRESS_EVERY_S) -> None:
    """Passes k = 0..K-1 over the runnable cases, by generation k mod G in turn; each generation
    alternates A-then-B and B-then-A on its own successive passes (ABBA per generation).

    `sequential` (a bench.analysis.ab_sequential.Sequential) looks at the verdicts after its
    look passes; a case it settles is measured no more, and the job ends when none is open.
    """
    started = last = clock()
    looks = set(sequential.rule.looks()) if sequential is not None else set()
    for k in range(state.passes_done, schedule.blocks):
        open_ids = state.open_cases(sequential)
        if not open_ids:
            break
        generation = schedule.generation_of(k)
        by_name = {side.name: side for side in generations[generation]}
        order = SIDES if (k // schedule.generations) % 2 == 0 else SIDES[::-1]
        for case_id in open_ids:
            for name in order:
                try:
                    block = by_name[name].measure(case_id, schedule.rounds, schedule.warmup)
                except CaseFailed as exc:
                    state.failures.setdefault(name, {})[case_id] = str(exc)
                    break
                state.samples.setdefault(case_id, {"A": [], "B": []})[name].append(block)
        state.passes_done = k + 1
        state.pass_generation.append(generation)
        looked = sequential is not None and state.passes_done in looks
        if looked:
            sequential.look(state.stats_input(), state.generations(), state.passes_done)
        now = clock()
        if progress is not None and (looked or now - last >= every_s
                                     or state.passes_done == schedule.blocks):
            last = now
            progress(f"[pass {k + 1}/{schedule.blocks} {now - started:6.1f}s] "
                     + state.progress_words(sequential))


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
