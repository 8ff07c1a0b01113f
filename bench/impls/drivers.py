"""Unroll drivers for per-step cells: static (T copies of the step) or dynamic (tf.while_loop)."""

from __future__ import annotations


def unroll(step, x_tm, state, mode: str):
    """Run `step(x_t, state) -> (h_t, state)` over time-major x [T, B, I]; return [T, B, H].

    static: a Python loop, so the graph holds T copies of the step (needs a static T);
    dynamic: one tf.while_loop writing a TensorArray, as tf.compat.v1.nn.dynamic_rnn does.
    """
    import tensorflow as tf

    if mode == "static":
        outputs = []
        for x_t in tf.unstack(x_tm, axis=0):
            h_t, state = step(x_t, state)
            outputs.append(h_t)
        return tf.stack(outputs, axis=0)
    if mode != "dynamic":
        raise ValueError(f"per-step cells unroll 'static' or 'dynamic', not {mode!r}")
    steps = tf.shape(x_tm)[0]
    inputs = tf.TensorArray(x_tm.dtype, size=steps).unstack(x_tm)
    outputs = tf.TensorArray(x_tm.dtype, size=steps)

    def body(t, outputs, state):
        h_t, state = step(inputs.read(t), state)
        return t + 1, outputs.write(t, h_t), state

    _, outputs, _ = tf.while_loop(lambda t, *_: t < steps, body, (0, outputs, state))
    return outputs.stack()
