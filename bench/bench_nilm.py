"""Appliance states from the mains (issue 16 part 2): accuracy and macro-F1 per appliance over seeds and noise
levels of generated recordings (local/nilm_synth.py, the reference setting), and the decoder's speed; the same for
the live decoder (decode.decode_live, fed the mains in requests of 1 to 60 readings, as the states function is).

    python -m bench nilm

Per seed and noise level: each appliance's model is learnt from its own generated hour, then a 6-hour mains
recording of the three together is decoded. Noise 1.0 is the reference setting's measurement noise
(0.3 mA + 1 % on the effective current, 1.5x that on the maximum current).
"""

from __future__ import annotations

import statistics
import time
from dataclasses import dataclass

from . import common  # noqa: F401  (sets sys.path)
from local import nilm_synth  # noqa: E402
from wattprint.appliances import decode, model, recording  # noqa: E402

SEEDS = (1, 2, 3)
NOISES = (0.5, 1.0, 2.0, 4.0)
HOURS = 6
TARGET_ACCURACY = 0.95
TARGET_ROWS_PER_S = 5000  # a day of 1 s rows in under 18 s, inside API Gateway's 29 s


@dataclass
class Trial:
    seed: int
    noise: float
    names: list[str]
    states: list[list[str]]  # per appliance, its states' names
    truth: list[list[str]]
    labelled: list[list[str]]
    mains: recording.Recording
    rho_rms: float
    models: list[model.ApplianceModel]


def trial(seed: int, noise: float, hours: float = HOURS) -> Trial:
    specs = nilm_synth.reference()
    models = [model.learn(spec.name, recording.parse(nilm_synth.training(spec, 1000 * seed + i, noise=noise).csv()))
              for i, spec in enumerate(specs)]
    mains = nilm_synth.generate(specs, int(hours * 3600), seed, noise)
    rec = recording.parse(mains.csv())
    decoded = decode.decode(models, rec)
    return Trial(seed, noise, mains.names, [[s.name for s in m.states] for m in models], mains.truth,
                 decoded.states(models), rec, decoded.rho_rms, models)


def live(t: Trial, seed: int = 0) -> tuple[list[list[str]], float]:
    """The trial's mains through the live decoder in requests of 1 to 60 readings, its decoder carried between
    them as the database keeps it (JSON): per appliance its states (the last LAG readings stay undecided), and
    the readings decoded per second."""
    import json
    import random

    rng = random.Random(seed)
    rows = [(i, t.mains.seconds[i], t.mains.rms[i], t.mains.peak[i]) for i in range(len(t.mains))]
    carried, decided, i = None, [], 0
    started = time.perf_counter()
    while i < len(rows):
        n = rng.randint(1, 60)
        out, carried = decode.decode_live(t.models, carried, rows[i:i + n])
        carried = decode.Carried.from_json(json.loads(json.dumps(carried.to_json())))
        decided += out
        i += n
    speed = len(rows) / (time.perf_counter() - started)
    return [[t.models[a].states[combo[a]].name for _, combo in decided] for a in range(len(t.models))], speed


def accuracy(truth: list[str], labelled: list[str]) -> float:
    return sum(t == p for t, p in zip(truth, labelled)) / len(truth)


def macro_f1(truth: list[str], labelled: list[str]) -> float:
    scores = []
    for state in sorted(set(truth)):
        tp = sum(t == state and p == state for t, p in zip(truth, labelled))
        fp = sum(t != state and p == state for t, p in zip(truth, labelled))
        fn = sum(t == state and p != state for t, p in zip(truth, labelled))
        scores.append(2 * tp / (2 * tp + fp + fn) if tp else 0.0)
    return statistics.mean(scores)


def decode_speed() -> tuple[float, int]:
    """Rows per second decoding a day of 1 s rows with the three reference appliances (best of 2)."""
    specs = nilm_synth.reference()
    models = [model.learn(s.name, recording.parse(nilm_synth.training(s, 90 + i).csv())) for i, s in enumerate(specs)]
    rec = recording.parse(nilm_synth.generate(specs, 86_400, 99).csv())
    best = float("inf")
    for _ in range(2):
        started = time.perf_counter()
        decode.decode(models, rec)
        best = min(best, time.perf_counter() - started)
    return len(rec) / best, len(decode.combinations(models))


def run() -> dict:
    trials = [trial(seed, noise) for noise in NOISES for seed in SEEDS]
    rows = []
    names = trials[0].names
    reference = [t for t in trials if t.noise == 1.0]
    worst = min(accuracy(t.truth[a], t.labelled[a]) for t in reference for a in range(len(names)))
    rows.append({"metric": f"lowest per-appliance accuracy, reference noise, {len(SEEDS)} seeds x {HOURS} h",
                 "value": f"{worst:.4f}", "target": f">= {TARGET_ACCURACY}", "met": worst >= TARGET_ACCURACY})
    for noise in NOISES:
        chosen = [t for t in trials if t.noise == noise]
        for a, name in enumerate(names):
            acc = statistics.mean(accuracy(t.truth[a], t.labelled[a]) for t in chosen)
            f1 = statistics.mean(macro_f1(t.truth[a], t.labelled[a]) for t in chosen)
            rows.append({"metric": f"noise x{noise:g}: {name} accuracy / macro-F1 (mean of {len(chosen)} seeds)",
                         "value": f"{acc:.4f} / {f1:.4f}"})
    lives = [(t, *live(t)) for t in reference]
    worst_live = min(accuracy(t.truth[a][:len(states[a])], states[a]) for t, states, _ in lives
                     for a in range(len(names)))
    rows.append({"metric": f"live decoder: lowest per-appliance accuracy, reference noise, {len(SEEDS)} seeds x "
                           f"{HOURS} h in requests of 1-60 readings",
                 "value": f"{worst_live:.4f}", "target": f">= {TARGET_ACCURACY}", "met": worst_live >= TARGET_ACCURACY})
    for a, name in enumerate(names):
        acc = statistics.mean(accuracy(t.truth[a][:len(states[a])], states[a]) for t, states, _ in lives)
        f1 = statistics.mean(macro_f1(t.truth[a][:len(states[a])], states[a]) for t, states, _ in lives)
        rows.append({"metric": f"live decoder, noise x1: {name} accuracy / macro-F1 (mean of {len(lives)} seeds)",
                     "value": f"{acc:.4f} / {f1:.4f}"})
    live_speed = min(speed for _, _, speed in lives)
    rows.append({"metric": "live decoder speed (requests of 1-60 readings, decoder through JSON each time; slowest "
                           "seed)", "value": f"{live_speed:,.0f} readings/s"})
    speed, combos = decode_speed()
    rows.append({"metric": f"decode a day of 1 s rows, 3 appliances ({combos} combinations, two passes), plain Python",
                 "value": f"{speed:,.0f} rows/s ({86_400 / speed:.1f} s a day)", "target": f">= {TARGET_ROWS_PER_S:,}",
                 "met": speed >= TARGET_ROWS_PER_S})
    rho = statistics.mean(t.rho_rms for t in reference)
    return {"title": "Appliance states from the mains (NILM)", "rows": rows,
            "notes": f"Generated data (local/nilm_synth.py): two PC displays (OFF, IDLE, ON) and a temperature sensor "
                     f"(OFF, ON); seeds {', '.join(map(str, SEEDS))}. The fitted rho of the effective currents (1: "
                     f"RMS values add) was {rho:.2f} on average at the reference noise. The pictures are made by "
                     "`make nilm-report` (docs/nilm/)."}
