"""The kernel a built step ran (read from its traced graph) and the check of an impl's promise."""

from __future__ import annotations

from bench.analysis.kernels import classify_kernel, kernel_problem
from bench.registry import get_spec


class KernelPromiseError(RuntimeError):
    """An implementation's traced graph runs another kernel than the one it promises."""


def step_kernel(step) -> str:
    """The kernel name of a built step (bench.measure.phases.Step) that has been called once."""
    from bench.impls.kernels import traced_op_types

    return classify_kernel(traced_op_types(step.function))


def check_promise(impl: str, kernel: str | None) -> None:
    """Raise KernelPromiseError when `impl` promises a kernel (e.g. cuDNN) that `kernel` is not."""
    problem = kernel_problem(get_spec(impl).kernel_promise, kernel)
    if problem is not None:
        raise KernelPromiseError(problem)
