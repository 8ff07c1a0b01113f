"""The relative series: one `ab_ratio` point per judged case of an ab folder (B/A, against A).

The folder is read through the project's ab.json loader; side B's environment gives the
machine and the commit measured, side A's source commit is the reference the ratio is against.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from bench.errors import UserError
from bench.history.points import COMPLETE, RATIO, Machine, Point, Source

AB_JSON = "ab.json"


def _load(folder: Path):
    raise UserError(f"{folder}: ab folders need the ab.json loader (not merged yet)")


def ab_points(folder: Path, commit_time: Callable[[str | None], str | None]
              ) -> tuple[Source, list[Point]]:
    """The source (run, machine, commits) and ratio points of one ab folder."""
    doc = _load(folder)
    raise NotImplementedError(doc)


