"""Regression check of current runs against baseline runs, with the run as the unit of evidence.

Per case, each run contributes its median. A case is a `regression` when the ratio of the
geometric means of the run medians (current / baseline) is above 1 + threshold AND a one-sided
Welch t-test on the log run medians is significant at alpha/m (Bonferroni over the m cases; see
bench.analysis.stats for the choice of test). The interval shown is that test's: its ends are
the one-sided (1 - alpha/m) bounds, so a significant verdict never shows an interval holding 1.
With fewer than MIN_RUNS runs on a side the
verdict is `unreliable`, with the runs per side that would be needed at the observed spread.

Software differences (TensorFlow, Keras, CUDA, cuDNN, Python, NumPy, git commit) are what a
check is usually about: they are shown as "what changed", never refused. A changed
`code_version` of a case is shown in its note and the case is still judged, because a code
change is one of the things under test. Hardware differences are refused unless --normalize.

Exit codes: 1 when any case regressed or broke, 0 otherwise, 2 on unusable input.
`--report-only` prints the same table but exits 0 on usable input.
"""

from __future__ import annotations

import math
import sys
from collections.abc import Sequence
from pathlib import Path

from bench import args as shared
from bench.ab_results import is_ab_folder
from bench.analysis.stats import GEOMEAN, MIN_RUNS
from bench.errors import UserError
from bench.identity import HARDWARE_FIELDS, describe_mismatches, identity_mismatches
from bench.results import RESULTS_JSON, Run, peak_gflops, read_run
from bench.verdict import CHECK_ORDER, DEFAULT_ALPHA, DEFAULT_THRESHOLD, FAILING, JUDGED


def add_arguments(parser) -> None:
    """Register `rnnbench check` options."""
    parser.add_argument("--baseline", required=True, nargs="+", metavar="DIR",
                        help="baseline runs: run folders (or results.json files), or folders "
                             "of run folders (one level); at least 3 runs for a verdict")
    parser.add_argument("--current", required=True, nargs="+", metavar="DIR",
                        help="the runs to check, given the same way; at least 3 runs")
    shared.add_threshold(parser, DEFAULT_THRESHOLD,
                         "slowdown that counts as a regression: 10%% or 0.10 (default 10%%)")
    shared.add_alpha(parser, DEFAULT_ALPHA,
                     "family-wise significance level of the one-sided Welch t-test on log run "
                     "medians, Bonferroni over the cases (default 0.05)")
    parser.add_argument("--normalize", action="store_true",
                        help="scale each run's times by its own calibration matmul speed "
                             "(calibration.matmul_gflops) so runs from other machines can be "
                             "compared")
    parser.add_argument("--allow-partial", action="store_true",
                        help="accept an interrupted (partial) baseline run")
    parser.add_argument("--report-only", action="store_true",
                        help="print the verdict table but exit 0 even on regressions, and only "
                             "warn about hardware mismatches; unusable input still exits 2")


def main(args) -> int:
    """Run `rnnbench check`; return 1 on regression (0 with --report-only), 0 otherwise."""
    baseline, notes_b = distinct_runs(expand_runs(args.baseline, "baseline"), "baseline")
    current, notes_c = distinct_runs(expand_runs(args.current, "current"), "current")
    refuse_shared_runs(baseline, current)
    for line in notes_b + notes_c:
        print(f"rnnbench check: note: {line}", file=sys.stderr)
    warnings = run_problems(baseline, current, normalize=args.normalize,
                            advisory=args.report_only, allow_partial=args.allow_partial)
    frame = check_frame(baseline, current, threshold=args.threshold, alpha=args.alpha,
                        normalize=args.normalize)
    for line in warnings:
        print(f"rnnbench check: warning: {line}", file=sys.stderr)
    print(render_check(frame, baseline, current, threshold=args.threshold, alpha=args.alpha,
                       normalize=args.normalize), end="")
    failed = failing_cases(frame)
    if failed and args.report_only:
        print(f"rnnbench check: {len(failed)} case(s) would fail the check; --report-only: "
              "exit 0", file=sys.stderr)
        return 0
    return 1 if failed else 0


def expand_runs(paths, side: str) -> list[Run]:
    """Read each path: a run folder, a results.json, or a folder of run folders (one level)."""
    runs, seen = [], set()
    for raw in paths:
        path = Path(raw)
        if path.is_dir() and not (path / RESULTS_JSON).exists() and not is_ab_folder(path):
            inner = sorted(p for p in path.iterdir() if (p / RESULTS_JSON).is_file())
            if not inner:
                raise UserError(f"{path}: no {RESULTS_JSON} in it or in its sub-folders "
                                f"(--{side} takes run folders or a folder of run folders)")
            found = [read_run(p) for p in inner]
        else:
            found = [read_run(path)]
        for run in found:
            key = Path(run.source).resolve()
            if key in seen:
                raise UserError(f"{run.source} is given twice for the {side}: each run counts "
                                "once")
            seen.add(key)
            runs.append(run)
    return runs


