"""Peak memory per case: /proc parsing and the CPU probe on fake files, the GPU probe and the
device selection with a fake allocator, and one real CPU measurement (> 0, no absolute size)."""

from __future__ import annotations

from pathlib import Path

import pytest

from bench.analysis.fmt import fmt_bytes
from bench.measure import memory

STATUS = """Name:\tpython3
Umask:\t0022
State:\tR (running)
VmPeak:\t 2000000 kB
VmHWM:\t{hwm:>8} kB
VmRSS:\t{rss:>8} kB
Threads:\t12
voluntary_ctxt_switches:\t15
"""


def _proc(tmp_path: Path, rss: int, hwm: int) -> Path:
    proc = tmp_path / "proc"
    proc.mkdir(exist_ok=True)
    (proc / "status").write_text(STATUS.format(rss=rss, hwm=hwm))
    return proc


def test_read_status_gives_bytes_of_the_kb_fields(tmp_path):
    fields = memory.read_status(_proc(tmp_path, rss=1000, hwm=3000) / "status")
    assert fields["VmRSS"] == 1000 * 1024
    assert fields["VmHWM"] == 3000 * 1024
    assert fields["VmPeak"] == 2000000 * 1024
    assert "Threads" not in fields  # not a kB field
    assert "State" not in fields


def test_cpu_probe_resets_the_peak_and_reports_its_growth(tmp_path):
    proc = _proc(tmp_path, rss=1000, hwm=9000)  # a lifetime peak from before the case
    probe = memory.CpuProbe(proc).start()
    assert (proc / "clear_refs").read_text() == "5"  # the reset the kernel understands
    _proc(tmp_path, rss=1200, hwm=5096)  # the case grew the peak to 5096 kB
    result = probe.stop()
    assert result.peak_bytes == (5096 - 1000) * 1024
    assert result.method == memory.CPU_METHOD
    assert result.row_fields() == {"memory_peak_bytes": (5096 - 1000) * 1024,
                                   "memory_method": memory.CPU_METHOD}


def test_cpu_probe_never_reports_negative_growth(tmp_path):
    proc = _proc(tmp_path, rss=2000, hwm=2000)
    probe = memory.CpuProbe(proc).start()
    _proc(tmp_path, rss=1500, hwm=1900)
    assert probe.stop().peak_bytes == 0


@pytest.mark.parametrize(("setup", "reason"), [
    ("no_proc", "does not exist (not Linux?)"),
    ("clear_refs_unwritable", "IsADirectoryError"),
    ("no_rss_line", "no VmRSS line in the status file"),
])
def test_cpu_probe_records_none_and_why_when_it_cannot_reset(tmp_path, setup, reason):
    proc = tmp_path / "proc"
    if setup != "no_proc":
        proc.mkdir()
        (proc / "status").write_text("Name:\tx\nVmHWM:\t 10 kB\n" if setup == "no_rss_line"
                                     else STATUS.format(rss=10, hwm=10))
    if setup == "clear_refs_unwritable":
        (proc / "clear_refs").mkdir()  # root ignores file modes; a directory refuses writes
    result = memory.CpuProbe(proc).start().stop()
    assert result.peak_bytes is None
    assert result.method.startswith("cpu: not recorded: cannot reset and read the peak "
                                    "resident set (")
    assert reason in result.method


class FakeAllocator:
    """tf.config.experimental's two memory calls, scripted."""

    def __init__(self, peak=None, fail_reset=None, fail_info=None):
        self.calls: list[tuple[str, str]] = []
        self.peak, self.fail_reset, self.fail_info = peak, fail_reset, fail_info

    def reset_memory_stats(self, device):
        self.calls.append(("reset", device))
        if self.fail_reset:
            raise self.fail_reset

    def get_memory_info(self, device):
        self.calls.append(("info", device))
        if self.fail_info:
            raise self.fail_info
        return {"current": 1024, "peak": self.peak}


def test_gpu_probe_reads_the_allocator_peak_after_a_reset():
    fake = FakeAllocator(peak=123_456_789)
    probe = memory.GpuProbe(fake).start()
    assert fake.calls == [("reset", "GPU:0")]
    result = probe.stop()
    assert fake.calls == [("reset", "GPU:0"), ("info", "GPU:0")]
    assert result.peak_bytes == 123_456_789
    assert result.method.startswith("gpu: TF allocator peak on GPU:0")


@pytest.mark.parametrize("fake", [
    FakeAllocator(fail_reset=ValueError("Device GPU:0 not found")),
    FakeAllocator(fail_info=RuntimeError("no allocator stats")),
    FakeAllocator(peak=None),
])
def test_gpu_probe_without_statistics_records_none_and_why(fake):
    result = memory.GpuProbe(fake).start().stop()
    assert result.peak_bytes is None
    assert result.method.startswith("gpu: not recorded: TensorFlow gives no allocator "
                                    "statistics for GPU:0 (")


def test_start_probe_picks_the_allocator_on_gpu_and_rss_on_cpu(tmp_path):
    fake = FakeAllocator(peak=4096)
    proc = _proc(tmp_path, rss=100, hwm=100)
    gpu = memory.start_probe("gpu", proc=proc, gpu_config=fake)
    assert isinstance(gpu, memory.GpuProbe)
    assert not (proc / "clear_refs").exists()
    assert gpu.stop().peak_bytes == 4096
    cpu = memory.start_probe("cpu", proc=proc, gpu_config=fake)
    assert isinstance(cpu, memory.CpuProbe)
    assert (proc / "clear_refs").read_text() == "5"
    assert fake.calls == [("reset", "GPU:0"), ("info", "GPU:0")]  # not touched for cpu


def test_real_cpu_probe_sees_a_large_allocation():
    """On this Linux machine the probe measures something (> 0); the size is not asserted."""
    probe = memory.CpuProbe().start()
    if probe.failure:
        pytest.skip(f"this machine cannot reset the peak RSS: {probe.failure}")
    block = bytearray(64 * 1024 * 1024)
    block[::4096] = b"x" * len(block[::4096])  # touch every page
    result = probe.stop()
    del block
    assert result.peak_bytes > 0
    assert result.method == memory.CPU_METHOD


@pytest.mark.parametrize(("value", "text"), [
    (0, "0 B"), (999, "999 B"), (1000, "0.977 KiB"), (12.3 * 2**20, "12.3 MiB"),
    (3 * 2**30, "3.00 GiB"), (5 * 2**40, "5.00 TiB"), (None, "–"), (float("nan"), "–"),
    (-1, "–"), (True, "–"), ("12", "–"),
])
def test_fmt_bytes(value, text):
    assert fmt_bytes(value) == text
