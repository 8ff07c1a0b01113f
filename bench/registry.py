"""The implementation registry: names, families, devices and unroll modes (no TensorFlow here)."""

from __future__ import annotations

import importlib
from dataclasses import dataclass

from bench.errors import UserError

UNROLLS = ("static", "dynamic", "fused")
DEVICES = ("cpu", "gpu")

# Families share a canonical weight layout (bench.impls.weights) and a NumPy reference
# (bench.impls.reference).
LSTM = "lstm"
GRU_RESET_BEFORE = "gru_reset_before"  # TF1 GRUCell, GRUBlockCell, Keras reset_after=False
GRU_RESET_AFTER = "gru_reset_after"  # cuDNN, Keras default
RNN = "rnn"  # vanilla tanh RNN
FAMILIES = (LSTM, GRU_RESET_BEFORE, GRU_RESET_AFTER, RNN)

PER_STEP = ("static", "dynamic")
FUSED = ("fused",)


@dataclass(frozen=True)
class ImplSpec:
    """What one implementation is and where it runs; `factory` builds it (imports TensorFlow)."""

    name: str
    classic: str
    family: str
    devices: tuple[str, ...]
    unrolls: tuple[str, ...]
    factory: str  # "module:function", imported only when a model is built
    how: str
    # The op family it promises to run (prefix of a traced op type, e.g. "CudnnRNN"): a case
    # whose traced graph runs something else is an error row. None: no promise.
    kernel_promise: str | None = None

    @property
    def gpu_only(self) -> bool:
        """True when the implementation cannot run without a GPU (cuDNN)."""
        return self.devices == ("gpu",)

    def load_factory(self):
        """Import and return the builder function (this imports TensorFlow)."""
        module, _, func = self.factory.partition(":")
        return getattr(importlib.import_module(module), func)


_SPECS = (
    ImplSpec("basic_lstm", "BasicLSTMCell", LSTM, DEVICES, PER_STEP,
             "bench.impls.legacy:build", "legacy BasicLSTMCell + static_rnn/dynamic_rnn"),
    ImplSpec("lstm_block", "LSTMBlockCell", LSTM, DEVICES, PER_STEP,
             "bench.impls.block:build", "tf.raw_ops.LSTMBlockCell per step, LSTMBlockCellGrad"),
    ImplSpec("lstm_block_fused", "LSTMBlockFusedCell", LSTM, DEVICES, FUSED,
             "bench.impls.block:build", "tf.raw_ops.BlockLSTM over the whole sequence"),
    ImplSpec("cudnn_lstm", "CudnnLSTM", LSTM, ("gpu",), FUSED,
             "bench.impls.keras_rnn:build", "cuDNN through keras.layers.LSTM(use_cudnn=True)",
             kernel_promise="CudnnRNN"),
    ImplSpec("cudnn_gru", "CudnnGRU", GRU_RESET_AFTER, ("gpu",), FUSED,
             "bench.impls.keras_rnn:build", "cuDNN through keras.layers.GRU(use_cudnn=True)",
             kernel_promise="CudnnRNN"),
    ImplSpec("basic_rnn", "BasicRNNCell", RNN, DEVICES, PER_STEP,
             "bench.impls.legacy:build", "legacy BasicRNNCell + static_rnn/dynamic_rnn"),
    ImplSpec("gru", "GRUCell", GRU_RESET_BEFORE, DEVICES, PER_STEP,
             "bench.impls.legacy:build", "legacy GRUCell + static_rnn/dynamic_rnn"),
    ImplSpec("gru_block", "GRUBlockCell", GRU_RESET_BEFORE, DEVICES, PER_STEP,
             "bench.impls.block:build", "tf.raw_ops.GRUBlockCell per step, GRUBlockCellGrad"),
    ImplSpec("keras_lstm", "keras.layers.LSTM", LSTM, DEVICES, PER_STEP,
             "bench.impls.keras_rnn:build", "Keras 3 LSTM(use_cudnn=False); static = unroll=True"),
    ImplSpec("keras_gru", "keras.layers.GRU", GRU_RESET_AFTER, DEVICES, PER_STEP,
             "bench.impls.keras_rnn:build", "Keras 3 GRU(use_cudnn=False); static = unroll=True"),
)

REGISTRY: dict[str, ImplSpec] = {spec.name: spec for spec in _SPECS}


def get_spec(name: str) -> ImplSpec:
    """Return the spec of `name`, or raise a UserError listing the valid names."""
    try:
        return REGISTRY[name]
    except KeyError:
        raise UserError(
            f"unknown implementation {name!r}; valid: {', '.join(REGISTRY)}"
        ) from None


def check_unroll(spec: ImplSpec, unroll: str) -> None:
    """Raise a UserError when `unroll` is not one of the modes `spec` supports."""
    if unroll not in UNROLLS:
        raise UserError(f"unknown unroll mode {unroll!r}; valid: {', '.join(UNROLLS)}")
    if unroll not in spec.unrolls:
        raise UserError(
            f"{spec.name} does not support unroll={unroll!r}; valid for it: "
            f"{', '.join(spec.unrolls)}"
        )


def check_device(device: str) -> None:
    """Raise a UserError when `device` is not a known device name."""
    if device not in DEVICES:
        raise UserError(f"unknown device {device!r}; valid: {', '.join(DEVICES)}")
