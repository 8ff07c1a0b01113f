"""Paired A/B statistics for `rnnbench ab`: per-case ratio, interval, test, verdicts (no TF).

Method. Each case is measured in K pairs of neighbouring blocks (ABBA order), spread over G
generations of worker processes (a fresh A and B worker per generation); the block statistic is
the median of its rounds. Per pair k, d_k = log(median B_k / median A_k). Neighbouring blocks
share the machine's state, so drift cancels in d_k. What pairs cannot cancel is the process:
one worker's layout can make one case a few percent slower for its whole life. So:

- ratio = exp(mean d). Its variance is se^2 = s_w^2/K + tau^2/G: s_w^2 the spread of d_k
  within a generation, tau^2 the process-to-process spread of a case's mean, estimated from the
  differences between generations and pooled over all judged cases (`process_spread`). Student
  t with Welch-Satterthwaite degrees of freedom (K-G for s_w^2, the pooled generation
  differences for tau^2), so a spread estimated from few processes widens the interval.
- One test, one interval: each direction is a one-sided t-test at alpha/m (Bonferroni over the
  m judged cases, ok on both sides), so the chance that an A/A run reports any regression is at
  most alpha. The interval shown is exactly that test's: its ends are the one-sided
  (1 - alpha/m) bounds, together a two-sided (1 - 2 alpha/m) interval (`ci_level`). A case is
  a `regression` only when ratio > 1+threshold **and** the lower bound is above 1;
  `improvement` when ratio < 1/(1+threshold) and the upper bound is below 1; so a significant
  verdict never shows an interval that holds 1. Otherwise `same` when the run could have
  detected a threshold-sized slowdown (mde <= threshold), else `unreliable` (with the pairs it
  would need, or a note that more generations are needed when tau alone is too large).
- mde: exp((t_{1-alpha/m} + t_{power}) * se) - 1: the smallest slowdown this run finds with
  probability `power`.
- With one generation (or fewer than 2 pairs in each of 2 generations for every case) tau
  cannot be estimated. No prior is borrowed: the process spread depends on the machine, the
  case and the build, and the only committed calibration is of one machine class. Every judged
  case is then `unreliable`, saying why and to rerun with --generations 2 or more.
"""

from __future__ import annotations

import functools
import math
import statistics
from collections.abc import Mapping, Sequence

import numpy as np

from bench.verdict import (
    AB_ORDER,
    BROKEN,
    DEFAULT_ALPHA,
    DEFAULT_THRESHOLD,
    ERROR,
    FAILING,
    IMPROVEMENT,
    REGRESSION,
    SAME,
    SKIPPED,
    UNRELIABLE,
    decide,
)

DEFAULT_POWER = 0.80
MAX_PAIRS_ADVICE = 1000
# Below this many generation contrasts (cases x (G-1)) the process spread is not pooled; the
# generation means are then the units (tests/test_ab_stats.py simulates both regimes).
MIN_POOLED_PROCESS_DF = 4
GEOMEAN_LABEL = "geometric mean"

COLUMNS = ("case", "a_median", "b_median", "ratio", "ci_low", "ci_high", "ci_level", "p",
           "p_adj", "mde", "pairs", "pairs_needed", "verdict", "note")


def block_medians(blocks: Sequence[Sequence[float]]) -> np.ndarray:
    """The median of each block's rounds (NaN for an empty block)."""
    return np.array([_median(b) for b in blocks], dtype=float)


def _median(block: Sequence[float]) -> float:
    if len(block) == 1:  # one-call blocks (the default) need no sort
        return block[0]
    return statistics.median(block) if len(block) else math.nan


def log_ratios(a_blocks: Sequence[Sequence[float]], b_blocks: Sequence[Sequence[float]]
               ) -> np.ndarray:
    """d_k = log(median B_k / median A_k) over the complete pairs with positive finite medians."""
    return indexed_log_ratios(a_blocks, b_blocks)[0]


