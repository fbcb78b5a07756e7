"""Hypothesis strategies for valid records: every field drawn from its whole plausible range (record.RANGES)."""

from __future__ import annotations

import string
from datetime import datetime, timezone

from hypothesis import strategies as st

from wattprint.ingest.record import MIN_FFT, MIN_PEAKS, RANGES, TIME_MIN, EventRecord

UTC = timezone.utc


def number(field: str):
    low, high, _ = RANGES[field]
    if isinstance(low, int):
        return st.integers(min_value=low, max_value=high)
    return st.floats(min_value=low, max_value=high, allow_nan=False, allow_infinity=False)


firmware = st.text(alphabet=string.ascii_letters + string.digits + ".-/:= ", min_size=1,
                   max_size=12).filter(lambda s: s == s.strip())
# Up to a fixed past date: the upper bound is "a day from now", so any date before today is valid.
times = st.datetimes(min_value=TIME_MIN.replace(tzinfo=None), max_value=datetime(2025, 12, 31, 23, 59, 59),
                     timezones=st.just(UTC)).map(lambda t: t.replace(microsecond=0))


@st.composite
def records(draw):
    n = draw(st.integers(min_value=MIN_FFT, max_value=12))
    return EventRecord(
        device_id=draw(number("device_id")), firmware=draw(firmware), event_type=draw(number("event_type")),
        coil_reversed=draw(st.booleans()),
        active_power_w=draw(number("active_power_w")), reactive_power_var=draw(number("reactive_power_var")),
        apparent_power_va=draw(number("apparent_power_va")), current_a=draw(number("current_a")),
        voltage_v=draw(number("voltage_v")), phase_rad=draw(number("phase_rad")),
        peaks=tuple(draw(st.lists(number("peaks"), min_size=MIN_PEAKS, max_size=16))),
        fft_re=tuple(draw(st.lists(number("fft_re"), min_size=n, max_size=n))),
        fft_img=tuple(draw(st.lists(number("fft_img"), min_size=n, max_size=n))),
        sensor_time=draw(times), frequency_hz=draw(number("frequency_hz")),
        wifi_strength_dbm=draw(number("wifi_strength_dbm")), dummy=draw(number("dummy")),
    )
