"""The `rnnbench` command line: one subcommand per module, TensorFlow imported only on demand."""

from __future__ import annotations

import argparse
import importlib
import os
import sys

from bench import __version__
from bench.args import ArgumentsError, OneLineParser
from bench.errors import UserError

# (subcommand, module, one-line help). Each module defines add_arguments(parser) and
# main(args) -> int, and imports TensorFlow inside main only when the command needs it.
COMMANDS = (
    ("list", "bench.impls.listing", "list implementations, their devices and unroll modes"),
    ("verify", "bench.impls.verify", "check every implementation against the NumPy reference"),
    ("run", "bench.measure.run.command",
     "run a step-time benchmark preset and write a report folder"),
    ("ab", "bench.measure.ab.command",
     "interleaved A/B step time of two interpreters/sources/envs (exit 1 on regression)"),
    ("tta", "bench.tta.command", "time-to-accuracy on sequential MNIST"),
    ("report", "bench.analysis.report", "write report.md and figures for a run folder"),
    ("compare", "bench.analysis.compare", "compare two or more runs side by side"),
    ("check", "bench.analysis.check",
     "regression check: current run vs a baseline (exit 1 on regression)"),
    ("history", "bench.history.command",
     "history store: add run/tta/ab folders, list series, find change points"),
    ("publish", "bench.history.publish",
     "write a static history site (index, a page per case, machine matrix)"),
)


def build_parser() -> argparse.ArgumentParser:
    """The argument parser with every subcommand registered."""
    parser = OneLineParser(
        prog="rnnbench",
        description="Benchmark TensorFlow RNN implementations: speed, equivalence, "
                    "time-to-accuracy, cross-machine comparison and regression checks.",
    )
    parser.add_argument("--version", action="version", version=f"rnnbench {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name, module_name, help_text in COMMANDS:
        module = importlib.import_module(module_name)
        doc = (module.__doc__ or help_text).strip().splitlines()[0]
        cmd = sub.add_parser(name, help=help_text, description=doc)
        module.add_arguments(cmd)
        cmd.set_defaults(_module=module)
    return parser


# Options whose value may start with "-" (a mistyped "-5%" or "-5s"): argparse would take the
# value for an option and say "expected one argument"; attached with "=", the option's own
# check names what is wrong with it.
SIGNED_VALUE_OPTIONS = ("--threshold", "--budget")


def attach_signed_values(argv: list[str]) -> list[str]:
    """`--threshold -5%` -> `--threshold=-5%` (only for SIGNED_VALUE_OPTIONS and values that
    look like a signed number)."""
    out, i = [], 0
    while i < len(argv):
        word = argv[i]
        nxt = argv[i + 1] if i + 1 < len(argv) else ""
        if word in SIGNED_VALUE_OPTIONS and len(nxt) > 1 and nxt[0] == "-" and (
                nxt[1].isdigit() or nxt[1] == "."):
            out.append(f"{word}={nxt}")
            i += 2
            continue
        out.append(word)
        i += 1
    return out


def _quiet_tensorflow() -> None:
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


def main(argv: list[str] | None = None) -> int:
    """Entry point of the console script; returns the exit code."""
    _quiet_tensorflow()
    parser = build_parser()
    try:
        args = parser.parse_args(attach_signed_values(sys.argv[1:] if argv is None else argv))
    except ArgumentsError as exc:  # a usage error: one line naming the flag, exit 2
        print(f"{exc.prog}: error: {exc}", file=sys.stderr)
        return exc.exit_code
    if args.command is None:
        parser.print_help()
        return 2
    try:
        return int(args._module.main(args) or 0)
    except UserError as exc:
        print(f"rnnbench {args.command}: error: {exc}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        print(f"rnnbench {args.command}: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        return 0


if __name__ == "__main__":
    raise SystemExit(main())
