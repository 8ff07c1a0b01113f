#!/usr/bin/env python3
"""The change-point goals of `rnnbench history changes`, measured on series made of real A/B data.

Series are resampled from the committed A/B calibration's 20 A/A runs
(reports/reference/ab-smoke-2core-epyc-tf2.21-90pairs/cases.csv): each simulated point is one
whole real run drawn with replacement (all 45 judged cases of it, each centred on its own mean
over the 20 runs), so every case keeps its measured spread and tails and the cases of one run
keep their correlation. Goals (issue #19):
  1. 20 A/A ratio series of 30 points: at most 1 series with a (false) change;
  2. a 5 % step in one implementation's series, found within 5 points after it at the right
     commit ± 1, in at least 90 % of trials;
  3. a 3 %-per-commit creep over 4 commits reported as a change of about 12 %.
A simulation is CPU work, not a timing: its numbers do not depend on the machine's load.

    python3 .ci/history_goals.py [--trials 200] [--out reports/reference/history-.../goals]
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.history.changes import REGRESSION, find_changes  # noqa: E402
from bench.history.series import order  # noqa: E402
from bench.storage import atomic_write_text  # noqa: E402

CALIBRATION = ROOT / "reports/reference/ab-smoke-2core-epyc-tf2.21-90pairs/cases.csv"


def aa_matrix() -> pd.DataFrame:
    """Runs × cases of centred log ratios from the 20 real A/A runs (judged cases only)."""
    cases = pd.read_csv(CALIBRATION)
    aa = cases[(cases["kind"] == "aa") & cases["ratio"].notna()]
    logs = np.log(aa.pivot_table(index="run", columns="case", values="ratio"))
    logs = logs.dropna(axis=1)
    return logs - logs.mean()


def frame_of(logs: pd.DataFrame) -> pd.DataFrame:
    """A points frame (as the store gives it) of one simulated history: rows are points."""
    n = len(logs)
    records = []
    for case in logs.columns:
        records.append(pd.DataFrame({
            "series": f"{case}|ab_ratio|m", "run_id": [f"r{i:03d}" for i in range(n)],
            "case_id": case, "metric": "ab_ratio", "machine": "m", "machine_label": "sim",
            "impl": case.split("/")[0], "phase": case.split("/")[-1],
            "commit_sha": [f"c{i:03d}" for i in range(n)], "commit_time": None,
            "created_utc": [f"2026-01-01T{i // 60:02d}:{i % 60:02d}:00Z" for i in range(n)],
            "value": np.exp(logs[case].to_numpy()), "ci_low": None, "ci_high": None,
            "n": 90, "status": "complete", "reference_sha": "ref", "peak_gflops": None}))
    return order(pd.concat(records, ignore_index=True))


def resample(matrix: pd.DataFrame, n: int, rng) -> pd.DataFrame:
    """n points, each one whole real run drawn with replacement."""
    return matrix.iloc[rng.integers(0, len(matrix), n)].reset_index(drop=True)


def impls_of(matrix) -> list[str]:
    """Implementations with at least two judged cases (they have a group series)."""
    counts = pd.Series([c.split("/")[0] for c in matrix.columns]).value_counts()
    return sorted(counts[counts >= 2].index)


def goal_aa(matrix, trials, rng) -> dict:
    """Series (out of 20 A/A series of 30 points) that get a change, per trial."""
    false = []
    for _ in range(trials):
        cols = rng.choice(matrix.columns, 20, replace=False)
        found = find_changes(frame_of(resample(matrix[cols], 30, rng)))
        false.append(found["series"].nunique())
    false = np.asarray(false)
    return {"goal": "20 A/A series × 30 points: at most 1 series with a change",
            "trials": trials, "mean_false_series": false.mean(),
            "share_trials_at_most_1": (false <= 1).mean(), "share_trials_0": (false == 0).mean(),
            "max_false_series": int(false.max())}


def _hit(found, impl, index) -> tuple[bool, bool]:
    mine = found[(found["impl"] == impl) & (found["kind"] == REGRESSION)
                 & (found["index"] - index).abs().le(1)]
    return (bool(mine["case_id"].str.contains(r"/\*").any()),
            bool((~mine["case_id"].str.contains(r"/\*")).any()))


def goal_step(matrix, trials, rng, after: int) -> dict:
    """A 5 % step in one implementation at point 20, with `after` points from the step on."""
    group = cases = 0
    per_case = []
    for _ in range(trials):
        impl = rng.choice(impls_of(matrix))
        logs = resample(matrix, 20 + after, rng)
        mine = [c for c in logs.columns if c.startswith(impl + "/")]
        logs.loc[20:, mine] += np.log(1.05)
        found = find_changes(frame_of(logs))
        g, c = _hit(found, impl, 20)
        group += g or c
        cases += c
        hits = found[(found["impl"] == impl) & (found["index"] - 20).abs().le(1)
                     & ~found["case_id"].str.contains(r"/\*")]
        per_case.append(hits["case_id"].nunique() / len(mine))
    return {"goal": f"5 % step in one implementation, {after} points after it: found at the "
                    "commit ± 1", "trials": trials, "share_found": group / trials,
            "share_found_in_a_case_series": cases / trials,
            "mean_share_of_cases_flagged": float(np.mean(per_case))}


def goal_creep(matrix, trials, rng) -> dict:
    """3 % per commit over 4 commits (points 15..18), 30 points; the reported effect."""
    effects, found_n = [], 0
    for _ in range(trials):
        impl = rng.choice(impls_of(matrix))
        logs = resample(matrix, 30, rng)
        mine = [c for c in logs.columns if c.startswith(impl + "/")]
        ramp = np.r_[np.zeros(15), np.arange(1, 5), np.full(11, 4)] * np.log(1.03)
        logs[mine] = logs[mine].add(ramp, axis=0)
        found = find_changes(frame_of(logs))
        group = found[(found["case_id"] == f"{impl}/* ({len(mine)} cases)")
                      & found["index"].between(13, 20)]
        if len(group):
            found_n += 1
            effects.append(group["effect"].max())
    effects = np.asarray(effects)
    return {"goal": "3 %/commit creep over 4 commits: one change of about 12 %",
            "trials": trials, "share_found": found_n / trials,
            "median_effect": float(np.median(effects)) if len(effects) else np.nan,
            "effect_p10": float(np.percentile(effects, 10)) if len(effects) else np.nan,
            "effect_p90": float(np.percentile(effects, 90)) if len(effects) else np.nan}


def main() -> int:
    """Run the three goals; print and (with --out) write goals.csv and goals.md."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=200)
    parser.add_argument("--seed", type=int, default=19)
    parser.add_argument("--out", type=Path, help="folder for goals.csv and goals.md")
    args = parser.parse_args()
    matrix = aa_matrix()
    rng = np.random.default_rng(args.seed)
    sd = matrix.std(ddof=1)
    rows = [goal_aa(matrix, args.trials, rng),
            *(goal_step(matrix, args.trials, rng, after) for after in (3, 4, 5)),
            goal_creep(matrix, args.trials, rng)]
    table = pd.DataFrame(rows)
    lines = ["# Change-point goals on resampled real A/B ratios", "",
             f"Data: {CALIBRATION.relative_to(ROOT)}: {len(matrix)} A/A runs × "
             f"{matrix.shape[1]} judged cases; per-case sd(log ratio) median {sd.median():.4f}, "
             f"90th percentile {sd.quantile(0.9):.4f}. {args.trials} trials per goal, seed "
             f"{args.seed}. Command: `python3 .ci/history_goals.py --trials {args.trials} "
             f"--seed {args.seed}`.", ""]
    for row in rows:
        lines.append(f"- **{row['goal']}**: " + ", ".join(
            f"{k} {v:.3f}" if isinstance(v, float) else f"{k} {v}"
            for k, v in row.items() if k not in ("goal",)))
    text = "\n".join(lines) + "\n"
    print(text)
    if args.out:
        args.out.mkdir(parents=True, exist_ok=True)
        atomic_write_text(args.out / "goals.csv", table.to_csv(index=False))
        atomic_write_text(args.out / "goals.md", text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
