"""Keras 3 LSTM/GRU: the TF2 default (use_cudnn=False) and the cuDNN kernels (use_cudnn=True).

cuDNN is reached only through Keras, the library-maintained path: `use_cudnn=True` makes Keras
run CudnnRNNV3 and raises ValueError where cuDNN cannot run.
"""

from __future__ import annotations

import numpy as np

from bench.impls.base import LayerConfig, RNNLayer
from bench.impls.weights import CanonicalWeights, lstm_grads_from_keras, lstm_to_keras
from bench.registry import LSTM


class KerasLayer(RNNLayer):
    """A stack of single-direction Keras LSTM/GRU layers (bidirectional by reversed input)."""

    time_major = False

    def __init__(self, config: LayerConfig, use_cudnn: bool | None = None):
        super().__init__(config)
        import keras

        cls = keras.layers.LSTM if self.spec.family == LSTM else keras.layers.GRU
        extra = {"use_cudnn": False} if self.spec.family == LSTM else {
            "use_cudnn": False, "reset_after": True}
        extra.update(dict(self.spec.options))  # cuDNN impls and Keras variants: use_cudnn, ...
        if use_cudnn is not None:  # verify without a GPU: the generic kernel, same layers
            extra["use_cudnn"] = use_cudnn
        self.layers = []
        for layer in range(config.num_layers):
            row = []
            for direction in range(config.directions):
                rnn = cls(config.hidden_size, return_sequences=True,
                          unroll=config.unroll == "static", dtype=config.policy,
                          name=f"{config.impl}_l{layer}_d{direction}", **extra)
                rnn.build((None, None, config.layer_input_size(layer)))
                row.append(rnn)
            self.layers.append(row)
        # The tf.Variable under each Keras variable: what tf.GradientTape and optimizers take.
        self.variables = [v.value for row in self.layers for rnn in row
                          for v in rnn.trainable_variables]

    def _run_direction(self, layer, direction, x, lengths=None):
        import tensorflow as tf

        if lengths is None:
            return self.layers[layer][direction](x)
        mask = tf.sequence_mask(lengths, maxlen=tf.shape(x)[1])  # right-padded: cuDNN-eligible
        return self.layers[layer][direction](x, mask=mask)

    def load(self, weights):
        for layer, (dirs, row) in enumerate(zip(weights.layers, self.layers, strict=True)):
            in_size = self.config.layer_input_size(layer)
            for arrays, rnn in zip(dirs, row, strict=True):
                if self.spec.family == LSTM:
                    values = lstm_to_keras(arrays, in_size)
                else:
                    values = [arrays["kernel"], arrays["recurrent_kernel"], arrays["bias"]]
                for var, value in zip(rnn.trainable_variables, values, strict=True):
                    var.assign(np.asarray(value, np.float32))

    def canonical_grads(self, grads):
        grads = [np.asarray(g) for g in grads]
        layers, k = [], 0
        for row in self.layers:
            dirs = []
            for _ in row:
                g = grads[k:k + 3]
                k += 3
                dirs.append(lstm_grads_from_keras(g) if self.spec.family == LSTM else
                            {"kernel": g[0], "recurrent_kernel": g[1], "bias": g[2]})
            layers.append(dirs)
        return CanonicalWeights(self.spec.family, layers)


def build(config: LayerConfig, device: str) -> RNNLayer:
    """Build a Keras LSTM/GRU stack (device placement is set by the caller)."""
    del device
    return KerasLayer(config)


def build_without_cudnn(config: LayerConfig, device: str) -> RNNLayer:
    """The cuDNN impl's exact Keras layers and weight conversion, run with use_cudnn=False.

    This is how a machine without a GPU checks the cuDNN weight layout: same layers, same
    converters, the generic kernel instead of CudnnRNNV3.
    """
    del device
    return KerasLayer(config, use_cudnn=False)
