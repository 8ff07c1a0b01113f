"""Equivalence of an implementation with the float64 NumPy reference: outputs and gradients.

Tolerances are per precision. fp32 keeps an absolute 1e-5. Low precision is judged relative
to the largest reference value of each quantity (max|got - ref| / max(1, max|ref|)), at 8
units of roundoff of the compute dtype (bf16: 8 x 2^-8 = 3.1e-2; fp16: 8 x 2^-11 = 3.9e-3):
inputs and weights are each rounded once, every step's dot products (I + H terms) round
their result, and the verify shapes run 5-6 steps, so a correct kernel lands within a few
units, while a wrong gate order or a missing bias is off by tens of percent.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from bench.cases import Shape
from bench.impls.base import LayerConfig
from bench.impls.reference import forward_backward
from bench.impls.weights import random_weights
from bench.registry import get_spec

TOLERANCE = 1e-5  # max absolute difference allowed in float32 (issue #2)
ROUNDOFF = {"bf16": 2.0 ** -8, "fp16": 2.0 ** -11}
TOLERANCES = {"fp32": TOLERANCE, **{dtype: 8 * u for dtype, u in ROUNDOFF.items()}}


VERIFY_SHAPES = (
    Shape(batch=3, seq_len=6, input_size=5, hidden_size=7),
    Shape(batch=2, seq_len=5, input_size=4, hidden_size=6, num_layers=2,
                bidirectional=True),
)


@dataclass(frozen=True)
class Diff:
    """Max absolute differences against the reference for one impl × unroll × shape."""

    impl: str
    unroll: str
    shape: str
    outputs: float
    input_grad: float
    weight_grad: float
    worst_weight: str

    @property
    def max(self) -> float:
        """The largest of the three differences."""
        return max(self.outputs, self.input_grad, self.weight_grad)


def _error(got, ref, relative: bool) -> float:
    got, ref = np.asarray(got, np.float64), np.asarray(ref, np.float64)
    scale = max(1.0, float(np.max(np.abs(ref)))) if relative else 1.0
    return float(np.max(np.abs(got - ref))) / scale


def compare_with_reference(impl: str, unroll: str, shape: Shape, device: str = "cpu",
                           seed: int = 0, weight_scale: float = 0.5, factory=None,
                           dtype: str = "fp32", lengths: str = "full") -> Diff:
    """Run impl on seeded weights and inputs; return the diffs of outputs and gradients.

    The loss is sum(outputs * G) with a fixed random G, so every output element gets its own
    upstream gradient. fp32 diffs are absolute; bf16/fp16 diffs are relative (module doc). A
    ragged batch compares the valid positions (G is zero past each length) against a reference
    that runs each sequence to its own length.
    """
    import tensorflow as tf

    from bench.cases import ragged_lengths
    from bench.impls.base import build_layer
    from bench.impls.devices import tf_device_name
    from bench.impls.reference import forward_backward_ragged

    config = LayerConfig.from_shape(impl, unroll, shape, dtype)
    weights = random_weights(get_spec(impl).family, config, seed=seed, scale=weight_scale)
    rng = np.random.default_rng(seed + 1)
    x = rng.normal(size=(shape.batch, shape.seq_len, shape.input_size)).astype(np.float32)
    g = rng.normal(size=(shape.batch, shape.seq_len, config.output_size)).astype(np.float32)
    seq = ragged_lengths(shape) if lengths == "ragged" else None
    # Valid positions: all of them, or those before each sequence's length.
    ends = np.asarray(seq if seq is not None else [shape.seq_len] * shape.batch)
    valid = (np.arange(shape.seq_len)[None, :] < ends[:, None])[:, :, None].astype(np.float32)
    g *= valid
    layer = build_layer(config, device, weights=weights, factory=factory)
    with tf.device(tf_device_name(device)):
        x_var = tf.Variable(x)
        upstream = tf.constant(g)
        seq_t = None if seq is None else tf.constant(seq, tf.int32)

        @tf.function(autograph=False)  # as the timed step is traced (bench.measure.phases)
        def outputs_and_grads():
            with tf.GradientTape() as tape:
                out = tf.cast(layer(x_var, seq_t), tf.float32) * valid
                loss = tf.reduce_sum(out * upstream)
            return out, tape.gradient(loss, [x_var, *layer.variables])

        out, grads = outputs_and_grads()
    if seq is None:
        ref_out, ref_dx, ref_dw = forward_backward(weights, x, g)
    else:
        ref_out, ref_dx, ref_dw = forward_backward_ragged(weights, x, seq, g)
    relative = dtype != "fp32"
    got_dw = layer.canonical_grads([gr.numpy() for gr in grads[1:]])
    weight_diffs = [(_error(a, b, relative), name)
                    for (name, a), (_, b) in zip(got_dw.flat(), ref_dw.flat(), strict=True)]
    worst, worst_name = max(weight_diffs)
    return Diff(impl, unroll, shape.label + ("-ragged" if seq is not None else ""),
                outputs=_error(out.numpy(), ref_out * valid, relative),
                input_grad=_error(grads[0].numpy(), ref_dx, relative),
                weight_grad=worst, worst_weight=worst_name)


def equivalence_problem(case, cache: dict) -> str | None:
    """Why `case` must not be timed (it disagrees with the float64 reference), or None.

    Equivalence before timing: checked once per impl/unroll/device (memoised in `cache`) on the
    first verify shape; the step-time suite and the A/B worker both ask here.
    """
    key = (case.impl, case.unroll, case.device, case.dtype, case.lengths)
    if key not in cache:
        diff = compare_with_reference(case.impl, case.unroll, VERIFY_SHAPES[0],
                                      device=case.device, dtype=case.dtype,
                                      lengths=case.lengths)
        tolerance = TOLERANCES[case.dtype]
        cache[key] = None if diff.max <= tolerance else (
            f"not equivalent to the float64 reference in {case.dtype} (max diff {diff.max:.2e}"
            f" > {tolerance:g}; worst weight gradient {diff.worst_weight}): not timed")
    return cache[key]
