"""Check every implementation against the float64 NumPy reference (outputs and gradients).

Each implementation × unroll mode runs on two small shapes (one single-layer, one two-layer
bidirectional) with identical canonical weights; the table shows max absolute differences of
the outputs, the input gradient and the worst weight gradient. Exit 0 only if all pass.
Without a GPU, the cuDNN implementations run their exact Keras layers and weight conversion
with use_cudnn=False (a layout check); on a GPU box they run the real cuDNN kernel.
`--dtype bf16|fp16` checks mixed precision at that dtype's tolerance (bench.impls.equivalence);
`--lengths ragged` checks right-padded batches on the valid positions. An implementation that
cannot run a dtype or ragged batches shows a skip row with the reason.
"""

from __future__ import annotations

import json
import sys

from bench.args import add_names, positive_float
from bench.errors import one_line
from bench.impls.equivalence import TOLERANCES, VERIFY_SHAPES, compare_with_reference
from bench.registry import DEVICES, DTYPES, LENGTHS, REGISTRY, get_spec


def add_arguments(parser) -> None:
    """Options of `rnnbench verify`."""
    parser.add_argument("--device", default="cpu", choices=DEVICES,
                        help="device to run the implementations on (default: cpu)")
    add_names(parser, "--impl", metavar="IMPL",
              help=f"implementations to check (default: all): {', '.join(REGISTRY)}")
    parser.add_argument("--dtype", default="fp32", choices=tuple(DTYPES),
                        help="precision: fp32, or Keras mixed precision bf16/fp16 "
                             "(default: fp32)")
    parser.add_argument("--lengths", default="full", choices=LENGTHS,
                        help="full-length batches, or ragged right-padded ones (default: full)")
    parser.add_argument("--tolerance", type=positive_float, default=None, metavar="DIFF",
                        help="max difference allowed (default per dtype: "
                             + ", ".join(f"{k} {v:.2g}" for k, v in TOLERANCES.items())
                             + "; relative to max(1, max|ref|) for bf16/fp16)")
    parser.add_argument("--json", action="store_true", help="print JSON rows instead")


def plan(impls: list[str], device: str, gpu_visible: bool, dtype: str = "fp32",
         lengths: str = "full") -> list[tuple[str, str, str]]:
    """(impl, unroll, how) triples to check; `how` says which kernel stands in, if any."""
    out = []
    for name in impls:
        spec = get_spec(name)
        limit = spec.limitation(dtype, lengths)
        if limit:
            how = f"skip: {limit}"
        elif spec.gpu_only and not gpu_visible:
            how = "keras use_cudnn=False (layout check; no GPU)"
        elif device not in spec.devices:
            how = "skip"
        else:
            how = device
        out.extend((name, unroll, how) for unroll in spec.unrolls)
    return out


def main(args) -> int:
    """Run the checks and print the table; 0 if every difference is within tolerance."""
    impls = args.impl or list(REGISTRY)
    for name in impls:
        get_spec(name)  # unknown names fail before TensorFlow loads
    from bench.impls.devices import require_device, visible_gpus
    from bench.impls.tfsetup import import_tensorflow

    import_tensorflow()
    require_device(args.device)
    from bench.impls.keras_rnn import build_without_cudnn

    results, failed = [], 0
    tolerance = TOLERANCES[args.dtype] if args.tolerance is None else args.tolerance
    kind = "relative" if args.dtype != "fp32" else "absolute"
    header = f"{'impl':<17} {'unroll':<8} {'shape':<24} {'outputs':>9} {'d_input':>9} " \
             f"{'d_weights':>9}  verdict"
    if not args.json:
        print(f"max |impl - float64 reference| ({kind}), {args.dtype}, {args.lengths} lengths, "
              f"tolerance {tolerance:g}, device {args.device}")
        print(header)
    for name, unroll, how in plan(impls, args.device, bool(visible_gpus()), args.dtype,
                                  args.lengths):
        spec = get_spec(name)
        if how.startswith("skip"):
            row = {"impl": name, "unroll": unroll, "shape": "-", "via": how,
                   "verdict": "skipped", "reason": how.removeprefix("skip: ")}
            results.append(row)
            if not args.json:
                print(f"{name:<17} {unroll:<8} {'-':<24} skipped: {row['reason']}")
            continue
        for shape in VERIFY_SHAPES:
            label = shape.label + ("-ragged" if args.lengths == "ragged" else "")
            row = {"impl": name, "unroll": unroll, "shape": label, "via": how,
                   "dtype": args.dtype, "lengths": args.lengths}
            try:
                diff = compare_with_reference(
                    name, unroll, shape, device="cpu" if spec.gpu_only and
                    how.startswith("keras") else args.device,
                    factory=build_without_cudnn if how.startswith("keras") else None,
                    dtype=args.dtype, lengths=args.lengths)
            except Exception as exc:  # a broken impl is a failed row, not a crash
                row.update(verdict="ERROR", error=one_line(exc))
                failed += 1
            else:
                ok = diff.max <= tolerance
                failed += not ok
                row.update(outputs=diff.outputs, d_input=diff.input_grad,
                           d_weights=diff.weight_grad, worst_weight=diff.worst_weight,
                           verdict=("pass" if ok else "FAIL")
                           + (" (layout check)" if how.startswith("keras") else ""))
            results.append(row)
            if not args.json:
                _print_row(row)
    if args.json:
        print(json.dumps(results, indent=1))
    else:
        total = sum(r["verdict"] != "skipped" for r in results)
        skipped = len(results) - total
        print(f"{total - failed}/{total} passed" + (f", {skipped} skipped" if skipped else ""),
              file=sys.stderr if failed else sys.stdout)
    return 1 if failed else 0


def _print_row(row: dict) -> None:
    if "error" in row:
        print(f"{row['impl']:<17} {row['unroll']:<8} {row['shape']:<24} {row['error']}")
        return
    print(f"{row['impl']:<17} {row['unroll']:<8} {row['shape']:<24} {row['outputs']:9.1e} "
          f"{row['d_input']:9.1e} {row['d_weights']:9.1e}  {row['verdict']}", flush=True)
