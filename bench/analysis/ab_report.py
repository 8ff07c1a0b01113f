"""Rendering of an A/B run: what differs between the sides, verdict table, report.md, figure."""

from __future__ import annotations

import math

from bench.analysis.ab_stats import GEOMEAN_LABEL, summary_counts
from bench.analysis.fmt import fmt_fixed, fmt_time
from bench.verdict import BROKEN, IMPROVEMENT, REGRESSION, SAME, UNRELIABLE

# Environment-fingerprint fields compared between the sides (what may have changed).
ENV_FIELDS = ("python", "tensorflow", "keras", "tf_keras", "numpy", "cuda", "cudnn", "cpu_model",
              "cpu_count", "gpus", "intra_op_threads", "inter_op_threads", "git_commit",
              "git_dirty", "rnnbench", "platform", "hostname")
SIDE_FIELDS = ("python", "src", "src_sha")


def differences(a: dict, b: dict) -> dict:
    """What differs between two sides of ab.json: {field: [A, B]} (env vars as `env:NAME`)."""
    out = {}
    for key in SIDE_FIELDS:
        if a.get(key) != b.get(key):
            out[key] = [a.get(key), b.get(key)]
    env_a, env_b = a.get("env_vars") or {}, b.get("env_vars") or {}
    for key in sorted(set(env_a) | set(env_b)):
        if env_a.get(key) != env_b.get(key):
            out[f"env:{key}"] = [env_a.get(key), env_b.get(key)]
    fa, fb = a.get("env_fingerprint") or {}, b.get("env_fingerprint") or {}
    for key in ENV_FIELDS:
        if fa.get(key) != fb.get(key):
            out[key] = [fa.get(key), fb.get(key)]
    return out


def _level(value: float) -> str:
    return f"{100 * value:.4g}%"


def interval_label(level: float | None, judged: int | None = None) -> str:
    """How to read an interval of coverage `level`: it is the test's, e.g. `90% two-sided
    (one-sided 95% bounds, Bonferroni over 3 cases)`."""
    if level is None or not math.isfinite(level):
        return "no interval"
    over = f", Bonferroni over {judged} cases" if judged and judged > 1 else ""
    return f"{_level(level)} two-sided (one-sided {_level((1 + level) / 2)} bounds{over})"


def interval_text(frame, test: dict | None) -> str:
    """What the interval column of a verdict table is (the level of its judged rows)."""
    cases = frame[(frame["case"] != GEOMEAN_LABEL) & frame["ci_level"].notna()]
    if cases.empty:
        return "none shown (no case could be judged)"
    judged = (test or {}).get("judged")
    levels = cases["ci_level"].astype(float)
    common = float(levels.mode().iloc[0])
    earlier = (", looks included; a change called at an earlier look shows that look's wider "
               "interval" if (levels > common + 1e-12).any() else "")
    return (f"{interval_label(common, judged)}{earlier}, the test's: a case is "
            "significant only when its interval excludes 1")


def _process_sd(value) -> str:
    return "not measured (one worker generation)" if value is None else _ratio(value)


def _pct(value) -> str:
    return fmt_fixed(value, ".1%", missing="-")


def _ratio(value) -> str:
    return fmt_fixed(value, ".3f", missing="-")


def verdict_display(frame):
    """The verdict table as text cells (one row per case, geometric mean last)."""
    import pandas as pd

    rows = []
    for row in frame.to_dict("records"):
        ci = (f"{_ratio(row['ci_low'])}–{_ratio(row['ci_high'])}"
              if _ratio(row["ci_low"]) != "-" else "-")
        pairs = row["pairs"]
        pairs = "-" if pairs is None or (isinstance(pairs, float) and math.isnan(pairs)) \
            or str(pairs) == "<NA>" else str(pairs)
        name = f"**{row['case']}**" if row["case"] == GEOMEAN_LABEL else row["case"]
        rows.append({"case": name, "A median": fmt_time(row["a_median"]),
                     "B median": fmt_time(row["b_median"]), "B/A": _ratio(row["ratio"]),
                     "interval": ci, "mde": _pct(row["mde"]), "pairs": pairs,
                     "stopped": _stop_reason(row.get("stop")),
                     "verdict": row["verdict"], "note": str(row["note"] or "")})
    return pd.DataFrame(rows, columns=["case", "A median", "B median", "B/A", "interval", "mde",
                                       "pairs", "stopped", "verdict", "note"])


def _stop_reason(stop) -> str:
    """`settled same after 140 pairs` -> `settled same` (the pairs have their own column)."""
    return str(stop).split(" after ")[0] if isinstance(stop, str) and stop else "-"


