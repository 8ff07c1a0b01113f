"""The compare figure: a heatmap of log time ratios, legible at 100+ cases and 2-8 runs (no TF).

One row per case timed in every run, grouped by phase and implementation (a labelled band per
group), one column per run compared with the first. Colour is log2 of the time ratio on a
diverging scale (blue: faster than the first run, red: slower); cells whose 95 % interval
includes 1× are muted and hatched, so only differences the data can tell apart stand out.
"""

from __future__ import annotations

import math

from bench.cases import compared_columns, group_columns

ROW_INCH = 0.17
MAX_ANNOTATED_ROWS = 160
CAP = math.log2(8.0)  # colours saturate at 8× either way
# Colour-bar ticks by the largest ratio shown: (up to this ratio, these ticks).
TICKS = ((1.3, (0.8, 0.9, 1.0, 1.1, 1.25)), (2.5, (0.5, 2 / 3, 1.0, 1.5, 2.0)),
         (8.0, (1 / 8, 1 / 4, 1 / 2, 1.0, 2.0, 4.0, 8.0)))
BAND = ("phase", "impl")  # the labelled bands; a row is labelled by the other id parts


def _row_labels(frame) -> list[str]:
    """unroll · device · shape · precision of each row (the id parts but the band's), without
    the parts that are the same in all."""
    parts = [c for c in (*compared_columns(), *group_columns()) if c not in BAND]
    columns = [c for c in parts if c in frame and frame[c].nunique() > 1] or parts[:1]
    return [" · ".join(str(v) for v in values)
            for values in zip(*(frame[c] for c in columns), strict=True)]


def ratio_heatmap(frame, labels: list[str], *, title: str) -> bytes:
    """PNG bytes of the heatmap of `frame` (compare_frames.main_frame without its last row)."""
    import numpy as np
    from matplotlib.colors import TwoSlopeNorm
    from matplotlib.patches import Rectangle

    from bench.analysis.plots import figure, to_png

    ref, others = labels[0], labels[1:]
    n, m = len(frame), len(others)
    ratios = np.array([[frame[f"{x}/{ref}"].iloc[i] for x in others] for i in range(n)],
                      dtype=float).reshape(n, m)
    significant = np.array([[bool(frame[f"{x}/{ref} significant"].iloc[i]) for x in others]
                            for i in range(n)]).reshape(n, m)
    logs = np.log2(ratios)
    span = float(np.nanmax(np.abs(logs))) if n else 1.0
    span = min(max(span, math.log2(1.25)), CAP)
    height = 1.9 + ROW_INCH * max(n, 4)
    fig = figure(4.6 + 1.1 * m, height)
    ax = fig.add_subplot()
    image = ax.imshow(np.clip(logs, -span, span), cmap="RdBu_r", aspect="auto",
                      norm=TwoSlopeNorm(0.0, -span, span), interpolation="nearest")
    font = 7 if n <= 60 else 5.5
    for i in range(n):
        for j in range(m):
            if not significant[i, j]:
                ax.add_patch(Rectangle((j - 0.5, i - 0.5), 1, 1, facecolor="white", alpha=0.7,
                                       hatch="///", edgecolor="#bbbbbb", linewidth=0))
            if n <= MAX_ANNOTATED_ROWS and math.isfinite(ratios[i, j]):
                dark = significant[i, j] and abs(logs[i, j]) > 0.55 * span
                ax.text(j, i, f"{ratios[i, j]:.2f}×", ha="center", va="center", fontsize=font,
                        color="white" if dark else "#222222")
    ax.set_xticks(range(m), [f"{x}/{ref}" for x in others], fontsize=8)
    ax.xaxis.set_ticks_position("top")
    rows = _row_labels(frame)
    ax.set_yticks(range(n), rows, fontsize=font)
    _group_bands(ax, frame, m)
    bar = fig.colorbar(image, ax=ax, orientation="horizontal", location="bottom",
                       fraction=0.18 / height, pad=0.35 / height, aspect=30)
    steps = next(t for limit, t in TICKS if span <= math.log2(limit) + 1e-9)
    ticks = [math.log2(t) for t in steps if abs(math.log2(t)) <= span + 1e-9]
    bar.set_ticks(ticks, labels=[f"{2 ** t:.3g}×" for t in ticks])
    bar.ax.tick_params(labelsize=7)
    bar.set_label(f"time ratio to {ref} (log scale; blue: faster than {ref})", fontsize=8)
    ax.set_title(title, fontsize=8, loc="left")
    return to_png(fig)


def _group_bands(ax, frame, m: int) -> None:
    """A line between phase · implementation groups and the group's name at its left."""
    keys = [" · ".join(values) for values in zip(*(frame[c] for c in BAND), strict=True)]
    start, middles, names = 0, [], []
    for index in range(1, len(keys) + 1):
        if index == len(keys) or keys[index] != keys[start]:
            if index < len(keys):
                ax.axhline(index - 0.5, color="#333333", linewidth=0.8)
            middles.append((start + index - 1) / 2)
            names.append(keys[start])
            start = index
    ax.set_xlim(-0.5, m - 0.5)
    right = ax.secondary_yaxis("right")
    right.set_yticks(middles, names, fontsize=7, fontweight="bold")
    right.tick_params(length=0)
