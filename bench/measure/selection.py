"""Which cases a run measures: a preset after the filters (shared by `run` and the suite)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace

from bench import cases as cases_mod
from bench.args import split_values
from bench.errors import UserError


def selected_cases(preset: str, *, impl=None, unroll=None, phase=None, device=None,
                   keyword: str | None = None, xla: bool = False, dtype=None,
                   lengths=None) -> list[cases_mod.Case]:
    """The preset's cases after the filters; a UserError naming the reason when none is left."""
    filters = {"impl": split_values(impl), "unroll": split_values(unroll),
               "phase": split_values(phase), "device": split_values(device),
               "dtype": split_values(dtype), "lengths": split_values(lengths),
               "keyword": keyword}
    chosen = cases_mod.select(cases_mod.preset(preset), **filters)
    if not chosen:
        reason = cases_mod.explain_empty(preset, **filters)
        raise UserError(f"no case of preset {preset!r} matches the filters: {reason}")
    if xla:
        chosen = [replace(case, xla=True) for case in chosen]
    return chosen


def nothing_runs(chosen: Sequence[cases_mod.Case]) -> str | None:
    """Why none of `chosen` can run on this machine (each would be skipped), else None.

    Asks TensorFlow which GPUs it sees: call after bench.impls.tfsetup.import_tensorflow.
    """
    from bench.impls.devices import case_skip_reason, visible_gpus
    from bench.registry import get_spec

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
