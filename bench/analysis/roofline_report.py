"""The report's roofline: the peak per device and dtype, its drift over the run, % of peak."""

from __future__ import annotations

from bench.analysis.fmt import fmt_num
from bench.results import Run
from bench.roofline import RAISED_NOTE, Peak, find_peak, peak_table, rescored
from bench.rows import CaseRow


def peaks(run: Run) -> list[Peak]:
    """The roofline of every device and dtype of a run (calibration and its best cases)."""
    return peak_table(run.calibration, run.cases)


def rows_against_peaks(run: Run) -> list[CaseRow]:
    """The run's rows, `pct_peak` recomputed against their device and dtype's peak (≤ 100)."""
    return rescored(run.cases, peaks(run))


def peak_for(table: list[Peak], device: str, dtype: str) -> float | None:
    """The peak that % of peak used for `device` and `dtype`, or None."""
    found = find_peak(table, device, dtype)
    return found.used if found else None


def _name(peak: Peak) -> str:
    return " ".join(str(x) for x in (peak.device, peak.dtype) if x is not None)


def header_line(table: list[Peak]) -> str:
    """`- calibrated matmul peak: 40.0 GFLOP/s (cpu fp32)`, one clause per device and dtype."""
    measured = [p for p in table if p.calibrated is not None]
    if not measured:
        return "- calibrated matmul peak: not measured (no % of peak)"
    parts = []
    for peak in table:
        if peak.calibrated is None:
            parts.append(f"{_name(peak)}: none ({peak.error or 'not measured'})")
            continue
        raised = f", raised to {fmt_num(peak.used)} by the best case" if peak.raised else ""
        parts.append(f"{fmt_num(peak.calibrated)} GFLOP/s ({_name(peak)}{raised})")
    return "- calibrated matmul peak: " + "; ".join(parts)


def _note(peak: Peak) -> str:
    if peak.calibrated is None:
        return f"no % of peak: {peak.error or 'not calibrated'}"
    if peak.raised:
        return f"{RAISED_NOTE} ({peak.best_case_id})"
    return ""


def peak_frame(table: list[Peak]):
    """One row per device and dtype: peak used, calibrated rate, size, calibrations, spread."""
    import pandas as pd

    rows = [{"device": p.device or "–", "dtype": p.dtype, "peak used (GFLOP/s)": p.used,
             "calibrated (GFLOP/s)": p.calibrated, "best case (GFLOP/s)": p.best_case,
             "matmul n": str(p.n) if p.n else "–",
             "calibrations": str(len(p.measurements) or (1 if p.calibrated else 0)),
             "spread": f"{p.spread:.1%}" if p.spread is not None else "–",
             "note": _note(p)} for p in table]
    return pd.DataFrame(rows)


def measurements_frame(table: list[Peak]):
    """Every calibration of the run in order: device, dtype, when, UTC, GFLOP/s, size (and the
    error, when one failed)."""
    import pandas as pd

    rows = [{"device": p.device or "–", "dtype": p.dtype, "when": m.label, "UTC": m.utc,
             "GFLOP/s": m.gflops, "matmul n": str(m.n) if m.n else "–",
             "error": m.error or ""} for p in table for m in p.measurements]
    frame = pd.DataFrame(rows, columns=["device", "dtype", "when", "UTC", "GFLOP/s", "matmul n",
                                        "error"])
    return frame if any(frame["error"]) else frame.drop(columns="error")


def roofline_section(table: list[Peak], render) -> list[str]:
    """The report's `Roofline` section, tables drawn by `render` (a DataFrame to Markdown)."""
    if not table:
        return []
    out = ["## Roofline\n",
           "The peak is the best sustained rate of a matmul timed in this run at several "
           "sizes (median of its rounds per size, the best size), per device and dtype; % of "
           "peak is against the case's own device and dtype. A case faster than the "
           "calibration raises the peak to its rate, so no case exceeds 100 %. `spread`: "
           "(max − min) / max of the calibrations taken during the run.\n",
           render(peak_frame(table))]
    measurements = measurements_frame(table)
    if len(measurements) > 1:
        out += ["Calibrations over the run:\n", render(measurements)]
    return out
