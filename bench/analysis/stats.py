"""Statistics for compare and check: geometric mean, Mann-Whitney U, rounds needed (no TF)."""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence

# Asymptotic relative efficiency of Mann-Whitney U against the t-test for normal data (3/pi).
_MWU_EFFICIENCY = 3.0 / math.pi
MAX_ROUNDS_ADVICE = 1000
# Label of the summary row (geometric mean over cases) in the compare and check tables.
GEOMEAN = "geomean"


def geomean(values: Iterable[float]) -> float:
    """Geometric mean of positive finite values; NaN when there are none."""
    logs = [math.log(v) for v in values if v is not None and math.isfinite(v) and v > 0]
    return math.exp(sum(logs) / len(logs)) if logs else math.nan


def median(values: Sequence[float]) -> float:
    """Median of a non-empty sequence; NaN when empty."""
    ordered = sorted(values)
    n = len(ordered)
    if n == 0:
        return math.nan
    mid = n // 2
    return ordered[mid] if n % 2 else 0.5 * (ordered[mid - 1] + ordered[mid])


def mann_whitney_p(baseline: Sequence[float], current: Sequence[float],
                   alternative: str = "greater") -> float:
    """One-sided Mann-Whitney U p-value that `current` is greater (slower) than `baseline`.

    `alternative="less"` asks whether current is smaller (faster). Samples without any spread at
    all (every value identical) carry no evidence: p = 1. scipy's exceptions propagate.
    """
    from scipy.stats import mannwhitneyu

    if not baseline or not current:
        raise ValueError("Mann-Whitney U needs at least one sample on each side")
    if len(set(baseline) | set(current)) == 1:
        return 1.0
    return float(mannwhitneyu(current, baseline, alternative=alternative).pvalue)


def min_rounds_for_alpha(alpha: float) -> int:
    """Smallest n (per side, equal sizes) at which a one-sided exact U test can reach p < alpha."""
    n = 1
    while 1.0 / math.comb(2 * n, n) >= alpha:
        n += 1
    return n


def min_p_value(n_baseline: int, n_current: int) -> float:
    """The smallest one-sided exact Mann-Whitney p-value possible with these sample sizes."""
    if n_baseline < 1 or n_current < 1:
        return 1.0
    return 1.0 / math.comb(n_baseline + n_current, n_current)


def robust_log_sigma(samples: Sequence[float]) -> float:
    """Spread of log(samples) estimated from the IQR (IQR / 1.349); NaN with < 2 samples."""
    import numpy as np

    logs = np.log(np.asarray([s for s in samples if s > 0], dtype=float))
    if logs.size < 2:
        return math.nan
    q1, q3 = np.percentile(logs, [25, 75])
    sigma = float((q3 - q1) / 1.349)
    if sigma == 0.0:
        sigma = float(np.std(logs, ddof=1))
    return sigma


def rounds_needed(sigma_log: float, effect: float, alpha: float, power: float = 0.9) -> int:
    """Rounds per side for a one-sided U test to detect a slowdown of `effect` (0.10 = 10 %).

    Normal approximation on log-times with the U test's efficiency; never below the rounds
    at which the exact test can reach `alpha` at all. Capped at MAX_ROUNDS_ADVICE.
    """
    from scipy.stats import norm

    floor = min_rounds_for_alpha(alpha)
    delta = math.log1p(effect)
    if not math.isfinite(sigma_log) or delta <= 0:
        return floor
    z = norm.ppf(1.0 - alpha) + norm.ppf(power)
    n = 2.0 * (z * sigma_log / delta) ** 2 / _MWU_EFFICIENCY
    return int(min(max(math.ceil(n), floor), MAX_ROUNDS_ADVICE))
