"""The end of a measuring command: write report.md next to the saved results, or say how to."""

from __future__ import annotations

import os
import sys

from bench.errors import one_line


def write_report(run_dir: str | os.PathLike, command: str) -> None:
    """Write the run's report; a failure is one line on stderr (the results are already saved)."""
    from bench.analysis.report import write_report as write

    try:
        write(run_dir)
    except Exception as exc:  # the results are saved; the report can be rebuilt later
        print(f"rnnbench {command}: report not written ({one_line(exc)}); results are saved: "
              f"run `rnnbench report {run_dir}`", file=sys.stderr)
