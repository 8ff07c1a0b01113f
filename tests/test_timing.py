"""The measurement core and the roofline, driven by a scripted fake clock (no TensorFlow)."""

from __future__ import annotations

import statistics

import pytest

from bench.cases import Case, Shape, preset
from bench.measure import calibration, timing


class FakeClock:
    """A clock that only moves when the fake workload says so."""

    def __init__(self, durations=()):
        self.now = 100.0
        self.durations = list(durations)
        self.calls = 0

    def __call__(self) -> float:
        return self.now

    def work(self):
        """The timed callable: advance the clock by the next scripted duration."""
        self.calls += 1
        self.now += self.durations.pop(0)
        return self.calls


def test_time_call_returns_duration_and_result():
    clock = FakeClock([0.25])
    seconds, result = timing.time_call(clock.work, clock)
    assert seconds == pytest.approx(0.25)
    assert result == 1


def test_measure_discards_warmup_and_keeps_raw_rounds():
    clock = FakeClock([9.0, 8.0, 0.1, 0.2, 0.3])
    samples = timing.measure(clock.work, rounds=3, warmup=2, timer=clock)
    assert samples == pytest.approx([0.1, 0.2, 0.3])
    assert clock.calls == 5


@pytest.mark.parametrize(("rounds", "warmup"), [(0, 0), (3, -1)])
def test_measure_rejects_bad_counts(rounds, warmup):
    with pytest.raises(ValueError, match="rounds"):
        timing.measure(lambda: None, rounds=rounds, warmup=warmup)


def test_summarize_known_values():
    stats = timing.summarize([4.0, 1.0, 3.0, 2.0, 100.0])
    assert stats["samples_s"] == [4.0, 1.0, 3.0, 2.0, 100.0]  # raw order kept
    assert stats["median_s"] == 3.0
    assert stats["min_s"] == 1.0
    assert stats["iqr_s"] == pytest.approx(2.0)  # inclusive quartiles 2 and 4
    assert stats["mean_s"] == pytest.approx(22.0)
    assert stats["stddev_s"] == pytest.approx(statistics.stdev([4, 1, 3, 2, 100]))
    assert stats["rounds"] == 5


def test_summarize_single_sample_and_empty():
    stats = timing.summarize([0.5])
    assert (stats["median_s"], stats["iqr_s"], stats["stddev_s"]) == (0.5, 0.0, 0.0)
    with pytest.raises(ValueError, match="no samples"):
        timing.summarize([])


def test_clock_resolution_of_a_ticking_clock():
    ticks = iter(range(10**6))
    assert timing.clock_resolution(lambda: next(ticks) * 1e-3, probes=20) == pytest.approx(1e-3)


STABLE = [1.00, 1.01, 0.99, 1.02, 0.98, 1.00, 1.01, 0.99, 1.00, 1.02, 0.99, 1.01]


def test_stable_samples_give_no_warning():
    assert timing.stability_warnings(STABLE, resolution=1e-9) == []


def test_summarize_stores_the_interval_of_the_median():
    stats = timing.summarize(STABLE)
    assert (stats["median_lo_s"], stats["median_hi_s"]) == (0.99, 1.01)  # ranks 3 and 10 of 12
    assert "median_lo_s" not in timing.summarize(STABLE[:5])  # no 95 % interval below 6


def test_too_few_rounds_warns_with_advice():
    warnings = timing.stability_warnings(STABLE[:3], resolution=1e-9)
    assert len(warnings) == 1
    assert "only 3 rounds" in warnings[0]
    assert "--rounds" in warnings[0]


def test_call_below_clock_resolution_warns():
    warnings = timing.stability_warnings(STABLE, resolution=1e-2)
    assert len(warnings) == 1
    assert "ticks of the clock" in warnings[0]


def test_cv():
    assert timing.cv([1.0]) == 0.0
    assert timing.cv([1.0, 1.0, 1.0]) == 0.0
    assert timing.cv([0.9, 1.1]) == pytest.approx(statistics.stdev([0.9, 1.1]))


@pytest.mark.parametrize(("estimate", "rounds"), [(0.01, 100), (0.5, 10), (1e-6, 1000),
                                                  (0.0, 1000)])
def test_rounds_policy_budget_is_clamped(estimate, rounds):
    policy = timing.RoundsPolicy(min_rounds=10, max_rounds=1000, budget_s=1.0)
    assert policy.plan(estimate) == rounds


def test_fixed_rounds_win():
    assert timing.RoundsPolicy(rounds=7).plan(0.001) == 7


def test_smoke_keeps_enough_rounds_for_the_regression_check():
    smoke = timing.policy_for("smoke")
    assert smoke.min_rounds >= timing.MIN_RELIABLE_ROUNDS
    assert smoke.plan(100.0) >= timing.MIN_RELIABLE_ROUNDS


def test_warm_up_runs_until_both_the_count_and_the_time_are_reached():
    clock = FakeClock([0.03] * 10)
    assert timing.warm_up(clock.work, calls=2, seconds=0.1, timer=clock) == 4  # time rules
    clock = FakeClock([0.03] * 10)
    assert timing.warm_up(clock.work, calls=5, seconds=0.1, timer=clock) == 5  # count rules
    clock = FakeClock([0.03] * 10)
    assert timing.warm_up(clock.work, calls=0, seconds=0.0, timer=clock) == 0
    with pytest.raises(ValueError, match="seconds >= 0"):
        timing.warm_up(clock.work, seconds=-1.0, timer=clock)


