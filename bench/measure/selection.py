"""Which cases a run measures: a preset after the filters (shared by `run` and the suite)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace

from bench import cases as cases_mod


def split_values(values: Sequence[str] | None) -> list[str] | None:
    """Flatten repeatable, comma-separated option values; None when nothing was given."""
    out = [v.strip() for value in values or () for v in value.split(",") if v.strip()]
    return out or None


def selected_cases(preset: str, *, impl=None, unroll=None, phase=None, device=None,
                   keyword: str | None = None, xla: bool = False) -> list[cases_mod.Case]:
    """The preset's cases after the filters (UserError for unknown names)."""
    chosen = cases_mod.select(cases_mod.preset(preset), impl=split_values(impl),
                              unroll=split_values(unroll), phase=split_values(phase),
                              device=split_values(device), keyword=keyword)
    if xla:
        chosen = [replace(case, xla=True) for case in chosen]
    return chosen
