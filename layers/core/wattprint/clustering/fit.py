"""Clustering runs: the events with seq 1..T in, one MeanShift label per event and per-label statistics out.

numpy and scikit-learn are imported here and nowhere else: only the cluster function imports this module.

The computation is exactly the spec's, on the eight features of wattprint.features in that order:

    bandwidth = estimate_bandwidth(data, quantile=0.2, n_samples=200)
    labels = MeanShift(bandwidth=bandwidth, cluster_all=False, bin_seeding=True).fit_predict(data)

`estimate_bandwidth` subsamples with `random_state=0` by default (scikit-learn 1.9.1), so the spec's call is
deterministic as written: the same events give the same bandwidth and labels on every run.

A run is loaded with one binary COPY, fitted, and stored in one transaction: its labels COPYed into a table of
their own that is then attached to event_labels as the run's partition, its cluster_stats rows, and the run
marked done. Failures are of three kinds:

* permanent (PermanentRunError: fewer events than the threshold, non-finite features, degenerate data): the
  run is marked `failed` with the reason and the message is acknowledged: retrying cannot help. A message
  for a run that does not exist is acknowledged too (logged as an error: there is no run to record it on);
* transient (DatabaseUnavailable, RunBusy, LeaseLost): the run is not judged, the message is redelivered;
* anything else (a bug, an exhausted resource): the run is marked `failed` with the error and the error is
  raised, so SQS retries the message and, after maxReceiveCount, moves it to the dead-letter queue. A body
  that is not {"run_id", "threshold"} is raised too: the dead-letter queue is where it can be inspected.
"""

from __future__ import annotations

import io
import json
import logging
import struct
import time
from dataclasses import dataclass

import numpy as np
from sklearn.cluster import MeanShift, estimate_bandwidth

from .. import db
from ..errors import DatabaseUnavailable
from ..live import announce
from . import runs
from .features import FEATURE_COLUMNS, FEATURES

log = logging.getLogger(__name__)

N_FEATURES = len(FEATURE_COLUMNS)
QUANTILE = 0.2
N_SAMPLES = 200


class InvalidMessage(ValueError):
    """An SQS body that is not {"run_id": int, "threshold": int}."""


class PermanentRunError(Exception):
    """The run cannot succeed with the data as it is: recorded on the run, not retried."""


class InsufficientEvents(PermanentRunError):
    pass


class InvalidData(PermanentRunError):
    pass


class DegenerateData(PermanentRunError):
    pass


# ------------------------------------------------------------------------------------------- pure functions

def parse_message(body: str) -> tuple[int, int]:
    """(run_id, threshold) from an SQS message body."""
    try:
        doc = json.loads(body)
    except (TypeError, ValueError) as error:
        raise InvalidMessage(f"the message is not JSON: {error}") from None
    if not isinstance(doc, dict):
        raise InvalidMessage("the message is not a JSON object")
    values = []
    for key in ("run_id", "threshold"):
        value = doc.get(key)
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise InvalidMessage(f"the message needs a positive integer {key!r}, got {value!r}")
        values.append(value)
    return values[0], values[1]


def features_sql(threshold: int) -> str:
    """The COPY that reads the data matrix: the eight features of events 1..T, in seq order.

    NULL becomes NaN so one binary row always has eight 8-byte fields; check_data reports it. (COPY takes no
    bind parameters, hence the formatted integer.)"""
    threshold = int(threshold)
    columns = ", ".join(f"coalesce({expr}, 'NaN')" for _, expr in FEATURE_COLUMNS)
    return (f"COPY (SELECT {columns} FROM events WHERE seq BETWEEN 1 AND {threshold} ORDER BY seq) "
            "TO STDOUT WITH (FORMAT binary)")


_SIGNATURE = b"PGCOPY\n\xff\r\n\x00"
_TRAILER = b"\xff\xff"
# One binary COPY row of eight float8 fields: a field count, then (length, value) per field; big-endian.
_ROW = np.dtype([("fields", ">i2")] + [item for i in range(N_FEATURES)
                                       for item in ((f"len{i}", ">i4"), (f"f{i}", ">f8"))])


