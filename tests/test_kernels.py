"""Which kernel ran: the classifier on hand-made op lists, the graph walk on fakes and on real
traced steps of every CPU implementation, and the cuDNN promise (broken on purpose on CPU)."""

from __future__ import annotations

import dataclasses
import re
from collections import Counter
from types import SimpleNamespace

import pytest

from bench import registry
from bench.analysis.kernels import classify_kernel, kernel_problem
from bench.impls.kernels import graph_op_types
from bench.measure.kernel import KernelPromiseError, check_promise

# ---------------------------------------------------------------- classifier (no TensorFlow)


@pytest.mark.parametrize(("ops", "kernel"), [
    ({"CudnnRNNV3": 1, "CudnnRNNBackpropV3": 1, "MatMul": 3, "While": 0}, "CudnnRNNV3"),
    ({"CudnnRNN": 2}, "CudnnRNN"),
    ({"BlockLSTM": 1, "BlockLSTMGrad": 1, "MatMul": 2}, "BlockLSTM"),
    ({"BlockLSTM": 2, "CudnnRNNV3": 1}, "CudnnRNNV3+BlockLSTM"),
    ({"While": 2, "LSTMBlockCell": 2, "LSTMBlockCellGrad": 1, "MatMul": 4},
     "while(LSTMBlockCell)"),
    ({"StatelessWhile": 1, "GRUBlockCell": 1}, "while(GRUBlockCell)"),
    ({"While": 1, "MatMul": 2, "Sigmoid": 3}, "while(MatMul)"),
    ({"While": 1, "MatMul": 2, "BatchMatMulV2": 1}, "while(MatMul+BatchMatMulV2)"),
    ({"NextIteration": 3, "MatMul": 2}, "while(MatMul)"),
    ({"LSTMBlockCell": 28, "LSTMBlockCellGrad": 28, "MatMul": 56}, "unrolled LSTMBlockCell×28"),
    ({"MatMul": 240, "Tanh": 80}, "unrolled MatMul×240"),
    ({"Einsum": 10}, "unrolled Einsum×10"),
    ({"Add": 3, "While": 1}, "unknown"),
    ({}, "unknown"),
])
def test_classify_kernel_from_op_counts(ops, kernel):
    assert classify_kernel(Counter(ops)) == kernel


def test_kernel_promise_kept_broken_or_absent():
    assert kernel_problem(None, "while(MatMul)") is None
    assert kernel_problem("CudnnRNN", "CudnnRNNV3") is None
    assert kernel_problem("CudnnRNN", "BlockLSTM+CudnnRNN") is None
    assert kernel_problem("CudnnRNN", "while(MatMul)") == "promised cuDNN but ran while(MatMul)"
    assert kernel_problem("CudnnRNN", "unrolled MatMul×80") == (
        "promised cuDNN but ran unrolled MatMul×80")
    assert kernel_problem("CudnnRNN", None) == "promised cuDNN but ran unknown"
    assert kernel_problem("BlockLSTM", "while(LSTMBlockCell)") == (
        "promised BlockLSTM but ran while(LSTMBlockCell)")


def test_the_cudnn_impls_promise_cudnn_and_no_other_does():
    promised = {name: spec.kernel_promise for name, spec in registry.REGISTRY.items()
                if spec.kernel_promise is not None}
    assert promised == {"cudnn_lstm": "CudnnRNN", "cudnn_gru": "CudnnRNN"}


def test_check_promise_uses_the_registry():
    check_promise("cudnn_gru", "CudnnRNNV3")
    check_promise("keras_lstm", "while(MatMul)")
    with pytest.raises(KernelPromiseError, match=r"^promised cuDNN but ran while\(MatMul\)$"):
        check_promise("cudnn_lstm", "while(MatMul)")


def _node(op: str):
    return SimpleNamespace(op=op)


def test_graph_walk_counts_the_function_library_too():
    """While bodies, gradients and nested functions live in the library, not in the nodes."""
    body = SimpleNamespace(node_def=[_node("MatMul"), _node("MatMul"), _node("Sigmoid")])
    grad = SimpleNamespace(node_def=[_node("MatMul"), _node("LSTMBlockCellGrad")])
    graph_def = SimpleNamespace(node=[_node("While"), _node("Sum"), _node("While")],
                                library=SimpleNamespace(function=[body, grad]))
    counts = graph_op_types(graph_def)
    assert counts == Counter({"While": 2, "Sum": 1, "MatMul": 3, "Sigmoid": 1,
                              "LSTMBlockCellGrad": 1})
    assert classify_kernel(counts) == "while(MatMul)"


