"""Benchmark cases (frozen values with stable ids), presets and filters. No TensorFlow here."""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Sequence
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
# Fewer timed rounds than this make a median too loose for `check` (the stability verdict).
MIN_ROUNDS = 10
# Untimed warm-up before the timed rounds: a ramp of ~0.25 s follows the build (docs/design.md).
WARMUP_S = 0.25
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
class Dimension:
    """One case dimension, declared once: ids, validation, filters and group keys derive from it.

    A dimension with `part=None` is its own part of the id; one with `part` set adds a mark to
    that part when it is not at its default (`-ragged` on the shape, `-xla` on the dtype), so
    adding a dimension leaves the ids of every earlier case unchanged. `filter` is the noun of
    its `--NAME` filter in error messages (None: not a filter), `help` what the filter's help
    calls it; `compared` dimensions are what a table ranks within a group (the group key is
    the id without them); group headings and keys name a `leads` dimension first. `column`
    names its id part (marks included) as a table column when its own name is the bare stored
    value (`precision`: the dtype with -xla). `since` is the results schema that first stored
    it: `params()` orders its keys by it, so rows stored before keep their key order.
    """

    name: str
    values: tuple | None  # None: any (the shape)
    default: object = None
    part: str | None = None
    filter: str | None = None
    help: str | None = None
    compared: bool = False
    leads: bool = False
    column: str = ""  # "": its name
    since: int = 1

    def __post_init__(self) -> None:
        object.__setattr__(self, "column", self.column or self.name)

    def mark(self, value) -> str:
        """What the value adds to its part of the id: '' at the default."""
        if value == self.default:
            return ""
        return f"-{self.name}" if isinstance(value, bool) else f"-{value}"


# In id order. The registry's names, modes and devices are checked by the ImplSpec too.
DIMENSIONS = (
    Dimension("impl", tuple(REGISTRY), filter="implementation", compared=True),
    Dimension("unroll", UNROLLS, filter="unroll mode", compared=True),
    Dimension("device", DEVICES, filter="device"),
    Dimension("shape", None),
    Dimension("lengths", LENGTHS, "full", part="shape", filter="lengths",
              help="sequence-length kind (full, ragged)", since=2),
    Dimension("dtype", tuple(DTYPES), "fp32", filter="dtype", help="dtype (fp32, bf16, fp16)",
              column="precision"),
    Dimension("xla", (False, True), False, part="dtype"),
    Dimension("phase", PHASES, "forward", filter="phase", leads=True),
)
FILTERS = tuple(d for d in DIMENSIONS if d.filter)


def param_types() -> dict[str, type]:
    """The type of each key of `Case.params()` (the flat `case` object of a results row)."""
    out: dict[str, type] = {}
    for dim in DIMENSIONS:
        if dim.values is None:  # the shape: its own fields
            out.update({f.name: {"int": int, "bool": bool}[str(f.type)] for f in fields(Shape)})
        else:
            out[dim.name] = type(dim.values[0])
    return out


def id_parts(case) -> dict[str, str]:
    """The parts of a case id by column name, marks folded in: impl, unroll, device, shape,
    precision, phase (a new dimension's own part too)."""
    column = {d.name: d.column for d in DIMENSIONS}
    parts: dict[str, str] = {}
    for dim in DIMENSIONS:
        value = getattr(case, dim.name)
        if dim.part is not None:
            parts[column[dim.part]] += dim.mark(value)
        else:
            parts[column[dim.name]] = value.label if isinstance(value, Shape) else str(value)
    return parts


def compared_columns() -> tuple[str, ...]:
    """The id parts a table ranks within a group: ('impl', 'unroll')."""
    return tuple(d.column for d in DIMENSIONS if d.compared)


def group_columns(*, leading: bool = True) -> tuple[str, ...]:
    """The id parts every table groups by, the leading ones first (`leading=False`: without
    them): ('phase', 'device', 'shape', 'precision')."""
    own = [d for d in DIMENSIONS if d.part is None and not d.compared and (leading or not d.leads)]
    return tuple(d.column for d in sorted(own, key=lambda d: not d.leads))


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
        return "/".join(id_parts(self).values())

    def group_labels(self) -> tuple[str, ...]:
        """The labels of its `group_columns()`: e.g. (phase, device, shape[-ragged],
        dtype[-xla]), what every table groups the implementations by and heads a group with."""
        parts = id_parts(self)
        return tuple(parts[column] for column in group_columns())

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
        """The value of every dimension as one flat dict, the shape as its fields (what results
        store under `case`), keys in the order the results schema added them."""
        out: dict = {}
        for dim in sorted(DIMENSIONS, key=lambda d: d.since):
            value = getattr(self, dim.name)
            out.update(asdict(value) if dim.values is None else {dim.name: value})
        return out

    @classmethod
    def from_params(cls, params: dict) -> Case:
        """Rebuild a case from the flat `params()` dict, ignoring unknown keys (a missing
        dimension is at its default)."""
        shape = Shape(**{f.name: params[f.name] for f in fields(Shape) if f.name in params})
        return cls(**{d.name: shape if d.values is None else params[d.name]
                      for d in DIMENSIONS if d.values is None or d.name in params})

    def validate(self) -> Case:
        """Raise a UserError if any field names an unknown value; return self."""
        spec = get_spec(self.impl)
        if self.unroll not in spec.unrolls:
            raise UserError(f"{self.impl} does not support unroll={self.unroll!r}; "
                            f"valid for it: {', '.join(spec.unrolls)}")
        for dim in DIMENSIONS[2:]:  # impl and unroll: checked against the spec above
            value = getattr(self, dim.name)
            if dim.values is not None and value not in dim.values:
                raise UserError(f"unknown {dim.name} {value!r}; valid: "
                                f"{', '.join(map(str, dim.values))}")
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


