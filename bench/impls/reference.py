"""Float64 NumPy reference RNNs (LSTM, both GRU variants, vanilla) with hand-written BPTT.

The reference is what every implementation is checked against (`rnnbench verify`); its own
gradients are checked against finite differences in the tests.
"""

from __future__ import annotations

import numpy as np

from bench.impls.weights import FORGET_BIAS, CanonicalWeights
from bench.registry import GRU_RESET_AFTER, GRU_RESET_BEFORE, LSTM, RNN


def _sigmoid(z):
    return 1.0 / (1.0 + np.exp(-z))


# --- one step forward / backward per family ------------------------------------------------
# state: tuple of arrays (h,) or (h, c); each forward returns (new_state, cache).

def _lstm_fwd(w, x, state):
    h, c = state
    xh = np.concatenate([x, h], axis=1)
    zi, zc, zf, zo = np.split(xh @ w["kernel"] + w["bias"], 4, axis=1)
    i, g, f, o = _sigmoid(zi), np.tanh(zc), _sigmoid(zf + FORGET_BIAS), _sigmoid(zo)
    c_new = f * c + i * g
    tc = np.tanh(c_new)
    h_new = o * tc
    return (h_new, c_new), (xh, c, i, g, f, o, tc)


def _lstm_bwd(w, cache, dstate, grads):
    dh, dc_next = dstate
    xh, c_prev, i, g, f, o, tc = cache
    do = dh * tc
    dc = dc_next + dh * o * (1.0 - tc**2)
    dz = np.concatenate([dc * g * i * (1 - i), dc * i * (1 - g**2),
                         dc * c_prev * f * (1 - f), do * o * (1 - o)], axis=1)
    grads["kernel"] += xh.T @ dz
    grads["bias"] += dz.sum(axis=0)
    dxh = dz @ w["kernel"].T
    n_in = xh.shape[1] - dh.shape[1]
    return dxh[:, :n_in], (dxh[:, n_in:], dc * f)


def _gru_before_fwd(w, x, state):
    (h,) = state
    xh = np.concatenate([x, h], axis=1)
    r, u = np.split(_sigmoid(xh @ w["gate_kernel"] + w["gate_bias"]), 2, axis=1)
    xrh = np.concatenate([x, r * h], axis=1)
    c = np.tanh(xrh @ w["candidate_kernel"] + w["candidate_bias"])
    return (u * h + (1 - u) * c,), (xh, xrh, h, r, u, c)


def _gru_before_bwd(w, cache, dstate, grads):
    (dh,) = dstate
    xh, xrh, h, r, u, c = cache
    n_in = xh.shape[1] - h.shape[1]
    dzc = dh * (1 - u) * (1 - c**2)
    grads["candidate_kernel"] += xrh.T @ dzc
    grads["candidate_bias"] += dzc.sum(axis=0)
    dxrh = dzc @ w["candidate_kernel"].T
    drh = dxrh[:, n_in:]
    dzg = np.concatenate([drh * h * r * (1 - r), dh * (h - c) * u * (1 - u)], axis=1)
    grads["gate_kernel"] += xh.T @ dzg
    grads["gate_bias"] += dzg.sum(axis=0)
    dxh = dzg @ w["gate_kernel"].T
    dx = dxrh[:, :n_in] + dxh[:, :n_in]
    return dx, (dh * u + drh * r + dxh[:, n_in:],)


def _gru_after_fwd(w, x, state):
    (h,) = state
    xz = x @ w["kernel"] + w["bias"][0]
    hz = h @ w["recurrent_kernel"] + w["bias"][1]
    xz_z, xz_r, xz_h = np.split(xz, 3, axis=1)
    hz_z, hz_r, hz_h = np.split(hz, 3, axis=1)
    z, r = _sigmoid(xz_z + hz_z), _sigmoid(xz_r + hz_r)
    hh = np.tanh(xz_h + r * hz_h)
    return (z * h + (1 - z) * hh,), (x, h, z, r, hh, hz_h)


def _gru_after_bwd(w, cache, dstate, grads):
    (dh,) = dstate
    x, h, z, r, hh, hz_h = cache
    da_h = dh * (1 - z) * (1 - hh**2)
    da_z = dh * (h - hh) * z * (1 - z)
    da_r = da_h * hz_h * r * (1 - r)
    dxz = np.concatenate([da_z, da_r, da_h], axis=1)
    dhz = np.concatenate([da_z, da_r, da_h * r], axis=1)
    grads["kernel"] += x.T @ dxz
    grads["recurrent_kernel"] += h.T @ dhz
    grads["bias"][0] += dxz.sum(axis=0)
    grads["bias"][1] += dhz.sum(axis=0)
    return dxz @ w["kernel"].T, (dh * z + dhz @ w["recurrent_kernel"].T,)


def _rnn_fwd(w, x, state):
    (h,) = state
    xh = np.concatenate([x, h], axis=1)
    h_new = np.tanh(xh @ w["kernel"] + w["bias"])
    return (h_new,), (xh, h_new)