def test_warm_up_with_a_still_timer_is_an_error_not_a_hang():
    calls = []
    with pytest.raises(ValueError, match="the timer did not advance"):
        timing.warm_up(lambda: calls.append(1), calls=3, seconds=0.1, timer=lambda: 5.0)
    assert len(calls) == 3 + timing.STILL_CLOCK_CALLS


def test_plan_rounds_warms_up_then_plans_from_one_more_call():
    from bench.measure.case_run import CaseRun

    clock = FakeClock([0.5, 0.5, 0.01])  # slow warm-up calls, then a fast planning call
    run = CaseRun(preset("smoke")[0], timer=clock)
    run.step = type("Step", (), {"call": staticmethod(clock.work)})()
    policy = timing.RoundsPolicy(warmup=3, warmup_s=0.0, budget_s=1.0, min_rounds=10)
    assert run.plan_rounds(policy) == 100  # 1.0 s / 0.01 s, not 1.0 s / 0.5 s
    assert clock.calls == 3  # 2 warm-up calls + the planning call (itself a warm-up call)
    clock = FakeClock([0.03] * 10)
    run.timer = clock
    run.step = type("Step", (), {"call": staticmethod(clock.work)})()
    run.plan_rounds(timing.RoundsPolicy(warmup=1, warmup_s=0.1, budget_s=1.0))
    assert clock.calls == 5  # 0.12 s of 0.03 s calls, then the planning call


class FakeBenchmark:
    """pytest-benchmark's fixture as `timed_rounds` uses it; `extra_call` as under
    --benchmark-cprofile, which calls the target once more after the rounds."""

    def __init__(self, *, disabled=False, extra_call=False):
        self.disabled, self.extra_call, self.asked = disabled, extra_call, None

    def pedantic(self, target, *, rounds, iterations):
        self.asked = (rounds, iterations)
        for _ in range(1 if self.disabled else rounds + self.extra_call):
            target()


@pytest.mark.parametrize("extra_call", [False, True])
def test_the_suite_keeps_exactly_the_planned_rounds(extra_call):
    from bench.measure.case_run import CaseRun
    from bench.measure.suites.conftest import timed_rounds

    clock = FakeClock([0.1] + [0.01] * 40)  # one slow warm-up call, then fast ones
    run = CaseRun(preset("smoke")[0], timer=clock)
    run.step = type("Step", (), {"call": staticmethod(clock.work)})()
    bench = FakeBenchmark(extra_call=extra_call)
    policy = timing.RoundsPolicy(warmup=2, warmup_s=0.0, budget_s=0.3, min_rounds=10)
    samples = timed_rounds(run, bench, policy)
    assert bench.asked == (30, 1)  # planned from the fast call after the warm-up
    assert samples == pytest.approx([0.01] * 30)


def test_a_disabled_benchmark_calls_once_and_keeps_nothing():
    from bench.measure.case_run import CaseRun
    from bench.measure.suites.conftest import timed_rounds

    clock = FakeClock([0.01] * 5)
    run = CaseRun(preset("smoke")[0], timer=clock)
    run.step = type("Step", (), {"call": staticmethod(clock.work)})()
    assert timed_rounds(run, FakeBenchmark(disabled=True), timing.RoundsPolicy()) == []
    assert clock.calls == 1


def test_policy_overrides():
    policy = timing.policy_for("cpu", min_rounds=5000, max_time=3.0, warmup=0, warmup_time=0.5)
    assert (policy.min_rounds, policy.budget_s, policy.warmup, policy.warmup_s) == (5000, 3.0,
                                                                                   0, 0.5)
    assert policy.plan(1e-9) == 5000  # max raised to the minimum
    assert timing.policy_for("no-such-preset") == timing.RoundsPolicy()


def test_calibration_with_fake_clock_and_kernel():
    clock = FakeClock([5.0] + [0.002] * 12)  # first call (trace) then 2 warm-up + 10 rounds
    result = calibration.calibrate("cpu", sizes=(100,), rounds=10, warmup=2, timer=clock,
                                   make_kernel=lambda device, n, dtype: clock.work)
    (size,) = result["sizes"]
    assert size["compile_s"] == pytest.approx(5.0)
    assert size["samples_s"] == pytest.approx([0.002] * 10)
    assert result["matmul_gflops"] == pytest.approx(2 * 100**3 / 0.002 / 1e9)
    assert result["matmul_n"] == 100
    assert clock.durations == []


def test_roofline_uses_case_flops_and_device_peak():
    case = Case("keras_lstm", "dynamic", "cpu", Shape(16, 10, 8, 32), phase="backward")
    calib = {"device": "cpu", "matmul_gflops": 10.0,
             "devices": {"cpu": {"matmul_gflops": 10.0}, "gpu": {"matmul_gflops": 1000.0}}}
    roof = calibration.roofline(case, 0.001, calib)
    assert roof["flops"] == case.flops()
    assert roof["gflops"] == pytest.approx(case.flops() / 0.001 / 1e9)
    assert roof["pct_peak"] == pytest.approx(100 * roof["gflops"] / 10.0)
    assert calibration.roofline(case, None, calib)["gflops"] is None
    assert calibration.roofline(case, 0.001, {})["pct_peak"] is None


def test_percentiles_interpolate_like_numpy():
    import numpy as np

    rng = np.random.default_rng(7)
    samples = list(rng.lognormal(size=301))
    for q in (0, 50, 90, 99, 100):
        assert timing.percentile(samples, q) == pytest.approx(np.percentile(samples, q))
    assert timing.percentile([3.0], 99) == 3.0
    stats = timing.summarize(samples)
    assert stats["median_s"] <= stats["p90_s"] <= stats["p99_s"] <= max(samples)
