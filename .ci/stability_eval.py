"""Judge stored rounds with the current stability verdict: flagged cases per results file.

    python3 .ci/stability_eval.py reports/reference/*/ reports/baselines/*/

For each run folder (or results.json): timed cases, how many the stored warnings flagged when
the run was made, how many the current verdict (bench.analysis.stability) flags from the raw
rounds, and by which kind. The goal for an idle 2-core VM: a smoke run flags at most 5 of 45.
"""

from __future__ import annotations

import sys
from collections import Counter

from bench.analysis import stability
from bench.errors import UserError
from bench.measure.timing import policy_for
from bench.results import read_run


def judge(path: str) -> str:
    """One line: the run, its timed cases, flagged then and now, the kinds."""
    run = read_run(path)
    minimum = policy_for(run.doc.get("preset")).min_rounds
    timed = [r for r in run.cases if r.ok and r.stats.samples_s]
    kinds: Counter = Counter()
    flagged = 0
    for row in timed:
        found = stability.assess(row.stats.samples_s, min_rounds=minimum)
        flagged += bool(found)
        kinds.update(f.kind for f in found)
    stored = sum(bool(r.stats.warnings) for r in timed)
    what = ", ".join(f"{k} {n}" for k, n in kinds.most_common()) or "none"
    return (f"{run.run_id} (preset {run.doc.get('preset')}): {len(timed)} timed, flagged "
            f"{stored} when measured, {flagged} now ({what})")


def main(paths: list[str]) -> int:
    """Print one line per run; exit 2 on an unreadable one."""
    if not paths:
        print(__doc__.strip(), file=sys.stderr)
        return 2
    try:
        for path in paths:
            print(judge(path))
    except UserError as exc:
        print(f"stability_eval: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
