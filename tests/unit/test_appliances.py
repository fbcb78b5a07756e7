"""Appliance states, the pure part: recordings, learning, decoding (against generated data with known truth)."""

from __future__ import annotations

import math
import random

import pytest

from local import nilm_synth
from wattprint.appliances import decode, model, recording
from wattprint.errors import BadRequest, InvalidModel, InvalidRecording, TooMuchWork

HEADER = "Timestamp,Maximum current,Effective current\n"


def rows(n: int, start: float = 1536129671.0) -> str:
    return HEADER + "".join(f"{start + i:.5f},{24.41 + i % 3},{17.3 + i % 2}\n" for i in range(n))


def accuracy(predicted: list[str], truth: list[str]) -> float:
    return sum(p == t for p, t in zip(predicted, truth)) / len(truth)


@pytest.fixture(scope="module")
def reference_models():
    return [model.learn(spec.name, recording.parse(nilm_synth.training(spec, seed=10 + i).csv()))
            for i, spec in enumerate(nilm_synth.reference())]


# ------------------------------------------------------------------------------------------------ recordings

def test_parse_keeps_text_finds_columns_by_name_and_takes_iso_times():
    text = ("\ufeffnote, effective current ,Timestamp,MAXIMUM CURRENT\n"
            "a,17.30,2018-09-06T06:41:11Z,24.41\n\nb,0,2018-09-06T06:41:12.5,30\n")
    rec = recording.parse(text)
    assert rec.rms == [17.3, 0.0] and rec.peak == [24.41, 30.0] and rec.rms_text == ["17.30", "0"]
    assert rec.seconds[1] - rec.seconds[0] == 1.5 and rec.timestamps[0] == "2018-09-06T06:41:11Z"
    out = recording.labelled_csv(rec, ["A", "=B"], [["ON", "OFF"], ["OFF", "OFF"]]).splitlines()
    assert out == ["timestamp,Maximum current,Effective current,A state,'=B state",
                   "2018-09-06T06:41:11Z,24.41,17.30,ON,OFF", "2018-09-06T06:41:12.5,30,0,OFF,OFF"]


@pytest.mark.parametrize("text, row, column, words", [
    ("", 1, None, "empty"),
    ("Timestamp,Effective current\n1,2\n", 1, "Maximum current", "missing column"),
    ("time,a,b\n1,2,3\n", 1, "Timestamp", "missing column"),
    (HEADER + "1,2,3\n2,x,3\n", 3, "Maximum current", "not a number"),
    (HEADER + "1,2,3\n2,2,\n", 3, "Effective current", "not a number"),
    (HEADER + "1,2,-3\n", 2, "Effective current", "0 or more"),
    (HEADER + "1,2,nan\n", 2, "Effective current", "finite"),
    (HEADER + "1,2,3\n2,2\n", 3, "Effective current", "no 'Effective current'"),
    (HEADER + "1,2,3\n3,2,3\n2,2,3\n", 4, "Timestamp", "earlier"),
    (HEADER + "1,2,3\n2,2,3\n2,2,3\n", 4, "Timestamp", "repeats"),
    (HEADER + "yesterday,2,3\n", 2, "Timestamp", "neither Unix seconds nor"),
    (HEADER + '1,2,"3\n', 2, None, "not CSV"),
    (HEADER, 1, None, "0 reading row"),
])
def test_bad_recordings_name_row_and_column(text, row, column, words):
    with pytest.raises(InvalidRecording) as caught:
        recording.parse(text)
    error = caught.value
    assert (error.status, error.code, error.details["row"], error.details["column"]) == \
        (400, "invalid_recording", row, column)
    assert words in error.message


def test_too_short_and_too_long():
    with pytest.raises(InvalidRecording, match="at least 60") as caught:
        recording.parse(rows(59), min_rows=model.MIN_ROWS)
    assert caught.value.details["row"] == 60  # the last row read
    with pytest.raises(InvalidRecording, match="more than 10 rows") as caught:
        recording.parse(rows(11), max_rows=10)
    assert caught.value.details["row"] == 12
    assert len(recording.parse(rows(10), max_rows=10)) == 10


# -------------------------------------------------------------------------------------------------- learning

def test_learns_the_reference_appliances_states_and_levels(reference_models):
    for spec, learnt in zip(nilm_synth.reference(), reference_models):
        assert [s.name for s in learnt.states] == [s.name for s in spec.states]
        for truth, state in zip(spec.states, learnt.states):
            assert abs(state.rms - truth.rms) < 0.06 * truth.rms + 0.3, (spec.name, state)
            assert state.rms_sd > 0 and state.peak > state.rms  # peaky waveforms: crest factor > 1
        assert 1e-4 < learnt.switch_p < 0.02
        assert abs(sum(s.share for s in learnt.states) - 1) < 1e-9


