"""Adaptive A/B passes: when a case is settled, and the verdicts of a run that stopped cases
early (no TF).

Looks. The verdicts are computed every `look_every` passes and after the last one (`--blocks`,
the most pairs a case gets). At a look, each case still measured stops when its verdict is
settled:

- `same`: tested as at the end (at the final look's level), its interval lies inside
  (1/(1+threshold), 1+threshold) and it can already detect a `target_mde` slowdown. A stop for
  `same` reports no change, so it spends no alpha (a non-binding futility stop: it can only take
  chances to call a change away).
- `regression` / `improvement`: only at one of `rejection_looks` looks, spread evenly over the
  pairs, each testing at its own share of alpha: a Bonferroni split over the looks, weighted by
  the Lan-DeMets O'Brien-Fleming spending function (`spending_shares`): early looks get almost
  nothing (only a large change stops there) and the final look nearly all of it. The union bound
  over looks and over cases keeps the chance that an A/A run calls any change at most alpha,
  whatever the correlation between looks; Bonferroni over the m judged cases stays inside each
  look (bench.analysis.ab_stats).

Cases not settled keep their passes, up to `--blocks` pairs each; the run ends when every case is
settled or has had its pairs. The decisions are a function of the stored blocks and the rule, so
`replay` recomputes exactly what the coordinator decided live (and re-analyses stored runs under
other rules). Each verdict row then states its `stop`: the reason and the pairs it used.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from bench.analysis import ab_stats
from bench.verdict import DEFAULT_ALPHA, DEFAULT_THRESHOLD, IMPROVEMENT, REGRESSION, SAME

DEFAULT_TARGET_MDE = 0.07  # a case stops as `same` once it could detect a 7 % slowdown
DEFAULT_LOOK_EVERY = 20    # passes between two looks
DEFAULT_REJECTION_LOOKS = 3
# Why a case's measurement ended (the `stop` column).
STOP_SAME, STOP_CHANGE, STOP_MAX, STOP_ENDED = "settled same", "settled", "all pairs", "run ended"


@dataclass(frozen=True)
class StopRule:
    """When to look and what settles a case; `target_mde` None: every case gets every pair (one
    look, at the end: the fixed design)."""

    max_pairs: int
    target_mde: float | None = DEFAULT_TARGET_MDE
    look_every: int = DEFAULT_LOOK_EVERY
    rejection_looks: int = DEFAULT_REJECTION_LOOKS

    @property
    def adaptive(self) -> bool:
        """True when cases may stop before `max_pairs`."""
        return self.target_mde is not None

    def looks(self) -> list[int]:
        """The passes after which the verdicts are computed, in order (the last is max_pairs)."""
        if not self.adaptive:
            return [self.max_pairs]
        step = max(1, self.look_every)
        return [*range(step, self.max_pairs, step), self.max_pairs]

    def rejection_passes(self) -> list[int]:
        """The looks at which a change may be called: the first look at or after each j/R of
        the pairs (always including the last)."""
        looks = self.looks()
        if not self.adaptive:
            return looks
        marks = [self.max_pairs * j / self.rejection_looks
                 for j in range(1, self.rejection_looks + 1)]
        return sorted({next(k for k in looks if k >= mark - 1e-9) for mark in marks})

    def to_dict(self) -> dict:
        """The settings stored in ab.json."""
        return {"target_mde": self.target_mde, "look_every": self.look_every,
                "rejection_looks": self.rejection_looks}


def rule_of(settings, passes_done: int = 0) -> StopRule:
    """The rule a stored run used, from its `Settings` (bench.ab_rows); runs before v3 were
    fixed: every case got every pair."""
    max_pairs = settings.blocks or passes_done or 1
    return StopRule(max_pairs, target_mde=settings.target_mde,
                    look_every=settings.look_every or DEFAULT_LOOK_EVERY,
                    rejection_looks=settings.rejection_looks or DEFAULT_REJECTION_LOOKS)


def spending_shares(fractions: Sequence[float], level: float) -> list[float]:
    """Shares (summing to 1) of a one-sided `level` for looks at information `fractions`
    (increasing, the last 1): increments of the O'Brien-Fleming-type spending function
    alpha(t) = 2 - 2 Phi(z_{1-level/2} / sqrt(t)), which is `level` at t = 1."""
    from scipy.special import ndtr, ndtri

    if not fractions:
        return []
    z = float(ndtri(1.0 - level / 2.0))
    spent = [2.0 - 2.0 * float(ndtr(z / math.sqrt(min(max(t, 1e-12), 1.0))))
             for t in fractions]
    spent[-1] = level
    shares, before = [], 0.0
    for value in spent:
        shares.append(max(0.0, value - before) / level)
        before = max(before, value)
    return shares


@dataclass
class Stop:
    """Where and why a case's measurement ended, and its verdict row then."""

    passes: int
    reason: str
    row: dict = field(repr=False)