def indexed_log_ratios(a_blocks: Sequence[Sequence[float]], b_blocks: Sequence[Sequence[float]]
                       ) -> tuple[np.ndarray, np.ndarray]:
    """(d_k, k) for the complete pairs with positive finite medians (k = the pass index)."""
    k = min(len(a_blocks), len(b_blocks))
    a, b = block_medians(a_blocks[:k]), block_medians(b_blocks[:k])
    good = np.isfinite(a) & np.isfinite(b) & (a > 0) & (b > 0)
    return np.log(b[good]) - np.log(a[good]), np.nonzero(good)[0]


def process_spread(ds: Sequence[np.ndarray], groups: Sequence[np.ndarray]
                   ) -> tuple[float, int, float]:
    """(tau^2, its degrees of freedom, inflation), pooled over the cases.

    tau^2: how much a case's mean log ratio moves from one worker generation to the next beyond
    what its pairs explain. inflation: how many times more the generation means move than the
    pairs explain (pooled F ratio, between / within); a floor for a case's variance that needs
    no subtraction, so it cannot come out too small the way a clamped tau^2 does.
    (nan, 0, nan) when no case has 2 or more generations of 2 or more pairs (not measurable).
    """
    terms, between, within, dof = [], [], [], 0
    for d, g in zip(ds, groups, strict=True):
        parts = [d[g == label] for label in np.unique(g)]
        if len(parts) < 2 or any(x.size < 2 for x in parts):
            continue
        means = [float(x.mean()) for x in parts]
        noise = float(np.mean([float(x.var(ddof=1)) / x.size for x in parts]))
        spread = float(np.var(means, ddof=1))
        if math.isfinite(spread - noise):
            terms.append(spread - noise)
            between.append(spread)
            within.append(noise)
            dof += len(parts) - 1
    if not terms:
        return math.nan, 0, math.nan
    inflation = float(np.mean(between)) / float(np.mean(within)) if np.mean(within) > 0 \
        else math.nan
    return max(0.0, float(np.mean(terms))), dof, inflation


def process_variance(ds: Sequence[np.ndarray], groups: Sequence[np.ndarray]) -> float:
    """tau^2 of `process_spread` (nan when it cannot be measured)."""
    return process_spread(ds, groups)[0]


# scipy.special's Student t (stdtr = CDF, stdtrit = quantile) are ufuncs: much faster per call
# than scipy.stats.t, which matters in the simulated-rate tests.
@functools.lru_cache(maxsize=256)
def _t(q: float, df: int) -> float:
    from scipy.special import stdtrit

    return float(stdtrit(df, q))


@functools.lru_cache(maxsize=64)
def _t_sums(level: float, power: float, cap: int, generations: int) -> np.ndarray:
    """t_{1-level,K-G} + t_{power,K-G} for K = 2..cap (index K-2), df at least 1."""
    from scipy.special import stdtrit

    df = np.maximum(np.arange(2, cap + 1) - generations, 1)
    return stdtrit(df, 1.0 - level) + stdtrit(df, power)


def pairs_needed(sd: float, *, threshold: float, alpha: float, m: int,
                 power: float = DEFAULT_POWER, cap: int = MAX_PAIRS_ADVICE,
                 tau2: float = 0.0, generations: int = 1) -> int | None:
    """Smallest K with (t_{1-alpha/m} + t_{power}) * sqrt(sd^2/K + tau2/G) <= log(1+threshold).

    Returns `cap` when even `cap` pairs are not enough (or the process spread tau2 alone is too
    large for G generations), None when sd is unknown.
    """
    if not math.isfinite(sd) or sd < 0 or not math.isfinite(tau2):
        return None
    k = np.arange(2, cap + 1)
    se = np.sqrt(sd * sd / k + tau2 / max(generations, 1))
    ok = np.nonzero(_t_sums(alpha / max(m, 1), power, cap, generations) * se
                    <= math.log1p(threshold))[0]
    return int(ok[0]) + 2 if ok.size else cap


