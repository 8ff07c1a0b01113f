"""Every CPU-capable implementation × unroll mode matches the float64 reference (docs/design.md).

Outputs, the input gradient and every weight gradient, within 1e-5 absolute in float32, on a
single-layer and a two-layer bidirectional shape. The cuDNN implementations cannot run here:
their Keras layers and weight conversion are checked with use_cudnn=False.
"""

import pytest

from bench.impls.equivalence import TOLERANCE, VERIFY_SHAPES, compare_with_reference
from bench.registry import REGISTRY

pytestmark = pytest.mark.tf

CPU_PAIRS = [(s.name, u) for s in REGISTRY.values() if "cpu" in s.devices for u in s.unrolls]
GPU_ONLY = [s.name for s in REGISTRY.values() if s.gpu_only]


@pytest.mark.parametrize("shape", VERIFY_SHAPES, ids=lambda s: s.label)
@pytest.mark.parametrize(("impl", "unroll"), CPU_PAIRS, ids=[f"{i}-{u}" for i, u in CPU_PAIRS])
@pytest.mark.parametrize("tolerance", [TOLERANCE], ids=lambda t: f"atol{t:g}")
def test_matches_reference(impl, unroll, shape, tolerance):
    diff = compare_with_reference(impl, unroll, shape)
    assert diff.outputs <= tolerance, f"outputs differ by {diff.outputs:.2e}"
    assert diff.input_grad <= tolerance, f"input gradient differs by {diff.input_grad:.2e}"
    assert diff.weight_grad <= tolerance, (
        f"gradient of {diff.worst_weight} differs by {diff.weight_grad:.2e}")


@pytest.mark.parametrize("shape", VERIFY_SHAPES, ids=lambda s: s.label)
@pytest.mark.parametrize("impl", GPU_ONLY)
@pytest.mark.parametrize("tolerance", [TOLERANCE], ids=lambda t: f"atol{t:g}")
def test_cudnn_weight_conversion_without_cudnn(impl, shape, tolerance):
    from bench.impls.keras_rnn import build_without_cudnn

    diff = compare_with_reference(impl, "fused", shape, factory=build_without_cudnn)
    assert diff.max <= tolerance, diff


def test_a_wrong_weight_is_detected(monkeypatch):
    """The comparison can fail: corrupt one gate of the converted weights and it must."""
    from bench.impls import weights as weights_module

    real = weights_module.lstm_to_keras

    def off_by_gate(w, input_size):
        kernel, recurrent, bias = real(w, input_size)
        return kernel, recurrent, bias + 0.1

    monkeypatch.setattr("bench.impls.keras_rnn.lstm_to_keras", off_by_gate)
    diff = compare_with_reference("keras_lstm", "dynamic", VERIFY_SHAPES[0])
    assert diff.outputs > 1e-3