def parse_copy(buffer) -> np.ndarray:
    """A binary COPY of rows of eight float8 fields (bytes or memoryview) → float64 array (n, 8), row order kept."""
    view = memoryview(buffer)
    if bytes(view[:11]) != _SIGNATURE:
        raise ValueError("not a PostgreSQL binary COPY")
    flags, extension = struct.unpack_from(">iI", view, 11)
    if flags & (1 << 16):
        raise ValueError("binary COPY with OIDs is not supported")
    start = 19 + extension
    body = len(view) - start - len(_TRAILER)
    if body < 0 or bytes(view[len(view) - 2:]) != _TRAILER or body % _ROW.itemsize:
        raise ValueError(f"binary COPY of {len(view)} bytes is not rows of {N_FEATURES} float8 fields")
    rows = np.frombuffer(view, dtype=_ROW, count=body // _ROW.itemsize, offset=start)
    if not (rows["fields"] == N_FEATURES).all() or any((rows[f"len{i}"] != 8).any() for i in range(N_FEATURES)):
        raise ValueError(f"binary COPY rows are not {N_FEATURES} non-null float8 fields")
    data = np.empty((len(rows), N_FEATURES), dtype=np.float64)
    for i in range(N_FEATURES):
        data[:, i] = rows[f"f{i}"]
    return data


def check_data(data: np.ndarray, threshold: int) -> None:
    """Permanent problems of the data matrix itself, found before fitting."""
    if data.ndim != 2 or data.shape[1] != N_FEATURES:
        raise InvalidData(f"invalid data: expected {N_FEATURES} feature columns, got shape {data.shape}")
    if len(data) < threshold:
        raise InsufficientEvents(f"insufficient events: {len(data)} stored with seq ≤ {threshold}, "
                                 f"the run needs {threshold}")
    bad = ~np.isfinite(data)
    if bad.any():
        row, column = map(int, np.argwhere(bad)[0])
        raise InvalidData(f"invalid data: {int(bad.any(axis=1).sum())} event(s) with a non-finite feature, the "
                          f"first at seq {row + 1} ({FEATURES[column]} = {float(data[row, column])!r})")


@dataclass(frozen=True)
class Fit:
    labels: np.ndarray  # int64, one per row; -1: in no cluster
    bandwidth: float
    centres: np.ndarray  # (n_clusters, 8), MeanShift.cluster_centers_ in label order

    @property
    def n_clusters(self) -> int:
        return len(self.centres)


def fit(data: np.ndarray) -> Fit:
    """The spec's MeanShift, verbatim; DegenerateData when it has nothing to work with."""
    bandwidth = estimate_bandwidth(data, quantile=QUANTILE, n_samples=N_SAMPLES)
    if not (np.isfinite(bandwidth) and bandwidth > 0):
        distinct = len(np.unique(data, axis=0))
        raise DegenerateData(f"degenerate data: estimate_bandwidth gave {float(bandwidth)!r} for {len(data)} events "
                             f"({distinct} distinct feature rows); MeanShift needs a positive bandwidth")
    ms = MeanShift(bandwidth=bandwidth, cluster_all=False, bin_seeding=True)
    try:
        labels = ms.fit_predict(data)
    except ValueError as error:
        if "No point was within bandwidth" in str(error):  # deterministic for this data: do not retry it
            raise DegenerateData(f"degenerate data: {error}") from None
        raise
    return Fit(labels=np.asarray(labels, dtype=np.int64), bandwidth=float(bandwidth),
               centres=np.asarray(ms.cluster_centers_, dtype=np.float64))


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


def labels_copy(run_id: int, labels: np.ndarray) -> bytes:
    """The run's labels as a binary COPY of (run_id, seq, label), seq = row index + 1."""
    labels = np.asarray(labels)
    if len(labels) and (labels.min() < -1 or labels.max() > np.iinfo(np.int16).max):
        raise ValueError("labels must fit a smallint and be ≥ -1")
    rows = np.empty(len(labels), dtype=_LABEL_ROW)
    rows["fields"], rows["len_run"], rows["len_seq"], rows["len_label"] = 3, 8, 8, 2
    rows["run_id"] = run_id
    rows["seq"] = np.arange(1, len(labels) + 1, dtype=np.int64)
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


# ---------------------------------------------------------------------------------------- the database side

def load(threshold: int) -> np.ndarray:
    """The data matrix of a run: one binary COPY, parsed by numpy (a read-only transaction: one snapshot)."""
    stream = io.BytesIO()
    with db.transaction() as conn:
        conn.run(features_sql(threshold), stream=stream)
    buffer = stream.getbuffer()
    try:
        return parse_copy(buffer)
    finally:
        buffer.release()


_INSERT_STATS = """
INSERT INTO cluster_stats (run_id, label, events, mean_active_power_w, min_active_power_w, max_active_power_w, centre)
SELECT :run_id, s.label, s.events, s.mean, s.min, s.max, s.centre
FROM json_to_recordset(CAST(:stats AS json)) AS s(label int, events bigint, mean float8, min float8, max float8,
                                                 centre float8[])
"""


def store(run: runs.Claim, result: Fit, stats: list[LabelStats], load_ms: float, fit_ms: float) -> float:
    """Labels, statistics and `done`, in one transaction; returns the store time in ms.

    Fenced: the run row is locked first and must still belong to this claim, so a worker that lost its lease
    writes nothing, and two workers can never build the run's table at the same time."""
    started = time.perf_counter()
    payload = chunks(labels_copy(run.run_id, result.labels))
    with db.transaction() as conn:
        runs.lock(conn, run)
        table = conn.run("SELECT clustering_labels_open(:run_id)", run_id=run.run_id)[0][0]
        conn.run(f"COPY {table} (run_id, seq, label) FROM STDIN WITH (FORMAT binary)", stream=payload)
        conn.run("SELECT clustering_labels_attach(:run_id)", run_id=run.run_id)
        conn.run("DELETE FROM cluster_stats WHERE run_id = :run_id", run_id=run.run_id)
        conn.run(_INSERT_STATS, run_id=run.run_id, stats=stats_json(stats))
        store_ms = (time.perf_counter() - started) * 1000
        runs.finish(conn, run, events=len(result.labels), bandwidth=result.bandwidth, n_clusters=result.n_clusters,
                    centres=centres_literal(result.centres), load_ms=load_ms, fit_ms=fit_ms, store_ms=store_ms)
    return store_ms


def compute(run: runs.Claim) -> dict:
    """Load, fit and store a claimed run. Raises PermanentRunError, DatabaseUnavailable, LeaseLost, or a bug."""
    started = time.perf_counter()
    data = load(run.threshold)
    check_data(data, run.threshold)
    loaded = time.perf_counter()
    result = fit(data)
    stats = label_stats(data, result.labels)
    fitted = time.perf_counter()
    load_ms, fit_ms = (loaded - started) * 1000, (fitted - loaded) * 1000
    store_ms = store(run, result, stats, load_ms, fit_ms)
    return {"events": len(data), "bandwidth": result.bandwidth, "n_clusters": result.n_clusters,
            "load_ms": round(load_ms, 1), "fit_ms": round(fit_ms, 1), "store_ms": round(store_ms, 1)}


def process(run_id: int, threshold: int, lease_seconds: float) -> dict:
    """Run one clustering run at least once, safely: what the cluster function calls per SQS record.

    Returns a summary when the message is settled (done now, done before, or failed permanently); raises when
    the message must be redelivered (see the module docstring)."""
    try:
        claimed = runs.claim(run_id, threshold, lease_seconds)
    except runs.UnknownRun as error:
        # Runs are committed before their message is sent, so this message cannot have come from ingest for this
        # database (a restored database, another environment's queue, a hand-made event): retrying cannot create
        # the run. Acknowledged, and logged as an error for an operator.
        log.error("clustering message for no such run, dropped: %s", error)
        return {"run_id": run_id, "threshold": threshold, "status": "unknown", "error": str(error), "retry": False}
    if isinstance(claimed, runs.Skipped):
        return {"run_id": run_id, "threshold": threshold, "status": claimed.status, "skipped": True}
    outcome = {"run_id": run_id, "threshold": threshold, "attempt": claimed.attempt}
    announce.run_changed(run_id)  # dashboards: running
    try:
        figures = compute(claimed)
    except PermanentRunError as error:
        runs.fail(claimed, str(error))  # DatabaseUnavailable here: raised, redelivered, recomputed
        log.warning("clustering run %s failed permanently: %s", run_id, error)
        announce.run_changed(run_id)
        return {**outcome, "status": runs.FAILED, "error": str(error), "retry": False}
    except (DatabaseUnavailable, runs.LeaseLost):
        runs.release(claimed)
        raise
    except Exception as error:
        try:
            runs.fail(claimed, f"{type(error).__name__}: {error}")
            announce.run_changed(run_id)
        except DatabaseUnavailable:
            log.warning("clustering run %s: could not record the failure, the lease will expire", run_id)
        raise
    announce.run_changed(run_id)  # dashboards: done
    return {**outcome, "status": runs.DONE, **figures}


def process_message(body: str, remaining_ms: int | None) -> dict:
    """One SQS record: parse it, lease the run for this invocation's remaining time, process it."""
    run_id, threshold = parse_message(body)
    return process(run_id, threshold, runs.lease_seconds(remaining_ms))
