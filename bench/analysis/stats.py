"""Statistics for compare and check: geometric mean, Welch's t on log run medians and its
bounds, multiple-testing corrections (no TF).

The unit of a regression check is the run (one process): the rounds inside one run share one
machine state, so they are not independent samples of the machine's speed. Each run gives one
number per case, its median, and the test compares the log medians of the baseline runs with
those of the current runs.

Why Welch's t-test on log medians, not Mann-Whitney U on run medians: a run median is the
median of many rounds, so its log is close to normal; the sides have few runs (3 to 10), where
an exact rank test cannot reach small p-values at all (3 vs 3 runs: p >= 0.05, before any
correction for the number of cases), while the t-test can; and the t-test gives a closed-form
power calculation, so "runs needed" and "minimum detectable slowdown" follow from the same
formula the verdict uses. Welch (unequal variances) because the two sides often ran on
different days.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence

# Label of the summary row (geometric mean over cases) in the compare and check tables.
GEOMEAN = "geomean"
MIN_RUNS = 3  # per side, below which check gives no verdict
POWER = 0.8
MAX_RUNS_ADVICE = 1000


def geomean(values: Iterable[float]) -> float:
    """Geometric mean of positive finite values; NaN when there are none."""
    logs = [math.log(v) for v in values if v is not None and math.isfinite(v) and v > 0]
    return math.exp(sum(logs) / len(logs)) if logs else math.nan


def _mean_var(values: Sequence[float]) -> tuple[float, float]:
    mean = sum(values) / len(values)
    var = sum((v - mean) ** 2 for v in values) / (len(values) - 1) if len(values) > 1 else 0.0
    return mean, var


def _welch(before: Sequence[float], after: Sequence[float]) -> tuple[float, float, float]:
    """(mean(after) - mean(before), its squared standard error, Welch–Satterthwaite df); the
    df is NaN when neither side has any spread (the squared error is then 0)."""
    if len(before) < 2 or len(after) < 2:
        raise ValueError("Welch's t-test needs at least two values on each side")
    (m_b, v_b), (m_a, v_a) = _mean_var(before), _mean_var(after)
    se2_b, se2_a = v_b / len(before), v_a / len(after)
    se2 = se2_b + se2_a
    if se2 == 0.0:
        return m_a - m_b, 0.0, math.nan
    df = se2 ** 2 / (se2_b ** 2 / (len(before) - 1) + se2_a ** 2 / (len(after) - 1))
    return m_a - m_b, se2, df


def welch_p(before: Sequence[float], after: Sequence[float], alternative: str = "greater"
            ) -> float:
    """One-sided Welch t-test p-value that `after` has a greater (or "less") mean than `before`.

    Both sides need >= 2 values (ValueError otherwise). Without any spread on either side the
    test is degenerate: p = 0 if the means differ in the asked direction, else 1.
    """
    from scipy.special import stdtr

    diff, se2, df = _welch(before, after)
    if alternative not in ("greater", "less"):
        raise ValueError(f"alternative must be 'greater' or 'less', not {alternative!r}")
    diff = diff if alternative == "greater" else -diff
    if se2 == 0.0:
        return 0.0 if diff > 0 else 1.0
    return float(stdtr(df, -diff / math.sqrt(se2)))


def welch_bounds(before: Sequence[float], after: Sequence[float], level: float
                 ) -> tuple[float, float]:
    """One-sided `level` lower and upper bounds of mean(after) - mean(before) (Welch's t):
    the one-sided test at 1 - level rejects exactly when the bound in its direction passes 0.
    Both sides need >= 2 values; without any spread both bounds are the difference."""
    from scipy.special import stdtrit

    diff, se2, df = _welch(before, after)
    if se2 == 0.0:
        return diff, diff
    half = float(stdtrit(df, level)) * math.sqrt(se2)
    return diff - half, diff + half


def pooled_log_sd(*sides: Sequence[float]) -> float:
    """Pooled standard deviation of log values over the sides with >= 2 values; NaN if none."""
    num = dof = 0.0
    for values in sides:
        if len(values) > 1:
            num += _mean_var(values)[1] * (len(values) - 1)
            dof += len(values) - 1
    return math.sqrt(num / dof) if dof else math.nan


def _z(alpha: float, df: float) -> float:
    """The one-sided critical value plus the power quantile of Student's t with `df`."""
    from scipy.special import stdtrit

    return float(stdtrit(df, 1.0 - alpha) + stdtrit(df, POWER))


def min_detectable(sigma: float, n_before: int, n_after: int, alpha: float) -> float:
    """Smallest slowdown (0.10 = 10 %) detected with probability POWER at level `alpha`.

    The t-test's power formula with the pooled spread `sigma` of log run medians and
    n_before + n_after - 2 degrees of freedom; NaN when the spread is unknown or df < 1.
    """
    df = n_before + n_after - 2
    if not math.isfinite(sigma) or df < 1 or n_before < 1 or n_after < 1:
        return math.nan
    return math.expm1(_z(alpha, df) * sigma * math.sqrt(1 / n_before + 1 / n_after))


def runs_needed(sigma: float, effect: float, alpha: float) -> int | None:
    """Runs per side at which a slowdown of `effect` becomes detectable (min_detectable <= it).

    At least MIN_RUNS; capped at MAX_RUNS_ADVICE; None when the spread is unknown.
    """
    if not math.isfinite(sigma):
        return None
    low, high = MIN_RUNS - 1, MIN_RUNS  # invariant: low is not enough, high is (or the cap)
    while high < MAX_RUNS_ADVICE and min_detectable(sigma, high, high, alpha) > effect:
        low, high = high, min(2 * high, MAX_RUNS_ADVICE)
    while high - low > 1:
        mid = (low + high) // 2
        if min_detectable(sigma, mid, mid, alpha) > effect:
            low = mid
        else:
            high = mid
    return high

