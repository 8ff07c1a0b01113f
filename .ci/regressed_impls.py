"""Print the implementations an A/B run flagged as regressed (comma-separated), for CI.

Prints nothing when any case is `broken` (an error on side B only): that failure needs no
confirmation. Reads the run folder's ab.csv (the verdict table).
"""

from __future__ import annotations

import csv
import sys
from pathlib import Path


def regressed_impls(run_dir: Path) -> str:
    """Comma-separated implementations with a `regression` verdict; '' if any case is broken."""
    with (run_dir / "ab.csv").open(newline="") as fh:
        rows = list(csv.DictReader(fh))
    if any(r["verdict"] == "broken" for r in rows):
        return ""
    impls = [r["case"].split("/", 1)[0] for r in rows if r["verdict"] == "regression"]
    return ",".join(dict.fromkeys(impls))


if __name__ == "__main__":
    print(regressed_impls(Path(sys.argv[1])))
