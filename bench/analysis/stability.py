"""The stability verdict of one case's rounds: is its median known well enough? (no TF)

The tables show medians, so the verdict asks what matters for a median, not whether the rounds
scatter (one slow round out of 50 moves a standard deviation, not a median):

- `wide`: the 95 % interval of the median (bench.intervals, order statistics) reaches more
  than MAX_INTERVAL_SHARE of the median away from it;
- `rounds`: fewer rounds than the policy's minimum, or too few for any 95 % interval (< 6);
- `drift`: the first and last thirds of the rounds disagree: their medians differ by more than
  DRIFT_SHARE and their own 95 % intervals do not overlap (warm-up, throttling, load arriving);
- `bimodal`: the sorted rounds split at a gap wider than BIMODAL_GAP of the median with at
  least BIMODAL_MIN_SHARE of the rounds on each side (the speed switched between two levels);
- `clock`: the fastest round lasts fewer than MIN_TICKS ticks of the clock.

Each finding is a warning `finding; advice`; report and terminal print each advice once.

Drift in a third of a run's timed cases or more is the machine's, not the cases': report and
terminal then say so once (`machine_drift`), with the typical size, instead of the per-case
advice to warm up longer.
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from bench.cases import MIN_ROUNDS
from bench.intervals import median_interval, relative_halfwidth

MAX_INTERVAL_SHARE = 0.05
DRIFT_SHARE = 0.10
BIMODAL_GAP = 0.05
BIMODAL_MIN_SHARE = 0.20
BIMODAL_MIN_ROUNDS = 3
MIN_TICKS = 1000

ADVICE_NOISE = ("close other programs, pin the thread count (--threads 1 for small cases) or "
                "raise the rounds (--rounds / --max-time)")
ADVICE_ROUNDS = "raise --rounds or --max-time"
ADVICE_DRIFT = ("the machine's speed changed during the case (warm-up, throttling, arriving "
                "load): raise --warmup-time or rerun on an idle machine")
ADVICE_BIMODAL = ("the rounds ran at two speeds (another process, frequency scaling): rerun on "
                  "an idle machine and compare builds with `rnnbench ab`, not single runs")
ADVICE_CLOCK = "time more work per call (larger batch or sequence)"
# Drift in at least this share of a run's timed cases (and MACHINE_DRIFT_MIN of them) is the
# machine's speed wandering under every case, not something a case does.
MACHINE_DRIFT_SHARE = 1 / 3
MACHINE_DRIFT_MIN = 3

@dataclass(frozen=True)
class Finding:
    """One stability problem: its kind, its size (a share, for ranking) and the warning text."""

    kind: str
    size: float
    text: str
    advice: str

    @property
    def warning(self) -> str:
        """The stored form: `finding; advice`."""
        return f"{self.text}; {self.advice}"


def assess(samples: Sequence[float], *, resolution: float = 1e-9,
           min_rounds: int = MIN_ROUNDS) -> list[Finding]:
    """Every stability problem of a case's rounds (empty when its median is well known)."""
    if not samples:
        return []
    n = len(samples)
    median = statistics.median(samples)
    found = []
    interval = median_interval(samples)
    if n < min_rounds or interval is None:
        found.append(Finding("rounds", math.inf, f"only {n} rounds (< {max(min_rounds, 6)}): "
                             "too few for a 95 % interval of the median", ADVICE_ROUNDS))
    half = relative_halfwidth(median, *interval) if interval else None
    if half is not None and half > MAX_INTERVAL_SHARE:
        found.append(Finding("wide", half, f"median known to ±{half:.1%} only (95 % interval "
                             f"wider than ±{MAX_INTERVAL_SHARE:.0%})", ADVICE_NOISE))
    drift = drift_share(samples)
    if drift is not None:
        word = "slower" if drift > 0 else "faster"
        found.append(Finding("drift", abs(drift), f"drifting: the last third of the rounds is "
                             f"{abs(drift):.0%} {word} than the first", ADVICE_DRIFT))
    split = bimodal_split(samples)
    if split is not None:
        upper, gap = split
        found.append(Finding("bimodal", gap, f"bimodal: {upper} of {n} rounds form a slower "
                             f"group, {gap:.0%} of the median above the rest", ADVICE_BIMODAL))
    if resolution > 0 and min(samples) < MIN_TICKS * resolution:
        found.append(Finding("clock", math.inf, f"the timed call ({min(samples):.3g} s) is under "
                             f"{MIN_TICKS} ticks of the clock ({resolution:.3g} s)", ADVICE_CLOCK))
    return found


# The start of each finding's text, naming its kind (for counts in the terminal summary).
_PREFIXES = (("median known", "wide"), ("only ", "rounds"), ("drifting", "drift"),
             ("bimodal", "bimodal"), ("the timed call", "clock"))
KIND_NAMES = {"wide": "wide interval", "rounds": "too few rounds", "drift": "drifting",
              "bimodal": "bimodal", "clock": "under the clock resolution", "other": "other"}


