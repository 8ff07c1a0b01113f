"""The numbers of `compare`: per-case cells, ratios with intervals, the per-implementation
summary and the cases that did not run everywhere, as DataFrames (no TensorFlow).

A column of the comparison is a `RunSet`: one run, or several runs of one machine. Its cell
for a case holds the median (the geometric mean of the run medians when several runs timed
the case) and the standard error of its log:

- several runs: the spread of the log run medians over sqrt(runs), Student t with runs - 1
  degrees of freedom: the run is the unit, as in `check`;
- one run: the 95 % interval of its median (order statistics of its rounds) read as ±1.96
  standard errors on the log scale. That is within-run noise only; runs on a shared machine
  differ by more, so such a ratio's interval is a lower bound of the real uncertainty.

A ratio X/A combines the two standard errors (Welch-Satterthwaite degrees of freedom when both
sides have several runs, normal otherwise); it is significant when its 95 % interval excludes 1.
With `normalize`, each run's times are multiplied by its own matmul calibration over the first
run's (same device and dtype), i.e. expressed at the first run's matmul speed.
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Sequence
from dataclasses import dataclass

from bench import registry
from bench.analysis.stats import GEOMEAN, geomean
from bench.cases import compared_columns, group_columns, id_parts
from bench.results import Run, peak_gflops
from bench.rows import CaseRow

Z95 = 1.959963984540054
LEVEL = 0.95
RUNS, WITHIN, MIXED = "runs", "within-run", "mixed"
NOT_RUN = "not run"
# compare leaves the device to the case id and its own column (its tables have never had one).
DEVICE = "device"


@dataclass(frozen=True)
class RunSet:
    """One column of a comparison: a label (A, B, ...), a name, and one or more runs."""

    label: str
    name: str
    runs: tuple[Run, ...]


@dataclass(frozen=True)
class Cell:
    """One case in one RunSet: status, median (s), log-scale standard error and its basis."""

    status: str
    median_s: float = math.nan
    log_se: float = math.nan
    log_var: float = math.nan  # variance of log run medians (several runs)
    runs: int = 0
    basis: str = ""
    reason: str | None = None
    memory: float = math.nan

    @property
    def ok(self) -> bool:
        """True when at least one run timed the case."""
        return self.status == "ok" and math.isfinite(self.median_s)

    def interval(self) -> tuple[float, float]:
        """The 95 % interval of the median (s); NaNs when unknown."""
        if not (self.ok and math.isfinite(self.log_se)):
            return math.nan, math.nan
        q = _quantile(self.runs - 1) if self.basis == RUNS else Z95
        return self.median_s * math.exp(-q * self.log_se), self.median_s * math.exp(q * self.log_se)


def _quantile(df: float) -> float:
    from scipy.special import stdtrit

    return float(stdtrit(df, 0.5 + LEVEL / 2)) if df >= 1 else math.nan


def _scale(run: Run, ref: Run, row: CaseRow, normalize: bool) -> float:
    if not normalize:
        return 1.0
    device, dtype = row.case.device, row.case.dtype
    mine, base = peak_gflops(run.calibration, device, dtype), peak_gflops(ref.calibration,
                                                                          device, dtype)
    return mine / base if mine and base else math.nan


def _within_se(row: CaseRow) -> float:
    low, high = row.stats.median_lo_s, row.stats.median_hi_s
    if low is None or high is None or not low > 0:
        return math.nan
    return (math.log(high) - math.log(low)) / (2 * Z95)


def set_cells(runset: RunSet, ref: Run, normalize: bool = False) -> dict[str, Cell]:
    """Every case id of a RunSet's runs and its cell."""
    by_case: dict[str, list[tuple[Run, CaseRow]]] = {}
    for run in runset.runs:
        seen = set()
        for row in run.cases:
            if row.id not in seen:
                seen.add(row.id)
                by_case.setdefault(row.id, []).append((run, row))
    cells = {}
    for case, entries in by_case.items():
        timed = [(run, row) for run, row in entries if row.ok and row.median()]
        memory = [float(r.memory_peak_bytes) for _, r in timed if r.memory_peak_bytes is not None]
        if not timed:
            first = entries[0][1]
            cells[case] = Cell(first.status, reason=first.reason)
            continue
        logs = [math.log(row.median() * _scale(run, ref, row, normalize)) for run, row in timed]
        if len(timed) > 1:
            var = statistics.variance(logs)
            cells[case] = Cell("ok", math.exp(statistics.fmean(logs)), math.sqrt(var / len(logs)),
                               var, len(logs), RUNS, memory=max(memory, default=math.nan))
        else:
            cells[case] = Cell("ok", math.exp(logs[0]), _within_se(timed[0][1]), runs=1,
                               basis=WITHIN, memory=memory[0] if memory else math.nan)
    return cells