class Sequential:
    """The stop decisions of one run, look by look (fed live by the coordinator, or by
    `replay` from stored blocks)."""

    def __init__(self, rule: StopRule, *, threshold: float = DEFAULT_THRESHOLD,
                 alpha: float = DEFAULT_ALPHA, power: float = ab_stats.DEFAULT_POWER):
        self.rule, self.threshold, self.alpha, self.power = rule, threshold, alpha, power
        self.stops: dict[str, Stop] = {}
        self._rejection = set(rule.rejection_passes())
        self._shares: dict[int, float] | None = None

    def shares(self, m: int) -> dict[int, float]:
        """Alpha share of each rejection look for m judged cases (fixed once computed)."""
        if self._shares is None:
            passes = sorted(self._rejection)
            level = self.alpha / max(m, 1)
            fractions = [k / self.rule.max_pairs for k in passes]
            self._shares = dict(zip(passes, spending_shares(fractions, level), strict=True))
        return self._shares

    def _frame(self, cases: Mapping[str, Mapping], generations: Sequence[int], share: float):
        return ab_stats.verdict_frame(cases, threshold=self.threshold,
                                      alpha=self.alpha * share, power=self.power,
                                      geomean=False, generations=generations)

    def settled_same(self, row: Mapping) -> bool:
        """`same` whose interval lies inside +-threshold and that detects a target-size change."""
        target = self.rule.target_mde
        low, high, mde = row.get("ci_low"), row.get("ci_high"), row.get("mde")
        if row.get("verdict") != SAME or target is None or None in (low, high, mde):
            return False
        bound = 1.0 + self.threshold
        return 1.0 / bound < low and high < bound and mde <= min(target, self.threshold)

    def look(self, cases: Mapping[str, Mapping], generations: Sequence[int], passes: int
             ) -> list[str]:
        """Decide at the look after `passes` passes (`cases`: the blocks measured so far);
        returns the ids settled now. A case is only judged while ok on both sides."""
        judged = ab_stats.judged_ids(cases)
        open_ = [cid for cid in judged if cid not in self.stops]
        if not open_:
            return []
        shares = self.shares(len(judged))
        final = self._frame(cases, generations, shares[self.rule.max_pairs])
        rows = {r["case"]: r for r in final.to_dict("records")}
        changed: dict[str, dict] = {}
        if passes in shares and passes < self.rule.max_pairs:
            early = self._frame(cases, generations, shares[passes])
            changed = {r["case"]: r for r in early.to_dict("records")
                       if r["verdict"] in (REGRESSION, IMPROVEMENT)}
        settled = []
        for cid in open_:
            if passes >= self.rule.max_pairs:
                self.stops[cid] = Stop(passes, STOP_MAX, rows[cid])
            elif cid in changed:
                self.stops[cid] = Stop(passes, f"{STOP_CHANGE} {changed[cid]['verdict']}",
                                       changed[cid])
            elif self.settled_same(rows[cid]):
                self.stops[cid] = Stop(passes, STOP_SAME, rows[cid])
            else:
                continue
            settled.append(cid)
        return settled

    def open_cases(self, ids: Sequence[str]) -> list[str]:
        """The ids (in order) not settled yet."""
        return [cid for cid in ids if cid not in self.stops]