def test_state_names_given_and_their_errors():
    spec = nilm_synth.reference()[2]
    text = nilm_synth.training(spec, seed=3).csv()
    learnt = model.learn("Heater", recording.parse(text), model.parse_state_names(" cold, warm "))
    assert [s.name for s in learnt.states] == ["cold", "warm"] and learnt.states[0].rms < learnt.states[1].rms
    with pytest.raises(InvalidModel, match="3 state names given, but the recording shows 2"):
        model.learn("Heater", recording.parse(text), ("A", "B", "C"))
    for bad, words in (("OFF,off", "repeat"), ("A,B,C,D,E", "at most 4"), ("OFF,=ON", "letters")):
        with pytest.raises(InvalidModel, match=words):
            model.parse_state_names(bad)
    for name in ("", " lead", "a,b", "x" * 65, "new\nline"):
        with pytest.raises(InvalidModel, match="appliance name"):
            model.check_name(name)


def test_a_steady_appliance_has_one_state_and_a_round_trip_through_json():
    rng = random.Random(1)
    text = HEADER + "".join(f"{i},{60 + rng.gauss(0, 1):.2f},{40 + rng.gauss(0, 0.5):.2f}\n" for i in range(300))
    learnt = model.learn("Router", recording.parse(text))
    assert [s.name for s in learnt.states] == ["ON"] and abs(learnt.states[0].rms - 40) < 0.3
    assert model.ApplianceModel.from_json(learnt.to_json()) == learnt


