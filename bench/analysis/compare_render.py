"""The comparison as document parts (compare.md and report.html): runs, summary per
implementation, the table of cases timed everywhere, the heatmap, the appendix (no TF)."""

from __future__ import annotations

import math

from bench.analysis import compare_frames as cf
from bench.analysis.document import Figure, Part, Table
from bench.analysis.fmt import fmt_bytes, fmt_ms, fmt_num
from bench.analysis.stats import GEOMEAN
from bench.identity import SOFTWARE_FIELDS, describe_mismatches, identity, identity_mismatches

HEATMAP = "ratios.png"


def ratio_text(value, low=math.nan, high=math.nan, significant: bool = False) -> str:
    """`0.91× [0.88–0.95] *`: the ratio, its 95 % interval when known, `*` when it excludes 1."""
    if value is None or not math.isfinite(value):
        return "–"
    text = f"{fmt_num(value)}×"
    if math.isfinite(low) and math.isfinite(high):
        text += f" [{fmt_num(low)}–{fmt_num(high)}]"
    return text + (" *" if significant else "")


def _ci_ms(median: float, low: float, high: float) -> str:
    from bench.analysis.fmt import fmt_ci

    return fmt_ci(median, low, high) if math.isfinite(low) else fmt_ms(median)


def runs_frame(sets: list[cf.RunSet]):
    """One row per RunSet: label, runs, run ids, host, TensorFlow, CPU, GPU, threads, matmul."""
    import pandas as pd

    rows = []
    for runset in sets:
        doc = runset.runs[0].doc
        ident = identity(doc.get("env") or {})
        ids = [r.run_id for r in runset.runs]
        rows.append({"run": runset.label, "name": runset.name, "runs": len(ids),
                     "run ids": ", ".join(ids) if len(ids) <= 3 else f"{ids[0]} … {ids[-1]}",
                     "host": (doc.get("env") or {}).get("hostname"),
                     "tensorflow": ident["tensorflow"], "cpu": ident["cpu_model"],
                     "gpu": ident["gpu"],
                     "threads (intra/inter)": f"{ident['intra_op_threads']}/"
                                              f"{ident['inter_op_threads']}",
                     "matmul GFLOP/s": (doc.get("calibration") or {}).get("matmul_gflops")})
    return pd.DataFrame(rows)


def main_display(frame, labels: list[str]):
    """The main table as text cells: medians ±95 %, ratios with intervals, memory."""
    import pandas as pd

    ref = labels[0]
    rows = []
    for r in frame.to_dict("records"):
        geo = r["case"] == GEOMEAN
        row = {"case": f"**{GEOMEAN}**" if geo else r["case"]}
        for label in labels:
            row[f"{label} (ms) ±95 %"] = "" if geo else _ci_ms(r[label], r[f"{label} lo"],
                                                                r[f"{label} hi"])
        for label in labels[1:]:
            key = f"{label}/{ref}"
            row[key] = (ratio_text(r[key]) if geo else
                        ratio_text(r[key], r[f"{key} lo"], r[f"{key} hi"], r[f"{key} significant"]))
        if f"mem {ref}" in r:
            for label in labels:
                row[f"mem {label}"] = "" if geo else fmt_bytes(r[f"mem {label}"])
            for label in labels[1:]:
                row[f"mem {label}/{ref}"] = ratio_text(r[f"mem {label}/{ref}"])
        row["fastest"] = "" if geo else r["fastest"]
        rows.append(row)
    return pd.DataFrame(rows)


def summary_display(summary, labels: list[str]):
    """The per-implementation summary as text: geometric means in ms with case counts."""
    import pandas as pd

    rows = []
    for r in summary.to_dict("records"):
        row = {k: r[k] for k in (*cf.group_keys(), "impl")}
        for label in labels:
            n = int(r[f"{label} cases"])
            row[f"{label} (ms)"] = f"{fmt_ms(r[label])} ({n})" if n else "–"
        for label in labels[1:]:
            row[f"{label}/{labels[0]}"] = ratio_text(r[f"{label}/{labels[0]}"])
        rows.append(row)
    return pd.DataFrame(rows)


