"""Write report.md, report.html and figures/*.png into a run folder from results.json (no TF)."""

from __future__ import annotations

import json
import math
from pathlib import Path

from bench.analysis import roofline_report
from bench.analysis.document import (  # markdown_table: also imported from here by check
    FIGURES,
    Figure,
    Part,
    Table,
    markdown_table,
    to_html,
    to_markdown,
)
from bench.analysis.fmt import fmt_bytes, fmt_ci, fmt_ms, fmt_num
from bench.analysis.html import REPORT_HTML
from bench.analysis.stability import findings_text
from bench.analysis.summary import stability_notes
from bench.analysis.tta_summary import format_summary, summarize
from bench.cases import group_columns, id_parts
from bench.errors import UserError
from bench.results import Run, read_run, resolve_results_path
from bench.rows import (
    GFLOPS,
    IQR_S,
    MEDIAN_HI_S,
    MEDIAN_LO_S,
    MEDIAN_S,
    P90_S,
    P99_S,
    PCT_PEAK,
    ROUNDS,
)
from bench.storage import atomic_write_bytes, atomic_write_text

REPORT_MD = "report.md"
__all__ = ["FIGURES", "REPORT_HTML", "REPORT_MD", "markdown_table"]
ENV_FIELDS = ("hostname", "platform", "python", "tensorflow", "keras", "cuda", "cudnn",
              "cpu_model", "cpu_features", "onednn", "cpu_count", "intra_op_threads",
              "inter_op_threads", "gpus", "git_commit")
MAX_BAR_GROUPS = 4


def add_arguments(parser) -> None:
    """Register `rnnbench report` options."""
    parser.add_argument("run_dir", metavar="RUN_DIR",
                        help="run folder holding results.json (or the results.json itself)")
    parser.add_argument("--no-figures", action="store_true",
                        help="write report.md only, without figures/*.png")


def main(args) -> int:
    """Run `rnnbench report`."""
    path = write_report(args.run_dir, figures=not args.no_figures)
    print(path)
    return 0


# ---------------------------------------------------------------- data


def case_table(run: Run):
    """The step-time rows as a DataFrame with `samples` (list), `shape`, filled-in medians and
    `pct_peak` against each case's own device and dtype peak (never above 100)."""
    from bench.results import cases_frame

    rows = roofline_report.rows_against_peaks(run)
    frame = cases_frame(rows)
    frame["samples"] = [list(r.stats.samples_s) for r in rows]
    frame[MEDIAN_S] = [_nan(r.median()) for r in rows]
    frame[ROUNDS] = [r.stats.rounds if r.stats.rounds is not None else len(r.stats.samples_s)
                     for r in rows]
    parts = [id_parts(r.case) for r in rows]
    for column in group_columns():  # id parts with their marks: shape-bi-ragged, precision-xla
        frame[column] = [p[column] for p in parts]
    for col in (MEDIAN_S, MEDIAN_LO_S, MEDIAN_HI_S, IQR_S, GFLOPS, PCT_PEAK, "memory_peak_bytes"):
        frame[col] = frame[col].astype(float)
    return frame


def _nan(value: float | None) -> float:
    return math.nan if value is None else value


def step_time_groups(frame, *, leading: bool = True) -> list[tuple[tuple, object]]:
    """The groups by `group_columns(leading=...)` (phase, device, shape, precision), in order
    of first appearance."""
    if frame.empty:
        return []
    return list(frame.groupby(list(group_columns(leading=leading)), sort=False, dropna=False))


def step_time_frame(group, percentiles: bool = False):
    """One table: impl, unroll, kernel, median ±95 % interval, IQR, rounds, GFLOP/s, % peak,
    memory, speed-ups.

    With `percentiles` (latency: batch-1 calls) it also shows p90 and p99 per call.
    """
    import pandas as pd

    ok = group[(group["status"] == "ok") & group[MEDIAN_S].notna()]
    fastest = ok[MEDIAN_S].min() if not ok.empty else math.nan
    slowest = ok[MEDIAN_S].max() if not ok.empty else math.nan
    rows = []
    for r in group.sort_values(MEDIAN_S, na_position="last").to_dict("records"):
        run = r["status"] == "ok" and r[MEDIAN_S] == r[MEDIAN_S]
        rows.append({
            "impl": r["impl"], "unroll": r["unroll"], "kernel": r["kernel"],
            "median (ms) ±95 %": (fmt_ci(r[MEDIAN_S], r[MEDIAN_LO_S], r[MEDIAN_HI_S])
                                  if run else r["status"]),
            "IQR (ms)": fmt_ms(r[IQR_S]) if run else "–",
            **({"p90 (ms)": fmt_ms(r.get(P90_S)) if run else "–",
                "p99 (ms)": fmt_ms(r.get(P99_S)) if run else "–"} if percentiles else {}),
            "rounds": str(int(r[ROUNDS])) if run else "–",
            "GFLOP/s": r[GFLOPS] if run else None,
            "% of peak": r[PCT_PEAK] if run else None,
            "peak memory": fmt_bytes(r["memory_peak_bytes"]) if run else "–",
            "× fastest": r[MEDIAN_S] / fastest if run else None,
            "speed-up vs slowest": slowest / r[MEDIAN_S] if run else None,
        })
    return pd.DataFrame(rows)