# Verdicts the terminal lists in full, in this order; the rest are summarised.
LISTED = (REGRESSION, IMPROVEMENT, BROKEN)
WORST = 3


def _case_line(row: dict) -> str:
    ci = (f" [{_ratio(row['ci_low'])}–{_ratio(row['ci_high'])}]"
          if _ratio(row["ci_low"]) != "-" else "")
    note = f"  ({row['note']})" if row.get("note") else ""
    return f"  {row['case']}  B/A {_ratio(row['ratio'])}{ci}{note}"


def terminal_summary(doc: dict, frame, failed: bool, report: str = "report.md") -> str:
    """What `ab` prints: what differs between the sides, then the regressions, improvements
    and broken cases, the worst few of the rest, then the verdict line (last)."""
    diff = doc.get("differences") or {}
    lines = (["compared (A → B):", *(f"  {k}: {a} → {b}" if a != "" else f"  {k}: {b}"
                                     for k, (a, b) in diff.items())]
             if diff else ["compared: nothing differs between the sides (an A/A run)"])
    cases = [r for r in frame.to_dict("records") if r["case"] != GEOMEAN_LABEL]
    for verdict in LISTED:
        hits = [r for r in cases if r["verdict"] == verdict]
        if hits:
            lines.append(f"{verdict} ({len(hits)}):")
            lines += [_case_line(r) for r in hits]
    rest = [r for r in cases if r["verdict"] not in LISTED]
    if rest:
        counts = {v: sum(r["verdict"] == v for r in rest) for v in dict.fromkeys(
            r["verdict"] for r in rest)}
        ranked = sorted((r for r in rest if _finite(r["ratio"])),
                        key=lambda r: -abs(math.log(r["ratio"])))[:WORST]
        lines.append(f"the rest ({', '.join(f'{n} {v}' for v, n in counts.items())})"
                     + (f"; the {len(ranked)} largest changes:" if ranked else ""))
        lines += [_case_line(r) + f"  {r['verdict']}" for r in ranked]
    geo = next((r for r in frame.to_dict("records") if r["case"] == GEOMEAN_LABEL), None)
    if geo and _finite(geo["ratio"]):
        lines.append(f"geometric mean B/A {_ratio(geo['ratio'])} over the judged cases; "
                     f"full table: {report}")
    stops = _stop_words(frame)
    if stops:
        lines.append(f"stopped: {stops}")
    lines.append(f"interval: {interval_text(frame, doc.get('test'))}")
    lines.append(summary_line(frame, failed))
    return "\n".join(lines)


def _finite(value) -> bool:
    return isinstance(value, int | float) and math.isfinite(value)


def summary_line(frame, failed: bool) -> str:
    """`PASS`/`FAIL` with the verdict counts and the median mde of the judged cases."""
    counts = summary_counts(frame)
    parts = ", ".join(f"{n} {v}" for v, n in counts.items() if n)
    cases = frame[frame["case"] != GEOMEAN_LABEL]
    mdes = cases["mde"].dropna()
    mdes = mdes[mdes.map(math.isfinite)]
    mde = f"; median detectable slowdown {mdes.median():.1%}" if len(mdes) else ""
    return f"{'FAIL' if failed else 'PASS'}: {parts or 'no cases'}{mde}"


def _pairs_words(s: dict) -> str:
    """How many pairs a case got: all of them, or up to that many with early stops."""
    if s.get("target_mde") is None:
        return f"{s.get('blocks')} pairs of blocks per case"
    return (f"up to {s.get('blocks')} pairs of blocks per case (a case stops once settled: "
            f"`same` at a detectable slowdown of {s['target_mde']:.0%} or less, looks every "
            f"{s.get('look_every')} passes, a change callable at {s.get('rejection_looks')} "
            "of them)")


def _stop_words(frame) -> str:
    """'30 settled same, 15 all pairs; pairs per case 40-300 (median 140)'."""
    if "stop" not in frame:
        return ""
    cases = frame[frame["case"] != GEOMEAN_LABEL]
    reasons = cases["stop"].dropna().map(_stop_reason)
    if reasons.empty:
        return ""
    counts = reasons.value_counts()
    pairs = cases.loc[reasons.index, "pairs"].dropna().astype(int)
    span = (f"; pairs per case {pairs.min()}–{pairs.max()} (median {int(pairs.median())})"
            if len(pairs) else "")
    return ", ".join(f"{n} {r}" for r, n in counts.items()) + span


