"""Environment fingerprint of a run (versions, CPU, GPU, threads, git) and the thread setting."""

from __future__ import annotations

import os
import platform
import re
import socket
import subprocess
from collections.abc import Mapping
from importlib import metadata
from pathlib import Path

from bench import __version__
from bench.errors import UserError
from bench.impls.tfsetup import startup_log

_REPO_HINT = Path(__file__).resolve().parent


def _dist_version(*names: str) -> str | None:
    for name in names:
        try:
            return metadata.version(name)
        except metadata.PackageNotFoundError:
            continue
    return None


def cpu_model(cpuinfo: str | os.PathLike = "/proc/cpuinfo") -> str | None:
    """The CPU model name from /proc/cpuinfo, else platform.processor(), else None."""
    try:
        for line in Path(cpuinfo).read_text(encoding="utf-8", errors="replace").splitlines():
            key, _, value = line.partition(":")
            if key.strip() in ("model name", "Model", "cpu model") and value.strip():
                return value.strip()
    except OSError:
        pass
    return platform.processor() or None


# Instruction-set extensions that decide matmul and RNN speed, as /proc/cpuinfo names them
# (x86 `flags`, aarch64 `Features`).
CPU_FEATURES = frozenset({
    "avx", "avx2", "fma", "f16c", "avx_vnni", "avx512f", "avx512bw", "avx512_vnni",
    "avx512_bf16", "avx512_fp16", "amx_tile", "amx_bf16", "amx_int8", "amx_fp16",
    "asimd", "asimdhp", "sve", "sve2", "svebf16", "bf16", "i8mm"})


def cpu_features(cpuinfo: str | os.PathLike = "/proc/cpuinfo") -> list[str] | None:
    """The CPU_FEATURES the first core lists in /proc/cpuinfo, sorted; None when unknown."""
    try:
        text = Path(cpuinfo).read_text(encoding="utf-8", errors="replace")
    except OSError:
        return None
    for line in text.splitlines():
        key, sep, value = line.partition(":")
        if sep and key.strip() in ("flags", "Features"):
            return sorted(set(value.split()) & CPU_FEATURES)
    return None


def _run(cmd: list[str], cwd: str | os.PathLike | None = None) -> str | None:
    try:
        out = subprocess.run(cmd, cwd=cwd, capture_output=True, text=True, timeout=10,
                             check=True)
    except (OSError, subprocess.SubprocessError):
        return None
    return out.stdout.strip()


def git_commit(path: str | os.PathLike = _REPO_HINT) -> str | None:
    """The HEAD commit of the git repository containing `path`, or None if not in one."""
    return _run(["git", "rev-parse", "HEAD"], cwd=path) or None


def git_dirty(path: str | os.PathLike = _REPO_HINT) -> bool | None:
    """True when the working tree at `path` has uncommitted changes; None outside a repo."""
    out = _run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=path)
    return None if out is None else bool(out)


def nvidia_smi_gpus() -> list[dict]:
    """GPUs reported by nvidia-smi (name, memory, driver); [] if it is absent or fails."""
    out = _run(["nvidia-smi", "--query-gpu=name,memory.total,driver_version",
                "--format=csv,noheader"])
    gpus = []
    for line in (out or "").splitlines():
        parts = [p.strip() for p in line.split(",")]
        if len(parts) == 3:
            gpus.append({"name": parts[0], "memory": parts[1], "driver": parts[2]})
    return gpus


def tf_gpus() -> list[dict]:
    """GPUs TensorFlow can use, with memory and driver from nvidia-smi where it has them."""
    import tensorflow as tf

    smi = nvidia_smi_gpus()
    gpus = []
    for i, device in enumerate(tf.config.list_physical_devices("GPU")):
        try:
            details = tf.config.experimental.get_device_details(device)
        except (ValueError, RuntimeError):
            details = {}
        row = smi[i] if i < len(smi) else {}
        gpus.append({"name": details.get("device_name") or row.get("name") or device.name,
                     "memory": row.get("memory"), "driver": row.get("driver"),
                     "compute_capability": details.get("compute_capability")})
    return gpus


def load_average() -> list[float] | None:
    """The 1, 5 and 15 minute load averages (other work competing for the cores), if known."""
    try:
        return [round(x, 2) for x in os.getloadavg()]
    except (AttributeError, OSError):
        return None


