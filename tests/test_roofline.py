"""The roofline: the peak is searched over sizes, measured again during the run, kept per
device and dtype, and no case ever exceeds it. Every time here comes from a scripted clock."""

from __future__ import annotations

import json
import shutil
from dataclasses import replace
from pathlib import Path

import pytest

from bench import roofline
from bench.cases import Case, Shape
from bench.errors import UserError
from bench.measure import calibration, timing
from bench.measure.case_run import make_row
from bench.measure.run.collector import Collector
from bench.results import empty_document, load_run, peak_gflops, read_run, save_run
from bench.rows import CaseRow

FIXTURES = Path(__file__).parent / "fixtures"
STORED = Path(__file__).parents[1] / "reports"
CASE = Case("keras_lstm", "dynamic", "cpu", Shape(16, 10, 8, 32), phase="backward")


def seconds(n: int, gflops: float) -> float:
    """How long an n×n matmul takes at `gflops`."""
    return 2.0 * n ** 3 / (gflops * 1e9)


class Machine:
    """A scripted clock and matmul kernels: each call advances the clock by the time its size
    takes at the rate `rates[dtype](n, call)` (call counts from 0, the first call traces)."""

    def __init__(self, rates: dict):
        self.now = 1000.0
        self.rates = rates
        self.made: list[tuple[str, int, str]] = []

    def clock(self) -> float:
        return self.now

    def kernel(self, device: str, n: int, dtype: str):
        self.made.append((device, n, dtype))
        rate = self.rates[dtype]
        if isinstance(rate, Exception):
            raise rate
        calls = iter(range(10**6))

        def call():
            self.now += seconds(n, rate(n, next(calls)))
            return 0.0

        return call

    def calibrate(self, device="cpu", dtype="fp32", **kwargs):
        return calibration.calibrate(device, dtype, timer=self.clock, make_kernel=self.kernel,
                                     **kwargs)


def flat(gflops: float):
    """The same rate at every size and call."""
    return lambda n, call: gflops


GROWING = {256: 40.0, 512: 120.0, 1024: 200.0, 2048: 240.0}


def test_peak_is_the_median_rate_of_the_best_size():
    machine = Machine({"fp32": lambda n, call: GROWING[n]})
    result = machine.calibrate(rounds=5, warmup=2)
    assert [s["n"] for s in result["sizes"]] == [256, 512, 1024, 2048]
    assert all(len(s["samples_s"]) == 5 for s in result["sizes"])
    assert result["matmul_n"] == 2048
    assert result["matmul_gflops"] == pytest.approx(240.0)
    assert result["error"] is None


def test_one_lucky_round_does_not_set_the_peak():
    # Round 4 of n=1024 runs 10x too fast (a timer glitch); the median of its rounds ignores it.
    def rate(n, call):
        return GROWING[n] * (10 if n == 1024 and call == 4 else 1)

    result = Machine({"fp32": rate}).calibrate(rounds=5, warmup=1)
    by_size = {s["n"]: s for s in result["sizes"]}
    assert min(by_size[1024]["samples_s"]) == pytest.approx(seconds(1024, 2000.0))
    assert by_size[1024]["matmul_gflops"] == pytest.approx(200.0)
    assert result["matmul_gflops"] == pytest.approx(240.0)


def test_a_slow_size_is_the_last_one_tried():
    machine = Machine({"bf16": flat(1.0)})  # an emulated dtype: 1 GFLOP/s
    result = machine.calibrate(dtype="bf16", rounds=3, warmup=0)
    assert seconds(512, 1.0) < calibration.SLOW_CALL_S < seconds(1024, 1.0)
    assert [s["n"] for s in result["sizes"]] == [256, 512, 1024]
    assert (("cpu", 2048, "bf16") in machine.made) is False


def test_a_dtype_without_a_kernel_is_an_error_not_a_crash():
    machine = Machine({"fp32": flat(100.0),
                       "bf16": RuntimeError("No OpKernel was registered for MatMul bf16")})
    result = machine.calibrate(dtype="bf16")
    assert result["matmul_gflops"] is None
    assert "No OpKernel" in result["error"]
    calib = calibration.Calibrator([("cpu", "fp32"), ("cpu", "bf16")], timer=machine.clock,
                                   make_kernel=machine.kernel, clock=machine.clock,
                                   rounds=3, warmup=0).measure("start")
    bf16 = calib["devices"]["cpu"]["dtypes"]["bf16"]
    assert "No OpKernel" in bf16["error"]
    assert peak_gflops(calib, "cpu", "bf16") is None
    assert peak_gflops(calib, "cpu") == pytest.approx(100.0)
    fp32_case, bf16_case = CASE, replace(CASE, dtype="bf16")
    assert calibration.roofline(bf16_case, 1e-3, calib)["pct_peak"] is None
    assert calibration.roofline(bf16_case, 1e-3, calib)["gflops"] > 0
    assert calibration.roofline(fp32_case, 1e-3, calib)["pct_peak"] > 0


