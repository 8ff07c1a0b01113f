"""Matplotlib figures for reports and comparisons, rendered to PNG bytes (Agg; no TensorFlow)."""

from __future__ import annotations

import contextlib
import io
import math
import warnings
from collections.abc import Iterator, Sequence

from bench.cases import DIMENSIONS, compared_columns, param_types
from bench.rows import MEDIAN_S
from bench.tta_rows import TTARow

UNROLL_COLORS = {"static": "#4C72B0", "dynamic": "#DD8452", "fused": "#55A868"}
PHASE_COLORS = {"forward": "#4C72B0", "backward": "#DD8452", "train_step": "#C44E52"}
# One colour per series (a run, a machine) where a figure draws several.
RUN_COLORS = ("#4C72B0", "#DD8452", "#55A868", "#C44E52", "#8172B3", "#937860")
SWEEP_PARAMS = ("seq_len", "hidden_size", "batch")
_SWEEP_SHORT = {"batch": "b", "seq_len": "t", "input_size": "i", "hidden_size": "h",
                "num_layers": "l"}
_SWEEP_LABEL = {"seq_len": "sequence length T (steps)", "hidden_size": "hidden size H (units)",
                "batch": "batch size B"}


@contextlib.contextmanager
def missing_glyphs_allowed() -> Iterator[None]:
    """Names from a results file may hold characters the font lacks: drawn as boxes, no warning."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=r"Glyph \d+ .*missing from font",
                                category=UserWarning)
        yield


def figure(width: float, height: float):
    """An empty matplotlib Figure (Agg backend, constrained layout) of that size in inches."""
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib.figure import Figure

    return Figure(figsize=(width, height), dpi=110, layout="constrained")


def to_png(fig) -> bytes:
    """Render a figure to PNG bytes."""
    buf = io.BytesIO()
    fig.savefig(buf, format="png")
    return buf.getvalue()


def short_labels(ids: Sequence[str]) -> list[str]:
    """Case ids with the `/`-segments that are the same in every id dropped."""
    parts = [i.split("/") for i in ids]
    if len(parts) < 2 or len({len(p) for p in parts}) != 1:
        return list(ids)
    keep = [k for k in range(len(parts[0])) if len({p[k] for p in parts}) > 1]
    return ["/".join(p[k] for k in keep) or i for p, i in zip(parts, ids, strict=True)]


def _log_if_wide(ax, values, axis: str = "y", span: float = 20.0) -> None:
    vals = [v for v in values if v and math.isfinite(v) and v > 0]
    if vals and max(vals) / min(vals) > span:
        (ax.set_yscale if axis == "y" else ax.set_xscale)("log")


def _ordered(values) -> list:
    return list(dict.fromkeys(values))


def grouped_bars(frame, value: str, *, title: str, ylabel: str, scale: float = 1.0,
                 err: str | None = None, panel: str = "phase"):
    """Bars of `value` by impl (x) and unroll (colour), one panel per `panel` value; PNG bytes.

    `frame` holds one row per case (ok, skipped or error); cases that did not run, and ok cases
    without a value (`not recorded`, `0`), get a marker at the foot of their slot, not a bar.
    """
    from matplotlib.transforms import blended_transform_factory

    panels = _ordered(frame[panel])
    impls = _ordered(frame["impl"])
    unrolls = [u for u in UNROLL_COLORS if u in set(frame["unroll"])]
    per_impl = {i: [u for u in unrolls if ((frame["impl"] == i) & (frame["unroll"] == u)).any()]
                for i in impls}
    width = 0.8 / max(len(v) for v in per_impl.values())
    fig = figure(max(6.0, 0.75 * len(impls) + 2.2), 1.6 + 2.6 * len(panels))
    axes = fig.subplots(len(panels), 1, squeeze=False)[:, 0]
    for ax, key in zip(axes, panels, strict=True):
        sub = frame[frame[panel] == key]
        marks = blended_transform_factory(ax.transData, ax.transAxes)
        plotted = []
        for x, impl in enumerate(impls):
            slots = per_impl[impl]
            for j, unroll in enumerate(slots):
                row = sub[(sub["impl"] == impl) & (sub["unroll"] == unroll)]
                if row.empty:
                    continue
                r = row.iloc[0]
                pos = x + width * (j - (len(slots) - 1) / 2)
                val = r.get(value)
                if r["status"] == "ok" and val is not None and math.isfinite(val) and val > 0:
                    yerr = None
                    if err and r.get(err) is not None and math.isfinite(r[err]):
                        yerr = [[min(r[err] * scale / 2, val * scale * 0.999)],
                                [r[err] * scale / 2]]
                    ax.bar(pos, val * scale, width, yerr=yerr, capsize=2,
                           color=UNROLL_COLORS[unroll],
                           label=unroll if unroll not in ax.get_legend_handles_labels()[1]
                           else None)
                    plotted.append(val * scale)
                else:
                    text = r["status"] if r["status"] != "ok" else (
                        "0" if val == 0 else "not recorded")
                    ax.text(pos, 0.03, text, transform=marks, rotation=90, ha="center",
                            va="bottom", fontsize=7, color="#777777")
        _log_if_wide(ax, plotted)
        if ax.get_yscale() == "log":
            plain_log_ticks(ax.yaxis)
        ax.set_xticks(range(len(impls)))
        ax.set_xticklabels(impls, rotation=25, ha="right", fontsize=8)
        ax.set_title(f"{panel}: {key}", fontsize=10)
        ax.set_ylabel(ylabel, fontsize=8)
        ax.grid(axis="y", alpha=0.3)
    axes[-1].set_xlabel("implementation")
    handles = {}
    for ax in axes:
        for h, lab in zip(*ax.get_legend_handles_labels(), strict=True):
            handles.setdefault(lab, h)
    if handles:
        order = [u for u in unrolls if u in handles]
        fig.legend([handles[u] for u in order], order, title="unroll", loc="outside lower center",
                   fontsize=8, ncols=len(order))
    fig.suptitle(title, fontsize=11)
    return to_png(fig)


def static_vs_dynamic(frame, *, title: str):
    """Ratio static / dynamic median time per impl, bars by phase (log y, 1 = parity); or None."""
    ok = frame[frame["status"] == "ok"]
    ratios = []
    for (impl, phase), sub in ok.groupby(["impl", "phase"], sort=False):
        times = dict(zip(sub["unroll"], sub[MEDIAN_S], strict=True))
        if times.get("static") and times.get("dynamic"):
            ratios.append((impl, phase, times["static"] / times["dynamic"]))
    if not ratios:
        return None
    impls = _ordered(r[0] for r in ratios)
    phases = [p for p in PHASE_COLORS if p in {r[1] for r in ratios}]
    width = 0.8 / len(phases)
    fig = figure(max(5.0, 1.1 * len(impls) + 2.5), 4.0)
    ax = fig.subplots()
    for j, phase in enumerate(phases):
        xs, ys = [], []
        for impl, ph, ratio in ratios:
            if ph == phase:
                xs.append(impls.index(impl) - 0.4 + width * (j + 0.5))
                ys.append(ratio)
        ax.bar(xs, [y - 1.0 for y in ys], width, bottom=1.0, color=PHASE_COLORS[phase],
               label=phase)
    ax.axhline(1.0, color="black", lw=0.8)
    _ratio_axis(ax, [r[2] for r in ratios], "y")
    ax.set_xticks(range(len(impls)))
    ax.set_xticklabels(impls, rotation=20, ha="right", fontsize=8)
    ax.set_xlabel("implementation")
    ax.set_ylabel("static / dynamic median time (×)")
    ax.grid(axis="y", alpha=0.3, which="both")
    fig.legend(title="phase", fontsize=8, loc="outside right upper")
    ax.set_title(title + "\nbelow 1: static unrolling faster; above 1: dynamic faster",
                 fontsize=10)
    return to_png(fig)


def _ratio_axis(ax, values, axis: str) -> None:
    """Log axis for ratios with plain tick labels like 0.5×, 1×, 2×."""
    from matplotlib.ticker import FixedLocator, FuncFormatter, NullLocator

    lo = min([*values, 0.5]) / 1.25
    hi = max([*values, 2.0]) * 1.25
    ticks = [t for t in (0.01, 0.02, 0.05, 0.1, 0.2, 0.3, 0.5, 0.7, 1, 1.5, 2, 3, 5, 10, 20, 50,
                         100) if lo <= t <= hi]
    target = ax.yaxis if axis == "y" else ax.xaxis
    (ax.set_yscale if axis == "y" else ax.set_xscale)("log")
    (ax.set_ylim if axis == "y" else ax.set_xlim)(lo, hi)
    target.set_major_locator(FixedLocator(ticks))
    target.set_minor_locator(NullLocator())
    target.set_major_formatter(FuncFormatter(lambda v, _: f"{v:g}×"))


def find_sweeps(frame) -> list[dict]:
    """Sweeps in the ok rows: one varied shape field (≥ 3 values), every other case parameter
    but the compared ones (impl, unroll) fixed, so full and ragged cases never share a sweep.

    Returns dicts with param, device, phase, base (the fixed fields) and rows (a DataFrame).
    """
    ok = frame[frame["status"] == "ok"]
    compared = compared_columns()
    sweeps = []
    for param in SWEEP_PARAMS:
        keys = [k for k in param_types() if k != param and k not in compared]
        for key, sub in ok.groupby(keys, sort=False, dropna=False):
            if sub[param].nunique() >= 3:
                base = dict(zip(keys, key, strict=True))
                sweeps.append({"param": param, "device": base["device"],
                               "phase": base["phase"], "base": base, "rows": sub})
    return sweeps


def plain_log_ticks(axis) -> None:
    """Ticks at 1, 2, 5 × 10^k with plain labels on a log axis."""
    from matplotlib.ticker import FuncFormatter, LogLocator, NullLocator

    axis.set_major_locator(LogLocator(base=10, subs=(1.0, 2.0, 5.0)))
    axis.set_minor_locator(NullLocator())
    axis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:g}"))


def _base_label(sweep: dict) -> str:
    base = sweep["base"]
    shape = [f"{_SWEEP_SHORT[p]}{base[p]}" for p in _SWEEP_SHORT if p in base]
    marks = [f"{d.name} {base[d.name]}" for d in DIMENSIONS  # e.g. "lengths ragged"
             if d.default is not None and not d.leads and base.get(d.name, d.default) != d.default]
    return " ".join(shape) + "".join(f", {m}" for m in marks)


def scaling_curves(sweeps: list[dict], *, title: str):
    """Median time vs the swept field, one line per impl/unroll, log-log, one panel per sweep."""
    n = len(sweeps)
    cols = min(n, 3)
    rows = math.ceil(n / cols)
    fig = figure(4.3 * cols + 1.6, 3.6 * rows)
    axes = fig.subplots(rows, cols, squeeze=False).ravel()
    labels = {}
    for ax, sweep in zip(axes, sweeps, strict=False):
        sub = sweep["rows"]
        for (impl, unroll), unsorted in sub.groupby(["impl", "unroll"], sort=False):
            line = unsorted.sort_values(sweep["param"])
            name = f"{impl}/{unroll}"
            color = labels.setdefault(name, f"C{len(labels) % 10}")
            ax.plot(line[sweep["param"]], line[MEDIAN_S] * 1e3, marker="o", ms=3,
                    color=color, label=name)
        values = sorted(sub[sweep["param"]].unique())
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.set_xticks(values)
        ax.set_xticklabels([str(v) for v in values])
        ax.minorticks_off()
        plain_log_ticks(ax.yaxis)
        ax.set_xlabel(_SWEEP_LABEL[sweep["param"]])
        ax.set_ylabel("median step time (ms)")
        ax.set_title(f"{sweep['phase']} on {sweep['device']}, {_base_label(sweep)}",
                     fontsize=9)
        ax.grid(alpha=0.3, which="both")
    for ax in axes[n:]:
        ax.set_visible(False)
    handles, names = [], []
    for ax in axes[:n]:
        for h, lab in zip(*ax.get_legend_handles_labels(), strict=True):
            if lab not in names:
                handles.append(h)
                names.append(lab)
    fig.legend(handles, names, loc="outside lower center", fontsize=8, title="impl/unroll",
               ncols=min(len(names), 5))
    fig.suptitle(title, fontsize=11)
    return to_png(fig)


def tta_curves(rows: Sequence[TTARow], *, title: str):
    """Held-out accuracy vs wall-clock seconds per time-to-accuracy row, one panel per task."""
    usable = [r for r in rows if r.stats.curve]
    if not usable:
        return None
    tasks = _ordered(r.settings.get("task", "?") for r in usable)
    fig = figure(5.2 * len(tasks) + 1.8, 4.0)
    axes = fig.subplots(1, len(tasks), squeeze=False)[0]
    colors = {}
    for ax, task in zip(axes, tasks, strict=True):
        targets = set()
        for row in usable:
            settings = row.settings
            if settings.get("task", "?") != task:
                continue
            points = [p for p in row.stats.curve
                      if p.get("wall_s") is not None and p.get("heldout_acc") is not None]
            if not points:
                continue
            name = f"{settings.get('impl', '?')}/{settings.get('unroll', '?')}"
            first = name not in colors
            color = colors.setdefault(name, f"C{len(colors) % 10}")
            ax.plot([p["wall_s"] for p in points], [p["heldout_acc"] for p in points],
                    color=color, marker=".", ms=3, lw=1.2, alpha=0.85,
                    label=name if first else None)
            if settings.get("target") is not None:
                targets.add(float(settings["target"]))
        for target in sorted(targets):
            ax.axhline(target, color="black", ls="--", lw=0.8)
            ax.annotate(f"target {target:g}", (0.01, target), xycoords=("axes fraction", "data"),
                        va="bottom", fontsize=7)
        if targets:
            ax.set_ylim(top=max(ax.get_ylim()[1], max(targets) + 0.05))
        ax.set_title(f"task: {task}", fontsize=10)
        ax.set_xlabel("wall-clock training time (s)")
        ax.set_ylabel("held-out accuracy")
        ax.grid(alpha=0.3)
    handles, names = [], []
    for ax in axes:
        for h, lab in zip(*ax.get_legend_handles_labels(), strict=True):
            if lab not in names:
                handles.append(h)
                names.append(lab)
    if handles:
        fig.legend(handles, names, loc="outside lower center", fontsize=8, title="impl/unroll",
                   ncols=min(len(names), 4))
    fig.suptitle(title, fontsize=11)
    return to_png(fig)