def ratio_interval(a: Cell, b: Cell) -> tuple[float, float, float, str]:
    """(ratio b/a, low, high, basis) of two timed cells; the bounds NaN when unknown."""
    ratio = b.median_s / a.median_s
    se = math.hypot(a.log_se, b.log_se)
    if a.basis == RUNS and b.basis == RUNS:
        va, vb = a.log_var / a.runs, b.log_var / b.runs
        denom = va ** 2 / (a.runs - 1) + vb ** 2 / (b.runs - 1)
        q = _quantile((va + vb) ** 2 / denom) if denom > 0 else Z95
        basis = RUNS
    else:
        q, basis = Z95, WITHIN if a.basis == b.basis == WITHIN else MIXED
    if not math.isfinite(se) or not math.isfinite(q):
        return ratio, math.nan, math.nan, basis
    return ratio, ratio * math.exp(-q * se), ratio * math.exp(q * se), basis


def group_keys() -> tuple[str, ...]:
    """What the summary groups an implementation's cases by: the group columns of every table
    (bench.cases) but the device: ('phase', 'shape', 'precision')."""
    return tuple(c for c in group_columns() if c != DEVICE)


def describe(row: CaseRow) -> dict:
    """The grouping fields of a case: impl, unroll, device, then `group_keys()`."""
    parts = id_parts(row.case)
    return {c: parts[c] for c in (*compared_columns(), DEVICE, *group_keys())}


def case_facts(sets: list[RunSet]) -> dict[str, dict]:
    """Case id → its grouping fields, over every run, in order of first appearance."""
    facts: dict[str, dict] = {}
    for runset in sets:
        for run in runset.runs:
            for row in run.cases:
                facts.setdefault(row.id, describe(row))
    return facts


def all_cells(sets: list[RunSet], normalize: bool = False) -> list[dict[str, Cell]]:
    """The cells of every RunSet (times relative to the first run's calibration if asked)."""
    ref = sets[0].runs[0]
    return [set_cells(s, ref, normalize) for s in sets]


def common_cases(cells: list[dict[str, Cell]], facts: dict[str, dict]) -> list[str]:
    """The cases timed in every RunSet, grouped by phase, implementation, unroll, shape
    (computed once per comparison and passed to every table)."""
    ids = [c for c in facts if all(c in cs and cs[c].ok for cs in cells)]
    order = {c: i for i, c in enumerate(facts)}
    lead, *rest = group_keys()
    keys = (lead, *compared_columns(), *rest)
    return sorted(ids, key=lambda c: (*(facts[c][k] for k in keys), order[c]))


def main_frame(sets: list[RunSet], cells: list[dict[str, Cell]], facts: dict[str, dict],
               common: Sequence[str]):
    """The cases timed everywhere (`common`, in order): per RunSet median and interval (s),
    per other RunSet the ratio to the first with its interval, basis and significance; memory
    when recorded; a geometric-mean row last (no interval: the cases are not samples of one
    quantity)."""
    import pandas as pd

    labels = [s.label for s in sets]
    ref = labels[0]
    memory = any(math.isfinite(c.memory) for cs in cells for c in cs.values())
    rows = []
    for case in common:
        row = {"case": case, **facts[case]}
        here = [cs[case] for cs in cells]
        for label, cell in zip(labels, here, strict=True):
            low, high = cell.interval()
            row.update({label: cell.median_s, f"{label} lo": low, f"{label} hi": high})
        for label, cell in zip(labels[1:], here[1:], strict=True):
            ratio, low, high, basis = ratio_interval(here[0], cell)
            row.update({f"{label}/{ref}": ratio, f"{label}/{ref} lo": low,
                        f"{label}/{ref} hi": high, f"{label}/{ref} basis": basis,
                        f"{label}/{ref} significant": bool(low > 1 or high < 1)})
        if memory:
            for label, cell in zip(labels, here, strict=True):
                row[f"mem {label}"] = cell.memory
            for label in labels[1:]:
                first = row[f"mem {ref}"]
                row[f"mem {label}/{ref}"] = row[f"mem {label}"] / first if first > 0 else math.nan
        times = {label: cell.median_s for label, cell in zip(labels, here, strict=True)}
        row["fastest"] = min(times, key=times.get)
        rows.append(row)
    frame = pd.DataFrame(rows)
    if frame.empty:
        return frame
    summary = {"case": GEOMEAN}
    for column in frame.columns:
        if column.endswith(f"/{ref}") and pd.api.types.is_numeric_dtype(frame[column]):
            summary[column] = geomean(frame[column])
    return pd.concat([frame, pd.DataFrame([summary])], ignore_index=True)


