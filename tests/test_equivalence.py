"""Every CPU-capable implementation × unroll mode matches the float64 reference (docs/design.md).

Outputs, the input gradient and every weight gradient, within 1e-5 absolute in float32, on a
single-layer and a two-layer bidirectional shape. The cuDNN implementations cannot run here:
their Keras layers and weight conversion are checked with use_cudnn=False.
"""

import pytest

from bench.impls.equivalence import TOLERANCE, TOLERANCES, VERIFY_SHAPES, compare_with_reference
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


LOW_PRECISION = [(s.name, u, dtype) for s in REGISTRY.values() if "cpu" in s.devices
                 for u in s.unrolls for dtype in ("bf16", "fp16") if not s.limitation(dtype)]
RAGGED = [(s.name, u) for s in REGISTRY.values() if "cpu" in s.devices and
          not s.limitation("ragged") for u in s.unrolls]


@pytest.mark.parametrize("shape", VERIFY_SHAPES, ids=lambda s: s.label)
@pytest.mark.parametrize(("impl", "unroll", "dtype"), LOW_PRECISION,
                         ids=[f"{i}-{u}-{d}" for i, u, d in LOW_PRECISION])
def test_mixed_precision_matches_reference_at_its_tolerance(impl, unroll, dtype, shape):
    diff = compare_with_reference(impl, unroll, shape, dtype=dtype)
    assert diff.max <= TOLERANCES[dtype], diff
    # It really ran in low precision: far from fp32 agreement, within a few roundoff units.
    assert diff.max > TOLERANCE, f"{dtype} agrees like fp32 ({diff.max:.1e}): not low precision"


@pytest.mark.parametrize("shape", VERIFY_SHAPES, ids=lambda s: s.label)
@pytest.mark.parametrize(("impl", "unroll"), RAGGED, ids=[f"{i}-{u}" for i, u in RAGGED])
def test_ragged_batches_match_the_reference_on_valid_positions(impl, unroll, shape):
    diff = compare_with_reference(impl, unroll, shape, lengths="ragged")
    assert diff.max <= TOLERANCE, diff


def test_a_ragged_batch_run_as_full_is_detected(monkeypatch):
    """Ignoring the lengths (running the padding as data) must fail the ragged comparison.

    A causal direction's valid outputs never see the padding, so the backward direction of a
    bidirectional layer is where a lost length shows: it then reads the padding first.
    """
    from bench.cases import ragged_lengths
    from bench.impls.base import RNNLayer
    from bench.impls.keras_rnn import KerasLayer

    def ignore_lengths(self, x, lengths=None):
        return RNNLayer.__call__(self, x)

    monkeypatch.setattr(KerasLayer, "__call__", ignore_lengths)
    shape = VERIFY_SHAPES[1]
    assert min(ragged_lengths(shape)) < shape.seq_len
    assert compare_with_reference("keras_lstm", "dynamic", shape, lengths="ragged").max > 1e-3


def test_equivalence_problem_names_the_dtype_and_is_cached_per_dimension(monkeypatch):
    from bench.cases import Case, Shape
    from bench.impls import equivalence
    from bench.impls.equivalence import Diff

    calls = []

    def fake(impl, unroll, shape, device="cpu", dtype="fp32", lengths="full", **_):
        calls.append((dtype, lengths))
        return Diff(impl, unroll, shape.label, 0.5 if dtype == "bf16" else 0.0, 0.0, 0.0, "k")

    monkeypatch.setattr(equivalence, "compare_with_reference", fake)
    cache: dict = {}
    case = Case("keras_lstm", "dynamic", "cpu", Shape(2, 3, 4, 5))
    assert equivalence.equivalence_problem(case, cache) is None
    problem = equivalence.equivalence_problem(Case(**{**case.__dict__, "dtype": "bf16"}), cache)
    assert "in bf16" in problem
    assert "not timed" in problem
    equivalence.equivalence_problem(case, cache)
    assert calls == [("fp32", "full"), ("bf16", "full")]
