"""The roofline reference: matmuls timed in the run, per device and dtype, and each case's share.

The peak is searched for, not assumed: every size of SIZES is timed, a size's rate is its
median round (a sustained rate, not a lucky one) and the best size gives the measurement. The
run measures again as it goes (`Calibrator`) and keeps every measurement, so a drift shows; the
peak is the best of them, raised to any case that ran faster (bench.roofline).
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable, Iterable
from typing import Any

from bench import roofline as roof
from bench.cases import Case
from bench.errors import UserError, one_line
from bench.measure import timing
from bench.results import utc_now
from bench.rows import COMPILE_S, FLOPS, GFLOPS, MEDIAN_S, PCT_PEAK, SAMPLES_S

# Matrix sizes per device: from cache-resident to large enough for the BLAS / cuBLAS peak.
SIZES = {"cpu": (256, 512, 1024, 2048), "gpu": (2048, 4096, 8192)}
ROUNDS = 7
WARMUP = 2
# A size whose median call takes longer than this is the last one tried (larger ones are
# slower still, e.g. a dtype the CPU only emulates).
SLOW_CALL_S = 0.5
# While cases run, measure again at the first case boundary after this many seconds.
EVERY_S = 600.0
TF_DTYPES = {"fp32": "float32", "bf16": "bfloat16", "fp16": "float16"}

Kernel = Callable[[], Any]
KernelFactory = Callable[[str, int, str], Kernel]


def matmul_kernel(device: str, n: int, dtype: str = "fp32") -> Kernel:
    """A compiled n×n matmul of two variables in `dtype` on `device`, returning a host scalar."""
    if dtype not in TF_DTYPES:
        raise UserError(f"no matmul kernel for dtype {dtype!r}; known: {', '.join(TF_DTYPES)}")
    import tensorflow as tf

    from bench.impls.devices import tf_device_name

    name = tf_device_name(device)
    kind = getattr(tf, TF_DTYPES[dtype])
    with tf.device(name):
        a = tf.Variable(tf.cast(tf.random.stateless_normal([n, n], seed=[1, 2]), kind),
                        name="calib_a")
        b = tf.Variable(tf.cast(tf.random.stateless_normal([n, n], seed=[3, 4]), kind),
                        name="calib_b")

    @tf.function
    def step():
        with tf.device(name):
            return tf.reduce_sum(tf.cast(tf.matmul(a, b), tf.float32))

    return lambda: float(step().numpy())


def time_size(fn: Kernel, n: int, *, rounds: int = ROUNDS, warmup: int = WARMUP,
              timer: timing.Timer = time.perf_counter) -> dict:
    """One size: first call (trace) apart, then `rounds` rounds; the rate is the median's."""
    compile_s, _ = timing.time_call(fn, timer)
    samples = timing.measure(fn, rounds=rounds, warmup=warmup, timer=timer)
    median = statistics.median(samples)
    if median <= 0:
        raise ValueError(f"the clock did not advance over a {n}×{n} matmul")
    return {"n": n, SAMPLES_S: samples, MEDIAN_S: median, COMPILE_S: compile_s,
            "matmul_gflops": 2.0 * n ** 3 / median / 1e9}


def calibrate(device: str = "cpu", dtype: str = "fp32", *, sizes: Iterable[int] | None = None,
              rounds: int = ROUNDS, warmup: int = WARMUP,
              timer: timing.Timer = time.perf_counter,
              make_kernel: KernelFactory = matmul_kernel) -> dict:
    """Time the matmul at each size; the best size's median rate is the measurement's rate.

    A size that raises (no kernel for the dtype, out of memory) is recorded with its error and
    ends the search; the measurement has an error only when no size could be timed.
    """
    done: list[dict] = []
    for n in SIZES.get(device, SIZES["cpu"]) if sizes is None else sizes:
        try:
            done.append(time_size(make_kernel(device, n, dtype), n, rounds=rounds,
                                  warmup=warmup, timer=timer))
        except Exception as exc:  # a dtype or size that cannot run here is data, not a crash
            done.append({"n": n, "error": one_line(exc)})
            break
        if done[-1][MEDIAN_S] > SLOW_CALL_S:
            break
    timed = [d for d in done if "error" not in d]
    best = max(timed, key=lambda d: d["matmul_gflops"]) if timed else None
    return {"device": device, "dtype": dtype,
            "matmul_gflops": best["matmul_gflops"] if best else None,
            "matmul_n": best["n"] if best else None,
            "error": None if best else done[-1]["error"] if done else "no matrix size given",
            "sizes": done}


class Calibrator:
    """Calibrates every (device, dtype) of a run: at its start, every EVERY_S, at its end."""

    def __init__(self, pairs: Iterable[tuple[str, str]], *, every_s: float = EVERY_S,
                 clock: timing.Timer = time.perf_counter, **calibrate_kwargs: Any):
        self.pairs = list(dict.fromkeys(pairs))
        self.every_s, self.clock = every_s, clock
        self.kwargs = calibrate_kwargs
        self.calibration: dict = {}
        self.started: float | None = None
        self.last: float | None = None

    def measure(self, label: str, cases_done: int = 0) -> dict:
        """Calibrate every pair now, keep the measurements; return the calibration document."""
        now = self.clock()
        self.started = now if self.started is None else self.started
        for device, dtype in self.pairs:
            result = calibrate(device, dtype, **self.kwargs)
            result.update(label=label, utc=utc_now(), elapsed_s=now - self.started,
                          cases_done=cases_done)
            roof.record_measurement(self.calibration, device, dtype, result)
        self.last = self.clock()
        return self.calibration

    def due(self) -> bool:
        """True when the last calibration is EVERY_S old (measure again between cases)."""
        return bool(self.pairs) and self.last is not None and \
            self.clock() - self.last >= self.every_s


def describe(calibration: dict) -> str:
    """One line per run: `cpu fp32 250.3 GFLOP/s (n=2048, spread 4 %); cpu bf16 failed: ...`."""
    parts = []
    for peak in roof.peak_table(calibration, ()):
        name = f"{peak.device} {peak.dtype}"
        if peak.calibrated is None:
            parts.append(f"{name} failed: {peak.error or 'not measured'}")
            continue
        drift = f", spread {peak.spread:.0%}" if peak.spread is not None else ""
        parts.append(f"{name} {peak.calibrated:.1f} GFLOP/s (n={peak.n}{drift})")
    return "; ".join(parts) or "none"


def roofline(case: Case, median_s: float | None, calibration: dict) -> dict:
    """`flops` of one call (Case.flops), achieved `gflops` and `pct_peak` (≤ 100) against the
    peak of the case's own device and dtype."""
    flops = case.flops()
    gflops = flops / median_s / 1e9 if median_s else None
    peak = roof.used_peak(calibration, case.device, case.dtype)
    return {FLOPS: flops, GFLOPS: gflops, PCT_PEAK: roof.pct_of_peak(gflops, peak)}
