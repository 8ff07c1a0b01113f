"""Paired A/B statistics for `rnnbench ab`: per-case ratio, CI, Holm, verdicts (no TF).

Method. Each case is measured in K pairs of neighbouring blocks (ABBA order), spread over G
generations of worker processes (a fresh A and B worker per generation); the block statistic is
the median of its rounds. Per pair k, d_k = log(median B_k / median A_k). Neighbouring blocks
share the machine's state, so drift cancels in d_k. What pairs cannot cancel is the process:
one worker's layout can make one case a few percent slower for its whole life. So:

- ratio = exp(mean d). Its variance is s_w^2/K + tau^2/G: s_w^2 the spread of d_k within a
  generation, tau^2 the process-to-process spread of a case's mean, estimated from the
  differences between generations and pooled over all judged cases (`process_variance`).
  Student t with K-G degrees of freedom gives the CI and one-sided p-values.
- Holm-Bonferroni over the m judged cases (ok on both sides), separately per direction, so the
  chance that an A/A run reports any regression is at most alpha.
- regression: ratio > 1+threshold and Holm-adjusted p_slower < alpha; improvement: ratio <
  1/(1+threshold) and adjusted p_faster < alpha; otherwise `same` when the run could have
  detected a threshold-sized slowdown (mde <= threshold), else `unreliable` (with the pairs it
  would need, or a note that more generations are needed when tau alone is too large).
- mde: exp((t_{1-alpha/m} + t_{power}) * se) - 1: the smallest slowdown this run finds with
  probability `power` (Bonferroni level, Holm's first step).
With one generation tau cannot be estimated and is taken as 0: the verdicts then rest on one
process per side, which the A/A measurements of this machine class showed is not enough.
"""

from __future__ import annotations

import functools
import math
import statistics
from collections.abc import Mapping, Sequence

import numpy as np

from bench.ab_rows import VERDICTS

DEFAULT_THRESHOLD = 0.10
DEFAULT_ALPHA = 0.05
DEFAULT_POWER = 0.80
MAX_PAIRS_ADVICE = 1000
GEOMEAN_LABEL = "geometric mean"

FAILING = ("broken", "regression")
COLUMNS = ("case", "a_median", "b_median", "ratio", "ci_low", "ci_high", "ci_level", "p",
           "p_adj", "mde", "pairs", "pairs_needed", "verdict", "note")


def holm(pvalues: Sequence[float]) -> np.ndarray:
    """Holm-Bonferroni adjusted p-values (same order as given; NaN treated as 1)."""
    p = np.nan_to_num(np.asarray(pvalues, dtype=float), nan=1.0)
    m = p.size
    if m == 0:
        return p
    order = np.argsort(p, kind="stable")
    stepped = np.maximum.accumulate((m - np.arange(m)) * p[order])
    adjusted = np.empty(m)
    adjusted[order] = np.minimum(stepped, 1.0)
    return adjusted


def block_medians(blocks: Sequence[Sequence[float]]) -> np.ndarray:
    """The median of each block's rounds (NaN for an empty block)."""
    return np.array([statistics.median(b) if len(b) else math.nan for b in blocks], dtype=float)


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


