"""Per-case verdicts of `rnnbench check` from per-run medians (statistics in stats.py)."""

from __future__ import annotations

import math
from collections.abc import Sequence

from bench.analysis.stats import (
    GEOMEAN,
    MIN_RUNS,
    geomean,
    min_detectable,
    pooled_log_sd,
    runs_needed,
    welch_bounds,
    welch_p,
)
from bench.rows import CaseRow
from bench.verdict import (
    BASELINE_ONLY,
    BROKEN,
    CURRENT_ONLY,
    IMPROVEMENT,
    NO_BASELINE,
    REGRESSION,
    SAME,
    UNRELIABLE,
    decide,
)

Side = Sequence[CaseRow | None]  # the case's row in each run of one side (None: not in it)


def run_medians(rows: Side, scales: Sequence[float]) -> list[float]:
    """The case's median in each run where it ran and was timed, times the run's scale."""
    out = []
    for row, scale in zip(rows, scales, strict=True):
        med = row.median() if row is not None and row.ok else None
        if med is not None and math.isfinite(scale):
            out.append(med * scale)
    return out


def _status_note(row: CaseRow) -> str:
    return row.status + (f": {row.reason}" if row.reason else "")


def _code_note(base: Side, cur: Side) -> str:
    old = sorted({r.code_version for r in base if r is not None and r.code_version})
    new = sorted({r.code_version for r in cur if r is not None and r.code_version})
    if old and new and old != new:
        return f"code changed ({', '.join(old)} → {', '.join(new)})"
    return ""


def _empty(case: str) -> dict:
    return {"case": case, "baseline": math.nan, "current": math.nan, "ratio": math.nan,
            "ci_low": math.nan, "ci_high": math.nan, "ci_level": math.nan, "p": math.nan,
            "detectable": math.nan, "n_baseline": 0, "n_current": 0, "verdict": "", "note": ""}


def _unjudged(case: str, base: Side, cur: Side) -> dict | None:
    """The row of a case that cannot be timed on both sides, or None when it can."""
    row = _empty(case)
    present_b = [r for r in base if r is not None]
    present_c = [r for r in cur if r is not None]
    if not present_b or not present_c:
        row["verdict"] = CURRENT_ONLY if not present_b else BASELINE_ONLY
        row["note"] = _status_note((present_c or present_b)[0])
        return row
    errors = [r for r in present_c if r.status == "error"]
    if errors and all(r.ok for r in present_b):
        row["verdict"], row["note"] = BROKEN, errors[0].reason or ""
    elif not any(r.ok for r in present_c):
        row["verdict"], row["note"] = present_c[0].status, present_c[0].reason or ""
    elif not any(r.ok for r in present_b):
        bad = next(r for r in present_b if not r.ok)
        row["verdict"], row["note"] = NO_BASELINE, f"baseline {_status_note(bad)}"
    else:
        return None
    return row


def judge_cases(cases: Sequence[str], sides: Sequence[tuple[Side, Side]],
                scales: Sequence[tuple[Sequence[float], Sequence[float]]], *,
                threshold: float, alpha: float) -> list[dict]:
    """One verdict row per case: Welch on log run medians, each direction one-sided at
    alpha/m (Bonferroni over the m tested cases); the interval shown (`ci_low`..`ci_high`,
    coverage `ci_level` = 1 - 2 alpha/m) is that test's: significant exactly when it
    excludes 1."""
    rows, tests = [], []
    for case, (base, cur), (b_scale, c_scale) in zip(cases, sides, scales, strict=True):
        row = _unjudged(case, base, cur)
        if row is None:
            row = _empty(case)
            b, c = run_medians(base, b_scale), run_medians(cur, c_scale)
            row.update(n_baseline=len(b), n_current=len(c), baseline=geomean(b),
                       current=geomean(c), verdict=UNRELIABLE)
            row["ratio"] = row["current"] / row["baseline"] if b and c else math.nan
            row["_logs"] = ([math.log(v) for v in b], [math.log(v) for v in c])
            row["_code"] = _code_note(base, cur)
            tests.append(row)
        rows.append(row)
    m = max(len(tests), 1)
    for row in tests:
        logs_b, logs_c = row.pop("_logs")
        sigma = pooled_log_sd(logs_b, logs_c)
        row["_sigma"] = sigma
        row["detectable"] = min_detectable(sigma, len(logs_b), len(logs_c), alpha / m)
        if len(logs_b) >= MIN_RUNS and len(logs_c) >= MIN_RUNS:
            low, high = welch_bounds(logs_b, logs_c, 1.0 - alpha / m)
            row.update(ci_low=math.exp(low), ci_high=math.exp(high),
                       ci_level=1.0 - 2.0 * alpha / m)
            slower = row["ratio"] >= 1.0
            p = welch_p(logs_b, logs_c, "greater" if slower else "less")
            row["_p"] = min(1.0, p * m)
        else:
            row["_p"] = math.nan
        _verdict(row, threshold=threshold, alpha=alpha, m=m)
    return rows


def _verdict(row: dict, *, threshold: float, alpha: float, m: int) -> None:
    sigma, code = row.pop("_sigma"), row.pop("_code")
    p_adj = row.pop("_p")
    ratio, nb, nc = row["ratio"], row["n_baseline"], row["n_current"]
    need = runs_needed(sigma, threshold, alpha / m)
    spread = (f"~{need} runs per side would detect {threshold * 100:g} % at the observed "
              f"spread (sd {sigma * 100:.1f} % between runs)" if need is not None else
              "the spread between runs is unknown with one run per side")
    if nb == 0 or nc == 0:
        note = "no timings stored"
    elif nb < MIN_RUNS or nc < MIN_RUNS:
        note = f"{nb} vs {nc} run(s): at least {MIN_RUNS} per side needed ({spread})"
    else:
        row["p"] = p_adj
        verdict = decide(ratio, above_one=row["ci_low"] > 1.0, below_one=row["ci_high"] < 1.0,
                         detectable=row["detectable"], threshold=threshold)
        row["verdict"] = verdict
        if verdict == REGRESSION:
            note = f"{(ratio - 1) * 100:.1f} % slower"
        elif verdict == IMPROVEMENT:
            note = f"{(1 - ratio) * 100:.1f} % faster"
        elif ratio > 1.0 + threshold:
            note = f"{(ratio - 1) * 100:.1f} % slower but not significant; {spread}"
        elif verdict == SAME:
            note = "faster, but not significant" if ratio < 1.0 / (1.0 + threshold) else ""
        else:
            note = (f"could only detect {row['detectable'] * 100:.0f} % (> "
                    f"{threshold * 100:g} %); {spread}")
    row["note"] = "; ".join(n for n in (note, code) if n)


def summary_row(ratios) -> dict:
    """The geomean row of the check table over the judged cases' ratios."""
    row = _empty(GEOMEAN)
    row.update(ratio=geomean(ratios), note=f"over {len(ratios)} cases that ran in both")
    return row
