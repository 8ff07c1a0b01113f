"""The timed callable of a Case: forward, backward or train step, built through the registry.

Rules (docs/design.md, Measurement rules): inputs and weights are tf.Variables (never
constants, so static graphs cannot be constant-folded); every call ends by fetching one
scalar to the host (`.numpy()`), so GPU timings include the work; the first call (trace +
compile + run) is timed by the caller as `compile_s`, outside the timed rounds.

- forward: outputs of the whole sequence, reduced to a scalar;
- backward: forward + gradients of a scalar loss (mean square of the outputs) w.r.t. the inputs
  and every weight; all gradients are folded into the returned scalar so none is pruned;
- train_step: backward + a plain SGD update of the layer's variables (`assign_sub`).

Low precision (bf16, fp16) computes in that dtype with float32 variables, and the scalar is
reduced in float32, as Keras mixed precision does; fp16 has no loss scaling (a timing case,
not training). A ragged case passes its per-example lengths to the layer and reduces only the
valid positions (the outputs past a sequence's end are unspecified).
"""

from __future__ import annotations

import hashlib
import importlib.util
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bench.cases import Case
from bench.impls.base import LayerConfig, build_layer
from bench.registry import get_spec

LEARNING_RATE = 1e-3


@dataclass
class Step:
    """A built case: `call()` runs one timed step (a host float) of the tf.function `function`."""

    case: Case
    call: Callable[[], float]
    layer: Any
    inputs: Any
    function: Any = None


def layer_config(case: Case) -> LayerConfig:
    """The LayerConfig a case builds."""
    return LayerConfig.from_shape(case.impl, case.unroll, case.shape, case.dtype)


def valid_outputs(tf, layer, x, lengths=None):
    """The layer's outputs in float32, zero past each sequence's length when `lengths` is set."""
    out = tf.cast(layer(x, lengths), tf.float32)
    if lengths is None:
        return out
    mask = tf.sequence_mask(lengths, maxlen=tf.shape(x)[1], dtype=tf.float32)
    return out * mask[:, :, None]


def _loss_and_grads(tf, layer, x, lengths):
    with tf.GradientTape() as tape:
        loss = tf.reduce_mean(tf.square(valid_outputs(tf, layer, x, lengths)))
    grads = tape.gradient(loss, [x, *layer.variables])
    return loss, grads


def _checksum(tf, loss, grads):
    """One scalar that depends on every gradient, so graph pruning keeps them all."""
    return tf.add_n([loss] + [tf.reduce_sum(tf.cast(g, tf.float32))
                              for g in grads if g is not None])


def forward(tf, layer, x, lengths=None) -> Callable[[], Any]:
    """The forward phase: the whole output sequence (its valid part), summed."""
    def fn():
        return tf.reduce_sum(valid_outputs(tf, layer, x, lengths))
    return fn


def backward(tf, layer, x, lengths=None) -> Callable[[], Any]:
    """The backward phase: forward + gradients w.r.t. inputs and all weights."""
    def fn():
        loss, grads = _loss_and_grads(tf, layer, x, lengths)
        return _checksum(tf, loss, grads)
    return fn


def train_step(tf, layer, x, lengths=None) -> Callable[[], Any]:
    """The train step: backward + an SGD update of every layer variable."""
    def fn():
        loss, grads = _loss_and_grads(tf, layer, x, lengths)
        for var, grad in zip(layer.variables, grads[1:], strict=True):
            if grad is not None:
                var.assign_sub(LEARNING_RATE * grad)
        return _checksum(tf, loss, grads)
    return fn


# phase name → builder(tf, layer, inputs) -> python function to wrap in tf.function.
BUILDERS: dict[str, Callable[..., Callable[[], Any]]] = {
    "forward": forward,
    "backward": backward,
    "train_step": train_step,
}


def build_step(case: Case, seed: int = 0) -> Step:
    """Build the layer, the input variable and the compiled step of `case` (not yet traced)."""
    import tensorflow as tf

    from bench.impls.devices import tf_device_name

    case.validate()
    device = tf_device_name(case.device)
    layer = build_layer(layer_config(case), device=case.device, seed=seed)
    with tf.device(device):
        shape = [case.shape.batch, case.shape.seq_len, case.shape.input_size]
        x = tf.Variable(tf.random.stateless_normal(shape, seed=[seed, 1]), name="inputs")
        given = case.sequence_lengths()
        lengths = None if given is None else tf.constant(given, tf.int32)
    body = BUILDERS[case.phase](tf, layer, x, lengths)

    def placed():
        with tf.device(device):
            return body()

    # No autograph: every implementation writes its loops as tf.while_loop, so conversion
    # finds nothing to change (the 45 smoke graphs have the same op types either way) and
    # costs about a quarter of the tracing; code that needed it would fail to trace, loudly.
    compiled = tf.function(placed, jit_compile=case.xla, reduce_retracing=True,
                           autograph=False)

    def call() -> float:
        return float(compiled().numpy())

    return Step(case=case, call=call, layer=layer, inputs=x, function=compiled)


# Modules every timed step runs besides its implementation module: the layer base and driver,
# the weight converters, device placement, the registry and case, and this module (phases).
SHARED_MODULES = ("bench.impls.base", "bench.impls.drivers", "bench.impls.weights",
                  "bench.impls.devices", "bench.registry", "bench.cases", __name__)


def _source_hash(module_name: str) -> str:
    spec = importlib.util.find_spec(module_name)
    if spec is None or spec.origin is None:
        return "missing"
    return hashlib.sha256(Path(spec.origin).read_bytes()).hexdigest()[:12]


def executed_modules(case: Case) -> tuple[str, ...]:
    """The bench modules whose code a timed step of `case` runs (what code_version hashes)."""
    impl_module = get_spec(case.impl).factory.partition(":")[0]
    return (impl_module, *SHARED_MODULES)


def code_version(case: Case) -> str:
    """`impl-shared` hashes of the source a case executes (docs/design.md, Measurement rules):
    any change there shows.

    The first part hashes the implementation module, the second every shared module of the
    step (SHARED_MODULES), so a report can tell an implementation change from a harness change.
    """
    impl, *shared = executed_modules(case)
    digest = hashlib.sha256("".join(_source_hash(m) for m in shared).encode()).hexdigest()[:12]
    return f"{_source_hash(impl)}-{digest}"