def truncate(cases: Mapping[str, Mapping], passes: int) -> dict[str, dict]:
    """The per-case input as it was after `passes` passes."""
    return {cid: {**c, "a": list(c.get("a") or [])[:passes], "b": list(c.get("b") or [])[:passes]}
            for cid, c in cases.items()}


def replay(cases: Mapping[str, Mapping], generations: Sequence[int], rule: StopRule, *,
           threshold: float = DEFAULT_THRESHOLD, alpha: float = DEFAULT_ALPHA,
           power: float = ab_stats.DEFAULT_POWER) -> Sequential:
    """Every look the stored passes reached, in order: the decisions the run made."""
    seq = Sequential(rule, threshold=threshold, alpha=alpha, power=power)
    done = len(generations)
    for passes in rule.looks():
        if passes > done:
            break
        seq.look(truncate(cases, passes), list(generations[:passes]), passes)
    return seq


def sequential_frame(cases: Mapping[str, Mapping], generations: Sequence[int] | None,
                     rule: StopRule, *, threshold: float = DEFAULT_THRESHOLD,
                     alpha: float = DEFAULT_ALPHA, power: float = ab_stats.DEFAULT_POWER,
                     geomean: bool = True):
    """The verdict table of a run under `rule`: a settled case's row is its verdict at the look
    that settled it; a case still open when the run ended (cut short, or every other case
    settled) is judged on all its pairs at the final look's level. Adds the `stop` column."""
    import pandas as pd

    gens = list(generations) if generations is not None else \
        [0] * max((len(c.get("a") or []) for c in cases.values()), default=0)
    seq = replay(cases, gens, rule, threshold=threshold, alpha=alpha, power=power)
    judged = ab_stats.judged_ids(cases)
    share = seq.shares(len(judged))[rule.max_pairs]
    end = ab_stats.verdict_frame(cases, threshold=threshold, alpha=alpha * share, power=power,
                                 geomean=geomean, generations=gens)
    rows = [_stopped_row(row, seq.stops.get(row["case"]), row["case"] in judged)
            for row in end.to_dict("records")]
    body = [r for r in rows if r["case"] != ab_stats.GEOMEAN_LABEL]
    ab_stats.sort_attention_first(body)
    frame = pd.DataFrame(body + [r for r in rows if r["case"] == ab_stats.GEOMEAN_LABEL],
                         columns=[*ab_stats.COLUMNS, "stop"])
    frame.attrs.update(end.attrs)
    frame.attrs["test"] = {**end.attrs["test"], "alpha": alpha,
                           "method": "bonferroni-looks" if rule.adaptive
                           else "bonferroni", "final_share": share}
    for column in ("pairs", "pairs_needed"):
        frame[column] = frame[column].astype("Int64")
    return frame


def _stopped_row(end_row: dict, stop: Stop | None, judged: bool) -> dict:
    """A case's row: its verdict at the look that settled it, else at the end of the run."""
    if stop is not None:
        return {**stop.row, "stop": f"{stop.reason} after {stop.row['pairs']} pairs"}
    if judged:
        return {**end_row, "stop": f"{STOP_ENDED} after {end_row['pairs']} pairs"}
    return {**end_row, "stop": None}


def stop_counts(frame) -> dict[str, int]:
    """How many judged cases stopped for each reason (`settled same`, `all pairs`, ...)."""
    out: dict[str, int] = {}
    for text in frame["stop"].dropna():
        key = text.split(" after ")[0]
        out[key] = out.get(key, 0) + 1
    return out
