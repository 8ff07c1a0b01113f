"""Regression check of a run against a baseline: slower than a threshold and U-test significant.

Exit codes: 1 when any case regressed (or newly errors), 0 otherwise, 2 on unusable input.
`--report-only` prints the same table but always exits 0 on usable input (noisy CI machines).
"""

from __future__ import annotations

import math
import re

from bench.errors import UserError
from bench.identity import (
    HARDWARE_FIELDS,
    SOFTWARE_FIELDS,
    describe_mismatches,
    identity_mismatches,
)
from bench.results import load_run, peak_gflops

DEFAULT_THRESHOLD = 0.10
DEFAULT_ALPHA = 0.05
FAILING = ("regression", "broken")
# Table order: what needs attention first.
VERDICT_ORDER = ("regression", "broken", "unreliable", "changed", "improvement", "same",
                 "no baseline", "skipped", "error", "baseline only", "current only")
GEOMEAN = "geomean"


def add_arguments(parser) -> None:
    """Register `rnnbench check` options."""
    parser.add_argument("--baseline", required=True, metavar="RUN",
                        help="baseline run folder (or results.json), e.g. reports/baselines/…")
    parser.add_argument("--current", required=True, metavar="RUN",
                        help="the run to check (folder or results.json)")
    parser.add_argument("--threshold", default="10%", type=parse_threshold, metavar="PCT",
                        help="slowdown of the median that counts as a regression: 10%% or 0.10 "
                             "(default 10%%)")
    parser.add_argument("--alpha", default=DEFAULT_ALPHA, type=parse_alpha, metavar="P",
                        help="significance level of the one-sided Mann-Whitney U test on the raw "
                             "samples (default 0.05)")
    parser.add_argument("--normalize", action="store_true",
                        help="divide each run's times by its own calibration matmul time "
                             "(calibration.matmul_gflops) so a baseline from another machine "
                             "can be used")
    parser.add_argument("--report-only", action="store_true",
                        help="print the verdict table but exit 0 even on regressions, and only "
                             "warn about environment mismatches (for noisy shared CI machines); "
                             "unusable input still exits 2")


def parse_threshold(text: str) -> float:
    """`10%` or `0.10` → 0.10; anything else is an argparse error."""
    import argparse

    match = re.fullmatch(r"\s*([0-9]*\.?[0-9]+)\s*(%?)\s*", str(text))
    if not match:
        raise argparse.ArgumentTypeError(f"{text!r} is not a threshold; write 10% or 0.10")
    value = float(match.group(1)) / (100.0 if match.group(2) else 1.0)
    if not match.group(2) and value >= 1.0:
        raise argparse.ArgumentTypeError(f"{text!r} is ambiguous; write {text}% or a fraction "
                                         "below 1 such as 0.10")
    if value <= 0:
        raise argparse.ArgumentTypeError("the threshold must be above 0")
    return value


def parse_alpha(text: str) -> float:
    """A significance level strictly between 0 and 1."""
    import argparse

    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
    if not 0.0 < value < 1.0:
        raise argparse.ArgumentTypeError("alpha must be between 0 and 1, e.g. 0.05")
    return value


def main(args) -> int:
    """Run `rnnbench check`; return 1 on regression (0 with --report-only), 0 otherwise."""
    import sys

    baseline = load_run(args.baseline)
    current = load_run(args.current)
    warnings = environment_problems(baseline, current, normalize=args.normalize,
                                    advisory=args.report_only)
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


def environment_problems(baseline: dict, current: dict, *, normalize: bool,
                         advisory: bool) -> list[str]:
    """Refuse (UserError) runs that are not comparable; return warnings when `advisory`.

    Software versions must match; hardware fields (CPU, GPU, threads) may differ only with
    --normalize. With --report-only every mismatch is a warning instead.
    """
    docs = [baseline, current]
    software = identity_mismatches(docs, SOFTWARE_FIELDS)
    hardware = identity_mismatches(docs, HARDWARE_FIELDS)
    problems = []
    if software:
        problems.append(f"baseline and current differ in {describe_mismatches(software)}: "
                        "record a new baseline with this software (rnnbench compare "
                        "--cross-machine shows the differences)")
    if hardware and not normalize:
        problems.append(f"baseline and current ran on different machines or settings "
                        f"({describe_mismatches(hardware)}): use --normalize, or a baseline "
                        "from this machine")
    if problems and not advisory:
        raise UserError(problems[0])
    if normalize:
        for name, doc in (("baseline", baseline), ("current", current)):
            if peak_gflops(doc.get("calibration") or {}, None) is None:
                raise UserError(f"--normalize: the {name} run ({doc['run_id']}) has no "
                                "calibration.matmul_gflops to normalise by")
    return problems


