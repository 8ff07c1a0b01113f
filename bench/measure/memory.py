"""Peak memory of one case: TensorFlow's GPU allocator peak, or the growth of the peak RSS on CPU.

A probe starts just before the case is built and stops after its timed rounds, so it covers
the build, the trace and first call, and the timed calls (not the equivalence check before).

- gpu: `tf.config.experimental.reset_memory_stats` before, `get_memory_info(...)["peak"]` after:
  the most bytes TensorFlow's allocator had in use on the device, tensors that were already
  alive when the case started included.
- cpu: Linux keeps the peak resident set (VmHWM) of a process; writing 5 to
  /proc/self/clear_refs (Linux >= 4.0) resets it to the current RSS. Memory = VmHWM after the
  rounds - VmRSS after the reset. Where the reset is impossible (not Linux, no permission) the
  number is None and the method says why; a lifetime peak would not be this case's.

No TensorFlow at import: the GPU probe imports it when it starts.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from bench.errors import one_line

PROC_SELF = Path("/proc/self")
CPU_METHOD = ("cpu: peak RSS growth over build, trace and timed calls (includes TF allocator "
              "caching and traced graphs; memory the process already held is reused, not "
              "counted)")
GPU_METHOD = ("gpu: TF allocator peak on {device} over build, trace and timed calls (includes "
              "tensors already alive at the start)")
_KIB = 1024


@dataclass(frozen=True)
class Memory:
    """A case's peak memory in bytes (None: not recorded) and how it was measured (or why not)."""

    peak_bytes: int | None
    method: str | None

    def row_fields(self) -> dict:
        """The results-row fields (bench.rows.CaseRow) of this measurement."""
        return {"memory_peak_bytes": self.peak_bytes, "memory_method": self.method}


def read_status(path: str | os.PathLike) -> dict[str, int]:
    """The `kB` fields of a /proc/<pid>/status file (VmRSS, VmHWM, ...) in bytes."""
    out = {}
    for line in Path(path).read_text(encoding="ascii", errors="replace").splitlines():
        name, _, value = line.partition(":")
        parts = value.split()
        if len(parts) == 2 and parts[1] == "kB" and parts[0].isdigit():
            out[name.strip()] = int(parts[0]) * _KIB
    return out


class CpuProbe:
    """Growth of the process's peak resident set over a case (Linux /proc; paths injectable)."""

    def __init__(self, proc: str | os.PathLike = PROC_SELF):
        self.proc = Path(proc)
        self.before: int | None = None
        self.failure: str | None = None

    def start(self) -> CpuProbe:
        """Reset the kernel's peak-RSS mark and read the RSS it starts from."""
        try:
            (self.proc / "clear_refs").write_text("5")
            self.before = read_status(self.proc / "status")["VmRSS"]
        except (OSError, KeyError) as exc:
            self.failure = _why(exc)
        return self

    def stop(self) -> Memory:
        """Peak RSS since start minus the RSS at start (>= 0), or None with the reason."""
        if self.failure is None and self.before is not None:
            try:
                peak = read_status(self.proc / "status")["VmHWM"]
                return Memory(max(peak - self.before, 0), CPU_METHOD)
            except (OSError, KeyError) as exc:
                self.failure = _why(exc)
        return Memory(None, f"cpu: not recorded: cannot reset and read the peak resident set "
                            f"({self.failure or 'probe not started'})")


class GpuProbe:
    """TensorFlow's allocator peak on one GPU; `config` is `tf.config.experimental` or a fake."""

    def __init__(self, config=None, device: str = "GPU:0"):
        self.config, self.device = config, device
        self.failure: str | None = None

    def start(self) -> GpuProbe:
        """Reset the allocator's peak to the bytes now in use."""
        if self.config is None:
            import tensorflow as tf

            self.config = tf.config.experimental
        try:
            self.config.reset_memory_stats(self.device)
        except Exception as exc:  # TF raises its own error types here; recorded, never fatal
            self.failure = one_line(exc)
        return self

    def stop(self) -> Memory:
        """The allocator's peak bytes since start, or None with the reason."""
        if self.failure is None:
            try:
                peak = int(self.config.get_memory_info(self.device)["peak"])
                return Memory(max(peak, 0), GPU_METHOD.format(device=self.device))
            except Exception as exc:  # as above: the reason goes into the row
                self.failure = one_line(exc)
        return Memory(None, f"gpu: not recorded: TensorFlow gives no allocator statistics for "
                            f"{self.device} ({self.failure})")


def start_probe(device: str, *, proc: str | os.PathLike = PROC_SELF, gpu_config=None,
                gpu_device: str = "GPU:0"):
    """A started probe for a case on `device` ("gpu": allocator peak; else: CPU peak RSS)."""
    if device == "gpu":
        return GpuProbe(gpu_config, gpu_device).start()
    return CpuProbe(proc).start()


def _why(exc: BaseException) -> str:
    if isinstance(exc, KeyError):
        return f"no {exc.args[0]} line in the status file"
    if isinstance(exc, FileNotFoundError):
        return f"{exc.filename} does not exist (not Linux?)"
    return one_line(exc)