SETUP_STEPS = (("start", "start and TensorFlow import"), ("check", "checks and equivalence"),
               ("build", "build"), ("first_call", "first call (trace)"), ("settle", "kernel"))


def _setup_lines(setup) -> list[str]:
    """One line per worker: its set-up wall time and where it went."""
    if not isinstance(setup, list) or not setup:
        return []
    lines = ["Set-up per worker (seconds; at most one worker per CPU at a time):", ""]
    for w in setup:
        steps = ", ".join(f"{label} {w[key]:.1f}" for key, label in SETUP_STEPS
                          if isinstance(w.get(key), int | float))
        wall = w.get("wall")
        lines.append(f"- {w.get('side')}{w.get('generation')}: "
                     + (f"{wall:.1f} s" if isinstance(wall, int | float) else "?")
                     + (f" ({steps})" if steps else ""))
    return [*lines, ""]


def _machine(doc: dict) -> str:
    env = (doc.get("sides", {}).get("A", {}).get("env_fingerprint")) or {}
    gpus = ", ".join(g.get("name", "?") for g in env.get("gpus") or []) or "no GPU"
    return (f"{env.get('hostname', '?')}: {env.get('cpu_model', '?')} "
            f"({env.get('cpu_count', '?')} cores), {gpus}, {env.get('os', '?')}; load "
            f"{env.get('loadavg')} at the start")


def _changes(doc: dict) -> list[str]:
    diff = doc.get("differences") or {}
    if not diff:
        return ["- nothing: both sides are the same interpreter, source and environment "
                "(an A/A run)"]
    return [f"- **{key}**: A `{a}` → B `{b}`" if a != "" else f"- **{key}**: {b}"
            for key, (a, b) in diff.items()]


FIGURE_NAME = "ab_ratios.png"
FIGURE_CAPTION = "per-case ratio B/A with its interval"


def report_markdown(doc: dict, frame, *, failed: bool) -> str:
    """report.md of an A/B run folder."""
    from bench.analysis.document import to_markdown

    return to_markdown(report_parts(doc, frame, failed=failed))


def report_parts(doc: dict, frame, *, failed: bool, png: bytes | None = b"") -> list:
    """report.md and report.html of an A/B run as document parts (the same frame for both);
    `png` is the figure (b"": only linked, as in report.md; None: no figure)."""
    from bench.analysis.document import Figure, Table

    s = doc.get("settings", {})
    sides = doc.get("sides", {})
    side_lines = []
    for name in ("A", "B"):
        side = sides.get(name, {})
        env = side.get("env_fingerprint") or {}
        src = side.get("src") or "installed package"
        if side.get("src_sha"):
            src += f" ({side['src_sha'][:12]})"
        side_lines.append(f"- **{name}**: `{side.get('python')}`, source {src}, TensorFlow "
                          f"{env.get('tensorflow', '?')}, env {side.get('env_vars') or {}}")
    status = doc.get("status", "complete")
    lines = [
        f"# A/B run {doc.get('run_id', '')}", "",
        f"`{doc.get('command', '')}`", "",
        f"Status: **{status}**" + (f" — {doc['error']}" if doc.get("error") else ""), "",
        "## What changed between the sides", "", *_changes(doc), "", *side_lines, "",
        "## Machine", "", _machine(doc), "",
        "## Settings", "",
        _pairs_words(s) + " (ABBA order) over "
        f"{s.get('generations', 1)} worker generation(s), {s.get('rounds')} timed "
        f"rounds per block after {s.get('warmup')} untimed call(s); process-to-process spread "
        f"of a case's log ratio {_process_sd(doc.get('process_sd'))}; threshold "
        f"{s.get('threshold', 0):.0%}, alpha {s.get('alpha')}, threads {s.get('threads')}, "
        f"xla {s.get('xla')}, equivalence check {s.get('equivalence')}; "
        f"{doc.get('passes_done', 0)} pass(es) done in {doc.get('elapsed_s', 0):.0f}s.", "",
        *_setup_lines(doc.get("setup")),
        "## Verdicts", "", summary_line(frame, failed), "",
        f"Interval: {interval_text(frame, doc.get('test'))}.", ""]
    figure = [] if png is None else [Figure(FIGURE_NAME, FIGURE_CAPTION, png)]
    stops = _stop_words(frame)
    if stops:
        lines[-1:-1] = [f"Stopped: {stops}.", ""]
    tail = [
        "## Method", "",
        "Each side is a long-lived worker process that builds and traces every case once; the "
        "pairs are split over fresh worker generations, because one process can be a few "
        "percent off for one case for its whole life. For "
        "each case the coordinator alternates blocks, A then B on even passes and B then A on "
        "odd ones, so slow drift of the machine hits both sides alike; only one side runs at a "
        "time. A block's statistic is the median of its rounds; per pair k, "
        "d_k = log(B_k / A_k). B/A is exp(mean d); its interval uses the spread of d within a "
        "generation plus the process-to-process spread measured between generations (pooled "
        "over the cases), with Student t and Welch-Satterthwaite degrees of freedom. "
        "Each direction is tested once, one-sided at alpha/m (Bonferroni over the m judged "
        "cases), and the interval shown is that test: its ends are the one-sided (1 - alpha/m) "
        "bounds, together a two-sided (1 - 2 alpha/m) interval. "
        "A case is a regression only when B/A exceeds 1 + threshold and the interval lies "
        "above 1; improvement likewise below 1 / (1 + threshold) and entirely below 1, so no "
        "significant verdict shows an interval that holds 1. Otherwise it is `same` when the "
        "run could have detected a threshold-sized slowdown (mde, at 80 % power and the level "
        "alpha/m), else `unreliable` with the pairs it would need. With one worker generation "
        "the process-to-process spread cannot be measured and no prior is assumed: every "
        "judged case is then `unreliable` (rerun with --generations 2 or more). "
        "Adaptive passes: the verdicts are looked at every few passes; a case stops being "
        "measured once it is settled: `same` when, tested at the final look's level, its "
        "interval lies within the threshold both ways and its mde is at most the target "
        "(no alpha is spent on that), or a regression or improvement at one of a few "
        "rejection looks, each testing at its share of alpha (Bonferroni over the looks with "
        "O'Brien-Fleming-shaped shares, so the family-wise rate stays at alpha). The passes "
        "saved go to the cases not yet settled, up to the most pairs per case. "
        "A case that errors on B only is `broken`; "
        "on A only it is not judged (`unreliable`).", "",
        "Exit codes: 1 on any regression or a case broken on B only, 0 otherwise, 2 on "
        "unusable input (a side that cannot start or dies, sides selecting different cases), "
        "130 when interrupted (ab.json then holds what was measured, status partial).", "",
    ]
    return ["\n".join(lines), Table(verdict_display(frame)), *figure, "\n".join(tail)]


