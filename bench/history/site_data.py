"""The history site's tables, computed before anything is rendered (DataFrames, no HTML)."""

from __future__ import annotations

import hashlib
import re

from bench.history.changes import IMPROVEMENT, REGRESSION
from bench.history.series import noise

CASES_DIR = "cases"


def case_page(case_id: str) -> str:
    """The relative path of a case's page (readable, and unique through a short hash)."""
    slug = re.sub(r"[^A-Za-z0-9_.-]+", "_", case_id).strip("_")[:120] or "case"
    return f"{CASES_DIR}/{slug}-{hashlib.sha256(case_id.encode()).hexdigest()[:6]}.html"


def series_index(points, found):
    """One row per series: noise, latest value, its changes; series with regressions first."""
    table = noise(points)
    counts = found.groupby(["series", "kind"]).size().unstack(fill_value=0) if len(found) \
        else None
    for kind in (REGRESSION, IMPROVEMENT):
        table[kind + "s"] = (table["series"].map(counts[kind]).fillna(0).astype(int)
                             if counts is not None and kind in counts else 0)
    last = found.sort_values("index").groupby("series").tail(1).set_index("series")
    table["last_change"] = table["series"].map(
        (last["kind"] + " " + (last["effect"] * 100).map("{:+.1f} %".format))
        if len(last) else {}).fillna("")
    table["page"] = table["case_id"].map(case_page)
    table["_rank"] = (table["regressions"] == 0).astype(int)
    return (table.sort_values(["_rank", "impl", "phase", "case_id", "metric", "machine"],
                              na_position="last")
            .drop(columns="_rank").reset_index(drop=True))


def machine_matrix(points):
    """The latest value of every case and metric (rows) on every machine (columns)."""
    latest = points.groupby("series", sort=False).tail(1)
    matrix = latest.pivot_table(index=["case_id", "metric"], columns="machine_label",
                                values="value", aggfunc="last")
    matrix.columns.name = None
    return matrix.reset_index()


def machines_frame(store):
    """Every machine of the store: id, label, runs and the last run's time."""
    return store.frame(
        "SELECT m.machine, m.label, COUNT(r.run_id) AS runs, MAX(r.created_utc) AS last_run "
        "FROM machines m LEFT JOIN runs r ON r.machine = m.machine "
        "GROUP BY m.machine, m.label ORDER BY m.label")
