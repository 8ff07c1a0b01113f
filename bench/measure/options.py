"""The `run` options, declared once: they feed argparse (`rnnbench run`) and pytest (the suite).

Each option has its `rnnbench run` flag and the suite's flag (they differ only for `-k`, which
pytest owns: the suite calls it `--match`). `suite_options` turns parsed `run` flags into the
suite's command line by walking the same table; the option names (`dest`) are the same on both.
"""

from __future__ import annotations

import argparse
from dataclasses import dataclass, field

from bench import args as shared
from bench import cases as cases_mod

DEFAULT_PRESET = "smoke"
_PRESETS = ", ".join(f"{p.name} ({p.help})" for p in cases_mod.PRESETS.values())


@dataclass(frozen=True)
class Option:
    """One option of both the `run` command and the step-time suite."""

    dest: str
    run_flags: tuple[str, ...]
    suite_flag: str
    help: str
    kwargs: dict = field(default_factory=dict)
    listed: bool = False  # a name list (bench.args grammar: repeatable and comma-separated)

    def argparse_kwargs(self, pytest: bool = False) -> dict:
        """Keyword arguments for argparse's add_argument (or pytest's addoption, where a name
        list is repeated once per name: `suite_options` writes it so)."""
        extra = {}
        if self.listed:
            extra = {"action": "append" if pytest else shared.NameList, "metavar": "NAME"}
        return {"dest": self.dest, "help": self.help, **extra, **self.kwargs}


def _filter(dim: cases_mod.Dimension) -> Option:
    return Option(dim.name, (f"--{dim.name}",), f"--{dim.name}",
                  f"keep only this {dim.help or dim.filter} (repeatable, or comma-separated)",
                  listed=True)


# In the order `suite_options` writes them (and `results.json` records the command).
def build_options() -> tuple[Option, ...]:
    """The options table: one filter per filtering case dimension (bench.cases.FILTERS)."""
    return (
        Option("preset", ("--preset",), "--preset",
               f"named case list (default: {DEFAULT_PRESET}); one of: {_PRESETS}",
               {"default": DEFAULT_PRESET}),
        *(_filter(dim) for dim in cases_mod.FILTERS),
        Option("match", ("-k",), "--match",
               "keep cases whose id contains TEXT or matches it as a glob", {"metavar": "TEXT"}),
        Option("xla", ("--xla",), "--xla",
               "compile every case with XLA (tf.function(jit_compile=True))",
               {"action": "store_true"}),
        Option("no_equivalence", ("--no-equivalence",), "--no-equivalence",
               "skip the check against the NumPy reference that runs before each impl/unroll is "
               "timed (a few seconds per preset)", {"action": "store_true"}),
        Option("threads", ("--threads",), "--threads",
               "TensorFlow intra-op threads (default: TF's choice); recorded in env",
               {"type": shared.positive_int, "metavar": "N"}),
        Option("rounds", ("--rounds",), "--rounds",
               "fixed timed rounds per case (default: the preset's time budget)",
               {"type": shared.positive_int, "metavar": "N"}),
        Option("min_rounds", ("--min-rounds",), "--min-rounds",
               "at least N timed rounds per case (smoke default: 10)",
               {"type": shared.positive_int, "metavar": "N"}),
        Option("max_time", ("--max-time",), "--max-time",
               "time budget per case for the timed rounds (smoke: 0.5 s)",
               {"type": shared.positive_float, "metavar": "SEC"}),
        Option("warmup", ("--warmup",), "--warmup",
               "untimed calls after the first, the round-planning call included, so at least 1 "
               "(default: the preset's, 2 for most)",
               {"type": shared.non_negative_int, "metavar": "N"}),
        Option("warmup_time", ("--warmup-time",), "--warmup-time",
               f"warm up for at least SEC seconds too (default: {cases_mod.WARMUP_S:g}; 0: the "
               "--warmup count alone)", {"type": shared.non_negative_float, "metavar": "SEC"}),
    )


OPTIONS = build_options()
# Options of the suite only (plain `pytest bench/measure/suites`).
SUITE_ONLY = (
    Option("rnnbench_out", (), "--rnnbench-out",
           "write a results folder (results.json/csv, env.json) here", {"metavar": "DIR"}),
    Option("overhead_case", (), "--overhead-case",
           "case id for test_harness_overhead (default: keras_lstm row-MNIST forward)",
           {"metavar": "ID"}),
)


def add_run_options(parser: argparse.ArgumentParser) -> None:
    """Register the shared options on the `run` subcommand's parser."""
    for opt in OPTIONS:
        parser.add_argument(*opt.run_flags, **opt.argparse_kwargs())


# The case-selection options, shared with `rnnbench ab` (same flags, same meaning).
SELECTION = ("preset", *(dim.name for dim in cases_mod.FILTERS), "match", "xla", "threads")


def add_selection_options(parser: argparse.ArgumentParser) -> None:
    """Register only the case-selection options (for commands that select cases like `run`)."""
    for opt in OPTIONS:
        if opt.dest in SELECTION:
            parser.add_argument(*opt.run_flags, **opt.argparse_kwargs())


def add_suite_options(parser) -> None:
    """Register the shared and suite-only options on pytest's parser (pytest_addoption)."""
    group = parser.getgroup("rnnbench", "rnnbench step-time cases")
    for opt in (*OPTIONS, *SUITE_ONLY):
        group.addoption(opt.suite_flag, **opt.argparse_kwargs(pytest=True))


# The options that narrow a preset (a run of a narrowed preset is named `-filtered`).
FILTERS = (*(opt.dest for opt in OPTIONS if opt.listed), "match")


def is_filtered(args: argparse.Namespace) -> bool:
    """True when any filter narrowed the preset."""
    return any(getattr(args, dest, None) for dest in FILTERS)


def suite_options(args: argparse.Namespace, *, run_flags: bool = False,
                  only: tuple[str, ...] | None = None) -> list[str]:
    """The suite's command-line options equivalent to the parsed `run` flags (`run_flags`:
    spelled as `rnnbench` takes them; `only`: these options alone)."""
    out: list[str] = []
    for opt in OPTIONS:
        if only is not None and opt.dest not in only:
            continue
        value = getattr(args, opt.dest, None)
        flag = opt.run_flags[0] if run_flags else opt.suite_flag
        if opt.listed:
            for item in shared.split_values(value) or ():
                out += [flag, item]
        elif opt.kwargs.get("action") == "store_true":
            out += [flag] if value else []
        elif value is not None:
            out += [flag, str(value)]
    return out


def selection_kwargs(get) -> dict:
    """Keyword arguments of `selected_cases` from an option getter (args or pytest config)."""
    return {**{dim.name: get(dim.name) for dim in cases_mod.FILTERS}, "keyword": get("match"),
            "xla": get("xla")}
