"""Typed result rows: the one module that spells the keys of a step-time row, with value checks.

`CaseRow` (one step-time case, its `CaseStats`) is a frozen dataclass; the time-to-accuracy
rows (`TTARow`) are in bench.tta_rows and use the value checks defined here. `from_dict`
checks every value that report, compare and check read and raises a one-line UserError
naming the file, the row and the field; `to_dict` gives back the stored form (the current
schema). Unknown keys are kept in `extra` and round-trip.

Value rules:
- times that are ranked or divided (step-time samples, median, min, mean) are finite and lie
  in [MIN_SECONDS, MAX_SECONDS]; spreads and durations that are only shown (IQR, stddev,
  compile time, TTA times) are finite, >= 0 and at most MAX_SECONDS;
- counts (rounds, steps, evals, memory bytes) are integers >= 0; rates and sizes (flops,
  GFLOP/s, % of peak) are finite numbers in [0, MAX_NUMBER]; accuracies lie in [0, 1];
- None (JSON null, also what NaN is stored as) means "not measured" and is always allowed.
"""

from __future__ import annotations

import math
import statistics
from dataclasses import dataclass, field
from typing import Any

from bench.cases import Case, param_types
from bench.errors import UserError

STATUSES = ("ok", "skipped", "error")
MIN_SECONDS = 1e-12  # below any real timed call; keeps ratios and log axes finite
MAX_SECONDS = 1e7  # about 4 months
MAX_NUMBER = 1e18
# The parameters of a step-time case (bench.cases.Case.params) and their JSON types.
CASE_PARAMS: dict[str, type] = param_types()  # one per case dimension (bench.cases)
SCALARS = (str, int, float, bool, type(None))
_TYPE_NAMES = {str: "a string", int: "an integer", bool: "true/false"}


@dataclass(frozen=True)
class Where:
    """Where a value sits, for error messages: file, row (e.g. `case lstm/...`), field."""

    source: str
    row: str

    def fail(self, field_name: str, what: str) -> UserError:
        """A one-line UserError naming the file, the row and the field."""
        return UserError(f"{self.source}: {self.row}: field {field_name} {what}")


def _number(value: Any, where: Where, name: str, *, low: float, high: float,
            integer: bool = False) -> float | int | None:
    if value is None:
        return None
    kind = "an integer" if integer else "a number"
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise where.fail(name, f"is {_show(value)}, not {kind}")
    if integer and isinstance(value, float):
        if not value.is_integer():
            raise where.fail(name, f"is {_show(value)}, not {kind}")
        value = int(value)
    try:
        as_float = float(value)
    except OverflowError:
        raise where.fail(name, f"is {_show(value)}, out of range") from None
    if not math.isfinite(as_float):
        raise where.fail(name, f"is {_show(value)}, not a finite number")
    if not low <= as_float <= high:
        raise where.fail(name, f"is {_show(value)}, outside [{low:g}, {high:g}]")
    return value if integer else as_float


