"""Canonical weight layouts (docs/design.md), seeded random weights, layout converters. NumPy only.

One layout per family, per stacked layer and direction:

- lstm: `kernel` [in+H, 4H], `bias` [4H]; gate order i, c (candidate), f, o; the forget bias
  (1.0) is added inside the cell, not stored.
- gru_reset_before (TF1 GRUCell, GRUBlockCell): `gate_kernel` [in+H, 2H] (r, u), `gate_bias`
  [2H], `candidate_kernel` [in+H, H] (applied to [x, r*h]), `candidate_bias` [H];
  h' = u*h + (1-u)*c.
- gru_reset_after (cuDNN, Keras default): `kernel` [in, 3H], `recurrent_kernel` [H, 3H],
  `bias` [2, 3H] (input bias, recurrent bias); gate order z, r, h; the reset gate multiplies
  (h @ U_h + b_rh); h' = z*h + (1-z)*hh.
- rnn: `kernel` [in+H, H], `bias` [H]; h' = tanh([x, h] @ kernel + bias).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from bench.registry import GRU_RESET_AFTER, GRU_RESET_BEFORE, LSTM, RNN

FORGET_BIAS = 1.0


def shapes(family: str, input_size: int, hidden: int) -> dict[str, tuple[int, ...]]:
    """Array shapes of one layer-direction of `family` for the given input and hidden width."""
    n = input_size + hidden
    if family == LSTM:
        return {"kernel": (n, 4 * hidden), "bias": (4 * hidden,)}
    if family == GRU_RESET_BEFORE:
        return {"gate_kernel": (n, 2 * hidden), "gate_bias": (2 * hidden,),
                "candidate_kernel": (n, hidden), "candidate_bias": (hidden,)}
    if family == GRU_RESET_AFTER:
        return {"kernel": (input_size, 3 * hidden), "recurrent_kernel": (hidden, 3 * hidden),
                "bias": (2, 3 * hidden)}
    if family == RNN:
        return {"kernel": (n, hidden), "bias": (hidden,)}
    raise ValueError(f"unknown family {family!r}")


@dataclass
class CanonicalWeights:
    """Weights of a whole stack: `layers[layer][direction]` maps array names to arrays."""

    family: str
    layers: list[list[dict[str, np.ndarray]]]

    def flat(self) -> list[tuple[str, np.ndarray]]:
        """Every array with a readable name `l{layer}.d{direction}.{name}`, in a fixed order."""
        return [(f"l{li}.d{di}.{name}", arr)
                for li, dirs in enumerate(self.layers)
                for di, arrays in enumerate(dirs)
                for name, arr in arrays.items()]

    def astype(self, dtype) -> CanonicalWeights:
        """A copy with every array cast to `dtype`."""
        return CanonicalWeights(self.family, [[{k: v.astype(dtype) for k, v in d.items()}
                                               for d in dirs] for dirs in self.layers])


def random_weights(family: str, config, seed: int = 0, scale: float | None = None
                   ) -> CanonicalWeights:
    """Seeded uniform weights (±1/sqrt(H) unless `scale`) for a LayerConfig-like `config`."""
    rng = np.random.default_rng(seed)
    bound = scale if scale is not None else 1.0 / np.sqrt(config.hidden_size)
    layers = []
    for layer in range(config.num_layers):
        in_size = config.input_size if layer == 0 else config.hidden_size * (
            2 if config.bidirectional else 1)
        dirs = []
        for _ in range(2 if config.bidirectional else 1):
            dirs.append({name: rng.uniform(-bound, bound, size=shape).astype(np.float32)
                         for name, shape in shapes(family, in_size, config.hidden_size).items()})
        layers.append(dirs)
    return CanonicalWeights(family, layers)


def _blocks(a: np.ndarray, n: int) -> list[np.ndarray]:
    return np.split(a, n, axis=-1)


# Canonical LSTM gate order is i, c, f, o; Keras/cuDNN use i, f, c, o. Swapping the middle two
# blocks is its own inverse, so one permutation serves both directions.
_KERAS_LSTM_ORDER = (0, 2, 1, 3)


def _swap_cf(a: np.ndarray) -> np.ndarray:
    blocks = _blocks(a, 4)
    return np.concatenate([blocks[k] for k in _KERAS_LSTM_ORDER], axis=-1)


def lstm_to_keras(w: dict[str, np.ndarray], input_size: int) -> list[np.ndarray]:
    """Canonical LSTM arrays → Keras/cuDNN [kernel, recurrent_kernel, bias] (forget bias added)."""
    kernel = _swap_cf(w["kernel"])
    bias = w["bias"].copy()
    hidden = bias.shape[0] // 4
    bias[2 * hidden:3 * hidden] += FORGET_BIAS  # canonical f block → stored in Keras bias
    return [kernel[:input_size], kernel[input_size:], _swap_cf(bias)]


def lstm_grads_from_keras(grads: list[np.ndarray]) -> dict[str, np.ndarray]:
    """Gradients w.r.t. Keras [kernel, recurrent_kernel, bias] → canonical LSTM layout."""
    kernel, recurrent, bias = grads
    return {"kernel": _swap_cf(np.concatenate([kernel, recurrent], axis=0)),
            "bias": _swap_cf(bias)}
