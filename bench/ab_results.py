"""The A/B document (`ab.json`): schema, typed objects that own their JSON, validated load.

No TensorFlow here: the writer (`rnnbench ab`), report/compare, the CI tools and the history
store all read and write ab.json through `ABDocument`.

Format history (`schema_version` of ab.json):
  1 — first version: settings, sides (python, src, env vars, hello, env fingerprint),
      differences, cases[] with per-side status, code_version and raw blocks, verdict rows;
      pass_generation (worker generation of each pass) and process_sd added within v1
      (absent: one generation); per-side `kernel` added within v1 (absent: not recorded).
      The interval [ci_low, ci_high] was two-sided at 1 - alpha while the verdicts came from
      one-sided Holm-adjusted tests, so the two could disagree.
  2 — every verdict row states its interval: `ci_level` (coverage of [ci_low, ci_high]); the
      document names its `test` (method, alpha, judged cases). process_sd is null when the
      process-to-process spread could not be measured (one worker generation); v1 stored 0.
      Upgrading v1 sets ci_level = 1 - alpha, test method "holm", and process_sd null for a
      one-generation run.
  3 — adaptive passes: settings `target_mde` (null: every case got every pair), `look_every`
      and `rejection_looks` (bench.analysis.ab_sequential); every verdict row states its
      `stop` (why its measurement ended, after how many pairs). Upgrading v2 sets target_mde
      null (v2 runs were fixed) and leaves `stop` null. `setup` (optional): per worker, its
      side, generation and the seconds of its set-up steps (wall, start, check, build,
      first_call, settle, total).
Loaders upgrade older versions step by step (`_UPGRADES`) and reject newer ones.
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bench import rows
from bench.ab_rows import SIDES, ABCase, Settings, Side, TestMethod, Verdict, one_of
from bench.errors import UserError
from bench.rows import Where
from bench.storage import parse_json, read_bytes, upgrade_document

SCHEMA_VERSION = 3
KIND = "rnnbench-ab"
AB_JSON = "ab.json"
# Document status: measuring, finished, cut short (Ctrl-C), stopped by an error.
DOC_STATUSES = ("running", "complete", "partial", "failed")


def _v1_to_v2(doc: dict) -> dict:
    """v2 states the interval of each verdict row and leaves an unmeasured process_sd null."""
    settings = doc.get("settings") if isinstance(doc.get("settings"), dict) else {}
    alpha = settings.get("alpha", 0.05)
    level = 1.0 - alpha if isinstance(alpha, int | float) and not isinstance(alpha, bool) \
        else None
    cases = doc.get("cases") if isinstance(doc.get("cases"), list) else []
    for params in [c.get("case") for c in cases if isinstance(c, dict)]:
        if isinstance(params, dict):  # files that predate the `lengths` dimension
            params.setdefault("lengths", "full")
    for verdict in [c.get("verdict") for c in cases if isinstance(c, dict)] + \
            [doc.get("summary")]:
        if isinstance(verdict, dict) and verdict.get("ci_low") is not None:
            verdict.setdefault("ci_level", level)
    gens = doc.get("pass_generation")
    labels = set(gens) if isinstance(gens, list) and all(
        isinstance(g, int) for g in gens) else set()
    out = {**doc, "schema_version": 2,
           "test": {"method": "holm", "alpha": alpha,
                    "judged": sum(1 for c in cases if isinstance(c, dict)
                                  and isinstance(c.get("verdict"), dict)
                                  and c["verdict"].get("p") is not None)}}
    if len(labels) < 2:
        out["process_sd"] = None
    return out


def _v2_to_v3(doc: dict) -> dict:
    """v3 runs may stop cases early; every v2 run measured each case for all its pairs."""
    settings = doc.get("settings")
    if isinstance(settings, dict):
        settings = {**settings, "target_mde": None}
    return {**doc, "schema_version": 3, "settings": settings}


# Upgraders: _UPGRADES[n] turns a version-n document into version n+1.
_UPGRADES: dict[int, Callable[[dict], dict]] = {1: _v1_to_v2, 2: _v2_to_v3}


def upgrade(doc: dict, source: str = "ab.json") -> dict:
    """Bring a document to SCHEMA_VERSION step by step; reject newer or unknown versions."""
    if isinstance(doc.get("schema_version"), bool):  # JSON true is not version 1
        raise UserError(f"{source}: schema_version {doc['schema_version']!r} is not a known "
                        "ab.json version")
    return upgrade_document(doc, _UPGRADES, SCHEMA_VERSION, source, "ab.json")


_DOC_TEXTS = ("run_id", "created_utc", "finished_utc", "command", "preset", "error")


@dataclass(frozen=True)
class ABDocument:
    """A loaded, checked ab.json: settings, both sides, cases with blocks and verdicts."""

    status: str
    settings: Settings
    sides: dict
    cases: tuple[ABCase, ...]
    run_id: str | None = None
    created_utc: str | None = None
    finished_utc: str | None = None
    command: str | None = None
    preset: str | None = None
    error: str | None = None
    elapsed_s: float | None = None
    differences: dict = field(default_factory=dict)
    passes_done: int = 0
    pass_generation: tuple[int, ...] = ()
    process_sd: float | None = None   # None: not measured (fewer than 2 generations)
    test: TestMethod | None = None
    summary: Verdict | None = None    # the geometric-mean row
    verdict_counts: dict = field(default_factory=dict)
    source: str = AB_JSON
    extra: dict = field(default_factory=dict, compare=False)

    @classmethod
    def from_dict(cls, doc: Any, source: str = AB_JSON) -> ABDocument:
        """Upgrade and check a document; a one-line UserError naming file, row and field."""
        if not isinstance(doc, dict) or doc.get("kind") != KIND:
            raise UserError(f"{source}: not an rnnbench A/B file (no \"kind\": \"{KIND}\")")
        doc = upgrade(dict(doc), source)
        where = Where(source, "run")
        for key, typ, kind in (("settings", dict, "an object"), ("sides", dict, "an object"),
                               ("cases", list, "a list")):
            if not isinstance(doc.get(key), typ):
                raise where.fail(key, f"is missing or not {kind}")
        sides = {name: Side.from_dict(doc["sides"].get(name), name, where) for name in SIDES}
        cases = tuple(ABCase.from_dict(c, source, i) for i, c in enumerate(doc["cases"]))
        twice = rows.first_duplicate(c.id for c in cases)
        if twice is not None:
            raise UserError(f"{source}: case {twice} appears twice")
        gens = rows.items(doc.get("pass_generation"), where, "pass_generation")
        gens = tuple(rows.count(g, where, f"pass_generation[{i}]") for i, g in enumerate(gens))
        passes = rows.count(doc.get("passes_done"), where, "passes_done") or 0
        if gens and len(gens) != passes:
            raise where.fail("pass_generation", f"has {len(gens)} entries for {passes} passes")
        status = one_of(doc.get("status"), DOC_STATUSES, where, "status")
        most = passes + (status != "complete")  # a run cut short may hold part of a pass
        for case in cases:
            for name in SIDES:
                if len(case.side(name).blocks) > most:
                    raise Where(source, f"case {case.id}").fail(
                        f"{name.lower()}.blocks", f"has {len(case.side(name).blocks)} blocks "
                                                  f"for {passes} passes done")
        counts = rows.mapping(doc.get("verdict_counts"), where, "verdict_counts")
        for key, value in counts.items():
            rows.count(value, where, f"verdict_counts.{key}")
        diff = rows.mapping(doc.get("differences"), where, "differences")
        _all_finite(doc, where)  # free-form parts too (fingerprints, differences, extras)
        known = {*_DOC_TEXTS, "schema_version", "kind", "status", "settings", "sides", "cases",
                 "elapsed_s", "differences", "passes_done", "pass_generation", "process_sd",
                 "test", "summary", "verdict_counts"}
        return cls(
            status=status,
            settings=Settings.from_dict(doc["settings"], where), sides=sides, cases=cases,
            **{k: rows.text(doc.get(k), where, k) for k in _DOC_TEXTS},
            elapsed_s=rows.duration_s(doc.get("elapsed_s"), where, "elapsed_s"),
            differences=dict(diff), passes_done=passes, pass_generation=gens,
            process_sd=rows.amount(doc.get("process_sd"), where, "process_sd"),
            test=TestMethod.from_dict(doc["test"], where) if doc.get("test") else None,
            summary=(Verdict.from_dict(doc["summary"], where, "summary")
                     if doc.get("summary") is not None else None),
            verdict_counts=dict(counts), source=source,
            extra={k: v for k, v in doc.items() if k not in known})

    def to_dict(self) -> dict:
        """The stored form (the current schema)."""
        out = {"schema_version": SCHEMA_VERSION, "kind": KIND, "status": self.status,
               **{k: getattr(self, k) for k in _DOC_TEXTS},
               "settings": self.settings.to_dict(),
               "sides": {name: side.to_dict() for name, side in self.sides.items()},
               "differences": self.differences, "passes_done": self.passes_done,
               "pass_generation": list(self.pass_generation),
               "cases": [c.to_dict() for c in self.cases], "elapsed_s": self.elapsed_s,
               "process_sd": self.process_sd,
               "test": self.test.to_dict() if self.test else None,
               "summary": self.summary.to_dict() if self.summary else None,
               "verdict_counts": self.verdict_counts}
        return {**out, **self.extra}

    def to_json(self) -> str:
        """The file's text: standard JSON (no NaN), indented, newline-terminated."""
        return json.dumps(self.to_dict(), indent=1, allow_nan=False) + "\n"

    @property
    def generations(self) -> int:
        """Worker generations that measured passes (1 for files without pass_generation)."""
        return len(set(self.pass_generation)) or 1

    def stats_input(self, keep: list[int] | None = None, rounds: int | None = None) -> dict:
        """Per-case input of bench.analysis.ab_stats.verdict_frame: statuses and raw blocks,
        optionally only the passes `keep` and the first `rounds` of each block."""
        out = {}
        for case in self.cases:
            entry = {}
            for name in SIDES:
                side = case.side(name)
                blocks = [list(b) for b in side.blocks]
                if keep is not None:
                    blocks = [blocks[k] for k in keep if k < len(blocks)]
                entry.update({f"{name.lower()}_status": side.status,
                              f"{name.lower()}_reason": side.reason,
                              name.lower(): [b[:rounds] for b in blocks]})
            out[case.id] = entry
        return out


