"""Change points in each series: ruptures Pelt on log values, then a test and a minimum effect.

Per series (per reference segment of a ratio series) the log values go through Pelt (l2 cost,
penalty `PENALTY` × σ² × ln n, σ the robust point-to-point spread). Pelt proposes segments;
segments shorter than `MIN_LEVEL` points are transitions (a creep, an outlier, the first points
after a step), the others are levels. Each pair of neighbouring levels is tested (Student's t on
the log values, pooled spread: the spread is a property of the series, not of a segment); the
move must be at least half the threshold with the threshold inside its 95 % interval (a move
that is surely smaller is not a change, while a threshold-sized step is kept as often as the
test finds it). The weakest failing boundary is merged away and the rest re-tested, as
Otava's split-and-merge does. Two moves in the same direction around a level of fewer than
`CREEP_GAP` points are one change (a creep: several small steps in a row). The surviving
boundaries of all series are then corrected together (Benjamini-Hochberg), which bounds false
alarms over many series.
"""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass

import numpy as np

from bench.history.series import implementation_series, robust_sd_log, segmented
from bench.verdict import IMPROVEMENT, REGRESSION  # the kinds of change: a verdict's words

DEFAULT_THRESHOLD = 0.05
DEFAULT_ALPHA = 0.001
PENALTY = 3.0
MIN_LEVEL = 5
MIN_POINTS = 2 * MIN_LEVEL
CREEP_GAP = 6  # a level this short between two moves in the same direction is part of a creep
COLUMNS = ("series", "case_id", "metric", "machine", "machine_label", "impl", "phase",
           "segment", "index", "points", "commit_before", "commit_after", "run_before",
           "run_after", "position_after", "level_before", "level_after", "effect", "ci_low",
           "ci_high", "p", "p_adj", "kind", "points_before", "points_after")


@dataclass(frozen=True)
class Break:
    """A confirmed boundary between two levels of one log series (indices into the series)."""

    end_before: int   # last index of the level before
    start_after: int  # first index of the level after
    diff: float       # mean log after − mean log before
    half_width: float  # half-width of the 95 % interval of diff
    p: float
    n_before: int
    n_after: int


def robust_sigma(logs: np.ndarray) -> float:
    """σ of the log values from the MAD of point-to-point differences (a step barely moves it)."""
    robust = robust_sd_log(logs)
    if math.isnan(robust):
        return robust
    # Half the plain spread as a floor: a MAD of 0 (repeated values) must not make every
    # point a segment.
    return max(robust, 0.5 * float(np.std(np.diff(logs), ddof=1)) / math.sqrt(2))


def candidates(logs: np.ndarray, sigma: float) -> list[int]:
    """Pelt's segment ends (exclusive indices, the last one is len(logs))."""
    import ruptures

    n = len(logs)
    pen = PENALTY * max(sigma, 1e-6) ** 2 * math.log(n)
    # Pelt with the l2 cost, in ruptures' C implementation (a linear kernel is the l2 cost).
    algo = ruptures.KernelCPD(kernel="linear", min_size=1).fit(logs.reshape(-1, 1))
    return [int(e) for e in algo.predict(pen=pen)]


def _test(before: np.ndarray, after: np.ndarray) -> tuple[float, float, float]:
    """(diff of means, 95 % half-width, two-sided p) of Student's t with a pooled spread."""
    from scipy.stats import t as student

    diff = float(after.mean() - before.mean())
    df = len(before) + len(after) - 2
    pooled = (((before - before.mean()) ** 2).sum() + ((after - after.mean()) ** 2).sum()) / df
    se = math.sqrt(max(pooled, 1e-18) * (1 / len(before) + 1 / len(after)))
    return diff, float(student.ppf(0.975, df)) * se, float(2 * student.sf(abs(diff) / se, df))


def _big_enough(diff: float, half_width: float, threshold: float) -> bool:
    """At least half the threshold, with the threshold inside the 95 % interval (or below it)."""
    return (abs(diff) >= math.log1p(threshold / 2)
            and abs(diff) + half_width >= math.log1p(threshold))


def _levels(spans: list[tuple[int, int]]) -> list[tuple[int, int]]:
    """Pelt's spans of at least MIN_LEVEL points, and runs of shorter neighbours that together
    reach it (noise can cut the points after a step in two); the rest are transitions."""
    out, run = [], None
    for start, end in spans:
        if end - start >= MIN_LEVEL:
            if run and run[1] - run[0] >= MIN_LEVEL:
                out.append(run)
            out.append((start, end))
            run = None
        else:
            run = (run[0], end) if run else (start, end)
    if run and run[1] - run[0] >= MIN_LEVEL:
        out.append(run)
    return out


