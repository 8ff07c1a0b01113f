"""Kernel and peak memory in results rows, the report and compare (no TensorFlow)."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest

from bench.analysis import compare, report
from bench.cases import preset
from bench.errors import UserError
from bench.measure.case_run import make_row
from bench.results import RESULTS_CSV, empty_document, save_run
from bench.rows import CaseRow

FIXTURES = Path(__file__).parent / "fixtures"
PNG = b"\x89PNG\r\n\x1a\n"
CPU_METHOD = "cpu: peak RSS growth (test)"
MIB = 2 ** 20


def _forward_cases(n: int = 3):
    return [c for c in preset("smoke") if c.phase == "forward"
            and not c.impl.startswith("cudnn_")][:n]


def _ok_row(case, median: float, kernel: str | None, memory: int | None) -> dict:
    samples = [median * f for f in (0.98, 0.99, 1.0, 1.01, 1.02)]
    return _made(case, "ok", stats={"samples_s": samples, "median_s": median,
                                       "iqr_s": 0.02 * median, "rounds": 5},
                    code_version="v", kernel=kernel, memory_peak_bytes=memory,
                    memory_method=CPU_METHOD if memory is not None else None)


def _made(*args, **kwargs) -> dict:
    return make_row(*args, **kwargs).to_dict()


def _run(folder: Path, memories: list[int | None], kernels=None) -> Path:
    folder.mkdir()
    doc = empty_document(run_id=folder.name, env={"hostname": "h"}, command="t")
    kernels = kernels or ["while(MatMul)"] * len(memories)
    for case, mem, kernel in zip(_forward_cases(len(memories)), memories, kernels, strict=True):
        doc["cases"].append(_ok_row(case, 1e-3, kernel, mem))
    return save_run(folder, doc)


def test_new_rows_record_kernel_and_memory_even_when_none():
    case = _forward_cases(1)[0]
    skipped = make_row(case, "skipped", reason="no GPU").to_dict()
    assert {k: skipped[k] for k in ("kernel", "memory_peak_bytes", "memory_method")} == {
        "kernel": None, "memory_peak_bytes": None, "memory_method": None}
    ok = _ok_row(case, 1e-3, "BlockLSTM", 12 * MIB)
    row = CaseRow.from_dict(ok)
    assert (row.kernel, row.memory_peak_bytes, row.memory_method) == (
        "BlockLSTM", 12 * MIB, CPU_METHOD)
    assert row.to_dict() == ok


def test_older_rows_without_the_keys_load_as_not_recorded_and_round_trip():
    from bench.results import upgrade

    doc = upgrade(json.loads((FIXTURES / "run_a" / "results.json").read_text()))
    raw = doc["cases"][0]
    assert "kernel" not in raw
    row = CaseRow.from_dict(raw)
    assert (row.kernel, row.memory_peak_bytes, row.memory_method) == (None, None, None)
    assert row.to_dict() == raw  # no keys added to an older row
    assert CaseRow.from_dict({**raw, "memory_peak_bytes": 2.0e9}).memory_peak_bytes == 2_000_000_000


def test_negative_memory_is_refused_in_one_line():
    case = _forward_cases(1)[0]
    with pytest.raises(UserError, match=r"field memory_peak_bytes is -5, outside"):
        make_row(case, "ok", stats={"samples_s": [1e-3]}, memory_peak_bytes=-5)


def test_csv_has_the_new_columns(tmp_path):
    run = _run(tmp_path / "r", [5 * MIB, None, 0])
    header = (run / RESULTS_CSV).read_text().splitlines()[0].split(",")
    assert header[-3:] == ["kernel", "memory_peak_bytes", "memory_method"]


def test_report_shows_kernel_memory_and_the_memory_figure(tmp_path):
    run = _run(tmp_path / "r", [int(12.3 * MIB), None, 0],
               kernels=["unrolled MatMul×20", "while(MatMul)", "BlockLSTM"])
    text = report.write_report(run).read_text(encoding="utf-8")
    assert ("| impl | unroll | kernel | median (ms) ±95 % | IQR (ms) | rounds | GFLOP/s | "
            "% of peak | peak memory | × fastest | speed-up vs slowest |") in text
    table = [line.split(" | ") for line in text.splitlines()
             if line.startswith("| ") and line.count(" | ") == 10]
    cells = {(row[0][2:], row[1]): row for row in table}
    assert cells["basic_lstm", "static"][2] == "unrolled MatMul×20"
    assert cells["basic_lstm", "static"][8] == "12.3 MiB"
    assert cells["basic_lstm", "dynamic"][2:9:6] == ["while(MatMul)", "–"]
    assert cells["lstm_block", "static"][2:9:6] == ["BlockLSTM", "0 B"]
    assert f"`peak memory`: {CPU_METHOD}." in text
    assert "`kernel`: the op that did the recurrent math" in text
    figures = sorted(p.name for p in (run / "figures").iterdir())
    assert "memory.png" in figures
    assert (run / "figures" / "memory.png").read_bytes()[:8] == PNG
    assert "![Peak memory per case" in text


def test_report_of_an_older_run_says_memory_was_not_recorded(tmp_path):
    run = _run(tmp_path / "r", [None, None], kernels=[None, None])
    text = report.write_report(run).read_text(encoding="utf-8")
    assert "`peak memory`: not recorded by this run." in text
    assert not any(p.name.startswith("memory") for p in (run / "figures").iterdir())


def _compare(*paths):
    from bench.analysis.document import to_markdown

    sets = compare.load_sets([str(p) for p in paths])
    parts, frame = compare.build(sets, diffs={}, figure=False)
    return frame, to_markdown(parts)


def test_compare_shows_memory_of_both_runs_and_the_ratio(tmp_path):
    a = _run(tmp_path / "a", [10 * MIB, 4 * MIB, None])
    b = _run(tmp_path / "b", [15 * MIB, 2 * MIB, 3 * MIB])
    frame, text = _compare(a, b)
    assert {"mem A", "mem B", "mem B/A"} <= set(frame.columns)
    body = frame.iloc[:-1].set_index("case").loc[[c.id for c in _forward_cases()]]
    assert list(body["mem A"][:2]) == [10 * MIB, 4 * MIB]
    assert math.isnan(body["mem A"].iloc[2])
    assert list(body["mem B/A"][:2]) == [pytest.approx(1.5), pytest.approx(0.5)]
    assert math.isnan(body["mem B/A"].iloc[2])  # not recorded in A: no ratio
    assert frame.iloc[-1]["mem B/A"] == pytest.approx(math.sqrt(1.5 * 0.5))
    assert "| mem A | mem B | mem B/A | fastest |" in text
    assert "| 10.0 MiB | 15.0 MiB | 1.50× |" in text


def test_compare_of_runs_without_memory_has_no_memory_columns():
    frame, text = _compare(FIXTURES / "run_a", FIXTURES / "run_a")
    assert not any(c.startswith("mem ") for c in frame.columns)
    assert "| mem " not in text
