"""`rnnbench tta`: time-to-accuracy on sequential MNIST for every impl × unroll × seed.

Settings and the budget syntax live in bench/tta/settings.py, the training loop (and what is
timed) in bench/tta/train.py, the seeds summary in bench/analysis/tta_summary.py.
TensorFlow is imported inside `main`, never at module level.
"""

from __future__ import annotations

import shlex
import sys
from collections.abc import Sequence
from dataclasses import replace

from bench import args as shared
from bench.analysis.tta_summary import chance_warning, format_summary, summarize
from bench.errors import UserError, one_line
from bench.measure.run.finish import write_report
from bench.registry import CORE, DEVICES, get_spec
from bench.tta import mnist as mnist_data
from bench.tta.settings import (
    AUTO,
    DEFAULT_BUDGET,
    DEFAULT_TARGET,
    NUMBERS,
    OPTIMIZERS,
    Budget,
    TTASettings,
    parse_budget,
)
from bench.tta.train import failed_row, run_tta
from bench.tta_rows import TTARow


def add_arguments(parser) -> None:
    """Register the `rnnbench tta` options."""
    parser.add_argument("--task", default="row", choices=mnist_data.TASKS,
                        help="row: 28 steps x 28 pixels; pixel: 784 x 1; permuted: 784 x 1 in "
                             "a fixed seeded order (default: row)")
    shared.add_names(parser, "--impl", default=["all"], metavar="IMPL",
                     help="implementations to train, or `all` (every one in the registry; "
                          "those that cannot run on --device are listed as skipped; "
                          "default: all)")
    shared.add_names(parser, "--unroll", default=[AUTO], metavar="MODE",
                     help="static, dynamic, fused or auto (fused where the impl is fused, "
                          "else dynamic); each impl runs every listed mode it supports "
                          "(default: auto)")
    parser.add_argument("--target", type=NUMBERS["--target"].parse, default=DEFAULT_TARGET,
                        help="held-out accuracy to reach, in (0, 1] (default: 0.90; on full "
                             "MNIST with a GPU try 0.98 for row, 0.90 for pixel)")
    parser.add_argument("--budget", default=None,
                        help="give up after this much training: seconds `90s`, minutes `2m`, "
                             "epochs `5ep` or steps `200steps` (default: "
                             + ", ".join(f"{k} {v}" for k, v in DEFAULT_BUDGET.items()) + ")")
    parser.add_argument("--seeds", type=shared.positive_int, default=1,
                        help="seeds 0..N-1 per impl; the table shows median and min–max "
                             "(default: 1)")
    parser.add_argument("--data", default=None, metavar="PATH",
                        help="Keras-style mnist.npz, a folder with the four MNIST *-ubyte.gz "
                             "files, or `subset` (default: Keras cache ~/.keras/datasets/"
                             "mnist.npz if present, else the vendored 5,000-image subset)")
    parser.add_argument("--download", action="store_true",
                        help="fetch mnist.npz with keras.utils.get_file (hash-checked) when "
                             "it is not cached")
    parser.add_argument("--optimizer", default="adam", choices=OPTIMIZERS,
                        help="(default: adam)")
    parser.add_argument("--lr", type=NUMBERS["--lr"].parse, default=1e-3,
                        help="learning rate (default: 1e-3)")
    parser.add_argument("--batch", type=NUMBERS["--batch"].parse, default=128,
                        help="batch size (default: 128)")
    parser.add_argument("--clip", type=NUMBERS["--clip"].parse, default=None, metavar="NORM",
                        help="clip gradients by global norm (default: no clipping)")
    parser.add_argument("--hidden", type=NUMBERS["--hidden"].parse, default=128,
                        help="hidden units (default: 128)")
    parser.add_argument("--layers", type=NUMBERS["--layers"].parse, default=1,
                        help="stacked layers (default: 1)")
    parser.add_argument("--bidirectional", action="store_true", help="bidirectional layers")
    parser.add_argument("--device", default="cpu", choices=DEVICES, help="(default: cpu)")
    parser.add_argument("--eval-every", type=NUMBERS["--eval-every"].parse, default=None,
                        metavar="STEPS",
                        help="held-out evaluation interval (default: half an epoch)")
    shared.add_threads(parser, "TensorFlow intra-op threads (default: TensorFlow's, all cores)")
    shared.add_out(parser, "new run folder (default: reports/<run id>)")
    parser.add_argument("-q", "--quiet", action="store_true",
                        help="no per-evaluation progress lines on stderr")


def _pairs(impls: Sequence[str], unrolls: Sequence[str], device: str
           ) -> list[tuple[str, str, str | None]]:
    """(impl, unroll, skip reason) to run; UserError for unknown names or explicit refusals."""
    from bench.impls.devices import skip_reason
    from bench.registry import UNROLLS

    for mode in unrolls:
        if mode != AUTO and mode not in UNROLLS:
            raise UserError(f"unknown unroll mode {mode!r}; valid: {', '.join(UNROLLS)}, {AUTO}")
    explicit = list(impls) != ["all"]
    names = list(dict.fromkeys(impls)) if explicit else list(CORE)
    out = []
    for name in names:
        spec = get_spec(name)
        modes = []
        for mode in unrolls:
            if mode == AUTO:
                mode = "fused" if "fused" in spec.unrolls else "dynamic"  # noqa: PLW2901
            if mode in spec.unrolls and mode not in modes:
                modes.append(mode)
        if not modes:
            if explicit:
                raise UserError(f"{name} supports unroll {', '.join(spec.unrolls)}; none of "
                                f"{', '.join(unrolls)} given")
            continue
        reason = skip_reason(spec, device)
        if reason is not None and explicit:
            raise UserError(f"{reason} (--device {device})")
        out.extend((name, mode, reason) for mode in modes)
    return out


