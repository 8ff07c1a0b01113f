"""TF1 legacy cells (BasicLSTMCell, GRUCell, BasicRNNCell) from tf-keras, via static/dynamic_rnn."""

from __future__ import annotations

import warnings

from bench.impls.base import LayerConfig, RNNLayer
from bench.registry import LSTM

# Canonical array names in the order the cell creates its variables.
_VARIABLE_ORDER = {
    "basic_lstm": ("kernel", "bias"),
    "gru": ("gate_kernel", "gate_bias", "candidate_kernel", "candidate_bias"),
    "basic_rnn": ("kernel", "bias"),
}


def _cell_class(impl: str):
    # This path imports the legacy cells without switching tf.keras to Keras 2 globally.
    from tf_keras.api._v1.keras.__internal__.legacy import rnn_cell

    return {"basic_lstm": rnn_cell.BasicLSTMCell, "gru": rnn_cell.GRUCell,
            "basic_rnn": rnn_cell.BasicRNNCell}[impl]


class LegacyCellLayer(RNNLayer):
    """A stack of legacy cells, one per layer and direction."""

    def __init__(self, config: LayerConfig):
        super().__init__(config)
        import tensorflow as tf

        cls = _cell_class(config.impl)
        kwargs = {"forget_bias": 1.0} if self.spec.family == LSTM else {}
        if config.dtype != "fp32":  # tf-keras mixed precision: fp32 variables, cast at use
            from tf_keras import mixed_precision

            kwargs["dtype"] = mixed_precision.Policy(config.policy)
        self.cells = []
        for layer in range(config.num_layers):
            in_size = config.layer_input_size(layer)
            row = []
            for direction in range(config.directions):
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore", UserWarning)  # "deprecated" notice
                    cell = cls(config.hidden_size, name=f"{config.impl}_l{layer}_d{direction}",
                               **kwargs)
                cell.build(tf.TensorShape([None, in_size]))
                # One eager call before any tracing; otherwise later eager calls fail with
                # "Caching devices is not yet supported" (docs/design.md, Traps).
                compute = tf.as_dtype(config.compute_dtype)
                cell(tf.zeros([1, in_size], compute), cell.zero_state(1, compute))
                row.append(cell)
            self.cells.append(row)
        self.variables = [v for row in self.cells for cell in row
                          for v in cell.trainable_weights]

    def _run_direction(self, layer, direction, x_tm, lengths=None):
        import tensorflow as tf

        cell = self.cells[layer][direction]
        if self.config.unroll == "static":
            outputs, _ = tf.compat.v1.nn.static_rnn(cell, tf.unstack(x_tm, axis=0),
                                                    dtype=x_tm.dtype, sequence_length=lengths)
            return tf.stack(outputs, axis=0)
        outputs, _ = tf.compat.v1.nn.dynamic_rnn(cell, x_tm, dtype=x_tm.dtype, time_major=True,
                                                 swap_memory=False, sequence_length=lengths)
        return outputs

    def load(self, weights):
        rows = [[cell.trainable_weights for cell in row] for row in self.cells]
        self._assign_by_name(_VARIABLE_ORDER[self.config.impl], weights, rows)

    def canonical_grads(self, grads):
        return self._grads_by_name(_VARIABLE_ORDER[self.config.impl], grads, self.cells)


def build(config: LayerConfig, device: str) -> RNNLayer:
    """Build a legacy-cell stack (device placement is set by the caller)."""
    del device
    return LegacyCellLayer(config)