def test_each_dtype_is_against_its_own_peak():
    machine = Machine({"fp32": flat(100.0), "fp16": flat(400.0)})
    calib = calibration.Calibrator([("cpu", "fp32"), ("cpu", "fp16")], timer=machine.clock,
                                   make_kernel=machine.kernel, rounds=3, warmup=0
                                   ).measure("start")
    median = CASE.flops() / 50e9  # 50 GFLOP/s
    fp16_case = replace(CASE, dtype="fp16")
    assert calibration.roofline(CASE, median, calib)["pct_peak"] == pytest.approx(50.0)
    assert calibration.roofline(fp16_case, median, calib)["pct_peak"] == pytest.approx(12.5)
    assert calib["matmul_gflops"] == pytest.approx(100.0)  # the top level mirrors fp32
    assert calib["devices"]["cpu"]["matmul_gflops"] == pytest.approx(100.0)


class Ticker:
    """A clock the test moves by hand."""

    def __init__(self):
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_calibrations_during_the_run_are_kept_and_their_spread_reported():
    rates = iter([200.0, 300.0, 250.0])
    current = {"rate": next(rates)}
    machine = Machine({"fp32": lambda n, call: current["rate"]})
    ticker = Ticker()
    calibrator = calibration.Calibrator([("cpu", "fp32")], every_s=600, clock=ticker,
                                        timer=machine.clock, make_kernel=machine.kernel,
                                        sizes=(256, 512), rounds=3, warmup=0)
    assert not calibrator.due()
    calibrator.measure("start")
    ticker.now += 599
    assert not calibrator.due()
    ticker.now += 1
    assert calibrator.due()
    current["rate"] = next(rates)
    calibrator.measure("after 12 cases", 12)
    assert not calibrator.due()
    current["rate"] = next(rates)
    calib = calibrator.measure("end", 20)
    entry = calib["devices"]["cpu"]["dtypes"]["fp32"]
    assert [m["label"] for m in entry["measurements"]] == ["start", "after 12 cases", "end"]
    assert [m["cases_done"] for m in entry["measurements"]] == [0, 12, 20]
    assert [m["elapsed_s"] for m in entry["measurements"]] == [0.0, 600.0, 600.0]
    assert all(m["utc"].endswith("Z") for m in entry["measurements"])
    assert entry["matmul_gflops"] == pytest.approx(300.0)  # the best of the run
    assert entry["spread"] == pytest.approx((300.0 - 200.0) / 300.0)
    peak = roofline.peak_table(calib, ())[0]
    assert peak.spread == pytest.approx(1 / 3)
    assert [m.gflops for m in peak.measurements] == pytest.approx([200.0, 300.0, 250.0])
    assert "spread 33%" in calibration.describe(calib)


def _ok_row(collector: Collector, case: Case, gflops: float) -> CaseRow:
    """A case timed at `gflops`, its stats built as the suite builds them."""
    samples = [case.flops() / (gflops * 1e9)] * 5
    stats = timing.summarize(samples)
    stats.update(**calibration.roofline(case, stats["median_s"], collector.doc["calibration"]))
    return make_row(case, "ok", stats=stats)


def _collector(rates: dict, pairs) -> tuple[Collector, Machine]:
    machine = Machine(rates)
    collector = Collector(None, run_id="r", command="t", preset=None, progress=False)
    collector.calibrator = calibration.Calibrator(pairs, timer=machine.clock,
                                                  make_kernel=machine.kernel, sizes=(256, 512),
                                                  rounds=3, warmup=0)
    collector.doc = empty_document(run_id="r", env={}, command="t",
                                   calibration=collector.calibrator.measure("start"))
    return collector, machine


def _pcts(collector: Collector) -> dict[str, float | None]:
    return {r.id: r.stats.pct_peak for r in collector.rows}


def test_no_case_ever_exceeds_100_percent():
    collector, machine = _collector({"fp32": flat(100.0)}, [("cpu", "fp32")])
    slow, fast, middle = (replace(CASE, phase=p)
                          for p in ("forward", "backward", "train_step"))
    collector.record(_ok_row(collector, slow, 50.0))
    assert _pcts(collector) == {slow.id: pytest.approx(50.0)}
    collector.record(_ok_row(collector, fast, 150.0))  # faster than the calibrated matmul
    collector.record(_ok_row(collector, middle, 120.0))
    assert _pcts(collector) == {slow.id: pytest.approx(100 * 50 / 150), fast.id: 100.0,
                                middle.id: pytest.approx(80.0)}
    entry = collector.doc["calibration"]["devices"]["cpu"]["dtypes"]["fp32"]
    assert entry["peak_raised"] is True
    assert (entry["best_case_id"], entry["peak_gflops"]) == (fast.id, pytest.approx(150.0))
    assert entry["matmul_gflops"] == pytest.approx(100.0)  # the calibration itself is kept
    # A later calibration that reads higher takes over, and the rows follow it.
    machine.rates["fp32"] = flat(200.0)
    collector.calibrate_again("end")
    assert _pcts(collector)[fast.id] == pytest.approx(75.0)
    assert entry["peak_raised"] is False
    assert max(_pcts(collector).values()) <= 100.0
    assert len(entry["measurements"]) == 2


