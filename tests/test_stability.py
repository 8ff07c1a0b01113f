"""The median's interval and the stability verdict, on scripted clocks with seeded noise."""

from __future__ import annotations

import json
import random
import statistics

import pytest

from bench import intervals
from bench.analysis import stability
from bench.analysis.summary import summary_table
from bench.measure import timing
from bench.results import read_run
from bench.rows import CaseRow

ROUNDS = 50
SEEDS = range(200)


class ScriptedClock:
    """A clock that advances only when the timed call runs, by the next scripted duration."""

    def __init__(self, durations):
        self.now = 0.0
        self.durations = iter(durations)

    def __call__(self) -> float:
        return self.now

    def call(self) -> None:
        self.now += next(self.durations)


def timed(durations) -> list[float]:
    """The samples `timing.measure` records for these per-call durations."""
    clock = ScriptedClock(durations)
    return timing.measure(clock.call, rounds=len(durations), timer=clock)


def clean(seed: int, n: int = ROUNDS, level: float = 1e-3) -> list[float]:
    """Rounds of a quiet machine: 2 % Gaussian noise around `level` seconds."""
    rng = random.Random(seed)
    return [level * (1 + 0.02 * rng.gauss(0, 1)) for _ in range(n)]


def kinds(samples) -> set[str]:
    return {f.kind for f in stability.assess(samples)}


@pytest.mark.parametrize(("n", "ranks"), [(6, (1, 6)), (10, (2, 9)), (20, (6, 15)),
                                          (50, (18, 33)), (100, (40, 61))])
def test_median_ranks_match_the_binomial_table(n, ranks):
    assert intervals.median_ranks(n) == ranks


def test_no_interval_below_six_rounds():
    assert intervals.median_interval([1.0] * 5) is None
    assert intervals.median_interval([3.0, 1.0, 2.0, 6.0, 5.0, 4.0]) == (1.0, 6.0)


def test_interval_covers_the_true_median_at_least_95_percent_of_the_time():
    rng = random.Random(7)
    trials, hits = 2000, 0
    for _ in range(trials):
        draws = [rng.expovariate(1.0) for _ in range(30)]  # skewed: median is ln 2
        low, high = intervals.median_interval(draws)
        hits += low <= 0.6931471805599453 <= high
    assert hits / trials >= 0.94  # exact coverage for n=30 is 95.7 %


def test_clean_series_are_never_flagged():
    flagged = [seed for seed in SEEDS if stability.assess(timed(clean(seed)))]
    assert flagged == []


def test_one_spike_is_not_flagged():
    for seed in SEEDS:
        samples = clean(seed)
        samples[seed % ROUNDS] *= 20  # one round 20× slow: a GC pause
        assert stability.assess(timed(samples)) == [], seed