def confirmed(logs: np.ndarray, threshold: float, alpha: float) -> list[Break]:
    """The boundaries between levels that pass the test and the minimum effect, after merging."""
    if len(logs) < MIN_POINTS:
        return []
    ends = candidates(logs, robust_sigma(logs))
    levels = _levels(list(zip([0, *ends[:-1]], ends, strict=True)))
    while len(levels) > 1:
        tests = [_test(logs[a0:a1], logs[b0:b1])
                 for (a0, a1), (b0, b1) in itertools.pairwise(levels)]
        weak = [(p if _big_enough(d, hw, threshold) else 2.0, i)
                for i, (d, hw, p) in enumerate(tests)]
        worst_p, worst = max(weak)
        if worst_p >= alpha:
            merged = (levels[worst][0], levels[worst + 1][1])
            levels = [*levels[:worst], merged, *levels[worst + 2:]]
            continue
        creep = next((i for i in range(1, len(levels) - 1)
                      if levels[i][1] - levels[i][0] < CREEP_GAP
                      and (tests[i - 1][0] > 0) == (tests[i][0] > 0)), None)
        if creep is None:
            return [Break(a1 - 1, b0, d, hw, p, a1 - a0, b1 - b0)
                    for ((a0, a1), (b0, b1)), (d, hw, p)
                    in zip(itertools.pairwise(levels), tests, strict=True)]
        del levels[creep]  # a short level between two moves the same way: one creep
    return []


def find_changes(points, *, threshold: float = DEFAULT_THRESHOLD, alpha: float = DEFAULT_ALPHA,
                 groups: bool = True):
    """A DataFrame of the changes in every series of a points frame (COLUMNS), regressions first.

    `points` is series.points_frame output; ratio series are cut into reference segments first
    (unless the frame is already segmented: then it is searched as it is).
    With `groups`, each implementation's geometric-mean series (`impl/* (k cases)`) is searched
    too, in the same false-discovery family.
    """
    import pandas as pd

    records = []
    frame = points if "segment" in points.columns else segmented(points)
    if groups and not frame.empty:
        frame = pd.concat([frame, implementation_series(frame)], ignore_index=True)
    for (key, segment), part in frame.groupby(["series", "segment"], sort=True):
        logs = np.log(part["level"].to_numpy(dtype=float))
        for brk in confirmed(logs, threshold, alpha):
            before, after = part.iloc[brk.end_before], part.iloc[brk.start_after]
            effect = math.expm1(brk.diff)
            records.append({
                "series": key, "case_id": after["case_id"], "metric": after["metric"],
                "machine": after["machine"], "machine_label": after.get("machine_label"),
                "impl": after["impl"], "phase": after["phase"], "segment": int(segment),
                "index": brk.start_after, "points": len(part),
                "commit_before": before["commit_sha"], "commit_after": after["commit_sha"],
                "run_before": before["run_id"], "run_after": after["run_id"],
                "position_after": after["position"],
                "level_before": float(np.exp(logs[:brk.end_before + 1].mean())),
                "level_after": float(np.exp(logs[brk.start_after:].mean())),
                "effect": effect, "ci_low": math.expm1(brk.diff - brk.half_width),
                "ci_high": math.expm1(brk.diff + brk.half_width), "p": brk.p,
                "kind": REGRESSION if effect > 0 else IMPROVEMENT,
                "points_before": brk.n_before, "points_after": brk.n_after})
    out = pd.DataFrame(records, columns=[c for c in COLUMNS if c != "p_adj"])
    out["p_adj"] = benjamini_hochberg(out["p"].tolist())
    out = out[out["p_adj"] < alpha].reindex(columns=list(COLUMNS))
    rank = out["kind"].map({REGRESSION: 0, IMPROVEMENT: 1})
    return (out.assign(_rank=rank, _size=-out["effect"].abs())
            .sort_values(["_rank", "_size", "series"]).drop(columns=["_rank", "_size"])
            .reset_index(drop=True))


def benjamini_hochberg(pvalues: list[float]) -> list[float]:
    """Benjamini-Hochberg adjusted p-values (false discovery rate over all the tests)."""
    m = len(pvalues)
    order = sorted(range(m), key=lambda i: pvalues[i])
    out = [math.nan] * m
    running = 1.0
    for rank in range(m - 1, -1, -1):
        i = order[rank]
        running = min(running, pvalues[i] * m / (rank + 1))
        out[i] = running
    return out