def paired_test(d: Sequence[float], *, alpha: float = DEFAULT_ALPHA, m: int = 1,
                power: float = DEFAULT_POWER, groups: Sequence[int] | None = None,
                tau2: float = 0.0, tau_df: int | None = None,
                inflation: float | None = None) -> dict:
    """Estimate, interval, one-sided p-values and mde of the log ratios `d` (never raises or
    warns). The interval's ends are one-sided (1 - alpha/m) bounds: the test of each direction
    at alpha/m rejects exactly when its bound excludes 1 (`slower`, `faster`).

    `groups` labels each d_k with its worker generation: the spread is then measured within
    generations and `tau2 / G` (the process-to-process variance, estimated with `tau_df`
    degrees of freedom; None: known) is added to the mean's variance.
    """
    from scipy.special import stdtr

    d = np.asarray(d, dtype=float)
    g = np.zeros(d.size, dtype=int) if groups is None else np.asarray(groups)
    keep = np.isfinite(d)
    d, g = d[keep], g[keep]
    k = d.size
    level = alpha / max(m, 1)
    out = {"pairs": k, "ratio": math.nan, "ci_low": math.nan, "ci_high": math.nan,
           "ci_level": 1.0 - 2.0 * level, "p_slower": 1.0, "p_faster": 1.0, "sd": math.nan,
           "mde": math.inf, "df": math.nan, "slower": False, "faster": False,
           "by_generation": False, "generations": int(np.unique(g).size)}
    if k == 0:
        return out
    mean = float(d.mean())
    out["ratio"] = math.exp(mean)
    gens = out["generations"]
    if k < 2 or k - gens < 1:
        return out
    within = sum(float(((d[g == label] - d[g == label].mean()) ** 2).sum())
                 for label in np.unique(g))
    sd = math.sqrt(within / (k - gens))
    if not math.isfinite(sd) or not math.isfinite(tau2):
        return out
    if tau_df is not None and tau_df < MIN_POOLED_PROCESS_DF:
        if gens < 2:
            return out
        # Too few generation contrasts to pool a process spread: the generation means are the
        # units (exact for any spread, G-1 degrees of freedom).
        means = np.array([d[g == label].mean() for label in np.unique(g)])
        df, se = float(gens - 1), float(means.std(ddof=1)) / math.sqrt(gens)
        out["by_generation"] = True
    else:
        df = satterthwaite(sd * sd / k, k - gens, max(tau2, 0.0) / gens, tau_df)
        se = math.sqrt(sd * sd / k + max(tau2, 0.0) / gens)
        floor = sd / math.sqrt(k) * math.sqrt(inflation) if inflation and tau_df else 0.0
        if math.isfinite(floor) and floor > se:
            # The generation means moved more than tau^2 says (it came out too small): scale
            # this case's own pair variance by the pooled between/within ratio instead.
            df, se = float(tau_df), floor
    out.update(sd=sd, df=df)
    half = _t(1.0 - level, df) * se
    out["ci_low"], out["ci_high"] = math.exp(mean - half), math.exp(mean + half)
    out["slower"], out["faster"] = out["ci_low"] > 1.0, out["ci_high"] < 1.0
    out["mde"] = math.expm1((_t(1.0 - level, df) + _t(power, df)) * se)
    if se == 0 or abs(mean) > 1e12 * se:  # every pair agrees exactly: the sign decides
        out["p_slower"] = 0.0 if mean > 0 else 1.0
        out["p_faster"] = 0.0 if mean < 0 else 1.0
    else:
        tstat = mean / se
        out["p_slower"] = float(stdtr(df, -tstat))
        out["p_faster"] = float(stdtr(df, tstat))
    return out


def satterthwaite(v_within: float, df_within: int, v_process: float,
                  df_process: int | None) -> float:
    """Welch-Satterthwaite degrees of freedom of v_within + v_process (df_process None: the
    process variance is known, or zero)."""
    if not df_process or v_process <= 0:
        return float(df_within)
    total = v_within + v_process
    denom = v_within ** 2 / df_within + v_process ** 2 / df_process
    return float(min(df_within, max(1.0, total * total / denom))) if denom > 0 else \
        float(df_within)


def _row(case: str, **values) -> dict:
    row = dict.fromkeys(COLUMNS)
    row.update(case=case, note="")
    row.update(values)
    return row


def _median_all(blocks: Sequence[Sequence[float]]) -> float:
    flat = [x for b in blocks for x in b]
    return float(np.median(flat)) if flat else math.nan


