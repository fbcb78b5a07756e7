"""Clustering's use cases: a run from its SQS message (the cluster function), and the hourly sweep.

A run takes the events with seq 1..T in and gives one MeanShift label per event and per-label statistics out.

The computation itself is wattprint.clustering.fit. numpy and scikit-learn are imported by the first run, not
with this module: the sweep function imports it too, and has no scikit-learn layer.

A run is loaded with one binary COPY, fitted, and stored in one transaction: its labels COPYed into a table of
their own that is then attached to event_labels as the run's partition, its cluster_stats rows, and the run
marked done. Right after, the labels of completed runs beyond the newest LABEL_RETENTION are dropped (their
summaries and statistics stay). A message settles in one of these ways:

* permanent (PermanentRunError: fewer events than the threshold, non-finite or huge features, degenerate data): the
  run is marked `failed` with the reason and the message is acknowledged: retrying cannot help. A message
  for a run that does not exist is acknowledged too (logged as an error: there is no run to record it on);
* transient (DatabaseUnavailable, RunBusy, LeaseLost): the run is not judged, the message is redelivered;
* superseded (CLUSTER_RUNS=latest, the default): a run that has not started when a later threshold's run is
  pending, running or done is recorded `superseded` and its message acknowledged; the later run does the work;
* given up: a run whose last allowed attempt (settings.run_max_attempts) stopped without finishing is marked
  `failed` by the claim that finds it so (or by the sweep), and the message acknowledged;
* anything else (a bug, an exhausted resource): the run is marked `failed` with the error and the error is
  raised, so SQS retries the message and, after maxReceiveCount, moves it to the dead-letter queue. A body
  that is not {"run_id", "threshold"} is raised too: the dead-letter queue is where it can be inspected.
"""

from __future__ import annotations

import json
import logging
import time

from .. import db, observability
from ..errors import DatabaseUnavailable
from ..live import service as live
from ..settings import ClusteringSettings, Settings, clustering_settings
from . import quarantine, runs, sweep

log = logging.getLogger(__name__)


class InvalidMessage(ValueError):
    """An SQS body that is not {"run_id": int, "threshold": int}."""


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


def compute(run: runs.Claim, config: ClusteringSettings | None = None) -> dict:
    """Load, fit and store a claimed run (its window and threads from `config`). Raises PermanentRunError,
    DatabaseUnavailable, LeaseLost, or a bug."""
    from . import fit, labels  # numpy and scikit-learn: see the module docstring

    config = ClusteringSettings() if config is None else config
    started = time.perf_counter()
    loaded = labels.load(run.threshold, run.device_id, labels.first_seq(run.threshold, config.window))
    try:
        fit.check_data(loaded, run.threshold)
        load_done = time.perf_counter()
        result = fit.fit(loaded.data, threads=config.fit_threads)
    except runs.PermanentRunError as error:
        error.excluded = loaded.excluded
        raise
    stats = fit.label_stats(loaded.data, result.labels)
    fitted = time.perf_counter()
    load_ms, fit_ms = (load_done - started) * 1000, (fitted - load_done) * 1000
    store_ms = labels.store(run, loaded, result, stats, load_ms, fit_ms)
    return {"events": len(loaded.data), "excluded": loaded.excluded, "first_seq": loaded.first_seq,
            "bandwidth": result.bandwidth,
            "n_clusters": result.n_clusters, "load_ms": round(load_ms, 1), "fit_ms": round(fit_ms, 1),
            "store_ms": round(store_ms, 1)}


def retire_labels(keep: int, device_id: int | None = None) -> list[int] | None:
    """After a run completed: drop the labels beyond the newest `keep` runs (0: keep all) of its set (the device's,
    for a device's run). The run is done whatever happens here, so a failure is logged, not raised: the next
    completion retires what this one left."""
    if keep == 0:
        return []
    from . import labels  # numpy: see the module docstring

    try:
        retired = labels.retire(keep, device_id)
    except Exception:  # noqa: BLE001 - see the docstring; the run's message must still be acknowledged
        log.exception("retiring old runs' labels failed; the next completed run retries")
        return None
    for retired_id in retired:
        live.run_changed(retired_id)  # dashboards: its labels are gone
    return retired


def _events_behind(threshold: int, device_id: int | None = None) -> None:
    """How far the newest labels lag behind what is stored (the metric; the next run's threshold is this far
    closer), in the run's set. Read with the cluster role's own grant (events), and never a reason to redeliver a
    done run."""
    try:
        if device_id is None:
            stored = db.execute("SELECT coalesce(max(seq), 0) FROM events", prepare=True)[0][0]
        else:
            stored = db.execute("SELECT coalesce(max(device_seq), 0) FROM events WHERE device_id = :device",
                                prepare=True, device=int(device_id))[0][0]
    except DatabaseUnavailable as error:
        log.warning("events behind the newest run not measured: %s", error)
        return
    observability.count(observability.EVENTS_BEHIND, max(0, stored - threshold))


def prepare() -> None:
    """The cluster function's init: import what a run computes with (numpy, scikit-learn: ~1.3 s), so that a cold
    instance pays it before its first message, and SnapStart or provisioned concurrency would keep it paid."""
    from . import fit, labels  # noqa: F401


