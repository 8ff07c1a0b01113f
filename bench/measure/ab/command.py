"""Interleaved A/B step-time comparison of two sides (interpreter, source, env) with verdicts.

Each side is a worker process (bench.measure.ab.worker) that builds every selected case once;
the coordinator (bench.measure.ab.coordinator) times blocks in ABBA order, one side at a time,
and bench.analysis.ab_stats turns the paired blocks into a verdict per case; a case stops
being measured once bench.analysis.ab_sequential finds its verdict settled.
"""

from __future__ import annotations

import argparse
import json
import shlex
import sys
import time
from pathlib import Path

from bench.ab_results import AB_JSON, KIND, SCHEMA_VERSION, ABDocument
from bench.analysis.html import REPORT_HTML
from bench.errors import UserError

DEFAULT_BLOCKS = 300   # most pairs of blocks a case gets, over all generations
# One call per block, none untimed: the finer A and B alternate, the more of the machine's
# drift cancels in a pair (measured: 200 one-call pairs gave a 6.3 % median detectable
# slowdown in 25 s, 90 pairs of 5 rounds after 1 warm-up call 7-9 % in 60 s; docs/design.md).
DEFAULT_ROUNDS = 1     # timed rounds per block
DEFAULT_WARMUP = 0     # untimed calls before each block
DEFAULT_GENERATIONS = 2  # fresh worker processes per side: the process is a unit too
AB_CSV, REPORT_MD, FIGURE = "ab.csv", "report.md", "figures/ab_ratios.png"


