"""Paired A/B statistics: Holm, verdicts, mde, degenerate inputs, simulated error rates."""

from __future__ import annotations

import math
import warnings

import numpy as np
import pytest

from bench.analysis import ab_stats as S
from bench.measure.ab.command import DEFAULT_BLOCKS
from bench.verdict import AB_ORDER, DEFAULT_THRESHOLD


def _case(a_blocks, b_blocks, a_status="ok", b_status="ok", **extra):
    return {"a": a_blocks, "b": b_blocks, "a_status": a_status, "b_status": b_status, **extra}


def _frame(cases, **kw):
    """verdict_frame over passes taken in turn by enough worker generations to pool the
    process spread over the cases."""
    k = max([len(c["a"]) for c in cases.values()] + [0])
    return S.verdict_frame(cases, generations=[i % 2 for i in range(k)], **kw)


def _paired(rng, k=20, ratio=1.0, sd=0.03, base=1e-3, rounds=3):
    """K pairs of blocks whose block medians have log ratio log(ratio) + N(0, sd)."""
    a, b = [], []
    for _ in range(k):
        level = base * math.exp(rng.normal(0, 0.2))  # drift common to the pair
        noise = rng.normal(0, sd / math.sqrt(2), 2)
        a.append([level * math.exp(noise[0])] * rounds)
        b.append([level * ratio * math.exp(noise[1])] * rounds)
    return a, b


# paired test and verdicts ----------------------------------------------------------------------
def test_log_ratios_use_block_medians_and_drop_bad_pairs():
    a = [[1.0, 1.0, 9.0], [2.0], [0.0], []]
    b = [[2.0, 2.0, 0.1], [2.0], [1.0], [1.0]]
    assert S.log_ratios(a, b) == pytest.approx([math.log(2.0), 0.0])


def test_paired_test_recovers_ratio_and_ci_covers_it():
    rng = np.random.default_rng(1)
    a, b = _paired(rng, k=30, ratio=1.2, sd=0.05)
    res = S.paired_test(S.log_ratios(a, b))
    assert res["ci_low"] < 1.2 < res["ci_high"]
    assert res["ratio"] == pytest.approx(1.2, rel=0.03)
    assert res["p_slower"] < 1e-6
    assert res["p_faster"] > 0.5


def test_verdicts_on_synthetic_pairs():
    rng = np.random.default_rng(2)
    cases = {"slow": _case(*_paired(rng, ratio=1.3)), "fast": _case(*_paired(rng, ratio=0.7)),
             "same": _case(*_paired(rng, ratio=1.0)),
             "small": _case(*_paired(rng, ratio=1.05)),  # significant but under the threshold
             "noisy": _case(*_paired(rng, k=20, ratio=1.0, sd=0.6))}
    full = _frame(cases)
    frame = full.set_index("case")
    assert frame.loc["slow", "verdict"] == "regression"
    assert frame.loc["fast", "verdict"] == "improvement"
    assert frame.loc["same", "verdict"] == "same"
    assert frame.loc["small", "verdict"] == "same"
    assert frame.loc["noisy", "verdict"] == "unreliable"
    assert frame.loc["noisy", "pairs_needed"] > 20
    assert "pairs" in frame.loc["noisy", "note"]
    assert frame.loc[S.GEOMEAN_LABEL, "verdict"] == "-"
    assert S.failed(full)
    assert S.summary_counts(full) == {"broken": 0, "regression": 1, "unreliable": 1,
                                       "improvement": 1, "same": 2, "error": 0, "skipped": 0}


def test_frame_sorted_attention_first_and_statuses_mapped():
    rng = np.random.default_rng(3)
    cases = {
        "same": _case(*_paired(rng)),
        "skip": _case([], [], "skipped", "skipped", a_reason="needs a GPU"),
        "both": _case([], [], "error", "error", a_reason="E", b_reason="E"),
        "b_broke": _case([], [], "ok", "error", b_reason="ValueError: boom"),
        "a_broke": _case([], [], "error", "ok", a_reason="ValueError: old"),
        "slow": _case(*_paired(rng, ratio=1.5)),
    }
    frame = _frame(cases)
    assert list(frame["case"]) == ["b_broke", "slow", "a_broke", "same", "both", "skip",
                                   S.GEOMEAN_LABEL]
    by = frame.set_index("case")
    assert by.loc["b_broke", "verdict"] == "broken"
    assert "boom" in by.loc["b_broke", "note"]
    assert by.loc["a_broke", "verdict"] == "unreliable"
    assert by.loc["both", "verdict"] == "error"
    assert by.loc["skip", "verdict"] == "skipped"
    assert list(frame.columns) == list(S.COLUMNS)


