"""What a notification says, to a person and to a machine (pure)."""

from __future__ import annotations

from datetime import datetime, timedelta


def _kwh(wh: float) -> str:
    kwh = wh / 1000.0
    return f"{kwh:.2f}".rstrip("0").rstrip(".") if kwh < 10 else f"{kwh:.1f}"


def _span(hour: datetime) -> str:
    return f"between {hour:%H:%M} and {hour + timedelta(hours=1):%H:%M} UTC on {hour:%a %d %b}"


def text(kind: str, device_id: int, hour: datetime, wh: float, low: float | None, high: float | None,
         direction: str | None) -> str:
    """E.g. "Device 42: unusual use: 1.5 kWh between 04:00 and 05:00 UTC on Mon 02 Mar, usually 0.1–0.4 kWh"."""
    usual = f", usually {_kwh(low)}–{_kwh(high)} kWh" if low is not None and high is not None else ""
    if kind == "resolved":
        return f"Device {device_id}: back to usual: {_kwh(wh)} kWh {_span(hour)}{usual}"
    what = "unusually low use" if direction == "low" else "unusual use"
    still = " (still)" if kind == "repeat" else ""
    return f"Device {device_id}: {what}{still}: {_kwh(wh)} kWh {_span(hour)}{usual}"