def _basis_note(frame, labels: list[str]) -> str:
    ref = labels[0]
    bases = {b for x in labels[1:] for b in frame.get(f"{x}/{ref} basis", []) if isinstance(b, str)}
    notes = []
    if cf.WITHIN in bases or cf.MIXED in bases:
        notes.append("Where a side is a single run, the interval combines the two medians' "
                     "within-run 95 % intervals: **within-run noise only** — two runs on a "
                     "shared machine differ by more (use several runs per side, or "
                     "`rnnbench ab`)")
    if cf.RUNS in bases:
        notes.append("Where both sides have several runs, the run is the unit (Welch t on "
                     "the log run medians, as in `check`)")
    return ". ".join(notes)


def compare_parts(sets: list[cf.RunSet], cells, facts, frame, summary, *, diffs: dict,
                  normalize: bool, figure: bytes | None, missing) -> list[Part]:
    """The whole comparison as parts (`missing`: compare_frames.missing_frame)."""
    labels = [s.label for s in sets]
    ref = labels[0]
    out: list[Part] = ["# rnnbench compare\n", Table(runs_frame(sets))]
    software = identity_mismatches([s.runs[0].doc for s in sets], SOFTWARE_FIELDS)
    if software:
        out.append(f"**What changed** (software): {describe_mismatches(software)}.\n")
    if diffs:
        out.append(f"**Different machines** ({describe_mismatches(diffs)}): ratios include "
                   "the hardware difference.\n")
    if normalize:
        out.append(f"**Normalized** (--normalize): every run's times are multiplied by its own "
                   f"matmul calibration over {ref}'s first run's (same device and dtype), i.e. "
                   f"shown at {ref}'s matmul speed; a ratio then says how each machine does on "
                   "RNNs relative to its own matmul peak.\n")
    body = frame.iloc[:-1] if not frame.empty else frame
    lines = []
    for label in labels[1:]:
        key = f"{label}/{ref}"
        if frame.empty or not math.isfinite(frame.iloc[-1][key]):
            continue
        value = frame.iloc[-1][key]
        faster = int(((body[key + " significant"]) & (body[key] < 1)).sum())
        slower = int(((body[key + " significant"]) & (body[key] > 1)).sum())
        word = "faster" if value < 1 else "slower"
        lines.append(f"- {label} vs {ref}: geometric mean time ratio {ratio_text(value)} over "
                     f"{len(body)} cases ({label} is {abs(1 - value) * 100:.1f} % {word} on "
                     f"average); its interval excludes 1× in {faster} faster and {slower} "
                     "slower cases")
    out += [*lines, ""]
    fastest = cf.fastest_frame(summary, labels)
    if not summary.empty:
        out += ["## Summary per implementation\n",
                "Per phase, shape and precision: each run's geometric mean over the "
                "implementation's own timed cases (its unroll modes; case count in brackets), "
                f"and the geometric mean of the per-case ratios to {ref} over the cases timed "
                "in every run.\n", Table(summary_display(summary, labels)),
                "### Fastest implementation per machine\n",
                "By the geometric means above, among the implementations of one model (LSTM, "
                "GRU, vanilla RNN); the margin is the runner-up's time over the winner's.\n",
                Table(fastest)]
    out += [f"## Cases timed in every run ({len(body)})\n",
            f"Median per call in ms ± its 95 % interval; `X/{ref}` is X's median over {ref}'s "
            f"(below 1×: X faster) with its 95 % interval; `*`: the interval excludes 1×. "
            + (_basis_note(frame, labels) + "." if not frame.empty else "") + "\n"]
    out += _count_lines(sets, cells, facts)
    if not frame.empty:
        out.append(Table(main_display(frame, labels)))
    if figure:
        out += ["## Figure\n", Figure(HEATMAP, f"Time ratio to {ref} per case timed in every "
                                      "run, grouped by phase and implementation; hatched: the "
                                      "95 % interval includes 1×", figure)]
    if not missing.empty:
        out += [f"## Appendix: cases not timed in every run ({len(missing)})\n", Table(missing)]
    return out


def _count_lines(sets, cells, facts) -> list[str]:
    lines = []
    for counts in cf.missing_counts(sets, cells, facts):
        rest = counts["cases"] - counts["ok"]
        if rest:
            lines.append(f"- {counts['label']}: {rest} of {counts['cases']} cases not timed "
                         f"({counts[cf.NOT_RUN]} not run, {counts['skipped']} skipped, "
                         f"{counts['error']} error)")
    if lines:
        lines += ["", "Those cases are listed in the appendix.\n"]
    return lines
