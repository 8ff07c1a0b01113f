"""The verdict vocabulary of `check` and `ab`, and their one verdict rule: an effect past the
threshold that the test's interval confirms, and `same` only when the run could have seen a
threshold-sized change.

Both commands compute a ratio (current or B over baseline or A), the interval of their test
(one-sided bounds at alpha/m, Bonferroni over the m judged cases) and the smallest slowdown
they could have detected (`detectable`, at the same level). Then, for every case alike:

- `regression`: ratio > 1 + threshold and the interval lies above 1;
- `improvement`: ratio < 1 / (1 + threshold) and the interval lies below 1;
- `same`: neither, and the run could have detected a threshold-sized slowdown
  (detectable <= threshold): a change that big would have shown;
- `unreliable`: neither, and it could not (too few runs or pairs, or too much spread).

Cases that cannot be judged get a label of their own (`broken`, `error`, `skipped`, and in
`check` the cases a side lacks). Every label is spelled here only. No TensorFlow here.
"""

from __future__ import annotations

import math

DEFAULT_THRESHOLD = 0.10  # the smallest slowdown that counts
DEFAULT_ALPHA = 0.05  # family-wise, over the judged cases

# The judged verdicts: what `decide` returns.
REGRESSION, IMPROVEMENT, SAME, UNRELIABLE = "regression", "improvement", "same", "unreliable"
JUDGED = (REGRESSION, IMPROVEMENT, SAME, UNRELIABLE)
# Cases not judged. BROKEN: an error on the current (B) side where the baseline (A) ran; ERROR
# and SKIPPED: nothing to judge for another error or a skip (spelled as the row statuses).
BROKEN, ERROR, SKIPPED = "broken", "error", "skipped"
# `check` only: the current runs have the case but no baseline run timed it, or only one side's
# runs have it at all.
NO_BASELINE, BASELINE_ONLY, CURRENT_ONLY = "no baseline", "baseline only", "current only"
FAILING = (REGRESSION, BROKEN)  # the verdicts a command exits 1 on

# Where each verdict sits in each command's table, attention first: (rank in `check`, rank in
# `ab`; None: `ab` never gives it). One declaration, two orders, because both are stored or
# printed as they are: `check` orders its table and summary line by the first, `ab` orders its
# verdict rows, its report and the `verdict_counts` of every ab.json by the second (`broken`
# first and `error` before `skipped`). Making them one order would reorder those outputs.
_RANKS = {
    REGRESSION: (0, 1),
    BROKEN: (1, 0),
    UNRELIABLE: (2, 2),
    IMPROVEMENT: (3, 3),
    SAME: (4, 4),
    NO_BASELINE: (5, None),
    SKIPPED: (6, 6),
    ERROR: (7, 5),
    BASELINE_ONLY: (8, None),
    CURRENT_ONLY: (9, None),
}


def _order(side: int) -> tuple[str, ...]:
    ranked = {verdict: ranks[side] for verdict, ranks in _RANKS.items()
              if ranks[side] is not None}
    return tuple(sorted(ranked, key=ranked.__getitem__))


CHECK_ORDER = _order(0)  # every verdict `check` gives, in its table's order
AB_ORDER = _order(1)  # every verdict `ab` gives (ab.json accepts these and "-"), in its order


def decide(ratio: float, *, above_one: bool, below_one: bool, detectable: float | None,
           threshold: float) -> str:
    """The verdict of a judged case (module docstring); `above_one` / `below_one`: the test's
    interval lies entirely above / below 1."""
    if ratio > 1.0 + threshold and above_one:
        return REGRESSION
    if ratio < 1.0 / (1.0 + threshold) and below_one:
        return IMPROVEMENT
    if detectable is not None and math.isfinite(detectable) and detectable <= threshold:
        return SAME
    return UNRELIABLE