# ---------------------------------------------------------------- the verdicts


def _rows(doc: dict) -> dict[str, dict]:
    out = {}
    for row in doc["cases"]:
        out.setdefault(row["id"], row)
    return out


def _samples(row: dict, scale: float) -> list[float]:
    return [float(s) * scale for s in (row.get("stats") or {}).get("samples_s") or []
            if isinstance(s, int | float) and math.isfinite(s) and s > 0]


def judge(base: list[float], cur: list[float], *, threshold: float, alpha: float) -> dict:
    """Verdict for one case from raw samples: ratio of medians, p, verdict, note."""
    from bench.analysis.stats import (
        mann_whitney_p,
        median,
        min_p_value,
        robust_log_sigma,
        rounds_needed,
    )

    ratio = median(cur) / median(base)
    sigma = math.sqrt((_nan0(robust_log_sigma(base)) ** 2 + _nan0(robust_log_sigma(cur)) ** 2)
                      / 2)
    need = rounds_needed(sigma, threshold, alpha)
    out = {"ratio": ratio, "p": math.nan, "n_baseline": len(base), "n_current": len(cur)}
    if min_p_value(len(base), len(cur)) >= alpha:
        return {**out, "verdict": "unreliable",
                "note": f"too few rounds ({len(base)} vs {len(cur)}) for any p < {alpha:g}; "
                        f"record ≥ {need} per side"}
    slower = ratio >= 1.0
    p = mann_whitney_p(base, cur, "greater" if slower else "less")
    out["p"] = p
    if ratio > 1.0 + threshold:
        if p < alpha:
            return {**out, "verdict": "regression",
                    "note": f"{(ratio - 1) * 100:.1f} % slower"}
        return {**out, "verdict": "unreliable",
                "note": f"{(ratio - 1) * 100:.1f} % slower but not significant "
                        f"(p ≥ {alpha:g}); ~{need} rounds per side would settle it"}
    if ratio < 1.0 / (1.0 + threshold):
        if p < alpha:
            return {**out, "verdict": "improvement",
                    "note": f"{(1 - ratio) * 100:.1f} % faster"}
        return {**out, "verdict": "same", "note": "faster, but not significant"}
    return {**out, "verdict": "same", "note": ""}


def _nan0(value: float) -> float:
    return 0.0 if not math.isfinite(value) else value


def check_frame(baseline: dict, current: dict, *, threshold: float = DEFAULT_THRESHOLD,
                alpha: float = DEFAULT_ALPHA, normalize: bool = False):
    """Per case: baseline and current median (s), ratio, p, verdict, note; a geomean row last.

    With `normalize`, current times are rescaled to the baseline machine's calibration speed
    (t · gflops_current / gflops_baseline, per device), i.e. each run divided by its own
    calibration time.
    Raises UserError when no case id is in both runs.
    """
    import pandas as pd

    from bench.analysis.stats import geomean

    base_rows, cur_rows = _rows(baseline), _rows(current)
    if not set(base_rows) & set(cur_rows):
        raise UserError(f"no common cases: the baseline ({baseline['run_id']}) and current "
                        f"({current['run_id']}) runs share no case id")
    rows = [_case_row(case, base_rows.get(case), cur_rows.get(case), baseline, current,
                      threshold=threshold, alpha=alpha, normalize=normalize)
            for case in dict.fromkeys([*base_rows, *cur_rows])]
    frame = pd.DataFrame(rows)
    frame["_order"] = frame["verdict"].map({v: i for i, v in enumerate(VERDICT_ORDER)})
    frame = frame.sort_values("_order", kind="stable").drop(columns="_order")
    judged = frame[frame["verdict"].isin(["regression", "improvement", "same", "unreliable"])]
    judged = judged["ratio"].dropna()
    summary = {"case": GEOMEAN, "baseline": math.nan, "current": math.nan,
               "ratio": geomean(judged), "p": math.nan, "verdict": "",
               "note": f"over {len(judged)} cases that ran in both", "n_baseline": 0,
               "n_current": 0}
    return pd.concat([frame, pd.DataFrame([summary])], ignore_index=True)


