"""Live appliance states, the pure parts: the decoder carried across calls, the appliances announcement's shape,
and ingest's trigger (how often it asks)."""

from __future__ import annotations

import json

import pytest

from local import nilm_synth
from wattprint.appliances import decode, model, recording, service
from wattprint.errors import TooMuchWork
from wattprint.live import announce

SPECS = nilm_synth.reference()


@pytest.fixture(scope="module")
def models():
    return [model.learn(s.name, recording.parse(nilm_synth.training(s, 80 + i).csv()),
                        ("OFF", "ON") if len(s.states) == 2 else None) for i, s in enumerate(SPECS)]


def readings(seconds: int, seed: int) -> tuple[list[tuple], nilm_synth.Synthetic]:
    mains = nilm_synth.generate(SPECS, seconds, seed=seed)
    return [(i, float(t), float(rms), float(peak)) for i, (t, peak, rms) in enumerate(mains.rows)], mains


def test_nothing_is_decided_until_lag_readings_follow(models):
    rows, _ = readings(10, 1)
    decided, carried = decode.decode_live(models, None, rows[:decode.LAG])
    assert decided == [] and carried.pending == rows[:decode.LAG] and len(carried.cost) == 18
    decided, carried = decode.decode_live(models, carried, rows[decode.LAG:decode.LAG + 1])
    assert [r for r, _ in decided] == rows[:1] and carried.pending == rows[1:decode.LAG + 1]


def test_one_reading_at_a_time_decides_about_as_well_as_one_batch(models, monkeypatch):
    monkeypatch.setattr(decode, "MIN_FIT_READINGS", 10**9)  # the same (unfitted) rho for both
    rows, mains = readings(600, 2)
    whole, _ = decode.decode_live(models, None, rows)
    carried, single = None, []
    for row in rows:
        out, carried = decode.decode_live(models, carried, [row])
        single += out
        carried = decode.Carried.from_json(json.loads(json.dumps(carried.to_json())))  # as the database keeps it
    assert [r for r, _ in single] == [r for r, _ in whole] == rows[:-decode.LAG]

    def accuracy(decided, a):
        return sum(models[a].states[c[a]].name == mains.truth[a][r[0]] for r, c in decided) / len(decided)

    # Each reading decided with LAG readings after it rather than all of them: about as right.
    for a in range(len(models)):
        assert accuracy(single, a) >= accuracy(whole, a) - 0.02


def test_the_running_fit_finds_the_mains_rho(models):
    rows, mains = readings(1800, 3)
    carried = None
    for i in range(0, len(rows), 30):
        _, carried = decode.decode_live(models, carried, rows[i:i + 30])
    rho_rms, rho_peak, scale_rms, scale_peak = carried.calibration()
    # The generated appliances' waveforms differ (a switched-mode supply's pulses, a heater's sine): RMS values
    # add with rho below 1.
    assert 0.5 < rho_rms < 0.99 and 0 <= rho_peak <= 1 and scale_rms >= 1 and scale_peak >= 1


def test_other_models_start_afresh_and_too_many_combinations_are_refused(models):
    rows, _ = readings(20, 4)
    _, carried = decode.decode_live(models, None, rows)
    decided, fresh = decode.decode_live(models[:2], carried, rows[:5])  # 9 combinations, not 18: a fresh start
    assert len(fresh.cost) == 9 and [r for r, _ in decided] == rows[:5 - decode.LAG]
    with pytest.raises(TooMuchWork):
        decode.decode_live(models * 5, None, rows)


ITEM = {"device_id": 1, "appliance": "Kettle", "state": "ON", "since": "2026-12-02T12:03:04.000000Z",
        "since_seq": 5, "seen_at": "2026-12-02T12:03:09.000000Z", "seen_seq": 9}


@pytest.mark.parametrize("bad", [
    {"kind": "appliances", "items": [ITEM]},  # no truncated
    {"kind": "appliances", "items": [{**ITEM, "state": 1}], "truncated": False},
    {"kind": "appliances", "items": [{**ITEM, "device_id": True}], "truncated": False},
    {"kind": "appliances", "items": [{k: v for k, v in ITEM.items() if k != "since"}], "truncated": False},
    {"kind": "appliances", "items": [{**ITEM, "extra": 1}], "truncated": False},
    {"kind": "appliances", "items": "all", "truncated": False},
])
def test_an_appliances_announcement_must_hold_states(bad):
    with pytest.raises(announce.InvalidAnnouncement):
        announce.parse(json.dumps(bad))


def test_an_appliances_announcement_parses():
    doc = {"kind": "appliances", "items": [ITEM], "truncated": False}
    assert announce.parse(json.dumps(doc)) == doc


class Clock:
    now = 100.0

    def __call__(self):
        return self.now


def test_ingest_asks_at_most_once_an_interval_and_only_with_a_model(monkeypatch):
    clock, answers = Clock(), [False]
    monkeypatch.setattr(service.db, "execute", lambda sql, **kw: [[answers[0]]])
    trigger = service._Trigger(clock=clock)
    assert not trigger.due()  # no model
    answers[0] = True
    clock.now += 1
    assert not trigger.due()  # the "no model" answer is trusted for MODELS_TTL
    clock.now += service.MODELS_TTL
    assert trigger.due() and not trigger.due()
    clock.now += service.TRIGGER_INTERVAL
    assert trigger.due()

    answers[0] = False
    clock.now += service.MODELS_TTL + service.TRIGGER_INTERVAL
    assert not trigger.due()  # the models are gone
    answers[0] = True
    trigger.forget_models()  # a model stored in this instance: it counts again at once
    assert trigger.due()

    def down(sql, **kw):
        raise OSError("database gone")

    monkeypatch.setattr(service.db, "execute", down)
    clock.now += service.MODELS_TTL
    assert trigger.due()  # when in doubt, ask