def _rnn_bwd(w, cache, dstate, grads):
    (dh,) = dstate
    xh, h_new = cache
    dz = dh * (1 - h_new**2)
    grads["kernel"] += xh.T @ dz
    grads["bias"] += dz.sum(axis=0)
    dxh = dz @ w["kernel"].T
    n_in = xh.shape[1] - dh.shape[1]
    return dxh[:, :n_in], (dxh[:, n_in:],)


_STEPS = {
    LSTM: (_lstm_fwd, _lstm_bwd, 2),
    GRU_RESET_BEFORE: (_gru_before_fwd, _gru_before_bwd, 1),
    GRU_RESET_AFTER: (_gru_after_fwd, _gru_after_bwd, 1),
    RNN: (_rnn_fwd, _rnn_bwd, 1),
}


# --- sequences, stacks, directions ----------------------------------------------------------

def _run(family, w, x_tm):
    fwd, _, n_state = _STEPS[family]
    batch, hidden = x_tm.shape[1], w_hidden(family, w)
    state = tuple(np.zeros((batch, hidden)) for _ in range(n_state))
    outs, caches = [], []
    for x in x_tm:
        state, cache = fwd(w, x, state)
        outs.append(state[0])
        caches.append(cache)
    return np.stack(outs), caches


def _backprop(family, w, caches, dout_tm):
    _, bwd, n_state = _STEPS[family]
    grads = {k: np.zeros_like(v) for k, v in w.items()}
    dstate = tuple(np.zeros_like(dout_tm[0]) for _ in range(n_state))
    dxs = []
    for t in reversed(range(len(caches))):
        dstate = (dstate[0] + dout_tm[t], *dstate[1:])
        dx, dstate = bwd(w, caches[t], dstate, grads)
        dxs.append(dx)
    return np.stack(dxs[::-1]), grads


def w_hidden(family: str, w: dict[str, np.ndarray]) -> int:
    """Hidden width of one layer-direction's arrays."""
    if family == GRU_RESET_AFTER:
        return w["recurrent_kernel"].shape[0]
    if family == GRU_RESET_BEFORE:
        return w["candidate_bias"].shape[0]
    return w["bias"].shape[0] // (4 if family == LSTM else 1)


def forward_backward(weights: CanonicalWeights, x: np.ndarray, dout: np.ndarray | None = None):
    """Outputs [B, T, D*H] of the stack on x [B, T, I]; with `dout`, also (dx, weight grads).

    `dout` is dLoss/dOutputs; the gradients are returned as CanonicalWeights.
    """
    family = weights.family
    w64 = weights.astype(np.float64)
    h = np.asarray(x, np.float64).transpose(1, 0, 2)
    tape = []
    for dirs in w64.layers:
        fw, fw_cache = _run(family, dirs[0], h)
        outs, caches = [fw], [fw_cache]
        if len(dirs) == 2:
            bw, bw_cache = _run(family, dirs[1], h[::-1])
            outs.append(bw[::-1])
            caches.append(bw_cache)
        tape.append(caches)
        h = np.concatenate(outs, axis=-1)
    out = h.transpose(1, 0, 2)
    if dout is None:
        return out
    d = np.asarray(dout, np.float64).transpose(1, 0, 2)
    grads_layers = []
    for dirs, caches in zip(reversed(w64.layers), reversed(tape), strict=True):
        parts = np.split(d, len(dirs), axis=-1)
        dx_fw, g_fw = _backprop(family, dirs[0], caches[0], parts[0])
        grads, d = [g_fw], dx_fw
        if len(dirs) == 2:
            dx_bw, g_bw = _backprop(family, dirs[1], caches[1], parts[1][::-1])
            grads.append(g_bw)
            d = d + dx_bw[::-1]
        grads_layers.append(grads)
    return out, d.transpose(1, 0, 2), CanonicalWeights(family, grads_layers[::-1])


def forward_backward_ragged(weights: CanonicalWeights, x: np.ndarray, lengths, dout: np.ndarray):
    """`forward_backward` of a right-padded batch: each example runs its own length only.

    Returns outputs, dx (zero past each length) and the weight gradients summed over the batch;
    outputs past a length are zero (implementations leave them unspecified: compare the valid
    positions only).
    """
    x = np.asarray(x, np.float64)
    dout = np.asarray(dout, np.float64)
    out = np.zeros((*x.shape[:2], dout.shape[2]))
    dx = np.zeros_like(x)
    total = None
    for b, length in enumerate(int(n) for n in lengths):
        o, d, g = forward_backward(weights, x[b:b + 1, :length], dout[b:b + 1, :length])
        out[b, :length], dx[b, :length] = o[0], d[0]
        total = g if total is None else CanonicalWeights(g.family, [
            [{k: acc[k] + arrays[k] for k in arrays} for acc, arrays in zip(adirs, gdirs,
                                                                           strict=True)]
            for adirs, gdirs in zip(total.layers, g.layers, strict=True)])
    return out, dx, total
