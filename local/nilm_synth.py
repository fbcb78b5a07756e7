"""Generated appliance recordings with known truth, for tests, the bench and the NILM report (never shipped).

Each appliance is a Markov chain of states with random dwell times (lognormal around a mean, at least MIN_DWELL
seconds); each state draws a current of a given RMS level and waveform shape (a sum of odd harmonics: a PC
display's switched-mode supply draws narrow pulses at the voltage peaks, a heating element a sine). Per second the
level jitters (1.5 %) and drifts slowly (2 %, AR(1)); switching up adds an inrush transient (a second of 1.6x
current whose peak also carries a spike). The mains is the sum of the appliances' waveforms, so its RMS and peak
come out of the physics, not of adding the appliances' readings; each reading then gets measurement noise
(`noise` scales the reference: 0.3 mA + 1 % on RMS, 1.5x that on the peak) and is written with 2 decimals.
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass
from datetime import datetime

SAMPLES = 32  # points per mains cycle: enough for the 7th harmonic
MIN_DWELL = 15
START = 1536129671.00052


@dataclass(frozen=True)
class StateSpec:
    name: str
    rms: float  # mA
    harmonics: tuple[tuple[int, float, float], ...]  # (order, amplitude, phase in radians)
    dwell: float  # mean seconds


@dataclass(frozen=True)
class ApplianceSpec:
    name: str
    states: tuple[StateSpec, ...]
    next: dict  # state name -> ((state name, probability), ...)


def _smps(h3: float, h5: float, h7: float, shift: float = 0.0):
    # Odd harmonics whose crests line up at the voltage peak (90 degrees): narrow pulses, crest factor ~2.5-3.
    return ((1, 1.0, shift), (3, h3, math.pi + 3 * shift), (5, h5, 5 * shift), (7, h7, math.pi + 7 * shift))


SINE = ((1, 1.0, 0.0),)
LAGGING = ((1, 1.0, -1.1), (3, 0.05, 0.0))  # a small transformer supply: the current lags the voltage


def reference() -> list[ApplianceSpec]:
    """Two PC displays (OFF, IDLE, ON) of different sizes and a temperature sensor with a heater (OFF, ON)."""
    screen = {"OFF": (("ON", 0.7), ("IDLE", 0.3)), "IDLE": (("ON", 0.5), ("OFF", 0.5)),
              "ON": (("IDLE", 0.6), ("OFF", 0.4))}
    return [
        ApplianceSpec("PC screen1", (
            StateSpec("OFF", 2.2, _smps(0.85, 0.6, 0.35), 1500),
            StateSpec("IDLE", 10.0, _smps(0.8, 0.55, 0.3), 400),
            StateSpec("ON", 95.0, _smps(0.75, 0.5, 0.25), 1200)), screen),
        ApplianceSpec("PC screen2", (
            StateSpec("OFF", 3.4, _smps(0.7, 0.45, 0.2, 0.1), 1800),
            StateSpec("IDLE", 18.0, _smps(0.65, 0.4, 0.2, 0.1), 500),
            StateSpec("ON", 150.0, _smps(0.6, 0.35, 0.15, 0.1), 1500)), screen),
        ApplianceSpec("Temperature sensor", (
            StateSpec("OFF", 1.2, LAGGING, 400),
            StateSpec("ON", 26.0, SINE, 200)), {"OFF": (("ON", 1.0),), "ON": (("OFF", 1.0),)}),
    ]


def _wave(harmonics) -> list[float]:
    points = [sum(a * math.sin(h * 2 * math.pi * i / SAMPLES + phase) for h, a, phase in harmonics)
              for i in range(SAMPLES)]
    rms = math.sqrt(sum(x * x for x in points) / SAMPLES)
    return [x / rms for x in points]


def schedule(spec: ApplianceSpec, seconds: int, rng: random.Random, dwell_scale: float = 1.0,
             cycle: bool = False) -> list[int]:
    """The state index at each second: the Markov chain, or with `cycle` every state in turn, up and down."""
    index = {s.name: i for i, s in enumerate(spec.states)}
    k = len(spec.states)
    turn = list(range(k)) + list(range(k - 2, 0, -1))  # 0 1 2 1 | 0 1 2 1 ...
    state = 0 if cycle else rng.randrange(k)
    out: list[int] = []
    step = 0
    while len(out) < seconds:
        mean = spec.states[state].dwell * dwell_scale
        dwell = max(MIN_DWELL, int(rng.lognormvariate(math.log(mean) - 0.18, 0.6)))
        out.extend([state] * dwell)
        if cycle:
            step += 1
            state = turn[step % len(turn)]
        else:
            names, weights = zip(*spec.next[spec.states[state].name])
            state = index[rng.choices(names, weights)[0]]
    return out[:seconds]


@dataclass(frozen=True)
class Synthetic:
    rows: list[tuple[str, str, str]]  # Timestamp, Maximum current, Effective current (as written)
    truth: list[list[str]]  # per appliance, its state name at each row
    names: list[str]

    def csv(self) -> str:
        lines = ["Timestamp,Maximum current,Effective current"]
        lines += [",".join(row) for row in self.rows]
        return "\n".join(lines) + "\n"


def generate(specs: list[ApplianceSpec], seconds: int, seed: int, noise: float = 1.0,
             dwell_scale: float = 1.0, cycle: bool = False) -> Synthetic:
    """The mains of `specs` together (one spec: that appliance alone) for `seconds` 1 s rows."""
    rng = random.Random(seed)
    schedules = [schedule(spec, seconds, rng, dwell_scale, cycle) for spec in specs]
    waves = [[_wave(s.harmonics) for s in spec.states] for spec in specs]
    drift = [0.0] * len(specs)
    rows = []
    stamp = START
    for t in range(seconds):
        total = [0.0] * SAMPLES
        spike = 0.0
        for a, spec in enumerate(specs):
            state = schedules[a][t]
            drift[a] = 0.995 * drift[a] + rng.gauss(0, 0.02 * math.sqrt(1 - 0.995 ** 2))
            level = spec.states[state].rms * (1 + drift[a] + rng.gauss(0, 0.015))
            if t and spec.states[state].rms > spec.states[schedules[a][t - 1]].rms:
                level *= 1.6  # inrush: capacitors charging, a heater's cold resistance
                spike += 1.5 * level
            wave = waves[a][state]
            total = [x + level * w for x, w in zip(total, wave)]
        rms = math.sqrt(sum(x * x for x in total) / SAMPLES)
        peak = max(abs(x) for x in total) + spike
        rms = max(0.0, rms + rng.gauss(0, noise * (0.3 + 0.01 * rms)))
        peak = max(0.0, peak + rng.gauss(0, noise * 1.5 * (0.3 + 0.01 * peak)))
        rows.append((f"{stamp:.5f}", f"{peak:.2f}", f"{rms:.2f}"))
        stamp += 1.0 + rng.uniform(-0.002, 0.002)
    truth = [[spec.states[s].name for s in sched] for spec, sched in zip(specs, schedules)]
    return Synthetic(rows, truth, [spec.name for spec in specs])


def training(spec: ApplianceSpec, seed: int, seconds: int = 3600, noise: float = 1.0) -> Synthetic:
    """A recording of the appliance alone going through its states in turn, dwell times shortened so an hour
    visits each a few times."""
    return generate([spec], seconds, seed, noise, dwell_scale=0.25, cycle=True)


def events(mains: Synthetic, device_id: int = 1, seed: int = 0, start: datetime | None = None) -> list:
    """The mains as one sensor event a second (wattprint.appliances.states reads them back): the event's current
    is the row's Effective current and the largest of its ten peaks the row's Maximum current, both in A (the
    other peaks fall between the two); powers, voltage and the rest are plausible at 230 V. Unrounded: the real
    sensors' 3 decimals of A (1 mA steps) would blur the reference setting's 2 mA OFF from its noise."""
    from datetime import timedelta, timezone

    from wattprint.ingest.record import new_record

    rng = random.Random(seed)
    t = start or datetime.fromtimestamp(int(START), tz=timezone.utc)
    out = []
    for _, peak_ma, rms_ma in mains.rows:
        rms, peak = float(rms_ma) / 1000, float(peak_ma) / 1000
        low = min(rms, peak)
        peaks = tuple([peak] + [low + (peak - low) * rng.random() for _ in range(9)])
        voltage = round(230 + rng.gauss(0, 0.5), 2)
        apparent = voltage * rms
        active = apparent * 0.9
        out.append(new_record(device_id, "16071801", 1, False, active, apparent * 0.43, apparent, rms, voltage,
                              -0.45, peaks, (1.0, 0.0, 0.0), (0.0, 0.0, 0.0), t, 50.0, -60, 20))
        t += timedelta(seconds=1)
    return out


def main(argv: list[str] | None = None) -> int:
    """python -m local.nilm_synth DIR [--hours H] [--seed S] [--noise N]: the reference setting's recordings."""
    import argparse
    import csv
    from pathlib import Path

    parser = argparse.ArgumentParser(prog="python -m local.nilm_synth", description=main.__doc__)
    parser.add_argument("directory", type=Path)
    parser.add_argument("--hours", type=float, default=6)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--noise", type=float, default=1.0)
    args = parser.parse_args(argv)
    args.directory.mkdir(parents=True, exist_ok=True)
    specs = reference()
    for i, spec in enumerate(specs):
        path = args.directory / (spec.name.replace(" ", "_") + ".csv")
        path.write_text(training(spec, 1000 * args.seed + i, noise=args.noise).csv())
    mains = generate(specs, int(args.hours * 3600), args.seed, args.noise)
    (args.directory / "main.csv").write_text(mains.csv())
    with open(args.directory / "truth.csv", "w", newline="") as handle:
        writer = csv.writer(handle, lineterminator="\n")
        writer.writerow(["timestamp"] + [f"{name} state" for name in mains.names])
        writer.writerows(zip([row[0] for row in mains.rows], *mains.truth))
    print(f"wrote {len(specs)} training recordings, main.csv ({len(mains.rows)} rows) and truth.csv to "
          f"{args.directory}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
