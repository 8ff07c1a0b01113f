"""`rnnbench publish`: a static history site from the store that opens from disk (no server).

index.html (changes first, then every series grouped by implementation and phase, with its
latest value, change flags and a sparkline), machines.html (the latest value of every case on
every machine) and one page per case (history per machine on a log axis, change points
marked, A/B ratios on their own panel). Pages are self-contained: inline CSS, inline SVG.
"""

from __future__ import annotations

import argparse
import shutil
import tempfile
from pathlib import Path

from bench.analysis import html
from bench.args import add_out
from bench.errors import UserError
from bench.history import changes as cp
from bench.history.command import (
    add_change_options,
    add_filter_options,
    add_store_option,
    selected_points,
)
from bench.history.series import implementation_series, normalized, segmented
from bench.history.site_data import (
    CASES_DIR,
    case_page,
    machine_matrix,
    machines_frame,
    series_index,
)
from bench.history.site_plots import case_figure, sparkline
from bench.history.store import open_store, store_url
from bench.results import utc_now

MARKER = ".rnnbench-site"
INDEX, MACHINES = "index.html", "machines.html"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Register the `publish` flags."""
    add_store_option(parser)
    add_out(parser, "site folder: new, empty, or a site published before (replaced as a whole)",
            required=True)
    add_filter_options(parser)
    add_change_options(parser)


def main(args: argparse.Namespace) -> int:
    """Compute the site's tables from the store, render the pages, swap the folder in."""
    out = Path(args.out)
    _check_out(out)
    with open_store(store_url(args.store)) as store:
        points = selected_points(store, args)
        if args.normalize:
            points = normalized(points)
        if points.empty:
            raise UserError(f"{store.url}: no points match the filters; nothing to publish")
        machines = machines_frame(store)
        title_store = store.url
    import pandas as pd

    points = segmented(points)
    # The implementations' geometric-mean series get an index row and a page too.
    points = pd.concat([points, implementation_series(points)], ignore_index=True)
    found = cp.find_changes(points, threshold=args.threshold, alpha=args.alpha, groups=False)
    pages = write_site(out, points, found, machines, title_store)
    print(f"publish: {pages} pages, {points['series'].nunique()} series, {len(found)} changes "
          f"-> {out / INDEX}")
    return 0


def _check_out(out: Path) -> None:
    if out.exists() and (not out.is_dir() or (any(out.iterdir())
                                              and not (out / MARKER).exists())):
        raise UserError(f"{out} exists and is not an rnnbench site (no {MARKER}); a publish "
                        "never overwrites other files: choose a new or empty --out")
    parent = out.resolve().parent
    if not parent.is_dir():
        raise UserError(f"{out}: folder {parent} does not exist")


def write_site(out: Path, points, found, machines, store_name: str) -> int:
    """Render every page into a fresh folder next to `out`, then replace `out` by it."""
    try:
        tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.", dir=out.resolve().parent))
    except OSError as exc:
        raise UserError(f"cannot write to {out.parent}: {exc.strerror or exc}") from None
    try:
        (tmp / CASES_DIR).mkdir()
        (tmp / MARKER).write_text(f"rnnbench history site, published {utc_now()}\n")
        index = series_index(points, found)
        subtitle = (f"{points['series'].nunique()} series on {points['machine'].nunique()} "
                    f"machine(s), {points['run_id'].nunique()} runs; store {store_name}; "
                    f"published {utc_now()}")
        html.write_page(tmp / INDEX, _index_page(index, found, subtitle))
        html.write_page(tmp / MACHINES, _machines_page(points, machines))
        count = 2
        for case_id, part in points.groupby("case_id", sort=True):
            html.write_page(tmp / case_page(case_id),
                            _case_page(case_id, part, found[found["case_id"] == case_id]))
            count += 1
        _swap(tmp, out)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return count


def _swap(tmp: Path, out: Path) -> None:
    old = None
    if out.exists():
        old = out.with_name(f".{out.name}.old-{tmp.name[-8:]}")
        out.rename(old)
    tmp.rename(out)
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)


_LINKS_TOP = ((INDEX, "series"), (MACHINES, "machine matrix"))


def _changes_table(found, prefix: str) -> str:
    if found.empty:
        return html.paragraph("No change found in any series.")
    from bench.history.command import changes_table

    shown = changes_table(found.assign(latest=False))
    shown.insert(1, "page", [html.link(prefix + case_page(c), c) for c in found["case_id"]])
    shown = shown.drop(columns="case")
    css = ["bad" if k == cp.REGRESSION else "good" for k in found["kind"]]
    return html.table(shown, html_columns=("page",), row_classes=css, table_id="changes")


def _index_page(index, found, subtitle: str) -> str:
    parts = [html.section("Changes (regressions first)", _changes_table(found, ""))]
    for (impl, phase), group in index.groupby(["impl", "phase"], sort=False, dropna=False):
        shown = group.assign(
            case=[html.link(p, c) for p, c in zip(group["page"], group["case_id"], strict=True)],
            history=[sparkline(v, bad=r > 0) for v, r in
                     zip(group["values"], group["regressions"], strict=True)],
        )[["case", "metric", "machine_label", "points", "latest", "robust_sd_log", "regressions",
           "improvements", "last_change", "history"]]
        parts.append(html.section(f"{impl} · {phase}", html.table(
            shown.rename(columns={"machine_label": "machine", "robust_sd_log": "noise (sd log)"}),
            html_columns=("case", "history")), level=3))
    return html.page("rnnbench history", parts, subtitle=subtitle, links=_LINKS_TOP)


def _machines_page(points, machines) -> str:
    matrix = machine_matrix(points)
    parts = [html.section("Machines", html.table(machines)),
             html.section("Latest value of every case on every machine",
                          html.table(matrix.assign(case_id=[html.link(case_page(c), c)
                                                            for c in matrix["case_id"]]),
                                     html_columns=("case_id",)))]
    return html.page("rnnbench history: machine matrix", parts, links=_LINKS_TOP)


TABLE_POINTS = 30  # per series in a case page's table (the plot shows them all)


def _points_table(points) -> str:
    latest = points.groupby("series", sort=False).tail(TABLE_POINTS)
    caption = (f"the latest {TABLE_POINTS} points of each series ({len(latest)} of "
               f"{len(points)})" if len(latest) < len(points) else None)
    return html.table(latest[["machine_label", "metric", "commit_sha", "run_id", "position",
                              "value", "ci_low", "ci_high", "n", "reference_sha", "marker"]],
                      caption=caption)


def _case_page(case_id: str, points, found) -> str:
    fig = case_figure(points, found)
    parts = [html.section("Changes", _changes_table(found, "../")),
             html.figure(html.svg(fig), "History per machine (log y axis). Dashed lines: "
                         "change points (red regression, green improvement); dotted: the A/B "
                         "reference moved. A/B ratios are on their own panel."),
             html.section("Points", _points_table(points))]
    links = tuple(("../" + h, t) for h, t in _LINKS_TOP)
    return html.page(case_id, parts, subtitle="history of one case", links=links)
