"""Which cases a run measures: a preset after the filters (shared by `run`, `ab` and the suite),
and why the filters left none."""

from __future__ import annotations

import fnmatch
from collections.abc import Iterable, Sequence
from dataclasses import replace

from bench import cases as cases_mod
from bench.args import split_values
from bench.cases import Case
from bench.errors import UserError
from bench.registry import get_spec


def selected_cases(preset: str, *, keyword: str | None = None, xla: bool = False,
                   **filters) -> list[cases_mod.Case]:
    """The preset's cases after the filters (by dimension name: impl, unroll, phase, ...); a
    UserError naming the reason when none is left."""
    filters = {name: split_values(values) for name, values in filters.items()}
    filters["keyword"] = keyword
    chosen = select(cases_mod.preset(preset), **filters)
    if not chosen:
        reason = explain_empty(preset, **filters)
        raise UserError(f"no case of preset {preset!r} matches the filters: {reason}")
    if xla:
        chosen = [replace(case, xla=True) for case in chosen]
    return chosen


def nothing_runs(chosen: Sequence[cases_mod.Case]) -> str | None:
    """Why none of `chosen` can run on this machine (each would be skipped), else None.

    Asks TensorFlow which GPUs it sees: call after bench.impls.tfsetup.import_tensorflow.
    """
    from bench.impls.devices import case_skip_reason, visible_gpus

    reasons = [case_skip_reason(c) for c in chosen]
    if not reasons or any(r is None for r in reasons):
        return None
    n = len(chosen)
    if all(c.device == "gpu" for c in chosen) and not visible_gpus():
        return f"all {n} cases need a GPU; TensorFlow sees none"
    if all(get_spec(c.impl).gpu_only for c in chosen):
        return (f"all {n} cases need a GPU: {', '.join(dict.fromkeys(c.impl for c in chosen))} "
                "has no CPU kernel")
    return f"all {n} cases would be skipped: " + "; ".join(dict.fromkeys(reasons))


def _check_values(kind: str, values: Sequence[str] | None, valid: Iterable[str]) -> None:
    valid = tuple(valid)
    for value in values or ():
        if value not in valid:
            raise UserError(f"unknown {kind} {value!r}; valid: {', '.join(valid)}")


def select(cases: Sequence[Case], *, keyword: str | None = None,
           **filters: Sequence[str] | None) -> list[Case]:
    """Filter cases: each filter (a dimension of FILTERS, by name) is a list of accepted
    values, `keyword` a substring or glob of the id."""
    by_name = {d.name: d for d in cases_mod.FILTERS}
    for name, values in filters.items():
        if name not in by_name:
            raise TypeError(f"select() got an unexpected filter {name!r}")
        _check_values(by_name[name].filter, values, by_name[name].values)
    out = []
    for case in cases:
        if any(values and getattr(case, name) not in values for name, values in filters.items()):
            continue
        if keyword and not (keyword in case.id or fnmatch.fnmatch(case.id, keyword)):
            continue
        out.append(case)
    return out


def explain_empty(preset_name: str, *, keyword: str | None = None,
                  **filters: Sequence[str] | None) -> str:
    """Why the filters leave no case of the preset: the first filter that empties it, and why.

    Filters are applied one at a time (impl, device, unroll, phase, dtype, lengths, keyword);
    the reason names the filter that removed the last case and what the cases left before it
    offered instead.
    """
    left = cases_mod.preset(preset_name)
    first = ("impl", "device")  # what the other filters' reasons are explained against
    order = (*first, *(d.name for d in cases_mod.FILTERS if d.name not in first))
    for name in order:
        values = filters.get(name)
        if not values:
            continue
        kept = select(left, **{name: values})
        if not kept:
            return _why_none(name, values, left, preset_name, filters)
        left = kept
    if keyword:
        return f"no case id contains or matches -k {keyword!r}"
    return "the filters keep no case"


def _why_none(name: str, values: Sequence[str], left: Sequence[Case], preset_name: str,
              filters: dict) -> str:
    offered = list(dict.fromkeys(getattr(case, name) for case in left))
    wanted = ", ".join(values)
    if name == "unroll":
        per_impl = {}
        for case in left:
            per_impl.setdefault(case.impl, get_spec(case.impl).unrolls)
        return "; ".join(f"{impl} supports only unroll {', '.join(modes)}"
                         for impl, modes in per_impl.items())
    if name == "device" and filters.get("impl"):
        cannot = [n for n in filters["impl"] if not set(values) & set(get_spec(n).devices)]
        if cannot:
            return "; ".join(f"{n} runs only on {', '.join(get_spec(n).devices)}"
                             for n in cannot)
    others = [p for p in cases_mod.PRESETS if p != preset_name
              and select(cases_mod.preset(p), **{name: values, "impl": filters.get("impl")})]
    hint = f"; use --preset {others[0]}" if others else ""
    what = "implementation cases" if name == "impl" else "cases"
    return (f"the {preset_name} preset has no {wanted} {what} "
            f"(it has {', '.join(map(str, offered))}){hint}")
