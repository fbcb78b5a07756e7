"""The eight clustering features, in the order the clustering spec fixes (columns of the data matrix)."""

from __future__ import annotations

# (name in reports, SQL expression over the events table)
FEATURE_COLUMNS: tuple[tuple[str, str], ...] = (
    ("active_power_w", "active_power_w"),
    ("reactive_power_var", "reactive_power_var"),
    ("apparent_power_va", "apparent_power_va"),
    ("current_a", "current_a"),
    ("voltage_v", "voltage_v"),
    ("peak_1", "peaks[1]"),
    ("peak_2", "peaks[2]"),
    ("peak_3", "peaks[3]"),
)

FEATURES: tuple[str, ...] = tuple(name for name, _ in FEATURE_COLUMNS)


def named(values) -> dict[str, float]:
    """A centre (eight numbers in FEATURES order) as a name → value mapping."""
    return dict(zip(FEATURES, values, strict=True))
