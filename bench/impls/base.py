"""The creator contract every implementation follows, and `build_layer`, the one factory."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from bench.registry import DTYPES, check_device, check_unroll, get_spec


@dataclass(frozen=True)
class LayerConfig:
    """What to build: implementation, unroll mode and layer sizes."""

    impl: str
    unroll: str
    input_size: int
    hidden_size: int
    num_layers: int = 1
    bidirectional: bool = False
    dtype: str = "fp32"  # a bench.registry.DTYPES key: variables fp32, compute in this

    @classmethod
    def from_shape(cls, impl: str, unroll: str, shape, dtype: str = "fp32") -> LayerConfig:
        """The layer of a problem size (a bench.cases.Shape: batch and length are the input's)."""
        return cls(impl, unroll, shape.input_size, shape.hidden_size, shape.num_layers,
                   shape.bidirectional, dtype)

    @property
    def policy(self) -> str:
        """The Keras dtype policy of this precision (`float32`, `mixed_bfloat16`, ...)."""
        return DTYPES[self.dtype]

    @property
    def compute_dtype(self) -> str:
        """The TensorFlow dtype the recurrent math runs in (`float32`, `bfloat16`, `float16`)."""
        return self.policy.removeprefix("mixed_")

    @property
    def directions(self) -> int:
        """2 when bidirectional, else 1."""
        return 2 if self.bidirectional else 1

    @property
    def output_size(self) -> int:
        """Width of the layer's output at each step (hidden × directions)."""
        return self.hidden_size * self.directions

    def layer_input_size(self, layer: int) -> int:
        """Input width of stacked layer `layer` (0-based)."""
        return self.input_size if layer == 0 else self.output_size


class RNNLayer:
    """A built recurrent stack. Subclasses run one direction of one layer (`_run_direction`).

    Contract (used by verify, the step-time runner and time-to-accuracy alike):
    - `variables`: the trainable tf.Variables, in a fixed order;
    - `__call__(x, lengths=None)`: x [batch, time, input] float32 → outputs [batch, time,
      output_size] in the config's compute dtype; traceable inside tf.function; stacked layers
      feed the concatenated directions upward. With `lengths` (int32 [batch], a right-padded
      batch) the implementation's own mechanism stops each sequence at its length; outputs
      past it are unspecified, and the backward direction reverses only the valid part;
    - `load(weights)`: set every variable from canonical weights (bench.impls.weights);
    - `canonical_grads(grads)`: gradients w.r.t. `variables` → canonical layout.
    """

    def __init__(self, config: LayerConfig):
        self.config = config
        self.spec = get_spec(config.impl)

    # Subclass API -------------------------------------------------------------------
    variables: list

    def _run_direction(self, layer: int, direction: int, x, lengths=None):
        """Run one layer in one direction on x ([T, B, I] if time_major); same layout out."""
        raise NotImplementedError

    def load(self, weights) -> None:
        """Assign canonical weights (bench.impls.weights.CanonicalWeights) to the variables."""
        raise NotImplementedError

    def canonical_grads(self, grads):
        """Map gradients aligned with `variables` to bench.impls.weights.CanonicalWeights."""
        raise NotImplementedError

    # Shared driver ------------------------------------------------------------------
    time_major = True  # layout _run_direction works in; Keras layers prefer batch-major

    def __call__(self, x, lengths=None):
        import tensorflow as tf

        axis = 0 if self.time_major else 1

        def reverse(t):
            if lengths is None:
                return tf.reverse(t, axis=[axis])
            return tf.reverse_sequence(t, lengths, seq_axis=axis, batch_axis=1 - axis)

        h = tf.cast(x, self.config.compute_dtype)
        h = tf.transpose(h, [1, 0, 2]) if self.time_major else h
        for layer in range(self.config.num_layers):
            outs = [self._run_direction(layer, 0, h, lengths)]
            if self.config.bidirectional:
                outs.append(reverse(self._run_direction(layer, 1, reverse(h), lengths)))
            h = outs[0] if len(outs) == 1 else tf.concat(outs, axis=-1)
        return tf.transpose(h, [1, 0, 2]) if self.time_major else h

    @staticmethod
    def _assign_by_name(names, weights, variable_rows) -> None:
        """Assign canonical arrays `names` to each layer-direction's variables, in order."""
        for dirs, row in zip(weights.layers, variable_rows, strict=True):
            for arrays, variables in zip(dirs, row, strict=True):
                for name, var in zip(names, variables, strict=True):
                    var.assign(np.asarray(arrays[name], np.float32))

    def _grads_by_name(self, names, grads, rows):
        """Split a flat gradient list into canonical dicts, `names` per layer-direction."""
        from bench.impls.weights import CanonicalWeights

        it = iter(np.asarray(g) for g in grads)
        return CanonicalWeights(self.spec.family, [
            [{name: next(it) for name in names} for _ in row] for row in rows])


def build_layer(config: LayerConfig, device: str = "cpu", weights=None, seed: int = 0,
                factory=None) -> RNNLayer:
    """Build `config` on `device` through the registry; load `weights` or seeded random ones.

    `factory` replaces the registry's builder (verify uses it to run cuDNN layers without cuDNN).
    """
    from bench.impls.devices import tf_device_name
    from bench.impls.weights import random_weights

    spec = get_spec(config.impl)
    check_unroll(spec, config.unroll)
    check_device(device)
    import tensorflow as tf

    with tf.device(tf_device_name(device)):
        layer = (factory or spec.load_factory())(config, device)
        layer.load(weights if weights is not None else random_weights(
            spec.family, config, seed=seed))
    return layer