def test_a_run_with_a_raised_peak_saves_and_loads(tmp_path):
    collector, _ = _collector({"fp32": flat(10.0), "bf16": RuntimeError("no bf16 MatMul")},
                              [("cpu", "fp32"), ("cpu", "bf16")])
    collector.record(_ok_row(collector, CASE, 30.0))
    collector.record(_ok_row(collector, replace(CASE, dtype="bf16"), 30.0))
    save_run(tmp_path, collector.doc, cases=collector.rows)
    doc = load_run(tmp_path)
    assert [r["stats"].get("pct_peak") for r in doc["cases"]] == [100.0, None]
    assert json.loads((tmp_path / "results.json").read_text())["calibration"]["device"] == "cpu"


# ---------------------------------------------------------------- stored documents


def test_peak_of_stored_documents_of_every_layout():
    top_level = load_run(FIXTURES / "run_a")["calibration"]  # no device, no devices
    assert peak_gflops(top_level, "cpu") == top_level["matmul_gflops"]
    assert peak_gflops(top_level, None) == top_level["matmul_gflops"]
    assert peak_gflops(top_level, "cpu", "bf16") is None
    per_device = load_run(STORED / "reference" / "cpu-2core-tf2.21")["calibration"]
    assert peak_gflops(per_device, "cpu") == per_device["devices"]["cpu"]["matmul_gflops"]
    assert peak_gflops(per_device, "cpu", "fp16") is None
    assert peak_gflops(per_device, "gpu") is None
    assert peak_gflops({}, "cpu") is None


def test_old_documents_over_100_percent_are_reported_against_a_raised_peak(tmp_path):
    shutil.copytree(FIXTURES / "run_a", tmp_path / "run")
    file = tmp_path / "run" / "results.json"
    doc = json.loads(file.read_text())
    doc["calibration"]["matmul_gflops"] = 1e-3  # a calibration that under-read badly
    for row in doc["cases"]:
        if row["status"] == "ok":
            row["stats"]["pct_peak"] = 100 * row["stats"]["gflops"] / 1e-3  # as stored then
    file.write_text(json.dumps(doc))
    loaded = read_run(file)
    table = roofline.peak_table(loaded.calibration, loaded.cases)
    assert [(p.device, p.dtype, p.raised) for p in table] == [("cpu", "fp32", True)]
    best = max(r["stats"]["gflops"] for r in doc["cases"] if r["status"] == "ok")
    assert table[0].used == pytest.approx(best)
    rows = roofline.rescored(loaded.cases, table)
    pcts = [r.stats.pct_peak for r in rows if r.ok]
    assert max(pcts) == pytest.approx(100.0)
    assert all(0 < p <= 100 for p in pcts)


@pytest.mark.parametrize(("change", "field"), [
    (lambda c: c.update(devices={"cpu": {"dtypes": {"fp32": {"measurements": [
        {"matmul_gflops": "fast"}]}}}}),
     "devices.cpu.dtypes.fp32.measurements[0].matmul_gflops is 'fast'"),
    (lambda c: c.update(devices={"cpu": {"dtypes": "fp32"}}),
     "devices.cpu.dtypes is 'fp32', not an object"),
])
def test_bad_calibration_values_are_one_line_errors(tmp_path, change, field):
    shutil.copytree(FIXTURES / "run_a", tmp_path / "run")
    file = tmp_path / "run" / "results.json"
    doc = json.loads(file.read_text())
    change(doc["calibration"])
    file.write_text(json.dumps(doc))
    with pytest.raises(UserError) as caught:
        load_run(file)
    assert f"calibration: field {field}" in str(caught.value)
    assert "\n" not in str(caught.value)


def test_pct_of_peak_and_spread_rules():
    assert roofline.pct_of_peak(50.0, 200.0) == 25.0
    assert roofline.pct_of_peak(300.0, 200.0) == 100.0
    assert roofline.pct_of_peak(None, 200.0) is None
    assert roofline.pct_of_peak(50.0, None) is None
    assert roofline.spread([100.0]) is None
    assert roofline.spread([100.0, 80.0, 90.0]) == pytest.approx(0.2)


@pytest.mark.tf
def test_real_matmul_calibrates_every_dtype_without_raising():
    for dtype in ("fp32", "bf16", "fp16"):
        result = calibration.calibrate("cpu", dtype, sizes=(32, 64), rounds=2, warmup=0)
        assert [s["n"] for s in result["sizes"]][:1] == [32]
        assert (result["matmul_gflops"] or 0) > 0 or result["error"], dtype
    assert calibration.calibrate("cpu", "int3", sizes=(32,))["error"].startswith("UserError")
