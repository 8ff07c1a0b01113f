"""Series as DataFrames: points in commit order, reference segments of ratio series, noise.

A point's position is its commit time when known, else its created time. A ratio series is
measured against side A's commit; when the reference moves, the series chains through a run
that measured the new reference against the old one (its ratio rescales every later point:
marker `chained`), or starts a new segment (marker `new reference`). Never a silent jump.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from bench.history.points import RELATIVE, series_key
from bench.history.store import Store

CHAINED, NEW_REFERENCE = "chained", "new reference"


@dataclass(frozen=True)
class Filters:
    """Which points a query keeps (a substring of the case id; any of the implementations,
    phases, metrics and machines named; an empty tuple keeps all)."""

    case: str | None = None
    impl: tuple[str, ...] = ()
    phase: tuple[str, ...] = ()
    metric: tuple[str, ...] = ()
    machine: tuple[str, ...] = ()  # machine ids or labels
    include_partial: bool = False

    def __post_init__(self) -> None:
        for name in ("impl", "phase", "metric", "machine"):
            if isinstance(getattr(self, name), str):  # a str would match its letters
                raise TypeError(f"Filters.{name} takes a tuple of names, not a str")


def stored_impls(store: Store) -> set[str]:
    """Every implementation the store holds points of (removed ones included)."""
    return {row[0] for row in store.execute(
        "SELECT DISTINCT impl FROM points WHERE impl IS NOT NULL")}


def points_frame(store: Store, filters: Filters = Filters()):
    """The points that match `filters`, with the machine label, in series and commit order."""
    where, params = ["1 = 1"], []
    for columns, names in ((("p.metric",), filters.metric), (("p.phase",), filters.phase),
                           (("p.impl",), filters.impl), (("p.machine", "m.label"),
                                                         filters.machine)):
        if names:
            marks = ", ".join("?" * len(names))
            where.append("(" + " OR ".join(f"{column} IN ({marks})" for column in columns) + ")")
            params += list(names) * len(columns)
    if filters.case:
        where.append("p.case_id LIKE ?")
        params.append(f"%{filters.case}%")
    if not filters.include_partial:
        where.append("p.status = 'complete'")
    frame = store.frame(
        "SELECT p.*, m.label AS machine_label FROM points p JOIN machines m "
        f"ON m.machine = p.machine WHERE {' AND '.join(where)}", params)
    return order(frame)


def order(frame):
    """Points sorted by series, then position (commit time, else created time), then run id."""
    frame = frame.copy()
    frame["position"] = frame["commit_time"].where(frame["commit_time"].notna(),
                                                   frame["created_utc"])
    return frame.sort_values(["series", "position", "created_utc", "run_id"],
                             kind="stable").reset_index(drop=True)


def normalized(frame):
    """Absolute points as time × the run's calibrated matmul peak (GFLOP the machine could do
    in that time), so machines and drifting runs compare; points without a calibration drop."""
    keep = frame[frame["peak_gflops"].notna() & ~frame["metric"].isin(RELATIVE)].copy()
    keep["value"] = keep["value"] * keep["peak_gflops"]
    for col in ("ci_low", "ci_high"):
        keep[col] = keep[col] * keep["peak_gflops"]
    keep["metric"] = keep["metric"] + "*peak"
    keep["series"] = keep["case_id"] + "|" + keep["metric"] + "|" + keep["machine"]
    return order(keep)


def segmented(frame):
    """Add `segment`, `marker` and `level` (the value on the segment's scale) to each point.

    Absolute series are one segment. A ratio series gets a new segment when its reference
    commit changes, unless a point of the old segment measured the new reference (its commit
    is the new reference): then later values are multiplied by that point's ratio and the
    segment continues, marked `chained`.
    """
    frame = frame.copy()
    frame["segment"], frame["marker"], frame["level"] = 0, "", frame["value"].astype(float)
    relative = frame[frame["metric"].isin(RELATIVE)]
    references = relative.groupby("series")["reference_sha"].nunique(dropna=False)
    moved = relative[relative["series"].isin(references[references > 1].index)]
    for _, part in moved.groupby("series", sort=False):
        segment, factor, previous = 0, 1.0, None
        seen: dict[str, float] = {}  # commit -> last ratio against the current reference
        for i, row in part.iterrows():
            ref = row["reference_sha"]
            if previous is not None and ref != previous:
                bridge = seen.get(ref) if ref else None
                if bridge is not None:
                    factor *= bridge
                    frame.at[i, "marker"] = CHAINED
                else:
                    segment, factor = segment + 1, 1.0
                    frame.at[i, "marker"] = NEW_REFERENCE
                seen = {}
            previous = ref
            frame.at[i, "segment"] = segment
            frame.at[i, "level"] = row["value"] * factor
            if row["commit_sha"]:
                seen[row["commit_sha"]] = float(row["value"])
    return frame


def robust_sd_log(logs) -> float:
    """σ of log values from the MAD of their point-to-point differences / sqrt 2 (a step
    barely moves it); NaN below 3 points."""
    diffs = np.diff(logs)
    if len(diffs) < 2:
        return math.nan
    return 1.4826 * float(np.median(np.abs(diffs - np.median(diffs)))) / math.sqrt(2)


def noise(frame):
    """Per series: points, latest value, sd of the log values and a robust one (MAD of the
    point-to-point log differences / sqrt 2, which a step barely moves)."""
    import pandas as pd

    records = []
    for key, part in frame.groupby("series", sort=True):
        logs = np.log(part["level"] if "level" in part else part["value"]).to_numpy()
        robust = robust_sd_log(logs)
        last = part.iloc[-1]
        records.append({"series": key, "case_id": last["case_id"], "metric": last["metric"],
                        "machine": last["machine"], "machine_label": last.get("machine_label"),
                        "impl": last["impl"], "phase": last["phase"], "points": len(part),
                        "latest": float(last["value"]), "latest_commit": last["commit_sha"],
                        "sd_log": float(np.std(logs, ddof=1)) if len(logs) > 1 else math.nan,
                        "robust_sd_log": robust, "values": np.exp(logs).tolist()})
    return pd.DataFrame(records, columns=["series", "case_id", "metric", "machine",
                                          "machine_label", "impl", "phase", "points", "latest",
                                          "latest_commit", "sd_log", "robust_sd_log", "values"])


GROUP_PHASE = "all"


def implementation_series(frame):
    """Per implementation, machine, metric and reference segment: the geometric mean of its
    cases' levels in each run that measured all of them, as one more series (`impl/*`).

    A change in an implementation usually moves all its cases; their mean is a sharper series
    than any one of them (the spread falls with the number of cases that vary independently).
    """
    import pandas as pd

    out = []
    keys = ["impl", "metric", "machine", "segment"]
    for (impl, metric, machine, segment), part in frame.groupby(keys, sort=True, dropna=True):
        cases = part["case_id"].nunique()
        if cases < 2:
            continue
        per_run = part.groupby("run_id", sort=False)
        counts = per_run["case_id"].nunique()
        full = counts[counts == cases].index
        if len(full) < 2:
            continue
        first = per_run.head(1).set_index("run_id").loc[full].reset_index()
        logs = np.log(part["level"].astype(float)).groupby(part["run_id"]).mean()
        case_id = f"{impl}/* ({cases} cases)"
        first = first.assign(
            series=series_key(case_id, metric, machine), case_id=case_id, phase=GROUP_PHASE,
            level=np.exp(logs.loc[full].to_numpy()), value=np.exp(logs.loc[full].to_numpy()),
            ci_low=np.nan, ci_high=np.nan, segment=segment)
        out.append(first)
    if not out:
        return frame.iloc[0:0]
    return order(pd.concat(out, ignore_index=True))
