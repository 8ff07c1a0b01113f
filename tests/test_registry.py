"""The registry, its errors, and the `list` / `verify` commands' handling of bad input."""

import json
import subprocess
import sys

import pytest

from bench.errors import UserError
from bench.impls.base import LayerConfig, build_layer
from bench.registry import REGISTRY, check_unroll, get_spec

CORE_IMPLS = {"basic_lstm", "lstm_block", "lstm_block_fused", "cudnn_lstm", "cudnn_gru",
              "basic_rnn", "gru", "gru_block", "keras_lstm", "keras_gru"}
EXPECTED = CORE_IMPLS | {"keras_lstm_auto", "keras_lstm_rdrop"}  # the Keras option variants


def test_registry_holds_every_design_implementation():
    from bench.registry import CORE

    assert set(REGISTRY) == EXPECTED
    assert set(CORE) == CORE_IMPLS
    for spec in REGISTRY.values():
        assert spec.unrolls in (("static", "dynamic"), ("fused",), ("dynamic",)), spec.name
        assert set(spec.devices) <= {"cpu", "gpu"}
        assert callable(spec.load_factory())


def test_per_step_cells_have_static_and_dynamic_fused_ones_only_fused():
    per_step = {n for n, s in REGISTRY.items() if "static" in s.unrolls}
    assert per_step == {"basic_lstm", "lstm_block", "basic_rnn", "gru", "gru_block",
                        "keras_lstm", "keras_gru"}
    assert {n for n, s in REGISTRY.items() if s.gpu_only} == {"cudnn_lstm", "cudnn_gru"}


def test_unknown_impl_lists_valid_names():
    with pytest.raises(UserError, match=r"unknown implementation 'lstmm'.*basic_lstm"):
        get_spec("lstmm")


def test_fused_rejects_static():
    with pytest.raises(UserError, match=r"lstm_block_fused does not support unroll='static'"):
        check_unroll(get_spec("lstm_block_fused"), "static")
    with pytest.raises(UserError, match="unknown unroll mode 'sideways'"):
        check_unroll(get_spec("gru"), "sideways")


def test_build_layer_rejects_static_fused_before_tensorflow_work():
    with pytest.raises(UserError, match="does not support"):
        build_layer(LayerConfig("cudnn_gru", "static", 3, 4))


def _run(*args):
    return subprocess.run([sys.executable, "-m", "bench", *args], capture_output=True,
                          text=True, timeout=300, check=False)


def _in_process(capsys, *args):
    """`rnnbench ARGS` in this process (TensorFlow is loaded once per test process):
    (exit code, stdout, stderr). The fresh-process start-up is guarded in test_bad_input_run."""
    from bench.cli import main

    code = main(list(args))
    out = capsys.readouterr()
    return code, out.out, out.err


def test_list_json_without_tensorflow_import():
    code = ("import sys, json, io, contextlib; from bench.cli import main; buf = io.StringIO()\n"
            "with contextlib.redirect_stdout(buf): rc = main(['list', '--json'])\n"
            "rows = json.loads(buf.getvalue())\n"
            "print(json.dumps({'rc': rc, 'tf': 'tensorflow' in sys.modules, 'rows': rows}))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         timeout=120, check=True)
    result = json.loads(out.stdout)
    assert result["rc"] == 0
    assert result["tf"] is False
    by_name = {r["impl"]: r for r in result["rows"]}
    assert set(by_name) == EXPECTED
    assert by_name["lstm_block"]["runnable_here"] is True
    cudnn = by_name["cudnn_lstm"]
    if not cudnn["runnable_here"]:
        assert "needs a GPU" in cudnn["reason"]


def test_verify_unknown_impl_is_one_line_exit_2():
    proc = _run("verify", "--impl", "nope")
    assert proc.returncode == 2
    assert proc.stderr.strip().splitlines() == [
        f"rnnbench verify: error: unknown implementation 'nope'; valid: {', '.join(REGISTRY)}"]


@pytest.mark.tf
def test_verify_gpu_without_gpu_is_one_line_exit_2(capsys):
    from bench.impls.devices import visible_gpus

    if visible_gpus():
        pytest.skip("this machine has a GPU")
    code, _, err = _in_process(capsys, "verify", "--device", "gpu", "--impl", "gru")
    assert code == 2
    last = err.strip().splitlines()[-1]
    assert last.startswith("rnnbench verify: error: --device gpu: TensorFlow sees no GPU")
    assert "Traceback" not in err


@pytest.mark.tf
def test_verify_runs_and_prints_the_table(capsys):
    code, out, err = _in_process(capsys, "verify", "--impl", "gru_block", "lstm_block_fused")
    assert code == 0, err
    rows = [line for line in out.splitlines() if line.startswith(("gru_block", "lstm_"))]
    assert len(rows) == 6  # gru_block static/dynamic + fused, × 2 shapes
    assert all(line.rstrip().endswith("pass") for line in rows)
    assert "6/6 passed" in out


@pytest.mark.tf
def test_verify_fails_on_a_broken_impl(capsys):
    """verify's exit code follows the check: a tolerance nobody can meet fails it."""
    code, out, _ = _in_process(capsys, "verify", "--impl", "basic_rnn", "--tolerance", "1e-12")
    assert code == 1
    assert "FAIL" in out