def warnings_frame(run: Run):
    """Case and its stability findings (the advice is listed once, by `stability_notes`)."""
    import pandas as pd

    rows = [{"case": row.id, "warnings": findings_text(row.stats.warnings)}
            for row in run.cases if row.stats.warnings]
    return pd.DataFrame(rows, columns=["case", "warnings"])


def status_frame(frame, status: str):
    """Case id and reason of every case with `status` (skipped or error)."""
    sub = frame[frame["status"] == status]
    return sub[["id", "reason"]].rename(columns={"id": "case"}).reset_index(drop=True)


# Columns of the report's TTA table: (shown name, column of results.tta_frame).
TTA_COLUMNS = (("task", "task"), ("impl", "impl"), ("unroll", "unroll"), ("device", "device"),
               ("hidden", "hidden_size"), ("seed", "seed"), ("target", "target"),
               ("budget", "budget"), ("status", "status"), ("reached", "reached"),
               ("time to target (s)", "time_to_target_s"), ("steps", "steps"),
               ("epochs", "epochs"), ("best acc", "best_acc"), ("reason", "reason"))


def tta_table(run: Run):
    """One row per time-to-accuracy run: results.tta_frame's columns that the report shows."""
    import pandas as pd

    from bench.results import tta_frame

    flat = tta_frame(run.tta)
    if flat.empty:
        return pd.DataFrame(columns=[name for name, _ in TTA_COLUMNS])
    flat = flat.reindex(columns=list(dict.fromkeys([*flat.columns, *(c for _, c in TTA_COLUMNS),
                                                    "budget_s", "budget_epochs",
                                                    "budget_steps", "diverged"])))
    flat["budget"] = [_budget(r) for r in flat.to_dict("records")]
    flat["reason"] = [r if isinstance(r, str) and r else ("diverged" if d is True else None)
                      for r, d in zip(flat["reason"], flat["diverged"], strict=True)]
    return flat[[c for _, c in TTA_COLUMNS]].set_axis([n for n, _ in TTA_COLUMNS], axis=1)


def _budget(row: dict) -> str | None:
    for key, unit in (("budget_s", "s"), ("budget_epochs", "epochs"), ("budget_steps", "steps")):
        value = row.get(key)
        if isinstance(value, int | float) and math.isfinite(value):
            return f"{fmt_num(value)} {unit}"
    return None


# ---------------------------------------------------------------- figures


