"""The roofline reference: a float32 matmul timed in the same run, and each case's share of it."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from bench.cases import Case
from bench.measure import timing
from bench.results import peak_gflops

# Matrix size per device: large enough to reach the BLAS / cuBLAS peak, small enough to be quick.
MATMUL_N = {"cpu": 1024, "gpu": 8192}
ROUNDS = 10
WARMUP = 2


def matmul_kernel(device: str, n: int) -> Callable[[], float]:
    """A compiled n×n float32 matmul of two variables on `device`, returning a host scalar."""
    import tensorflow as tf

    from bench.impls.devices import tf_device_name

    name = tf_device_name(device)
    with tf.device(name):
        a = tf.Variable(tf.random.stateless_normal([n, n], seed=[1, 2]), name="calib_a")
        b = tf.Variable(tf.random.stateless_normal([n, n], seed=[3, 4]), name="calib_b")

    @tf.function
    def step():
        with tf.device(name):
            return tf.reduce_sum(tf.matmul(a, b))

    return lambda: float(step().numpy())


def calibrate(device: str = "cpu", n: int | None = None, *, rounds: int = ROUNDS,
              warmup: int = WARMUP, timer: timing.Timer = time.perf_counter,
              kernel: Callable[[], Any] | None = None) -> dict:
    """Time the matmul kernel; return {"matmul_gflops", "matmul_n", "samples_s", ...}."""
    n = n or MATMUL_N.get(device, 1024)
    fn = kernel or matmul_kernel(device, n)
    compile_s, _ = timing.time_call(fn, timer)
    samples = timing.measure(fn, rounds=rounds, warmup=warmup, timer=timer)
    stats = timing.summarize(samples)
    flops = 2.0 * n ** 3
    return {
        "device": device,
        "matmul_n": n,
        "matmul_flops": flops,
        "matmul_gflops": flops / stats["median_s"] / 1e9,
        "matmul_gflops_best": flops / stats["min_s"] / 1e9,
        "samples_s": stats["samples_s"],
        "median_s": stats["median_s"],
        "compile_s": compile_s,
    }


def calibrate_devices(devices: list[str], **kwargs: Any) -> dict:
    """Calibrate each device; the document's top level is the first device, all under "devices"."""
    per_device = {device: calibrate(device, **kwargs) for device in dict.fromkeys(devices)}
    if not per_device:
        return {}
    first = next(iter(per_device.values()))
    return {**first, "devices": per_device}


def roofline(case: Case, median_s: float | None, calibration: dict) -> dict:
    """`flops` of one call (Case.flops), achieved `gflops` and `pct_peak` (percent of matmul)."""
    flops = case.flops()
    gflops = flops / median_s / 1e9 if median_s else None
    peak = peak_gflops(calibration, case.device)
    pct = 100.0 * gflops / peak if gflops is not None and peak else None
    return {"flops": flops, "gflops": gflops, "pct_peak": pct}
