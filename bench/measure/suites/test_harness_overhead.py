"""Harness overhead: the suite's median for a case vs a bare tf.function loop of the same work.

Run: `pytest bench/measure/suites/test_harness_overhead.py [--overhead-case ID]`. The ratio (suite
median / bare median, target within 2 %) is printed in the terminal summary and stored in the
benchmark's extra_info. The bare loop calls a freshly traced `tf.function` of the same layer and
inputs and times each call with perf_counter, interleaved with the suite's rounds.
"""

from __future__ import annotations

import statistics
import time

import pytest

from bench.cases import ROW_MNIST, Case
from bench.measure import phases, timing

DEFAULT_CASE = Case("keras_lstm", "dynamic", "cpu", ROW_MNIST, phase="forward")
ROUNDS = 100
WARMUP = 2
# A guard against gross harness bugs (retracing, extra syncs); the 2 % target is a measurement.
MAX_RATIO = 1.5


def _case(config) -> Case:
    wanted = config.getoption("overhead_case")
    if not wanted:
        return DEFAULT_CASE
    from bench.cases import PRESETS

    for found in PRESETS.values():
        for case in found.cases():
            if case.id == wanted:
                return case
    raise pytest.UsageError(f"--overhead-case {wanted!r} is not a case of any preset")


def _bare_samples(fn, rounds: int) -> list[float]:
    samples = []
    for _ in range(rounds):
        start = time.perf_counter()
        fn().numpy()
        samples.append(time.perf_counter() - start)
    return samples


def test_harness_overhead(request, benchmark, overhead_log):
    """Suite median within a few percent of a bare loop over the same compiled computation."""
    import tensorflow as tf

    from bench.impls.devices import case_skip_reason

    case = _case(request.config)
    reason = case_skip_reason(case)
    if reason:
        pytest.skip(reason)
    step = phases.build_step(case)
    layer, x = step.layer, step.inputs
    if case.phase != "forward":
        pytest.skip("the bare loop reproduces the forward phase only")
    bare = tf.function(lambda: tf.reduce_sum(layer(x)))
    bare()  # trace outside the timing, like the suite
    step.call()

    # Interleaved: pedantic's `setup` (untimed by the suite) runs one timed bare call before
    # each of the suite's rounds, so both sides see the same machine state and drift.
    plain: list[float] = []
    timed = timing.Recorder(step.call)
    benchmark.pedantic(timed, setup=lambda: plain.extend(_bare_samples(bare, 1)),
                       rounds=ROUNDS, warmup_rounds=WARMUP, iterations=1)
    if getattr(benchmark, "disabled", False):
        pytest.skip("benchmarks are disabled (--benchmark-disable)")
    suite = timed.samples[WARMUP:WARMUP + ROUNDS]
    plain = plain[WARMUP:WARMUP + ROUNDS]  # drop the warm-up rounds' bare calls

    ratio = statistics.median(suite) / statistics.median(plain)
    benchmark.extra_info.update(case=case.id, bare_median_s=statistics.median(plain),
                                suite_median_s=statistics.median(suite), ratio=ratio)
    overhead_log.append(f"{case.id}: suite median {statistics.median(suite) * 1e3:.4f} ms, "
                        f"bare tf.function loop {statistics.median(plain) * 1e3:.4f} ms, "
                        f"ratio {ratio:.4f} ({(ratio - 1) * 100:+.2f} %)")
    assert ratio < MAX_RATIO
