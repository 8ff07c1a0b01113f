"""Compare two or more runs side by side, joined on case id: ratio of medians and geometric mean."""

from __future__ import annotations

import math
import string
from pathlib import Path

from bench.analysis.stats import GEOMEAN
from bench.errors import UserError
from bench.identity import (
    HARDWARE_FIELDS,
    SOFTWARE_FIELDS,
    describe_mismatches,
    identity,
    identity_mismatches,
)
from bench.results import Run, read_run
from bench.storage import atomic_write_bytes, atomic_write_text

COMPARE_MD = "compare.md"
COMPARE_CSV = "compare.csv"


def add_arguments(parser) -> None:
    """Register `rnnbench compare` options."""
    parser.add_argument("runs", metavar="RUN", nargs="+",
                        help="run folders (or results.json files); the first is the reference")
    parser.add_argument("--out", metavar="DIR",
                        help="also write compare.md, compare.csv and figures/speedup.png here")
    parser.add_argument("--cross-machine", action="store_true",
                        help="allow runs whose CPU, GPU or thread settings differ (absolute "
                             "times of different machines); software versions may always "
                             "differ: they are shown as what changed")


def main(args) -> int:
    """Run `rnnbench compare`."""
    if len(args.runs) < 2:
        raise UserError("compare needs at least two runs (RUN_A RUN_B ...)")
    out = Path(args.out) if args.out else None
    if out is not None and (out / COMPARE_MD).exists():
        raise UserError(f"{out / COMPARE_MD} already exists; comparisons are never overwritten: "
                        "choose another --out")
    runs = [read_run(p) for p in args.runs]
    docs = [r.doc for r in runs]
    labels = run_labels(len(docs))
    require_common_cases(runs, labels)  # what the runs are comes before where they ran
    hardware = identity_mismatches(docs, HARDWARE_FIELDS)
    if hardware and not args.cross_machine:
        raise UserError(f"runs are not comparable: {describe_mismatches(hardware)}; pass "
                        "--cross-machine to compare different machines anyway")
    frame = compare_frame(docs, labels)
    text = render_compare(docs, labels, frame, identity_mismatches(docs, HARDWARE_FIELDS),
                          figure="figures/speedup.png" if out else None)
    if out is not None:
        from bench.analysis.plots import missing_glyphs_allowed

        with missing_glyphs_allowed():
            png = speedup_figure(docs, labels, frame)
        write_outputs(out, text, frame, png)
    print(text, end="")
    return 0


def require_common_cases(runs: list[Run], labels: list[str]) -> None:
    """Refuse runs without step-time cases, and runs that share no case that ran in both."""
    for label, run in zip(labels, runs, strict=True):
        if not run.cases:
            kind = ("a time-to-accuracy run" if run.tta else "an empty run")
            raise UserError(f"{run.source} ({label}) is {kind} with no step-time cases; compare "
                            "compares step-time runs")
    ran = [{r.id for r in run.cases if r.ok and r.median() is not None} for run in runs]
    for i in range(1, len(runs)):
        if not ran[0] & ran[i]:
            raise UserError(f"no step-time case ran in both {labels[0]} ({runs[0].run_id}) and "
                            f"{labels[i]} ({runs[i].run_id}): nothing to compare")


def run_labels(n: int) -> list[str]:
    """Short column labels A, B, C, ... for n runs."""
    letters = string.ascii_uppercase
    return [letters[i] if i < 26 else f"R{i + 1}" for i in range(n)]


# ---------------------------------------------------------------- the table


def _medians(doc: dict) -> dict[str, dict]:
    from bench.results import case_rows

    out = {}
    for row in case_rows(doc):
        out.setdefault(row.id, {"status": row.status, "median_s": row.median(),
                                "reason": row.reason,
                                "memory": row.memory_peak_bytes if row.ok else None})
    return out