def _show(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 40 else text[:39] + "…"


def time_s(value, where: Where, name: str) -> float | None:
    """A ranked or divided time: finite, in [MIN_SECONDS, MAX_SECONDS], or None."""
    return _number(value, where, name, low=MIN_SECONDS, high=MAX_SECONDS)


def is_time(value) -> bool:
    """True when `value` is a time that time_s accepts (and not None)."""
    try:
        return time_s(value, Where("", ""), "") is not None
    except UserError:
        return False


def duration_s(value, where: Where, name: str) -> float | None:
    """A shown duration or spread: finite, in [0, MAX_SECONDS], or None."""
    return _number(value, where, name, low=0.0, high=MAX_SECONDS)


def count(value, where: Where, name: str) -> int | None:
    """An integer count >= 0, or None."""
    return _number(value, where, name, low=0, high=MAX_NUMBER, integer=True)


def integer(value, where: Where, name: str) -> int | None:
    """Any integer (e.g. a seed), or None."""
    return _number(value, where, name, low=-MAX_NUMBER, high=MAX_NUMBER, integer=True)


def amount(value, where: Where, name: str) -> float | None:
    """A finite number in [0, MAX_NUMBER] (a rate or size), or None."""
    return _number(value, where, name, low=0.0, high=MAX_NUMBER)


def fraction(value, where: Where, name: str) -> float | None:
    """A number in [0, 1] (an accuracy), or None."""
    return _number(value, where, name, low=0.0, high=1.0)


def text(value, where: Where, name: str) -> str | None:
    """A string, or None."""
    if value is not None and not isinstance(value, str):
        raise where.fail(name, f"is {_show(value)}, not a string")
    return value


def flag(value, where: Where, name: str) -> bool | None:
    """A boolean, or None."""
    if value is not None and not isinstance(value, bool):
        raise where.fail(name, f"is {_show(value)}, not true/false")
    return value


def mapping(value, where: Where, name: str) -> dict:
    """A JSON object; None counts as empty."""
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise where.fail(name, f"is {_show(value)}, not an object")
    return value


def items(value, where: Where, name: str) -> list:
    """A JSON array; None counts as empty."""
    if value is None:
        return []
    if not isinstance(value, list):
        raise where.fail(name, f"is {_show(value)}, not a list")
    return value


def status(value, where: Where) -> str:
    """One of STATUSES."""
    if value not in STATUSES:
        raise where.fail("status", f"is {_show(value)}, not one of {', '.join(STATUSES)}")
    return value


def _extra(raw: dict, known) -> dict:
    return {k: v for k, v in raw.items() if k not in known}


def _nulls(raw: dict, known) -> frozenset:
    """Known keys stored as null, so that to_dict writes them back as they were."""
    return frozenset(k for k in known if k in raw and raw[k] is None)


def _present(obj, names) -> dict:
    return {k: getattr(obj, k) for k in names
            if getattr(obj, k) is not None or k in obj.nulls}


# ---------------------------------------------------------------- step time


def case_params(params: Any, where: Where) -> dict:
    """Checked case parameters (each of CASE_PARAMS of its type); UserError if not."""
    if not isinstance(params, dict):
        raise where.fail("case", "is missing or not an object")
    for key, typ in CASE_PARAMS.items():
        value = params.get(key)
        if isinstance(value, bool) is not (typ is bool) or not isinstance(value, typ):
            raise where.fail(f"case.{key}", f"is {_show(value)}, not {_TYPE_NAMES[typ]}")
        if typ is int and not 1 <= value <= MAX_NUMBER:
            raise where.fail(f"case.{key}", f"is {value}, not a positive integer")
    for key, value in params.items():
        if not isinstance(value, SCALARS):
            raise where.fail(f"case.{key}", f"is {_show(value)}, not a plain value")
    return dict(params)


def check_case_id(case_id: str, case: dict | Case, where: Where) -> None:
    """UserError unless `case_id` is the id the case (or its checked parameters) spells."""
    spelled = (case if isinstance(case, Case) else Case.from_params(case)).id
    if spelled != case_id:
        raise where.fail("id", f"disagrees with its parameters, which spell {spelled}")


# The keys of a step-time row's `stats`, spelled here only: they are also the stat columns of
# results.csv and of every DataFrame built from rows, and the keys of the statistics the
# measuring side computes; every other module uses these names (or the typed fields).
STAT_COLUMNS = (MEDIAN_S, MEDIAN_LO_S, MEDIAN_HI_S, IQR_S, MIN_S, MEAN_S, STDDEV_S, P90_S, P99_S,
                ROUNDS, COMPILE_S, FLOPS, GFLOPS, PCT_PEAK) = (
    "median_s", "median_lo_s", "median_hi_s", "iqr_s", "min_s", "mean_s", "stddev_s", "p90_s",
    "p99_s", "rounds", "compile_s", "flops", "gflops", "pct_peak")
SAMPLES_S, WARNINGS = "samples_s", "warnings"

_CASE_STATS = {MEDIAN_S: time_s, MEDIAN_LO_S: time_s, MEDIAN_HI_S: time_s, MIN_S: time_s,
               MEAN_S: time_s, IQR_S: duration_s, STDDEV_S: duration_s, P90_S: time_s,
               P99_S: time_s, COMPILE_S: duration_s, ROUNDS: count, FLOPS: amount,
               GFLOPS: amount, PCT_PEAK: amount}


@dataclass(frozen=True)
class CaseStats:
    """The measured numbers of one step-time case (`stats` in the file)."""

    samples_s: tuple[float, ...] = ()
    median_s: float | None = None
    median_lo_s: float | None = None  # 95 % interval of the median (bench.intervals)
    median_hi_s: float | None = None
    iqr_s: float | None = None
    min_s: float | None = None
    mean_s: float | None = None
    stddev_s: float | None = None
    p90_s: float | None = None
    p99_s: float | None = None
    rounds: int | None = None
    compile_s: float | None = None
    flops: float | None = None
    gflops: float | None = None
    pct_peak: float | None = None
    warnings: tuple[str, ...] = ()
    extra: dict = field(default_factory=dict, compare=False)
    nulls: frozenset = field(default=frozenset(), compare=False, repr=False)

    # Stat columns of results.csv, in order (samples and warnings are added as text).
    COLUMNS = STAT_COLUMNS

    @classmethod
    def from_dict(cls, raw: Any, where: Where) -> CaseStats:
        """Checked stats; raises a UserError naming the field."""
        raw = mapping(raw, where, "stats")
        samples = items(raw.get(SAMPLES_S), where, f"stats.{SAMPLES_S}")
        warnings = items(raw.get(WARNINGS), where, f"stats.{WARNINGS}")
        for i, w in enumerate(warnings):
            text(w, where, f"stats.{WARNINGS}[{i}]")
        values = {k: check(raw.get(k), where, f"stats.{k}") for k, check in _CASE_STATS.items()}
        return cls(samples_s=tuple(_sample(s, where, i) for i, s in enumerate(samples)),
                   warnings=tuple(warnings), **values,
                   extra=_extra(raw, {SAMPLES_S, WARNINGS, *_CASE_STATS}),
                   nulls=_nulls(raw, _CASE_STATS))

    def to_dict(self) -> dict:
        """The stored form: samples, then the measured numbers that exist, then warnings."""
        out: dict = {SAMPLES_S: list(self.samples_s)}
        out.update(_present(self, self.COLUMNS))
        out[WARNINGS] = list(self.warnings)
        out.update(self.extra)
        return out

    def median(self) -> float | None:
        """The stored median, else the median of the samples, else None."""
        if self.median_s is not None:
            return self.median_s
        return statistics.median(self.samples_s) if self.samples_s else None


def _sample(value, where: Where, index: int) -> float:
    name = f"stats.{SAMPLES_S}[{index}]"
    if value is None:
        raise where.fail(name, "is null, not a time")
    return time_s(value, where, name)


# Optional row fields (absent in older files: None = not recorded): the kernel that did the
# recurrent math (bench.analysis.kernels), the case's peak memory in bytes and how it was taken.
CASE_FACTS = {"kernel": text, "memory_peak_bytes": count, "memory_method": text}


@dataclass(frozen=True)
class CaseRow:
    """One step-time case: id, parameters, status, reason, stats, code version, kernel, memory."""

    id: str
    case: Case
    status: str
    reason: str | None = None
    stats: CaseStats = field(default_factory=CaseStats)
    code_version: str | None = None
    kernel: str | None = None
    memory_peak_bytes: int | None = None
    memory_method: str | None = None
    extra: dict = field(default_factory=dict, compare=False)
    nulls: frozenset = field(default=frozenset(), compare=False, repr=False)
    case_extra: dict = field(default_factory=dict, compare=False)  # unknown `case` keys, kept

    @classmethod
    def from_dict(cls, raw: Any, source: str = "results", index: int = 0) -> CaseRow:
        """A checked row; raises a UserError naming the file, the case id and the field."""
        where = Where(source, f"cases[{index}]")
        if not isinstance(raw, dict):
            raise UserError(f"{source}: cases[{index}] is not an object")
        if not isinstance(raw.get("id"), str) or not raw["id"]:
            raise where.fail("id", "is missing or not a string")
        where = Where(source, f"case {raw['id']}")
        params = case_params(raw.get("case"), where)
        if "stats" not in raw:
            raise where.fail("stats", "is missing")
        return cls(id=raw["id"], case=Case.from_params(params),
                   status=status(raw.get("status"), where),
                   reason=text(raw.get("reason"), where, "reason"),
                   stats=CaseStats.from_dict(raw["stats"], where),
                   code_version=text(raw.get("code_version"), where, "code_version"),
                   **{k: check(raw.get(k), where, k) for k, check in CASE_FACTS.items()},
                   extra=_extra(raw, {"id", "case", "status", "reason", "stats",
                                      "code_version", *CASE_FACTS}),
                   nulls=_nulls(raw, CASE_FACTS), case_extra=_extra(params, CASE_PARAMS))

    def to_dict(self) -> dict:
        """The stored form of the row (the current schema)."""
        return {"id": self.id, "case": {**self.case.params(), **self.case_extra},
                "status": self.status,
                "reason": self.reason, "stats": self.stats.to_dict(),
                "code_version": self.code_version, **_present(self, CASE_FACTS), **self.extra}

    @property
    def ok(self) -> bool:
        """True when the case ran and was timed."""
        return self.status == "ok"

    def median(self) -> float | None:
        """The row's median time (stored, else of its samples); None if it has neither."""
        return self.stats.median()


def first_duplicate(ids) -> str | None:
    """The first id, in order, that appeared before; None when all are distinct."""
    seen: set = set()
    for one in ids:
        if one in seen:
            return one
        seen.add(one)
    return None
