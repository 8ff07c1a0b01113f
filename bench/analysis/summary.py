"""The text summary of a step-time run (terminal table) and the busy-machine warning."""

from __future__ import annotations

from collections.abc import Sequence

from bench.analysis.fmt import fmt_fixed, fmt_time
from bench.cases import Case
from bench.rows import CaseRow

# A run keeps up to `cores` threads busy itself; load beyond 1.5× the cores means other work.
BUSY_LOAD_PER_CORE = 1.5


def status_cell(row: dict) -> str:
    """`ok 1.2 ms (1 warn)`, or the row's status."""
    typed = CaseRow.from_dict(row)
    if typed.ok:
        warnings = typed.stats.warnings
        warn = f" ({len(warnings)} warn)" if warnings else ""
        return f"ok {fmt_time(typed.median())}{warn}"
    return typed.status


def _num(value: float | None, spec: str) -> str:
    return fmt_fixed(value, spec, missing="-")


def _group_lines(members: list[CaseRow], head: str, highlight: bool) -> list[str]:
    ok = sorted((r for r in members if r.ok), key=lambda r: r.median() or float("inf"))
    rest = [r for r in members if not r.ok]
    lines = [head]
    for i, row in enumerate(ok + rest):
        s, c = row.stats, row.case
        mark = "*" if i == 0 and row.ok and len(ok) > 1 else " "
        name = f"{c['impl']}/{c['unroll']}"
        if row.ok:
            note = f"{len(s.warnings)} warning(s)" if s.warnings else ""
            line = (f"{mark} {name:<26} {fmt_time(row.median()):>10} "
                    f"{fmt_time(s.iqr_s):>10} {fmt_time(s.min_s):>10} "
                    f"{s.rounds or 0:>6} {_num(s.gflops, '.2f'):>8} "
                    f"{_num(s.pct_peak, '.1f'):>6} "
                    f"{_num(s.compile_s, '.2f'):>7}s  {note}")
        else:
            line = f"  {name:<26} {row.status + ': ' + (row.reason or '')}"
        if mark == "*" and highlight:
            line = f"\x1b[1;32m{line}\x1b[0m"
        lines.append(line)
    return lines


def summary_table(rows: Sequence[dict], highlight: bool = False, advice: str = "") -> str:
    """Text table of a run, grouped by device/shape/phase; the fastest impl marked with `*`.

    `advice` is the sentence the stability warnings end with: shown once, not per case.
    """
    typed = [CaseRow.from_dict(r, "this run", i) for i, r in enumerate(rows)]
    groups: dict[tuple, list[CaseRow]] = {}
    for row in typed:
        case = Case.from_params(row.case)
        key = (case.device, case.shape.label, case.dtype + ("-xla" if case.xla else ""),
               case.phase)
        groups.setdefault(key, []).append(row)
    head = (f"  {'impl/unroll':<26} {'median':>10} {'IQR':>10} {'min':>10} {'rounds':>6} "
            f"{'GFLOP/s':>8} {'%peak':>6} {'compile':>8}  note")
    lines = []
    for (device, shape, dtype, phase), members in groups.items():
        lines += ["", f"{phase} · {device} · {shape} · {dtype}"]
        lines += _group_lines(members, head, highlight)
    warned = [r for r in typed if r.ok and r.stats.warnings]
    if warned:
        lines += ["", f"stability warnings ({len(warned)} case(s)):"]
        for row in warned:
            texts = [(w.replace("; " + advice, "").replace(advice, "") if advice else w
                      ).rstrip("; ") for w in row.stats.warnings]
            lines.append(f"  {row.id}: " + " | ".join(texts))
        if advice:
            lines.append(f"  advice: {advice}")
    counts = {s: sum(r.status == s for r in typed) for s in ("ok", "skipped", "error")}
    lines += ["", f"{counts['ok']} ok, {counts['skipped']} skipped, {counts['error']} error"
                  "   (* = fastest in its group; times are medians of raw rounds)"]
    return "\n".join(lines)


def busy_machine_warning(env: dict) -> str | None:
    """A run-level warning when other work loaded the cores during the run, else None."""
    cores = env.get("cpu_count") or 1
    loads = [x[0] for x in (env.get("loadavg"), env.get("loadavg_end")) if x]
    if not loads or max(loads) <= BUSY_LOAD_PER_CORE * cores:
        return None
    return (f"warning: the machine was busy (1-min load up to {max(loads):.1f} on {cores} "
            "cores, this run included): timings are unreliable; rerun on an idle machine")
