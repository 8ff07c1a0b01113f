"""Typed history rows: a machine, a run and its points, built from loaded runs and A/B documents.

A point is one value of one series for one run. The series key is case id + metric + machine;
the machine is the hardware part of the run's identity (`bench.identity`: CPU model and
features, GPUs, thread settings), so each machine class is its own series, as in asv,
conbench and Bencher. Metrics: `median_s` (a run's median step time), `time_to_target_s`
(time-to-accuracy) and `ab_ratio` (B/A of an interleaved A/B run, against side A's commit).
"""

from __future__ import annotations

import hashlib
import json
import math
from dataclasses import astuple, dataclass

from bench import identity
from bench.cases import PHASES
from bench.history import schema
from bench.results import PARTIAL, Run, peak_gflops
from bench.rows import MEDIAN_S
from bench.tta_rows import TIME_TO_TARGET_S

MEDIAN, TTA, RATIO = MEDIAN_S, TIME_TO_TARGET_S, "ab_ratio"  # the row keys they come from
METRICS = (MEDIAN, TTA, RATIO)
TTA_PHASE = "tta"  # the phase of a time-to-accuracy point
POINT_PHASES = (*PHASES, TTA_PHASE)
RELATIVE = (RATIO,)
COMPLETE, PARTIAL_STATUS = "complete", PARTIAL


@dataclass(frozen=True)
class Machine:
    """A machine class: a stable id, a readable label and the identity fields it stands for."""

    machine: str
    label: str
    identity_json: str

    @classmethod
    def from_env(cls, env: dict) -> Machine:
        """The machine of an env fingerprint (hardware identity fields only)."""
        ident = identity.identity(env or {})
        hardware = {k: ident.get(k) for k in identity.HARDWARE_FIELDS}
        blob = json.dumps(hardware, sort_keys=True, default=str)
        digest = hashlib.sha256(blob.encode()).hexdigest()[:8]
        cpu = str(hardware.get("cpu_model") or "unknown CPU")
        gpu = hardware.get("gpu")
        threads = hardware.get("intra_op_threads")
        label = cpu + (f" + {gpu}" if gpu not in (None, "none") else "")
        label += f", {threads} thread{'s' if threads != 1 else ''}" if threads else ""
        return cls(machine=f"{_slug(cpu)}-{digest}", label=label, identity_json=blob)


def _slug(text: str) -> str:
    out = "".join(ch.lower() if ch.isalnum() else "-" for ch in text)
    return "-".join(p for p in out.split("-") if p)[:24] or "machine"


@dataclass(frozen=True)
class RunRecord:
    """One added run folder: what it is, where it came from, its content hash and commit."""

    run_id: str
    kind: str
    content_hash: str
    source: str
    machine: str
    commit_sha: str | None
    commit_time: str | None
    created_utc: str
    status: str
    reference_sha: str | None
    points: int
    added_utc: str

    def row(self) -> tuple:
        """The values in schema.RUN_COLUMNS order."""
        return astuple(self)


@dataclass(frozen=True)
class Point:
    """One value of one series for one run, with its interval and count."""

    series: str
    run_id: str
    case_id: str
    metric: str
    machine: str
    impl: str | None
    phase: str | None
    commit_sha: str | None
    commit_time: str | None
    created_utc: str
    value: float
    ci_low: float | None
    ci_high: float | None
    n: int | None
    status: str
    reference_sha: str | None
    peak_gflops: float | None = None

    def row(self) -> tuple:
        """The values in schema.POINT_COLUMNS order."""
        return astuple(self)


assert tuple(Point.__dataclass_fields__) == schema.POINT_COLUMNS
assert tuple(RunRecord.__dataclass_fields__) == schema.RUN_COLUMNS


def series_key(case_id: str, metric: str, machine: str) -> str:
    """The key of a series: case id, metric and machine."""
    return f"{case_id}|{metric}|{machine}"


@dataclass(frozen=True)
class Source:
    """Where a document's points come from: run id, machine, commit, time and status."""

    run_id: str
    machine: Machine
    commit_sha: str | None
    commit_time: str | None
    created_utc: str
    status: str
    reference_sha: str | None = None

    def point(self, case_id: str, metric: str, impl, phase, value: float, ci, n,
              peak: float | None = None) -> Point:
        """A point of this source."""
        low, high = ci
        return Point(series=series_key(case_id, metric, self.machine.machine),
                     run_id=self.run_id, case_id=case_id, metric=metric,
                     machine=self.machine.machine, impl=impl, phase=phase,
                     commit_sha=self.commit_sha, commit_time=self.commit_time,
                     created_utc=self.created_utc, value=float(value),
                     ci_low=_finite(low), ci_high=_finite(high), n=n, status=self.status,
                     reference_sha=self.reference_sha, peak_gflops=peak)


def _finite(value) -> float | None:
    return float(value) if value is not None and math.isfinite(value) else None


def run_points(run: Run, source: Source) -> list[Point]:
    """The points of a loaded results.json: a median per ok case, a time per reached TTA row."""
    out = []
    for row in run.cases:
        median = row.median()
        if not row.ok or median is None:
            continue
        ci = _median_ci(row.stats)
        peak = peak_gflops(run.calibration, row.case.device, row.case.dtype)
        n = row.stats.rounds if row.stats.rounds is not None else len(row.stats.samples_s)
        out.append(source.point(row.id, MEDIAN, row.case.impl, row.case.phase,
                                median, ci, n, peak))
    for row in run.tta:
        seconds = row.stats.time_to_target_s
        if row.status != "ok" or not row.stats.reached or seconds is None:
            continue
        out.append(source.point(row.id, TTA, row.settings.get("impl"), TTA_PHASE, seconds,
                                (None, None), 1))
    return out


def _median_ci(stats) -> tuple:
    """The row's stored interval of the median; below 6 rounds (none stored) the full range."""
    if stats.median_lo_s is not None:
        return stats.median_lo_s, stats.median_hi_s
    return (min(stats.samples_s), max(stats.samples_s)) if stats.samples_s else (None, None)