def test_transients_do_not_become_states():
    """A few seconds of inrush at each switch are far from both levels, and too rare to be a state."""
    lines = [HEADER]
    for i in range(1200):
        on = (i // 100) % 2
        level = 300 if i % 100 == 0 and on else (50 if on else 1)  # 6 one-second spikes
        lines.append(f"{i},{level * 1.4:.2f},{level:.2f}\n")
    learnt = model.learn("Kettle", recording.parse("".join(lines)))
    assert [round(s.rms) for s in learnt.states] == [1, 50]


# -------------------------------------------------------------------------------------------------- decoding

def test_decodes_the_reference_setting(reference_models):
    mains = nilm_synth.generate(nilm_synth.reference(), 4 * 3600, seed=4)
    decoded = decode.decode(reference_models, recording.parse(mains.csv()))
    states = decoded.states(reference_models)
    for a, learnt in enumerate(reference_models):
        assert accuracy(states[a], mains.truth[a]) >= 0.95, learnt.name
        # smoothed: about as many switches as the truth has, not a flicker at every noisy second
        switches = sum(x != y for x, y in zip(states[a], states[a][1:]))
        true_switches = sum(x != y for x, y in zip(mains.truth[a], mains.truth[a][1:]))
        assert switches <= 3 * true_switches + 2, learnt.name
    # the generator sums waveforms of different shapes: their RMS values do not add exactly
    assert 0.7 < decoded.rho_rms < 0.99


def test_smoothing_is_what_gets_there():
    """Without the switching cost (every appliance free to switch at every second) the same decoder flickers."""
    specs = nilm_synth.reference()
    models = [model.learn(s.name, recording.parse(nilm_synth.training(s, seed=20 + i, noise=3).csv()))
              for i, s in enumerate(specs)]
    mains = nilm_synth.generate(specs, 3600, seed=21, noise=3)
    rec = recording.parse(mains.csv())
    free = [model.ApplianceModel(m.name, m.states, 0.5, m.rows) for m in models]
    smooth = decode.decode(models, rec).states(models)
    flicker = decode.decode(free, rec).states(free)
    flips = lambda states: sum(x != y for s in states for x, y in zip(s, s[1:]))  # noqa: E731
    assert flips(flicker) > 3 * flips(smooth)
    assert sum(map(accuracy, smooth, mains.truth)) > sum(map(accuracy, flicker, mains.truth))


def _brute_force(rms, peak, params, models, combos):
    """Textbook Viterbi over every pair of combinations (O(K^2) per second), the transition cost summed over the
    appliances that change."""
    costs = {a: -math.log(m.switch_p / (len(m.states) - 1)) + math.log(1 - m.switch_p) for a, m in enumerate(models)}

    def emit(c, y_r, y_p):
        mr, ir, mp, ip, k = params[c]
        h = lambda z: 0.5 * z * z if z < 3 else 3 * z - 4.5  # noqa: E731
        return h(abs((y_r - mr) * ir)) + h(abs((y_p - mp) * ip)) + k

    cost = [0.0] * len(combos)
    back = []
    for y_r, y_p in zip(rms, peak):
        step, new = [], []
        for c, combo in enumerate(combos):
            options = [(cost[d] + sum(costs[a] for a in range(len(combo)) if combo[a] != other[a]), d)
                       for d, other in enumerate(combos)]
            best, origin = min(options)
            new.append(best + emit(c, y_r, y_p))
            step.append(origin)
        cost = new
        back.append(step)
    return min(cost)


def test_factorised_transitions_give_the_textbook_viterbi_optimum():
    rng = random.Random(5)
    models = [model.ApplianceModel(f"A{a}", tuple(model.State(f"S{s}", 5.0 + 20 * s + a, 1.0 + a, 9.0 + 40 * s, 2.0,
                                                              0.5) for s in range(k)), p, 100)
              for a, (k, p) in enumerate(((3, 0.01), (2, 0.2), (3, 0.05)))]
    combos = decode.combinations(models)
    params = decode._expected(models, combos, 0.9, 1.0, 1.0, 1.0)
    rms = [rng.uniform(0, 130) for _ in range(40)]
    peak = [rng.uniform(0, 250) for _ in range(40)]
    path = decode._viterbi(rms, peak, params, decode._groups(models, combos))
    # the path the fast decoder returns costs exactly the textbook optimum
    costs = {a: -math.log(m.switch_p / (len(m.states) - 1)) + math.log(1 - m.switch_p) for a, m in enumerate(models)}

    def path_cost(path):
        total = 0.0
        for t, c in enumerate(path):
            mr, ir, mp, ip, k = params[c]
            h = lambda z: 0.5 * z * z if z < 3 else 3 * z - 4.5  # noqa: E731
            total += h(abs((rms[t] - mr) * ir)) + h(abs((peak[t] - mp) * ip)) + k
            if t:
                total += sum(costs[a] for a in range(3) if combos[c][a] != combos[path[t - 1]][a])
        return total

    assert path_cost(path) == pytest.approx(_brute_force(rms, peak, params, models, combos), rel=1e-9)
    assert len(set(path)) > 3  # the problem made it switch: a trivial path would not test the transitions


@pytest.mark.parametrize("law, expected", [("linear", 1.0), ("quadrature", 0.0)])
def test_rho_is_fitted_from_the_mains(law, expected):
    """Readings made by adding the states' levels linearly, or in quadrature, give back rho 1 or 0."""
    models = [model.ApplianceModel("A", (model.State("OFF", 2, 0.2, 4, 0.3, 0.5), model.State("ON", 60, 1, 120, 2, 0.5)),
                                   0.001, 100),
              model.ApplianceModel("B", (model.State("OFF", 3, 0.2, 5, 0.3, 0.5), model.State("ON", 35, 1, 70, 2, 0.5)),
                                   0.001, 100)]
    rng = random.Random(2)
    lines = [HEADER]
    for t in range(2000):
        on = ((t // 300) % 2, (t // 170) % 2)
        levels = [m.states[s] for m, s in zip(models, on)]
        add = (lambda xs: sum(xs)) if law == "linear" else (lambda xs: math.sqrt(sum(x * x for x in xs)))
        lines.append(f"{t},{add([s.peak for s in levels]) + rng.gauss(0, 0.3):.2f},"
                     f"{add([s.rms for s in levels]) + rng.gauss(0, 0.3):.2f}\n")
    decoded = decode.decode(models, recording.parse("".join(lines)))
    assert decoded.rho_rms == pytest.approx(expected, abs=0.05)
    assert decoded.rho_peak == pytest.approx(expected, abs=0.05)


def test_decode_refuses_what_it_cannot_do(reference_models):
    rec = recording.parse(rows(100))
    with pytest.raises(BadRequest, match="no appliance model"):
        decode.decode([], rec)
    many = [model.ApplianceModel(f"A{i}", reference_models[0].states, 0.01, 100) for i in range(6)]  # 3^6 = 729
    with pytest.raises(TooMuchWork, match="729 state combinations"):
        decode.decode(many, rec)
    n = decode.MAX_WORK // 18 + 1
    long = recording.parse(rows(n), max_rows=n)
    with pytest.raises(TooMuchWork, match="rows x 18"):
        decode.decode(reference_models, long)
