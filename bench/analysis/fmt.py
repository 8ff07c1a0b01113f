"""Unit formatting for tables and reports: numbers, milliseconds, readable times (no TensorFlow)."""

from __future__ import annotations

import math


def fmt_num(value, digits: int = 3) -> str:
    """A number with about `digits` significant figures; '–' for missing or NaN."""
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return "–"
    if isinstance(value, bool) or not isinstance(value, int | float):
        return str(value)
    if value == 0:
        return "0"
    mag = math.floor(math.log10(abs(value)))
    decimals = max(0, digits - 1 - mag)
    if mag >= 6 or mag < -4:
        return f"{value:.{digits - 1}e}"
    return f"{value:,.{decimals}f}" if mag >= 4 else f"{value:.{decimals}f}"


def fmt_ms(seconds) -> str:
    """Seconds shown as milliseconds with 3 significant figures."""
    if seconds is None or not math.isfinite(seconds):
        return "–"
    return fmt_num(seconds * 1e3)


def fmt_ci(median_s, low_s, high_s) -> str:
    """`1.19 ±3.1 %`: the median in ms and its interval's larger side as a share of it."""
    from bench.intervals import relative_halfwidth

    text = fmt_ms(median_s)
    values = (median_s, low_s, high_s)
    if text == "–" or not all(isinstance(v, int | float) and math.isfinite(v) for v in values):
        return text
    return f"{text} ±{100 * relative_halfwidth(*values):.1f} %"


def fmt_time(seconds: float | None) -> str:
    """Seconds in a readable unit (ns, µs, ms, s); '-' when missing or not a finite number."""
    if not isinstance(seconds, int | float) or not math.isfinite(seconds):
        return "-"
    for unit, scale in (("s", 1.0), ("ms", 1e-3), ("µs", 1e-6)):
        if seconds >= scale:
            return f"{seconds / scale:.3g} {unit}"
    return f"{seconds / 1e-9:.3g} ns"


def fmt_fixed(value: float | None, spec: str, missing: str = "–") -> str:
    """`value` with a format spec such as '.2f'; `missing` when None or not a finite number."""
    if not isinstance(value, int | float) or not math.isfinite(value):
        return missing
    return format(value, spec)


def fmt_bytes(value, missing: str = "–") -> str:
    """Bytes in binary units, about 3 significant figures (`12.3 MiB`); `missing` if not a size."""
    if (isinstance(value, bool) or not isinstance(value, int | float)
            or not math.isfinite(value) or value < 0):
        return missing
    units = ("B", "KiB", "MiB", "GiB", "TiB")
    scaled, unit = float(value), 0
    while scaled >= 1000 and unit < len(units) - 1:
        scaled /= 1024
        unit += 1
    return f"{int(value)} B" if unit == 0 else f"{fmt_num(scaled)} {units[unit]}"