def test_broken_on_b_only_fails_the_run_but_a_only_does_not():
    ok = {"x": _case(*_paired(np.random.default_rng(4)))}
    assert S.failed(_frame({**ok, "b": _case([], [], "ok", "error")}))
    assert not S.failed(_frame({**ok, "a": _case([], [], "error", "ok")}))
    assert not S.failed(_frame({**ok, "e": _case([], [], "error", "error")}))


def test_bonferroni_correction_changes_a_verdict():
    """A case significant alone is not a regression among many judged cases."""
    rng = np.random.default_rng(21)
    d = 0.15 + rng.normal(0, 0.2, 40)  # ratio ~1.16, p_slower ~1e-5
    a = [[1.0]] * d.size
    b = [[math.exp(x)] for x in d]
    noise = [[[math.exp(x)] for x in rng.normal(0, 0.01, d.size)] for _ in range(30)]
    cases = {"c": _case(a, b), **{f"n{i}": _case(a, n) for i, n in enumerate(noise)}}
    alone = S.verdict_frame(cases, generations=[i % 2 for i in range(d.size)],
                            geomean=False, alpha=0.05 * 31 / 31).set_index("case")
    assert alone.loc["c", "verdict"] == "regression"
    cases.update({f"m{i}": _case(a, n) for i, n in enumerate(noise)})
    many = S.verdict_frame(cases, generations=[i % 2 for i in range(d.size)], geomean=False,
                           alpha=1e-6).set_index("case")
    assert many.loc["c", "verdict"] != "regression"
    assert many.loc["c", "p_adj"] == pytest.approx(min(1.0, 61 * many.loc["c", "p"]))
    assert many.loc["c", "ci_low"] <= 1.0  # the wider interval now holds 1
    assert many.loc["c", "ci_level"] == pytest.approx(1 - 2 * 1e-6 / 61)


# mde and pairs needed --------------------------------------------------------------------------
def test_mde_shrinks_with_pairs_and_grows_with_cases_and_noise():
    rng = np.random.default_rng(5)
    d = rng.normal(0, 0.08, 200)
    mdes = [S.paired_test(d[:k], m=45)["mde"] for k in (5, 10, 20, 80)]
    assert mdes == sorted(mdes, reverse=True)
    assert S.paired_test(d[:20], m=1)["mde"] < S.paired_test(d[:20], m=45)["mde"]
    assert S.paired_test(d[:20] * 2)["mde"] > S.paired_test(d[:20])["mde"]


def test_pairs_needed_monotone_and_consistent_with_mde():
    kw = {"threshold": 0.10, "alpha": 0.05, "m": 45}
    needs = [S.pairs_needed(sd, **kw) for sd in (0.01, 0.05, 0.08, 0.2, 0.5)]
    assert needs == sorted(needs)
    assert S.pairs_needed(0.0, **kw) == 2
    assert S.pairs_needed(math.nan, **kw) is None
    assert S.pairs_needed(50.0, **kw) == S.MAX_PAIRS_ADVICE
    assert S.pairs_needed(0.08, **kw) > S.pairs_needed(0.08, **{**kw, "m": 1})
    # at exactly the needed pairs, data with that sd reaches the threshold; one fewer does not
    sd = 0.08
    k = S.pairs_needed(sd, **kw)
    ks = np.arange(2, S.MAX_PAIRS_ADVICE + 1)
    factor = S._t_sums(0.05 / 45, S.DEFAULT_POWER, S.MAX_PAIRS_ADVICE, 1) / np.sqrt(ks)
    assert factor[k - 2] * sd <= math.log(1.1) < factor[k - 3] * sd


