"""The measurement core: injectable clock, warm-up, raw samples, statistics, stability warnings.

The stability verdict itself lives on the reading side (bench.analysis.stability), so stored
samples can be judged again without TensorFlow.

No TensorFlow here. The timed callable is responsible for its own device sync (it must end by
fetching a scalar to the host); this module only times calls and summarises the samples.
"""

from __future__ import annotations

import math
import statistics
import time
from collections.abc import Callable, Sequence
from dataclasses import replace
from typing import Any

from bench import rows
from bench.analysis import stability
from bench.cases import PRESETS, RoundsPolicy
from bench.intervals import median_interval

Timer = Callable[[], float]
STILL_CLOCK_CALLS = 1000  # warm-up calls past the count after which a still timer is an error

# Fewer rounds than this make a median too loose for `check` (the stability verdict says so).
MIN_RELIABLE_ROUNDS = stability.MIN_ROUNDS


def time_call(fn: Callable[[], Any], timer: Timer = time.perf_counter) -> tuple[float, Any]:
    """Time one call of `fn`; return (seconds, result)."""
    start = timer()
    result = fn()
    return timer() - start, result


def warm_up(fn: Callable[[], Any], *, calls: int = 0, seconds: float = 0.0,
            timer: Timer = time.perf_counter) -> int:
    """Untimed calls of `fn` until at least `calls` of them and `seconds` have passed; how many.

    A count alone is not enough for millisecond calls: their first tens of milliseconds after
    the build run slower (caches, thread pools and clocks waking up), whatever the count.
    """
    if calls < 0 or not seconds >= 0:
        raise ValueError(f"need calls >= 0 and seconds >= 0, got {calls} and {seconds}")
    start, done = timer(), 0
    while done < calls or (seconds > 0 and timer() - start < seconds):
        fn()
        done += 1
        if done >= calls + STILL_CLOCK_CALLS and timer() == start:
            raise ValueError(f"the timer did not advance over {done} warm-up calls")
    return done


def measure(fn: Callable[[], Any], *, rounds: int, warmup: int = 0,
            timer: Timer = time.perf_counter) -> list[float]:
    """Call `fn` `warmup` times (discarded), then `rounds` timed times; return the raw seconds."""
    if rounds < 1 or warmup < 0:
        raise ValueError(f"need rounds >= 1 and warmup >= 0, got {rounds} and {warmup}")
    warm_up(fn, calls=warmup, timer=timer)
    return [time_call(fn, timer)[0] for _ in range(rounds)]


class Recorder:
    """Wraps a callable so that every call records its own duration (seconds) in `samples`.

    The suite hands the wrapper to pytest-benchmark, so the raw rounds come from the suite's
    own clock, not from pytest-benchmark's internals.
    """

    def __init__(self, fn: Callable[[], Any], timer: Timer = time.perf_counter):
        self.fn, self.timer = fn, timer
        self.samples: list[float] = []

    def __call__(self) -> Any:
        start = self.timer()
        result = self.fn()
        self.samples.append(self.timer() - start)
        return result


def clock_resolution(timer: Timer = time.perf_counter, probes: int = 200) -> float:
    """Smallest positive step the clock shows, measured by reading it repeatedly."""
    best = math.inf
    for _ in range(probes):
        start = timer()
        now = timer()
        while now == start:
            now = timer()
        best = min(best, now - start)
    return best


def policy_for(preset: str | None, *, rounds: int | None = None, min_rounds: int | None = None,
               max_time: float | None = None, warmup: int | None = None,
               warmup_time: float | None = None) -> RoundsPolicy:
    """The preset's policy with any user overrides applied."""
    found = PRESETS.get(preset or "")
    policy = found.rounds if found is not None else RoundsPolicy()
    changes: dict[str, Any] = {}
    if rounds is not None:
        changes["rounds"] = rounds
    if min_rounds is not None:
        changes["min_rounds"] = min_rounds
        changes["max_rounds"] = max(policy.max_rounds, min_rounds)
    if max_time is not None:
        changes["budget_s"] = max_time
    if warmup is not None:
        changes["warmup"] = warmup
    if warmup_time is not None:
        changes["warmup_s"] = warmup_time
    return replace(policy, **changes)


def _quartiles(samples: Sequence[float]) -> tuple[float, float]:
    if len(samples) < 2:
        return samples[0], samples[0]
    q1, _, q3 = statistics.quantiles(samples, n=4, method="inclusive")
    return q1, q3


def summarize(samples: Sequence[float]) -> dict:
    """Median and its 95 % interval (none below 6 rounds), IQR, min, mean, stddev (sample), p90,
    p99 and rounds of raw per-round seconds, keyed as a row's `stats` (bench.rows)."""
    if not samples:
        raise ValueError("no samples to summarise")
    samples = [float(s) for s in samples]
    q1, q3 = _quartiles(samples)
    return {
        rows.SAMPLES_S: samples,
        rows.MEDIAN_S: statistics.median(samples),
        **dict(zip((rows.MEDIAN_LO_S, rows.MEDIAN_HI_S), median_interval(samples) or (),
                   strict=False)),
        rows.IQR_S: q3 - q1,
        rows.MIN_S: min(samples),
        rows.MEAN_S: statistics.fmean(samples),
        rows.STDDEV_S: statistics.stdev(samples) if len(samples) > 1 else 0.0,
        rows.P90_S: percentile(samples, 90),
        rows.P99_S: percentile(samples, 99),
        rows.ROUNDS: len(samples),
    }


def percentile(samples: Sequence[float], q: float) -> float:
    """The q-th percentile (0-100) of the samples, linear between order statistics."""
    ordered = sorted(samples)
    if len(ordered) == 1:
        return float(ordered[0])
    pos = (len(ordered) - 1) * q / 100.0
    low = int(pos)
    high = min(low + 1, len(ordered) - 1)
    return float(ordered[low] + (ordered[high] - ordered[low]) * (pos - low))


def stability_warnings(samples: Sequence[float], *, resolution: float = 1e-9,
                       min_rounds: int = MIN_RELIABLE_ROUNDS) -> list[str]:
    """The stability verdict of the rounds (bench.analysis.stability), each with its advice."""
    return stability.warnings(samples, resolution=resolution, min_rounds=min_rounds)


def cv(values: Sequence[float]) -> float:
    """Coefficient of variation (sample std dev / mean) of `values`; 0.0 for fewer than two."""
    if len(values) < 2:
        return 0.0
    mean = statistics.fmean(values)
    return statistics.stdev(values) / mean if mean else math.inf
