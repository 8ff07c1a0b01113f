"""rnnbench compare: join on case id, ratios, geometric mean, refusals and bad input."""

from __future__ import annotations

import json
import math
import shutil
from pathlib import Path

import pytest

from bench import identity
from bench.analysis import compare
from bench.results import load_run

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


def test_frame_ratios_and_geomean():
    docs = [load_run(FIXTURES / "run_a"), load_run(FIXTURES / "run_b")]
    frame = compare.compare_frame(docs, ["A", "B"])
    body = frame.iloc[:-1].set_index("case")
    ok = body["B/A"].dropna()
    assert len(ok) == 42
    assert (body["B/A"].dropna() == (body["B"] / body["A"]).dropna()).all()
    assert frame.iloc[-1]["case"] == compare.GEOMEAN
    assert frame.iloc[-1]["B/A"] == pytest.approx(math.exp(ok.map(math.log).mean()))
    # every case of either run keeps its row: skipped, error and one-sided ones included
    ids = {r["id"] for d in docs for r in d["cases"]}
    assert set(body.index) == ids
    gone = "basic_rnn/static/cpu/b16-t10-i8-h32-l1/fp32/backward"
    assert body.loc[gone, "note"] == "not in B"
    assert "skipped in all runs" in body.loc["cudnn_lstm/fused/cpu/b16-t10-i8-h32-l1/fp32/"
                                             "forward", "note"]
    assert body.loc["gru/dynamic/cpu/b16-t10-i8-h32-l1/fp32/forward", "note"].startswith(
        "B: error")
    assert set(body.loc[ok.index, "fastest"]) == {"B"}


def test_three_runs_share_the_reference():
    doc = load_run(FIXTURES / "run_a")
    frame = compare.compare_frame([doc, doc, doc], ["A", "B", "C"])
    assert list(frame.columns) == ["case", "A", "B", "C", "B/A", "C/A", "fastest", "note"]
    assert frame.iloc[-1]["C/A"] == pytest.approx(1.0)


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
    assert "![speed-up per case](figures/speedup.png)" in text
    assert (out_dir / "figures" / "speedup.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    csv = (out_dir / "compare.csv").read_text(encoding="utf-8").splitlines()
    assert csv[0] == "case,A,B,B/A,fastest,note"
    assert csv[-1].startswith("geomean,")
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
