"""The roofline: the calibration document (per device and dtype) and the rule for % of peak.

No TensorFlow here: the measuring side writes the calibration through these functions and the
reading side (report, check) reads it through them, so its keys are spelled in this module.

Layout of `calibration` in results.json (older documents: see `entry`):

    devices.<device>.dtypes.<dtype> = {
      matmul_gflops     best sustained matmul rate of any measurement of the run (calibrated)
      matmul_n          the matrix size that gave it
      spread            (max - min) / max of the measurements' rates: the drift over the run
      best_case_gflops  the fastest case of this device and dtype, best_case_id its id
      peak_gflops       the peak % of peak is taken against: max(calibrated, best case)
      peak_raised       true when a case ran faster than the calibration (it under-read)
      error             why no measurement succeeded (no % of peak for that dtype), else null
      measurements      every measurement, in order: label, utc, elapsed_s, cases_done,
                        matmul_gflops, matmul_n, error and `sizes` (n, samples_s, median_s,
                        matmul_gflops, compile_s, or error)
    }

`devices.<device>.matmul_gflops` and the top level (`device`, `matmul_gflops`, `matmul_n`,
`samples_s`, ...) mirror the first device's fp32 figures, where older readers look for them.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace
from typing import Any

from bench import rows
from bench.rows import CaseRow

FP32 = "fp32"
RAISED_NOTE = "peak raised to the best case's rate: calibration under-read"


def _positive(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    try:
        number = float(value)
    except OverflowError:
        return None
    return number if math.isfinite(number) and number > 0 else None


def _dict(value: Any) -> dict:
    return value if isinstance(value, dict) else {}


# ---------------------------------------------------------------- reading


def entry(calibration: dict, device: str | None, dtype: str = FP32) -> dict | None:
    """The stored figures of one device and dtype, or None.

    Documents without `dtypes` hold fp32 only: `devices.<device>` itself, else the top level
    when it names this device or none (the layout before per-device calibration).
    """
    calibration = _dict(calibration)
    per_device = _dict(calibration.get("devices")).get(device) if device else None
    if isinstance(per_device, dict) and isinstance(per_device.get("dtypes"), dict):
        found = per_device["dtypes"].get(dtype)
        return found if isinstance(found, dict) else None
    if dtype != FP32:
        return None
    if isinstance(per_device, dict):
        return per_device
    if device is None or calibration.get("device") in (None, device):
        return calibration or None
    return None


def peak_gflops(calibration: dict, device: str | None, dtype: str = FP32) -> float | None:
    """The calibrated matmul GFLOP/s of `device` in `dtype`; None when the run has none."""
    return _positive(_dict(entry(calibration, device, dtype)).get("matmul_gflops"))


def used_peak(calibration: dict, device: str | None, dtype: str = FP32) -> float | None:
    """The peak that % of peak is taken against: the calibrated rate or a faster case's rate."""
    found = _dict(entry(calibration, device, dtype))
    calibrated = _positive(found.get("matmul_gflops"))
    if calibrated is None:
        return None
    return max(calibrated, _positive(found.get("peak_gflops")) or 0.0)


def pct_of_peak(gflops: float | None, peak: float | None) -> float | None:
    """100 × gflops / peak; a rate above the peak raises the peak to it, so never above 100."""
    if gflops is None or peak is None or peak <= 0:
        return None
    return 100.0 * gflops / max(peak, gflops)


def spread(rates: Sequence[float]) -> float | None:
    """(max - min) / max of the rates (0 = no drift); None for fewer than two."""
    rates = [r for r in rates if _positive(r)]
    return (max(rates) - min(rates)) / max(rates) if len(rates) > 1 else None


@dataclass(frozen=True)
class Measurement:
    """One calibration of one device and dtype during the run."""

    label: str
    utc: str | None
    gflops: float | None
    n: int | None
    error: str | None


@dataclass(frozen=True)
class Peak:
    """The roofline of one device and dtype: calibrated, the best case, the peak used."""

    device: str | None
    dtype: str
    calibrated: float | None
    n: int | None = None
    best_case: float | None = None
    best_case_id: str | None = None
    error: str | None = None
    measurements: tuple[Measurement, ...] = ()

    @property
    def used(self) -> float | None:
        """The peak % of peak is taken against (None without a calibration)."""
        if self.calibrated is None:
            return None
        return max(self.calibrated, self.best_case or 0.0)

    @property
    def raised(self) -> bool:
        """True when a case ran faster than the calibrated matmul."""
        return self.calibrated is not None and (self.best_case or 0.0) > self.calibrated

    @property
    def spread(self) -> float | None:
        """The drift between this run's calibrations ((max - min) / max), if measured twice."""
        return spread([m.gflops for m in self.measurements if m.gflops is not None])


