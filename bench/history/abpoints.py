"""The relative series: one `ab_ratio` point per judged case of an A/B run (B/A, against A).

The run is loaded through the project's ab.json loader (`bench.ab_results`); side B's
environment gives the machine and the commit measured, side A's commit is the reference the
ratio is measured against.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from bench.ab_results import ABDocument
from bench.ab_rows import VERSION_FIELDS
from bench.history.points import COMPLETE, PARTIAL_STATUS, RATIO, Machine, Point, Source

# Differences that make a run compare something else than two source trees: interpreters,
# library versions, environment variables. Source, commit and code differences are what a
# ratio series measures.
ENVIRONMENT_FIELDS = tuple(f for f in VERSION_FIELDS if f != "rnnbench")


def reference_of(commit: str | None, differences: dict) -> str | None:
    """What a ratio is measured against: side A's commit, and the environment fields in which
    the sides differ (`<sha> vs python,tensorflow`), so a run comparing two interpreters is
    never read as the same series as runs comparing two commits."""
    others = sorted(k for k in (differences or {})
                    if k in ENVIRONMENT_FIELDS or k.startswith("env:"))
    if not others:
        return commit
    return f"{commit or 'unknown'} vs {','.join(others)}"


def ab_points(doc: ABDocument, path: Path, commit_time: Callable[[str | None], str | None]
              ) -> tuple[Source, list[Point]]:
    """The source (run, machine, commits) and ratio points of one loaded A/B document, read
    from the folder or file `path`."""
    side_a, side_b = doc.sides["A"], doc.sides["B"]
    commit = side_b.commit
    run_id = doc.run_id or (path.name if path.is_dir() else path.name.split(".")[0])
    source = Source(run_id=run_id, machine=Machine.from_env(side_b.env_fingerprint or {}),
                    commit_sha=commit, commit_time=commit_time(commit),
                    created_utc=str(doc.created_utc or doc.finished_utc or ""),
                    status=COMPLETE if doc.status == COMPLETE else PARTIAL_STATUS,
                    reference_sha=reference_of(side_a.commit, doc.differences))
    points = []
    for case in doc.cases:
        verdict = case.verdict
        if verdict is None or verdict.ratio is None:
            continue
        points.append(source.point(case.id, RATIO, case.params.get("impl"),
                                   case.params.get("phase"), verdict.ratio,
                                   (verdict.ci_low, verdict.ci_high), verdict.pairs))
    return source, points
