"""rnnbench report: report.md sections, figures, defensive TTA handling, bad input."""

from __future__ import annotations

import json
import math
import shutil
from dataclasses import replace
from pathlib import Path

import pytest

from bench import roofline
from bench.analysis import plots, report
from bench.cases import preset
from bench.results import empty_document, read_run, save_run

FIXTURES = Path(__file__).parent / "fixtures"
PNG = b"\x89PNG\r\n\x1a\n"


@pytest.fixture
def run_a(tmp_path):
    """A copy of the golden smoke run (skips, an error, warnings, two TTA runs)."""
    shutil.copytree(FIXTURES / "run_a", tmp_path / "run_a")
    return tmp_path / "run_a"


def _row(case, median: float) -> dict:
    samples = [median * f for f in (0.98, 0.99, 1.0, 1.01, 1.02)]
    return {"id": case.id, "case": case.params(), "status": "ok", "reason": None,
            "stats": {"samples_s": samples, "median_s": median, "iqr_s": 0.02 * median,
                      "rounds": 5, "gflops": case.flops() / median / 1e9, "pct_peak": None}}


def test_report_of_a_smoke_run(rnnbench, run_a):
    code, out, err = rnnbench("report", run_a)
    assert (code, err) == (0, "")
    assert out.strip() == str(run_a / "report.md")
    text = (run_a / "report.md").read_text(encoding="utf-8")
    for heading in ("## Environment", "## Step time", "### forward · cpu · b16-t10-i8-h32-l1 · "
                    "fp32", "### train_step", "## Skipped cases (6)", "## Errors (1)",
                    "## Measurement warnings", "## Time to accuracy", "## Figures"):
        assert heading in text
    assert "| cudnn_lstm/fused/cpu/b16-t10-i8-h32-l1/fp32/forward | cudnn_lstm needs a GPU" in text
    assert "| gru_block/static/cpu/b16-t10-i8-h32-l1/fp32/train_step | ResourceExhausted" in text
    assert "| impl | unroll | kernel | median (ms) ±95 % | IQR (ms) | rounds | GFLOP/s | " \
           "% of peak | peak memory | × fastest | speed-up vs slowest |" in text
    assert "| cudnn_gru | fused | – | skipped |" in text  # skipped rows stay in the phase table
    assert "| cpu_model | Intel(R) Xeon(R) CPU @ 2.20GHz |" in text
    assert "calibrated matmul peak: 40.0 GFLOP/s" in text
    linked = [line.split("](figures/")[1].rstrip(")") for line in text.splitlines()
              if line.startswith("![")]
    written = sorted(p.name for p in (run_a / "figures").iterdir())
    assert sorted(linked) == written
    assert any(n.startswith("step_time") for n in written)
    assert any(n.startswith("static_vs_dynamic") for n in written)
    assert any(n.startswith("pct_peak") for n in written)
    assert "tta.png" in written
    for name in written:
        assert (run_a / "figures" / name).read_bytes()[:8] == PNG


def test_speedups_in_step_table():
    frame = report.case_table(read_run(FIXTURES / "run_a"))
    group = frame[(frame["phase"] == "forward") & (frame["num_layers"] == 1)]
    table = report.step_time_frame(group)
    ran = table.dropna(subset=["× fastest"])
    assert ran["× fastest"].iloc[0] == pytest.approx(1.0)
    assert ran["speed-up vs slowest"].iloc[-1] == pytest.approx(1.0)
    assert ran["× fastest"].is_monotonic_increasing
    assert len(table) == len(group)  # skipped rows are kept


def test_scaling_run_gets_log_log_curves(tmp_path):
    doc = empty_document(run_id="scaling", env={"hostname": "h"}, command="t",
                         preset="scaling")
    for case in preset("scaling"):
        if case.device == "cpu" and case.impl != "cudnn_lstm":
            doc["cases"].append(_row(case, 1e-9 * case.forward_flops()))
    save_run(tmp_path, doc)
    sweeps = plots.find_sweeps(report.case_table(read_run(tmp_path)))
    assert sorted(s["param"] for s in sweeps) == ["batch", "hidden_size", "seq_len"]
    report.write_report(tmp_path)
    text = (tmp_path / "report.md").read_text(encoding="utf-8")
    assert "figures/scaling.png" in text
    assert (tmp_path / "figures" / "scaling.png").read_bytes()[:8] == PNG


def test_full_and_ragged_cases_never_share_a_sweep(tmp_path):
    doc = empty_document(run_id="scaling-ragged", env={"hostname": "h"}, command="t")
    for case in preset("scaling"):
        if case.device == "cpu" and case.impl == "keras_lstm":
            for lengths in ("full", "ragged"):
                doc["cases"].append(_row(replace(case, lengths=lengths), 1e-3))
    save_run(tmp_path, doc)
    sweeps = plots.find_sweeps(report.case_table(read_run(tmp_path)))
    assert len(sweeps) == 6  # three swept fields, each once per kind of lengths
    assert all(s["rows"]["lengths"].nunique() == 1 for s in sweeps)
    assert sorted(s["base"]["lengths"] for s in sweeps) == ["full"] * 3 + ["ragged"] * 3
    titles = [plots._base_label(s) for s in sweeps]
    assert len(set(titles)) == 6  # each panel says which it is
    assert sum(title.endswith(", lengths ragged") for title in titles) == 3


