"""rnnbench compare: join on case id, ratios, geometric mean, refusals and bad input."""

from __future__ import annotations

import io
import json
import math
import shutil
import statistics
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from bench import identity
from bench.analysis import compare
from bench.analysis import compare_frames as cf
from bench.results import read_run

FIXTURES = Path(__file__).parent / "fixtures"
GOLDEN = FIXTURES / "compare_run_a_run_b.md"


@pytest.fixture
def run_dirs(tmp_path):
    """Copies of the two golden runs (1 vs 2 intra-op threads on the same machine)."""
    out = {}
    for name in ("run_a", "run_b"):
        shutil.copytree(FIXTURES / name, tmp_path / name)
        out[name] = tmp_path / name
    return out


def _sets(*paths):
    return compare.load_sets([str(p) for p in paths])


def _frames(*paths, normalize=False):
    sets = _sets(*paths)
    facts = cf.case_facts(sets)
    cells = cf.all_cells(sets, normalize)
    return sets, facts, cells, cf.main_frame(sets, cells, facts, cf.common_cases(cells, facts))


def test_main_table_holds_the_cases_timed_everywhere_with_ratio_intervals():
    sets, facts, cells, frame = _frames(FIXTURES / "run_a", FIXTURES / "run_b")
    body = frame.iloc[:-1].set_index("case")
    assert len(body) == 42
    assert (body["B/A"] == body["B"] / body["A"]).all()
    assert frame.iloc[-1]["case"] == compare.GEOMEAN
    assert frame.iloc[-1]["B/A"] == pytest.approx(math.exp(body["B/A"].map(math.log).mean()))
    # single runs: the two medians' within-run intervals, combined on the log scale
    case = "gru/static/cpu/b16-t10-i8-h32-l1/fp32/backward"
    a, b = (read_run(FIXTURES / n).cases for n in ("run_a", "run_b"))
    ra, rb = (next(r for r in rows if r.id == case) for rows in (a, b))
    se = math.hypot(*(math.log(r.stats.median_hi_s / r.stats.median_lo_s) / (2 * cf.Z95)
                      for r in (ra, rb)))
    ratio = rb.stats.median_s / ra.stats.median_s
    assert body.loc[case, "B/A lo"] == pytest.approx(ratio * math.exp(-cf.Z95 * se))
    assert body.loc[case, "B/A hi"] == pytest.approx(ratio * math.exp(cf.Z95 * se))
    assert body.loc[case, "B/A basis"] == cf.WITHIN
    assert bool(body.loc[case, "B/A significant"]) is bool(body.loc[case, "B/A hi"] < 1)
    assert set(body["fastest"]) == {"B"}
    # everything else is in the appendix, with each run's status
    missing = cf.missing_frame(sets, cells, facts, list(body.index)).set_index("case")
    assert set(missing.index) | set(body.index) == {r.id for n in ("run_a", "run_b")
                                                    for r in read_run(FIXTURES / n).cases}
    gone = "basic_rnn/static/cpu/b16-t10-i8-h32-l1/fp32/backward"
    assert missing.loc[gone, "B"] == cf.NOT_RUN
    assert missing.loc["gru/dynamic/cpu/b16-t10-i8-h32-l1/fp32/forward", "B"].startswith("error")
    counts = {c["label"]: c for c in cf.missing_counts(sets, cells, facts)}
    assert (counts["B"][cf.NOT_RUN], counts["B"]["skipped"], counts["B"]["error"]) == (2, 6, 2)
    assert counts["A"]["ok"] == 45


def test_several_runs_of_one_machine_make_the_run_the_unit(tmp_path):
    group = tmp_path / "b-runs"
    for i, factor in enumerate((0.9, 1.0, 1.2)):
        _edit(shutil.copytree(FIXTURES / "run_a", group / f"run{i}"), lambda doc, f=factor: [
            row["stats"].update(median_s=row["stats"]["median_s"] * f)
            for row in doc["cases"] if row["stats"].get("median_s")])
    sets, _, _, frame = _frames(FIXTURES / "run_a", group)
    assert (sets[1].name, len(sets[1].runs)) == ("b-runs", 3)
    row = frame.set_index("case").loc["gru/static/cpu/b16-t10-i8-h32-l1/fp32/backward"]
    logs = [math.log(f) for f in (0.9, 1.0, 1.2)]
    assert row["B/A"] == pytest.approx(math.exp(sum(logs) / 3))
    assert row["B/A basis"] == cf.MIXED
    single = next(r for r in read_run(FIXTURES / "run_a").cases if r.id == row.name)
    se_a = math.log(single.stats.median_hi_s / single.stats.median_lo_s) / (2 * cf.Z95)
    se_b = statistics.stdev(logs) / math.sqrt(3)
    assert row["B/A hi"] == pytest.approx(row["B/A"] * math.exp(cf.Z95 * math.hypot(se_a, se_b)))
    assert row["B lo"] < row["B"] < row["B hi"]  # t interval over the 3 run medians
    _, _, _, runs = _frames(group, group)
    assert set(runs.iloc[:-1]["B/A basis"]) == {cf.RUNS}