def stored_keys(calibration: dict) -> list[tuple[str | None, str]]:
    """(device, dtype) of every calibration the document stores, older layouts included."""
    calibration = _dict(calibration)
    keys: list[tuple[str | None, str]] = []
    for device, per_device in _dict(calibration.get("devices")).items():
        dtypes = _dict(per_device).get("dtypes")
        keys += [(device, d) for d in dtypes] if isinstance(dtypes, dict) else [(device, FP32)]
    if not keys and calibration.get("matmul_gflops") is not None:
        keys.append((calibration.get("device"), FP32))
    return keys


def _key(row: CaseRow) -> tuple[str, str]:
    return row.case.device, row.case.dtype


def peak_table(calibration: dict, case_rows: Iterable[CaseRow]) -> list[Peak]:
    """Every calibrated device and dtype, and every one a case ran in, with its roofline (the
    best case computed from the rows)."""
    case_rows = list(case_rows)
    best: dict[tuple[str, str], CaseRow] = {}
    for row in case_rows:
        if row.ok and row.stats.gflops is not None:
            key = _key(row)
            if key not in best or row.stats.gflops > (best[key].stats.gflops or 0.0):
                best[key] = row
    keys = list(dict.fromkeys([*stored_keys(calibration), *(_key(r) for r in case_rows if r.ok)]))
    if any(device is not None for device, _ in keys):
        keys = [k for k in keys if k[0] is not None]
    table = []
    for device, dtype in keys:
        found = _dict(entry(calibration, device, dtype))
        top = best.get((device, dtype)) if device is not None else None
        table.append(Peak(
            device=device, dtype=dtype, calibrated=_positive(found.get("matmul_gflops")),
            n=found.get("matmul_n") if isinstance(found.get("matmul_n"), int) else None,
            best_case=top.stats.gflops if top else None, best_case_id=top.id if top else None,
            error=found.get("error") if isinstance(found.get("error"), str) else None,
            measurements=tuple(_measurement(m) for m in _list(found.get("measurements")))))
    return table


def _list(value: Any) -> list:
    return value if isinstance(value, list) else []


def _measurement(raw: Any) -> Measurement:
    raw = _dict(raw)
    n = raw.get("matmul_n")
    return Measurement(label=str(raw.get("label") or "?"), utc=raw.get("utc"),
                       gflops=_positive(raw.get("matmul_gflops")),
                       n=n if isinstance(n, int) else None, error=raw.get("error"))


def find_peak(peaks: Iterable[Peak], device: str | None, dtype: str) -> Peak | None:
    """The roofline of `device` and `dtype` in a peak table, or None."""
    return next((p for p in peaks if (p.device, p.dtype) == (device, dtype)), None)


def rescored(case_rows: Iterable[CaseRow], peaks: Sequence[Peak]) -> list[CaseRow]:
    """The rows with `pct_peak` taken against their own device and dtype's peak (≤ 100)."""
    out = []
    for row in case_rows:
        peak = find_peak(peaks, *_key(row))
        pct = pct_of_peak(row.stats.gflops, peak.used if peak else None) if row.ok else None
        out.append(row if pct == row.stats.pct_peak
                   else replace(row, stats=replace(row.stats, pct_peak=pct)))
    return out


# ---------------------------------------------------------------- writing


def record_measurement(calibration: dict, device: str, dtype: str, measurement: dict) -> None:
    """Add one calibration of `device` in `dtype`; update its peak, spread and the mirrors."""
    per_device = calibration.setdefault("devices", {}).setdefault(device, {"device": device})
    found = per_device.setdefault("dtypes", {}).setdefault(
        dtype, {"dtype": dtype, "matmul_gflops": None, "error": None, "measurements": []})
    found["measurements"].append(measurement)
    good = [m for m in found["measurements"] if _positive(m.get("matmul_gflops"))]
    if good:
        top = max(good, key=lambda m: m["matmul_gflops"])
        found.update(matmul_gflops=top["matmul_gflops"], matmul_n=top.get("matmul_n"),
                     error=None, spread=spread([m["matmul_gflops"] for m in good]))
    else:
        found["error"] = measurement.get("error") or "no matrix size could be timed"
    _settle(found)
    _mirror(calibration)


def record_case(calibration: dict, row: CaseRow) -> bool:
    """Note an ok case's achieved rate; True when it raised the peak of its device and dtype."""
    if not row.ok or row.stats.gflops is None:
        return False
    device, dtype = _key(row)
    found = _dict(_dict(_dict(_dict(calibration.get("devices")).get(device)).get("dtypes"))
                  .get(dtype))
    if _positive(found.get("matmul_gflops")) is None:
        return False
    before = found.get("peak_gflops")
    if row.stats.gflops > (_positive(found.get("best_case_gflops")) or 0.0):
        found.update(best_case_gflops=row.stats.gflops, best_case_id=row.id)
    _settle(found)
    return found["peak_gflops"] != before


def _settle(found: dict) -> None:
    calibrated = _positive(found.get("matmul_gflops"))
    best = _positive(found.get("best_case_gflops")) or 0.0
    found["peak_gflops"] = max(calibrated, best) if calibrated else None
    found["peak_raised"] = bool(calibrated and best > calibrated)


