"""rnnbench check: run-level verdicts, exit codes, bad input, power and false-alarm rate."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

from bench import results
from bench.analysis import check, stats
from bench.results import empty_document, save_run

ENV = {"hostname": "h", "tensorflow": "2.21.0", "keras": "3.12.0", "cuda": "12.5",
       "cudnn": "9", "cpu_model": "Xeon", "cpu_count": 2, "intra_op_threads": 1,
       "inter_op_threads": 1, "gpus": []}
CASE = {"impl": "keras_lstm", "unroll": "dynamic", "device": "cpu", "batch": 16, "seq_len": 10,
        "input_size": 8, "hidden_size": 32, "num_layers": 1, "bidirectional": False,
        "dtype": "fp32", "xla": False, "phase": "forward", "lengths": "full"}


_IDS: dict[str, str] = {}  # short test name -> the real case id it stands for


def cid(name: str) -> str:
    """The case id a short test name stands for (ids must agree with their parameters)."""
    if name not in _IDS:
        _IDS[name] = f"keras_lstm/dynamic/cpu/b{16 + len(_IDS)}-t10-i8-h32-l1/fp32/forward"
    return _IDS[name]


def short(case_id: str) -> str:
    """The short test name of a case id (ids not made by `cid` pass through)."""
    return {v: k for k, v in _IDS.items()}.get(case_id, case_id)


def make_doc(run_id: str, cases: dict[str, list[float] | tuple[str, str]], *, env=None,
             gflops: float | None = 50.0, code_version: str = "v1") -> dict:
    """A results document; a case maps to samples, or to (status, reason) for skip/error rows."""
    doc = empty_document(run_id=run_id, env={**ENV, **(env or {})}, command="test",
                         calibration={"matmul_gflops": gflops} if gflops else {})
    for name, value in cases.items():
        case_id = cid(name)
        batch = int(case_id.split("/")[3].split("-")[0][1:])
        row = {"id": case_id, "case": {**CASE, "batch": batch}, "code_version": code_version,
               "status": "ok", "reason": None, "stats": {"samples_s": []}}
        if isinstance(value, tuple):
            row["status"], row["reason"] = value
        else:
            row["stats"] = {"samples_s": [float(v) for v in value],
                            "median_s": float(np.median(value)), "rounds": len(value)}
        doc["cases"].append(row)
    return doc


def loaded(docs: list[dict]) -> list[results.Run]:
    """The documents as runs, each through the results validator (as `check` loads them)."""
    return [results.check_document(doc, doc["run_id"]) for doc in docs]


def frame_of(base: list[dict], cur: list[dict], **kwargs):
    """check_frame over documents loaded as runs."""
    return check.check_frame(loaded(base), loaded(cur), **kwargs)


def write(tmp_path, name: str, doc: dict):
    """Save a document as a run folder and return its path."""
    path = tmp_path / name
    path.mkdir()
    save_run(path, doc)
    return path


def noisy(rng, n: int, scale: float = 1e-3, sigma: float = 0.03) -> list[float]:
    """n log-normal samples around `scale` seconds."""
    return list(scale * np.exp(rng.normal(0.0, sigma, n)))


def make_runs(prefix: str, n: int, cases: dict[str, float], rng, *, factors=None,
              run_sigma: float = 0.03, rounds: int = 10, **kwargs) -> list[dict]:
    """n runs of the same cases: case -> typical seconds; each run has its own machine factor."""
    factors = factors if factors is not None else [1.0] * n
    return [make_doc(f"{prefix}{i}", {cid: noisy(rng, rounds, scale * factors[i]
                                                 * math.exp(rng.normal(0.0, run_sigma)))
                                      for cid, scale in cases.items()}, **kwargs)
            for i in range(n)]


def write_runs(tmp_path, name: str, docs: list[dict]):
    """Save runs as run folders inside tmp_path/name; return that folder."""
    folder = tmp_path / name
    folder.mkdir()
    for doc in docs:
        write(folder, doc["run_id"], doc)
    return folder


CASES = {f"c{i}": 1e-3 * (1 + i) for i in range(8)}


def verdicts(frame) -> dict[str, str]:
    """case -> verdict, without the geomean row."""
    return dict(zip(map(short, frame["case"][:-1]), frame["verdict"][:-1], strict=True))


# ---------------------------------------------------------------- verdicts on synthetic runs


def test_three_vs_three_runs_with_a_20pct_slowdown_is_a_regression():
    """On a quiet machine (1 % between runs); noisier runs need more of them."""
    rng = np.random.default_rng(1)
    base = make_runs("b", 3, CASES, rng, run_sigma=0.01)
    cur = make_runs("c", 3, {**CASES, "c3": CASES["c3"] * 1.2}, rng, run_sigma=0.01)
    frame = frame_of(base, cur)
    got = verdicts(frame)
    assert got.pop("c3") == "regression"
    assert set(got.values()) == {"same"}
    assert check.failing_cases(frame) == [cid("c3")]
    row = frame.set_index("case").loc[cid("c3")]
    assert row["ratio"] == pytest.approx(1.2, rel=0.1)
    assert row["p"] < 0.05
    assert (row["n_baseline"], row["n_current"]) == (3, 3)
    assert 0 < row["detectable"] < 0.2


def test_one_vs_one_run_is_unreliable_and_says_how_many_runs():
    rng = np.random.default_rng(2)
    base = make_runs("b", 1, CASES, rng)
    cur = make_runs("c", 1, {k: 2 * v for k, v in CASES.items()}, rng)
    frame = frame_of(base, cur)
    assert set(verdicts(frame).values()) == {"unreliable"}
    assert not check.failing_cases(frame)
    assert "1 vs 1 run(s): at least 3 per side needed" in frame["note"].iloc[0]


def test_two_runs_on_one_side_give_the_runs_needed_at_the_observed_spread():
    base = [make_doc("b0", {"x": [1e-3] * 5}), make_doc("b1", {"x": [1.2e-3] * 5})]
    cur = [make_doc("c0", {"x": [1e-3] * 5})]
    row = frame_of(base, cur).iloc[0]
    assert row["verdict"] == "unreliable"
    sigma = stats.pooled_log_sd([0.0, math.log(1.2)])
    need = stats.runs_needed(sigma, 0.10, 0.05)
    assert need > 3
    assert f"~{need} runs per side" in row["note"]


def test_a_drifting_machine_does_not_fail_unchanged_code():
    """Per-run speed factors (the whole machine 25 % slower or faster in some runs)."""
    rng = np.random.default_rng(4)
    base = make_runs("b", 4, CASES, rng, factors=[1.0, 1.25, 0.9, 1.1])
    cur = make_runs("c", 4, CASES, rng, factors=[1.3, 1.2, 1.25, 1.15])
    frame = frame_of(base, cur)
    assert not check.failing_cases(frame)
    assert "regression" not in set(verdicts(frame).values())


def test_one_round_against_fifty_never_fails_the_build(rnnbench, tmp_path):
    rng = np.random.default_rng(5)
    base = write(tmp_path, "base", make_doc("base", {k: noisy(rng, 50, v)
                                                     for k, v in CASES.items()}))
    cur = write(tmp_path, "cur", make_doc("cur", {k: noisy(rng, 1, 1.5 * v)
                                                  for k, v in CASES.items()}))
    code, out, _ = rnnbench("check", "--baseline", base, "--current", cur)
    assert code == 0
    assert "PASS" in out
    assert "unreliable" in out


def test_improvement_and_same():
    rng = np.random.default_rng(6)
    # `same` means a 10 % slowdown would have shown: runs this steady can show it.
    base = make_runs("b", 5, CASES, rng, run_sigma=0.01)
    cur = make_runs("c", 5, {**CASES, "c0": CASES["c0"] * 0.7}, rng, run_sigma=0.01)
    got = verdicts(frame_of(base, cur))
    assert got.pop("c0") == "improvement"
    assert set(got.values()) == {"same"}


def test_unchanged_but_too_noisy_to_see_the_threshold_is_unreliable_not_same():
    """One meaning of `same` for check and ab: the runs could have detected the threshold."""
    rng = np.random.default_rng(6)
    base = make_runs("b", 3, CASES, rng, run_sigma=0.2)
    cur = make_runs("c", 3, CASES, rng, run_sigma=0.2)
    frame = frame_of(base, cur)
    judged = frame[frame["case"] != stats.GEOMEAN]
    assert set(judged["verdict"]) == {"unreliable"}
    assert all(judged["detectable"] > 0.10)
    assert all("could only detect" in n or "not significant" in n for n in judged["note"])


def test_slow_but_not_significant_is_unreliable_not_pass():
    rng = np.random.default_rng(7)
    base = make_runs("b", 3, {"x": 1e-3}, rng, run_sigma=0.3)
    cur = make_runs("c", 3, {"x": 1.15e-3}, rng, run_sigma=0.3)
    row = frame_of(base, cur).iloc[0]
    if row["ratio"] > 1.10:
        assert row["verdict"] == "unreliable"
        assert "not significant" in row["note"]
        assert "runs per side would detect" in row["note"]


def test_identical_runs_are_same():
    doc = make_doc("b", {"x": [1e-3] * 10})
    assert frame_of([doc] * 3, [doc] * 3).iloc[0]["verdict"] == "same"


def test_frame_lists_every_case_and_geomean():
    rng = np.random.default_rng(8)
    cases = {"slow": 1e-3, "same": 1e-3, "gone": 1e-3, "breaks": 1e-3}
    base = make_runs("b", 3, cases, rng, run_sigma=0.005)
    cur = make_runs("c", 3, {"slow": 1.5e-3, "same": 1e-3, "new": 1e-3, "breaks": 1e-3}, rng,
                    run_sigma=0.005)
    for doc in base + cur:
        skip = make_doc("s", {"skip": ("skipped", "needs a GPU")})["cases"][0]
        doc["cases"].append(skip)
        results.mark_finished(doc, len(doc["cases"]), complete=True)
    for row in cur[0]["cases"]:
        if row["id"] == cid("breaks"):
            row.update(status="error", reason="OOM", stats={"samples_s": []})
    frame = frame_of(base, cur)
    assert verdicts(frame) == {"slow": "regression", "breaks": "broken", "same": "same",
                               "skip": "skipped", "gone": "baseline only",
                               "new": "current only"}
    # The table lists what needs attention first (bench.verdict.CHECK_ORDER), the geomean last.
    assert [short(c) for c in frame["case"][:-1]] == ["slow", "breaks", "same", "skip", "gone",
                                                      "new"]
    assert list(frame.columns[:7]) == ["case", "baseline", "current", "ratio", "ci_low",
                                       "ci_high", "ci_level"]
    gm = frame.iloc[-1]
    assert gm["case"] == stats.GEOMEAN
    ratios = frame.set_index("case")["ratio"]
    assert gm["ratio"] == pytest.approx(math.sqrt(ratios[cid("slow")] * ratios[cid("same")]))
    assert sorted(map(short, check.failing_cases(frame))) == ["breaks", "slow"]


def test_changed_code_version_is_shown_and_still_judged():
    rng = np.random.default_rng(9)
    base = make_runs("b", 3, {"x": 1e-3}, rng, code_version="v1")
    cur = make_runs("c", 3, {"x": 2e-3}, rng, code_version="v2")
    row = frame_of(base, cur).iloc[0]
    assert row["verdict"] == "regression"
    assert "code changed (v1 → v2)" in row["note"]


def test_normalize_rescales_each_run_by_its_calibration():
    rng = np.random.default_rng(11)
    base = make_runs("b", 3, CASES, rng, gflops=100.0, run_sigma=0.005)
    # Current machine: 2x slower at the matmul and 2x slower at every case: no regression.
    cur = make_runs("c", 3, {k: 2 * v for k, v in CASES.items()}, rng, gflops=50.0,
                    run_sigma=0.005)
    assert set(verdicts(frame_of(base, cur)).values()) == {"regression"}
    frame = frame_of(base, cur, normalize=True)
    assert set(verdicts(frame).values()) == {"same"}
    assert frame["ratio"].iloc[0] == pytest.approx(1.0, rel=0.1)


def test_normalize_uses_the_calibration_of_the_case_device():
    rng = np.random.default_rng(13)
    base = make_runs("b", 3, {"x": 1e-3}, rng)
    cur = make_runs("c", 3, {"x": 3e-3}, rng)
    for docs, gpu in ((base, 300.0), (cur, 100.0)):
        for doc in docs:
            doc["cases"][0]["case"]["device"] = "gpu"
            doc["cases"][0]["id"] = doc["cases"][0]["id"].replace("/cpu/", "/gpu/")
            doc["calibration"] = {"device": "cpu", "matmul_gflops": 50.0,
                                  "devices": {"cpu": {"matmul_gflops": 50.0},
                                              "gpu": {"matmul_gflops": gpu}}}
    row = frame_of(base, cur, normalize=True).iloc[0]
    assert row["ratio"] == pytest.approx(1.0, rel=0.1)
    for doc in cur:
        del doc["calibration"]["devices"]["gpu"]
    row = frame_of(base, cur, normalize=True).iloc[0]
    assert row["verdict"] == "unreliable"
    assert row["n_current"] == 0


# ---------------------------------------------------------------- statistics


@pytest.mark.parametrize("shift", [0.0, 0.02, 0.05, 0.1, -0.08])
def test_welch_bounds_agree_with_the_one_sided_test(shift):
    rng = np.random.default_rng(17)
    before, after = list(rng.normal(0, 0.05, 5)), list(rng.normal(shift, 0.05, 4))
    for level in (0.9, 0.95, 0.995):
        low, high = stats.welch_bounds(before, after, level)
        assert (low > 0) == (stats.welch_p(before, after, "greater") < 1 - level)
        assert (high < 0) == (stats.welch_p(before, after, "less") < 1 - level)
    assert stats.welch_bounds([1.0, 1.0], [2.0, 2.0], 0.95) == (1.0, 1.0)


def test_welch_p_directions_and_degenerate_cases():
    low, high = [0.0, 0.1, -0.1], [1.0, 1.1, 0.9]
    assert stats.welch_p(low, high, "greater") < 0.01
    assert stats.welch_p(low, high, "less") > 0.99
    assert stats.welch_p([1.0, 1.0], [2.0, 2.0], "greater") == 0.0
    assert stats.welch_p([1.0, 1.0], [1.0, 1.0], "greater") == 1.0
    with pytest.raises(ValueError, match="two values"):
        stats.welch_p([1.0], [1.0, 2.0])


def test_runs_needed_and_detectable_agree():
    sigma, alpha = 0.05, 0.01
    need = stats.runs_needed(sigma, 0.10, alpha)
    assert stats.min_detectable(sigma, need, need, alpha) <= 0.10
    assert stats.min_detectable(sigma, need - 1, need - 1, alpha) > 0.10
    assert stats.runs_needed(0.01, 0.10, alpha) < stats.runs_needed(0.10, 0.10, alpha)
    assert stats.runs_needed(math.nan, 0.10, alpha) is None


TRIALS = 300


def _flag_rate(slowdown: float, seed: int, runs: int = 5) -> tuple[float, float]:
    """Over TRIALS checks of 8 cases (5 runs per side, 5 % run-to-run noise, c0 slowed): the
    fraction that flag c0 and the fraction that flag any other case."""
    from bench.analysis.verdicts import judge_cases
    from bench.cases import Case
    from bench.rows import CaseRow, CaseStats

    rng = np.random.default_rng(seed)
    names = list(CASES)
    case = Case.from_params(CASE)  # the verdicts read only the medians
    hit = other = 0
    for _ in range(TRIALS):
        noise = np.exp(rng.normal(0.0, 0.05, (2, len(names), runs)))
        sides = [tuple([CaseRow(name, case, "ok", stats=CaseStats(median_s=float(
                    CASES[name] * (1 + slowdown * (side == 1 and name == "c0")) * f)))
                        for f in noise[side, i]] for side in (0, 1))
                 for i, name in enumerate(names)]
        rows = judge_cases(names, sides, [([1.0] * runs, [1.0] * runs)] * len(names),
                           threshold=0.10, alpha=0.05)
        failed = {r["case"] for r in rows if r["verdict"] == "regression"}
        hit += "c0" in failed
        other += bool(failed - {"c0"})
    return hit / TRIALS, other / TRIALS


def test_power_and_false_alarm_rate():
    detected, false = _flag_rate(0.30, seed=20261122)
    assert detected >= 0.9
    assert false <= 0.05
    detected, false = _flag_rate(0.0, seed=7)
    assert detected + false <= 0.05


# ---------------------------------------------------------------- the CLI


@pytest.fixture
def runs(tmp_path):
    """Folders of 3 baseline, 3 unchanged and 3 slower runs of the same cases."""
    rng = np.random.default_rng(1)
    return {"base": write_runs(tmp_path, "base", make_runs("base", 3, CASES, rng)),
            "same": write_runs(tmp_path, "same", make_runs("same", 3, CASES, rng)),
            "slow": write_runs(tmp_path, "slow", make_runs(
                "slow", 3, {**CASES, "c1": CASES["c1"] * 1.3}, rng)),
            "tmp": tmp_path}


def test_exit_0_when_unchanged(rnnbench, runs):
    code, out, _ = rnnbench("check", "--baseline", runs["base"], "--current", runs["same"])
    assert code == 0
    assert "PASS" in out
    assert ("| case | baseline (ms) | current (ms) | ratio | interval | p (Bonferroni) | "
            "detectable | runs (b/c) | verdict | note |") in out
    assert "`interval`: 98.75% two-sided, i.e. one-sided 99.38% bounds, the test's" in out
    assert "| 3/3 |" in out
    assert "- what changed: no software version" in out


def test_exit_1_on_regression(rnnbench, runs):
    code, out, _ = rnnbench("check", "--baseline", runs["base"], "--current", runs["slow"])
    assert code == 1
    assert f"| {cid('c1')} |" in out
    assert "regression" in out
    assert "FAIL: 1 case(s)" in out


def test_run_folders_can_be_listed_one_by_one(rnnbench, runs):
    base = sorted(runs["base"].iterdir())
    code, _out, _ = rnnbench("check", "--baseline", *base, "--current", runs["slow"])
    assert code == 1
    code, _, err = rnnbench("check", "--baseline", base[0], base[0], "--current", runs["slow"])
    assert code == 2
    assert "given twice" in err


def test_copies_of_one_run_count_once_with_a_note(rnnbench, runs):
    """Three copies of one run folder are one run: 1 run against 3 is `unreliable`."""
    import shutil

    one = sorted(runs["slow"].iterdir())[0]
    copies = runs["tmp"] / "copies"
    for name in ("x", "y", "z"):
        shutil.copytree(one, copies / name)
    doc = json.loads((copies / "z" / "results.json").read_text())
    doc["run_id"] = "renamed"  # same measurements under another id: still the same run
    (copies / "z" / "results.json").write_text(json.dumps(doc))
    code, out, err = rnnbench("check", "--baseline", runs["base"], "--current", copies)
    assert code == 0
    assert "| 3/1 |" in out
    assert "| regression |" not in out
    assert err.count("counted once on the current side") == 2
    assert "(same run id)" in err
    assert "(same content)" in err


@pytest.mark.parametrize("current", ["same-folder", "copy"])
def test_the_same_run_on_both_sides_is_refused(rnnbench, runs, current):
    import shutil

    other = runs["base"]
    if current == "copy":
        other = runs["tmp"] / "copy"
        shutil.copytree(runs["base"], other)
    code, out, err = rnnbench("check", "--baseline", runs["base"], "--current", other)
    assert (code, out) == (2, "")
    assert err.count("\n") == 1
    assert "are the same run" in err
    assert "on both sides" in err


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
    empty = tmp_path / "empty"
    empty.mkdir()
    return {"missing": tmp_path / "nope", "half": half, "foreign": foreign, "newer": newer,
            "empty": empty}


@pytest.mark.parametrize(("which", "message"), [
    ("missing", "no such results file"), ("half", "malformed JSON"),
    ("foreign", "not an rnnbench results file"), ("newer", "newer than this rnnbench"),
    ("empty", "no results.json in it or in its sub-folders"),
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


def test_partial_baseline_is_refused_unless_allowed(rnnbench, tmp_path):
    rng = np.random.default_rng(3)
    base = make_runs("b", 3, CASES, rng)
    base[1].update(status="partial", cases_planned=51, cases_finished=8)
    base_dir = write_runs(tmp_path, "base", base)
    cur_dir = write_runs(tmp_path, "cur", make_runs("c", 3, CASES, rng))
    code, out, err = rnnbench("check", "--baseline", base_dir, "--current", cur_dir)
    assert (code, out) == (2, "")
    assert "the baseline run b1 is partial (8 of 51 cases finished)" in err
    assert "--allow-partial" in err
    code, _, _ = rnnbench("check", "--baseline", base_dir, "--current", cur_dir,
                          "--allow-partial")
    assert code == 0
    # A partial current run is judged on its finished cases, with a warning.
    code, _, err = rnnbench("check", "--baseline", cur_dir, "--current", base_dir)
    assert code == 0
    assert "warning: the current run b1 is partial" in err


def test_software_difference_is_shown_in_the_header(rnnbench, tmp_path):
    rng = np.random.default_rng(4)
    a = write_runs(tmp_path, "a", make_runs("a", 3, CASES, rng))
    b = write_runs(tmp_path, "b", make_runs("b", 3, CASES, rng,
                                            env={"tensorflow": "2.22.0", "git_commit": "abc"}))
    code, out, err = rnnbench("check", "--baseline", a, "--current", b)
    assert (code, err) == (0, "")
    assert "- what changed: tensorflow: 2.21.0 → 2.22.0; git_commit: None → abc" in out


def test_other_machine_is_refused_without_normalize(rnnbench, tmp_path):
    rng = np.random.default_rng(2)
    a = write_runs(tmp_path, "a", make_runs("a", 3, CASES, rng, gflops=100.0))
    b = write_runs(tmp_path, "b", make_runs("b", 3, {k: 2 * v for k, v in CASES.items()},
                                            rng, gflops=50.0, env={"cpu_model": "EPYC"}))
    code, _, err = rnnbench("check", "--baseline", a, "--current", b)
    assert code == 2
    assert "cpu_model (Xeon vs Xeon vs Xeon vs EPYC vs EPYC vs EPYC)" in err
    assert "--normalize" in err
    code, out, _ = rnnbench("check", "--baseline", a, "--current", b, "--normalize")
    assert code == 0, out
    code, _, err = rnnbench("check", "--baseline", a, "--current", b, "--report-only")
    assert code == 0
    assert "warning: baseline and current ran on different machines" in err


def test_normalize_without_calibration_exits_2(rnnbench, tmp_path):
    a = write(tmp_path, "a", make_doc("a", {"x": [1.0] * 10}, gflops=None))
    b = write(tmp_path, "b", make_doc("b", {"x": [1.0] * 10}))
    code, _, err = rnnbench("check", "--baseline", a, "--current", b, "--normalize")
    assert code == 2
    assert "calibration.matmul_gflops" in err


@pytest.mark.parametrize("value", ["-5%", "-0.05", "0%"])
def test_a_negative_threshold_says_it_must_be_above_0(rnnbench, runs, capsys, value):
    """Issue 17: `--threshold -5%` used to say "expected one argument"."""
    code, _, err = rnnbench("check", "--baseline", runs["base"], "--current", runs["same"],
                            "--threshold", value)
    assert code == 2
    assert len(err.strip().splitlines()) == 1
    assert f"argument --threshold: '{value}': the threshold must be above 0" in err
    assert "expected one argument" not in err


@pytest.mark.parametrize("seed", range(30))
def test_a_significant_check_verdict_never_shows_an_interval_holding_1(seed):
    """Over random runs (sides of 3-6 runs, spreads, effects, cases, alpha), a regression's
    interval lies above 1 and an improvement's below, at the level 1 - 2 alpha / m."""
    rng = np.random.default_rng(300 + seed)
    n_cases = int(rng.integers(1, 6))
    cases = {f"c{i}": 1e-3 for i in range(n_cases)}
    slow = {k: v * float(rng.uniform(0.7, 1.5)) for k, v in cases.items()}
    sigma = float(rng.uniform(0.005, 0.2))
    alpha = float(rng.choice([0.01, 0.05, 0.2]))
    base = make_runs("b", int(rng.integers(3, 7)), cases, rng, run_sigma=sigma)
    cur = make_runs("c", int(rng.integers(3, 7)), slow, rng, run_sigma=sigma)
    threshold = float(rng.choice([0.0001, 0.1]))
    frame = frame_of(base, cur, alpha=alpha, threshold=threshold)
    for row in frame.iloc[:-1].to_dict("records"):
        if row["verdict"] == "regression":
            assert row["ci_low"] > 1.0
        if row["verdict"] == "improvement":
            assert row["ci_high"] < 1.0
        if row["verdict"] in ("regression", "improvement", "same"):
            assert row["ci_level"] == pytest.approx(1 - 2 * alpha / n_cases)
            assert row["ci_low"] <= row["ratio"] <= row["ci_high"]


def test_bad_threshold_is_a_usage_error(rnnbench, runs):
    code, _, err = rnnbench("check", "--baseline", runs["base"], "--current", runs["same"],
                            "--threshold", "10")
    assert code == 2
    assert err.strip().splitlines() == [
        "rnnbench check: error: argument --threshold: '10' is ambiguous; write 10% or a "
        "fraction below 1 such as 0.10 (see rnnbench check --help)"]
