"""Typed parts of the A/B document (ab.json): settings, sides, per-side cases, verdict rows.

The one module that spells the keys of those parts; `from_dict` checks every value and raises
a one-line UserError naming the file, the row and the field; `to_dict` gives back the stored
form; unknown keys are kept in `extra` and round-trip. The document itself, its schema history
and loading: bench.ab_results. No TensorFlow here.
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields
from typing import Any

from bench import rows
from bench.errors import UserError
from bench.rows import Where
from bench.verdict import AB_ORDER, IMPROVEMENT, REGRESSION

SIDES = ("A", "B")
# Status of a case on one side: as the worker reported it, or not reported at all.
SIDE_STATUSES = ("ok", "skipped", "error", "missing")
TEST_METHODS = ("holm", "bonferroni", "bonferroni-looks")  # -looks: cases and looks (v3)
# Environment-fingerprint fields that are software versions (what `Side.versions` returns).
VERSION_FIELDS = ("python", "tensorflow", "keras", "tf_keras", "numpy", "cuda", "cudnn",
                  "rnnbench")


def known_keys(cls) -> set[str]:
    return {f.name for f in fields(cls)} - {"extra", "source"}


def _extra(raw: dict, cls) -> dict:
    return {k: v for k, v in raw.items() if k not in known_keys(cls)}


def _ratio(value, where: Where, name: str) -> float | None:
    """A positive finite ratio, or None."""
    return rows._number(value, where, name, low=1e-300, high=rows.MAX_NUMBER)


def one_of(value, valid, where: Where, name: str):
    if value not in valid:
        raise where.fail(name, f"is {rows._show(value)}, not one of {', '.join(valid)}")
    return value


@dataclass(frozen=True)
class Settings:
    """What the run was asked to do: pairs, generations, rounds, warm-up, threshold, alpha..."""

    blocks: int | None = None
    generations: int | None = None
    rounds: int | None = None
    warmup: int | None = None
    threshold: float | None = None
    alpha: float | None = None
    threads: int | None = None
    xla: bool | None = None
    equivalence: bool | None = None
    target_mde: float | None = None      # None: every case got every pair (fixed design)
    look_every: int | None = None        # passes between looks (adaptive runs)
    rejection_looks: int | None = None   # looks at which a change may be called
    extra: dict = field(default_factory=dict, compare=False)

    @classmethod
    def from_dict(cls, raw: Any, where: Where) -> Settings:
        """Checked settings; UserError naming the field."""
        raw = rows.mapping(raw, where, "settings")
        counts = {k: rows.count(raw.get(k), where, f"settings.{k}")
                  for k in ("blocks", "generations", "rounds", "warmup", "threads",
                            "look_every", "rejection_looks")}
        return cls(**counts, threshold=rows.amount(raw.get("threshold"), where,
                                                   "settings.threshold"),
                   target_mde=rows.amount(raw.get("target_mde"), where, "settings.target_mde"),
                   alpha=rows.fraction(raw.get("alpha"), where, "settings.alpha"),
                   xla=rows.flag(raw.get("xla"), where, "settings.xla"),
                   equivalence=rows.flag(raw.get("equivalence"), where, "settings.equivalence"),
                   extra=_extra(raw, cls))

    def to_dict(self) -> dict:
        """The stored form."""
        return {**{k: getattr(self, k) for k in known_keys(type(self))}, **self.extra}


@dataclass(frozen=True)
class Side:
    """One side: interpreter, source (dir, git ref and its commit), env vars, fingerprint."""

    name: str
    python: str | None = None
    src: str | None = None
    src_kind: str | None = None
    src_dir: str | None = None
    src_sha: str | None = None
    env_vars: dict = field(default_factory=dict)
    hello: dict | None = None
    env_fingerprint: dict | None = None
    extra: dict = field(default_factory=dict, compare=False)

    @classmethod
    def from_dict(cls, raw: Any, name: str, where: Where) -> Side:
        """A checked side; UserError naming the field."""
        raw = rows.mapping(raw, where, f"sides.{name}")
        texts = {k: rows.text(raw.get(k), where, f"sides.{name}.{k}")
                 for k in ("python", "src", "src_kind", "src_dir", "src_sha")}
        env_vars = rows.mapping(raw.get("env_vars"), where, f"sides.{name}.env_vars")
        for key, value in env_vars.items():
            rows.text(value, where, f"sides.{name}.env_vars.{key}")
        opt = {k: rows.mapping(raw[k], where, f"sides.{name}.{k}")
               if raw.get(k) is not None else None for k in ("hello", "env_fingerprint")}
        return cls(name=name, **texts, env_vars=dict(env_vars), **opt, extra=_extra(raw, cls))

    def to_dict(self) -> dict:
        """The stored form (without the name: it is the key in `sides`)."""
        return {**{k: getattr(self, k) for k in known_keys(type(self)) - {"name"}}, **self.extra}

    @property
    def commit(self) -> str | None:
        """The commit of the side's source: the resolved git ref, else the fingerprint's."""
        return self.src_sha or (self.env_fingerprint or {}).get("git_commit")

    @property
    def versions(self) -> dict:
        """Software versions of the side's interpreter (VERSION_FIELDS that were recorded)."""
        env = self.env_fingerprint or {}
        return {k: env[k] for k in VERSION_FIELDS if env.get(k) is not None}