def _mirror(calibration: dict) -> None:
    devices = calibration["devices"]
    for per_device in devices.values():
        fp32 = per_device["dtypes"].get(FP32) or {}
        per_device.update(matmul_gflops=fp32.get("matmul_gflops"), matmul_n=fp32.get("matmul_n"))
    device, per_device = next(iter(devices.items()))
    dtype = FP32 if FP32 in per_device["dtypes"] else next(iter(per_device["dtypes"]))
    found = per_device["dtypes"][dtype]
    size = _best_size(found)
    n = found.get("matmul_n")
    calibration.update(device=device, dtype=dtype, matmul_gflops=found.get("matmul_gflops"),
                       matmul_n=n, matmul_flops=2.0 * n ** 3 if n else None)
    calibration.update({rows.SAMPLES_S: size.get(rows.SAMPLES_S, []),
                        rows.MEDIAN_S: size.get(rows.MEDIAN_S),
                        rows.COMPILE_S: size.get(rows.COMPILE_S)})


def _best_size(found: dict) -> dict:
    for measurement in found["measurements"]:
        if measurement.get("matmul_gflops") == found.get("matmul_gflops"):
            for size in measurement.get("sizes", []):
                if size.get("n") == found.get("matmul_n"):
                    return size
    return {}


def rescore_rows(found: list[CaseRow], calibration: dict) -> list[CaseRow]:
    """The rows with `pct_peak` recomputed against the calibration's current peaks."""
    out = []
    for row in found:
        pct = (pct_of_peak(row.stats.gflops, used_peak(calibration, *_key(row)))
               if row.ok else row.stats.pct_peak)
        out.append(row if pct == row.stats.pct_peak
                   else replace(row, stats=replace(row.stats, pct_peak=pct)))
    return out


# ---------------------------------------------------------------- checking


def _finite_numbers(value, where: rows.Where, name: str, depth: int = 0) -> None:
    """Every number anywhere inside `value` (objects and lists, walked) is finite and within
    +-rows.MAX_NUMBER; nesting deeper than 32 levels is refused."""
    if depth > 32:
        raise where.fail(name, "is nested too deeply")
    if isinstance(value, dict):
        for key, item in value.items():
            _finite_numbers(item, where, f"{name}.{key}", depth + 1)
    elif isinstance(value, list):
        for i, item in enumerate(value):
            _finite_numbers(item, where, f"{name}[{i}]", depth + 1)
    elif isinstance(value, float) and not (math.isfinite(value)
                                           and abs(value) <= rows.MAX_NUMBER):
        raise where.fail(name, f"is {value!r}, not a finite number within "
                               f"+-{rows.MAX_NUMBER:g}")
    elif isinstance(value, int) and not isinstance(value, bool):
        rows.integer(value, where, name)


def check_calibration(calibration: dict, source: str) -> None:
    """Check the numbers readers use; a one-line UserError naming the field if one is bad."""
    where = rows.Where(source, "calibration")
    for key, value in calibration.items():  # measurements, sizes, samples: all finite
        _finite_numbers(value, where, key)
    rows.amount(calibration.get("matmul_gflops"), where, "matmul_gflops")
    rows.text(calibration.get("device"), where, "device")
    devices = rows.mapping(calibration.get("devices"), where, "devices")
    for device, raw in devices.items():
        name = f"devices.{device}"
        per_device = rows.mapping(raw, where, name)
        rows.amount(per_device.get("matmul_gflops"), where, f"{name}.matmul_gflops")
        dtypes = rows.mapping(per_device.get("dtypes"), where, f"{name}.dtypes")
        for dtype, value in dtypes.items():
            _check_entry(rows.mapping(value, where, f"{name}.dtypes.{dtype}"), where,
                         f"{name}.dtypes.{dtype}")


def _check_entry(found: dict, where: rows.Where, name: str) -> None:
    for key in ("matmul_gflops", "peak_gflops", "best_case_gflops", "spread"):
        rows.amount(found.get(key), where, f"{name}.{key}")
    rows.count(found.get("matmul_n"), where, f"{name}.matmul_n")
    rows.text(found.get("error"), where, f"{name}.error")
    rows.text(found.get("best_case_id"), where, f"{name}.best_case_id")
    for i, raw in enumerate(rows.items(found.get("measurements"), where, f"{name}.measurements")):
        at = f"{name}.measurements[{i}]"
        measurement = rows.mapping(raw, where, at)
        rows.amount(measurement.get("matmul_gflops"), where, f"{at}.matmul_gflops")
        rows.count(measurement.get("matmul_n"), where, f"{at}.matmul_n")
        for key in ("label", "utc", "error"):
            rows.text(measurement.get(key), where, f"{at}.{key}")
        rows.duration_s(measurement.get("elapsed_s"), where, f"{at}.elapsed_s")
        rows.items(measurement.get("sizes"), where, f"{at}.sizes")