def status_text(cell: Cell | None) -> str:
    """`ok`, `not run`, or the status with its reason."""
    if cell is None:
        return NOT_RUN
    if cell.ok:
        return "ok"
    return cell.status + (f" ({cell.reason})" if cell.reason else "")


def missing_frame(sets: list[RunSet], cells: list[dict[str, Cell]], facts: dict[str, dict],
                  common: Sequence[str]):
    """The cases not timed in every RunSet (not in `common`): case, then each RunSet's status
    (the appendix)."""
    import pandas as pd

    common = set(common)
    rows = [{"case": case, **{s.label: status_text(cs.get(case)) for s, cs in
                              zip(sets, cells, strict=True)}}
            for case in facts if case not in common]
    return pd.DataFrame(rows, columns=["case", *(s.label for s in sets)])


def missing_counts(sets: list[RunSet], cells: list[dict[str, Cell]], facts: dict[str, dict]
                   ) -> list[dict]:
    """Per RunSet: how many of all cases it timed, did not run, skipped or errored."""
    out = []
    for runset, cs in zip(sets, cells, strict=True):
        counts = {"label": runset.label, "cases": len(facts), "ok": 0, NOT_RUN: 0,
                  "skipped": 0, "error": 0}
        for case in facts:
            cell = cs.get(case)
            key = NOT_RUN if cell is None else ("ok" if cell.ok else cell.status)
            counts[key if key in counts else "error"] += 1
        out.append(counts)
    return out


def summary_frame(sets: list[RunSet], cells: list[dict[str, Cell]], facts: dict[str, dict],
                  common: Sequence[str]):
    """Per phase × shape × precision × implementation: each RunSet's geometric mean over its
    own timed cases of the group (seconds) with the case count, and per other RunSet the
    geometric mean of the per-case ratios over the group's cases timed everywhere. Only the
    phase × shape × precision groups that every RunSet timed appear."""
    import pandas as pd

    labels = [s.label for s in sets]
    common = set(common)
    keys = (*group_keys(), "impl")
    groups: dict[tuple, list[str]] = {}
    for case, fact in facts.items():
        groups.setdefault(tuple(fact[k] for k in keys), []).append(case)
    rows = []
    for key, members in sorted(groups.items()):
        row = dict(zip(keys, key, strict=True))
        for label, cs in zip(labels, cells, strict=True):
            timed = [cs[c].median_s for c in members if c in cs and cs[c].ok]
            row[label] = geomean(timed)
            row[f"{label} cases"] = len(timed)
        shared = [c for c in members if c in common]
        for label, cs in zip(labels[1:], cells[1:], strict=True):
            row[f"{label}/{labels[0]}"] = geomean(cs[c].median_s / cells[0][c].median_s
                                                  for c in shared)
        if any(row[f"{label} cases"] for label in labels):
            rows.append(row)
    frame = pd.DataFrame(rows)
    if frame.empty:
        return frame
    # Only the phase × shape × precision groups that every RunSet timed in some implementation.
    everywhere = frame.groupby(list(group_keys()), sort=False)[[f"{x} cases" for x in labels]] \
        .transform("sum").gt(0).all(axis=1)
    return frame[everywhere].reset_index(drop=True)


def model_of(impl: str) -> str:
    """The model an implementation computes (LSTM, GRU, vanilla RNN): only implementations of
    one model race each other (a vanilla RNN is faster than any LSTM by doing less)."""
    family = registry.REGISTRY[impl].family if impl in registry.REGISTRY else impl
    return {registry.LSTM: "LSTM", registry.GRU_RESET_BEFORE: "GRU",
            registry.GRU_RESET_AFTER: "GRU", registry.RNN: "vanilla RNN"}.get(family, family)


def fastest_frame(summary, labels: list[str]):
    """Per phase × shape × precision × model and RunSet: the fastest implementation (by the
    summary's geometric mean), the runner-up and how many times faster the winner is."""
    import pandas as pd

    rows = []
    if summary.empty:
        return pd.DataFrame(rows)
    summary = summary.assign(model=summary["impl"].map(model_of))
    keys = (*group_keys(), "model")
    for key, group in summary.groupby(list(keys), sort=False):
        row = dict(zip(keys, key, strict=True))
        for label in labels:
            ranked = group[group[label].notna()].sort_values(label)
            if ranked.empty:
                row[label] = None
                continue
            best = ranked.iloc[0]
            if len(ranked) > 1:
                second = ranked.iloc[1]
                margin = second[label] / best[label]
                row[label] = f"{best['impl']} ({margin:.2f}× ahead of {second['impl']})"
            else:
                row[label] = f"{best['impl']} (the only one)"
        rows.append(row)
    return pd.DataFrame(rows)
