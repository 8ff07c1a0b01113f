"""The NumPy reference's own gradients agree with central finite differences (float64)."""

import numpy as np
import pytest

from bench.impls.base import LayerConfig
from bench.impls.reference import forward_backward
from bench.impls.weights import random_weights
from bench.registry import FAMILIES


def _loss(weights, x, g):
    return float((forward_backward(weights, x) * g).sum())


def _central_difference(array, idx, loss, eps=1e-6):
    """d loss / d array[idx] by central differences (array is perturbed in place, restored)."""
    saved = array[idx]
    array[idx] = saved + eps
    up = loss()
    array[idx] = saved - eps
    down = loss()
    array[idx] = saved
    return (up - down) / (2 * eps)


@pytest.mark.parametrize("bidirectional", [False, True], ids=["uni", "bi"])
@pytest.mark.parametrize("family", FAMILIES)
def test_reference_gradients_match_finite_differences(family, bidirectional):
    config = LayerConfig("any", "static", 3, 4, num_layers=2, bidirectional=bidirectional)
    weights = random_weights(family, config, seed=1, scale=0.8).astype(np.float64)
    rng = np.random.default_rng(0)
    x = rng.normal(size=(2, 5, 3))
    g = rng.normal(size=(2, 5, config.output_size))
    _, dx, dw = forward_backward(weights, x, g)
    def loss():
        return _loss(weights, x, g)

    for (name, array), (_, grad) in zip(weights.flat(), dw.flat(), strict=True):
        for _ in range(3):
            idx = tuple(int(rng.integers(0, n)) for n in array.shape)
            assert _central_difference(array, idx, loss) == pytest.approx(grad[idx], abs=1e-7), name
    idx = (1, 2, 0)
    assert _central_difference(x, idx, loss) == pytest.approx(dx[idx], abs=1e-7)


def test_families_compute_different_things():
    """Guards against a reference that ignores its family (all four must differ)."""
    config = LayerConfig("any", "static", 3, 4)
    x = np.random.default_rng(0).normal(size=(2, 4, 3))
    outs = {}
    for family in FAMILIES:
        outs[family] = forward_backward(random_weights(family, config, seed=2), x)
    values = list(outs.values())
    for i in range(len(values)):
        for j in range(i + 1, len(values)):
            assert np.max(np.abs(values[i] - values[j])) > 1e-3


def test_bidirectional_backward_half_reads_the_sequence_reversed():
    config = LayerConfig("any", "static", 2, 3, bidirectional=True)
    weights = random_weights("rnn", config, seed=0)
    x = np.random.default_rng(1).normal(size=(1, 5, 2))
    out = forward_backward(weights, x)
    # The backward direction's output at t=T-1 has seen only x[T-1].
    single = random_weights("rnn", LayerConfig("any", "static", 2, 3), seed=0)
    single.layers[0][0] = weights.layers[0][1]
    last_only = forward_backward(single, x[:, -1:, :])
    np.testing.assert_allclose(out[0, -1, 3:], last_only[0, 0], atol=1e-12)


@pytest.mark.parametrize("bidirectional", [False, True], ids=["uni", "bi"])
def test_ragged_reference_runs_each_sequence_to_its_own_length(bidirectional):
    from bench.impls.reference import forward_backward_ragged

    config = LayerConfig("any", "static", 3, 4, num_layers=2, bidirectional=bidirectional)
    weights = random_weights("lstm", config, seed=3, scale=0.5)
    rng = np.random.default_rng(4)
    x = rng.normal(size=(3, 6, 3))
    g = rng.normal(size=(3, 6, config.output_size))
    lengths = [6, 3, 4]
    out, dx, dw = forward_backward_ragged(weights, x, lengths, g)
    for b, n in enumerate(lengths):
        o, d, _ = forward_backward(weights, x[b:b + 1, :n], g[b:b + 1, :n])
        np.testing.assert_allclose(out[b, :n], o[0])
        np.testing.assert_allclose(dx[b, :n], d[0])
        assert not out[b, n:].any()
        assert not dx[b, n:].any()
    # The weight gradients add up over the examples: a full-length batch equals the plain run.
    _, _, full_dw = forward_backward_ragged(weights, x, [6, 6, 6], g)
    _, _, plain_dw = forward_backward(weights, x, g)
    for (_, a), (_, b) in zip(full_dw.flat(), plain_dw.flat(), strict=True):
        np.testing.assert_allclose(a, b)
    assert any(np.abs(a - b).max() > 1e-6
               for (_, a), (_, b) in zip(dw.flat(), full_dw.flat(), strict=True))