# ---------------------------------------------------------------- real traced steps (CPU)


def _expected(impl: str, unroll: str, seq_len: int) -> str:
    """The kernel class each CPU implementation must show (a regex)."""
    if impl == "lstm_block_fused":
        return r"BlockLSTM"
    cell = {"lstm_block": "LSTMBlockCell", "gru_block": "GRUBlockCell"}.get(impl)
    if unroll == "dynamic":
        return re.escape(f"while({cell or 'MatMul'})")
    if cell:  # one cell op per step: 1 layer, 1 direction
        return re.escape(f"unrolled {cell}×{seq_len}")
    return r"unrolled MatMul×(\d+)"


def _cpu_smoke_cases(phase: str):
    from bench.cases import preset

    return [c for c in preset("smoke") if c.phase == phase and c.device == "cpu"
            and not c.impl.startswith("cudnn_")]


@pytest.mark.tf
@pytest.mark.slow
@pytest.mark.parametrize("case", _cpu_smoke_cases("forward") + [
    c for c in _cpu_smoke_cases("train_step")
    if (c.impl, c.unroll) in {("keras_lstm", "dynamic"), ("keras_lstm", "static"),
                              ("lstm_block", "dynamic"), ("lstm_block_fused", "fused"),
                              ("gru_block", "static"), ("basic_lstm", "dynamic")}],
    ids=lambda c: c.id)
def test_kernel_read_from_the_traced_step(case):
    from bench.measure import phases
    from bench.measure.kernel import step_kernel

    step = phases.build_step(case)
    step.call()
    kernel = step_kernel(step)
    match = re.fullmatch(_expected(case.impl, case.unroll, case.shape.seq_len), kernel)
    assert match, f"{case.id}: kernel {kernel!r}"
    if match.groups():  # static matmul cells: at least one matmul per time step
        assert int(match.group(1)) >= case.shape.seq_len
    check_promise(case.impl, kernel)  # no CPU impl promises anything


@pytest.mark.tf
@pytest.mark.slow
def test_keras_auto_shows_whether_cudnn_ran():
    """Keras `use_cudnn="auto"` picks cuDNN or its generic loop when tracing: the kernel says
    which (the generic loop on a machine without a GPU, CudnnRNN* on one)."""
    import tensorflow as tf

    from bench.impls.base import LayerConfig, build_layer
    from bench.impls.devices import tf_device_name, visible_gpus
    from bench.impls.keras_rnn import KerasLayer
    from bench.impls.kernels import traced_op_types

    device = "gpu" if visible_gpus() else "cpu"
    layer = build_layer(LayerConfig("keras_lstm", "dynamic", 8, 16), device=device,
                        factory=lambda config, _: KerasLayer(config, use_cudnn="auto"))
    with tf.device(tf_device_name(device)):
        x = tf.Variable(tf.random.stateless_normal([4, 6, 8], seed=[0, 1]))
    fn = tf.function(lambda: tf.reduce_sum(layer(x)))
    fn()
    kernel = classify_kernel(traced_op_types(fn))
    if device == "gpu":
        assert kernel.startswith("CudnnRNN"), kernel
    else:
        assert kernel == "while(MatMul)"


@pytest.mark.tf
@pytest.mark.slow
def test_broken_promise_is_an_error_row(tmp_path, monkeypatch):
    """A CPU implementation made to promise cuDNN runs while(MatMul): error row, run exits 1."""
    from bench.cli import main
    from bench.results import load_run

    spec = dataclasses.replace(registry.REGISTRY["keras_lstm"], kernel_promise="CudnnRNN")
    monkeypatch.setitem(registry.REGISTRY, "keras_lstm", spec)
    out = tmp_path / "run"
    assert main(["run", "--impl", "keras_lstm,basic_rnn", "--unroll", "dynamic", "--phase",
                 "forward", "--rounds", "10", "--warmup", "0", "--no-equivalence",
                 "--out", str(out)]) == 1
    rows = {r["case"]["impl"]: r for r in load_run(out)["cases"]}
    broken = rows["keras_lstm"]
    assert broken["status"] == "error"
    assert broken["reason"] == "KernelPromiseError: promised cuDNN but ran while(MatMul)"
    assert broken["kernel"] == "while(MatMul)"
    assert broken["stats"]["samples_s"] == []
    assert rows["basic_rnn"]["status"] == "ok"
    assert rows["basic_rnn"]["kernel"] == "while(MatMul)"
