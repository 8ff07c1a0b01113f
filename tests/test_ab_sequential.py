"""Adaptive A/B passes (bench.analysis.ab_sequential): looks, alpha shares, stops, error rates.

The simulated runs are interleaved ABBA series with a drift ramp and wobble, per-pair noise of
the size measured with one-call blocks on the 2-core VM (sd 0.17 of the log ratio) and every
worker process off by N(0, tau) on each case for its whole life (tests/test_ab_stats.py).
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from bench.analysis import ab_sequential as Q
from bench.analysis import ab_stats as S
from tests.test_ab_stats import simulate_run

ONE_CALL_SD = 0.17       # sd of a one-call pair's log ratio, 2-core EPYC VM (200-pair A/A)
ONE_CALL_TAU = 0.014     # process_sd of that run


def _sim(rng, *, n_cases=20, pairs=120, slow=(), factor=1.15, tau=ONE_CALL_TAU, **kw):
    return simulate_run(rng, n_cases=n_cases, pairs=pairs, slow=slow, factor=factor,
                        sd=ONE_CALL_SD, tau=tau, **kw)


# the rule ----------------------------------------------------------------------------------------
def test_looks_and_rejection_looks():
    rule = Q.StopRule(300, target_mde=0.07, look_every=20, rejection_looks=3)
    assert rule.looks() == [*range(20, 300, 20), 300]
    assert rule.rejection_passes() == [100, 200, 300]
    assert Q.StopRule(130, look_every=20, rejection_looks=2).rejection_passes() == [80, 130]
    fixed = Q.StopRule(90, target_mde=None)
    assert not fixed.adaptive
    assert fixed.looks() == fixed.rejection_passes() == [90]


@pytest.mark.parametrize(("level", "last"), [(0.05, 0.6), (0.05 / 45, 0.9), (1e-5, 0.95)])
def test_spending_shares_sum_to_one_and_save_alpha_for_the_end(level, last):
    shares = Q.spending_shares([1 / 3, 2 / 3, 1.0], level)
    assert sum(shares) == pytest.approx(1.0)
    assert all(s >= 0 for s in shares)
    assert shares[0] < shares[1] < shares[2]
    assert shares[2] > last  # O'Brien-Fleming: the last look keeps most of alpha
    assert Q.spending_shares([1.0], level) == [1.0]


def test_fixed_rule_gives_the_fixed_design_verdicts():
    """Without early stops the table is verdict_frame's, plus the stop column."""
    cases, gens = _sim(np.random.default_rng(3), slow={0, 1})
    fixed = Q.sequential_frame(cases, gens, Q.StopRule(120, target_mde=None), geomean=False)
    plain = S.verdict_frame(cases, generations=gens, geomean=False)
    cols = ["case", "ratio", "ci_low", "ci_high", "mde", "pairs", "verdict"]
    assert fixed[cols].set_index("case").sort_index().equals(
        plain[cols].set_index("case").sort_index())
    assert set(fixed["stop"]) == {"all pairs after 120 pairs"}


# the stops ---------------------------------------------------------------------------------------
def test_a_settled_same_case_has_its_interval_inside_the_threshold_and_mde_under_target():
    cases, gens = _sim(np.random.default_rng(4), pairs=300)
    frame = Q.sequential_frame(cases, gens, Q.StopRule(300, target_mde=0.07), geomean=False)
    same = frame[frame["stop"].str.startswith(Q.STOP_SAME)]
    assert len(same) >= len(frame) // 2
    assert (same["ci_low"] > 1 / 1.1).all()
    assert (same["ci_high"] < 1.1).all()
    assert (same["mde"] <= 0.07).all()
    assert (same["verdict"] == "same").all()
    assert (same["pairs"] < 300).any()  # some stopped early
    assert frame["pairs"].max() <= 300


def test_a_large_slowdown_stops_at_an_early_rejection_look_with_an_interval_above_one():
    cases, gens = _sim(np.random.default_rng(5), pairs=300, slow={0, 1, 2}, factor=1.5)
    frame = Q.sequential_frame(cases, gens, Q.StopRule(300), geomean=False).set_index("case")
    for cid in ("c0", "c1", "c2"):
        row = frame.loc[cid]
        assert row["verdict"] == "regression"
        assert row["stop"].startswith("settled regression")
        assert row["pairs"] in (100, 200)
        assert row["ci_low"] > 1.0
        # an earlier look tests at a smaller share of alpha: its interval is wider
        assert row["ci_level"] > frame.loc["c5", "ci_level"]


