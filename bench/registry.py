"""The implementation registry: names, families, devices and unroll modes (no TensorFlow here)."""

from __future__ import annotations

import importlib
from dataclasses import dataclass

from bench.errors import UserError

UNROLLS = ("static", "dynamic", "fused")
DEVICES = ("cpu", "gpu")
# Precisions as users run them: fp32, or Keras mixed precision (fp32 variables, low-precision
# compute); the value is the Keras dtype policy, which the non-Keras paths imitate.
DTYPES = {"fp32": "float32", "bf16": "mixed_bfloat16", "fp16": "mixed_float16"}
# Sequence lengths of a batch: all T, or right-padded with per-example lengths in [T/2, T].
LENGTHS = ("full", "ragged")

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
    # What it cannot run, and why: ("bf16", reason), ("fp16", ...), ("ragged", ...).
    unsupported: tuple[tuple[str, str], ...] = ()
    core: bool = True  # in the smoke and cpu presets; False for the Keras option variants
    options: tuple[tuple[str, object], ...] = ()  # extra layer arguments (Keras variants)
    # The op family it promises to run (prefix of a traced op type, e.g. "CudnnRNN"): a case
    # whose traced graph runs something else is an error row. None: no promise.
    kernel_promise: str | None = None

    @property
    def gpu_only(self) -> bool:
        """True when the implementation cannot run without a GPU (cuDNN)."""
        return self.devices == ("gpu",)

    def limitation(self, *values: str) -> str | None:
        """Why this implementation cannot run one of these dimension values (`bf16`, `ragged`)."""
        reasons = dict(self.unsupported)
        return next((reasons[v] for v in values if v in reasons), None)

    def load_factory(self):
        """Import and return the builder function (this imports TensorFlow)."""
        module, _, func = self.factory.partition(":")
        return getattr(importlib.import_module(module), func)


_NO_LENGTHS_STEP = ("ragged", "{op} is one time step: it has no per-example sequence lengths "
                    "(the legacy drivers' sequence_length and Keras masks do)")
_LSTM_BLOCK_LIMITS = (
    ("bf16", "{op} has no bfloat16 kernel (float32 and float16 only)"),
    _NO_LENGTHS_STEP,
)


def _limits(op: str, *pairs: tuple[str, str]) -> tuple[tuple[str, str], ...]:
    return tuple((value, why.format(op=op)) for value, why in pairs)


_SPECS = (
    ImplSpec("basic_lstm", "BasicLSTMCell", LSTM, DEVICES, PER_STEP,
             "bench.impls.legacy:build", "legacy BasicLSTMCell + static_rnn/dynamic_rnn"),
    ImplSpec("lstm_block", "LSTMBlockCell", LSTM, DEVICES, PER_STEP,
             "bench.impls.block:build", "tf.raw_ops.LSTMBlockCell per step, LSTMBlockCellGrad",
             unsupported=_limits("LSTMBlockCell", *_LSTM_BLOCK_LIMITS)),
    ImplSpec("lstm_block_fused", "LSTMBlockFusedCell", LSTM, DEVICES, FUSED,
             "bench.impls.block:build", "tf.raw_ops.BlockLSTM over the whole sequence",
             unsupported=_limits(
                 "BlockLSTM", _LSTM_BLOCK_LIMITS[0],
                 ("ragged", "{op} takes only seq_len_max, not per-example sequence lengths"))),
    ImplSpec("cudnn_lstm", "CudnnLSTM", LSTM, ("gpu",), FUSED,
             "bench.impls.keras_rnn:build", "cuDNN through keras.layers.LSTM(use_cudnn=True)",
             options=(("use_cudnn", True),),
             kernel_promise="CudnnRNN"),
    ImplSpec("cudnn_gru", "CudnnGRU", GRU_RESET_AFTER, ("gpu",), FUSED,
             "bench.impls.keras_rnn:build", "cuDNN through keras.layers.GRU(use_cudnn=True)",
             options=(("use_cudnn", True),),
             kernel_promise="CudnnRNN"),
    ImplSpec("basic_rnn", "BasicRNNCell", RNN, DEVICES, PER_STEP,
             "bench.impls.legacy:build", "legacy BasicRNNCell + static_rnn/dynamic_rnn"),
    ImplSpec("gru", "GRUCell", GRU_RESET_BEFORE, DEVICES, PER_STEP,
             "bench.impls.legacy:build", "legacy GRUCell + static_rnn/dynamic_rnn"),
    ImplSpec("gru_block", "GRUBlockCell", GRU_RESET_BEFORE, DEVICES, PER_STEP,
             "bench.impls.block:build", "tf.raw_ops.GRUBlockCell per step, GRUBlockCellGrad",
             unsupported=_limits("GRUBlockCell",
                                 ("bf16", "{op} has only a float32 kernel"),
                                 ("fp16", "{op} has only a float32 kernel"),
                                 _NO_LENGTHS_STEP)),
    ImplSpec("keras_lstm", "keras.layers.LSTM", LSTM, DEVICES, PER_STEP,
             "bench.impls.keras_rnn:build", "Keras 3 LSTM(use_cudnn=False); static = unroll=True"),
    ImplSpec("keras_gru", "keras.layers.GRU", GRU_RESET_AFTER, DEVICES, PER_STEP,
             "bench.impls.keras_rnn:build", "Keras 3 GRU(use_cudnn=False); static = unroll=True"),
    # What TF2 users run by default, and one option known to make Keras leave cuDNN.
    ImplSpec("keras_lstm_auto", "keras.layers.LSTM", LSTM, DEVICES, ("dynamic",),
             "bench.impls.keras_rnn:build",
             "Keras 3 LSTM(use_cudnn='auto'): cuDNN where eligible, else the generic loop",
             core=False, options=(("use_cudnn", "auto"),)),
    ImplSpec("keras_lstm_rdrop", "keras.layers.LSTM", LSTM, DEVICES, ("dynamic",),
             "bench.impls.keras_rnn:build",
             "Keras 3 LSTM(use_cudnn='auto', recurrent_dropout=0.1): never cuDNN (dropout is "
             "off outside training, so the math is unchanged)",
             core=False, options=(("use_cudnn", "auto"), ("recurrent_dropout", 0.1))),
)

REGISTRY: dict[str, ImplSpec] = {spec.name: spec for spec in _SPECS}
CORE = tuple(spec.name for spec in _SPECS if spec.core)


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