@dataclass(frozen=True)
class SideCase:
    """One case on one side: status, reason, code version, compile time, kernel, peak memory
    over build and first call, raw blocks."""

    status: str
    reason: str | None = None
    code_version: str | None = None
    compile_s: float | None = None
    kernel: str | None = None
    memory_peak_bytes: int | None = None
    memory_method: str | None = None
    blocks: tuple[tuple[float, ...], ...] = ()
    extra: dict = field(default_factory=dict, compare=False)

    @classmethod
    def from_dict(cls, raw: Any, where: Where, name: str) -> SideCase:
        """A checked side entry; UserError naming the field."""
        raw = rows.mapping(raw, where, name)
        blocks = []
        for i, block in enumerate(rows.items(raw.get("blocks"), where, f"{name}.blocks")):
            values = rows.items(block, where, f"{name}.blocks[{i}]")
            blocks.append(tuple(_round(v, where, f"{name}.blocks[{i}][{j}]")
                                for j, v in enumerate(values)))
        return cls(status=one_of(raw.get("status"), SIDE_STATUSES, where, f"{name}.status"),
                   reason=rows.text(raw.get("reason"), where, f"{name}.reason"),
                   code_version=rows.text(raw.get("code_version"), where, f"{name}.code_version"),
                   compile_s=rows.duration_s(raw.get("compile_s"), where, f"{name}.compile_s"),
                   kernel=rows.text(raw.get("kernel"), where, f"{name}.kernel"),
                   memory_peak_bytes=rows.count(raw.get("memory_peak_bytes"), where,
                                                f"{name}.memory_peak_bytes"),
                   memory_method=rows.text(raw.get("memory_method"), where,
                                           f"{name}.memory_method"),
                   blocks=tuple(blocks), extra=_extra(raw, cls))

    def to_dict(self) -> dict:
        """The stored form."""
        out = {k: getattr(self, k) for k in known_keys(type(self))}
        out["blocks"] = [list(b) for b in self.blocks]
        return {**out, **self.extra}


def _round(value, where: Where, name: str) -> float:
    if value is None:
        raise where.fail(name, "is null, not a time")
    return rows.time_s(value, where, name)