def test_summary_per_implementation_and_the_fastest_per_machine():
    sets, facts, cells, _ = _frames(FIXTURES / "run_a", FIXTURES / "run_b")
    summary = cf.summary_frame(sets, cells, facts, cf.common_cases(cells, facts))
    row = summary[(summary["phase"] == "forward") & (summary["impl"] == "keras_lstm")]
    assert list(row["shape"]) == ["b16-t10-i8-h32-l1"]  # the l2 shape ran in A only: left out
    row = row.iloc[0]
    mine = [c for c, f in facts.items() if f["impl"] == "keras_lstm" and f["phase"] == "forward"
            and f["shape"] == "b16-t10-i8-h32-l1"]
    assert row["A"] == pytest.approx(math.exp(statistics.fmean(
        math.log(cells[0][c].median_s) for c in mine)))
    assert row["A cases"] == 2
    fastest = cf.fastest_frame(summary, ["A", "B"])
    lstm = fastest[fastest["model"] == "LSTM"].set_index("phase")
    assert lstm.loc["train_step", "A"].startswith("basic_lstm (1.")
    assert "ahead of" in lstm.loc["train_step", "B"]
    # Only implementations of one model race: a vanilla RNN never beats an LSTM here.
    for _, row in fastest.iterrows():
        winner = row["A"].split(" ")[0] if row["A"] else None
        assert winner is None or cf.model_of(winner) == row["model"]


def test_normalize_divides_by_each_runs_matmul(tmp_path):
    fast = _edit(shutil.copytree(FIXTURES / "run_b", tmp_path / "b"), lambda doc: doc[
        "calibration"].update(matmul_gflops=doc["calibration"]["matmul_gflops"] * 2))
    raw = _frames(FIXTURES / "run_a", fast)[3].set_index("case")
    scaled = _frames(FIXTURES / "run_a", fast, normalize=True)[3].set_index("case")
    a = read_run(FIXTURES / "run_a").calibration["matmul_gflops"]
    b = read_run(fast).calibration["matmul_gflops"]
    assert (scaled["B/A"].iloc[:-1] / raw["B/A"].iloc[:-1]).to_list() == pytest.approx(
        [b / a] * (len(raw) - 1))


def test_four_runs_and_120_cases_give_one_legible_heatmap(tmp_path):
    from bench.analysis.heatmap import ratio_heatmap

    rng = np.random.default_rng(3)
    labels = ["A", "B", "C", "D"]
    rows = []
    for i in range(120):
        row = {"case": f"c{i}", "impl": f"impl{i % 6}", "phase": ("forward", "backward")[i % 2],
               "unroll": "static", "shape": f"b{i}", "precision": "fp32"}
        for x in labels[1:]:
            ratio = float(np.exp(rng.normal(0, 0.3)))
            row.update({f"{x}/A": ratio, f"{x}/A significant": bool(rng.random() < 0.5)})
        rows.append(row)
    frame = pd.DataFrame(rows).sort_values(["phase", "impl"])
    png = ratio_heatmap(frame, labels, title="t")
    assert png[:8] == b"\x89PNG\r\n\x1a\n"
    import matplotlib.image as mpimg

    height, width = mpimg.imread(io.BytesIO(png)).shape[:2]
    assert height > 120 * 15  # every row keeps at least ~15 px
    assert width < height


def test_three_runs_share_the_reference():
    sets, _, _, frame = _frames(FIXTURES / "run_a", FIXTURES / "run_a", FIXTURES / "run_a")
    assert [s.label for s in sets] == ["A", "B", "C"]
    assert frame.iloc[-1]["C/A"] == pytest.approx(1.0)
    assert not frame.iloc[:-1]["C/A significant"].any()


