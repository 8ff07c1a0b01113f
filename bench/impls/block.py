"""Block ops: LSTMBlockCell / GRUBlockCell per step and BlockLSTM over the whole sequence.

LSTMBlockCell and GRUBlockCell have no registered gradient in TF 2.x, so each step is wrapped
in tf.custom_gradient around LSTMBlockCellGrad / GRUBlockCellGrad (as TF1's contrib.rnn did).
`cell_clip=-1` turns off the default clipping of the cell state at 3.0 (docs/design.md, Traps).
"""

from __future__ import annotations

from bench.impls.base import LayerConfig, RNNLayer
from bench.impls.drivers import unroll
from bench.impls.weights import FORGET_BIAS

NO_CLIP = -1.0

# Variable names per impl, in canonical-array order (block ops use the canonical layout as is).
_ARRAYS = {
    "lstm_block": ("kernel", "bias"),
    "lstm_block_fused": ("kernel", "bias"),
    "gru_block": ("gate_kernel", "gate_bias", "candidate_kernel", "candidate_bias"),
}


def lstm_block_step(x, cs_prev, h_prev, w, b):
    """One LSTMBlockCell step with its gradient; returns (cs, h)."""
    import tensorflow as tf

    peephole = tf.zeros([tf.shape(h_prev)[1]], x.dtype)

    @tf.custom_gradient
    def step(x, cs_prev, h_prev, w, b):
        i, cs, f, o, ci, co, h = tf.raw_ops.LSTMBlockCell(
            x=x, cs_prev=cs_prev, h_prev=h_prev, w=w, wci=peephole, wcf=peephole,
            wco=peephole, b=b, forget_bias=FORGET_BIAS, cell_clip=NO_CLIP, use_peephole=False)

        def grad(d_cs, d_h):
            d_cs = tf.zeros_like(cs) if d_cs is None else d_cs
            d_h = tf.zeros_like(h) if d_h is None else d_h
            cs_prev_grad, dicfo, *_ = tf.raw_ops.LSTMBlockCellGrad(
                x=x, cs_prev=cs_prev, h_prev=h_prev, w=w, wci=peephole, wcf=peephole,
                wco=peephole, b=b, i=i, cs=cs, f=f, o=o, ci=ci, co=co, cs_grad=d_cs,
                h_grad=d_h, use_peephole=False)
            d_xh = tf.matmul(dicfo, w, transpose_b=True)
            n_in = tf.shape(x)[1]
            xh = tf.concat([x, h_prev], axis=1)
            return (d_xh[:, :n_in], cs_prev_grad, d_xh[:, n_in:],
                    tf.matmul(xh, dicfo, transpose_a=True), tf.reduce_sum(dicfo, axis=0))

        return (cs, h), grad

    return step(x, cs_prev, h_prev, w, b)


def gru_block_step(x, h_prev, w_ru, b_ru, w_c, b_c):
    """One GRUBlockCell step (reset-before GRU) with its gradient; returns h."""
    import tensorflow as tf

    @tf.custom_gradient
    def step(x, h_prev, w_ru, b_ru, w_c, b_c):
        r, u, c, h = tf.raw_ops.GRUBlockCell(x=x, h_prev=h_prev, w_ru=w_ru, w_c=w_c, b_ru=b_ru,
                                             b_c=b_c)

        def grad(d_h):
            d_x, d_h_prev, d_c_bar, d_ru_bar = tf.raw_ops.GRUBlockCellGrad(
                x=x, h_prev=h_prev, w_ru=w_ru, w_c=w_c, b_ru=b_ru, b_c=b_c, r=r, u=u, c=c,
                d_h=d_h)
            xh = tf.concat([x, h_prev], axis=1)
            xrh = tf.concat([x, r * h_prev], axis=1)
            return (d_x, d_h_prev, tf.matmul(xh, d_ru_bar, transpose_a=True),
                    tf.reduce_sum(d_ru_bar, axis=0), tf.matmul(xrh, d_c_bar, transpose_a=True),
                    tf.reduce_sum(d_c_bar, axis=0))

        return h, grad

    return step(x, h_prev, w_ru, b_ru, w_c, b_c)


def block_lstm_sequence(x_tm, w, b):
    """The whole sequence through one BlockLSTM (v1) op; returns h for every step [T, B, H]."""
    import tensorflow as tf

    hidden = tf.shape(b)[0] // 4
    batch = tf.shape(x_tm)[1]
    zeros = tf.zeros([batch, hidden], x_tm.dtype)
    peephole = tf.zeros([hidden], x_tm.dtype)
    # v1, not BlockLSTMV2: V2's registered gradient is wrong in TF 2.21 (docs/design.md, Traps).
    *_, h = tf.raw_ops.BlockLSTM(
        seq_len_max=tf.cast(tf.shape(x_tm)[0], tf.int64), x=x_tm, cs_prev=zeros, h_prev=zeros,
        w=w, wci=peephole, wcf=peephole, wco=peephole, b=b, forget_bias=FORGET_BIAS,
        cell_clip=NO_CLIP, use_peephole=False)
    return h


class BlockLayer(RNNLayer):
    """A stack of block-op cells; variables use the canonical layout directly."""

    def __init__(self, config: LayerConfig):
        super().__init__(config)
        import tensorflow as tf

        from bench.impls.weights import shapes

        self.params = []
        for layer in range(config.num_layers):
            in_size = config.layer_input_size(layer)
            self.params.append([
                [tf.Variable(tf.zeros(shape), name=f"{config.impl}_l{layer}_d{d}_{name}")
                 for name, shape in shapes(self.spec.family, in_size,
                                           config.hidden_size).items()]
                for d in range(config.directions)])
        self.variables = [v for row in self.params for vs in row for v in vs]

    def _run_direction(self, layer, direction, x_tm, lengths=None):
        import tensorflow as tf

        if lengths is not None:
            raise ValueError(self.spec.limitation("ragged"))
        # Variables stay float32; the op runs in the compute dtype (mixed precision).
        values = [tf.cast(v, x_tm.dtype) for v in self.params[layer][direction]]
        batch = tf.shape(x_tm)[1]
        zeros = tf.zeros([batch, self.config.hidden_size], x_tm.dtype)
        impl = self.config.impl
        if impl == "lstm_block_fused":
            return block_lstm_sequence(x_tm, *values)
        if impl == "lstm_block":
            w, b = values

            def step(x_t, state):
                cs, h = lstm_block_step(x_t, state[0], state[1], w, b)
                return h, (cs, h)

            return unroll(step, x_tm, (zeros, zeros), self.config.unroll)

        w_ru, b_ru, w_c, b_c = values

        def gru_step(x_t, state):
            h = gru_block_step(x_t, state[0], w_ru, b_ru, w_c, b_c)
            return h, (h,)

        return unroll(gru_step, x_tm, (zeros,), self.config.unroll)

    def load(self, weights):
        self._assign_by_name(_ARRAYS[self.config.impl], weights, self.params)

    def canonical_grads(self, grads):
        return self._grads_by_name(_ARRAYS[self.config.impl], grads, self.params)


def build(config: LayerConfig, device: str) -> RNNLayer:
    """Build a block-op stack (device placement is set by the caller)."""
    del device
    return BlockLayer(config)
