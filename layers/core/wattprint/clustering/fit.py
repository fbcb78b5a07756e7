"""The fit: the spec's MeanShift on a run's data matrix, and the pure encodings around it (no I/O).

numpy and scikit-learn are imported here (and by wattprint.clustering.labels, which uses this module) and
nowhere else: only the cluster function runs them, and wattprint.clustering.service imports them on its first run.

The computation is exactly the spec's, on the eight features of wattprint.clustering.features in that order:

    bandwidth = estimate_bandwidth(data, quantile=0.2, n_samples=200)
    labels = MeanShift(bandwidth=bandwidth, cluster_all=False, bin_seeding=True).fit_predict(data)

`estimate_bandwidth` subsamples with `random_state=0` by default (scikit-learn 1.9.1), so the spec's call is
deterministic as written: the same events give the same bandwidth and labels on every run.

Around it: the binary COPY the data matrix arrives in (parse_copy), the checks that make a run fail for good
(PermanentRunError), the per-label statistics, and the binary COPY the labels leave in (labels_copy).
"""

from __future__ import annotations

import json
import struct
from dataclasses import dataclass

import joblib
import numpy as np
from sklearn.cluster import MeanShift, estimate_bandwidth

from .features import FEATURE_COLUMNS, FEATURES
from .runs import PermanentRunError

N_FEATURES = len(FEATURE_COLUMNS)
# Far beyond any reading (W, VAR, VA, A, V) and far below what breaks the fit: squared distances overflow
# float64 near 1e154, and MeanShift's bin seeding casts value / bandwidth to float32 (overflow near 3e38 x bandwidth).
MAX_ABS_FEATURE = 1e15
QUANTILE = 0.2
N_SAMPLES = 200


class InsufficientEvents(PermanentRunError):
    pass


class InvalidData(PermanentRunError):
    pass


class DegenerateData(PermanentRunError):
    pass


_SIGNATURE = b"PGCOPY\n\xff\r\n\x00"
_TRAILER = b"\xff\xff"
N_FIELDS = 1 + N_FEATURES
# One binary COPY row of seq (int8) and eight float8 fields: a field count, then (length, value) per field;
# big-endian.
_ROW = np.dtype([("fields", ">i2"), ("len_seq", ">i4"), ("seq", ">i8")]
                + [item for i in range(N_FEATURES) for item in ((f"len{i}", ">i4"), (f"f{i}", ">f8"))])


@dataclass(frozen=True)
class Loaded:
    """A run's data as loaded (wattprint.clustering.labels.load)."""

    seqs: np.ndarray  # int64, ascending: the seq of each row
    data: np.ndarray  # float64 (n, 8)
    excluded: int = 0  # quarantined events with first_seq ≤ seq ≤ threshold, left out
    first_seq: int = 1  # the run's lowest seq: 1, or its window's first (CLUSTER_WINDOW)


