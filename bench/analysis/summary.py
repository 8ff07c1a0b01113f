"""The text summary of a step-time run (terminal table) and the busy-machine warning."""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence

from bench.analysis.fmt import fmt_fixed, fmt_time
from bench.analysis.stability import KIND_NAMES, MachineDrift, findings_text, kind_of, run_notes
from bench.intervals import relative_halfwidth
from bench.rows import CaseRow

# A run keeps up to `cores` threads busy itself; load beyond 1.5× the cores means other work.
BUSY_LOAD_PER_CORE = 1.5
WORST = 5  # warned cases the terminal shows without -v


def status_cell(row: CaseRow) -> str:
    """`ok 1.2 ms (1 warn)`, or the row's status."""
    if row.ok:
        warnings = row.stats.warnings
        warn = f" ({len(warnings)} warn)" if warnings else ""
        return f"ok {fmt_time(row.median())}{warn}"
    return row.status


def _num(value: float | None, spec: str) -> str:
    return fmt_fixed(value, spec, missing="-")


def interval_cell(stats) -> str:
    """`±3.1%`: the 95 % interval of the median as a share of it; '-' when there is none."""
    half = relative_halfwidth(stats.median_s, stats.median_lo_s, stats.median_hi_s)
    return "-" if half is None else f"±{half:.1%}"


def _group_lines(members: list[CaseRow], head: str, highlight: bool) -> list[str]:
    ok = sorted((r for r in members if r.ok), key=lambda r: r.median() or float("inf"))
    rest = [r for r in members if not r.ok]
    lines = [head]
    for i, row in enumerate(ok + rest):
        s, c = row.stats, row.case
        mark = "*" if i == 0 and row.ok and len(ok) > 1 else " "
        name = f"{c.impl}/{c.unroll}"
        if row.ok:
            note = ", ".join(dict.fromkeys(KIND_NAMES[kind_of(w)] for w in s.warnings))
            line = (f"{mark} {name:<26} {fmt_time(row.median()):>10} {interval_cell(s):>7} "
                    f"{fmt_time(s.min_s):>10} {s.rounds or 0:>6} {_num(s.gflops, '.2f'):>8} "
                    f"{_num(s.pct_peak, '.1f'):>6} {_num(s.compile_s, '.2f'):>7}s  {note}")
        else:
            line = f"  {name:<26} {row.status + ': ' + (row.reason or '')}"
        if mark == "*" and highlight:
            line = f"\x1b[1;32m{line}\x1b[0m"
        lines.append(line)
    return lines


def _severity(row: CaseRow) -> tuple:
    """Worst first: more kinds of problem, then a wider interval of the median."""
    half = relative_halfwidth(row.stats.median_s, row.stats.median_lo_s, row.stats.median_hi_s)
    return (-len(row.stats.warnings), -(half if half is not None else float("inf")), row.id)


def stability_notes(rows: Sequence[CaseRow]) -> tuple[MachineDrift | None, list[str]]:
    """The run-level drift finding and each advice once (stability.run_notes) of the ok rows."""
    return run_notes((r.stats.warnings, r.stats.samples_s or ()) for r in rows if r.ok)


def warning_lines(rows: Sequence[CaseRow], verbose: bool = False, worst: int = WORST) -> list[str]:
    """The stability warnings in a few lines: one count, the worst cases, each advice once.

    With `verbose`, every warned case is listed; the full list is always in report.md.
    """
    timed = [r for r in rows if r.ok]
    warned = sorted((r for r in timed if r.stats.warnings), key=_severity)
    if not warned:
        return []
    kinds = Counter(kind_of(w) for r in warned for w in r.stats.warnings)
    what = ", ".join(f"{KIND_NAMES[k]} {n}" for k, n in kinds.most_common())
    shown = warned if verbose else warned[:worst]
    lines = ["", f"stability: {len(warned)} of {len(timed)} timed cases flagged ({what}); "
                 + ("all:" if verbose or len(warned) <= worst else f"worst {len(shown)}:")]
    for row in shown:
        lines.append(f"  {row.id}: {findings_text(row.stats.warnings)}")
    machine, advice = stability_notes(timed)
    if machine is not None:
        lines.append(f"  {machine.text}")
    lines += [f"  advice: {tip}" for tip in advice]
    if not verbose and len(warned) > len(shown):
        lines.append("  full list: report.md (Measurement warnings), or rerun with -v")
    return lines


def summary_table(rows: Sequence[CaseRow], highlight: bool = False, verbose: bool = False) -> str:
    """Text table of a run, grouped by the case's group labels (phase, device, shape,
    precision: bench.cases.group_columns); the fastest impl marked with `*`.

    Stability warnings follow as one count line, the worst cases (all with `verbose`) and
    each piece of advice once.
    """
    typed = list(rows)
    groups: dict[tuple, list[CaseRow]] = {}
    for row in typed:
        groups.setdefault(row.case.group_labels(), []).append(row)
    head = (f"  {'impl/unroll':<26} {'median':>10} {'±95%':>7} {'min':>10} {'rounds':>6} "
            f"{'GFLOP/s':>8} {'%peak':>6} {'compile':>8}  note")
    lines = []
    for labels, members in groups.items():
        lines += ["", " · ".join(labels)]
        lines += _group_lines(members, head, highlight)
    lines += warning_lines(typed, verbose=verbose)
    counts = {s: sum(r.status == s for r in typed) for s in ("ok", "skipped", "error")}
    lines += ["", f"{counts['ok']} ok, {counts['skipped']} skipped, {counts['error']} error"
                  "   (* = fastest in its group; medians of raw rounds; ±95%: "
                  "within-run interval of the median)"]
    return "\n".join(lines)


def busy_machine_warning(env: dict) -> str | None:
    """A run-level warning when other work loaded the cores during the run, else None."""
    cores = env.get("cpu_count") or 1
    loads = [x[0] for x in (env.get("loadavg"), env.get("loadavg_end")) if x]
    if not loads or max(loads) <= BUSY_LOAD_PER_CORE * cores:
        return None
    return (f"warning: the machine was busy (1-min load up to {max(loads):.1f} on {cores} "
            "cores, this run included): timings are unreliable; rerun on an idle machine")