# CLI -------------------------------------------------------------------------------------------
def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Register the `ab` flags."""
    from bench import args as shared
    from bench.analysis.ab_sequential import DEFAULT_TARGET_MDE
    from bench.measure.options import add_selection_options
    from bench.verdict import DEFAULT_ALPHA, DEFAULT_THRESHOLD

    for side in ("a", "b"):
        s = side.upper()
        parser.add_argument(f"--{side}-python", metavar="PATH",
                            help=f"interpreter of side {s} (default: this one)")
        parser.add_argument(f"--{side}-src", metavar="DIR|GIT_REF",
                            help=f"rnnbench source tree of side {s}: a directory holding bench/, "
                                 "or a git ref of the repository here (checked out into a "
                                 "temporary worktree); default: the package installed in the "
                                 "interpreter")
        parser.add_argument(f"--{side}-env", action="append", metavar="K=V",
                            help=f"environment variable for side {s} (repeatable)")
    add_selection_options(parser)
    parser.add_argument("--blocks", type=shared.positive_int, default=DEFAULT_BLOCKS, metavar="K",
                        help="most pairs of blocks per case; a case stops earlier once its "
                             f"verdict is settled (default: {DEFAULT_BLOCKS})")
    parser.add_argument("--target-mde", type=shared.threshold, default=DEFAULT_TARGET_MDE,
                        metavar="PCT",
                        help="a case stops as `same` once its interval lies within the "
                             "threshold and it could detect a slowdown this small (default: "
                             f"{DEFAULT_TARGET_MDE * 100:g}%%; at most --threshold)")
    parser.add_argument("--fixed-pairs", action="store_true",
                        help="measure every case for all --blocks pairs (no early stop)")
    parser.add_argument("--generations", type=shared.positive_int, default=DEFAULT_GENERATIONS,
                        metavar="G",
                        help="worker generations: the pairs are split over G fresh worker "
                             "processes per side, so a one-process quirk is measured as noise, "
                             f"not reported as a change (default: {DEFAULT_GENERATIONS})")
    parser.add_argument("--rounds", type=shared.positive_int, default=DEFAULT_ROUNDS, metavar="R",
                        help=f"timed rounds per block (default: {DEFAULT_ROUNDS})")
    parser.add_argument("--warmup", type=shared.non_negative_int, default=DEFAULT_WARMUP,
                        metavar="W",
                        help=f"untimed calls before each block (default: {DEFAULT_WARMUP})")
    shared.add_threshold(parser, DEFAULT_THRESHOLD, "smallest slowdown that counts, e.g. 10%% "
                         f"or 0.10 (default: {DEFAULT_THRESHOLD * 100:g}%%)")
    shared.add_alpha(parser, DEFAULT_ALPHA,
                     f"family-wise significance level (default: {DEFAULT_ALPHA})")
    parser.add_argument("--no-equivalence", action="store_true",
                        help="skip the check against the NumPy reference before timing")
    shared.add_out(parser, "run folder to create (default: reports/<utc-stamp>-ab-<preset>); "
                           "must not exist")


def _check_numbers(args: argparse.Namespace) -> None:
    if args.blocks < 2 * args.generations:
        raise UserError(f"--blocks {args.blocks} is too few for --generations "
                        f"{args.generations}: each generation needs at least 2 pairs")
    if not args.fixed_pairs and args.target_mde > args.threshold:
        raise UserError(f"--target-mde {args.target_mde:.0%} is above --threshold "
                        f"{args.threshold:.0%}: a case could then stop before it can see a "
                        "threshold-sized change")


def stop_rule(args: argparse.Namespace):
    """The early-stop rule of the parsed flags (bench.analysis.ab_sequential.StopRule)."""
    from bench.analysis.ab_sequential import StopRule

    return StopRule(args.blocks, target_mde=None if args.fixed_pairs else args.target_mde)


def command_line(args: argparse.Namespace) -> str:
    """The equivalent `rnnbench ab` command line of the parsed flags (defaults included)."""
    from bench.measure.options import SELECTION, suite_options

    words = ["rnnbench", "ab"]
    for side in ("a", "b"):
        for name in ("python", "src"):
            value = getattr(args, f"{side}_{name}")
            if value:
                words += [f"--{side}-{name}", str(value)]
        for item in getattr(args, f"{side}_env") or ():
            words += [f"--{side}-env", item]
    words += suite_options(args, run_flags=True, only=SELECTION)
    words += ["--blocks", str(args.blocks), "--generations", str(args.generations),
              "--rounds", str(args.rounds),
              "--warmup", str(args.warmup), "--threshold", f"{args.threshold:g}",
              "--alpha", f"{args.alpha:g}"]
    words += ["--fixed-pairs"] if args.fixed_pairs else ["--target-mde", f"{args.target_mde:g}"]
    if args.no_equivalence:
        words.append("--no-equivalence")
    if args.out:
        words += ["--out", str(args.out)]
    return shlex.join(words)


# Run folder ------------------------------------------------------------------------------------
STARTUP_LEFTOVERS = (AB_JSON, AB_CSV, REPORT_MD, REPORT_HTML, "figures")


def clear_failed_startup(out: str | None) -> bool:
    """Empty `out` when all it holds is what an `ab` that failed at start-up left (ab.json
    with status failed and no pass done, its table, report and worker logs), so a corrected
    command can rerun into the same --out. True when it did."""
    from bench.ab_results import read_ab

    path = Path(out) if out else None
    if path is None or not (path / AB_JSON).is_file():
        return False
    names = {p.name for p in path.iterdir()}
    if not all(n in STARTUP_LEFTOVERS or (n.startswith("worker-") and n.endswith(".log"))
               for n in names) or any((path / "figures").glob("*")):
        return False
    try:
        doc = read_ab(path)
    except UserError:
        return False
    if doc.status != "failed" or doc.passes_done:
        return False
    for name in names:
        target = path / name
        if target.is_dir():
            target.rmdir()
        else:
            target.unlink()
    print(f"rnnbench ab: {path} held only a failed start-up ({doc.error}); reusing it",
          file=sys.stderr)
    return True


def make_out_dir(out: str | None, label: str) -> Path:
    """Take the run folder for this process (storage.make_run_dir: one run per folder); the
    leftovers of a failed start-up in `out` do not block it."""
    from bench.results import new_run_id
    from bench.storage import make_run_dir

    clear_failed_startup(out)
    path = make_run_dir(out, new_run_id(label))
    (path / "figures").mkdir(exist_ok=True)
    return path


def build_doc(*, command: str, preset: str, settings: dict, specs: dict, state,
              hellos: dict, started_utc: str) -> dict:
    """The ab.json document of what was measured so far (verdict rows added by `finish_doc`)."""
    from bench.analysis.ab_report import differences

    sides = {}
    for name, spec in specs.items():
        ready = state.ready.get(name, {})
        sides[name] = {**spec.describe(), "hello": hellos.get(name),
                       "env_fingerprint": ready.get("env")}
    cases = []
    for case in state.cases:
        entry = {"id": case.id, "case": case.params()}
        for name in ("A", "B"):
            status, reason = state.status(case.id, name)
            row = state.ready.get(name, {}).get("cases", {}).get(case.id, {})
            facts = ("code_version", "compile_s", "kernel", "memory_peak_bytes", "memory_method")
            entry[name.lower()] = {"status": status, "reason": reason,
                                   **{k: row.get(k) for k in facts},
                                   "blocks": state.samples.get(case.id, {}).get(name, [])}
        cases.append(entry)
    diff = differences(sides["A"], sides["B"])
    changed = sorted({c["case"]["impl"] for c in cases
                      if c["a"]["code_version"] and c["b"]["code_version"]
                      and c["a"]["code_version"] != c["b"]["code_version"]})
    if changed:  # a code change is what is measured here: shown, never a reason to skip
        diff["benchmarked code (code_version)"] = ["", f"changed for {', '.join(changed)}"]
    return {"schema_version": SCHEMA_VERSION, "kind": KIND, "status": "running", "error": None,
            "created_utc": started_utc, "command": command, "preset": preset,
            "settings": settings, "sides": sides,
            "differences": diff,
            "passes_done": state.passes_done, "pass_generation": state.generations(),
            "setup": state.setup, "cases": cases}


def write_outputs(run_dir: Path, doc: dict, state, *, threshold: float, alpha: float,
                  rule, figure: bool = True):
    """Compute the verdicts, then write ab.json, ab.csv, report.md and the figure atomically."""
    from bench.analysis import ab_report, ab_sequential, ab_stats
    from bench.results import clean_json, json_default
    from bench.storage import atomic_write_bytes, atomic_write_text

    frame = ab_sequential.sequential_frame(state.stats_input(), state.generations(), rule,
                                           threshold=threshold, alpha=alpha)
    doc["process_sd"] = frame.attrs.get("process_sd")
    doc["test"] = frame.attrs.get("test")
    rows = {r["case"]: r for r in frame.to_dict("records")}
    for entry in doc["cases"]:
        entry["verdict"] = rows.get(entry["id"])
    doc["summary"] = rows.get(ab_stats.GEOMEAN_LABEL)
    doc["verdict_counts"] = ab_stats.summary_counts(frame)
    plain = json.loads(json.dumps(clean_json(doc), default=json_default, allow_nan=False))
    checked = ABDocument.from_dict(plain, str(run_dir / AB_JSON))
    atomic_write_text(run_dir / AB_JSON, checked.to_json())
    atomic_write_text(run_dir / AB_CSV, frame.to_csv(index=False))
    failed = ab_stats.failed(frame)
    atomic_write_text(run_dir / REPORT_MD, ab_report.report_markdown(doc, frame, failed=failed))
    png = None
    if figure:
        try:
            png = ab_report.ratio_figure(frame, threshold, alpha)
            atomic_write_bytes(run_dir / FIGURE, png)
        except Exception as exc:  # the numbers are saved; a figure is not worth a failed run
            from bench.errors import one_line

            print(f"rnnbench ab: figure not written ({one_line(exc)})", file=sys.stderr)
    from bench.analysis.document import to_html

    atomic_write_text(run_dir / REPORT_HTML, to_html(
        f"A/B run {doc.get('run_id', '')}", ab_report.report_parts(doc, frame, failed=failed,
                                                                    png=png)))
    return frame, failed


# Main ------------------------------------------------------------------------------------------
def _start(sides: list, hellos: dict) -> None:
    """Launch every worker before waiting on any (their imports overlap), then read hellos."""
    for side in sides:
        if hasattr(side, "launch"):
            side.launch()
    for side in sides:
        start = getattr(side, "start", None)
        if start is not None:
            hellos.setdefault(side.name, start())


def main(args: argparse.Namespace, *, side_factory=None) -> int:
    """Run the A/B comparison; 0 pass, 1 regression or broken on B, 2 bad input, 130 Ctrl-C.

    `side_factory(spec, log_path)` makes a side (default: a WorkerSide); tests pass fakes.
    """
    from bench.measure.ab import coordinator as coord
    from bench.measure.ab.sides import Checkouts, SideSpec, WorkerSide, parse_env, resolve_python
    from bench.measure.options import selection_kwargs
    from bench.measure.selection import selected_cases
    from bench.results import utc_now

    _check_numbers(args)
    if args.generations < 2:
        print(f"rnnbench ab: warning: --generations {args.generations}: with one worker process "
              "per side the process-to-process spread cannot be measured, so every case will "
              "be `unreliable`; use --generations 2 or more for verdicts", file=sys.stderr)
    chosen = selected_cases(args.preset, **selection_kwargs(lambda name: getattr(args, name)))
    specs = {name: SideSpec(name, python=resolve_python(getattr(args, f"{s}_python"), name),
                            src=getattr(args, f"{s}_src"),
                            env=parse_env(getattr(args, f"{s}_env"), name))
             for name, s in (("A", "a"), ("B", "b"))}
    rule = stop_rule(args)
    settings = {"blocks": args.blocks, "generations": args.generations, "rounds": args.rounds,
                "warmup": args.warmup,
                "threshold": args.threshold, "alpha": args.alpha, "threads": args.threads,
                "xla": args.xla, "equivalence": not args.no_equivalence, **rule.to_dict()}
    factory = side_factory or (WorkerSide)
    checkouts = Checkouts()
    sides: list = []
    generations: list[list] = []
    run_dir = None
    state = coord.ABState(cases=chosen)
    hellos: dict = {}
    started, started_utc = time.perf_counter(), utc_now()
    command = command_line(args)
    try:
        for spec in specs.values():
            checkouts.resolve(spec)
        run_dir = make_out_dir(args.out, f"ab-{args.preset}")
        most = "up to " if rule.adaptive else ""
        print(f"rnnbench ab: {len(chosen)} case(s) of preset {args.preset!r}, {most}"
              f"{args.blocks} pairs x {args.rounds} round(s) → {run_dir}", file=sys.stderr)
        schedule = coord.Schedule(args.blocks, args.rounds, args.warmup, args.generations)
        for generation in range(args.generations):
            suffix = f"-{generation + 1}" if generation else ""
            generations.append([factory(spec, run_dir / f"worker-{spec.name.lower()}{suffix}.log")
                                for spec in specs.values()])
        sides = [side for pair in generations for side in pair]
        _start(sides, hellos)
        coord.setup_sides(generations, state, threads=args.threads,
                          equivalence=not args.no_equivalence, progress=coord.setup_progress())
        print(f"rnnbench ab: {args.generations} worker(s) per side set up in "
              f"{time.perf_counter() - started:.0f}s; measuring {len(state.runnable())} "
              "runnable case(s)", file=sys.stderr)
        from bench.analysis.ab_sequential import Sequential

        sequential = Sequential(rule, threshold=args.threshold, alpha=args.alpha)
        coord.measure_sides(generations, state, schedule, progress=coord.print_progress,
                            sequential=sequential)
        status, error, code = "complete", None, None
    except KeyboardInterrupt:
        status, error, code = "partial", "interrupted", 130
    except UserError as exc:
        status, error, code = "failed", str(exc), exc.exit_code
        if run_dir is None:
            raise
    finally:
        for side in sides:  # every worker tears TF down at once, not one after another
            getattr(side, "request_exit", lambda: None)()
        for side in sides:
            side.close()
        checkouts.close()
    doc = build_doc(command=command, preset=args.preset, settings=settings, specs=specs,
                    state=state, hellos=hellos, started_utc=started_utc)
    doc.update(run_id=run_dir.name, status=status, error=error, finished_utc=utc_now(),
               elapsed_s=round(time.perf_counter() - started, 3))
    from bench.analysis.ab_report import terminal_summary
    from bench.storage import release_run_dir

    try:
        frame, failed = write_outputs(run_dir, doc, state, threshold=args.threshold,
                                      alpha=args.alpha, rule=rule, figure=status != "failed")
    finally:
        release_run_dir(run_dir)
    if status == "failed":
        raise UserError(f"{error} (what was set up is kept in {run_dir / AB_JSON})")
    print(terminal_summary(doc, frame, failed, report=str(run_dir / REPORT_MD)))
    print(f"results: {run_dir}", file=sys.stderr)
    if code == 130:
        print(f"rnnbench ab: interrupted after {state.passes_done} pass(es); what was measured "
              f"is kept in {run_dir / AB_JSON} (status partial)", file=sys.stderr)
        return 130
    return 1 if failed else 0
