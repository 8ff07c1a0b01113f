"""Typed time-to-accuracy rows: `TTARow` (one training run) and its `TTAStats`, with checks.

The one module that spells the keys of a `tta` row; the value rules and checkers are
bench.rows'. `from_dict` raises a one-line UserError naming the file, the row and the field;
`to_dict` gives back the stored form; unknown keys are kept in `extra` and round-trip.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from bench.errors import UserError
from bench.rows import (
    MAX_NUMBER,
    SCALARS,
    Where,
    _extra,
    _nulls,
    _number,
    _present,
    _show,
    amount,
    count,
    duration_s,
    flag,
    fraction,
    integer,
    items,
    mapping,
    status,
    text,
)

TIME_TO_TARGET_S = "time_to_target_s"  # the key readers name (history metric, report column)
_TTA_STATS = {"reached": flag, TIME_TO_TARGET_S: duration_s, "steps": count,
              "epochs": amount, "best_acc": fraction, "final_acc": fraction,
              "train_s": duration_s, "eval_s": duration_s, "compile_s": duration_s,
              "build_s": duration_s, "diverged": flag, "evals": count}


# Curve points: evaluation step, epoch, training wall time, held-out accuracy, loss.
_CURVE_POINT = {"step": count, "epoch": amount, "wall_s": duration_s, "heldout_acc": fraction,
                "train_loss": lambda v, w, n: _number(v, w, n, low=-MAX_NUMBER, high=MAX_NUMBER)}


@dataclass(frozen=True)
class TTAStats:
    """The outcome of one time-to-accuracy run (`stats` in the file); every field optional."""

    reached: bool | None = None
    time_to_target_s: float | None = None
    steps: int | None = None
    epochs: float | None = None
    best_acc: float | None = None
    final_acc: float | None = None
    train_s: float | None = None
    eval_s: float | None = None
    compile_s: float | None = None
    build_s: float | None = None
    diverged: bool | None = None
    evals: int | None = None
    curve: tuple[dict, ...] = ()
    extra: dict = field(default_factory=dict, compare=False)
    nulls: frozenset = field(default=frozenset(), compare=False, repr=False)


    @classmethod
    def from_dict(cls, raw: Any, where: Where) -> TTAStats:
        """Checked TTA stats; raises a UserError naming the field."""
        raw = mapping(raw, where, "stats")
        values = {k: check(raw.get(k), where, f"stats.{k}") for k, check in _TTA_STATS.items()}
        curve = []
        for i, point in enumerate(items(raw.get("curve"), where, "stats.curve")):
            checked = mapping(point, where, f"stats.curve[{i}]")
            for key, check in _CURVE_POINT.items():
                check(checked.get(key), where, f"stats.curve[{i}].{key}")
            curve.append(dict(checked))
        return cls(**values, curve=tuple(curve), extra=_extra(raw, {"curve", *_TTA_STATS}),
                   nulls=_nulls(raw, _TTA_STATS))

    def to_dict(self) -> dict:
        """The stored form: the fields that exist, curve last."""
        out = _present(self, _TTA_STATS)
        out.update(self.extra)
        out["curve"] = [dict(p) for p in self.curve]
        return out


# Settings that readers use; other settings are kept as they are (plain values only).
_TTA_SETTINGS = {"task": text, "impl": text, "unroll": text, "device": text,
                 "hidden_size": count, "seed": integer, "target": fraction, "budget_s": amount,
                 "budget_epochs": amount, "budget_steps": count, "heldout_classes": count,
                 "heldout_majority": fraction}


@dataclass(frozen=True)
class TTARow:
    """One time-to-accuracy run: id, settings, status, reason, stats."""

    id: str
    status: str
    settings: dict = field(default_factory=dict)
    reason: str | None = None
    stats: TTAStats = field(default_factory=TTAStats)
    extra: dict = field(default_factory=dict, compare=False)


    @classmethod
    def from_dict(cls, raw: Any, source: str = "results", index: int = 0) -> TTARow:
        """A checked row; raises a UserError naming the file, the run id and the field."""
        if not isinstance(raw, dict):
            raise UserError(f"{source}: tta[{index}] is not an object")
        where = Where(source, f"tta[{index}]")
        if not isinstance(raw.get("id"), str) or not raw["id"]:
            raise where.fail("id", "is missing or not a string")
        where = Where(source, f"tta run {raw['id']}")
        settings = mapping(raw.get("settings"), where, "settings")
        for key, check in _TTA_SETTINGS.items():
            check(settings.get(key), where, f"settings.{key}")
        for key, value in settings.items():
            if not isinstance(value, SCALARS):
                raise where.fail(f"settings.{key}", f"is {_show(value)}, not a plain value")
        return cls(id=raw["id"], status=status(raw.get("status"), where),
                   settings=dict(settings), reason=text(raw.get("reason"), where, "reason"),
                   stats=TTAStats.from_dict(raw.get("stats"), where),
                   extra=_extra(raw, {"id", "status", "settings", "reason", "stats"}))

    def to_dict(self) -> dict:
        """The stored form of the row (the current schema)."""
        return {"id": self.id, "settings": dict(self.settings), "status": self.status,
                "reason": self.reason, "stats": self.stats.to_dict(), **self.extra}

    @property
    def group(self) -> str:
        """The run id without its seed: runs of one group differ only in the seed."""
        return self.id.rsplit("/seed", 1)[0]
