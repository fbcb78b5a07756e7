"""Hourly energy use of households with known truth, for the alerts' tests and bench (never in the Lambda layer).

Each device has a daily shape (night base load, a morning and an evening peak), a weekend shape, multiplicative
noise, and injected anomalies whose hours are the truth a detector is judged against:
- `spike`: one hour far above the usual (a heater switched on for an hour);
- `stuck`: a load left on for several hours at night (the heater left on at 4 am);
- `dead`: the device's use drops to almost nothing for most of a day (the fridge died).
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone

START = datetime(2026, 1, 5, tzinfo=timezone.utc)  # a Monday


@dataclass
class Household:
    device_id: int
    hours: list[tuple[datetime, float]] = field(default_factory=list)  # (hour start, Wh)
    anomalies: dict[datetime, str] = field(default_factory=dict)  # hour start → kind


def _usual(rng_scale: float, when: datetime) -> float:
    hour = when.hour
    weekend = when.weekday() >= 5
    base = 120.0 * rng_scale  # fridge, standby
    morning = (350.0 if not weekend else 250.0) * math.exp(-((hour - (7 if not weekend else 9)) ** 2) / 2.0)
    evening = (600.0 if not weekend else 750.0) * math.exp(-((hour - 19) ** 2) / 4.0)
    midday = 250.0 * math.exp(-((hour - 13) ** 2) / 6.0) if weekend else 0.0
    return base + rng_scale * (morning + evening + midday)


def household(device_id: int, days: int = 91, seed: int = 0, noise: float = 0.10,
              spikes: int = 4, stuck: int = 2, dead: int = 1, quiet_days: int = 28) -> Household:
    """`days` of hourly Wh; anomalies are injected only after `quiet_days`, so each has a history to stand out of."""
    rng = random.Random(seed * 1000 + device_id)
    scale = rng.uniform(0.7, 1.4)
    house = Household(device_id)
    total = days * 24
    values = []
    for i in range(total):
        when = START + timedelta(hours=i)
        values.append(_usual(scale, when) * math.exp(rng.gauss(0.0, noise)))
    hours = list(range(quiet_days * 24, total - 24))
    taken: set[int] = set()

    def place(length: int, night: bool) -> int:
        for _ in range(10_000):
            i = rng.choice(hours)
            if night:
                i = i - i % 24 + rng.choice((1, 2, 3, 4))
            span = set(range(i - 24, i + length + 24))
            if not span & taken and i + length < total:
                taken.update(span)
                return i
        raise ValueError(f"{days} days leave no room for the anomalies asked for: give more days or fewer anomalies")

    for _ in range(spikes):
        i = place(1, night=False)
        values[i] += rng.uniform(1500.0, 2500.0)
        house.anomalies[START + timedelta(hours=i)] = "spike"
    for _ in range(stuck):
        i = place(5, night=True)
        for j in range(i, i + 5):
            values[j] += 2000.0
            house.anomalies[START + timedelta(hours=j)] = "stuck"
    for _ in range(dead):
        i = place(18, night=False)
        for j in range(i, i + 18):
            values[j] *= 0.02
            house.anomalies[START + timedelta(hours=j)] = "dead"
    house.hours = [(START + timedelta(hours=i), round(v, 3)) for i, v in enumerate(values)]
    return house