def _save(run_dir, doc: dict, rows: list[TTARow], saved: int) -> int:
    """Save a snapshot; the rows it holds, or a UserError that says what the disk kept."""
    from bench import results, storage

    try:
        results.save_run(run_dir, doc, tta=rows)
    except storage.WriteError as exc:
        kept = (f"{saved} of {doc.get('cases_planned')} run(s) are saved in "
                f"{run_dir / results.RESULTS_JSON} (status partial)" if saved else
                "nothing was saved")
        raise UserError(f"{exc}; {kept}; free space or choose another --out") from None
    return len(rows)


def _command(args, budget: Budget) -> str:
    """The run as an explicit command line (every option spelled out; --out left off)."""
    argv = ["rnnbench", "tta", "--task", args.task, "--impl", *args.impl,
            "--unroll", *args.unroll, "--target", f"{args.target:g}", "--budget", str(budget),
            "--seeds", str(args.seeds), "--optimizer", args.optimizer, "--lr", f"{args.lr:g}",
            "--batch", str(args.batch), "--hidden", str(args.hidden),
            "--layers", str(args.layers), "--device", args.device]
    for flag, value in (("--data", args.data), ("--clip", args.clip),
                        ("--eval-every", args.eval_every), ("--threads", args.threads)):
        if value is not None:
            argv += [flag, f"{value:g}" if isinstance(value, float) else str(value)]
    argv += [flag for flag, on in (("--bidirectional", args.bidirectional),
                                   ("--download", args.download)) if on]
    return shlex.join(argv)


def main(args) -> int:
    """Run `rnnbench tta`: every impl × unroll × seed, saved after each run; table to stdout."""
    from bench import results, storage
    from bench.impls.tfsetup import import_tensorflow
    from bench.measure.env import apply_threads, collect_env

    budget = parse_budget(args.budget or DEFAULT_BUDGET[args.task])
    if args.out is not None:
        storage.make_run_dir(args.out, "", dry_run=True)  # fail before TensorFlow loads
    if args.device == "gpu":
        import_tensorflow()  # before the GPU check below lists the devices
    pairs = _pairs(args.impl, args.unroll, args.device)
    runnable = [p for p in pairs if p[2] is None]
    if not runnable:
        raise UserError(f"no implementation can run on {args.device} here: "
                        + "; ".join(str(p[2]) for p in pairs))
    base = TTASettings(task=args.task, impl=runnable[0][0], unroll=runnable[0][1],
                       device=args.device, hidden_size=args.hidden, num_layers=args.layers,
                       bidirectional=args.bidirectional, target=args.target, budget=budget,
                       optimizer=args.optimizer, lr=args.lr, batch=args.batch, clip=args.clip,
                       eval_every=args.eval_every).validate()
    import_tensorflow()
    if args.device == "gpu":
        from bench.impls.devices import require_device

        require_device("gpu")
    mnist = mnist_data.load_mnist(args.data, download_ok=args.download)
    data = mnist_data.task_data(mnist, args.task)
    info = mnist.describe()
    if args.batch > info["n_train"]:
        raise UserError(f"--batch {args.batch}: larger than the {info['n_train']} training "
                        "images")

    warning = chance_warning({**info, "target": args.target})
    if warning:
        print(f"rnnbench tta: warning: {warning}", file=sys.stderr)
    apply_threads(args.threads)
    run_id = results.new_run_id(f"tta-{args.task}")
    run_dir = storage.make_run_dir(args.out, run_id)
    planned = sum(1 if skip is not None else args.seeds for _, _, skip in pairs)
    doc = results.empty_document(run_id=run_id, env=collect_env(args.threads),
                                 command=_command(args, budget), planned=planned)
    say = (lambda _line: None) if args.quiet else (
        lambda line: print(line, file=sys.stderr, flush=True))
    say(f"rnnbench tta: {args.task} on {info['data_source']} ({info['n_train']} train / "
        f"{info['n_heldout']} held out), target {args.target:g}, budget {budget}, "
        f"{len(runnable)} impl(s) x {args.seeds} seed(s) -> {run_dir}")
    saved = 0
    rows: list[TTARow] = []  # typed until saved
    for impl, unroll, skip in pairs:
        for seed in range(args.seeds):
            settings = replace(base, impl=impl, unroll=unroll, seed=seed)
            if skip is not None:
                row = failed_row(settings, "skipped", skip, info)
            else:
                try:
                    row = run_tta(settings, data, data_info=info, progress=say)
                except (KeyboardInterrupt, UserError):
                    raise
                except Exception as exc:  # an impl that fails (OOM, missing kernel) is a row
                    row = failed_row(settings, "error", one_line(exc), info)
                    say(f"{settings.id}: error: {row.reason}")
            rows.append(row)
            results.mark_finished(doc, len(rows), complete=False)
            saved = _save(run_dir, doc, rows, saved)
            if skip is not None:
                break  # one skipped row per impl is enough
    results.mark_finished(doc, len(rows), complete=True)
    _save(run_dir, doc, rows, saved)
    print(format_summary(summarize(rows), [r for r in rows if r.status != "ok"]))
    write_report(run_dir, "tta")
    print(f"results: {run_dir}")
    return 1 if any(r.status == "error" for r in rows) else 0