def test_tta_rows_with_missing_keys_do_not_break_the_report(tmp_path):
    doc = empty_document(run_id="tta", env={}, command="rnnbench tta")
    doc["tta"] = [
        {"id": "a", "status": "error", "reason": "OOM"},
        {"id": "b", "status": "ok", "settings": {"task": "row", "impl": "keras_lstm"},
         "stats": {"reached": False, "curve": [{"wall_s": 1.0, "heldout_acc": 0.5},
                                                {"step": 3}]}},
        {"id": "c", "status": "ok", "settings": {}, "stats": {"curve": []}},
    ]
    save_run(tmp_path, doc)
    path = report.write_report(tmp_path)
    text = path.read_text(encoding="utf-8")
    assert "## Time to accuracy" in text
    assert "| OOM |" in text
    assert (tmp_path / "figures" / "tta.png").exists()


def test_empty_run_and_no_figures(tmp_path):
    save_run(tmp_path, empty_document(run_id="empty", env={}, command="t"))
    report.write_report(tmp_path, figures=False)
    assert "0 ok, 0 skipped, 0 error" in (tmp_path / "report.md").read_text(encoding="utf-8")
    assert not (tmp_path / "figures").exists()


def test_markdown_table_escapes_and_aligns():
    import pandas as pd

    text = report.markdown_table(pd.DataFrame({"a": ["x|y", None], "n": [1.23456, float("nan")]}))
    assert text.splitlines() == ["| a | n |", "|---|---:|", "| x\\|y | 1.23 |", "| – | – |"]