def run_fingerprint(run: Run) -> str:
    """A hash of what the run measured (its environment and rows, not its id or file name), so
    a copy of a run is recognised wherever it lies and whatever it is called."""
    import hashlib
    import json

    measured = {key: run.doc.get(key) for key in ("env", "calibration", "cases", "tta")}
    return hashlib.sha256(json.dumps(measured, sort_keys=True).encode()).hexdigest()


def distinct_runs(runs: list[Run], side: str) -> tuple[list[Run], list[str]]:
    """The runs with copies left out (same run id, or same content), and a note per copy:
    the run is the unit of evidence, so a run copied three times still counts once."""
    kept, notes, ids, hashes = [], [], {}, {}
    for run in runs:
        digest = run_fingerprint(run)
        first = ids.get(run.run_id) or hashes.get(digest)
        if first is not None:
            why = "run id" if first is ids.get(run.run_id) else "content"
            notes.append(f"{run.source} is a copy of {first.source} (same {why}): counted "
                         f"once on the {side} side")
            continue
        ids[run.run_id], hashes[digest] = run, run
        kept.append(run)
    return kept, notes


def refuse_shared_runs(baseline: list[Run], current: list[Run]) -> None:
    """UserError when one run (by run id or content) is on both sides."""
    base = {r.run_id: r for r in baseline} | {run_fingerprint(r): r for r in baseline}
    for run in current:
        other = base.get(run.run_id) or base.get(run_fingerprint(run))
        if other is not None:
            raise UserError(f"{run.source} and {other.source} are the same run "
                            f"({run.run_id}) on both sides: a run cannot be checked against "
                            "itself; give other baseline or current runs")


def run_problems(baseline: list[Run], current: list[Run], *, normalize: bool, advisory: bool,
                 allow_partial: bool = False) -> list[str]:
    """Refuse (UserError) runs that cannot be checked; return warnings to print.

    A partial baseline needs --allow-partial. Hardware fields (CPU, GPU, threads) may differ
    only with --normalize (with --report-only the mismatch is a warning). Software differences
    are not a problem: the table's header shows them.
    """
    problems = []
    for run in baseline:
        if run.partial and not allow_partial:
            raise UserError(f"{run.source}: the baseline run {run.run_id} is partial "
                            f"({run.progress() or 'interrupted'}); pass --allow-partial to use "
                            "it anyway")
    problems += [f"the current run {run.run_id} is partial ({run.progress() or 'interrupted'})"
                 ": only its finished cases are judged" for run in current if run.partial]
    hardware = identity_mismatches([r.doc for r in baseline + current], HARDWARE_FIELDS)
    if hardware and not normalize:
        line = (f"baseline and current ran on different machines or settings "
                f"({describe_mismatches(hardware)}): use --normalize, or a baseline from this "
                "machine")
        if not advisory:
            raise UserError(line)
        problems.append(line)
    if normalize:
        for run in baseline + current:
            if peak_gflops(run.calibration, None) is None:
                raise UserError(f"--normalize: the run {run.run_id} ({run.source}) has no "
                                "calibration.matmul_gflops to normalise by")
    return problems


# ---------------------------------------------------------------- the verdicts


def _rows(run: Run) -> dict:
    out = {}
    for row in run.cases:
        out.setdefault(row.id, row)
    return out


def check_frame(baseline: Sequence[Run], current: Sequence[Run], *,
                threshold: float = DEFAULT_THRESHOLD, alpha: float = DEFAULT_ALPHA,
                normalize: bool = False):
    """Per case: baseline and current geomean of run medians (s), ratio, p, verdict, note.

    `baseline` and `current` are loaded runs (bench.results.read_run). Columns: case,
    baseline, current, ratio, ci_low, ci_high, ci_level (the test's interval of the ratio), p
    (Bonferroni-adjusted, in the direction of the ratio), detectable
    (minimum detectable slowdown, a fraction), n_baseline, n_current (runs with a timing),
    verdict, note; a geomean row last. With `normalize`, every run's times are expressed at
    the speed of the first baseline run's calibration matmul (per device and dtype).
    Raises UserError when no case id is in both sides.
    """
    import pandas as pd

    from bench.analysis.verdicts import judge_cases, summary_row

    base_runs, cur_runs = list(baseline), list(current)
    base_rows = [_rows(r) for r in base_runs]
    cur_rows = [_rows(r) for r in cur_runs]
    base_ids = {i for rows in base_rows for i in rows}
    cur_ids = {i for rows in cur_rows for i in rows}
    if not base_ids & cur_ids:
        raise UserError(f"no common cases: the baseline ({_ids(base_runs)}) and current "
                        f"({_ids(cur_runs)}) runs share no case id")
    ref = base_runs[0].calibration
    cases = list(dict.fromkeys([*(i for rows in base_rows for i in rows),
                                *(i for rows in cur_rows for i in rows)]))
    sides = [([rows.get(c) for rows in base_rows], [rows.get(c) for rows in cur_rows])
             for c in cases]
    scales = [(_scales(base_runs, ref, b + c, normalize), _scales(cur_runs, ref, b + c,
                                                                   normalize))
              for b, c in sides]
    rows = judge_cases(cases, sides, scales, threshold=threshold, alpha=alpha)
    frame = pd.DataFrame(rows)
    frame["_order"] = frame["verdict"].map({v: i for i, v in enumerate(CHECK_ORDER)})
    frame = frame.sort_values("_order", kind="stable").drop(columns="_order")
    judged = frame.loc[frame["verdict"].isin(JUDGED), "ratio"].dropna()
    return pd.concat([frame, pd.DataFrame([summary_row(judged)])], ignore_index=True)


