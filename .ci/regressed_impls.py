"""Print the implementations an A/B run flagged as regressed (comma-separated), for CI.

Prints nothing when any case is `broken` (an error on side B only): that failure needs no
confirmation. Reads the run folder's ab.json through the validated loader (bench.ab_results);
an unreadable or inconsistent file is one line on stderr and exit 2.
"""

from __future__ import annotations

import sys
from pathlib import Path

from bench.ab_results import read_ab
from bench.errors import UserError
from bench.verdict import BROKEN, REGRESSION


def regressed_impls(run_dir: Path) -> str:
    """Comma-separated implementations with a `regression` verdict; '' if any case is broken."""
    verdicts = [c.verdict for c in read_ab(run_dir).cases if c.verdict is not None]
    if any(v.verdict == BROKEN for v in verdicts):
        return ""
    impls = [v.case.split("/", 1)[0] for v in verdicts if v.verdict == REGRESSION]
    return ",".join(dict.fromkeys(impls))


if __name__ == "__main__":
    try:
        print(regressed_impls(Path(sys.argv[1])))
    except UserError as exc:
        print(f"regressed_impls: {exc}", file=sys.stderr)
        sys.exit(2)
