"""The history store's tables, as ordered upgrade steps shared by SQLite and PostgreSQL.

Format history (`schema_version` in table `history_meta`):
  1 — tables machines, runs, points (one row per series and run).
  2 — points record the calibrated matmul peak of their run (`peak_gflops`, null when the run
      has none or is an ab run) for normalized series; indexes for the series queries.
A fresh store runs every step; an older one runs the steps it lacks; a newer one is refused.
The SQL is the common subset of both engines (TEXT, DOUBLE PRECISION, BIGINT, ON CONFLICT).
"""

from __future__ import annotations

SCHEMA_VERSION = 2

# STEPS[n] brings a version-n store to version n + 1 (version 0: an empty database).
STEPS: dict[int, tuple[str, ...]] = {
    0: (
        "CREATE TABLE IF NOT EXISTS history_meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)",
        """CREATE TABLE IF NOT EXISTS machines (
            machine TEXT PRIMARY KEY, label TEXT NOT NULL, identity_json TEXT NOT NULL,
            first_added_utc TEXT NOT NULL)""",
        """CREATE TABLE IF NOT EXISTS runs (
            run_id TEXT PRIMARY KEY, kind TEXT NOT NULL, content_hash TEXT NOT NULL,
            source TEXT NOT NULL, machine TEXT NOT NULL REFERENCES machines (machine),
            commit_sha TEXT, commit_time TEXT, created_utc TEXT NOT NULL, status TEXT NOT NULL,
            reference_sha TEXT, points BIGINT NOT NULL, added_utc TEXT NOT NULL)""",
        """CREATE TABLE IF NOT EXISTS points (
            series TEXT NOT NULL, run_id TEXT NOT NULL REFERENCES runs (run_id),
            case_id TEXT NOT NULL, metric TEXT NOT NULL, machine TEXT NOT NULL,
            impl TEXT, phase TEXT, commit_sha TEXT, commit_time TEXT, created_utc TEXT NOT NULL,
            value DOUBLE PRECISION NOT NULL, ci_low DOUBLE PRECISION, ci_high DOUBLE PRECISION,
            n BIGINT, status TEXT NOT NULL, reference_sha TEXT,
            PRIMARY KEY (series, run_id))""",
    ),
    1: (
        "ALTER TABLE points ADD COLUMN peak_gflops DOUBLE PRECISION",
        "CREATE INDEX IF NOT EXISTS points_by_case ON points (case_id, machine)",
        "CREATE INDEX IF NOT EXISTS points_by_run ON points (run_id)",
        "CREATE INDEX IF NOT EXISTS runs_by_machine ON runs (machine, created_utc)",
    ),
}

# The columns of a point row, in table order (bench.history.points.Point owns their meaning).
POINT_COLUMNS = ("series", "run_id", "case_id", "metric", "machine", "impl", "phase",
                 "commit_sha", "commit_time", "created_utc", "value", "ci_low", "ci_high", "n",
                 "status", "reference_sha", "peak_gflops")
RUN_COLUMNS = ("run_id", "kind", "content_hash", "source", "machine", "commit_sha",
               "commit_time", "created_utc", "status", "reference_sha", "points", "added_utc")
MACHINE_COLUMNS = ("machine", "label", "identity_json", "first_added_utc")
