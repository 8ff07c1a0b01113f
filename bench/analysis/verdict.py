"""The one verdict rule of `check` and `ab`: an effect past the threshold that the test's
interval confirms, and `same` only when the run could have seen a threshold-sized change.

Both commands compute a ratio (current or B over baseline or A), the interval of their test
(one-sided bounds at alpha/m, Bonferroni over the m judged cases) and the smallest slowdown
they could have detected (`detectable`, at the same level). Then, for every case alike:

- `regression`: ratio > 1 + threshold and the interval lies above 1;
- `improvement`: ratio < 1 / (1 + threshold) and the interval lies below 1;
- `same`: neither, and the run could have detected a threshold-sized slowdown
  (detectable <= threshold): a change that big would have shown;
- `unreliable`: neither, and it could not (too few runs or pairs, or too much spread).

No TensorFlow here.
"""

from __future__ import annotations

import math

DEFAULT_THRESHOLD = 0.10  # the smallest slowdown that counts
DEFAULT_ALPHA = 0.05  # family-wise, over the judged cases
REGRESSION, IMPROVEMENT, SAME, UNRELIABLE = "regression", "improvement", "same", "unreliable"


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