def test_process_spread_caps_what_more_pairs_can_buy():
    kw = {"threshold": 0.10, "alpha": 0.05, "m": 45}
    assert S.pairs_needed(0.08, **kw, tau2=0.0) < S.pairs_needed(0.08, **kw, tau2=0.02 ** 2,
                                                                  generations=2)
    # a process spread of 10 % with two generations can never reach a 10 % threshold
    assert S.pairs_needed(0.08, **kw, tau2=0.1 ** 2, generations=2) == S.MAX_PAIRS_ADVICE


def test_process_variance_recovers_the_spread_between_generations():
    rng = np.random.default_rng(3)
    tau, sd, k = 0.05, 0.1, 20
    ds, gs = [], []
    for _ in range(200):
        offsets = rng.normal(0, tau, 2)
        ds.append(np.concatenate([rng.normal(o, sd, k) for o in offsets]))
        gs.append(np.repeat([0, 1], k))
    assert math.sqrt(S.process_variance(ds, gs)) == pytest.approx(tau, rel=0.25)
    assert S.process_spread(ds, gs)[1] == len(ds)  # one degree of freedom per case
    # one generation: the spread is not measured (not zero)
    assert math.isnan(S.process_variance(ds, [np.zeros(2 * k, dtype=int)] * len(ds)))


def test_generations_widen_the_interval_when_processes_differ():
    """One process per side whose case is 12 % off: alone it looks like a regression; the
    second generation shows the offset is a process effect, and the verdict is not a regression."""
    rng = np.random.default_rng(4)
    cases, k = {}, 20
    for i in range(30):
        offsets = rng.normal(0, 0.05, 2)
        if i == 0:
            offsets = np.array([0.12, -0.02])
        a, b = [], []
        for g in range(2):
            for _ in range(k):
                level = 1e-3 * math.exp(rng.normal(0, 0.2))
                a.append([level])
                b.append([level * math.exp(offsets[g] + rng.normal(0, 0.08))])
        cases[f"c{i}"] = _case(a, b)
    first_only = {c: _case(v["a"][:k], v["b"][:k]) for c, v in cases.items()}
    alone = S.verdict_frame(first_only, geomean=False).set_index("case")
    both = S.verdict_frame(cases, generations=[0] * k + [1] * k, geomean=False)
    assert alone.loc["c0", "verdict"] == "unreliable"  # one generation: not judged
    assert alone.loc["c0", "note"] == S.UNMEASURED_PROCESS_SPREAD
    assert alone.loc["c0", "ratio"] > 1.1
    assert both.set_index("case").loc["c0", "verdict"] != "regression"
    assert both.attrs["process_sd"] > 0.02


@pytest.mark.parametrize("d", [[], [0.1], [0.0, 0.0, 0.0], [0.2, 0.2, 0.2], [-0.2, -0.2],
                               [math.nan, 0.1], [math.inf, 0.0, 0.1], [1e-300, 1e-300]])
def test_degenerate_inputs_give_defined_results_without_warnings(d):
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        res = S.paired_test(d, m=3)
        frame = _frame({"c": _case([[1.0]] * len(d),
                                            [[math.exp(x)] if math.isfinite(x) else [x]
                                             for x in d])})
    assert frame["verdict"][0] in AB_ORDER
    assert 0.0 <= res["p_slower"] <= 1.0
    assert 0.0 <= res["p_faster"] <= 1.0
    if len([x for x in d if math.isfinite(x)]) < 2:
        assert frame["verdict"][0] == "unreliable"


def test_constant_pairs_are_decided_by_their_sign():
    same = _frame({"c": _case([[1.0]] * 6, [[1.0]] * 6)}, geomean=False)
    assert same["verdict"][0] == "same"
    assert same["mde"][0] == 0.0
    slow = _frame({"c": _case([[1.0]] * 6, [[1.5]] * 6)}, geomean=False)
    assert slow["verdict"][0] == "regression"
    assert slow["ci_low"][0] == pytest.approx(1.5)


def test_geomean_row_has_interval_for_complete_pairs():
    rng = np.random.default_rng(6)
    cases = {f"c{i}": _case(*_paired(rng, ratio=1.1)) for i in range(5)}
    row = _frame(cases).set_index("case").loc[S.GEOMEAN_LABEL]
    assert row["ci_low"] < row["ratio"] < row["ci_high"]
    assert row["ratio"] == pytest.approx(1.1, rel=0.03)