def process_variance(ds: Sequence[np.ndarray], groups: Sequence[np.ndarray]) -> float:
    """tau^2: how much a case's mean log ratio moves from one worker generation to the next
    beyond what its pairs explain, pooled over the cases (0 with fewer than 2 generations)."""
    terms = []
    for d, g in zip(ds, groups, strict=True):
        parts = [d[g == label] for label in np.unique(g)]
        if len(parts) < 2 or any(x.size < 2 for x in parts):
            continue
        means = [float(x.mean()) for x in parts]
        noise = [float(x.var(ddof=1)) / x.size for x in parts]
        terms.append(float(np.var(means, ddof=1)) - float(np.mean(noise)))
    finite = [v for v in terms if math.isfinite(v)]
    return max(0.0, float(np.mean(finite))) if finite else 0.0


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
                tau2: float = 0.0) -> dict:
    """Estimate, CI, one-sided p-values and mde of the log ratios `d` (never raises or warns).

    `groups` labels each d_k with its worker generation: the spread is then measured within
    generations and `tau2 / G` (the process-to-process variance) is added to the mean's.
    """
    from scipy.special import stdtr

    d = np.asarray(d, dtype=float)
    g = np.zeros(d.size, dtype=int) if groups is None else np.asarray(groups)
    keep = np.isfinite(d)
    d, g = d[keep], g[keep]
    k = d.size
    out = {"pairs": k, "ratio": math.nan, "ci_low": math.nan, "ci_high": math.nan,
           "p_slower": 1.0, "p_faster": 1.0, "sd": math.nan, "mde": math.inf,
           "generations": int(np.unique(g).size)}
    if k == 0:
        return out
    mean = float(d.mean())
    out["ratio"] = math.exp(mean)
    gens = out["generations"]
    df = k - gens
    if k < 2 or df < 1:
        return out
    within = sum(float(((d[g == label] - d[g == label].mean()) ** 2).sum())
                 for label in np.unique(g))
    sd = math.sqrt(within / df)
    if not math.isfinite(sd) or not math.isfinite(tau2):
        return out
    se = math.sqrt(sd * sd / k + max(tau2, 0.0) / gens)
    out["sd"] = sd
    half = _t(1.0 - alpha / 2, df) * se
    out["ci_low"], out["ci_high"] = math.exp(mean - half), math.exp(mean + half)
    out["ci_level"] = 1.0 - alpha
    out["mde"] = math.expm1((_t(1.0 - alpha / max(m, 1), df) + _t(power, df)) * se)
    if se == 0 or abs(mean) > 1e12 * se:  # every pair agrees exactly: the sign decides
        out["p_slower"] = 0.0 if mean > 0 else 1.0
        out["p_faster"] = 0.0 if mean < 0 else 1.0
    else:
        tstat = mean / se
        out["p_slower"] = float(stdtr(df, -tstat))
        out["p_faster"] = float(stdtr(df, tstat))
    return out


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

    judged = [cid for cid, c in cases.items()
              if c.get("a_status") == "ok" and c.get("b_status") == "ok"]
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
    tau2 = process_variance([pairs[c][0] for c in judged], [groups[c] for c in judged])
    tests = {cid: paired_test(pairs[cid][0], alpha=alpha, m=m, power=power, groups=groups[cid],
                              tau2=tau2) for cid in judged}
    adj_slow = dict(zip(judged, holm([tests[c]["p_slower"] for c in judged]), strict=True))
    adj_fast = dict(zip(judged, holm([tests[c]["p_faster"] for c in judged]), strict=True))
    rows = []
    for cid, c in cases.items():
        a_med, b_med = _median_all(c.get("a") or []), _median_all(c.get("b") or [])
        if cid not in judged:
            rows.append(_unjudged_row(cid, c, a_med, b_med))
            continue
        res = tests[cid]
        slower = res["ratio"] >= 1.0 if math.isfinite(res["ratio"]) else True
        p = res["p_slower"] if slower else res["p_faster"]
        p_adj = float(adj_slow[cid] if slower else adj_fast[cid])
        needed = pairs_needed(res["sd"], threshold=threshold, alpha=alpha, m=m, power=power,
                              tau2=tau2, generations=res["generations"])
        verdict, note = _verdict(res, adj_slow[cid], adj_fast[cid], threshold, alpha, needed)
        rows.append(_row(cid, a_median=a_med, b_median=b_med, ratio=res["ratio"],
                         ci_low=res["ci_low"], ci_high=res["ci_high"],
                         ci_level=res.get("ci_level"), p=p, p_adj=p_adj,
                         mde=res["mde"], pairs=res["pairs"], pairs_needed=needed,
                         verdict=verdict, note=note))
    rank = {v: i for i, v in enumerate(VERDICTS)}
    rows.sort(key=lambda r: (rank.get(r["verdict"], len(rank)),
                             -(r["ratio"] if r["ratio"] is not None and math.isfinite(r["ratio"])
                               else -math.inf)))
    if geomean and judged:
        rows.append(_geomean_row(cases, judged, alpha))
    frame = pd.DataFrame(rows, columns=list(COLUMNS))
    frame.attrs["process_sd"] = math.sqrt(tau2)
    frame.attrs["test"] = {"method": "holm", "alpha": alpha, "judged": m}
    frame["pairs"] = frame["pairs"].astype("Int64")
    frame["pairs_needed"] = frame["pairs_needed"].astype("Int64")
    return frame


def _verdict(res: dict, adj_slow: float, adj_fast: float, threshold: float, alpha: float,
             needed: int | None) -> tuple[str, str]:
    ratio = res["ratio"]
    if res["pairs"] < 2:
        return "unreliable", f"only {res['pairs']} complete pair(s); need at least 2"
    if ratio > 1.0 + threshold and adj_slow < alpha:
        return "regression", f"{ratio - 1:.0%} slower"
    if ratio < 1.0 / (1.0 + threshold) and adj_fast < alpha:
        return "improvement", f"{1 - ratio:.0%} faster"
    if res["mde"] <= threshold:
        return "same", ""
    more = f"needs about {needed} pairs" if needed is not None else "spread unknown"
    if needed is not None and needed >= MAX_PAIRS_ADVICE:
        more = f"needs over {MAX_PAIRS_ADVICE} pairs or more worker generations"
    return "unreliable", f"could only detect {res['mde']:.0%} (> {threshold:.0%}); {more}"


def _unjudged_row(cid: str, c: Mapping, a_med: float, b_med: float) -> dict:
    a, b = c.get("a_status"), c.get("b_status")
    a_why, b_why = c.get("a_reason") or "", c.get("b_reason") or ""
    if b == "error" and a != "error":
        verdict, note = "broken", f"B: {b_why}"
    elif a == "error" and b != "error":
        verdict, note = "unreliable", f"not judged: A errored ({a_why})"
    elif a == "error":
        verdict, note = "error", f"both sides: {b_why or a_why}"
    else:
        verdict, note = "skipped", b_why or a_why
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
        row.update(ci_low=res["ci_low"], ci_high=res["ci_high"], ci_level=res.get("ci_level"),
                   pairs=k)
    return row


def summary_counts(frame) -> dict[str, int]:
    """How many cases got each verdict (the geometric-mean row excluded)."""
    cases = frame[frame["case"] != GEOMEAN_LABEL]
    return {v: int((cases["verdict"] == v).sum()) for v in VERDICTS}


def failed(frame) -> bool:
    """True when any case is a regression or broken on B only (the run must exit 1)."""
    return bool(frame["verdict"].isin(FAILING).any())
