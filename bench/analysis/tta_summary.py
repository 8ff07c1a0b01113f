"""Seeds summary of time-to-accuracy rows: median and spread over seeds, and its Markdown table."""

from __future__ import annotations

import math
import statistics
from collections.abc import Sequence

from bench.analysis.fmt import fmt_fixed
from bench.tta_rows import TTARow


def _median(values: Sequence[float]) -> float | None:
    return statistics.median(values) if values else None


def chance_warning(settings: dict) -> str | None:
    """Why a time to target means nothing for these settings, or None: a held-out set of fewer
    than 2 classes, or a target at or below the majority-class rate (chance level)."""
    classes, majority = settings.get("heldout_classes"), settings.get("heldout_majority")
    target = settings.get("target")
    if classes is not None and classes < 2:
        return (f"the held-out set has {classes} class: always guessing it scores 100 %, so "
                "the time to target is meaningless; use a held-out set of every class")
    if majority is not None and target is not None and target <= majority:
        return (f"the target {target:g} is at or below chance level (the commonest class is "
                f"{majority:.1%} of the held-out set), so the time to target is meaningless; "
                "raise --target above it")
    return None


def summarize(rows: Sequence[TTARow]) -> list[dict]:
    """Per impl/unroll/task group: seeds, reached count, median and min–max over seeds.

    A seed that missed the target counts as never reaching it (infinite time), so the median
    time-to-target is None (not reached) once half or more of the seeds missed.
    """
    groups: dict[str, list[TTARow]] = {}
    for row in rows:
        if row.status == "ok":
            groups.setdefault(row.group, []).append(row)
    out = []
    for key, members in groups.items():
        stats = [m.stats for m in members]
        ttt = sorted(s.time_to_target_s if s.reached and s.time_to_target_s is not None
                     else math.inf for s in stats)
        med = statistics.median(ttt)
        reached = [t for t in ttt if math.isfinite(t)]
        accs = [s.best_acc for s in stats if s.best_acc is not None]
        settings = members[0].settings
        out.append({
            "group": key, "task": settings.get("task"), "impl": settings.get("impl"),
            "unroll": settings.get("unroll"), "target": settings.get("target"),
            "seeds": len(members), "reached": len(reached),
            "diverged": sum(bool(s.diverged) for s in stats),
            "ttt_median_s": med if math.isfinite(med) else None,
            "ttt_min_s": min(reached) if reached else None,
            "ttt_max_s": max(reached) if reached else None,
            "epochs_median": _median([s.epochs for s in stats if s.epochs]),
            "best_acc_median": _median(accs), "best_acc_min": min(accs, default=None),
            "best_acc_max": max(accs, default=None),
            "s_per_epoch_median": _median([s.train_s / s.epochs for s in stats
                                           if s.epochs and s.train_s]),
            "warning": chance_warning(settings),
        })
    return out


def format_summary(summary: Sequence[dict], skipped: Sequence[TTARow] = ()) -> str:
    """The seeds summary as a Markdown table (plus skipped/error rows with their reasons)."""

    def num(value, spec=".1f"):
        return fmt_fixed(value, spec, missing="—")

    lines = ["| task | impl/unroll | target | reached | time to target s (median [min–max]) "
             "| epochs (median) | best acc (median [min–max]) | s/epoch |",
             "| --- | --- | --- | --- | --- | --- | --- | --- |"]
    for s in summary:
        spread = (f" [{num(s['ttt_min_s'])}–{num(s['ttt_max_s'])}]"
                  if s["ttt_min_s"] is not None else "")
        div = f", {s['diverged']} diverged" if s["diverged"] else ""
        if s.get("warning"):
            spread += " **meaningless**"
        lines.append(
            f"| {s['task']} | {s['impl']}/{s['unroll']} | {num(s['target'], 'g')} | "
            f"{s['reached']}/{s['seeds']}{div} | {num(s['ttt_median_s'])}{spread} | "
            f"{num(s['epochs_median'])} | {num(s['best_acc_median'], '.3f')} "
            f"[{num(s['best_acc_min'], '.3f')}–{num(s['best_acc_max'], '.3f')}] | "
            f"{num(s['s_per_epoch_median'], '.2f')} |")
    for row in skipped:
        settings = row.settings
        lines.append(f"| {settings.get('task')} | {settings.get('impl')}/"
                     f"{settings.get('unroll')} | — | {row.status}: {row.reason} "
                     "| | | | |")
    warned = {s["warning"] for s in summary if s.get("warning")}
    lines += [f"\n**Warning**: {w}." for w in sorted(warned)]
    return "\n".join(lines)
