"""Compare 2..N runs side by side: cases timed everywhere, ratios with intervals, a summary
per implementation, the fastest implementation per machine, a heatmap (no TensorFlow).

Each RUN argument is one column: a run folder (or results.json), or a folder of run folders
of one machine (several runs: the run becomes the unit of the ratio's interval). The numbers
are computed in bench.analysis.compare_frames, rendered in bench.analysis.compare_render.
"""

from __future__ import annotations

import string
from pathlib import Path

from bench import args as shared
from bench.analysis import compare_frames as cf
from bench.analysis.stats import GEOMEAN
from bench.errors import UserError
from bench.identity import HARDWARE_FIELDS, describe_mismatches, identity_mismatches
from bench.results import peak_gflops
from bench.storage import atomic_write_bytes, atomic_write_text

COMPARE_MD = "compare.md"
COMPARE_CSV = "compare.csv"
__all__ = ["COMPARE_CSV", "COMPARE_MD", "GEOMEAN"]


def add_arguments(parser) -> None:
    """Register `rnnbench compare` options."""
    parser.add_argument("runs", metavar="RUN", nargs="+",
                        help="one column each: a run folder (or results.json), or a folder of "
                             "run folders of one machine; the first is the reference")
    shared.add_out(parser, "also write compare.md, report.html, compare.csv and "
                           "figures/ratios.png here")
    parser.add_argument("--cross-machine", action="store_true",
                        help="allow runs whose CPU, GPU or thread settings differ (absolute "
                             "times of different machines); software versions may always "
                             "differ: they are shown as what changed")
    parser.add_argument("--normalize", action="store_true",
                        help="divide each run's times by its own matmul calibration (shown at "
                             "the first run's matmul speed); implies --cross-machine")


def main(args) -> int:
    """Run `rnnbench compare`."""
    if len(args.runs) < 2:
        raise UserError("compare needs at least two runs (RUN_A RUN_B ...)")
    out = Path(args.out) if args.out else None
    if out is not None and (out / COMPARE_MD).exists():
        raise UserError(f"{out / COMPARE_MD} already exists; comparisons are never overwritten: "
                        "choose another --out")
    sets = load_sets(args.runs)
    require_common_cases(sets)  # what the runs are comes before where they ran
    docs = [s.runs[0].doc for s in sets]
    hardware = identity_mismatches(docs, HARDWARE_FIELDS)
    if hardware and not (args.cross_machine or args.normalize):
        raise UserError(f"runs are not comparable: {describe_mismatches(hardware)}; pass "
                        "--cross-machine to compare different machines anyway")
    if args.normalize:
        require_calibration(sets)
    parts, frame = build(sets, diffs=hardware, normalize=args.normalize, figure=out is not None)
    from bench.analysis.document import to_markdown

    text = to_markdown(parts)
    if out is not None:
        write_outputs(out, parts, frame)
    print(text, end="")
    return 0


def load_sets(paths) -> list[cf.RunSet]:
    """One RunSet per argument (a folder of run folders is one machine measured several times)."""
    from bench.analysis.check import expand_runs

    labels = run_labels(len(paths))
    sets = []
    for label, path in zip(labels, paths, strict=True):
        runs = expand_runs([path], "run")
        inside = identity_mismatches([r.doc for r in runs], HARDWARE_FIELDS)
        if inside:
            raise UserError(f"{path}: its runs come from different machines or settings "
                            f"({describe_mismatches(inside)}); one column is one machine")
        name = runs[0].run_id if len(runs) == 1 else Path(path).name
        sets.append(cf.RunSet(label, name, tuple(runs)))
    return sets


def require_common_cases(sets: list[cf.RunSet]) -> None:
    """Refuse runs without step-time cases, and runs that share no case timed in both."""
    for runset in sets:
        for run in runset.runs:
            if not run.cases:
                kind = "a time-to-accuracy run" if run.tta else "an empty run"
                raise UserError(f"{run.source} ({runset.label}) is {kind} with no step-time "
                                "cases; compare compares step-time runs")
    ran = [{r.id for run in s.runs for r in run.cases if r.ok and r.median() is not None}
           for s in sets]
    for i in range(1, len(sets)):
        if not ran[0] & ran[i]:
            raise UserError(f"no step-time case ran in both {sets[0].label} ({sets[0].name}) "
                            f"and {sets[i].label} ({sets[i].name}): nothing to compare")


def require_calibration(sets: list[cf.RunSet]) -> None:
    """--normalize needs every run's matmul calibration."""
    for runset in sets:
        for run in runset.runs:
            if peak_gflops(run.calibration, None) is None:
                raise UserError(f"--normalize: the run {run.run_id} ({run.source}) has no "
                                "matmul calibration to normalise by")


def run_labels(n: int) -> list[str]:
    """Short column labels A, B, C, ... for n runs."""
    letters = string.ascii_uppercase
    return [letters[i] if i < 26 else f"R{i + 1}" for i in range(n)]


def build(sets: list[cf.RunSet], *, diffs: dict, normalize: bool = False, figure: bool = True):
    """(document parts, main frame) of a comparison."""
    from bench.analysis.compare_render import compare_parts

    facts = cf.case_facts(sets)
    cells = cf.all_cells(sets, normalize)
    common = cf.common_cases(cells, facts)
    frame = cf.main_frame(sets, cells, facts, common)
    summary = cf.summary_frame(sets, cells, facts, common)
    png = heatmap(sets, frame, normalize) if figure and not frame.empty else None
    parts = compare_parts(sets, cells, facts, frame, summary, diffs=diffs, normalize=normalize,
                          figure=png, missing=cf.missing_frame(sets, cells, facts, common))
    return parts, frame


def heatmap(sets: list[cf.RunSet], frame, normalize: bool) -> bytes:
    """The heatmap of the cases timed everywhere (PNG)."""
    from bench.analysis.heatmap import ratio_heatmap
    from bench.analysis.plots import missing_glyphs_allowed

    labels = [s.label for s in sets]
    names = "\n".join(f"{s.label} = {s.name}" + (f" ({len(s.runs)} runs)" if len(s.runs) > 1
                                                   else "") for s in sets)
    how = "normalized by each run's matmul calibration" if normalize else "median time per call"
    with missing_glyphs_allowed():
        return ratio_heatmap(frame.iloc[:-1], labels,
                             title=f"Time ratio to {labels[0]}\n({how})\n{names}")


def write_outputs(out: Path, parts, frame) -> None:
    """Write compare.md, report.html, compare.csv and the figures into `out` (atomic files)."""
    from bench.analysis.document import FIGURES, figures_of, to_html, to_markdown
    from bench.analysis.html import REPORT_HTML

    try:
        (out / FIGURES).mkdir(parents=True, exist_ok=True)
        for fig in figures_of(parts):
            atomic_write_bytes(out / FIGURES / fig.name, fig.png)
        atomic_write_text(out / COMPARE_CSV, frame.to_csv(index=False))
        atomic_write_text(out / REPORT_HTML, to_html(
            "rnnbench compare", parts, subtitle="the tables of compare.md, sortable (click a "
                                               "header), with the figure inline"))
        atomic_write_text(out / COMPARE_MD, to_markdown(parts))
    except OSError as exc:
        raise UserError(f"cannot write to {out}: {exc.strerror or exc}") from None
