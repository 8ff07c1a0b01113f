"""The history site's figures: a case's history per machine (log y), and sparklines."""

from __future__ import annotations

import math

from bench.analysis.html import esc
from bench.analysis.plots import RUN_COLORS, missing_glyphs_allowed, plain_log_ticks
from bench.history.changes import REGRESSION
from bench.history.points import MEDIAN, RATIO, RELATIVE, TTA

_LABEL = {MEDIAN: "median step time (s)", TTA: "time to target (s)",
          RATIO: "A/B ratio B/A (vs the reference commit)",
          f"{MEDIAN}*peak": "time × calibrated peak (GFLOP)"}  # history.series.normalized
MAX_LABELLED = 40  # points per panel above which the commit labels are left off


def case_figure(points, found):
    """A figure with one panel per kind of series (absolute, then A/B ratios), log y axis,
    one line per machine, change points marked, points labelled with commit and value."""
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib.figure import Figure

    metrics = sorted(points["metric"].unique(), key=lambda m: (m in RELATIVE, m))
    fig = Figure(figsize=(10, 3.6 * len(metrics)), dpi=100, layout="constrained")
    axes = fig.subplots(len(metrics), 1, squeeze=False)[:, 0]
    with missing_glyphs_allowed():
        for ax, metric in zip(axes, metrics, strict=True):
            _panel(ax, points[points["metric"] == metric], found[found["metric"] == metric])
            ax.set_ylabel(_LABEL.get(metric, metric), fontsize=8)
    return fig


def _panel(ax, points, found) -> None:
    labelled = len(points) <= MAX_LABELLED
    # One x slot per point in time order, shared by every machine: runs that came in bursts
    # (a calibration series in an hour, then one run a day) stay readable.
    keys = points[["position", "created_utc", "run_id"]].astype(str).agg(" ".join, axis=1)
    order = {k: i for i, k in enumerate(sorted(keys.unique()))}
    slots = keys.map(order)
    labels = points.groupby("machine", sort=True)["machine_label"].first()
    shared = labels[labels.duplicated(keep=False)].index
    lines = points.groupby("machine", sort=True)
    for color, (machine, part) in zip(_cycle(), lines, strict=False):
        # Machines that differ only in a field the label leaves out keep apart by their id.
        label = f"{labels[machine]} [{machine}]" if machine in shared else labels[machine]
        xs = slots.loc[part.index].to_numpy()
        ax.plot(xs, part["level"], marker="o", ms=3, lw=1, color=color, label=label)
        if part["ci_low"].notna().any() and part["metric"].iloc[0] not in RELATIVE:
            ax.fill_between(xs, part["ci_low"], part["ci_high"], color=color, alpha=0.15, lw=0)
        for xi, (_, row) in zip(xs, part.iterrows(), strict=True):
            if labelled:
                text = f"{_short(row['commit_sha'])} {row['level']:.3g}"
                ax.annotate(text, (xi, row["level"]),
                            fontsize=5.5, rotation=60, xytext=(2, 3), textcoords="offset points",
                            color="#444")
            if row.get("marker"):
                ax.axvline(xi, color="#777", ls=":", lw=1)
                ax.text(xi, 1.0, f" {row['marker']}", transform=ax.get_xaxis_transform(),
                        fontsize=7, color="#555", va="top")
        mine = found[found["machine"] == machine]
        for _, change in mine.iterrows():
            xi = xs[int(change["index"])] if int(change["index"]) < len(xs) else xs[-1]
            bad = change["kind"] == REGRESSION
            ax.axvline(xi, color="#a12626" if bad else "#1f6f3a", ls="--", lw=1.2)
            ax.text(xi, 0.02, f" {change['effect']:+.1%}", transform=ax.get_xaxis_transform(),
                    fontsize=8, color="#a12626" if bad else "#1f6f3a")
    ax.set_yscale("log")
    plain_log_ticks(ax.yaxis)  # plain labels: parsing mathtext ones was most of a page
    ax.grid(True, alpha=0.3)
    ax.legend(fontsize=7, loc="upper left")
    ax.set_xlabel("point (time order, every machine on one axis)", fontsize=8)


def _cycle():
    while True:
        yield from RUN_COLORS


def _short(sha) -> str:
    return str(sha)[:7] if isinstance(sha, str) and sha else "?"


def sparkline(values, *, bad: bool = False, width: int = 120, height: int = 24) -> str:
    """A tiny inline SVG line of a series (log scale), red when it has a regression."""
    logs = [math.log(v) for v in values if v and v > 0 and math.isfinite(v)]
    if len(logs) < 2:
        return ""
    low, high = min(logs), max(logs)
    span = (high - low) or 1.0
    pts = " ".join(f"{i * (width - 2) / (len(logs) - 1) + 1:.1f},"
                   f"{height - 2 - (v - low) / span * (height - 4):.1f}"
                   for i, v in enumerate(logs))
    color = "#a12626" if bad else "#2f5f8f"
    return (f'<svg class="spark" width="{width}" height="{height}" viewBox="0 0 {width} '
            f'{height}" role="img" aria-label="{esc("history of " + str(len(logs)) + " points")}"'
            f'><polyline fill="none" stroke="{color}" stroke-width="1.3" points="{pts}"/></svg>')
