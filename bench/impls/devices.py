"""Which devices TensorFlow sees, and why a case cannot run here (imports TensorFlow lazily)."""

from __future__ import annotations

import functools

from bench.errors import UserError
from bench.registry import ImplSpec


@functools.cache
def visible_gpus() -> tuple[str, ...]:
    """Names of the GPUs TensorFlow can use (the CPU wheel claims CUDA support but lists none)."""
    import tensorflow as tf

    return tuple(d.name for d in tf.config.list_physical_devices("GPU"))


def skip_reason(spec: ImplSpec, device: str) -> str | None:
    """Why `spec` cannot run on `device` on this machine, or None when it can."""
    if device not in spec.devices:
        if spec.gpu_only:
            return f"{spec.name} needs a GPU (cuDNN); it has no CPU kernel"
        return f"{spec.name} does not run on {device}"
    if device == "gpu" and not visible_gpus():
        return f"{spec.name} on gpu needs a GPU; none visible to TensorFlow"
    return None


def case_skip_reason(case) -> str | None:
    """Why a bench.cases.Case cannot run here: its device, then its dtype or lengths; or None."""
    from bench.registry import get_spec

    return skip_reason(get_spec(case.impl), case.device) or case.limitation()


def require_device(device: str) -> None:
    """Raise a one-line UserError when `device` is gpu and TensorFlow sees none."""
    if device == "gpu" and not visible_gpus():
        raise UserError("--device gpu: TensorFlow sees no GPU on this machine "
                        "(check drivers, CUDA libraries and `pip install rnnbench[gpu]`)")


def tf_device_name(device: str) -> str:
    """The TensorFlow device string for a case's device."""
    return "/GPU:0" if device == "gpu" else "/CPU:0"
