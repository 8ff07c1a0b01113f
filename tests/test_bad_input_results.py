"""Bad values in a results file: report, compare and check each exit 2 with one line that names
the file, the row and the field, print nothing on stdout and write nothing."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

FIXTURES = Path(__file__).parent / "fixtures"
CASE = "basic_lstm/static/cpu/b16-t10-i8-h32-l1/fp32/forward"  # cases[0] of run_a
TTA = "row/keras_lstm/seed0"  # tta[0] of run_a


def _case(doc):
    return doc["cases"][0]


def _tta(doc):
    return doc["tta"][0]


# (id, mutation, the row named in the message, the field named in the message)
BAD_VALUES = [
    ("median-is-a-string", lambda d: _case(d)["stats"].update(median_s="fast"),
     f"case {CASE}", "stats.median_s is 'fast', not a number"),
    ("negative-sample", lambda d: _case(d)["stats"]["samples_s"].__setitem__(0, -0.00173),
     f"case {CASE}", "stats.samples_s[0] is -0.00173, outside"),
    ("zero-median", lambda d: _case(d)["stats"].update(median_s=0),
     f"case {CASE}", "stats.median_s is 0, outside"),
    ("nan-median", lambda d: _case(d)["stats"].update(median_s=float("nan")),
     f"case {CASE}", "stats.median_s is nan, not a finite number"),
    ("infinite-min", lambda d: _case(d)["stats"].update(min_s=float("inf")),
     f"case {CASE}", "stats.min_s is inf, not a finite number"),
    ("negative-iqr", lambda d: _case(d)["stats"].update(iqr_s=-1e-5),
     f"case {CASE}", "stats.iqr_s"),
    ("fractional-rounds", lambda d: _case(d)["stats"].update(rounds=2.5),
     f"case {CASE}", "stats.rounds is 2.5, not an integer"),
    ("boolean-rounds", lambda d: _case(d)["stats"].update(rounds=True),
     f"case {CASE}", "stats.rounds is True, not an integer"),
    ("negative-compile", lambda d: _case(d)["stats"].update(compile_s=-0.8),
     f"case {CASE}", "stats.compile_s"),
    ("string-flops", lambda d: _case(d)["stats"].update(flops="many"),
     f"case {CASE}", "stats.flops"),
    ("negative-gflops", lambda d: _case(d)["stats"].update(gflops=-2.0),
     f"case {CASE}", "stats.gflops"),
    ("huge-pct-peak", lambda d: _case(d)["stats"].update(pct_peak=1e300),
     f"case {CASE}", "stats.pct_peak"),
    ("huge-integer-mean", lambda d: _case(d)["stats"].update(mean_s=10 ** 400),
     f"case {CASE}", "stats.mean_s"),
    ("samples-not-a-list", lambda d: _case(d)["stats"].update(samples_s="0.1, 0.2"),
     f"case {CASE}", "stats.samples_s is '0.1, 0.2', not a list"),
    ("null-sample", lambda d: _case(d)["stats"]["samples_s"].append(None),
     f"case {CASE}", "stats.samples_s[12] is null"),
    ("warning-not-text", lambda d: _case(d)["stats"].update(warnings=[{"x": 1}]),
     f"case {CASE}", "stats.warnings[0]"),
    ("batch-as-text", lambda d: _case(d)["case"].update(batch="16"),
     f"case {CASE}", "case.batch is '16', not an integer"),
    ("impl-as-list", lambda d: _case(d)["case"].update(impl=["lstm"]),
     f"case {CASE}", "case.impl"),
    ("unknown-status", lambda d: _case(d).update(status="maybe"),
     f"case {CASE}", "status is 'maybe'"),
    ("stats-not-an-object", lambda d: _case(d).update(stats=[1, 2]),
     f"case {CASE}", "stats is [1, 2], not an object"),
    ("negative-memory", lambda d: _case(d).update(memory_peak_bytes=-1),
     f"case {CASE}", "memory_peak_bytes is -1, outside [0, 1e+18]"),
    ("fractional-memory", lambda d: _case(d).update(memory_peak_bytes=1.5),
     f"case {CASE}", "memory_peak_bytes is 1.5, not an integer"),
    ("memory-as-text", lambda d: _case(d).update(memory_peak_bytes="12 MiB"),
     f"case {CASE}", "memory_peak_bytes is '12 MiB', not an integer"),
    ("kernel-not-text", lambda d: _case(d).update(kernel=["MatMul"]),
     f"case {CASE}", "kernel is ['MatMul'], not a string"),
    ("memory-method-not-text", lambda d: _case(d).update(memory_method=3),
     f"case {CASE}", "memory_method is 3, not a string"),
    ("tta-negative-time", lambda d: _tta(d)["stats"].update(time_to_target_s=-5),
     f"tta run {TTA}", "stats.time_to_target_s"),
    ("tta-accuracy-above-1", lambda d: _tta(d)["stats"].update(best_acc=1.5),
     f"tta run {TTA}", "stats.best_acc is 1.5, outside [0, 1]"),
    ("tta-curve-garbage", lambda d: _tta(d)["stats"]["curve"][0].update(wall_s="x"),
     f"tta run {TTA}", "stats.curve[0].wall_s"),
    ("tta-target-text", lambda d: _tta(d)["settings"].update(target="high"),
     f"tta run {TTA}", "settings.target"),
    ("tta-nested-setting", lambda d: _tta(d)["settings"].update(lr={"a": [1]}),
     f"tta run {TTA}", "settings.lr"),
    ("negative-calibration", lambda d: d["calibration"].update(matmul_gflops=-3),
     "calibration", "matmul_gflops is -3"),
    ("calibration-devices-text", lambda d: d["calibration"].update(devices="cpu"),
     "calibration", "devices is 'cpu', not an object"),
    ("calibration-dtype-negative", lambda d: d["calibration"].update(
        devices={"cpu": {"dtypes": {"bf16": {"matmul_gflops": -1}}}}),
     "calibration", "devices.cpu.dtypes.bf16.matmul_gflops is -1"),
    ("calibration-measurements-text", lambda d: d["calibration"].update(
        devices={"cpu": {"dtypes": {"fp32": {"measurements": "x"}}}}),
     "calibration", "devices.cpu.dtypes.fp32.measurements is 'x', not a list"),
    ("unknown-run-status", lambda d: d.update(status="halfway"), "run", "status is 'halfway'"),
    ("negative-planned", lambda d: d.update(cases_planned=-1), "run", "cases_planned"),
    # issue 17: consistency of the file
    ("id-disagrees-with-params", lambda d: _case(d)["case"].update(batch=64),
     f"case {CASE}", "id disagrees with its parameters, which spell basic_lstm/static/cpu/b64"),
    ("finished-above-planned", lambda d: d.update(cases_planned=2, cases_finished=3), "run",
     "cases_finished is 3, more than cases_planned (2)"),
    ("finished-disagrees-with-rows", lambda d: d.update(cases_finished=1), "run",
     "cases_finished is 1, but the file holds"),
    ("nan-in-calibration-measurement", lambda d: d["calibration"].update(
        devices={"cpu": {"dtypes": {"fp32": {"measurements": [
            {"matmul_gflops": 40.0, "sizes": [{"n": 256, "gflops": float("nan")}]}]}}}}),
     "calibration", "devices.cpu.dtypes.fp32.measurements[0].sizes[0].gflops is nan, not a "
                    "finite number"),
    ("infinity-in-calibration-samples", lambda d: d["calibration"]["samples_s"].append(
        float("inf")), "calibration", "samples_s[5] is inf, not a finite number"),
    ("huge-number-in-calibration", lambda d: d["calibration"].update(clock_resolution_s=1e300),
     "calibration", "clock_resolution_s is 1e+300, not a finite number within"),
]


def _duplicate(doc):
    doc["cases"].append(json.loads(json.dumps(doc["cases"][0])))
    if doc.get("cases_finished") is not None:
        doc["cases_finished"] += 1


# (id, damage to the file's text or document, the one-line message)
BAD_FILES = [
    ("duplicate-case-id", _duplicate, f"case {CASE} appears twice"),
    ("deeply-nested-field", lambda text: text.replace('"command": ', '"command": ' + "[" *
                                                      100_000 + "]" * 100_000 + ', "x": ', 1),
     "JSON nested too deeply"),
    ("integer-too-long", lambda text: text.replace('"schema_version": ',
                                                   '"schema_version": ' + "9" * 5000 + ", "
                                                   '"y": ', 1), "unreadable JSON"),
]


@pytest.fixture
def runs(tmp_path):
    """A good copy of the golden run and one to break."""
    for name in ("good", "bad"):
        shutil.copytree(FIXTURES / "run_a", tmp_path / name)
    # another run, not a copy (check refuses one run on both sides): own id, one sample off
    file = tmp_path / "bad" / "results.json"
    doc = json.loads(file.read_text())
    doc["run_id"] += "-other"
    doc["cases"][0]["stats"]["samples_s"][0] *= 1.0001
    file.write_text(json.dumps(doc))
    return tmp_path / "good", tmp_path / "bad"


def _commands(good: Path, bad: Path) -> dict[str, list]:
    return {"report": ["report", bad, "--no-figures"],
            "compare": ["compare", good, bad, "--out", good.parent / "cmp"],
            "check": ["check", "--baseline", good, "--current", bad]}


@pytest.mark.parametrize("command", ["report", "compare", "check"])
@pytest.mark.parametrize(("change", "row", "field"),
                         [pytest.param(*case[1:], id=case[0]) for case in BAD_VALUES])
def test_bad_value_exits_2_naming_file_row_and_field(rnnbench, runs, command, change, row,
                                                     field):
    good, bad = runs
    file = bad / "results.json"
    doc = json.loads(file.read_text())
    change(doc)
    file.write_text(json.dumps(doc))
    before = sorted(str(p) for p in good.parent.rglob("*"))
    code, out, err = rnnbench(*_commands(good, bad)[command])
    assert (code, out) == (2, "")
    assert err.startswith(f"rnnbench {command}: error: {file}: {row}: field ")
    assert field in err
    assert err.count("\n") == 1
    assert sorted(str(p) for p in good.parent.rglob("*")) == before


def test_the_golden_run_itself_is_accepted_by_all_three(rnnbench, runs):
    good, bad = runs
    for command, argv in _commands(good, bad).items():
        code, _, err = rnnbench(*argv)
        assert code == 0, (command, err)


@pytest.mark.parametrize("command", ["report", "compare", "check"])
@pytest.mark.parametrize(("damage", "message"), [pytest.param(*c[1:], id=c[0])
                                                 for c in BAD_FILES])
def test_hostile_file_exits_2_with_one_line(rnnbench, runs, command, damage, message):
    good, bad = runs
    file = bad / "results.json"
    text = file.read_text()
    if damage is _duplicate:
        doc = json.loads(text)
        damage(doc)
        file.write_text(json.dumps(doc))
    else:
        file.write_text(damage(text))
    code, out, err = rnnbench(*_commands(good, bad)[command])
    assert (code, out) == (2, "")
    assert err.startswith(f"rnnbench {command}: error: {file}: ")
    assert message in err
    assert err.count("\n") == 1
