"""Equivalence of an implementation with the float64 NumPy reference: outputs and gradients."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from bench.cases import Shape
from bench.impls.base import LayerConfig
from bench.impls.reference import forward_backward
from bench.impls.weights import random_weights
from bench.registry import get_spec

TOLERANCE = 1e-5  # max absolute difference allowed in float32 (issue #2)


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


def compare_with_reference(impl: str, unroll: str, shape: Shape, device: str = "cpu",
                           seed: int = 0, weight_scale: float = 0.5, factory=None) -> Diff:
    """Run impl on seeded weights and inputs; return max abs diffs of outputs and gradients.

    The loss is sum(outputs * G) with a fixed random G, so every output element gets its own
    upstream gradient.
    """
    import tensorflow as tf

    from bench.impls.base import build_layer
    from bench.impls.devices import tf_device_name

    config = LayerConfig.from_shape(impl, unroll, shape)
    weights = random_weights(get_spec(impl).family, config, seed=seed, scale=weight_scale)
    rng = np.random.default_rng(seed + 1)
    x = rng.normal(size=(shape.batch, shape.seq_len, shape.input_size)).astype(np.float32)
    g = rng.normal(size=(shape.batch, shape.seq_len, config.output_size)).astype(np.float32)
    layer = build_layer(config, device, weights=weights, factory=factory)
    with tf.device(tf_device_name(device)):
        x_var = tf.Variable(x)
        upstream = tf.constant(g)

        @tf.function
        def outputs_and_grads():
            with tf.GradientTape() as tape:
                out = layer(x_var)
                loss = tf.reduce_sum(out * upstream)
            return out, tape.gradient(loss, [x_var, *layer.variables])

        out, grads = outputs_and_grads()
    ref_out, ref_dx, ref_dw = forward_backward(weights, x, g)
    got_dw = layer.canonical_grads([gr.numpy() for gr in grads[1:]])
    weight_diffs = [(float(np.max(np.abs(a - b))), name)
                    for (name, a), (_, b) in zip(got_dw.flat(), ref_dw.flat(), strict=True)]
    worst, worst_name = max(weight_diffs)
    return Diff(impl, unroll, shape.label,
                outputs=float(np.max(np.abs(out.numpy() - ref_out))),
                input_grad=float(np.max(np.abs(grads[0].numpy() - ref_dx))),
                weight_grad=worst, worst_weight=worst_name)


def equivalence_problem(case, cache: dict) -> str | None:
    """Why `case` must not be timed (it disagrees with the float64 reference), or None.

    Equivalence before timing: checked once per impl/unroll/device (memoised in `cache`) on the
    first verify shape; the step-time suite and the A/B worker both ask here.
    """
    key = (case.impl, case.unroll, case.device)
    if key not in cache:
        diff = compare_with_reference(case.impl, case.unroll, VERIFY_SHAPES[0],
                                      device=case.device)
        cache[key] = None if diff.max <= TOLERANCE else (
            f"not equivalent to the float64 reference (max abs diff {diff.max:.2e} > "
            f"{TOLERANCE:g}; worst weight gradient {diff.worst_weight}): not timed")
    return cache[key]
