"""Measure the A/B speed gate on this machine: A/A false alarms, detection power, wall time.

Runs `rnnbench ab` for real, one run after another (nothing else should run meanwhile):
- N A/A runs: side A is a git ref (default HEAD) checked out into a temporary worktree, side B
  this tree, exactly as CI runs the gate; the code is the same, so any flag is a false alarm;
- M detection runs: side B is a copy of this tree whose `--impl` does about `--share` extra
  recurrent work (.ci/slow_tree.py); it should be flagged, and nothing else.
Then it replays the raw blocks of every run under other stop rules (a larger --target-mde,
fewer --blocks: rules that stop no later than the one measured) to show the trade-off, and
writes a reference folder: runs.csv, cases.csv, sweep.csv and raw/*.json.gz (each run's
ab.json), calibration.json, plus one complete A/A and one detection run folder as examples.
report.md is written by hand from those files.

    python3 .ci/ab_calibration.py --out reports/reference/ab-smoke-<machine> [--aa 20]
        [--detect 6] [--base HEAD] [--impl keras_lstm] [--share 0.15] [-- extra ab flags]
"""

from __future__ import annotations

import argparse
import gzip
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from bench.verdict import (
    DEFAULT_ALPHA,
    DEFAULT_THRESHOLD,
    IMPROVEMENT,
    JUDGED,
    REGRESSION,
    UNRELIABLE,
)

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / ".ci"))
AB_FLAGS = ["--preset", "smoke", "--threads", "1"]
SWEEP_PAIRS = (100, 200, 300)
SWEEP_TARGETS = (0.07, 0.08, 0.10)


def cpu_model() -> str:
    """The CPU model line of /proc/cpuinfo."""
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            return line.split(":", 1)[1].strip()
    return "unknown"


def run_ab(out: Path, extra: list[str]) -> dict:
    """One `rnnbench ab` run; returns its exit code, wall time, load and loaded ab.json."""
    from bench.ab_results import read_ab
    from bench.errors import UserError

    load0 = os.getloadavg()[0]
    start = time.perf_counter()
    proc = subprocess.run(["rnnbench", "ab", *AB_FLAGS, "--out", str(out), *extra],
                          capture_output=True, text=True, check=False)
    wall = time.perf_counter() - start
    try:
        doc = read_ab(out)
    except UserError as exc:
        doc, proc.stderr = None, f"{proc.stderr}\n{exc}"
    if proc.returncode not in (0, 1) or doc is None:
        sys.exit(f"ab_calibration: rnnbench ab failed (exit {proc.returncode}):\n"
                 + proc.stderr[-2000:])
    return {"exit": proc.returncode, "wall_s": wall, "load_start": load0,
            "load_end": os.getloadavg()[0], "doc": doc}


def verdicts(doc, rule=None, threshold: float | None = None, alpha: float | None = None):
    """The verdict frame of a stored run (a bench.ab_results.ABDocument), replayed under its
    own stop rule or under `rule` (bench.analysis.ab_sequential.StopRule)."""
    from bench.analysis import ab_sequential

    s = doc.settings
    rule = rule or ab_sequential.rule_of(s, doc.passes_done)
    gens = list(doc.pass_generation) or [0] * doc.passes_done
    return ab_sequential.sequential_frame(
        doc.stats_input(), gens, rule, geomean=False,
        threshold=threshold if threshold is not None else (s.threshold or DEFAULT_THRESHOLD),
        alpha=alpha if alpha is not None else (s.alpha or DEFAULT_ALPHA))


def flagged(frame) -> list[str]:
    """Cases with a regression or improvement verdict."""
    return list(frame.loc[frame["verdict"].isin([REGRESSION, IMPROVEMENT]), "case"])


def summarise_run(kind: str, i: int, res: dict, impl: str) -> tuple[dict, list[dict]]:
    """One runs.csv row and the cases.csv rows of a finished run."""
    import pandas as pd

    frame = verdicts(res["doc"])
    setup = res["doc"].extra.get("setup") or []
    walls = [w.get("wall") for w in setup if isinstance(w.get("wall"), int | float)]
    judged = frame[frame["verdict"].isin(JUDGED)]
    target = judged["case"].str.startswith(impl + "/")
    regress = frame["verdict"] == REGRESSION
    row = {"kind": kind, "run": i, "exit": res["exit"], "wall_s": round(res["wall_s"], 1),
           "load_start": res["load_start"], "load_end": res["load_end"],
           "judged": len(judged), "flagged": len(flagged(frame)),
           "regressions": int(regress.sum()),
           "target_flagged": int((judged["verdict"] == REGRESSION)[target].sum()),
           "target_cases": int(target.sum()),
           "other_flagged": int(judged["verdict"].isin([REGRESSION, IMPROVEMENT])[
               ~target].sum()),
           "unreliable": int((judged["verdict"] == UNRELIABLE).sum()),
           "median_mde": float(pd.to_numeric(judged["mde"]).median()),
           "median_pairs": float(pd.to_numeric(judged["pairs"]).median()),
           "passes": res["doc"].passes_done,
           "slowest_worker_setup_s": max(walls) if walls else None,
           "median_ratio_target": float(pd.to_numeric(judged["ratio"][target]).median())
           if target.any() else float("nan")}
    cases = [{"kind": kind, "run": i, **{k: r[k] for k in ("case", "ratio", "ci_low", "ci_high",
                                                          "mde", "pairs", "stop", "verdict")}}
             for r in frame.to_dict("records")]
    return row, cases


