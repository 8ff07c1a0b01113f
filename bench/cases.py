"""Benchmark cases (frozen values with stable ids), presets and filters. No TensorFlow here."""

from __future__ import annotations

import fnmatch
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass, fields, replace

from bench.errors import UserError
from bench.registry import (
    DEVICES,
    DTYPES,
    GRU_RESET_AFTER,
    GRU_RESET_BEFORE,
    LENGTHS,
    LSTM,
    REGISTRY,
    RNN,
    UNROLLS,
    get_spec,
)

PHASES = ("forward", "backward", "train_step")
RAGGED_SEED = 20261124

# Gates per family: the matmul width of one step is gates * hidden (docs/design.md).
_GATES = {LSTM: 4, GRU_RESET_BEFORE: 3, GRU_RESET_AFTER: 3, RNN: 1}
# Phase cost in forward-pass units: backward ≈ 2× forward, so forward+backward ≈ 3×.
_PHASE_FACTOR = {"forward": 1.0, "backward": 3.0, "train_step": 3.0}


@dataclass(frozen=True)
class Shape:
    """The problem size of a case: batch, sequence length, input and hidden width, layers."""

    batch: int
    seq_len: int
    input_size: int
    hidden_size: int
    num_layers: int = 1
    bidirectional: bool = False

    @property
    def label(self) -> str:
        """Short stable label, e.g. `b128-t28-i28-h128-l1` (`-bi` when bidirectional)."""
        bi = "-bi" if self.bidirectional else ""
        return (f"b{self.batch}-t{self.seq_len}-i{self.input_size}-h{self.hidden_size}"
                f"-l{self.num_layers}{bi}")


@dataclass(frozen=True)
class Case:
    """One point of the benchmark matrix; `id` is the pytest id, result key and table label."""

    impl: str
    unroll: str
    device: str
    shape: Shape
    dtype: str = "fp32"
    xla: bool = False
    phase: str = "forward"
    lengths: str = "full"

    @property
    def id(self) -> str:
        """Stable id, e.g. `lstm_block_fused/fused/cpu/b128-t28-i28-h128-l1/fp32/train_step`.

        A ragged batch adds `-ragged` to the shape and XLA adds `-xla` to the dtype, so the ids
        of full-length, non-XLA cases are those of every earlier version.
        """
        return "/".join((self.impl, self.unroll, *self.group_labels()))

    def group_labels(self) -> tuple[str, str, str, str]:
        """(device, shape[-ragged], dtype[-xla], phase): the id without the implementation,
        what every table groups the implementations by."""
        shape = self.shape.label + ("-ragged" if self.lengths == "ragged" else "")
        dtype = self.dtype + ("-xla" if self.xla else "")
        return self.device, shape, dtype, self.phase

    def sequence_lengths(self) -> list[int] | None:
        """Per-example lengths of a ragged batch (seeded, in [ceil(T/2), T]); None when full."""
        return ragged_lengths(self.shape) if self.lengths == "ragged" else None

    def limitation(self) -> str | None:
        """Why the implementation cannot run this case's dtype or lengths, or None."""
        return get_spec(self.impl).limitation(self.dtype, self.lengths)

    @property
    def family(self) -> str:
        """The weight family (lstm, gru_reset_before, gru_reset_after, rnn) of the impl."""
        return get_spec(self.impl).family

    def forward_flops(self) -> float:
        """FLOPs of one forward pass from the matmul formula of docs/design.md."""
        gates = _GATES[self.family]
        s = self.shape
        directions = 2 if s.bidirectional else 1
        total = 0.0
        in_size = s.input_size
        for _ in range(s.num_layers):
            per_dir = 2.0 * s.batch * s.seq_len * (in_size + s.hidden_size) * (
                gates * s.hidden_size)
            total += per_dir * directions
            in_size = s.hidden_size * directions
        return total

    def flops(self) -> float:
        """FLOPs of one timed call of this case's phase."""
        return self.forward_flops() * _PHASE_FACTOR[self.phase]

    def params(self) -> dict:
        """The identity fields as one flat dict (what results store under `case`)."""
        return {"impl": self.impl, "unroll": self.unroll, "device": self.device,
                **asdict(self.shape), "dtype": self.dtype, "xla": self.xla, "phase": self.phase,
                "lengths": self.lengths}

    @classmethod
    def from_params(cls, params: dict) -> Case:
        """Rebuild a case from the flat `params()` dict, ignoring unknown keys."""
        shape = Shape(**{f.name: params[f.name] for f in fields(Shape) if f.name in params})
        own = {f.name for f in fields(cls)} - {"shape"}
        return cls(shape=shape, **{k: v for k, v in params.items() if k in own})

    def validate(self) -> Case:
        """Raise a UserError if any field names an unknown value; return self."""
        spec = get_spec(self.impl)
        if self.unroll not in spec.unrolls:
            raise UserError(f"{self.impl} does not support unroll={self.unroll!r}; "
                            f"valid for it: {', '.join(spec.unrolls)}")
        for name, value, valid in (("device", self.device, DEVICES),
                                   ("phase", self.phase, PHASES),
                                   ("dtype", self.dtype, tuple(DTYPES)),
                                   ("lengths", self.lengths, LENGTHS)):
            if value not in valid:
                raise UserError(f"unknown {name} {value!r}; valid: {', '.join(valid)}")
        return self