def _all_finite(doc: dict, where: Where) -> None:
    """UserError naming the first non-finite number anywhere in the document (walked without
    recursion), so that what loads can always be written back as standard JSON."""
    stack: list[tuple[str, object]] = [("", doc)]
    while stack:
        name, value = stack.pop()
        if isinstance(value, dict):
            stack += [(f"{name}.{k}" if name else str(k), v) for k, v in value.items()]
        elif isinstance(value, list):
            stack += [(f"{name}[{i}]", v) for i, v in enumerate(value)]
        elif isinstance(value, float) and not math.isfinite(value):
            raise where.fail(name, f"is {value}, not a finite number")


def resolve_ab_path(path: str | os.PathLike) -> Path:
    """Accept an A/B run folder or an ab.json (or .json.gz) path; UserError if there is none."""
    path = Path(path)
    if path.is_dir():
        path = path / AB_JSON
    if not path.is_file():
        raise UserError(f"{path}: no such A/B file (expected an `rnnbench ab` run folder with "
                        f"{AB_JSON})")
    return path


def is_ab_folder(path: str | os.PathLike) -> bool:
    """True when `path` is a folder holding an ab.json (an `rnnbench ab` run folder)."""
    return Path(path).is_dir() and (Path(path) / AB_JSON).is_file()


def read_ab(path: str | os.PathLike) -> ABDocument:
    """Load, upgrade and check an A/B run (folder, ab.json or ab.json.gz); UserError if bad."""
    file = resolve_ab_path(path)
    return parse_ab(read_bytes(file), file)


def parse_ab(data: bytes, file: Path) -> ABDocument:
    """The A/B document held by `data`, the bytes of `file` (read_ab's parse, for a caller that
    needs the bytes too); UserError if bad."""
    return ABDocument.from_dict(parse_json(data, file, "rnnbench A/B file"), str(file))