def ratio_figure(frame, threshold: float, alpha: float = 0.05) -> bytes:
    """Per-case B/A with its interval (horizontal bars), lines at 1 and 1+threshold; PNG."""
    from bench.analysis.plots import figure, short_labels, to_png

    rows = frame[frame["ratio"].map(lambda v: v is not None and math.isfinite(v))]
    rows = rows.iloc[::-1]  # attention first reads top-down
    names = list(rows["case"])
    cases = [c for c in names if c != GEOMEAN_LABEL]
    short = dict(zip(cases, short_labels(cases), strict=True))
    labels = [short.get(c, c) for c in names]
    fig = figure(8.0, max(2.5, 0.22 * len(rows) + 1.2))
    ax = fig.add_subplot()
    colors = {REGRESSION: "#C44E52", IMPROVEMENT: "#55A868", SAME: "#4C72B0",
              UNRELIABLE: "#999999", "-": "#000000"}
    y = list(range(len(rows)))
    for yi, row in zip(y, rows.to_dict("records"), strict=True):
        lo, hi = row["ci_low"], row["ci_high"]
        color = colors.get(row["verdict"], "#999999")
        if lo is not None and math.isfinite(lo) and math.isfinite(hi):
            ax.errorbar(row["ratio"], yi, xerr=[[row["ratio"] - lo], [hi - row["ratio"]]],
                        fmt="o", color=color, ms=4, capsize=2, lw=1)
        else:
            ax.plot(row["ratio"], yi, "o", color=color, ms=4)
    ax.axvline(1.0, color="#333333", lw=1)
    ax.axvline(1.0 + threshold, color="#C44E52", lw=1, ls="--",
               label=f"threshold +{threshold:.0%}")
    ax.axvline(1.0 / (1.0 + threshold), color="#55A868", lw=1, ls=":")
    ax.set_yticks(y, labels, fontsize=7)
    levels = frame.loc[frame["case"] != GEOMEAN_LABEL, "ci_level"].dropna()
    what = interval_label(float(levels.iloc[0])) if len(levels) else "none"
    ax.set_xlabel(f"B / A step time (ratio of block medians; interval: {what})", fontsize=8)
    ax.set_title("A/B per case: above 1 = B slower", fontsize=10)
    ax.legend(loc="lower right", fontsize=7)
    return to_png(fig)
