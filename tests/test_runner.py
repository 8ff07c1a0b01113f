"""`rnnbench run` end to end on a tiny selection: results files, skip and error rows, Ctrl-C."""

from __future__ import annotations

import argparse
import json
import os

import pytest

from bench import cases
from bench.analysis.summary import busy_machine_warning
from bench.cli import main
from bench.errors import one_line
from bench.measure import calibration, case_run, memory, phases
from bench.measure.run import command as runner
from bench.results import RESULTS_CSV, RESULTS_JSON, load_run

# basic_rnn/dynamic runs everywhere; cudnn_lstm is GPU-only: 2 phases each = 4 cases.
TINY = ["--impl", "basic_rnn,cudnn_lstm", "--unroll", "dynamic", "--unroll", "fused",
        "--phase", "forward,train_step", "--rounds", "12", "--warmup", "1", "--warmup-time", "0"]


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def _has_gpu() -> bool:
    from bench.impls.devices import visible_gpus

    return bool(visible_gpus())


def _rows(run_dir) -> dict[str, dict]:
    return {row["id"]: row for row in load_run(run_dir)["cases"]}


@pytest.mark.tf
@pytest.mark.slow
def test_tiny_run_writes_valid_results(tmp_path, capsys):
    out = tmp_path / "run"
    assert main(["run", *TINY, "--out", str(out)]) == 0
    doc = load_run(out)  # validates against the schema
    rows = {row["id"]: row for row in doc["cases"]}
    assert len(rows) == 4
    assert doc["preset"] == "smoke"
    assert (doc["status"], doc["cases_planned"], doc["cases_finished"]) == ("complete", 4, 4)
    assert (out / RESULTS_JSON).stat().st_mode & 0o777 == 0o666 & ~_umask()
    assert doc["command"].startswith("rnnbench run --preset smoke --impl basic_rnn")
    assert doc["env"]["tensorflow"]
    assert doc["calibration"]["matmul_gflops"] > 0
    fp32 = doc["calibration"]["devices"]["cpu"]["dtypes"]["fp32"]
    assert [m["label"] for m in fp32["measurements"]] == ["start", "end"]
    assert all(len(size["samples_s"]) == calibration.ROUNDS
               for m in fp32["measurements"] for size in m["sizes"])
    assert fp32["peak_gflops"] >= fp32["matmul_gflops"] > 0
    assert "cpu_features" in doc["env"]

    ok = [r for r in rows.values() if r["case"]["impl"] == "basic_rnn"]
    assert {r["status"] for r in ok} == {"ok"}
    for row in ok:
        stats = row["stats"]
        assert stats["rounds"] == len(stats["samples_s"]) == 12
        assert stats["min_s"] <= stats["median_s"] <= max(stats["samples_s"])
        assert stats["median_lo_s"] <= stats["median_s"] <= stats["median_hi_s"]
        assert stats["compile_s"] > 0
        assert stats["flops"] > 0
        assert stats["gflops"] == pytest.approx(stats["flops"] / stats["median_s"] / 1e9)
        assert 0 < stats["pct_peak"] <= 100
        assert row["code_version"]
        assert row["kernel"] == "while(MatMul)"  # read from the traced graph
        assert row["memory_method"] == memory.CPU_METHOD or row["memory_peak_bytes"] is None
        assert row["memory_peak_bytes"] is None or row["memory_peak_bytes"] >= 0
    if all(r["memory_method"] == memory.CPU_METHOD for r in ok):
        # recorded for every case; whether a case this small grows the peak at all depends on
        # what the allocator already holds (tests/test_memory.py sees a real allocation grow it)
        assert all(isinstance(r["memory_peak_bytes"], int) for r in ok)
    train, fwd = (rows[f"basic_rnn/dynamic/cpu/b16-t10-i8-h32-l1/fp32/{p}"]
                  for p in ("train_step", "forward"))
    assert train["stats"]["flops"] == 3 * fwd["stats"]["flops"]

    cudnn = [r for r in rows.values() if r["case"]["impl"] == "cudnn_lstm"]
    if not _has_gpu():
        assert {r["status"] for r in cudnn} == {"skipped"}
        assert all("needs a GPU" in r["reason"] and r["stats"]["samples_s"] == []
                   for r in cudnn)
        assert all(r["kernel"] is None and r["memory_peak_bytes"] is None for r in cudnn)

    csv = (out / RESULTS_CSV).read_text().splitlines()
    assert len(csv) == 1 + 4
    assert json.loads((out / "env.json").read_text())["cpu_count"] >= 1

    captured = capsys.readouterr()
    assert "[4/4" in captured.err  # progress: case n/N
    assert "basic_rnn/dynamic" in captured.out  # the summary table
    assert "±95%" in captured.out  # with the interval of each median
    assert (out / "report.html").is_file()
    assert "skipped" in captured.out or _has_gpu()