def _ids(runs: list[Run]) -> str:
    return ", ".join(r.run_id for r in runs)


def _scales(runs: list[Run], ref: dict, rows: list, normalize: bool) -> list[float]:
    """Per run: the factor that brings its times to the reference calibration (1 without)."""
    if not normalize:
        return [1.0] * len(runs)
    first = next((r.case for r in rows if r is not None), None)
    device, dtype = (first.device, first.dtype) if first is not None else (None, "fp32")
    base = peak_gflops(ref, device, dtype)
    out = []
    for run in runs:
        peak = peak_gflops(run.calibration, device, dtype)
        out.append(peak / base if peak is not None and base is not None else math.nan)
    return out


def failing_cases(frame) -> list[str]:
    """Case ids whose verdict fails the check (regression, or ok in baseline and now error)."""
    return list(frame.loc[frame["verdict"].isin(FAILING), "case"])



def _interval_words(frame) -> str:
    levels = frame["ci_level"].dropna() if "ci_level" in frame else []
    if not len(levels):
        return "none (too few runs)"
    level = float(levels.iloc[0])
    return (f"{100 * level:.4g}% two-sided, i.e. one-sided {100 * (1 + level) / 2:.4g}% "
            "bounds")


def render_check(frame, baseline: list[Run], current: list[Run], *, threshold: float,
                 alpha: float, normalize: bool) -> str:
    """The verdict table as Markdown: header, what changed, table, one-line summary."""
    from bench.analysis.fmt import fmt_ms, fmt_num
    from bench.analysis.report import markdown_table
    from bench.identity import software_changes

    shown = frame[["case", "baseline", "current", "ratio", "ci_low", "p", "detectable",
                   "verdict", "note"]].copy()
    shown["ci_low"] = ["–" if not (math.isfinite(lo) and math.isfinite(hi)) else
                       f"{fmt_num(lo)}–{fmt_num(hi)}"
                       for lo, hi in zip(frame["ci_low"], frame["ci_high"], strict=True)]
    shown["baseline"] = [fmt_ms(v) for v in frame["baseline"]]
    shown["current"] = [fmt_ms(v) for v in frame["current"]]
    shown["ratio"] = ["–" if not math.isfinite(v) else f"{fmt_num(v)}×" for v in frame["ratio"]]
    shown["p"] = ["–" if not math.isfinite(v) else f"{v:.2g}" for v in frame["p"]]
    shown["detectable"] = ["–" if not math.isfinite(v) else f"{v * 100:.0f} %"
                           for v in frame["detectable"]]
    shown.insert(7, "runs", [f"{b}/{c}" if name != GEOMEAN else "" for name, b, c in zip(
        frame["case"], frame["n_baseline"], frame["n_current"], strict=True)])
    shown.loc[shown["case"] == GEOMEAN, "case"] = f"**{GEOMEAN}**"
    shown = shown.rename(columns={"baseline": "baseline (ms)", "current": "current (ms)",
                                  "ci_low": "interval", "p": "p (Bonferroni)",
                                  "runs": "runs (b/c)"})
    counts = frame.iloc[:-1]["verdict"].value_counts()
    summary = ", ".join(f"{counts[v]} {v}" for v in CHECK_ORDER if v in counts)
    failed = failing_cases(frame)
    changed = software_changes([r.doc for r in baseline], [r.doc for r in current])
    head = [f"rnnbench check: current {_ids(current)} vs baseline {_ids(baseline)}\n",
            f"- test: geometric mean of per-run medians; regression when more than "
            f"{threshold * 100:g} % slower and significant in a one-sided Welch t-test on log "
            f"run medians at alpha {alpha:g}, Bonferroni over the cases; `interval`: "
            f"{_interval_words(frame)}, the test's (significant only when it excludes 1); "
            "at least "
            f"{MIN_RUNS} runs per side for a verdict; `detectable`: the smallest slowdown "
            "these runs would catch (80 % power)",
            f"- what changed: {'; '.join(changed) if changed else 'no software version'}"]
    if normalize:
        head.append("- times rescaled by each run's calibration matmul speed (--normalize)")
    result = (f"FAIL: {len(failed)} case(s) regressed or broke" if failed
              else "PASS: no regression")
    return "\n".join([*head, "", markdown_table(shown), f"{result} ({summary})\n"])