def apply_threads(n: int | None) -> None:
    """Set TensorFlow's intra-op thread count to `n` (None: leave TF's default) before any op."""
    if n is None:
        return
    if n < 1:
        raise UserError(f"--threads must be a positive integer, got {n}")
    import tensorflow as tf

    if tf.config.threading.get_intra_op_parallelism_threads() == n:
        return
    try:
        tf.config.threading.set_intra_op_parallelism_threads(n)
    except RuntimeError:
        raise UserError(f"cannot set --threads {n}: TensorFlow already ran an op in this "
                        "process (threads must be set before the first op)") from None


def collect_env(threads: int | None = None) -> dict:
    """The environment fingerprint stored with every run (env.json); never fails on a missing GPU.

    `intra_op_threads` / `inter_op_threads` are TensorFlow's settings (0 = TF's default, all
    cores); `threads_requested` is what --threads asked for (None when not given).
    """
    import numpy as np
    import tensorflow as tf

    build = dict(tf.sysconfig.get_build_info())
    features = cpu_features()
    uname = platform.uname()
    return {
        "hostname": socket.gethostname(),
        "platform": platform.platform(),
        "os": f"{uname.system} {uname.release}",
        "machine": uname.machine,
        "python": platform.python_version(),
        "tensorflow": tf.__version__,
        "keras": _dist_version("keras"),
        "tf_keras": _dist_version("tf-keras", "tf_keras"),
        "numpy": np.__version__,
        "cuda": build.get("cuda_version"),
        "cudnn": build.get("cudnn_version"),
        "onednn": onednn_setting(reported=onednn_reported(), tf_version=tf.__version__,
                                 system=uname.system, machine=uname.machine,
                                 features=features),
        "cpu_model": cpu_model(),
        "cpu_features": features,
        "cpu_count": os.cpu_count(),
        "intra_op_threads": tf.config.threading.get_intra_op_parallelism_threads(),
        "inter_op_threads": tf.config.threading.get_inter_op_parallelism_threads(),
        "threads_requested": threads,
        "loadavg": load_average(),
        "gpus": tf_gpus(),
        "git_commit": git_commit(),
        "git_dirty": git_dirty(),
        "rnnbench": __version__,
        "tf_startup_log": startup_log(),
    }


ONEDNN_VAR = "TF_ENABLE_ONEDNN_OPTS"


def _flag(value: str | None) -> bool | None:
    """TensorFlow's reading of a boolean environment variable; None when unset or not one."""
    text = (value or "").strip().lower()
    return True if text in ("1", "true") else False if text in ("0", "false") else None


# On x86-64 Linux, TensorFlow >= 2.9 turns oneDNN on by default only on CPUs with these.
ONEDNN_DEFAULT_FEATURES = frozenset({"avx512_vnni", "avx512_bf16", "avx_vnni", "amx_tile",
                                     "amx_int8", "amx_bf16"})


def onednn_default(tf_version: str | None, system: str, machine: str,
                   features: list[str] | None) -> bool | None:
    """TensorFlow's default on x86-64 Linux from 2.9: on when the CPU has one of
    ONEDNN_DEFAULT_FEATURES, else off; None where the rule is not known."""
    match = re.match(r"(\d+)\.(\d+)", tf_version or "")
    if match is None or system != "Linux" or machine.lower() not in ("x86_64", "amd64"):
        return None
    if (int(match[1]), int(match[2])) < (2, 9):
        return False
    return None if features is None else bool(ONEDNN_DEFAULT_FEATURES & set(features))


def onednn_setting(environ: Mapping[str, str] | None = None, *, reported: bool | None = None,
                   tf_version: str | None = None, system: str = "", machine: str = "",
                   features: list[str] | None = None) -> str:
    """Whether oneDNN's CPU kernels were on and why, e.g. `on (default)`,
    `off (TF_ENABLE_ONEDNN_OPTS=0)`.

    `reported` is TensorFlow's own answer where it gives one; else the variable decides, else
    TensorFlow's default for this CPU (`unknown (default)` where that rule is not known).
    """
    environ = os.environ if environ is None else environ
    value = environ.get(ONEDNN_VAR)
    asked = _flag(value)
    state = reported if reported is not None else asked
    if state is None:
        state = onednn_default(tf_version, system, machine, features)
    word = "unknown" if state is None else "on" if state else "off"
    if value is None:
        return f"{word} (default)"
    return f"{word} ({ONEDNN_VAR}={value}{'' if asked is not None else ', not understood'})"


def onednn_reported() -> bool | None:
    """TensorFlow's answer to "are the oneDNN kernels on?" (a private API: None if it is gone)."""
    try:
        from tensorflow.python.util import _pywrap_util_port

        return bool(_pywrap_util_port.IsMklEnabled())
    except (ImportError, AttributeError):
        return None
