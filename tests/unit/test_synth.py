"""The demo's appliance cycles (local.synth.appliance_records): households whose loads add up."""

import itertools
from datetime import timedelta

from local import synth
from wattprint.ingest import parser


def take(n, **kwargs):
    return list(itertools.islice(synth.appliance_records(**kwargs), n))


def test_deterministic_round_robin_and_sensor_time_advances_by_the_step():
    a, b = take(300, devices=3, seed=4), take(300, devices=3, seed=4)
    assert a == b and a != take(300, devices=3, seed=5)
    assert [r.device_id for r in a[:6]] == [1, 2, 3, 1, 2, 3]
    ones = [r for r in a if r.device_id == 1]
    assert all(y.sensor_time - x.sensor_time == timedelta(seconds=10) for x, y in zip(ones, ones[1:]))


def test_every_reading_is_standby_plus_a_set_of_appliances():
    powers = [a[1] for a in synth.APPLIANCES]
    sigmas = [a[1] * a[2] for a in synth.APPLIANCES]
    combos = [frozenset(c) for k in range(len(powers) + 1) for c in itertools.combinations(range(len(powers)), k)]
    seen = set()
    for record in take(6000, devices=3, seed=1):
        def off(combo):  # how far from the combination's level, in its standard deviations (+ standby's noise)
            level = synth.STANDBY_W + sum(powers[i] for i in combo)
            return abs(record.active_power_w - level) / (sum(sigmas[i] ** 2 for i in combo) ** 0.5 + 2)
        combo = min(combos, key=off)
        assert off(combo) <= 6
        seen.add(combo)
    assert {frozenset(), frozenset({0}), frozenset({1}), frozenset({2})} <= seen  # each one alone, and standby


def test_lines_parse_back_to_the_records():
    records = take(20, devices=2, seed=3)
    lines = list(itertools.islice(synth.appliance_lines(devices=2, seed=3), 20))
    assert [parser.parse_event(line) for line in lines] == [parser.parse_event(synth.render(r, "firmware"))
                                                             for r in records]