def test_different_threads_are_refused_without_cross_machine(rnnbench, run_dirs):
    code, out, err = rnnbench("compare", run_dirs["run_a"], run_dirs["run_b"])
    assert code == 2
    assert out == ""
    assert err == ("rnnbench compare: error: runs are not comparable: intra_op_threads (1 vs 2)"
                   "; pass --cross-machine to compare different machines anyway\n")


def test_markdown_matches_golden(rnnbench, run_dirs):
    code, out, _ = rnnbench("compare", run_dirs["run_a"], run_dirs["run_b"], "--cross-machine")
    assert code == 0
    assert out == GOLDEN.read_text(encoding="utf-8")


def test_out_writes_markdown_csv_and_figure(rnnbench, run_dirs, tmp_path):
    out_dir = tmp_path / "cmp"
    code, out, _ = rnnbench("compare", run_dirs["run_a"], run_dirs["run_b"], "--cross-machine",
                            "--out", out_dir)
    assert code == 0
    text = (out_dir / "compare.md").read_text(encoding="utf-8")
    assert text == out
    assert "](figures/ratios.png)" in text
    assert (out_dir / "figures" / "ratios.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    page = (out_dir / "report.html").read_text(encoding="utf-8")
    assert "data:image/png;base64," in page
    assert "0.749×" in page  # the same numbers as compare.md
    csv = pd.read_csv(out_dir / "compare.csv")
    assert {"case", "A", "A lo", "A hi", "B/A", "B/A lo", "B/A hi", "B/A basis"} <= set(csv)
    assert csv["case"].iloc[-1] == "geomean"
    # never overwritten
    code, _, err = rnnbench("compare", run_dirs["run_a"], run_dirs["run_b"], "--cross-machine",
                            "--out", out_dir)
    assert code == 2
    assert "already exists" in err
    assert (out_dir / "compare.md").read_text(encoding="utf-8") == text


def _break(path: Path, how: str) -> None:
    file = path / "results.json"
    if how == "half":
        file.write_text(file.read_text()[:500])
    elif how == "foreign":
        file.write_text(json.dumps({"machine_info": {}, "benchmarks": []}))
    elif how == "newer":
        doc = json.loads(file.read_text())
        doc["schema_version"] = 99
        file.write_text(json.dumps(doc))
    elif how == "old":
        doc = json.loads(file.read_text())
        doc["schema_version"] = 0
        file.write_text(json.dumps(doc))


@pytest.mark.parametrize(("how", "message"), [
    ("half", "malformed JSON"), ("foreign", "not an rnnbench results file"),
    ("newer", "schema_version 99 is newer"), ("old", "schema_version 0 is not a known"),
])
def test_bad_or_mixed_schema_inputs_exit_2_and_write_nothing(rnnbench, run_dirs, tmp_path,
                                                               how, message):
    _break(run_dirs["run_b"], how)
    out_dir = tmp_path / "cmp"
    code, out, err = rnnbench("compare", run_dirs["run_a"], run_dirs["run_b"],
                              "--cross-machine", "--out", out_dir)
    assert code == 2
    assert out == ""
    assert err.startswith("rnnbench compare: error: ")
    assert message in err
    assert err.count("\n") == 1
    assert not out_dir.exists()


def test_missing_run_and_single_run_exit_2(rnnbench, run_dirs, tmp_path):
    code, _, err = rnnbench("compare", run_dirs["run_a"], tmp_path / "nope")
    assert code == 2
    assert "no such results file" in err
    code, _, err = rnnbench("compare", run_dirs["run_a"])
    assert code == 2
    assert "at least two runs" in err


def test_identity_fields():
    env = {"tensorflow": "2.21.0", "cuda": "12.5", "cudnn": "9", "cpu_model": "Xeon",
           "intra_op_threads": 2, "inter_op_threads": 1,
           "gpus": [{"name": "H100", "memory": "80GB", "driver": "550"}]}
    ident = identity.identity(env)
    assert ident["gpu"] == "H100"
    other = {**env, "gpus": [{"name": "A100"}], "cudnn": "8"}
    diffs = identity.identity_mismatches([{"env": env}, {"env": other}],
                                         identity.SOFTWARE_FIELDS + identity.HARDWARE_FIELDS)
    assert diffs == {"cudnn": ["9", "8"], "gpu": ["H100", "A100"]}


def test_cpu_features_are_hardware_and_older_runs_still_compare():
    env = {"cpu_model": "Xeon", "cpu_features": ["avx2", "avx", "fma"]}
    wider = {**env, "cpu_features": ["avx", "avx2", "avx512f", "fma"]}
    old = {"cpu_model": "Xeon"}  # recorded before the features were

    def diffs(*envs):
        return identity.identity_mismatches([{"env": e} for e in envs],
                                            identity.HARDWARE_FIELDS)

    assert "cpu_features" in identity.HARDWARE_FIELDS
    assert identity.identity(env)["cpu_features"] == "avx avx2 fma"
    assert diffs(env, wider) == {"cpu_features": ["avx avx2 fma", "avx avx2 avx512f fma"]}
    assert diffs(env, {**env, "cpu_features": ["fma", "avx", "avx2"]}) == {}
    assert diffs(old, old) == {}
    assert diffs(old, env) == {}
    assert diffs(old, env, wider) == {"cpu_features": [None, "avx avx2 fma",
                                                       "avx avx2 avx512f fma"]}


def test_different_cpu_features_are_refused(rnnbench, run_dirs):
    _edit(run_dirs["run_a"], lambda doc: doc["env"].update(cpu_features=["avx", "avx2"]))
    _edit(run_dirs["run_b"], lambda doc: doc["env"].update(
        cpu_features=["avx", "avx2", "avx512f"], intra_op_threads=1))
    code, _, err = rnnbench("compare", run_dirs["run_a"], run_dirs["run_b"])
    assert code == 2
    assert "cpu_features (avx avx2 vs avx avx2 avx512f)" in err


def _edit(path: Path, change) -> Path:
    file = path / "results.json"
    doc = json.loads(file.read_text())
    change(doc)
    file.write_text(json.dumps(doc))
    return path


def test_software_difference_is_shown_not_refused(rnnbench, run_dirs):
    def upgrade_tf(doc):
        doc["env"].update(tensorflow="2.22.0", intra_op_threads=1)

    _edit(run_dirs["run_b"], upgrade_tf)
    code, out, err = rnnbench("compare", run_dirs["run_a"], run_dirs["run_b"])
    assert (code, err) == (0, "")
    assert "**What changed** (software): tensorflow (2.21.0 vs 2.22.0)." in out
    assert "Different machines" not in out


def test_hardware_difference_is_refused_even_with_a_software_change(rnnbench, run_dirs):
    _edit(run_dirs["run_b"], lambda doc: doc["env"].update(tensorflow="2.22.0",
                                                           cpu_model="EPYC"))
    code, _, err = rnnbench("compare", run_dirs["run_a"], run_dirs["run_b"])
    assert code == 2
    assert "cpu_model" in err
    assert "tensorflow" not in err


def test_no_common_step_time_case_exits_2(rnnbench, run_dirs):
    def rename(doc):  # other shapes: ids (and parameters) that run_a does not have
        for row in doc["cases"]:
            row["id"] = row["id"].replace("-h32-", "-h33-")
            row["case"]["hidden_size"] = 33

    _edit(run_dirs["run_b"], rename)
    code, out, err = rnnbench("compare", run_dirs["run_a"], run_dirs["run_b"],
                              "--cross-machine")
    assert (code, out) == (2, "")
    assert "no step-time case ran in both A" in err
    assert err.count("\n") == 1


def test_tta_run_against_a_step_time_run_exits_2(rnnbench, run_dirs):
    _edit(run_dirs["run_b"], lambda doc: doc.update(cases=[]))
    for order in ((run_dirs["run_a"], run_dirs["run_b"]),
                  (run_dirs["run_b"], run_dirs["run_a"])):
        code, out, err = rnnbench("compare", *order, "--cross-machine")
        assert (code, out) == (2, "")
        assert "is a time-to-accuracy run with no step-time cases" in err
        assert err.count("\n") == 1


def test_a_tta_run_is_named_before_any_machine_difference(rnnbench, run_dirs):
    """Issue 17: a TTA run against a step-time run on another machine is refused for what it
    is, not for its thread settings with advice to pass --cross-machine."""
    _edit(run_dirs["run_b"], lambda doc: doc.update(cases=[]))
    code, out, err = rnnbench("compare", run_dirs["run_a"], run_dirs["run_b"])
    assert (code, out) == (2, "")
    assert "is a time-to-accuracy run with no step-time cases" in err
    assert "--cross-machine" not in err