# Shapes are defined once, here.
SMOKE_SHAPE = Shape(batch=16, seq_len=10, input_size=8, hidden_size=32)
ROW_MNIST = Shape(batch=128, seq_len=28, input_size=28, hidden_size=128)
HEAVY = Shape(batch=64, seq_len=100, input_size=128, hidden_size=512)
GPU_LARGE = Shape(batch=64, seq_len=100, input_size=128, hidden_size=1024)
SCALING_BASE = Shape(batch=64, seq_len=50, input_size=64, hidden_size=256)
SCALING_SWEEPS = {
    "seq_len": (16, 32, 64, 128),
    "hidden_size": (64, 128, 256, 512),
    "batch": (16, 32, 64, 128),
}
SCALING_IMPLS = (("basic_lstm", "dynamic"), ("lstm_block", "dynamic"),
                 ("lstm_block_fused", "fused"), ("keras_lstm", "dynamic"),
                 ("cudnn_lstm", "fused"))


def ragged_lengths(shape: Shape, seed: int = RAGGED_SEED) -> list[int]:
    """Seeded per-example lengths in [ceil(T/2), T] for a right-padded batch of `shape`.

    The first example has length T and (batch > 1) the last ceil(T/2), so every ragged batch
    is padded to its longest member and really is ragged; the others are drawn from the seed.
    """
    import random

    rng = random.Random(f"{seed}-{shape.batch}-{shape.seq_len}")
    low = -(-shape.seq_len // 2)
    lengths = [rng.randint(low, shape.seq_len) for _ in range(shape.batch)]
    lengths[0] = shape.seq_len
    if shape.batch > 1:
        lengths[-1] = low
    return lengths


def impl_unrolls(device: str | None = None, *, core_only: bool = True) -> list[tuple[str, str]]:
    """(impl, unroll) pairs in registry order: core impls only unless told, and for `device`."""
    return [(spec.name, unroll) for spec in REGISTRY.values()
            if (spec.core or not core_only)
            and (device is None or device in spec.devices)
            for unroll in spec.unrolls]


def _matrix(pairs: Iterable[tuple[str, str]], device: str, shapes: Sequence[Shape],
            phases: Sequence[str], **dims) -> list[Case]:
    return [Case(impl, unroll, device, s, phase=phase, **dims)
            for s in shapes for impl, unroll in pairs for phase in phases]


def _smoke() -> list[Case]:
    # GPU-only impls stay in on purpose: a CPU run must show them as skipped, with the reason.
    return _matrix(impl_unrolls(), "cpu", [SMOKE_SHAPE], PHASES)


def _cpu() -> list[Case]:
    return _matrix(impl_unrolls(), "cpu", [ROW_MNIST, HEAVY], PHASES)


def _gpu() -> list[Case]:
    return _matrix(impl_unrolls("gpu", core_only=False), "gpu", [ROW_MNIST, HEAVY, GPU_LARGE],
                   PHASES)


def _scaling() -> list[Case]:
    cases = []
    for field_name, values in SCALING_SWEEPS.items():
        shapes = [replace(SCALING_BASE, **{field_name: v}) for v in values]
        for device in DEVICES:
            pairs = [p for p in SCALING_IMPLS if device in get_spec(p[0]).devices]
            cases += _matrix(pairs, device, shapes, ("backward",))
    return list(dict.fromkeys(cases))  # the base shape sits in every sweep: keep it once


def _both_devices(build) -> list[Case]:
    return [case for device in DEVICES for case in build(device)]


def _precision() -> list[Case]:
    return _both_devices(lambda device: [
        case for dtype in DTYPES for case in _matrix(
            impl_unrolls(device, core_only=False), device, [ROW_MNIST],
            ("forward", "train_step"), dtype=dtype)])


def _ragged() -> list[Case]:
    return _both_devices(lambda device: [
        case for lengths in LENGTHS for case in _matrix(
            impl_unrolls(device, core_only=False), device, [ROW_MNIST],
            ("forward", "train_step"), lengths=lengths)])


def _xla() -> list[Case]:
    return _both_devices(lambda device: [
        case for xla in (False, True) for case in _matrix(
            impl_unrolls(device, core_only=False), device, [ROW_MNIST], ("forward", "train_step"),
            xla=xla)])


def _latency() -> list[Case]:
    shapes = [Shape(batch=1, seq_len=t, input_size=h, hidden_size=h)
              for h in LATENCY_HIDDEN for t in LATENCY_SEQ_LENS]
    return _both_devices(lambda device: _matrix(impl_unrolls(device), device, shapes,
                                                ("forward",)))


LATENCY_SEQ_LENS = (1, 16, 100)
LATENCY_HIDDEN = (128, 512)
PRESETS = {
    "smoke": _smoke,
    "cpu": _cpu,
    "gpu": _gpu,
    "scaling": _scaling,
    "precision": _precision,
    "ragged": _ragged,
    "xla": _xla,
    "latency": _latency,
}
PRESET_HELP = {
    "smoke": "tiny shape, every impl x unroll x phase on CPU (cuDNN shows as skipped); seconds",
    "cpu": "row-MNIST B128 T28 I28 H128 and heavy B64 T100 I128 H512, all impls, all phases",
    "gpu": "the cpu shapes plus H1024 on the GPU, cuDNN and the Keras use_cudnn variants",
    "scaling": "backward-pass sweeps of seq_len, hidden and batch for the LSTM impls",
    "precision": "row-MNIST shape in fp32, bf16 and fp16 (Keras mixed precision), forward and "
                 "train step; use --device to pick cpu or gpu",
    "ragged": "row-MNIST shape, full against right-padded batches with lengths in [T/2, T]",
    "xla": "row-MNIST shape with jit_compile off and on (error rows where XLA has no kernel)",
    "latency": "batch 1 forward, T 1/16/100, H 128/512: p50/p90/p99 per call; run it at "
               "--threads 1 and at all threads",
}
def preset(name: str) -> list[Case]:
    """The cases of preset `name`, or a UserError listing the valid names."""
    try:
        factory = PRESETS[name]
    except KeyError:
        raise UserError(f"unknown preset {name!r}; valid: {', '.join(PRESETS)}") from None
    return factory()


def _check_values(kind: str, values: Sequence[str] | None, valid: Iterable[str]) -> None:
    valid = tuple(valid)
    for value in values or ():
        if value not in valid:
            raise UserError(f"unknown {kind} {value!r}; valid: {', '.join(valid)}")


def select(cases: Sequence[Case], *, impl: Sequence[str] | None = None,
           unroll: Sequence[str] | None = None, phase: Sequence[str] | None = None,
           device: Sequence[str] | None = None, keyword: str | None = None,
           dtype: Sequence[str] | None = None,
           lengths: Sequence[str] | None = None) -> list[Case]:
    """Filter cases; each filter is a list of accepted values, `keyword` a substring or glob."""
    _check_values("implementation", impl, REGISTRY)
    _check_values("unroll mode", unroll, UNROLLS)
    _check_values("phase", phase, PHASES)
    _check_values("device", device, DEVICES)
    _check_values("dtype", dtype, DTYPES)
    _check_values("lengths", lengths, LENGTHS)
    wanted = {"impl": impl, "unroll": unroll, "phase": phase, "device": device, "dtype": dtype,
              "lengths": lengths}
    out = []
    for case in cases:
        if any(values and getattr(case, name) not in values for name, values in wanted.items()):
            continue
        if keyword and not (keyword in case.id or fnmatch.fnmatch(case.id, keyword)):
            continue
        out.append(case)
    return out


def explain_empty(preset_name: str, *, impl: Sequence[str] | None = None,
                  unroll: Sequence[str] | None = None, phase: Sequence[str] | None = None,
                  device: Sequence[str] | None = None, keyword: str | None = None,
                  dtype: Sequence[str] | None = None,
                  lengths: Sequence[str] | None = None) -> str:
    """Why the filters leave no case of the preset: the first filter that empties it, and why.

    Filters are applied one at a time (impl, device, unroll, phase, keyword); the reason names
    the filter that removed the last case and what the cases left before it offered instead.
    """
    left = preset(preset_name)
    steps = (("impl", impl), ("device", device), ("unroll", unroll), ("phase", phase),
             ("dtype", dtype), ("lengths", lengths))
    for name, values in steps:
        if not values:
            continue
        kept = select(left, **{name: values})
        if not kept:
            return _why_none(name, values, left, preset_name,
                             {"impl": impl, "unroll": unroll, "phase": phase, "device": device})
        left = kept
    if keyword:
        return f"no case id contains or matches -k {keyword!r}"
    return "the filters keep no case"


def _why_none(name: str, values: Sequence[str], left: Sequence[Case], preset_name: str,
              filters: dict) -> str:
    offered = list(dict.fromkeys(getattr(case, name) for case in left))
    wanted = ", ".join(values)
    if name == "unroll":
        per_impl = {}
        for case in left:
            per_impl.setdefault(case.impl, get_spec(case.impl).unrolls)
        return "; ".join(f"{impl} supports only unroll {', '.join(modes)}"
                         for impl, modes in per_impl.items())
    if name == "device" and filters["impl"]:
        cannot = [n for n in filters["impl"] if not set(values) & set(get_spec(n).devices)]
        if cannot:
            return "; ".join(f"{n} runs only on {', '.join(get_spec(n).devices)}"
                             for n in cannot)
    others = [p for p in PRESETS if p != preset_name
              and select(preset(p), **{name: values, "impl": filters["impl"]})]
    hint = f"; use --preset {others[0]}" if others else ""
    return (f"the {preset_name} preset has no {wanted} {_PLURAL[name]} "
            f"(it has {', '.join(map(str, offered))}){hint}")


_PLURAL = {"impl": "implementation cases", "device": "cases", "unroll": "cases",
           "phase": "cases", "dtype": "cases", "lengths": "cases"}
