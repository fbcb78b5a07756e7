"""What the tests compare wattprint with: the features read from raw lines without wattprint's parser."""

import re

import numpy as np


def independent_features(lines: list[str]) -> np.ndarray:
    """The eight features straight from the real file's lines: split on ';', pick the keys (not wattprint.ingest.parser)."""
    number = re.compile(r"-?\d+(?:\.\d+)?")
    rows = []
    for line in lines:
        parts = [p.strip() for p in line.split(";")]
        values = {}
        for part in parts:
            if "=" in part:
                key, value = part.rsplit("=", 1)
                values[key.split(":")[-1].strip()] = value
        peaks = next(i for i, p in enumerate(parts) if p.startswith("Peaks:"))
        rows.append([float(number.match(values[key]).group())
                     for key in ("Active", "Reactive", "Appearent", "Current", "Voltage")]
                    + [float(parts[peaks].split(":")[1]), float(parts[peaks + 1]), float(parts[peaks + 2])])
    return np.array(rows, dtype=np.float64)
