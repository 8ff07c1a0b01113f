"""rnnbench check: verdicts, exit codes, bad input, and its power / false-alarm rate."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

from bench.analysis import check
from bench.analysis.stats import mann_whitney_p, min_rounds_for_alpha, rounds_needed
from bench.results import empty_document, save_run

ENV = {"hostname": "h", "tensorflow": "2.21.0", "keras": "3.12.0", "cuda": "12.5",
       "cudnn": "9", "cpu_model": "Xeon", "cpu_count": 2, "intra_op_threads": 1,
       "inter_op_threads": 1, "gpus": []}
CASE = {"impl": "keras_lstm", "unroll": "dynamic", "device": "cpu", "batch": 16, "seq_len": 10,
        "input_size": 8, "hidden_size": 32, "num_layers": 1, "bidirectional": False,
        "dtype": "fp32", "xla": False, "phase": "forward"}


def make_doc(run_id: str, cases: dict[str, list[float] | tuple[str, str]], *, env=None,
             gflops: float | None = 50.0, code_version: str = "v1") -> dict:
    """A results document; a case maps to samples, or to (status, reason) for skip/error rows."""
    doc = empty_document(run_id=run_id, env={**ENV, **(env or {})}, command="test",
                         calibration={"matmul_gflops": gflops} if gflops else {})
    for i, (cid, value) in enumerate(cases.items()):
        row = {"id": cid, "case": {**CASE, "batch": 16 + i}, "code_version": code_version,
               "status": "ok", "reason": None, "stats": {"samples_s": []}}
        if isinstance(value, tuple):
            row["status"], row["reason"] = value
        else:
            row["stats"] = {"samples_s": [float(v) for v in value],
                            "median_s": float(np.median(value)), "rounds": len(value)}
        doc["cases"].append(row)
    return doc


def write(tmp_path, name: str, doc: dict):
    """Save a document as a run folder and return its path."""
    path = tmp_path / name
    path.mkdir()
    save_run(path, doc)
    return path


def noisy(rng, n: int, scale: float = 1e-3, sigma: float = 0.03) -> list[float]:
    """n log-normal samples around `scale` seconds."""
    return list(scale * np.exp(rng.normal(0.0, sigma, n)))


# ---------------------------------------------------------------- power and false alarms

TRIALS = 400


def flagged_fraction(slowdown: float, seed: int) -> float:
    """Fraction of TRIALS synthetic cases (10 rounds, 3 % log-normal noise) flagged at 10 %."""
    rng = np.random.default_rng(seed)
    base = {f"case{i}": noisy(rng, 10) for i in range(TRIALS)}
    cur = {cid: noisy(rng, 10, scale=1e-3 * (1 + slowdown)) for cid in base}
    frame = check.check_frame(make_doc("base", base), make_doc("cur", cur), threshold=0.10,
                              alpha=0.05)
    return len(check.failing_cases(frame)) / TRIALS


@pytest.mark.parametrize(("slowdown", "low", "high"), [
    pytest.param(0.20, 0.95, 1.0, id="20pct-slowdown-flagged>=95pct"),
    pytest.param(0.00, 0.0, 0.01, id="unchanged-flagged<=1pct"),
    pytest.param(0.05, 0.0, 0.05, id="5pct-slowdown-flagged<=5pct"),
])
def test_power_and_false_alarm_rate(slowdown, low, high):
    fraction = flagged_fraction(slowdown, seed=20261122)
    assert low <= fraction <= high, f"{slowdown:.0%} slowdown flagged in {fraction:.1%}"


def test_25pct_slowdown_with_10_rounds_is_significant():
    rng = np.random.default_rng(7)
    base, cur = noisy(rng, 10), noisy(rng, 10, scale=1.25e-3)
    row = check.judge(base, cur, threshold=0.10, alpha=0.05)
    assert row["verdict"] == "regression"
    assert row["p"] < 0.05


# ---------------------------------------------------------------- verdicts


def test_too_few_rounds_is_unreliable_and_says_how_many():
    row = check.judge([1.0, 1.01, 0.99], [2.0, 2.02, 1.98], threshold=0.10, alpha=0.05)
    assert row["verdict"] == "unreliable"
    assert f"record ≥ {min_rounds_for_alpha(0.05)} per side" in row["note"]


def test_slow_but_not_significant_is_unreliable_not_pass():
    base = [1.0, 1.5, 0.7, 1.2, 0.9, 1.4]
    cur = [1.3, 0.8, 1.6, 1.25, 1.7, 0.95]
    row = check.judge(base, cur, threshold=0.10, alpha=0.05)
    assert row["ratio"] > 1.10
    assert row["verdict"] == "unreliable"
    assert "rounds per side" in row["note"]


def test_rounds_needed_grows_with_noise():
    assert rounds_needed(0.01, 0.10, 0.05) < rounds_needed(0.10, 0.10, 0.05)
    assert rounds_needed(math.nan, 0.10, 0.05) == min_rounds_for_alpha(0.05)


def test_improvement_and_same():
    rng = np.random.default_rng(3)
    base = noisy(rng, 12)
    assert check.judge(base, noisy(rng, 12, 0.7e-3), threshold=0.1, alpha=0.05)[
        "verdict"] == "improvement"
    assert check.judge(base, noisy(rng, 12), threshold=0.1, alpha=0.05)["verdict"] == "same"


def test_identical_constant_samples_are_same():
    assert check.judge([1.0] * 10, [1.0] * 10, threshold=0.1, alpha=0.05)["verdict"] == "same"


def test_mann_whitney_errors_propagate(monkeypatch):
    import scipy.stats

    def boom(*args, **kwargs):
        raise ValueError("scipy says no")

    monkeypatch.setattr(scipy.stats, "mannwhitneyu", boom)
    with pytest.raises(ValueError, match="scipy says no"):
        mann_whitney_p([1.0, 2.0], [3.0, 4.0])
    with pytest.raises(ValueError, match="scipy says no"):
        check.judge([1.0] * 5 + [1.1] * 5, [2.0] * 5 + [2.1] * 5, threshold=0.1, alpha=0.05)


def test_frame_lists_every_case_and_geomean():
    rng = np.random.default_rng(5)
    base = make_doc("b", {"slow": noisy(rng, 10), "same": noisy(rng, 10),
                          "gone": noisy(rng, 10), "skip": ("skipped", "needs a GPU"),
                          "breaks": noisy(rng, 10)})
    cur = make_doc("c", {"slow": noisy(rng, 10, 1.5e-3), "same": noisy(rng, 10),
                         "new": noisy(rng, 10), "skip": ("skipped", "needs a GPU"),
                         "breaks": ("error", "OOM")})
    frame = check.check_frame(base, cur)
    verdicts = dict(zip(frame["case"], frame["verdict"], strict=True))
    assert verdicts == {"slow": "regression", "breaks": "broken", "same": "same",
                        "skip": "skipped", "gone": "baseline only", "new": "current only",
                        "geomean": ""}
    assert list(frame.columns[:6]) == ["case", "baseline", "current", "ratio", "p", "verdict"]
    gm = frame.iloc[-1]
    ratios = frame.set_index("case")["ratio"]
    assert gm["ratio"] == pytest.approx(math.sqrt(ratios["slow"] * ratios["same"]))
    assert sorted(check.failing_cases(frame)) == ["breaks", "slow"]


def test_changed_benchmark_code_is_not_a_regression():
    rng = np.random.default_rng(9)
    base = make_doc("b", {"x": noisy(rng, 10)}, code_version="v1")
    cur = make_doc("c", {"x": noisy(rng, 10, 2e-3)}, code_version="v2")
    frame = check.check_frame(base, cur)
    assert frame.iloc[0]["verdict"] == "changed"
    assert not check.failing_cases(frame)


def test_normalize_rescales_by_calibration():
    rng = np.random.default_rng(11)
    samples = noisy(rng, 10)
    base = make_doc("b", {"x": samples}, gflops=100.0)
    # The current machine is 2x slower at the matmul and 2x slower at the case: no regression.
    cur = make_doc("c", {"x": [2 * s for s in samples]}, gflops=50.0)
    assert check.check_frame(base, cur).iloc[0]["verdict"] == "regression"
    row = check.check_frame(base, cur, normalize=True).iloc[0]
    assert row["ratio"] == pytest.approx(1.0)
    assert row["verdict"] == "same"


@pytest.mark.parametrize(("text", "value"), [("10%", 0.10), ("0.1", 0.1), ("2.5 %", 0.025)])
def test_parse_threshold(text, value):
    assert check.parse_threshold(text) == pytest.approx(value)


@pytest.mark.parametrize("text", ["10", "ten", "-5%", "0%"])
def test_parse_threshold_rejects(text):
    import argparse

    with pytest.raises(argparse.ArgumentTypeError):
        check.parse_threshold(text)


# ---------------------------------------------------------------- exit codes through the CLI


@pytest.fixture
def runs(tmp_path):
    """Baseline, unchanged and slower runs of the same three cases."""
    rng = np.random.default_rng(1)
    base = {f"c{i}": noisy(rng, 10) for i in range(3)}
    same = {k: noisy(rng, 10) for k in base}
    slow = {**same, "c1": noisy(rng, 10, 1.3e-3)}
    return {"base": write(tmp_path, "base", make_doc("base", base)),
            "same": write(tmp_path, "same", make_doc("same", same)),
            "slow": write(tmp_path, "slow", make_doc("slow", slow)),
            "tmp": tmp_path}


def test_exit_0_when_unchanged(rnnbench, runs):
    code, out, _ = rnnbench("check", "--baseline", runs["base"], "--current", runs["same"])
    assert code == 0
    assert "PASS" in out
    assert "| case | baseline (ms) | current (ms) | ratio | p | verdict | note |" in out


def test_exit_1_on_regression(rnnbench, runs):
    code, out, _ = rnnbench("check", "--baseline", runs["base"], "--current", runs["slow"])
    assert code == 1
    assert "| c1 |" in out
    assert "regression" in out
    assert "FAIL: 1 case(s)" in out


def test_report_only_prints_but_exits_0(rnnbench, runs):
    code, out, err = rnnbench("check", "--baseline", runs["base"], "--current", runs["slow"],
                              "--report-only")
    assert code == 0
    assert "regression" in out
    assert "would fail" in err


def test_threshold_option_changes_the_verdict(rnnbench, runs):
    code, _, _ = rnnbench("check", "--baseline", runs["base"], "--current", runs["slow"],
                          "--threshold", "50%")
    assert code == 0


def _bad_inputs(tmp_path):
    half = tmp_path / "half"
    half.mkdir()
    (half / "results.json").write_text('{"schema_version": 1, "kind": "rnnbench-res')
    foreign = tmp_path / "foreign"
    foreign.mkdir()
    (foreign / "results.json").write_text(json.dumps({"benchmarks": []}))
    newer = tmp_path / "newer"
    newer.mkdir()
    doc = make_doc("newer", {"c0": [1.0] * 10})
    doc["schema_version"] = 99
    (newer / "results.json").write_text(json.dumps(doc))
    return {"missing": tmp_path / "nope", "half": half, "foreign": foreign, "newer": newer}


@pytest.mark.parametrize(("which", "message"), [
    ("missing", "no such results file"), ("half", "malformed JSON"),
    ("foreign", "not an rnnbench results file"), ("newer", "newer than this rnnbench"),
])
@pytest.mark.parametrize("side", ["--baseline", "--current"])
def test_unusable_input_exits_2_with_one_line(rnnbench, runs, which, message, side):
    bad = _bad_inputs(runs["tmp"])[which]
    other = "--current" if side == "--baseline" else "--baseline"
    before = sorted(p.name for p in runs["tmp"].rglob("*"))
    code, out, err = rnnbench("check", side, bad, other, runs["base"])
    assert code == 2
    assert out == ""
    assert err.startswith("rnnbench check: error: ")
    assert message in err
    assert err.count("\n") == 1
    assert sorted(p.name for p in runs["tmp"].rglob("*")) == before


def test_no_common_cases_exits_2(rnnbench, tmp_path):
    a = write(tmp_path, "a", make_doc("a", {"x": [1.0] * 10}))
    b = write(tmp_path, "b", make_doc("b", {"y": [1.0] * 10}))
    code, _, err = rnnbench("check", "--baseline", a, "--current", b)
    assert code == 2
    assert "no common cases" in err


def test_other_tensorflow_version_is_refused(rnnbench, tmp_path):
    a = write(tmp_path, "a", make_doc("a", {"x": [1.0] * 10}))
    b = write(tmp_path, "b", make_doc("b", {"x": [1.0] * 10}, env={"tensorflow": "2.20.0"}))
    code, _, err = rnnbench("check", "--baseline", a, "--current", b, "--normalize")
    assert code == 2
    assert "tensorflow (2.21.0 vs 2.20.0)" in err
    code, _, err = rnnbench("check", "--baseline", a, "--current", b, "--report-only")
    assert code == 0
    assert "warning" in err


def test_other_machine_needs_normalize(rnnbench, tmp_path):
    rng = np.random.default_rng(2)
    a = write(tmp_path, "a", make_doc("a", {"x": noisy(rng, 10)}, gflops=100.0))
    b = write(tmp_path, "b", make_doc("b", {"x": noisy(rng, 10, 2e-3)}, gflops=50.0,
                                      env={"cpu_model": "EPYC"}))
    code, _, err = rnnbench("check", "--baseline", a, "--current", b)
    assert code == 2
    assert "cpu_model (Xeon vs EPYC)" in err
    assert "--normalize" in err
    code, out, _ = rnnbench("check", "--baseline", a, "--current", b, "--normalize")
    assert code == 0, out


def test_normalize_without_calibration_exits_2(rnnbench, tmp_path):
    a = write(tmp_path, "a", make_doc("a", {"x": [1.0] * 10}, gflops=None))
    b = write(tmp_path, "b", make_doc("b", {"x": [1.0] * 10}))
    code, _, err = rnnbench("check", "--baseline", a, "--current", b, "--normalize")
    assert code == 2
    assert "calibration.matmul_gflops" in err


def test_bad_threshold_is_a_usage_error(rnnbench, runs):
    with pytest.raises(SystemExit) as exc:
        rnnbench("check", "--baseline", runs["base"], "--current", runs["same"],
                 "--threshold", "10")
    assert exc.value.code == 2


def test_normalize_uses_the_calibration_of_the_case_device():
    rng = np.random.default_rng(13)
    samples = noisy(rng, 10)
    base = make_doc("b", {"x": samples})
    cur = make_doc("c", {"x": [3 * s for s in samples]})
    for doc, gpu in ((base, 300.0), (cur, 100.0)):
        doc["cases"][0]["case"]["device"] = "gpu"
        doc["calibration"] = {"device": "cpu", "matmul_gflops": 50.0,
                              "devices": {"cpu": {"matmul_gflops": 50.0},
                                          "gpu": {"matmul_gflops": gpu}}}
    row = check.check_frame(base, cur, normalize=True).iloc[0]
    assert row["ratio"] == pytest.approx(1.0)
    del cur["calibration"]["devices"]["gpu"]
    row = check.check_frame(base, cur, normalize=True).iloc[0]
    assert row["verdict"] == "unreliable"
    assert "no matmul calibration for device gpu" in row["note"]