def report_figures(run: Run, frame) -> list[tuple[str, str, bytes]]:
    """(file name, caption, PNG bytes) for every figure the run's data supports."""
    from bench.analysis import plots

    figures = []
    sweeps = plots.find_sweeps(frame)
    # One figure per group but its phase (the panels of a figure): device, shape, precision.
    groups = [(k, g) for k, g in step_time_groups(frame, leading=False)
              if (g["status"] == "ok").any()]
    # Scaling runs: bars only for the shape the sweeps share (the base), curves for the rest.
    in_sweeps = {}
    for sweep in sweeps:
        for shape in set(sweep["rows"]["shape"]):
            in_sweeps[shape] = in_sweeps.get(shape, 0) + 1
    shape_at = group_columns(leading=False).index("shape")
    groups.sort(key=lambda kg: (-in_sweeps.get(kg[0][shape_at], 0), -len(kg[1])))
    top = in_sweeps.get(groups[0][0][shape_at], 0) if groups else 0
    shown = [kg for kg in groups if in_sweeps.get(kg[0][shape_at], 0) == top][:MAX_BAR_GROUPS]
    table = roofline_report.peaks(run)
    for key, group in shown:
        slug = "" if len(groups) == 1 else "-" + "-".join(key)
        where = ", ".join(key)
        figures.append((f"step_time{slug}.png",
                        f"Median step time by implementation and unroll ({where}); "
                        "whiskers span the IQR",
                        plots.grouped_bars(group, MEDIAN_S, scale=1e3, err=IQR_S,
                                           title=f"Step time by implementation — {where}",
                                           ylabel="median time per call (ms)")))
        png = plots.static_vs_dynamic(group, title=f"Static vs dynamic unrolling — {where}")
        if png:
            figures.append((f"static_vs_dynamic{slug}.png",
                            f"Static / dynamic time ratio ({where})", png))
        if group[PCT_PEAK].notna().any():
            peak = roofline_report.peak_for(table, str(group["device"].iloc[0]),
                                            str(group["dtype"].iloc[0]))
            peak_text = f"{fmt_num(peak)} GFLOP/s matmul" if peak else "calibrated matmul"
            figures.append((f"{PCT_PEAK}{slug}.png",
                            f"Achieved fraction of the machine peak ({where})",
                            plots.grouped_bars(group, PCT_PEAK,
                                               title=f"% of machine peak ({peak_text}) — "
                                                     f"{where}",
                                               ylabel="% of calibrated matmul GFLOP/s")))
        if group.loc[group["status"] == "ok", "memory_peak_bytes"].notna().any():
            figures.append((f"memory{slug}.png",
                            f"Peak memory per case by implementation and unroll ({where})",
                            plots.grouped_bars(group, "memory_peak_bytes", scale=1 / 2**20,
                                               title=f"Peak memory per case — {where}",
                                               ylabel="peak memory (MiB)")))
    if sweeps:
        figures.append(("scaling.png", "Scaling: median time vs swept size (log-log)",
                        plots.scaling_curves(sweeps, title="Scaling with problem size")))
    png = plots.tta_curves(run.tta, title="Time to accuracy: held-out accuracy "
                                                        "vs training wall time")
    if png:
        figures.append(("tta.png", "Held-out accuracy vs wall-clock training time", png))
    return figures


# ---------------------------------------------------------------- Markdown


KERNEL_NOTE = ("`kernel`: the op that did the recurrent math, read from the traced graph "
               "(`CudnnRNNV3`, `BlockLSTM`: one op for the whole sequence; `while(X)`: a "
               "`tf.while_loop` whose body runs X; `unrolled X×N`: N such ops in a static "
               "graph, gradients included).\n")


def memory_note(frame) -> str:
    """What the `peak memory` column measures: each method the run's ok rows used, once."""
    ok = frame[frame["status"] == "ok"]
    methods = list(dict.fromkeys(m for m in ok["memory_method"] if isinstance(m, str) and m))
    if not methods:
        return "`peak memory`: not recorded by this run.\n"
    return "`peak memory`: " + "; ".join(methods) + ".\n"


def env_frame(env: dict):
    """Key/value table of the environment fingerprint."""
    import pandas as pd

    rows = []
    for key in [*ENV_FIELDS, *sorted(set(env) - set(ENV_FIELDS))]:
        if key not in env:
            continue
        value = env[key]
        if key == "gpus":
            value = "; ".join(
                " ".join(str(g.get(k)) for k in ("name", "memory", "driver") if g.get(k))
                for g in value if isinstance(g, dict)) if isinstance(value, list) else value
            value = value or "none"
        elif isinstance(value, list) and all(isinstance(v, str) for v in value):
            value = " ".join(value) or "none"
        elif isinstance(value, dict | list):
            value = json.dumps(value)
        rows.append({"field": key, "value": value})
    return pd.DataFrame(rows, columns=["field", "value"])