def verdict_frame(cases: Mapping[str, Mapping], *, threshold: float = DEFAULT_THRESHOLD,
                  alpha: float = DEFAULT_ALPHA, power: float = DEFAULT_POWER,
                  geomean: bool = True, generations: Sequence[int] | None = None):
    """The verdict table, attention first, from per-case inputs.

    `cases[id]` holds `a_status`/`b_status` ("ok", "skipped", "error"), optional `a_reason`/
    `b_reason`, and `a`/`b`: raw rounds per block (list of lists). Statuses other than ok on
    both sides give: error on B only -> broken; on A only -> unreliable (not judged); on both ->
    error; skipped -> skipped. `generations[k]` is the worker generation of pass k (None: one).
    The process spread (sqrt of tau^2) is returned in `frame.attrs["process_sd"]`.
    """
    import pandas as pd

    judged = judged_ids(cases)
    m = len(judged)
    pairs = {cid: indexed_log_ratios(cases[cid].get("a") or [], cases[cid].get("b") or [])
             for cid in judged}
    if generations is not None:  # a pair of a pass cut short has no generation: not used
        labels = np.asarray(generations, dtype=int)
        pairs = {cid: (d[idx < labels.size], idx[idx < labels.size])
                 for cid, (d, idx) in pairs.items()}
        groups = {cid: labels[idx] for cid, (_, idx) in pairs.items()}
    else:
        groups = {cid: np.zeros(idx.size, dtype=int) for cid, (_, idx) in pairs.items()}
    tau2, tau_df, inflation = process_spread([pairs[c][0] for c in judged],
                                             [groups[c] for c in judged])
    known = math.isfinite(tau2)
    tests = {cid: paired_test(pairs[cid][0], alpha=alpha, m=m, power=power, groups=groups[cid],
                              tau2=tau2 if known else 0.0, tau_df=tau_df,
                              inflation=inflation if known else None) for cid in judged}
    rows = []
    for cid, c in cases.items():
        a_med, b_med = _median_all(c.get("a") or []), _median_all(c.get("b") or [])
        if cid not in judged:
            rows.append(_unjudged_row(cid, c, a_med, b_med))
            continue
        res = tests[cid]
        slower = res["ratio"] >= 1.0 if math.isfinite(res["ratio"]) else True
        p = res["p_slower"] if slower else res["p_faster"]
        row = _row(cid, a_median=a_med, b_median=b_med, ratio=res["ratio"], pairs=res["pairs"])
        if not known:  # nothing rests on a spread that was not measured
            row.update(verdict=UNRELIABLE, note=UNMEASURED_PROCESS_SPREAD)
            rows.append(row)
            continue
        needed = pairs_needed(res["sd"], threshold=threshold, alpha=alpha, m=m, power=power,
                              tau2=tau2, generations=res["generations"])
        verdict, note = _verdict(res, threshold, needed)
        row.update(ci_low=res["ci_low"], ci_high=res["ci_high"], ci_level=res["ci_level"], p=p,
                   p_adj=min(1.0, p * max(m, 1)), mde=res["mde"], pairs_needed=needed,
                   verdict=verdict, note=note)
        rows.append(row)
    sort_attention_first(rows)
    if geomean and judged:
        row = _geomean_row(cases, judged, alpha)
        if not known:  # its interval would rest on the unmeasured process spread as well
            row.update(ci_low=None, ci_high=None, ci_level=None)
        rows.append(row)
    frame = pd.DataFrame(rows, columns=list(COLUMNS))
    frame.attrs["process_sd"] = math.sqrt(tau2) if known else None
    frame.attrs["test"] = {"method": "bonferroni", "alpha": alpha, "judged": m}
    frame["pairs"] = frame["pairs"].astype("Int64")
    frame["pairs_needed"] = frame["pairs_needed"].astype("Int64")
    return frame


def judged_ids(cases: Mapping[str, Mapping]) -> list[str]:
    """Ids of the cases ok on both sides (the ones a verdict is computed for), in order."""
    return [cid for cid, c in cases.items()
            if c.get("a_status") == "ok" and c.get("b_status") == "ok"]