def compare_frame(docs: list[dict], labels: list[str]):
    """Per case: each run's median (s, NaN if it did not run), ratio to the first run, fastest.

    Columns: case, <label> per run, <label>/<first> per other run, then, when any run recorded
    peak memory, `mem <label>` (bytes) per run and `mem <label>/<first>`; fastest, note. The
    last row is the geometric mean of each ratio over the cases that have it in both runs.
    """
    import pandas as pd

    from bench.analysis.stats import geomean

    runs = [_medians(d) for d in docs]
    ids = list(dict.fromkeys(i for r in runs for i in r))
    ref = labels[0]
    memory = [f"mem {label}" for label in labels] + [f"mem {label}/{ref}" for label in labels[1:]]
    if not any(e.get("memory") is not None for run in runs for e in run.values()):
        memory = []
    rows = []
    for case in ids:
        row = {"case": case}
        notes = []
        for label, run in zip(labels, runs, strict=True):
            entry = run.get(case)
            ok = entry is not None and entry["status"] == "ok" and entry["median_s"]
            row[label] = float(entry["median_s"]) if ok else math.nan
            if entry is None:
                notes.append(f"not in {label}")
            elif entry["status"] != "ok":
                notes.append(f"{label}: {entry['status']}"
                             + (f" ({entry['reason']})" if entry.get("reason") else ""))
        for label in labels[1:]:
            row[f"{label}/{ref}"] = row[label] / row[ref]
        if memory:
            row.update(_memory_cells(case, runs, labels))
        times = {label: row[label] for label in labels if not math.isnan(row[label])}
        row["fastest"] = min(times, key=times.get) if len(times) > 1 else ""
        entries = [run.get(case) for run in runs]
        if all(e is not None and e["status"] != "ok" for e in entries) and len(
                {(e["status"], e.get("reason")) for e in entries}) == 1:
            first = entries[0]
            notes = [f"{first['status']} in all runs"
                     + (f" ({first['reason']})" if first.get("reason") else "")]
        row["note"] = "; ".join(notes)
        rows.append(row)
    frame = pd.DataFrame(rows, columns=["case", *labels, *(f"{x}/{ref}" for x in labels[1:]),
                                        *memory, "fastest", "note"])
    summary = {"case": GEOMEAN, "fastest": "", "note": ""}
    for label in labels:
        summary[label] = math.nan
    for label in labels[1:]:
        col = frame[f"{label}/{ref}"].dropna()
        summary[f"{label}/{ref}"] = geomean(col)
        summary["note"] += f"{label}/{ref} over {len(col)} cases; "
    for column in memory:
        summary[column] = geomean(frame[column]) if "/" in column else math.nan
    summary["note"] = summary["note"].rstrip("; ")
    return pd.concat([frame, pd.DataFrame([summary])], ignore_index=True)


def _memory_cells(case: str, runs: list[dict], labels: list[str]) -> dict:
    """`mem <label>` (bytes; NaN: not recorded) per run and `mem <label>/<first>` for `case`."""
    cells = {}
    for label, run in zip(labels, runs, strict=True):
        value = (run.get(case) or {}).get("memory")
        cells[f"mem {label}"] = float(value) if value is not None else math.nan
    first = cells[f"mem {labels[0]}"]
    for label in labels[1:]:
        cells[f"mem {label}/{labels[0]}"] = cells[f"mem {label}"] / first if first > 0 else math.nan
    return cells


def _ratio_text(value) -> str:
    from bench.analysis.fmt import fmt_num

    return "–" if value is None or not math.isfinite(value) else f"{fmt_num(value)}×"


def display_frame(frame, labels: list[str]):
    """The compare table with medians in ms and ratios as text, for Markdown."""
    from bench.analysis.fmt import fmt_bytes, fmt_ms

    shown = frame.copy()
    for label in labels:
        shown[label] = [fmt_ms(v) if math.isfinite(v) else "–" for v in frame[label]]
        if f"mem {label}" in frame:
            shown[f"mem {label}"] = [fmt_bytes(v) for v in frame[f"mem {label}"]]
    for label in labels[1:]:
        for col in (f"{label}/{labels[0]}", f"mem {label}/{labels[0]}"):
            if col in frame:
                shown[col] = [_ratio_text(v) for v in frame[col]]
    shown = shown.rename(columns={label: f"{label} (ms)" for label in labels})
    shown.loc[shown["case"] == GEOMEAN, "case"] = f"**{GEOMEAN}**"
    return shown