def parse_copy(buffer) -> tuple[np.ndarray, np.ndarray]:
    """A binary COPY of rows (seq int8, eight float8) (bytes or memoryview) → (seqs int64 (n,), data float64
    (n, 8)), row order kept."""
    view = memoryview(buffer)
    if bytes(view[:11]) != _SIGNATURE:
        raise ValueError("not a PostgreSQL binary COPY")
    flags, extension = struct.unpack_from(">iI", view, 11)
    if flags & (1 << 16):
        raise ValueError("binary COPY with OIDs is not supported")
    start = 19 + extension
    body = len(view) - start - len(_TRAILER)
    if body < 0 or bytes(view[len(view) - 2:]) != _TRAILER or body % _ROW.itemsize:
        raise ValueError(f"binary COPY of {len(view)} bytes is not rows of seq and {N_FEATURES} float8 fields")
    rows = np.frombuffer(view, dtype=_ROW, count=body // _ROW.itemsize, offset=start)
    if (not (rows["fields"] == N_FIELDS).all() or (rows["len_seq"] != 8).any()
            or any((rows[f"len{i}"] != 8).any() for i in range(N_FEATURES))):
        raise ValueError(f"binary COPY rows are not a seq and {N_FEATURES} non-null float8 fields")
    data = np.empty((len(rows), N_FEATURES), dtype=np.float64)
    for i in range(N_FEATURES):
        data[:, i] = rows[f"f{i}"]
    return rows["seq"].astype(np.int64), data


def check_data(loaded: Loaded, threshold: int) -> None:
    """Permanent problems of the data matrix itself, found before fitting."""
    data = loaded.data
    if data.ndim != 2 or data.shape[1] != N_FEATURES:
        raise InvalidData(f"invalid data: expected {N_FEATURES} feature columns, got shape {data.shape}")
    needed = threshold - loaded.first_seq + 1
    within = f"seq ≤ {threshold}" if loaded.first_seq == 1 else f"{loaded.first_seq} ≤ seq ≤ {threshold}"
    if len(data) + loaded.excluded < needed:
        raise InsufficientEvents(f"insufficient events: {len(data) + loaded.excluded} stored with {within}, "
                                 f"the run needs {needed}")
    if not len(data):
        raise InsufficientEvents(f"insufficient events: all {needed} events with {within} are quarantined")
    bad = ~np.isfinite(data)
    if bad.any():
        row, column = map(int, np.argwhere(bad)[0])
        raise InvalidData(f"invalid data: {int(bad.any(axis=1).sum())} event(s) with a non-finite feature, the "
                          f"first at seq {int(loaded.seqs[row])} ({FEATURES[column]} = {float(data[row, column])!r})")
    huge = np.abs(data) > MAX_ABS_FEATURE
    if huge.any():
        row, column = map(int, np.argwhere(huge)[0])
        raise InvalidData(f"invalid data: {int(huge.any(axis=1).sum())} event(s) with a feature beyond "
                          f"±{MAX_ABS_FEATURE:g}, too large to cluster, the first at seq {int(loaded.seqs[row])} "
                          f"({FEATURES[column]} = {float(data[row, column])!r}); quarantine them (admin action "
                          "quarantine) and later runs leave them out")


@dataclass(frozen=True)
class Fit:
    labels: np.ndarray  # int64, one per row; -1: in no cluster
    bandwidth: float
    centres: np.ndarray  # (n_clusters, 8), MeanShift.cluster_centers_ in label order
    spread: np.ndarray  # (8,) each feature's standard deviation over the run's events (appliance keys' scale)

    @property
    def n_clusters(self) -> int:
        return len(self.centres)


def fit(data: np.ndarray, threads: int = 1) -> Fit:
    """The spec's MeanShift, verbatim; DegenerateData when it has nothing to work with.

    `threads` > 1 runs MeanShift's per-seed loop and its final nearest-centre search in that many joblib threads
    (CLUSTER_FIT_THREADS): the labels are the same (each seed's climb is independent and the results are
    gathered in seed order; tests/unit/test_clustering_pure.py). Threads, not processes: Lambda has no /dev/shm,
    which joblib's process pools need. 1 is the spec's call exactly as written."""
    bandwidth = estimate_bandwidth(data, quantile=QUANTILE, n_samples=N_SAMPLES)
    if not np.isfinite(bandwidth):
        row, column = map(int, np.unravel_index(np.argmax(np.abs(data)), data.shape))
        raise DegenerateData(f"degenerate data: estimate_bandwidth gave {float(bandwidth)!r} for {len(data)} events: "
                             f"distances between them overflow (the largest value is {FEATURES[column]} = "
                             f"{float(data[row, column])!r} in row {row + 1}); quarantine implausible events "
                             "(admin action quarantine) and later runs leave them out")
    if not bandwidth > 0:
        distinct = len(np.unique(data, axis=0))
        raise DegenerateData(f"degenerate data: estimate_bandwidth gave {float(bandwidth)!r} for {len(data)} events "
                             f"({distinct} distinct feature rows); MeanShift needs a positive bandwidth")
    try:
        if threads == 1:
            ms = MeanShift(bandwidth=bandwidth, cluster_all=False, bin_seeding=True)
            labels = ms.fit_predict(data)
        else:
            ms = MeanShift(bandwidth=bandwidth, cluster_all=False, bin_seeding=True, n_jobs=threads)
            with joblib.parallel_config(backend="threading", n_jobs=threads):
                labels = ms.fit_predict(data)
    except ValueError as error:
        if "No point was within bandwidth" in str(error):  # deterministic for this data: do not retry it
            raise DegenerateData(f"degenerate data: {error}") from None
        raise
    return Fit(labels=np.asarray(labels, dtype=np.int64), bandwidth=float(bandwidth),
               centres=np.asarray(ms.cluster_centers_, dtype=np.float64), spread=data.std(axis=0))


@dataclass(frozen=True)
class LabelStats:
    label: int
    events: int
    mean_active_power_w: float
    min_active_power_w: float
    max_active_power_w: float
    centre: tuple[float, ...]  # the mean of each feature, FEATURES order


def label_stats(data: np.ndarray, labels: np.ndarray) -> list[LabelStats]:
    """Per label (-1 included, ascending): count, mean/min/max active power, mean of every feature."""
    order = np.argsort(labels, kind="stable")  # stable: each label's rows keep their order, as data[labels == k]
    ordered, values = data[order], labels[order]
    found, starts, counts = np.unique(values, return_index=True, return_counts=True)
    stats = []
    for label, start, count in zip(found.tolist(), starts.tolist(), counts.tolist()):
        rows = ordered[start:start + count]
        active = rows[:, 0]
        stats.append(LabelStats(label=label, events=count, mean_active_power_w=float(active.mean()),
                                min_active_power_w=float(active.min()), max_active_power_w=float(active.max()),
                                centre=tuple(rows.mean(axis=0).tolist())))
    return stats


_COPY_HEADER = _SIGNATURE + struct.pack(">iI", 0, 0)
# event_labels (run_id bigint, seq bigint, label smallint) as binary COPY rows.
_LABEL_ROW = np.dtype([("fields", ">i2"), ("len_run", ">i4"), ("run_id", ">i8"), ("len_seq", ">i4"),
                       ("seq", ">i8"), ("len_label", ">i4"), ("label", ">i2")])


def labels_copy(run_id: int, labels: np.ndarray, seqs: np.ndarray | None = None) -> bytes:
    """The run's labels as a binary COPY of (run_id, seq, label); seq from `seqs` (default: row index + 1)."""
    labels = np.asarray(labels)
    if len(labels) and (labels.min() < -1 or labels.max() > np.iinfo(np.int16).max):
        raise ValueError("labels must fit a smallint and be ≥ -1")
    rows = np.empty(len(labels), dtype=_LABEL_ROW)
    rows["fields"], rows["len_run"], rows["len_seq"], rows["len_label"] = 3, 8, 8, 2
    rows["run_id"] = run_id
    rows["seq"] = np.arange(1, len(labels) + 1, dtype=np.int64) if seqs is None else seqs
    rows["label"] = labels
    return b"".join((_COPY_HEADER, rows.tobytes(), _TRAILER))


def chunks(payload: bytes, size: int = 1 << 20):
    """A COPY FROM stream in 1 MiB messages (pg8000 sends each item of an iterable as one CopyData)."""
    view = memoryview(payload)
    return [view[i:i + size] for i in range(0, len(view), size)]


def centres_literal(centres: np.ndarray) -> str:
    """A float8[] literal (n × 8, or '{}'); repr() is the shortest exact text, so values round-trip."""
    return "{" + ",".join("{" + ",".join(repr(float(x)) for x in row) + "}" for row in centres) + "}"


def stats_json(stats: list[LabelStats]) -> str:
    return json.dumps([{"label": s.label, "events": s.events, "mean": s.mean_active_power_w,
                        "min": s.min_active_power_w, "max": s.max_active_power_w, "centre": list(s.centre)}
                       for s in stats])
