"""The relative series: one `ab_ratio` point per judged case of an A/B run (B/A, against A).

The run is read through the project's ab.json loader (`bench.ab_results`); side B's
environment gives the machine and the commit measured, side A's commit is the reference the
ratio is measured against.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from bench.ab_results import read_ab
from bench.history.points import COMPLETE, PARTIAL_STATUS, RATIO, Machine, Point, Source


def ab_points(path: Path, commit_time: Callable[[str | None], str | None]
              ) -> tuple[Source, list[Point]]:
    """The source (run, machine, commits) and ratio points of one A/B folder or file."""
    doc = read_ab(path)
    side_a, side_b = doc.sides["A"], doc.sides["B"]
    commit = side_b.commit
    run_id = doc.run_id or (path.name if path.is_dir() else path.name.split(".")[0])
    source = Source(run_id=run_id, machine=Machine.from_env(side_b.env_fingerprint or {}),
                    commit_sha=commit, commit_time=commit_time(commit),
                    created_utc=str(doc.created_utc or doc.finished_utc or ""),
                    status=COMPLETE if doc.status == COMPLETE else PARTIAL_STATUS,
                    reference_sha=side_a.commit)
    points = []
    for case in doc.cases:
        verdict = case.verdict
        if verdict is None or verdict.ratio is None:
            continue
        points.append(source.point(case.id, RATIO, case.params.get("impl"),
                                   case.params.get("phase"), verdict.ratio,
                                   (verdict.ci_low, verdict.ci_high), verdict.pairs))
    return source, points