def test_bimodal_series_are_always_flagged():
    for seed in SEEDS:
        slow = set(random.Random(-seed).sample(range(ROUNDS), 2 * ROUNDS // 5))  # 40 % of rounds
        samples = [s * (1.3 if i in slow else 1.0) for i, s in enumerate(clean(seed))]
        assert "bimodal" in kinds(timed(samples)), seed


def test_drifting_series_are_always_flagged():
    for seed in SEEDS:
        samples = [s * (1 + 0.4 * i / ROUNDS) for i, s in enumerate(clean(seed))]
        found = stability.assess(timed(samples))
        assert "drift" in {f.kind for f in found}, seed
        assert "slower than the first" in next(f.text for f in found if f.kind == "drift")


def test_noisy_series_get_a_wide_interval_with_its_size():
    rng = random.Random(3)
    samples = [1e-3 * (1 + 0.4 * rng.random()) for _ in range(20)]
    wide = [f for f in stability.assess(samples) if f.kind == "wide"]
    assert len(wide) == 1
    low, high = intervals.median_interval(samples)
    median = statistics.median(samples)
    assert wide[0].size == pytest.approx(max(high - median, median - low) / median)
    assert f"±{wide[0].size:.1%}" in wide[0].text


def test_every_kind_is_named_back_from_its_text():
    rng = random.Random(1)
    bad = [1e-8 * (1 + i / 10) * (1.5 if rng.random() < 0.5 else 1) for i in range(30)]
    found = stability.assess(bad, resolution=1e-9) + stability.assess([1.0, 2.0])
    assert {f.kind for f in found} == {"wide", "drift", "bimodal", "clock", "rounds"}
    for finding in found:
        assert stability.kind_of(finding.warning) == finding.kind
        assert stability.split_warning(finding.warning) == (finding.text, finding.advice)


def _row(i: int, samples: list[float]) -> CaseRow:
    stats = timing.summarize(samples)
    stats["warnings"] = stability.warnings(samples)
    case = {"impl": "basic_rnn", "unroll": "static", "device": "cpu", "batch": 1 + i,
            "seq_len": 2, "input_size": 3, "hidden_size": 4, "num_layers": 1,
            "bidirectional": False, "dtype": "fp32", "xla": False, "phase": "forward",
            "lengths": "full"}
    return CaseRow.from_dict({"id": f"basic_rnn/static/cpu/b{1 + i}-t2-i3-h4-l1/fp32/forward",
                              "case": case, "status": "ok", "reason": None, "stats": stats})


def test_terminal_prints_one_count_the_worst_few_and_each_advice_once():
    rows = [_row(i, [s * (1.3 if j % 3 == 0 else 1) for j, s in enumerate(clean(i))])
            for i in range(8)] + [_row(8 + i, clean(100 + i)) for i in range(4)]
    text = summary_table(rows)
    assert "stability: 8 of 12 timed cases flagged (bimodal 8); worst 5:" in text
    assert text.count(stability.ADVICE_BIMODAL) == 1
    assert sum(line.startswith("  basic_rnn/static/cpu/") for line in text.splitlines()) == 5
    assert "rerun with -v" in text
    verbose = summary_table(rows, verbose=True)
    assert sum(line.startswith("  basic_rnn/static/cpu/") for line in verbose.splitlines()) == 8
    assert "±" in text  # the interval column


def test_a_v2_file_gets_its_intervals_from_its_samples(tmp_path):
    row = _row(0, clean(5)).to_dict()
    del row["stats"]["median_lo_s"], row["stats"]["median_hi_s"]
    doc = {"schema_version": 2, "kind": "rnnbench-results", "run_id": "old", "env": {},
           "calibration": {}, "cases": [row], "tta": []}
    (tmp_path / "results.json").write_text(json.dumps(doc), encoding="utf-8")
    stats = read_run(tmp_path).cases[0].stats
    assert (stats.median_lo_s, stats.median_hi_s) == intervals.median_interval(clean(5))


def test_the_ci_script_judges_stored_rounds_again(tmp_path, capsys):
    import importlib.util
    from pathlib import Path

    script = Path(__file__).parents[1] / ".ci" / "stability_eval.py"
    spec = importlib.util.spec_from_file_location("stability_eval", script)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    rows = [_row(0, clean(1)).to_dict(),
            _row(1, [s * (1 + 0.4 * i / ROUNDS) for i, s in enumerate(clean(2))]).to_dict()]
    rows[0]["stats"]["warnings"] = ["unstable: old-style warning; advice"]
    doc = {"schema_version": 3, "kind": "rnnbench-results", "run_id": "r1", "preset": "smoke",
           "env": {}, "calibration": {}, "cases": rows, "tta": []}
    (tmp_path / "results.json").write_text(json.dumps(doc), encoding="utf-8")
    assert module.main([str(tmp_path)]) == 0
    assert capsys.readouterr().out == ("r1 (preset smoke): 2 timed, flagged 2 when measured, "
                                       "1 now (wide 1, drift 1)\n")
    assert module.main([str(tmp_path / "nope")]) == 2


def _drifting(seed: int, slope: float = 0.4) -> list[float]:
    return [s * (1 + slope * i / ROUNDS) for i, s in enumerate(clean(seed))]


def test_drift_in_many_cases_is_reported_once_as_the_machine_s():
    rows = ([_row(i, timed(_drifting(i))) for i in range(5)]
            + [_row(5 + i, timed(clean(50 + i))) for i in range(7)])
    machine = stability.machine_drift((r.stats.warnings, r.stats.samples_s) for r in rows)
    assert (machine.drifting, machine.timed) == (5, 12)
    changes = sorted(abs(stability.third_change(r.stats.samples_s)) for r in rows)
    assert machine.typical == pytest.approx(statistics.median(changes))
    text = summary_table(rows)
    assert text.count("machine: 5 of 12 timed cases drifted") == 1
    assert stability.ADVICE_DRIFT not in text  # the machine line replaces the per-case advice
    assert "drifting" in text  # the cases keep their own finding


def test_drift_in_a_few_cases_stays_the_cases():
    rows = ([_row(i, timed(_drifting(i))) for i in range(3)]
            + [_row(3 + i, timed(clean(50 + i))) for i in range(9)])
    assert stability.machine_drift((r.stats.warnings, r.stats.samples_s) for r in rows) is None
    text = summary_table(rows)
    assert "machine:" not in text
    assert text.count(stability.ADVICE_DRIFT) == 1
    machine, advice = stability.run_notes((r.stats.warnings, r.stats.samples_s) for r in rows)
    assert machine is None
    assert stability.ADVICE_DRIFT in advice


def test_the_change_between_thirds_is_signed_and_needs_three_rounds():
    assert stability.third_change([1.0, 1.0, 1.0, 2.0, 2.0, 2.0]) == pytest.approx(1.0)
    assert stability.third_change([2.0, 2.0, 1.0, 1.0]) == pytest.approx(-0.5)
    assert stability.third_change([1.0, 2.0]) is None


def test_stored_drift_advice_of_any_wording_gives_way_to_the_machine_line():
    old_advice = "the machine's speed changed during the case: raise --warmup or rerun"
    pairs = [([f"drifting: the last third of the rounds is 20% slower than the first; "
               f"{old_advice}"], timed(_drifting(i))) for i in range(4)]
    machine, advice = stability.run_notes(pairs)
    assert machine is not None
    assert advice == []


def test_drift_warnings_without_their_rounds_give_no_machine_line():
    warning = "drifting: the last third of the rounds is 20% slower than the first; advice"
    assert stability.machine_drift([([warning], ())] * 4) is None
    machine, advice = stability.run_notes([([warning], ())] * 4)
    assert (machine, advice) == (None, ["advice"])