def report_parts(run: Run, frame, figures: list[tuple[str, str, bytes]]) -> list[Part]:
    """The report as document parts (Markdown text, tables, figures): report.md and
    report.html are both rendered from these."""
    doc = run.doc
    counts = {s: int((frame["status"] == s).sum()) for s in ("ok", "skipped", "error")}
    peaks = roofline_report.peaks(run)
    out: list[Part] = [f"# rnnbench report — {doc['run_id']}\n"]
    if run.partial:
        done = f": {run.progress()}" if run.progress() else ""
        out += [f"**PARTIAL RUN**{done}. The run was interrupted; its tables cover only the "
                "cases that finished, and `rnnbench check` refuses it as a baseline unless "
                "`--allow-partial` is given.\n"]
    out += [f"- created (UTC): {doc.get('created_utc', '–')}",
           f"- command: `{doc.get('command') or '–'}`",
           f"- preset: {doc.get('preset') or '–'}",
           f"- step-time cases: {counts['ok']} ok, {counts['skipped']} skipped, "
           f"{counts['error']} error; time-to-accuracy runs: {len(run.tta)}",
           roofline_report.header_line(peaks), "",
           "## Environment\n", Table(env_frame(doc.get("env") or {}))]
    out += roofline_report.roofline_section(peaks, Table)
    groups = step_time_groups(frame[frame["status"] == "ok"]) if not frame.empty else []
    if groups:
        out += ["## Step time\n",
                "Median of the timed rounds per call of the phase, ± the 95 % interval of the "
                "median as a share of it (the larger side; order statistics of the rounds, "
                "distribution-free). That is within-run uncertainty only: two runs on a shared "
                "machine differ by more, which `rnnbench ab` measures. IQR: interquartile "
                "range of the rounds. "
                "GFLOP/s from the matmul FLOP formula (docs/design.md, FLOP counting); % of "
                "peak against the calibrated matmul of this run in the case's own device and "
                "dtype (see Roofline). `× fastest`: times slower than the fastest row "
                "of the table; `speed-up vs slowest`: times faster than the slowest. Skipped and "
                "error rows are listed in the table and below.\n",
                KERNEL_NOTE, memory_note(frame)]
        every = dict(step_time_groups(frame))  # a group's skip and error rows too
        for key, _ in groups:
            group = every[key]
            latency = bool((group["batch"] == 1).all())  # p50/p90/p99 per call
            out += [f"### {' · '.join(key)}\n", Table(step_time_frame(group, percentiles=latency))]
    elif not frame.empty:
        out += ["## Step time\n", "No case ran successfully; see the lists below.\n"]
    for status, heading in (("skipped", "Skipped cases"), ("error", "Errors")):
        table = status_frame(frame, status) if not frame.empty else None
        if table is not None and not table.empty:
            out += [f"## {heading} ({len(table)})\n", Table(table)]
    warned = warnings_frame(run)
    if not warned.empty:
        timed = counts["ok"]
        out += ["## Measurement warnings\n",
                f"{len(warned)} of {timed} timed cases flagged. A case is flagged when the "
                "interval of its median is wide, it has too few rounds, its rounds drift or "
                "fall into two groups, or the call is too short for the clock "
                "(bench/analysis/stability.py). The warnings are those the measuring rnnbench "
                "wrote; runs before results schema 3 used a coefficient-of-variation rule "
                "(`.ci/stability_eval.py` judges their stored rounds again).\n",
                Table(warned)]
        machine, advice = stability_notes(run.cases)
        if machine is not None:
            out += [f"**{machine.text}**\n"]
        out += ["What to do:\n", *(f"- {tip}" for tip in advice), ""]
    if run.tta:
        table = tta_table(run)
        out += ["## Time to accuracy\n",
                "Wall-clock time from the first training step to the evaluation that first "
                "reached the target; held-out evaluation time is excluded and reported "
                "separately (`eval_s`). Runs that missed the target within the budget are "
                "listed, not dropped.\n", Table(table)]
        summary = summarize(run.tta)
        if summary:
            out += ["Summary over seeds (a seed that missed counts as never reaching the target, "
                    "so the median is empty once half the seeds missed):\n",
                    format_summary(summary) + "\n"]
    if figures:
        out += ["## Figures\n"]
        out += [Figure(name, caption, data) for name, caption, data in figures]
    return out


# ---------------------------------------------------------------- writing


def write_report(run_dir, *, figures: bool = True) -> Path:
    """Render report.md, report.html (and figures/*.png) for a run folder; return report.md."""
    results = resolve_results_path(run_dir)
    run = read_run(results)
    doc = run.doc
    folder = results.parent
    frame = case_table(run)
    pngs = []
    if figures:
        from bench.analysis.plots import missing_glyphs_allowed

        with missing_glyphs_allowed():
            pngs = report_figures(run, frame)
    parts = report_parts(run, frame, pngs)
    title = f"rnnbench report — {doc['run_id']}"
    try:
        if pngs:
            (folder / FIGURES).mkdir(exist_ok=True)
            for name, _, data in pngs:
                atomic_write_bytes(folder / FIGURES / name, data)
        atomic_write_text(folder / REPORT_HTML, to_html(
            title, parts, subtitle="one self-contained page: the tables of report.md, "
                                   "sortable (click a header), with its figures inline"))
        atomic_write_text(folder / REPORT_MD, to_markdown(parts))
    except OSError as exc:
        raise UserError(f"cannot write the report into {folder}: {exc.strerror or exc}"
                        ) from None
    return folder / REPORT_MD
