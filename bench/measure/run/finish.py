"""The end of a measuring command: write report.md next to the saved results, or say how to."""

from __future__ import annotations

import os
import sys

from bench.errors import UserError, one_line
from bench.storage import WriteError


def write_report(run_dir: str | os.PathLike, command: str) -> None:
    """Write the run's report; a failure is one line on stderr (the results are already saved),
    and a write error (full disk, read-only folder) is a UserError: exit 2."""
    from bench.analysis.report import write_report as write

    try:
        write(run_dir)
    except WriteError as exc:  # the disk is full or read-only: the run cannot end well
        raise UserError(f"{exc}; the results are saved, the report is not: free space and "
                        f"run `rnnbench report {run_dir}`") from None
    except Exception as exc:  # the results are saved; the report can be rebuilt later
        print(f"rnnbench {command}: report not written ({one_line(exc)}); results are saved: "
              f"run `rnnbench report {run_dir}`", file=sys.stderr)