def process(run_id: int, threshold: int, lease_seconds: float, max_attempts: int = 3,
            config: ClusteringSettings | None = None) -> dict:
    """Run one clustering run at least once, safely: what the cluster function calls per SQS record.

    Returns a summary when the message is settled (done now, done before, superseded, failed permanently, or given
    up after `max_attempts` attempts stopped without finishing); raises when the message must be redelivered (see
    the module docstring). Every run this marks failed adds to the RunsFailed metric."""
    config = clustering_settings() if config is None else config
    try:
        superseded = runs.supersede(run_id, threshold) if config.supersede else None
        if superseded is not None:
            log.info("clustering run %s superseded by run %s", run_id, superseded.superseded_by)
            live.run_changed(run_id)
            observability.count(observability.RUNS_SUPERSEDED)
            return {"run_id": run_id, "threshold": threshold, "status": runs.SUPERSEDED,
                    "superseded_by": superseded.superseded_by, "skipped": True}
        claimed = runs.claim(run_id, threshold, lease_seconds, max_attempts)
    except runs.UnknownRun as error:
        # Runs are committed before their message is sent, so this message cannot have come from ingest for this
        # database (a restored database, another environment's queue, a hand-made event): retrying cannot create
        # the run. Acknowledged, and logged as an error for an operator.
        log.error("clustering message for no such run, dropped: %s", error)
        return {"run_id": run_id, "threshold": threshold, "status": "unknown", "error": str(error), "retry": False}
    if isinstance(claimed, runs.Skipped):
        if claimed.status == runs.FAILED:  # this claim gave the run up
            observability.count(observability.RUNS_FAILED)
            log.error("clustering run %s given up: its last allowed attempt stopped without finishing", run_id)
            live.run_changed(run_id)
            return {"run_id": run_id, "threshold": threshold, "status": runs.FAILED, "gave_up": True, "retry": False}
        observability.count(observability.RUNS_SKIPPED)
        return {"run_id": run_id, "threshold": threshold, "status": claimed.status, "skipped": True}
    outcome = {"run_id": run_id, "threshold": threshold, "attempt": claimed.attempt}
    live.run_changed(run_id)  # dashboards: running
    started = time.perf_counter()
    try:
        figures = compute(claimed, config)
    except runs.PermanentRunError as error:
        if runs.fail(claimed, str(error), excluded=error.excluded):  # DatabaseUnavailable: raised, redelivered
            observability.count(observability.RUNS_FAILED)
        log.warning("clustering run %s failed permanently: %s", run_id, error)
        live.run_changed(run_id)
        return {**outcome, "status": runs.FAILED, "error": str(error), "retry": False}
    except (DatabaseUnavailable, runs.LeaseLost):
        runs.release(claimed)
        raise
    except Exception as error:
        try:
            if runs.fail(claimed, db.describe(error)):  # the whole error is in the handler's log
                observability.count(observability.RUNS_FAILED)
            live.run_changed(run_id)
        except DatabaseUnavailable:
            log.warning("clustering run %s: could not record the failure, the lease will expire", run_id)
        raise
    retired = retire_labels(config.label_retention, claimed.device_id)
    live.run_changed(run_id)  # dashboards: done
    observability.count(observability.RUNS_DONE)
    observability.milliseconds(observability.FIT_DURATION, figures["fit_ms"])
    observability.milliseconds(observability.RUN_DURATION, (time.perf_counter() - started) * 1000)
    _events_behind(threshold, claimed.device_id)
    return {**outcome, "status": runs.DONE, **figures, "labels_retired": retired}


def process_message(body: str, remaining_ms: int | None, max_attempts: int = 3) -> dict:
    """One SQS record: parse it, lease the run for this invocation's remaining time, process it (at most
    `max_attempts` attempts: settings.run_max_attempts)."""
    run_id, threshold = parse_message(body)
    return process(run_id, threshold, runs.lease_seconds(remaining_ms), max_attempts)


def is_transient(error: BaseException) -> bool:
    """An expected reason to leave a message for redelivery (another worker has the run, the database is
    away), as opposed to a failure worth a traceback in the log."""
    return isinstance(error, (runs.RunBusy, DatabaseUnavailable))


def sweep_runs(config: Settings) -> dict:
    """The hourly sweep (the sweep function): see wattprint.clustering.sweep."""
    return sweep.sweep_runs(config)


def after_restart() -> dict:
    """The local stack (re)started: see wattprint.clustering.sweep.after_restart."""
    return sweep.after_restart()


def quarantine_events(request: dict) -> dict:
    """The admin action `quarantine`: by `ids`, or by `filter` {field, min, max} (see .quarantine)."""
    return quarantine.quarantine(request)


def list_quarantine(request: dict) -> dict:
    """The admin action `list_quarantine`."""
    return quarantine.listing()


def release_quarantine(request: dict) -> dict:
    """The admin action `release_quarantine`: {"ids": [...]}."""
    return quarantine.release(request.get("ids"))


# Clustering's operator actions, for wattprint.admin.handle(request, OPERATOR_ACTIONS) (the admin function, the CLI).
OPERATOR_ACTIONS = {"quarantine": quarantine_events, "list_quarantine": list_quarantine,
                    "release_quarantine": release_quarantine}
