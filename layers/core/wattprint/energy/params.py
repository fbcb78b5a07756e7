"""Query strings of the GET /energy routes, checked: an unknown, repeated or malformed parameter is a 400 that
names it (a misspelt ?devce_id= must not answer for every device)."""

from __future__ import annotations

import re
from dataclasses import dataclass

from .. import query
from ..errors import InvalidParameter
from ..http import query_params
from . import times

MAX_POINTS = 10_000  # steps in one answer: a year of hours, 104 days of quarter hours
MAX_COUNT = 1000
DEFAULT_COUNT = 3
INT32_MIN, INT32_MAX = -2**31, 2**31 - 1

SERIES = ("device_id", "start", "end", "resolution", "format")
FLEET = ("start", "end", "resolution", "format")
TOP = ("count", "start", "end", "format")
FORECAST = ("device_id", "start", "end", "format")
POWER = ("device_id", "start", "end", "format")
MAX_POWER_READINGS = 5000  # readings in one GET /energy/power answer; a window with more is answered per bucket

_INTEGER = re.compile(r"-?[0-9]{1,10}", re.ASCII)


def read(params: dict | None, allowed: tuple[str, ...]) -> dict[str, str]:
    return query_params(params, allowed)


def integer(params: dict[str, str], name: str, minimum: int, maximum: int, default: int | None = None) -> int:
    text = params.get(name)
    if text is None:
        if default is None:
            raise InvalidParameter(f"{name} is required", parameter=name)
        return default
    if not _INTEGER.fullmatch(text) or not minimum <= int(text) <= maximum:
        raise InvalidParameter(f"{name} must be an integer between {minimum} and {maximum}, not {text!r}",
                               parameter=name)
    return int(text)


def instant(params: dict[str, str], name: str, required: bool = True) -> int | None:
    text = params.get(name)
    if text is None:
        if required:
            raise InvalidParameter(f"{name} is required (ISO 8601, such as 2019-01-05T00:00:00Z)", parameter=name)
        return None
    # "+02:00" not percent-encoded arrives as " 02:00"
    value = times.parse(re.sub(r" (\d{2}(?::?\d{2})?)$", r"+\1", text), require_offset=False)
    if value is None:
        raise InvalidParameter(f"{name} must be ISO 8601 (2019-01-05T00:00:00Z, or 2019-01-05T00-00-00Z), not "
                               f"{text!r}", parameter=name)
    return times.to_us(value)


@dataclass(frozen=True)
class Window:
    start: int  # µs, aligned to the step
    end: int
    step: int


def window(params: dict[str, str], required: bool = True, step_name: str | None = "resolution") -> Window | None:
    """The steps whose start lies in [start, end); both or neither when not required."""
    resolution = params.get(step_name, "15m") if step_name else "15m"
    if resolution not in times.RESOLUTIONS:
        raise InvalidParameter(f"resolution must be 15m, 1h or 1d, not {resolution!r}", parameter="resolution")
    step = times.RESOLUTIONS[resolution]
    start, end = instant(params, "start", required), instant(params, "end", required)
    if start is None and end is None:
        return None
    if start is None or end is None:
        missing = "start" if start is None else "end"
        raise InvalidParameter(f"give both start and end, or neither ({missing} is missing)", parameter=missing)
    if end <= start:
        raise InvalidParameter("end must be after start (the window is [start, end))", parameter="end")
    lo, hi = times.ceil(start, step), times.ceil(end, step)
    if (hi - lo) // step > MAX_POINTS:
        raise InvalidParameter(f"the window holds {(hi - lo) // step} steps of {resolution}; at most {MAX_POINTS} "
                               f"(use a coarser resolution or a shorter window)", parameter="end")
    return Window(lo, hi, step)


def resolution_name(step: int) -> str:
    return next(name for name, value in times.RESOLUTIONS.items() if value == step)


def wants_csv(params: dict[str, str], accept: str | None) -> bool:
    """?format= wins, else the Accept header: negotiated one way for every route (wattprint.query)."""
    return query.wants_csv(params.get("format"), accept)