@dataclass(frozen=True)
class RoundsPolicy:
    """Rounds: fixed, or a time budget clamped to [min, max]; before them, warm-up calls."""

    min_rounds: int = MIN_ROUNDS
    max_rounds: int = 1000
    warmup: int = 2
    budget_s: float = 1.0
    rounds: int | None = None
    warmup_s: float = WARMUP_S

    def plan(self, estimate_s: float) -> int:
        """Rounds for a call that takes about `estimate_s` seconds."""
        if self.rounds is not None:
            return self.rounds
        if estimate_s <= 0 or not math.isfinite(estimate_s):
            return self.max_rounds
        wanted = math.ceil(self.budget_s / estimate_s)
        return max(self.min_rounds, min(self.max_rounds, wanted))


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


def _across(name: str) -> Callable[[], list[Case]]:
    """A dimension preset: the row-MNIST shape at every value of dimension `name`."""
    values = next(d.values for d in DIMENSIONS if d.name == name)
    return lambda: _both_devices(lambda device: [
        case for value in values for case in _matrix(
            impl_unrolls(device, core_only=False), device, [ROW_MNIST], ("forward", "train_step"),
            **{name: value})])


def _latency() -> list[Case]:
    shapes = [Shape(batch=1, seq_len=t, input_size=h, hidden_size=h)
              for h in LATENCY_HIDDEN for t in LATENCY_SEQ_LENS]
    return _both_devices(lambda device: _matrix(impl_unrolls(device), device, shapes,
                                                ("forward",)))


LATENCY_SEQ_LENS = (1, 16, 100)
LATENCY_HIDDEN = (128, 512)
@dataclass(frozen=True)
class Preset:
    """A named case list, declared once: its cases, its help text and its rounds policy."""

    name: str
    build: Callable[[], list[Case]]
    help: str
    rounds: RoundsPolicy

    def cases(self) -> list[Case]:
        """The preset's cases (built anew on each call)."""
        return self.build()


# Rounds: smoke keeps >= 10 so `check` has power; heavy presets get a time budget per case.
# Smoke's cases take 0.5-2 ms: at 50 rounds their median was known to ±5 % in only 17 of 45
# cases on an idle 2-core VM, at up to 200 rounds (0.5 s) in 40 of 45.
PRESETS = {p.name: p for p in (
    Preset("smoke", _smoke, "tiny shape, every impl x unroll x phase on CPU (cuDNN shows as "
           "skipped); seconds",
           RoundsPolicy(min_rounds=10, max_rounds=200, warmup=2, budget_s=0.5)),
    Preset("cpu", _cpu, "row-MNIST B128 T28 I28 H128 and heavy B64 T100 I128 H512, all impls, "
           "all phases",
           RoundsPolicy(min_rounds=10, max_rounds=200, warmup=2, budget_s=2.0)),
    Preset("gpu", _gpu, "the cpu shapes plus H1024 on the GPU, cuDNN and the Keras use_cudnn "
           "variants",
           RoundsPolicy(min_rounds=20, max_rounds=500, warmup=5, budget_s=2.0)),
    Preset("scaling", _scaling, "backward-pass sweeps of seq_len, hidden and batch for the LSTM "
           "impls",
           RoundsPolicy(min_rounds=10, max_rounds=100, warmup=2, budget_s=1.5)),
    Preset("precision", _across("dtype"), "row-MNIST shape in fp32, bf16 and fp16 (Keras mixed "
           "precision), forward and train step; use --device to pick cpu or gpu",
           RoundsPolicy(min_rounds=10, max_rounds=200, warmup=2, budget_s=1.0)),
    Preset("ragged", _across("lengths"), "row-MNIST shape, full against right-padded batches "
           "with lengths in [T/2, T]",
           RoundsPolicy(min_rounds=10, max_rounds=200, warmup=2, budget_s=1.0)),
    Preset("xla", _across("xla"), "row-MNIST shape with jit_compile off and on (error rows where "
           "XLA has no kernel)",
           RoundsPolicy(min_rounds=10, max_rounds=200, warmup=2, budget_s=1.0)),
    # p99 needs samples: at 300 rounds, 3 lie above it.
    Preset("latency", _latency, "batch 1 forward, T 1/16/100, H 128/512: p50/p90/p99 per call; "
           "run it at --threads 1 and at all threads",
           RoundsPolicy(min_rounds=300, max_rounds=3000, warmup=20, budget_s=1.0)),
)}


def preset(name: str) -> list[Case]:
    """The cases of preset `name`, or a UserError listing the valid names."""
    try:
        found = PRESETS[name]
    except KeyError:
        raise UserError(f"unknown preset {name!r}; valid: {', '.join(PRESETS)}") from None
    return found.cases()
