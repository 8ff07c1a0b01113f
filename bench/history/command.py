"""The `history` command: add run, tta and ab folders to the store; list series; find changes.

No TensorFlow: the store, the series and the change points are the reading side.
"""

from __future__ import annotations

import argparse
import re
import sys

from bench import args as shared
from bench.errors import UserError
from bench.history import changes as cp
from bench.history.points import METRICS, POINT_PHASES
from bench.history.series import Filters, noise, normalized, points_frame, segmented, stored_impls
from bench.history.store import DEFAULT_STORE, STORE_ENV, open_store, store_url
from bench.registry import REGISTRY

DEFAULT_WINDOW = 10  # a change needs MIN_LEVEL points after it to be found
_ISO_DATE = re.compile(r"\d{4}-\d\d-\d\d([T ][0-9:]+Z?)?")
_SHA = re.compile(r"[0-9a-fA-F]{7,40}")


def add_store_option(parser: argparse.ArgumentParser) -> None:
    """--store, shared by every history subcommand and by publish."""
    parser.add_argument("--store", metavar="PATH|URL",
                        help=f"history store: a SQLite file or a postgresql:// URL (default: "
                             f"${STORE_ENV}, else {DEFAULT_STORE})")


def add_filter_options(parser: argparse.ArgumentParser) -> None:
    """The series filters shared by `history series`, `history changes` and publish."""
    parser.add_argument("--case", metavar="TEXT", help="keep case ids containing TEXT")
    shared.add_names(parser, "--impl", metavar="IMPL", help="keep these implementations")
    shared.add_names(parser, "--phase", metavar="PHASE",
                     help=f"keep these phases ({', '.join(POINT_PHASES)})")
    shared.add_names(parser, "--metric", metavar="METRIC",
                     help=f"keep these metrics ({', '.join(METRICS)})")
    shared.add_names(parser, "--machine", metavar="ID|LABEL", help="keep these machines")
    parser.add_argument("--include-partial", action="store_true",
                        help="use points of partial (interrupted) runs too")
    parser.add_argument("--normalize", action="store_true",
                        help="absolute series as time × the run's calibrated matmul peak")


def filters_of(args: argparse.Namespace) -> Filters:
    """The Filters the shared options ask for; UserError for an unknown phase or metric."""
    for flag, names, known in (("phase", args.phase, POINT_PHASES),
                               ("metric", args.metric, METRICS)):
        unknown = [name for name in names or () if name not in known]
        if unknown:
            raise UserError(f"unknown {flag} {unknown[0]!r}; valid: {', '.join(known)}")
    return Filters(case=args.case, impl=tuple(args.impl or ()), phase=tuple(args.phase or ()),
                   metric=tuple(args.metric or ()), machine=tuple(args.machine or ()),
                   include_partial=args.include_partial)


