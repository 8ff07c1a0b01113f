"""The distribution-free 95 % interval of a median, from order statistics of the rounds.

For n rounds sorted x(1) <= ... <= x(n), the interval [x(k), x(n+1-k)] holds the true median
of the rounds' distribution with probability 1 - 2·P(Binomial(n, 1/2) <= k - 1), whatever that
distribution is (the rounds only need to be independent draws of it). k is the largest rank
whose coverage is still >= the level; below 6 rounds no k reaches 95 %, and there is no
interval. Cheap (a sort and a binomial sum), exact, and one slow round cannot widen it.

It is within-run uncertainty: it says how well this run pins its own median, not how far
another run on the same machine may land (processes differ by more: see `rnnbench ab`).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

LEVEL = 0.95


def median_ranks(n: int, level: float = LEVEL) -> tuple[int, int] | None:
    """1-based ranks (k, n + 1 - k) of the interval's ends for n rounds; None below coverage."""
    if n < 1 or not 0 < level < 1:
        return None
    tail = (1.0 - level) / 2.0
    cumulative, k = 0.0, 0
    # Grow k while P(B <= k) stays within the tail: then [x(k+1), x(n-k)] still covers `level`.
    while k < n // 2:
        cumulative += math.exp(math.lgamma(n + 1) - math.lgamma(k + 1) - math.lgamma(n - k + 1)
                               - n * math.log(2.0))
        if cumulative > tail:
            break
        k += 1
    return (k, n + 1 - k) if k >= 1 else None


def median_interval(samples: Sequence[float], level: float = LEVEL
                    ) -> tuple[float, float] | None:
    """(low, high) seconds holding the median with probability >= `level`; None if too few."""
    ranks = median_ranks(len(samples), level)
    if ranks is None:
        return None
    ordered = sorted(float(s) for s in samples)
    return ordered[ranks[0] - 1], ordered[ranks[1] - 1]


def relative_halfwidth(median: float | None, low: float | None, high: float | None
                       ) -> float | None:
    """The interval's larger distance from the median as a share of it (0.031 = ±3.1 %)."""
    if median is None or low is None or high is None or not median > 0:
        return None
    return max(high - median, median - low) / median