def _break(run: Path, how: str) -> None:
    file = run / "results.json"
    doc = json.loads(file.read_text())
    if how == "half":
        file.write_text(file.read_text()[: len(file.read_text()) // 2])
    elif how == "foreign":
        file.write_text(json.dumps([1, 2, 3]))
    elif how == "newer":
        doc["schema_version"] = 5
        file.write_text(json.dumps(doc))


@pytest.mark.parametrize(("how", "message"), [
    ("half", "malformed JSON"), ("foreign", "not an rnnbench results file"),
    ("newer", "schema_version 5 is newer"),
])
def test_bad_input_exits_2_and_writes_nothing(rnnbench, run_a, how, message):
    _break(run_a, how)
    code, out, err = rnnbench("report", run_a)
    assert code == 2
    assert out == ""
    assert err.startswith("rnnbench report: error: ")
    assert message in err
    assert err.count("\n") == 1
    assert sorted(p.name for p in run_a.iterdir()) == ["results.json"]


def test_nonexistent_dir_exits_2(rnnbench, tmp_path):
    code, _, err = rnnbench("report", tmp_path / "nope")
    assert code == 2
    assert "no such results file" in err
    assert not (tmp_path / "nope").exists()


def test_each_piece_of_advice_is_printed_once(tmp_path):
    advice = "close other programs, or raise the rounds (--rounds / --max-time)"
    case = preset("smoke")[0]
    row = _row(case, 1e-3)
    row["stats"]["warnings"] = [f"unstable: std dev is 30 % of the mean; {advice}",
                                f"2 of 5 rounds are far outliers; {advice}",
                                "the timed call is under 100 ticks of the clock"]
    other = _row(preset("smoke")[1], 1e-3)
    other["stats"]["warnings"] = [f"median known to ±9% only; {advice}"]
    doc = empty_document(run_id="warned", env={}, command="t")
    doc["cases"] += [row, other]
    save_run(tmp_path, doc)
    text = report.write_report(tmp_path, figures=False).read_text(encoding="utf-8")
    line = next(ln for ln in text.splitlines() if ln.startswith(f"| {case.id} | unstable"))
    assert "far outliers" in line
    assert "ticks of the clock" in line
    assert text.count(advice) == 1  # once for the whole report, under the table
    assert f"- {advice}" in text


def test_drift_in_most_cases_is_one_machine_line_above_the_advice(tmp_path):
    from bench.analysis import stability

    doc = empty_document(run_id="wander", env={}, command="t")
    for i, case in enumerate(preset("smoke")[:6]):
        row = _row(case, 1e-3)
        ramp = [1e-3 * (1 + (0.3 if i % 2 else 0.02) * k / 30) for k in range(30)]
        row["stats"].update(samples_s=ramp, rounds=30, warnings=stability.warnings(ramp))
        doc["cases"].append(row)
    save_run(tmp_path, doc)
    text = report.write_report(tmp_path, figures=False).read_text(encoding="utf-8")
    section = text.split("## Measurement warnings")[1]
    assert section.count("**machine: 3 of 6 timed cases drifted within their rounds") == 1
    assert section.index("**machine:") < section.index("What to do:")
    assert stability.ADVICE_DRIFT not in text


def test_partial_run_says_so_in_its_first_lines(tmp_path):
    doc = empty_document(run_id="cut", env={}, command="t")
    doc["cases"].append(_row(preset("smoke")[0], 1e-3))
    doc.update(status="partial", cases_planned=51, cases_finished=1)
    save_run(tmp_path, doc)
    lines = report.write_report(tmp_path, figures=False).read_text(encoding="utf-8").splitlines()
    assert lines[2].startswith("**PARTIAL RUN**: 1 of 51 cases finished.")


def test_complete_and_old_runs_show_no_partial_banner(run_a):
    report.write_report(run_a, figures=False)
    text = (run_a / "report.md").read_text(encoding="utf-8")
    assert "PARTIAL" not in text
    assert "docs/design.md" in text
    assert "DESIGN" not in text


def _measurement(label: str, gflops: float | None, error: str | None = None,
                 n: int = 2048) -> dict:
    size = ({"n": n, "samples_s": [2 * n ** 3 / gflops / 1e9] * 3, "matmul_gflops": gflops}
            if gflops else {"n": 256, "error": error})
    return {"label": label, "utc": "2026-11-22T15:00:00Z", "elapsed_s": 0.0, "cases_done": 0,
            "matmul_gflops": gflops, "matmul_n": n if gflops else None, "error": error,
            "sizes": [size]}


def _at_rate(case, gflops: float, stored_pct: float | None) -> dict:
    row = _row(case, case.flops() / (gflops * 1e9))
    row["stats"]["pct_peak"] = stored_pct
    return row


def test_report_shows_the_roofline_per_dtype_its_drift_and_a_raised_peak(tmp_path):
    calib: dict = {}
    for label, rate in (("start", 200.0), ("after 30 cases", 240.0), ("end", 180.0)):
        roofline.record_measurement(calib, "cpu", "fp32", _measurement(label, rate))
    roofline.record_measurement(calib, "cpu", "bf16", _measurement(
        "start", None, "InvalidArgumentError: no bf16 MatMul"))
    env = {"cpu_model": "EPYC", "cpu_features": ["avx", "avx2", "fma"], "onednn": "on (default)"}
    doc = empty_document(run_id="roof", env=env, command="t", calibration=calib)
    slow, fast = preset("smoke")[:2]
    bf16 = replace(slow, dtype="bf16")
    # Stored percentages as a run against a stale peak would have written them.
    doc["cases"] = [_at_rate(slow, 120.0, 50.0), _at_rate(fast, 300.0, 125.0),
                    _at_rate(bf16, 50.0, 20.0)]
    save_run(tmp_path, doc)
    text = report.write_report(tmp_path, figures=False).read_text(encoding="utf-8")
    assert ("- calibrated matmul peak: 240 GFLOP/s (cpu fp32, raised to 300 by the best case); "
            "cpu bf16: none (InvalidArgumentError: no bf16 MatMul)") in text
    assert "## Roofline" in text
    assert "| cpu | fp32 | 300 | 240 | 300 | 2048 | 3 | 25.0% | peak raised to the best " \
           f"case's rate: calibration under-read ({fast.id}) |" in text
    assert "no % of peak: InvalidArgumentError: no bf16 MatMul |" in text
    assert "Calibrations over the run:" in text
    assert "| cpu | fp32 | after 30 cases | 2026-11-22T15:00:00Z | 240 | 2048 |" in text
    assert "| cpu_features | avx avx2 fma |" in text
    assert "| onednn | on (default) |" in text
    pct = report.case_table(read_run(tmp_path)).set_index("id")["pct_peak"]
    assert pct[fast.id] == pytest.approx(100.0)
    assert pct[slow.id] == pytest.approx(40.0)
    assert math.isnan(pct[bf16.id])


def test_an_old_run_over_100_percent_is_reported_at_most_100(run_a):
    file = run_a / "results.json"
    doc = json.loads(file.read_text())
    doc["calibration"]["matmul_gflops"] = 0.01  # the calibration under-read
    for row in doc["cases"]:
        if row["status"] == "ok":
            row["stats"]["pct_peak"] = 100 * row["stats"]["gflops"] / 0.01
    file.write_text(json.dumps(doc))
    text = report.write_report(run_a, figures=False).read_text(encoding="utf-8")
    assert "peak raised to the best case's rate: calibration under-read" in text
    assert "(cpu fp32, raised to" in text
    pct = report.case_table(read_run(run_a))["pct_peak"].dropna()
    assert pct.max() == pytest.approx(100.0)
    assert (pct > 0).all()