def selected_points(store, args: argparse.Namespace):
    """The points the shared filters keep; UserError for an --impl name known nowhere."""
    # Known: in the registry, or in the store (a removed implementation keeps its history).
    unknown = [name for name in args.impl or () if name not in REGISTRY]
    if unknown:
        stored = stored_impls(store)
        missing = [name for name in unknown if name not in stored]
        if missing:
            valid = [*REGISTRY, *sorted(stored - set(REGISTRY))]
            raise UserError(f"unknown implementation {missing[0]!r}; valid: {', '.join(valid)}")
    return points_frame(store, filters_of(args))


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Register `history add | series | changes`."""
    sub = parser.add_subparsers(dest="history_command", metavar="SUBCOMMAND")
    add = sub.add_parser("add", help="add run, tta and ab folders (or folders of them)",
                         description="Add run, tta and ab folders to the history store. "
                                     "Adding a run again changes nothing; a changed file under "
                                     "a known run id is refused. Exit 2 if any folder was "
                                     "refused (the others still go in).")
    add.add_argument("paths", nargs="+", metavar="RUN_DIR")
    add.add_argument("--repo", default=".", metavar="DIR",
                     help="git repository that knows the runs' commits, for their commit "
                          "times (default: .)")
    add_store_option(add)
    series = sub.add_parser("series", help="list the series with their noise and latest value")
    add_store_option(series)
    add_filter_options(series)
    found = sub.add_parser("changes", help="change points in each series (exit 1 on a recent "
                                           "regression)",
                           description="Find steps in each series (Pelt on log values, each "
                                       "confirmed by a t-test and a minimum effect, false "
                                       "discoveries controlled over all series). Exit 1 when a "
                                       "regression lies in the latest window, 0 otherwise, 2 on "
                                       "unusable input.")
    add_store_option(found)
    add_filter_options(found)
    add_change_options(found)
    found.add_argument("--since", metavar="N|DATE|COMMIT", default=str(DEFAULT_WINDOW),
                       help="the latest window for the exit code: the last N points of each "
                            "series, points from a date (2026-11-24), or from a commit on "
                            f"(default: the last {DEFAULT_WINDOW} points)")
    shared.add_out(found, "also write the changes table as CSV", metavar="CSV")


def add_change_options(parser: argparse.ArgumentParser) -> None:
    """--threshold and --alpha of change finding, shared by `history changes` and publish."""
    shared.add_threshold(parser, cp.DEFAULT_THRESHOLD,
                         f"minimum effect of a change (default: {cp.DEFAULT_THRESHOLD * 100:g}%%)")
    shared.add_alpha(parser, cp.DEFAULT_ALPHA,
                     f"false discovery rate over all series (default: {cp.DEFAULT_ALPHA})")


def main(args: argparse.Namespace) -> int:
    """Run one history subcommand; the exit code."""
    if args.history_command is None:
        raise UserError("name a subcommand: rnnbench history add | series | changes "
                        "(see rnnbench history --help)")
    with open_store(store_url(args.store)) as store:
        if args.history_command == "add":
            return _add(store, args)
        frame = selected_points(store, args)
        if args.normalize:
            frame = normalized(frame)
        if frame.empty:
            raise UserError(f"{store.url}: no points match the filters (add runs with "
                            "`rnnbench history add RUN_DIR`)")
        if args.history_command == "series":
            shown = noise(segmented(frame)).drop(columns=["series", "machine", "values"])
            print(markdown(shown.rename(columns={"machine_label": "machine"})))
            return 0
        return _changes(frame, args)


def _add(store, args: argparse.Namespace) -> int:
    from bench.history.ingest import ADDED, KNOWN, add_paths

    outcomes = add_paths(store, args.paths, repo=args.repo)
    for o in outcomes:
        if o.result == ADDED:
            print(f"added {o.run_id} ({o.kind}, {o.points} points) from {o.path}")
        elif o.result == KNOWN:
            print(f"known {o.run_id} (already in the store, unchanged) from {o.path}")
        else:
            print(f"rnnbench history add: error: {o.message}", file=sys.stderr)
    refused = sum(o.result not in (ADDED, KNOWN) for o in outcomes)
    added = sum(o.result == ADDED for o in outcomes)
    print(f"history add: {added} added, {len(outcomes) - added - refused} already known, "
          f"{refused} refused; store {store.url}")
    return 2 if refused else 0


def in_window(found, frame, since: str):
    """A boolean Series: which changes lie in the latest window `since` (N, a date, a commit)."""
    if since.isdigit():
        return found["index"] >= found["points"] - int(since)
    if _ISO_DATE.fullmatch(since):
        return found["position_after"].astype(str) >= since
    if _SHA.fullmatch(since):
        hits = frame[frame["commit_sha"].fillna("").str.startswith(since.lower())]
        if hits.empty:
            raise UserError(f"--since {since}: no point of the selected series has that commit")
        return found["position_after"].astype(str) >= str(hits["position"].min())
    raise UserError(f"--since {since!r}: give a number of points, a date (2026-11-24) or a "
                    "commit")


def _changes(frame, args: argparse.Namespace) -> int:
    from bench.storage import atomic_write_text

    found = cp.find_changes(frame, threshold=args.threshold, alpha=args.alpha)
    latest = in_window(found, frame, args.since)
    found = found.assign(latest=latest)
    series = frame["series"].nunique()
    if found.empty:
        print(f"history changes: no change of {args.threshold:.0%} or more in {series} series")
    else:
        print(markdown(changes_table(found)))
    if args.out:
        try:
            atomic_write_text(args.out, found.to_csv(index=False))
        except OSError as exc:
            raise UserError(f"cannot write {args.out}: {exc.strerror or exc}") from None
    recent = found[found["latest"] & (found["kind"] == cp.REGRESSION)]
    print(summary_line(found, series, len(recent), args.since))
    return 1 if len(recent) else 0


def summary_line(found, series: int, recent: int, since: str) -> str:
    """`history changes: 1 regression, 2 improvements in 45 series; 1 regression in the
    latest window (last 5 points)`."""
    reg = int((found["kind"] == cp.REGRESSION).sum())
    imp = len(found) - reg
    window = f"last {since} points" if since.isdigit() else f"since {since}"
    return (f"history changes: {reg} regression{'s' * (reg != 1)}, {imp} "
            f"improvement{'s' * (imp != 1)} in {series} series; {recent} "
            f"regression{'s' * (recent != 1)} in the latest window ({window})")


def changes_table(found):
    """The changes as shown: kind, case, machine, commit range, effect with interval, p."""
    import pandas as pd

    from bench.analysis.fmt import fmt_fixed

    return pd.DataFrame({
        "change": found["kind"] + found["latest"].map({True: " (latest)", False: ""}),
        "case": found["case_id"], "metric": found["metric"],
        "machine": found["machine_label"].fillna(found["machine"]),
        "commits": [f"{_short(b)}..{_short(a)}" for b, a in
                    zip(found["commit_before"], found["commit_after"], strict=True)],
        "runs": found["run_before"] + " .. " + found["run_after"],
        "effect": [f"{fmt_fixed(e * 100, '+.1f')} % [{fmt_fixed(lo * 100, '+.1f')}, "
                   f"{fmt_fixed(hi * 100, '+.1f')}]" for e, lo, hi in
                   zip(found["effect"], found["ci_low"], found["ci_high"], strict=True)],
        "p_adj": [f"{p:.1e}" for p in found["p_adj"]],
        "points": found["points_before"].astype(str) + " | " + found["points_after"].astype(str),
    })


def _short(sha) -> str:
    return str(sha)[:10] if isinstance(sha, str) and sha else "?"


def markdown(frame) -> str:
    """A DataFrame as a Markdown table (the project's table renderer)."""
    from bench.analysis.report import markdown_table

    return markdown_table(frame)
