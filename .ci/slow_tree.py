"""Make a copy of this source tree in which one implementation does extra work in its step.

Used to measure the A/B gate's detection power: `rnnbench ab --b-src DIR` with DIR made here
must flag that implementation's cases and nothing else. The extra work is real recurrent work,
not a sleep: the layer also runs on the first `share` of the time steps, and a negligible
multiple of that result is added to the output so neither graph pruning nor constant folding
can drop it (outputs move by < 1e-20, so the equivalence check still passes).

    python3 .ci/slow_tree.py DEST [--impl keras_lstm] [--share 0.15]
"""

from __future__ import annotations

import argparse
import shutil
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

PATCH = '''

# ---- injected by .ci/slow_tree.py: extra work for {impl} only (A/B detection test) ----
def _slowed(run_direction, share=float({share!r})):
    def run(self, layer, direction, x):
        import tensorflow as tf

        out = run_direction(self, layer, direction, x)
        if self.config.impl != {impl!r}:
            return out
        steps = max(1, round(share * int(x.shape[1])))
        extra = run_direction(self, layer, direction, x[:, :steps])
        return out + 1e-30 * tf.reduce_sum(extra)
    return run


KerasLayer._run_direction = _slowed(KerasLayer._run_direction)
'''


def make_slow_tree(dest: Path, impl: str = "keras_lstm", share: float = 0.15) -> Path:
    """Copy bench/ into `dest` and patch `impl` (a Keras implementation) to do extra work."""
    if not impl.startswith("keras_"):
        raise SystemExit(f"slow_tree: {impl} is not a Keras implementation; choose keras_lstm "
                         "or keras_gru")
    if dest.exists():
        raise SystemExit(f"slow_tree: {dest} already exists")
    shutil.copytree(ROOT / "bench", dest / "bench",
                    ignore=shutil.ignore_patterns("__pycache__"))
    target = dest / "bench" / "impls" / "keras_rnn.py"
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