def sort_attention_first(rows: list[dict]) -> None:
    """Sort verdict rows in place: by verdict (regressions first), then largest ratio first."""
    rank = {v: i for i, v in enumerate(AB_ORDER)}
    rows.sort(key=lambda r: (rank.get(r["verdict"], len(rank)),
                             -(r["ratio"] if r["ratio"] is not None and math.isfinite(r["ratio"])
                               else -math.inf)))


UNMEASURED_PROCESS_SPREAD = (
    "not judged: the process-to-process spread was not measured (one worker generation, or "
    "under 2 pairs per generation); rerun with --generations 2 or more")


def _verdict(res: dict, threshold: float, needed: int | None) -> tuple[str, str]:
    """The verdict of a judged case: significance is the shown interval excluding 1."""
    ratio = res["ratio"]
    if res["pairs"] < 2:
        return UNRELIABLE, f"only {res['pairs']} complete pair(s); need at least 2"
    verdict = decide(ratio, above_one=res["slower"], below_one=res["faster"],
                     detectable=res["mde"], threshold=threshold)
    if verdict == REGRESSION:
        return verdict, f"{ratio - 1:.0%} slower"
    if verdict == IMPROVEMENT:
        return verdict, f"{1 - ratio:.0%} faster"
    if verdict == SAME:
        return verdict, ""
    if res["by_generation"]:
        return UNRELIABLE, (f"could only detect {res['mde']:.0%} (> {threshold:.0%}): with "
                              f"{res['generations']} worker generations and this few cases the "
                              "process spread is judged from the generation means alone; use "
                              "more --generations")
    more = f"needs about {needed} pairs" if needed is not None else "spread unknown"
    if needed is not None and needed >= MAX_PAIRS_ADVICE:
        more = f"needs over {MAX_PAIRS_ADVICE} pairs or more worker generations"
    return UNRELIABLE, f"could only detect {res['mde']:.0%} (> {threshold:.0%}); {more}"


def _unjudged_row(cid: str, c: Mapping, a_med: float, b_med: float) -> dict:
    a, b = c.get("a_status"), c.get("b_status")
    a_why, b_why = c.get("a_reason") or "", c.get("b_reason") or ""
    if b == "error" and a != "error":
        verdict, note = BROKEN, f"B: {b_why}"
    elif a == "error" and b != "error":
        verdict, note = UNRELIABLE, f"not judged: A errored ({a_why})"
    elif a == "error":
        verdict, note = ERROR, f"both sides: {b_why or a_why}"
    else:
        verdict, note = SKIPPED, b_why or a_why
    return _row(cid, a_median=a_med, b_median=b_med, verdict=verdict, note=note)


def _geomean_row(cases: Mapping[str, Mapping], judged: Sequence[str], alpha: float) -> dict:
    """Geometric mean of the judged ratios; a t interval on the per-pass mean when complete."""
    ds = [log_ratios(cases[c].get("a") or [], cases[c].get("b") or []) for c in judged]
    means = [float(d.mean()) for d in ds if d.size]
    if not means:
        return _row(GEOMEAN_LABEL, verdict="-", note="no complete pair")
    row = _row(GEOMEAN_LABEL, ratio=math.exp(float(np.mean(means))), verdict="-",
               note=f"over {len(means)} judged case(s)")
    k = min(d.size for d in ds)
    if k >= 2 and all(d.size == k for d in ds):
        per_pass = np.mean(np.vstack(ds), axis=0)
        res = paired_test(per_pass, alpha=alpha)
        row.update(ci_low=res["ci_low"], ci_high=res["ci_high"], ci_level=res["ci_level"],
                   pairs=k)
    return row


def summary_counts(frame) -> dict[str, int]:
    """How many cases got each verdict (the geometric-mean row excluded)."""
    cases = frame[frame["case"] != GEOMEAN_LABEL]
    return {v: int((cases["verdict"] == v).sum()) for v in AB_ORDER}


def failed(frame) -> bool:
    """True when any case is a regression or broken on B only (the run must exit 1)."""
    return bool(frame["verdict"].isin(FAILING).any())
