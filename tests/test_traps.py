"""Tests that catch the traps in docs/design.md: cell clipping, BlockLSTMV2 gradient, gate order."""

import numpy as np
import pytest

from bench.impls.base import LayerConfig
from bench.impls.reference import forward_backward
from bench.impls.weights import FORGET_BIAS, lstm_to_keras, random_weights

pytestmark = pytest.mark.tf


@pytest.fixture(scope="module")
def tf():
    import tensorflow

    return tensorflow


def _big_lstm_problem():
    """Weights and inputs large enough that the cell state exceeds 3.0."""
    config = LayerConfig("lstm_block_fused", "fused", 4, 5)
    weights = random_weights("lstm", config, seed=4, scale=1.5)
    w = weights.layers[0][0]
    w["bias"][:5] = 3.0  # input gate open
    w["bias"][5:10] = 3.0  # candidate near +1
    w["bias"][10:15] = 3.0  # forget gate open: the cell state accumulates past 3.0
    x = np.abs(np.random.default_rng(0).normal(size=(2, 12, 4))).astype(np.float32)
    return config, weights, x


def test_block_lstm_clips_cell_state_by_default_and_we_turn_it_off(tf):
    from bench.impls.block import block_lstm_sequence

    _, weights, x = _big_lstm_problem()
    w = weights.layers[0][0]
    ref = forward_backward(weights, x)
    x_tm = tf.constant(x.transpose(1, 0, 2))
    ours = block_lstm_sequence(x_tm, tf.constant(w["kernel"]), tf.constant(w["bias"]))
    zeros, peep = tf.zeros([2, 5]), tf.zeros([5])
    *_, default = tf.raw_ops.BlockLSTM(
        seq_len_max=tf.constant(12, tf.int64), x=x_tm, cs_prev=zeros, h_prev=zeros,
        w=w["kernel"], wci=peep, wcf=peep, wco=peep, b=w["bias"], forget_bias=FORGET_BIAS)
    ours = ours.numpy().transpose(1, 0, 2)
    default = default.numpy().transpose(1, 0, 2)
    np.testing.assert_allclose(ours, ref, atol=1e-5)
    # |h| = |o·tanh(c)|: clipping c at 3 moves h by at most 1 - tanh(3) ≈ 5e-3, 500× the
    # equivalence tolerance.
    assert np.max(np.abs(default - ref)) > 1e-3, "default cell_clip=3.0 should change outputs"


@pytest.mark.parametrize("impl", ["lstm_block", "lstm_block_fused"])
def test_block_impls_are_unclipped(tf, impl):
    from bench.impls.base import build_layer
    from bench.registry import get_spec

    _, weights, x = _big_lstm_problem()
    config = LayerConfig(impl, get_spec(impl).unrolls[-1], 4, 5)
    layer = build_layer(config, weights=weights)
    out = layer(tf.constant(x)).numpy()
    np.testing.assert_allclose(out, forward_backward(weights, x), atol=1e-5)


def test_block_lstm_v2_registered_gradient_is_wrong_so_we_use_v1(tf):
    """TF 2.21: BlockLSTMV2's registered weight gradient is off. If this starts failing,
    TensorFlow fixed it: re-check the Traps of docs/design.md before switching to V2."""
    config = LayerConfig("lstm_block_fused", "fused", 3, 4)
    weights = random_weights("lstm", config, seed=0)
    w = weights.layers[0][0]
    rng = np.random.default_rng(1)
    x = rng.normal(size=(2, 5, 3)).astype(np.float32)
    g = rng.normal(size=(2, 5, 4)).astype(np.float32)
    _, _, ref_dw = forward_backward(weights, x, g)
    # V2 takes gate order i, f, c, o and adds no forget bias: convert explicitly.
    kernel = np.concatenate(lstm_to_keras(w, 3)[:2], axis=0)
    bias = lstm_to_keras(w, 3)[2]
    kv, bv = tf.Variable(kernel), tf.Variable(bias)
    zeros, peep = tf.zeros([2, 4]), tf.zeros([4])
    with tf.GradientTape() as tape:
        *_, h = tf.raw_ops.BlockLSTMV2(
            seq_len_max=tf.constant(5, tf.int64), x=tf.constant(x.transpose(1, 0, 2)),
            cs_prev=zeros, h_prev=zeros, w=kv, wci=peep, wcf=peep, wco=peep, b=bv,
            cell_clip=-1.0)
        loss = tf.reduce_sum(h * tf.constant(g.transpose(1, 0, 2)))
    # Forward is right (so the conversion above is right) ...
    from bench.impls.weights import lstm_grads_from_keras

    np.testing.assert_allclose(h.numpy().transpose(1, 0, 2), forward_backward(weights, x),
                               atol=1e-5)
    dk, db = tape.gradient(loss, [kv, bv])
    got = lstm_grads_from_keras([dk.numpy()[:3], dk.numpy()[3:], db.numpy()])
    # ... but the registered gradient is not.
    assert np.max(np.abs(got["kernel"] - ref_dw.layers[0][0]["kernel"])) > 1e-2


def test_keras_gate_order_differs_from_canonical(tf):
    """Loading canonical i,c,f,o weights into Keras (i,f,c,o) without conversion is wrong."""
    import keras

    config = LayerConfig("keras_lstm", "dynamic", 3, 4)
    weights = random_weights("lstm", config, seed=0, scale=0.8)
    w = weights.layers[0][0]
    x = np.random.default_rng(0).normal(size=(2, 5, 3)).astype(np.float32)
    layer = keras.layers.LSTM(4, return_sequences=True, use_cudnn=False)
    layer.build((None, None, 3))
    ref = forward_backward(weights, x)
    naive = [w["kernel"][:3], w["kernel"][3:], w["bias"]]
    for var, value in zip(layer.trainable_variables, naive, strict=True):
        var.assign(value)
    assert np.max(np.abs(layer(x).numpy() - ref)) > 1e-2
    for var, value in zip(layer.trainable_variables, lstm_to_keras(w, 3), strict=True):
        var.assign(value)
    np.testing.assert_allclose(layer(x).numpy(), ref, atol=1e-5)