def test_replay_reproduces_the_live_decisions():
    """The coordinator's look-by-look decisions (fed the blocks as they come) are what the
    stored blocks replay to."""
    cases, gens = _sim(np.random.default_rng(6), pairs=200, slow={3}, factor=1.3)
    rule = Q.StopRule(200)
    live = Q.Sequential(rule)
    measured = {cid: {**c, "a": [], "b": []} for cid, c in cases.items()}
    for k in range(200):
        for cid in live.open_cases(list(cases)):
            measured[cid]["a"].append(cases[cid]["a"][k])
            measured[cid]["b"].append(cases[cid]["b"][k])
        if k + 1 in rule.looks():
            live.look(measured, gens[:k + 1], k + 1)
    replayed = Q.replay(measured, gens, rule)
    assert {c: (s.passes, s.reason) for c, s in live.stops.items()} == \
        {c: (s.passes, s.reason) for c, s in replayed.stops.items()}
    for cid, stop in live.stops.items():
        assert len(measured[cid]["a"]) == stop.passes


def test_a_case_not_ok_on_both_sides_is_never_settled():
    cases, gens = _sim(np.random.default_rng(7), n_cases=3, pairs=60)
    cases["c0"]["b_status"] = "error"
    seq = Q.replay(cases, gens, Q.StopRule(60))
    assert "c0" not in seq.stops
    frame = Q.sequential_frame(cases, gens, Q.StopRule(60)).set_index("case")
    assert frame.loc["c0", "verdict"] == "broken"
    assert pd.isna(frame.loc["c0", "stop"])


def test_a_run_cut_short_judges_the_open_cases_on_what_it_has():
    cases, gens = _sim(np.random.default_rng(8), n_cases=4, pairs=50)
    frame = Q.sequential_frame(cases, gens, Q.StopRule(300), geomean=False)
    assert (frame["pairs"] <= 50).all()
    assert frame["stop"].str.contains(f"{Q.STOP_ENDED}|{Q.STOP_SAME}").all()


# error rates and power, with and without early stops ---------------------------------------------
def _rates(rule, *, runs, slow=(), factor=1.15, threshold=0.10, seed=0, **kw):
    rng = np.random.default_rng(seed)
    any_flag = hits = pairs = 0
    for _ in range(runs):
        cases, gens = _sim(rng, pairs=rule.max_pairs, slow=slow, factor=factor, **kw)
        frame = Q.sequential_frame(cases, gens, rule, threshold=threshold, geomean=False)
        verdict = dict(zip(frame["case"], frame["verdict"], strict=True))
        flagged = {c for c, v in verdict.items() if v in ("regression", "improvement")}
        any_flag += bool(flagged - {f"c{i}" for i in slow})
        hits += sum(verdict[f"c{i}"] == "regression" for i in slow)
        pairs += int(frame["pairs"].sum())
    n_slow = max(len(slow), 1)
    return any_flag / runs, hits / (runs * n_slow), pairs / runs


def _slack(rate: float, runs: int) -> float:
    return 3 * math.sqrt(rate * (1 - rate) / runs)


@pytest.mark.parametrize("adaptive", [True, False])
def test_simulated_false_alarm_rate_with_and_without_early_stops(adaptive):
    """No threshold to hide behind (threshold 0): an A/A run with drift, wobble and process
    offsets calls any change in at most alpha of runs, with early stops as without."""
    rule = Q.StopRule(120, target_mde=0.07 if adaptive else None, look_every=20)
    rate, _, _ = _rates(rule, runs=150, threshold=1e-9, seed=21)
    assert rate <= 0.05 + _slack(0.05, 150)


def test_simulated_power_and_pairs_with_and_without_early_stops():
    """A 15 % slowdown in 4 of 20 cases: found as often with early stops as without, the other
    cases not flagged, and the adaptive run spends fewer pairs."""
    slow = (0, 1, 2, 3)
    fixed = _rates(Q.StopRule(200, target_mde=None), runs=30, slow=slow, seed=22)
    adaptive = _rates(Q.StopRule(200), runs=30, slow=slow, seed=22)
    for flags, power, _ in (fixed, adaptive):
        assert power >= 0.90
        assert flags <= 0.10
    assert adaptive[2] < 0.8 * fixed[2]
