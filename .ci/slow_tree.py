"""Make a copy of this source tree in which one implementation gets slower by a known share.

Used to measure the A/B gate's detection power: `rnnbench ab --b-src DIR` with DIR made here
must flag that implementation's cases and nothing else. The patched step does real extra CPU
work after each call: a busy loop lasting `share` of that same call's own time. So every call of
the implementation (forward, backward, train step) is `share` slower, whatever the machine's
speed at that moment; outputs are unchanged, so the equivalence check still passes. Other
implementations are untouched. (Earlier versions spun for `share` of a reference time: taken at
set-up it was inflated by the other workers' tracing, and steps came out 20-78 % slower; the
median of the first 25 calls gave 6-21 % depending on the machine's speed during those calls.)

    python3 .ci/slow_tree.py DEST [--impl keras_lstm] [--share 0.15]
"""

from __future__ import annotations

import argparse
import shutil
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

PATCH = '''

# ---- injected by .ci/slow_tree.py: {impl} {share:.0%} slower per call (A/B detection test) ----
_unpatched_build_step = build_step


def build_step(case, seed=0):  # noqa: F811
    import time

    step = _unpatched_build_step(case, seed)
    if case.impl != {impl!r}:
        return step
    inner = step.call

    def call():
        start = time.perf_counter()
        out = inner()
        end = time.perf_counter()
        end += {share!r} * (end - start)
        while time.perf_counter() < end:
            pass
        return out

    step.call = call
    return step
'''


def make_slow_tree(dest: Path, impl: str = "keras_lstm", share: float = 0.15) -> Path:
    """Copy bench/ into `dest` and make `impl`'s timed step `share` slower."""
    if dest.exists():
        raise SystemExit(f"slow_tree: {dest} already exists")
    shutil.copytree(ROOT / "bench", dest / "bench",
                    ignore=shutil.ignore_patterns("__pycache__"))
    target = dest / "bench" / "measure" / "phases.py"
    target.write_text(target.read_text() + PATCH.format(impl=impl, share=share))
    return dest


def main(argv: list[str] | None = None) -> int:
    """Command line: DEST [--impl NAME] [--share FRACTION]."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("dest", type=Path)
    parser.add_argument("--impl", default="keras_lstm")
    parser.add_argument("--share", type=float, default=0.15)
    args = parser.parse_args(argv)
    print(make_slow_tree(args.dest, args.impl, args.share))
    return 0


if __name__ == "__main__":
    sys.exit(main())
