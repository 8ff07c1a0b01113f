"""Shared command-line arguments of every command: one grammar, numbers checked by the parser.

Name lists (`--impl` and the other filters) are repeatable and comma-separated alike:
`--impl a,b`, `--impl a b` and `--impl a --impl b` all give [a, b]. Numbers are argparse types,
so a bad value is a one-line usage error naming the flag (exit 2) before any work starts.
No TensorFlow here.
"""

from __future__ import annotations

import argparse
import math
import re
from collections.abc import Sequence

from bench.errors import UserError


class ArgumentsError(UserError):
    """A command line the parser refused; `prog` is the (sub)command that refused it."""

    def __init__(self, prog: str, message: str):
        super().__init__(message)
        self.prog = prog


class OneLineParser(argparse.ArgumentParser):
    """An ArgumentParser whose errors are one line (ArgumentsError) instead of usage + exit."""

    def error(self, message: str):
        """Raise ArgumentsError; `rnnbench` prints it as `PROG: error: MESSAGE`, exit 2."""
        raise ArgumentsError(self.prog, f"{message} (see {self.prog} --help)")


def split_values(values: Sequence[str] | None) -> list[str] | None:
    """Flatten repeatable, comma-separated option values; None when nothing was given."""
    out = [v.strip() for value in values or () for v in str(value).split(",") if v.strip()]
    return out or None


class NameList(argparse.Action):
    """`--flag a,b c --flag d` → [a, b, c, d]: repeats, spaces and commas all add names."""

    def __init__(self, option_strings, dest, nargs="+", **kwargs):
        super().__init__(option_strings, dest, nargs=nargs, **kwargs)

    def __call__(self, parser, namespace, values, option_string=None):
        """Add this occurrence's names to the ones already given (not to the default)."""
        given = getattr(namespace, self.dest, None)
        given = [] if given is None or given is self.default else list(given)
        setattr(namespace, self.dest, given + (split_values(values) or []))


def add_names(parser, *flags: str, help: str, default=None, metavar: str = "NAME") -> None:
    """A name-list flag (NameList grammar; the help says so)."""
    parser.add_argument(*flags, action=NameList, default=default, metavar=metavar,
                        help=f"{help} (repeatable, or comma-separated)")


# ---------------------------------------------------------------- numbers (argparse types)


def _number(text: str, kind=float) -> float:
    try:
        value = kind(text)
    except (TypeError, ValueError):
        what = "an integer" if kind is int else "a number"
        raise argparse.ArgumentTypeError(f"{text!r} is not {what}") from None
    if not math.isfinite(value):
        raise argparse.ArgumentTypeError(f"{text!r} is not a finite number")
    return value


def positive_int(text: str) -> int:
    """An integer >= 1."""
    value = _number(text, int)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {value}")
    return value


def non_negative_int(text: str) -> int:
    """An integer >= 0."""
    value = _number(text, int)
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be 0 or more, got {value}")
    return value


def positive_float(text: str) -> float:
    """A finite number > 0."""
    value = _number(text)
    if value <= 0:
        raise argparse.ArgumentTypeError(f"must be positive, got {text}")
    return value


def non_negative_float(text: str) -> float:
    """A finite number >= 0."""
    value = _number(text)
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be 0 or more, got {text}")
    return value


def fraction(text: str) -> float:
    """A finite number in (0, 1]: a share, or an accuracy to reach."""
    value = _number(text)
    if not 0.0 < value <= 1.0:
        raise argparse.ArgumentTypeError(f"must be in (0, 1], got {text}")
    return value


def threshold(text: str) -> float:
    """`10%` or `0.10` → 0.10: the slowdown (or change) that counts."""
    match = re.fullmatch(r"\s*([+-]?[0-9]*\.?[0-9]+)\s*(%?)\s*", str(text))
    if not match:
        raise argparse.ArgumentTypeError(f"{text!r} is not a threshold; write 10% or 0.10")
    value = float(match.group(1)) / (100.0 if match.group(2) else 1.0)
    if not match.group(2) and value >= 1.0:
        raise argparse.ArgumentTypeError(f"{text!r} is ambiguous; write {text}% or a fraction "
                                         "below 1 such as 0.10")
    if value <= 0:
        raise argparse.ArgumentTypeError(f"{text!r}: the threshold must be above 0, e.g. 10%")
    return value


def alpha(text: str) -> float:
    """A significance level strictly between 0 and 1."""
    value = _number(text)
    if not 0.0 < value < 1.0:
        raise argparse.ArgumentTypeError("alpha must be between 0 and 1, e.g. 0.05")
    return value


def check_setting(flag: str, value, parse) -> None:
    """Hold a setting given in code to its flag's argparse type: UserError `FLAG: why` if not."""
    if isinstance(value, (str, bool)):  # "1e-3" or True would pass the text check below
        raise UserError(f"{flag}: {value!r} is not a number")
    try:
        parse(str(value))
    except argparse.ArgumentTypeError as exc:
        raise UserError(f"{flag}: {exc}") from None


# ---------------------------------------------------------------- shared flags


def add_threads(parser, help: str = "TensorFlow intra-op threads (default: TensorFlow's "
                                    "choice); recorded in env") -> None:
    """`--threads N` (N >= 1)."""
    parser.add_argument("--threads", type=positive_int, default=None, metavar="N", help=help)


def add_threshold(parser, default: float, help: str) -> None:
    """`--threshold PCT` (10% or 0.10)."""
    parser.add_argument("--threshold", type=threshold, default=default, metavar="PCT",
                        help=help)


def add_alpha(parser, default: float, help: str) -> None:
    """`--alpha P` (0 < P < 1)."""
    parser.add_argument("--alpha", type=alpha, default=default, metavar="P", help=help)


def add_out(parser, help: str, *, metavar: str = "DIR", required: bool = False) -> None:
    """`--out DIR`: where the command writes (its help says what)."""
    parser.add_argument("--out", metavar=metavar, default=None, required=required, help=help)