@dataclass(frozen=True)
class Verdict:
    """A verdict row: medians, ratio B/A, its interval and level, p, mde, pairs, verdict."""

    case: str
    verdict: str
    a_median: float | None = None
    b_median: float | None = None
    ratio: float | None = None
    ci_low: float | None = None
    ci_high: float | None = None
    ci_level: float | None = None   # coverage of [ci_low, ci_high], two-sided
    p: float | None = None          # one-sided, in the direction of the ratio
    p_adj: float | None = None      # p after the multiple-testing correction (`test.method`)
    mde: float | None = None        # smallest slowdown the run could detect (None: none)
    pairs: int | None = None
    pairs_needed: int | None = None
    note: str = ""
    stop: str | None = None         # why the case's measurement ended, and after how many pairs
    extra: dict = field(default_factory=dict, compare=False)

    @classmethod
    def from_dict(cls, raw: Any, where: Where, name: str = "verdict") -> Verdict:
        """A checked verdict row; UserError naming the field."""
        raw = rows.mapping(raw, where, name)
        if not isinstance(raw.get("case"), str):
            raise where.fail(f"{name}.case", "is missing or not a string")
        low, high = (_ratio(raw.get(k), where, f"{name}.{k}") for k in ("ci_low", "ci_high"))
        if low is not None and high is not None and low > high:
            raise where.fail(f"{name}.ci_low", f"is above ci_high ({low:g} > {high:g})")
        return cls(case=raw["case"],
                   verdict=one_of(raw.get("verdict"), (*AB_ORDER, "-"), where,
                                   f"{name}.verdict"),
                   **{k: rows.time_s(raw.get(k), where, f"{name}.{k}")
                      for k in ("a_median", "b_median")},
                   ratio=_ratio(raw.get("ratio"), where, f"{name}.ratio"), ci_low=low,
                   ci_high=high,
                   **{k: rows.fraction(raw.get(k), where, f"{name}.{k}")
                      for k in ("ci_level", "p", "p_adj")},
                   mde=rows._number(raw.get("mde"), where, f"{name}.mde", low=-1.0,
                                    high=rows.MAX_NUMBER),
                   **{k: rows.count(raw.get(k), where, f"{name}.{k}")
                      for k in ("pairs", "pairs_needed")},
                   note=rows.text(raw.get("note"), where, f"{name}.note") or "",
                   stop=rows.text(raw.get("stop"), where, f"{name}.stop"),
                   extra=_extra(raw, cls))

    def to_dict(self) -> dict:
        """The stored form."""
        return {**{k: getattr(self, k) for k in known_keys(type(self))}, **self.extra}

    @property
    def significant(self) -> bool:
        """True for a regression or an improvement (a change the test called significant)."""
        return self.verdict in (REGRESSION, IMPROVEMENT)


@dataclass(frozen=True)
class ABCase:
    """One case of the run: id, parameters, both sides' entries and the verdict (if computed)."""

    id: str
    params: dict
    a: SideCase
    b: SideCase
    verdict: Verdict | None = None
    extra: dict = field(default_factory=dict, compare=False)

    @classmethod
    def from_dict(cls, raw: Any, source: str, index: int) -> ABCase:
        """A checked case; UserError naming the file, the case and the field."""
        if not isinstance(raw, dict):
            raise UserError(f"{source}: cases[{index}] is not an object")
        where = Where(source, f"cases[{index}]")
        if not isinstance(raw.get("id"), str) or not raw["id"]:
            raise where.fail("id", "is missing or not a string")
        where = Where(source, f"case {raw['id']}")
        params = rows.case_params(raw.get("case"), where)
        rows.check_case_id(raw["id"], params, where)
        verdict = (Verdict.from_dict(raw["verdict"], where)
                   if raw.get("verdict") is not None else None)
        if verdict is not None and verdict.case != raw["id"]:
            raise where.fail("verdict.case", f"is {rows._show(verdict.case)}, not the case id")
        return cls(id=raw["id"], params=dict(params), a=SideCase.from_dict(raw.get("a"), where,
                                                                           "a"),
                   b=SideCase.from_dict(raw.get("b"), where, "b"), verdict=verdict,
                   extra={k: v for k, v in raw.items()
                          if k not in ("id", "case", "a", "b", "verdict")})

    def to_dict(self) -> dict:
        """The stored form."""
        return {"id": self.id, "case": dict(self.params), "a": self.a.to_dict(),
                "b": self.b.to_dict(),
                "verdict": self.verdict.to_dict() if self.verdict else None, **self.extra}

    def side(self, name: str) -> SideCase:
        """The entry of side "A" or "B"."""
        return self.a if name == "A" else self.b


@dataclass(frozen=True)
class TestMethod:
    """How the verdicts were reached: correction method, family-wise alpha, judged cases."""

    method: str
    alpha: float | None = None
    judged: int | None = None
    extra: dict = field(default_factory=dict, compare=False)

    @classmethod
    def from_dict(cls, raw: Any, where: Where) -> TestMethod:
        """A checked test description; UserError naming the field."""
        raw = rows.mapping(raw, where, "test")
        return cls(method=one_of(raw.get("method"), TEST_METHODS, where, "test.method"),
                   alpha=rows.fraction(raw.get("alpha"), where, "test.alpha"),
                   judged=rows.count(raw.get("judged"), where, "test.judged"),
                   extra=_extra(raw, cls))

    def to_dict(self) -> dict:
        """The stored form."""
        return {"method": self.method, "alpha": self.alpha, "judged": self.judged, **self.extra}