def split_warning(warning: str) -> tuple[str, str]:
    """A stored warning as (finding, advice); advice is '' when it has none."""
    finding, sep, advice = warning.rpartition("; ")
    return (finding, advice) if sep else (warning, "")


def findings_text(warnings: Iterable[str]) -> str:
    """One case's stored warnings as one line of findings (`a | b`), their advice left off."""
    return " | ".join(split_warning(w)[0] for w in warnings)


def distinct_advice(warnings: Iterable[str]) -> list[str]:
    """Each distinct piece of advice of the stored warnings, once, in order of first use."""
    return [tip for tip in dict.fromkeys(split_warning(w)[1] for w in warnings) if tip]


def kind_of(warning: str) -> str:
    """The kind of a stored warning (`wide`, `rounds`, `drift`, `bimodal`, `clock`, `other`)."""
    return next((kind for prefix, kind in _PREFIXES if warning.startswith(prefix)), "other")


def warnings(samples: Sequence[float], *, resolution: float = 1e-9,
             min_rounds: int = MIN_ROUNDS) -> list[str]:
    """The stored warnings (`finding; advice`) of a case's rounds."""
    return [f.warning for f in assess(samples, resolution=resolution, min_rounds=min_rounds)]


def third_change(samples: Sequence[float]) -> float | None:
    """Last third's median over the first third's, minus 1 (None below 3 rounds)."""
    third = len(samples) // 3
    first = statistics.median(samples[:third]) if third else 0.0
    return statistics.median(samples[-third:]) / first - 1.0 if first > 0 else None


def drift_share(samples: Sequence[float]) -> float | None:
    """`third_change` when the first and last thirds disagree; else None.

    They disagree when the change is beyond ±DRIFT_SHARE and the two thirds' 95 % intervals of
    the median are disjoint; with fewer than 6 rounds per third there is no verdict.
    """
    change = third_change(samples)
    if change is None:
        return None
    third = len(samples) // 3
    a, b = median_interval(samples[:third]), median_interval(samples[-third:])
    if a is None or b is None:
        return None
    disjoint = a[1] < b[0] or b[1] < a[0]
    return change if disjoint and abs(change) > DRIFT_SHARE else None


@dataclass(frozen=True)
class MachineDrift:
    """Drift in many of a run's cases at once: the machine's speed wandered under all of them."""

    drifting: int
    timed: int
    typical: float  # median unsigned change from first to last third, over the timed cases

    @property
    def text(self) -> str:
        """The run-level finding and what to do, in one line."""
        return (f"machine: {self.drifting} of {self.timed} timed cases drifted within their "
                f"rounds (first and last thirds typically {self.typical:.0%} apart): this "
                "machine's speed wandered during the run, so one run's medians are good to "
                f"about ±{self.typical:.0%}, not to their ±95 % intervals; compare builds with "
                "`rnnbench ab`, which interleaves them")


def machine_drift(cases: Iterable[tuple[Sequence[str], Sequence[float]]]) -> MachineDrift | None:
    """The run-level drift finding from each timed case's (warnings, rounds), or None."""
    pairs = list(cases)
    drifting = sum(any(kind_of(w) == "drift" for w in warns) for warns, _ in pairs)
    if drifting < max(MACHINE_DRIFT_MIN, MACHINE_DRIFT_SHARE * len(pairs)):
        return None
    changes = [abs(c) for _, rounds in pairs if (c := third_change(rounds)) is not None]
    if not changes:  # warnings stored without their rounds: no size to state
        return None
    return MachineDrift(drifting, len(pairs), statistics.median(changes))


def run_notes(cases: Iterable[tuple[Sequence[str], Sequence[float]]]
              ) -> tuple[MachineDrift | None, list[str]]:
    """A run's stability notes from each timed case's (warnings, rounds): the run-level drift
    finding (or None) and each advice once, the per-case drift advice left to that finding."""
    pairs = list(cases)
    machine = machine_drift(pairs)
    kept = (w for warns, _ in pairs for w in warns if machine is None or kind_of(w) != "drift")
    return machine, distinct_advice(kept)


def bimodal_split(samples: Sequence[float]) -> tuple[int, float] | None:
    """(rounds above the gap, gap as a share of the median) of the widest qualifying gap.

    A gap qualifies when it is wider than BIMODAL_GAP of the median and each side holds at
    least BIMODAL_MIN_SHARE of the rounds (and BIMODAL_MIN_ROUNDS): a few slow rounds are a
    tail, which the median ignores, not a second mode.
    """
    ordered = sorted(samples)
    n = len(ordered)
    least = max(BIMODAL_MIN_ROUNDS, math.ceil(BIMODAL_MIN_SHARE * n))
    median = statistics.median(ordered)
    if n < 2 * least or not median > 0:
        return None
    best = None
    for i in range(least - 1, n - least):
        gap = (ordered[i + 1] - ordered[i]) / median
        if gap > BIMODAL_GAP and (best is None or gap > best[1]):
            best = (n - 1 - i, gap)
    return best