@pytest.mark.tf
@pytest.mark.slow
def test_raising_case_is_an_error_row_and_the_run_continues(tmp_path, monkeypatch, capsys):
    def broken_forward(tf, layer, x, lengths=None):
        def fn():
            raise RuntimeError("no kernel for BrokenOp\nsecond line of detail")
        return fn

    monkeypatch.setitem(phases.BUILDERS, "forward", broken_forward)
    out = tmp_path / "run"
    assert main(["run", *TINY, "--out", str(out)]) == 1
    rows = _rows(out)
    error = rows["basic_rnn/dynamic/cpu/b16-t10-i8-h32-l1/fp32/forward"]
    assert error["status"] == "error"
    assert error["reason"] == "RuntimeError: no kernel for BrokenOp"
    assert error["stats"]["samples_s"] == []
    assert rows["basic_rnn/dynamic/cpu/b16-t10-i8-h32-l1/fp32/train_step"]["status"] == "ok"
    assert "1 case(s) errored" in capsys.readouterr().err


def test_existing_run_is_never_overwritten(tmp_path, capsys):
    out = tmp_path / "run"
    out.mkdir()
    (out / RESULTS_JSON).write_text("{\"precious\": true}")
    assert main(["run", "--impl", "basic_rnn", "--out", str(out)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1
    assert "already holds a run" in err[0]
    assert (out / RESULTS_JSON).read_text() == "{\"precious\": true}"


@pytest.mark.parametrize(("flags", "message"), [
    (["--preset", "huge"], "unknown preset 'huge'"),
    (["--impl", "lstmx"], "unknown implementation 'lstmx'"),
    (["--phase", "inference"], "unknown phase 'inference'"),
    (["-k", "no-such-case"], "no case of preset 'smoke' matches the filters: no case id"),
    (["--rounds", "0"], "argument --rounds: must be at least 1"),
])
def test_bad_input_is_one_line_exit_2(flags, message, tmp_path, capsys):
    assert main(["run", *flags, "--out", str(tmp_path / "run")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1
    assert message in err[0]
    assert not (tmp_path / "run").exists()


@pytest.mark.tf
def test_gpu_run_without_gpu_is_refused(tmp_path, capsys):
    if _has_gpu():
        pytest.skip("this machine has a GPU")
    assert main(["run", "--preset", "gpu", "--device", "gpu", "--out", str(tmp_path / "r")]) == 2
    assert "sees no GPU" in capsys.readouterr().err


def test_pytest_arguments_drive_the_step_time_suite():
    parser = argparse.ArgumentParser()
    runner.add_arguments(parser)
    args = parser.parse_args(["--impl", "gru,keras_gru", "-k", "static", "--max-time", "2",
                              "--warmup-time", "0.5", "--", "--benchmark-json=x.json"])
    argv = runner.pytest_arguments(args)
    assert argv[0] == str(runner.STEP_TIME_SUITE)
    assert runner.STEP_TIME_SUITE.is_file()
    assert argv[-1] == "--benchmark-json=x.json"
    tail = argv[argv.index("--preset"):]
    assert tail == ["--preset", "smoke", "--impl", "gru", "--impl", "keras_gru",
                    "--match", "static", "--max-time", "2.0", "--warmup-time", "0.5",
                    "--benchmark-json=x.json"]


def test_busy_machine_warning():
    assert busy_machine_warning({"cpu_count": 2, "loadavg": [1.9, 1, 1]}) is None
    assert busy_machine_warning({"cpu_count": 2, "loadavg": None}) is None
    busy = busy_machine_warning({"cpu_count": 2, "loadavg": [1.0, 1, 1],
                                        "loadavg_end": [5.3, 3, 1]})
    assert "load up to 5.3 on 2 cores" in busy


def test_one_line_reason_from_tf_function_errors():
    wrapped = RuntimeError("in user code:\n\n    File \"x.py\", line 3, in fn  *\n"
                           "        raise RuntimeError(...)\n\n    RuntimeError: no kernel\n")
    assert one_line(wrapped) == "RuntimeError: no kernel"
    assert one_line(ValueError("x" * 500)).endswith("…")
    assert len(one_line(ValueError("x" * 500))) == 300


@pytest.mark.tf
@pytest.mark.slow
def test_a_harness_failure_is_not_reported_as_success(tmp_path, monkeypatch, capsys):
    def broken_make_row(*args, **kwargs):
        raise RuntimeError("bug in the suite itself")

    monkeypatch.setattr(case_run, "make_row", broken_make_row)
    out = tmp_path / "run"
    assert main(["run", "--impl", "basic_rnn", "--unroll", "dynamic", "--phase", "forward",
                 "--rounds", "10", "--out", str(out)]) == 1
    assert "without a result row" in capsys.readouterr().err
    assert load_run(out)["cases"] == []


@pytest.mark.tf
@pytest.mark.slow
def test_non_equivalent_impl_is_not_timed(tmp_path, monkeypatch):
    """Equivalence before timing: an impl that disagrees with the reference gets error rows."""
    from bench.impls import equivalence

    real = equivalence.compare_with_reference

    def off(impl, unroll, shape, device="cpu", **kwargs):
        diff = real(impl, unroll, shape, device=device, **kwargs)
        return equivalence.Diff(diff.impl, diff.unroll, diff.shape, diff.outputs, 0.5,
                                diff.weight_grad, diff.worst_weight)

    monkeypatch.setattr(equivalence, "compare_with_reference", off)
    out = tmp_path / "run"
    assert main(["run", *TINY, "--out", str(out)]) == 1
    basic = [r for r in _rows(out).values() if r["case"]["impl"] == "basic_rnn"]
    assert {r["status"] for r in basic} == {"error"}
    assert all("not equivalent to the float64 reference" in r["reason"] for r in basic)
    assert all(r["stats"]["samples_s"] == [] for r in basic)
    # ... and --no-equivalence times them anyway.
    out2 = tmp_path / "run2"
    assert main(["run", *TINY, "--no-equivalence", "--out", str(out2)]) == 0


CODE_VERSION_PROBE = r"""
import json, sys
from pathlib import Path
import bench
from bench.cases import preset
from bench.measure import phases
root = Path(bench.__file__).parent
seen = {}
for case in preset("smoke"):
    if case.impl.startswith("cudnn_") or case.phase != "train_step":
        continue
    files = set()
    def profile(frame, event, arg):
        if event == "call":
            files.add(frame.f_code.co_filename)
    sys.setprofile(profile)
    step = phases.build_step(case)
    step.call()
    sys.setprofile(None)
    modules = {"bench." + ".".join(Path(f).relative_to(root).with_suffix("").parts)
               for f in files if f.startswith(str(root))}
    seen[case.id] = sorted(modules - set(phases.executed_modules(case)))
print(json.dumps(seen))
"""


@pytest.mark.tf
@pytest.mark.slow
def test_code_version_covers_every_module_a_case_executes():
    """Every bench module whose functions run while a case is built, traced and called is hashed
    into its code_version (traced with a profiler hook, not guessed)."""
    import subprocess
    import sys

    not_executed = {"bench.errors"}  # raises only; no timed work
    out = subprocess.run([sys.executable, "-c", CODE_VERSION_PROBE], capture_output=True,
                         text=True, check=True).stdout.strip().splitlines()[-1]
    seen = json.loads(out)
    assert len(seen) >= 8
    for case_id, extra in seen.items():
        assert set(extra) <= not_executed, f"{case_id}: {extra} run but not in code_version"


def test_code_version_changes_when_a_shared_module_changes(monkeypatch):
    case = cases.preset("smoke")[0]
    before = phases.code_version(case)
    real = phases._source_hash
    monkeypatch.setattr(phases, "_source_hash",
                        lambda m: "edited" if m == "bench.impls.weights" else real(m))
    after = phases.code_version(case)
    assert before.split("-")[0] == after.split("-")[0]  # the impl module did not change
    assert before != after