def sweep(docs: dict[str, list], impl: str) -> list[dict]:
    """Verdicts replayed under rules that stop no later than the measured one: fewer pairs at
    most (`pairs`), a larger target mde (`target`). `out_of_data`: judged cases whose replay
    wanted more passes than the run measured (then judged on what there is)."""
    import pandas as pd

    from bench.analysis.ab_sequential import STOP_ENDED, StopRule

    rows = []
    for pairs in SWEEP_PAIRS:
        for target in SWEEP_TARGETS:
            aa_any, det_hit, det_n, det_other, mdes, used, short = 0, 0, 0, 0, [], [], 0
            for kind, runs in docs.items():
                for doc in runs:
                    frame = verdicts(doc, StopRule(pairs, target_mde=target))
                    judged = frame[frame["verdict"].isin(JUDGED)]
                    mdes.append(float(pd.to_numeric(judged["mde"]).median()))
                    used.append(float(pd.to_numeric(judged["pairs"]).mean()))
                    short += int(judged["stop"].str.startswith(STOP_ENDED).sum()) \
                        if doc.passes_done < pairs else 0
                    hits = judged["verdict"].isin([REGRESSION, IMPROVEMENT])
                    if kind == "aa":
                        aa_any += bool(hits.any())
                    else:
                        target_cases = judged["case"].str.startswith(impl + "/")
                        det_hit += int((judged["verdict"] == REGRESSION)[target_cases].sum())
                        det_n += int(target_cases.sum())
                        det_other += int(hits[~target_cases].sum())
            rows.append({"max_pairs": pairs, "target_mde": target,
                         "aa_runs_with_any_flag": f"{aa_any}/{len(docs['aa'])}",
                         "detected": f"{det_hit}/{det_n}" if det_n else "-",
                         "false_flags_in_detection_runs": det_other,
                         "median_mde": statistics.median(mdes),
                         "mean_pairs_per_case": statistics.mean(used),
                         "out_of_data": short})
    return rows


def main(argv: list[str] | None = None) -> int:
    """Run the A/A and detection series and write the reference folder."""
    import pandas as pd
    from slow_tree import make_slow_tree

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--aa", type=int, default=20)
    parser.add_argument("--detect", type=int, default=6)
    parser.add_argument("--base", default="HEAD", help="git ref of side A in the A/A runs")
    parser.add_argument("--impl", default="keras_lstm")
    parser.add_argument("--share", type=float, default=0.15,
                        help="extra work of the slowed implementation (with one-call blocks, "
                             "0.15 measured 1.14-1.16x, 0.10 about 1.10x)")
    parser.add_argument("extra", nargs="*", help="extra rnnbench ab flags (after --)")
    args = parser.parse_args(argv)
    if args.out.exists():
        sys.exit(f"ab_calibration: {args.out} already exists")
    work = Path(tempfile.mkdtemp(prefix="ab-calibration-"))
    slow = make_slow_tree(work / "slow", args.impl, args.share)
    plan = [("detect", i, ["--b-src", str(slow)]) for i in range(1, args.detect + 1)]
    plan += [("aa", i, ["--a-src", args.base]) for i in range(1, args.aa + 1)]
    runs, cases, docs = [], [], {"aa": [], "detect": []}
    for kind, i, side_flags in plan:
        folder = work / f"{kind}-{i:02d}"
        res = run_ab(folder, side_flags + args.extra)
        row, case_rows = summarise_run(kind, i, res, args.impl)
        runs.append(row)
        cases += case_rows
        docs[kind].append(res["doc"])
        print(f"{kind} {i}: exit {row['exit']}, {row['wall_s']} s, flagged {row['flagged']}, "
              f"target {row['target_flagged']}/{row['target_cases']}, median mde "
              f"{row['median_mde']:.3f}, median pairs {row['median_pairs']:.0f}, load "
              f"{row['load_start']:.2f}", flush=True)
    args.out.mkdir(parents=True)
    (args.out / "raw").mkdir()
    for kind, runs_of_kind in docs.items():
        for i, doc in enumerate(runs_of_kind, 1):
            with gzip.open(args.out / "raw" / f"{kind}-{i:02d}.json.gz", "wt") as fh:
                json.dump(doc.to_dict(), fh, separators=(",", ":"))
    for example in ("aa-01", "detect-01"):
        if (work / example).exists():
            shutil.copytree(work / example, args.out / f"example-{example}",
                            ignore=shutil.ignore_patterns("worker-*.log"))
    pd.DataFrame(runs).to_csv(args.out / "runs.csv", index=False)
    pd.DataFrame(cases).to_csv(args.out / "cases.csv", index=False)
    pd.DataFrame(sweep(docs, args.impl)).to_csv(args.out / "sweep.csv", index=False)
    meta = {"cpu_model": cpu_model(), "cores": os.cpu_count(), "base": args.base,
            "impl": args.impl, "share": args.share, "ab_flags": AB_FLAGS + args.extra,
            "finished_utc": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}
    (args.out / "calibration.json").write_text(json.dumps(meta, indent=1) + "\n")
    shutil.rmtree(work, ignore_errors=True)
    print(f"written: {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