def _case_row(case: str, b: dict | None, c: dict | None, baseline: dict, current: dict, *,
              threshold: float, alpha: float, normalize: bool) -> dict:
    """The check row of one case id (either side may be missing or not ok)."""
    from bench.analysis.stats import median

    row = {"case": case, "baseline": math.nan, "current": math.nan, "ratio": math.nan,
           "p": math.nan, "verdict": "", "note": "", "n_baseline": 0, "n_current": 0}
    if b is None or c is None:
        present = b or c
        row["verdict"] = "current only" if b is None else "baseline only"
        row["note"] = present["status"] + (f": {present['reason']}" if present.get("reason")
                                           else "")
        return row
    scale = 1.0
    if normalize:
        device = (c.get("case") or {}).get("device")
        peaks = [peak_gflops(d.get("calibration") or {}, device) for d in (baseline, current)]
        scale = peaks[1] / peaks[0] if None not in peaks else math.nan
    bs, cs = _samples(b, 1.0), _samples(c, scale) if math.isfinite(scale) else []
    row["baseline"] = median(bs) if bs else math.nan
    row["current"] = median(cs) if cs else math.nan
    if c["status"] != "ok":
        row["verdict"] = ("broken" if c["status"] == "error" and b["status"] == "ok"
                          else c["status"])
        row["note"] = c.get("reason") or ""
    elif b["status"] != "ok":
        row["verdict"] = "no baseline"
        row["note"] = f"baseline {b['status']}" + (f": {b['reason']}" if b.get("reason")
                                                   else "")
    elif not math.isfinite(scale):
        row["verdict"] = "unreliable"
        row["note"] = f"--normalize: no matmul calibration for device {device}"
    elif not bs or not cs:
        row["verdict"] = "unreliable"
        row["note"] = "no raw samples stored: cannot test significance"
    else:
        row.update(judge(bs, cs, threshold=threshold, alpha=alpha))
        bv, cv = b.get("code_version"), c.get("code_version")
        if bv and cv and bv != cv:
            row["verdict"] = "changed"
            row["note"] = (f"benchmark code changed ({bv} → {cv}), not judged: re-record "
                           "the baseline")
    return row


def failing_cases(frame) -> list[str]:
    """Case ids whose verdict fails the check (regression, or ok in baseline and now error)."""
    return list(frame.loc[frame["verdict"].isin(FAILING), "case"])


def render_check(frame, baseline: dict, current: dict, *, threshold: float, alpha: float,
                 normalize: bool) -> str:
    """The verdict table as Markdown with a one-line summary."""
    from bench.analysis.report import fmt_ms, fmt_num, markdown_table

    shown = frame[["case", "baseline", "current", "ratio", "p", "verdict", "note"]].copy()
    shown["baseline"] = [fmt_ms(v) for v in frame["baseline"]]
    shown["current"] = [fmt_ms(v) for v in frame["current"]]
    shown["ratio"] = ["–" if not math.isfinite(v) else f"{fmt_num(v)}×" for v in frame["ratio"]]
    shown["p"] = ["–" if not math.isfinite(v) else f"{v:.2g}" for v in frame["p"]]
    shown.loc[shown["case"] == GEOMEAN, "case"] = f"**{GEOMEAN}**"
    shown = shown.rename(columns={"baseline": "baseline (ms)", "current": "current (ms)"})
    counts = frame.iloc[:-1]["verdict"].value_counts()
    summary = ", ".join(f"{counts[v]} {v}" for v in VERDICT_ORDER if v in counts)
    failed = failing_cases(frame)
    head = (f"rnnbench check: {current['run_id']} vs baseline {baseline['run_id']} — "
            f"threshold {threshold * 100:g} %, one-sided Mann-Whitney U at alpha {alpha:g}"
            + ("; current times rescaled by the runs' calibration matmul speeds "
               "(--normalize)" if normalize else "") + "\n")
    result = (f"FAIL: {len(failed)} case(s) regressed or broke" if failed
              else "PASS: no regression")
    return "\n".join([head, markdown_table(shown), f"{result} ({summary})\n"])