# simulated error rates at the defaults ----------------------------------------------------------
PAIRS = DEFAULT_BLOCKS


MEASURED_PROCESS_SD = 0.023  # process_sd of the committed 90-pair A/A runs (2-core EPYC)


def simulate_run(rng, n_cases=45, pairs=PAIRS, slow=(), factor=1.15, sd=0.08, drift=1.6,
                 wobble=0.15,
                 generations=2, tau=MEASURED_PROCESS_SD):
    """One interleaved run: ABBA visits, a drift ramp 1 -> `drift` plus a wobble, log noise,
    passes taken in turn by `generations` worker processes per side, each of which is off by
    N(0, tau) on each case for its whole life. Returns (cases, generation of each pass).

    Each block's median gets independent log-normal noise of sd/sqrt(2), so the per-pair log
    ratio has sd `sd` plus whatever drift is left between neighbouring blocks.
    """
    visits = n_cases * pairs * 2
    t = np.arange(visits) / visits
    log_speed = np.log(drift) * t + wobble * np.sin(2 * np.pi * 3 * t)
    noise = rng.normal(0, sd / math.sqrt(2), visits)
    base = np.exp(rng.normal(-7, 1, n_cases))
    offsets = rng.normal(0, tau, (generations, n_cases))
    # Visit v = (k * n_cases + i) * 2 + j: pair k, case i, j-th block of the pair; a pair runs
    # A then B on even passes of its generation, B then A on odd ones.
    k = np.arange(pairs)
    visit = np.arange(visits).reshape(pairs, n_cases, 2)
    a_first = ((k // generations) % 2 == 0)[:, None]
    va = np.where(a_first, visit[:, :, 0], visit[:, :, 1])
    vb = np.where(a_first, visit[:, :, 1], visit[:, :, 0])
    scale = np.where(np.isin(np.arange(n_cases), list(slow)), factor, 1.0)
    a = base * np.exp(log_speed[va] + noise[va])
    b = base * scale * np.exp(log_speed[vb] + noise[vb] + offsets[k % generations])
    cases = {f"c{i}": {"a": [[x] for x in a[:, i].tolist()],
                       "b": [[x] for x in b[:, i].tolist()], "a_status": "ok", "b_status": "ok"}
             for i in range(n_cases)}
    return cases, [k % generations for k in range(pairs)]


def _sim_frame(rng, threshold=DEFAULT_THRESHOLD, **kw):
    cases, gens = simulate_run(rng, **kw)
    return S.verdict_frame(cases, generations=gens, threshold=threshold, geomean=False)


def test_simulated_aa_false_alarm_rate_at_defaults():
    rng = np.random.default_rng(7)
    runs = 120
    flagged = 0
    for _ in range(runs):
        frame = _sim_frame(rng)
        flagged += bool(frame["verdict"].isin(["regression", "improvement"]).any())
    assert flagged / runs <= 0.05


@pytest.mark.parametrize(("n_cases", "pairs", "generations", "tau"),
                         [(45, 90, 2, MEASURED_PROCESS_SD), (18, 90, 2, MEASURED_PROCESS_SD),
                          (1, 4, 2, MEASURED_PROCESS_SD), (1, 20, 2, 0.08), (6, 40, 2, 0.05),
                          (1, 90, 5, MEASURED_PROCESS_SD)])
def test_simulated_false_regression_rate_of_the_test_itself_is_at_most_alpha(
        n_cases, pairs, generations, tau):
    """With no threshold to hide behind (threshold 0) an A/A run with per-process offsets
    reports a regression in at most alpha of runs (family-wise, over its cases)."""
    rng = np.random.default_rng(11)
    runs = 400
    flagged = 0
    for _ in range(runs):
        frame = _sim_frame(rng, threshold=0.0, n_cases=n_cases, pairs=pairs, tau=tau,
                           generations=generations, drift=1.0, wobble=0.0)
        flagged += bool((frame["verdict"] == "regression").any())
    # alpha = 0.05; 3 binomial standard errors of slack for the Monte Carlo
    assert flagged / runs <= 0.05 + 3 * math.sqrt(0.05 * 0.95 / runs)


def test_one_generation_with_process_offsets_never_calls_a_change():
    """One worker per side, each case off by the measured process spread (or 5x it): the
    spread cannot be measured, so nothing is called significant, and the note says why."""
    rng = np.random.default_rng(12)
    for tau in (MEASURED_PROCESS_SD, 5 * MEASURED_PROCESS_SD):
        for _ in range(50):
            cases, gens = simulate_run(rng, n_cases=10, pairs=20, generations=1, tau=tau)
            frame = S.verdict_frame(cases, generations=gens, threshold=0.0)
            judged = frame[frame["case"] != S.GEOMEAN_LABEL]
            assert set(judged["verdict"]) == {"unreliable"}
            assert set(judged["note"]) == {S.UNMEASURED_PROCESS_SPREAD}
            assert judged["ci_low"].isna().all()
            assert frame["ci_low"].isna().all()  # the geometric mean's too
            assert frame.attrs["process_sd"] is None


def test_the_issue_example_one_generation_four_pairs_is_not_an_improvement():
    """`--blocks 4 --generations 1 --rounds 2`, B 19 % faster by one process's luck."""
    a = [[1.0, 1.0]] * 4
    b = [[0.80, 0.81], [0.83, 0.82], [0.78, 0.79], [0.84, 0.84]]
    frame = S.verdict_frame({"c": _case(a, b)}, generations=[0, 0, 0, 0], geomean=False)
    assert frame["verdict"][0] == "unreliable"
    assert "--generations 2" in frame["note"][0]


@pytest.mark.parametrize("seed", range(40))
def test_a_significant_verdict_never_shows_an_interval_holding_1(seed):
    """Over random settings (cases, pairs, generations, noise, offsets, effects, threshold,
    alpha), every regression has its whole interval above 1 and every improvement below 1,
    and the interval's level is the test's: 1 - 2 alpha / m."""
    rng = np.random.default_rng(100 + seed)
    n_cases = int(rng.integers(1, 8))
    generations = int(rng.integers(2, 4))
    pairs = generations * int(rng.integers(2, 12))
    slow = set(rng.choice(n_cases, int(rng.integers(0, n_cases + 1)), replace=False).tolist())
    alpha = float(rng.choice([0.01, 0.05, 0.2]))
    cases, gens = simulate_run(rng, n_cases=n_cases, pairs=pairs, generations=generations,
                               slow=slow, factor=float(rng.uniform(0.7, 1.4)),
                               sd=float(rng.uniform(0.01, 0.3)), tau=float(rng.uniform(0, 0.1)))
    frame = S.verdict_frame(cases, generations=gens, alpha=alpha,
                            threshold=float(rng.choice([0.0, 0.05, 0.1])), geomean=False)
    for row in frame.to_dict("records"):
        if row["verdict"] == "regression":
            assert row["ci_low"] > 1.0
        if row["verdict"] == "improvement":
            assert row["ci_high"] < 1.0
        if row["verdict"] in ("regression", "improvement", "same"):
            assert row["ci_level"] == pytest.approx(1 - 2 * alpha / n_cases)
            assert row["p_adj"] < alpha or row["verdict"] == "same"


def test_simulated_detection_rate_at_defaults():
    rng = np.random.default_rng(8)
    slow = set(range(6))
    runs = 120
    hits = clean = 0
    for _ in range(runs):
        frame = _sim_frame(rng, slow=slow)
        verdict = dict(zip(frame["case"], frame["verdict"], strict=True))
        hits += sum(verdict[f"c{i}"] == "regression" for i in slow)
        clean += all(v in ("same", "unreliable") for c, v in verdict.items()
                     if int(c[1:]) not in slow)
    assert hits / (runs * len(slow)) >= 0.90
    assert clean / runs >= 0.95


def test_simulated_defaults_can_detect_the_threshold():
    """At sd 0.08, the measured process spread and the default pairs, the typical case is
    `same`, not `unreliable`."""
    frame = _sim_frame(np.random.default_rng(9))
    assert (frame["verdict"] == "same").mean() >= 0.8
    assert frame["mde"].median() < 0.10