def runs_frame(docs: list[dict], labels: list[str]):
    """One row per run: label, run id, created, host and the identity fields."""
    import pandas as pd

    rows = []
    for label, doc in zip(labels, docs, strict=True):
        env = doc.get("env") or {}
        ident = identity(env)
        rows.append({"run": label, "run id": doc["run_id"], "created": doc.get("created_utc"),
                     "host": env.get("hostname"), "tensorflow": ident["tensorflow"],
                     "cpu": ident["cpu_model"], "gpu": ident["gpu"],
                     "threads (intra/inter)": f"{ident['intra_op_threads']}/"
                                              f"{ident['inter_op_threads']}",
                     "matmul GFLOP/s": (doc.get("calibration") or {}).get("matmul_gflops")})
    return pd.DataFrame(rows)


def render_compare(docs: list[dict], labels: list[str], frame, diffs: dict,
                   figure: str | None = None) -> str:
    """The comparison as Markdown: runs, what changed, table, geometric mean, figure link.

    `diffs` are the hardware differences (allowed with --cross-machine); software differences
    are read from the runs and shown as what changed.
    """
    from bench.analysis.report import markdown_table

    ref = labels[0]
    out = ["# rnnbench compare\n", markdown_table(runs_frame(docs, labels))]
    software = identity_mismatches(docs, SOFTWARE_FIELDS)
    if software:
        out.append(f"**What changed** (software): {describe_mismatches(software)}.\n")
    if diffs:
        out.append(f"**Different machines** ({describe_mismatches(diffs)}): ratios include "
                   "the hardware difference.\n")
    gm = frame.iloc[-1]
    for label in labels[1:]:
        value = gm[f"{label}/{ref}"]
        if math.isfinite(value):
            word = "faster" if value < 1 else "slower"
            out.append(f"- {label} vs {ref}: geometric mean time ratio {_ratio_text(value)} "
                       f"({label} is {abs(1 - value) * 100:.1f} % {word} than {ref} on "
                       "average)")
    out.append("")
    body = frame.iloc[:-1]
    missing = body[body["note"].str.contains("not in ")]
    out += ["## Step time per case\n",
            f"Median per call in ms; `X/{ref}` is X's median divided by {ref}'s (below 1×: X "
            "faster). Cases that did not run everywhere keep their row with a note."
            + (f" `mem X`: X's peak memory of the case (how it was measured: each run's "
               f"report); `mem X/{ref}`: its ratio to {ref}'s." if "mem " + ref in frame else "")
            + "\n",
            markdown_table(display_frame(frame, labels))]
    if not missing.empty:
        out += [f"## Cases not in every run ({len(missing)})\n",
                markdown_table(missing[["case", "note"]])]
    if figure:
        out += [f"![speed-up per case]({figure})\n"]
    return "\n".join(out).rstrip() + "\n"


def speedup_figure(docs: list[dict], labels: list[str], frame) -> bytes:
    """PNG: speed-up of every run over the first, per case (log axis)."""
    from bench.analysis import plots

    ref = labels[0]
    body = frame.iloc[:-1]
    names = plots.short_labels(list(body["case"]))
    speedups = {f"{label} vs {ref}": [1.0 / v if v and math.isfinite(v) else math.nan
                                      for v in body[f"{label}/{ref}"]]
                for label in labels[1:]}
    runs = "\n".join(f"{label} = {doc['run_id']}" for label, doc in zip(labels, docs,
                                                                         strict=True))
    return plots.speedup_bars(names, speedups,
                              title=f"Speed-up over {ref} per case\n(median time of {ref} / "
                                    f"X; right of 1×: X faster)\n{runs}",
                              xlabel=f"speed-up over {ref} (×, log scale)")


def write_outputs(out: Path, text: str, frame, png: bytes) -> None:
    """Write compare.md, compare.csv and figures/speedup.png into `out` (atomic files)."""

    try:
        (out / "figures").mkdir(parents=True, exist_ok=True)
        atomic_write_bytes(out / "figures" / "speedup.png", png)
        atomic_write_text(out / COMPARE_CSV, frame.to_csv(index=False))
        atomic_write_text(out / COMPARE_MD, text)
    except OSError as exc:
        raise UserError(f"cannot write to {out}: {exc.strerror or exc}") from None
