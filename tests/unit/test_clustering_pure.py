"""The pure parts of wattprint.clustering: COPY formats, the data matrix, statistics, failure classification."""

import json
import struct

import numpy as np
import pytest

from wattprint.clustering import fit, labels as label_store, runs, service
from wattprint.clustering.features import FEATURE_COLUMNS, FEATURES

SIGNATURE = b"PGCOPY\n\xff\r\n\x00"


def binary_copy(rows, extension: bytes = b"", seqs=None) -> bytes:
    """What PostgreSQL sends for COPY (SELECT seq, features …) TO STDOUT (FORMAT binary); None is a NULL field.
    seq is row index + 1 unless `seqs` says otherwise."""
    out = [SIGNATURE, struct.pack(">iI", 0, len(extension)), extension]
    for i, row in enumerate(rows):
        out.append(struct.pack(">hiq", len(row) + 1, 8, i + 1 if seqs is None else seqs[i]))
        for value in row:
            out.append(struct.pack(">i", -1) if value is None else struct.pack(">id", 8, value))
    out.append(b"\xff\xff")
    return b"".join(out)


def test_features_sql_selects_the_eight_features_in_spec_order():
    sql = label_store.features_sql(2000)
    assert [name for name, _ in FEATURE_COLUMNS] == [
        "active_power_w", "reactive_power_var", "apparent_power_va", "current_a", "voltage_v",
        "peak_1", "peak_2", "peak_3"]
    selected = sql.split("SELECT ", 1)[1].split(" FROM ", 1)[0]
    assert selected == ("e.seq, coalesce(e.active_power_w, 'NaN'), coalesce(e.reactive_power_var, 'NaN'), "
                        "coalesce(e.apparent_power_va, 'NaN'), coalesce(e.current_a, 'NaN'), "
                        "coalesce(e.voltage_v, 'NaN'), coalesce(e.peaks[1], 'NaN'), coalesce(e.peaks[2], 'NaN'), "
                        "coalesce(e.peaks[3], 'NaN')")
    assert ("WHERE e.seq BETWEEN 1 AND 2000 AND NOT EXISTS (SELECT FROM quarantined_events q WHERE q.seq = e.seq) "
            "ORDER BY e.seq") in sql and sql.endswith("TO STDOUT WITH (FORMAT binary)")
    assert "2000" in label_store.features_sql("2000")  # an int, never text pasted in
    with pytest.raises(ValueError):
        label_store.features_sql("1; DROP TABLE events")


def test_parse_copy_gives_rows_in_order_and_columns_in_order():
    rows = [[1753.0, 279.0, 403.0, 7.35900021, 230.08, 7.33199978, 7.311999799999999, 7.53000021],
            [-0.0, 1e-300, 5e300, 0.1, 0.2, 0.30000000000000004, -1.5, 2.0],
            [float(i) for i in range(8)]]
    seqs, data = fit.parse_copy(binary_copy(rows, seqs=[2, 5, 2**40]))
    assert data.shape == (3, 8) and data.dtype == np.float64 and data.flags.c_contiguous
    assert data.tolist() == rows  # exact: no text round trip
    assert seqs.dtype == np.int64 and seqs.tolist() == [2, 5, 2**40]
    assert fit.parse_copy(binary_copy(rows, extension=b"abcd"))[1].tolist() == rows
    assert fit.parse_copy(binary_copy([]))[1].shape == (0, 8)


@pytest.mark.parametrize("payload", [
    b"not a copy",
    binary_copy([[1.0] * 8])[:-2],                     # no trailer
    binary_copy([[1.0] * 7]),                          # seven fields
    binary_copy([[1.0] * 7 + [None], [1.0] * 8]),      # a NULL shifts the rows
    binary_copy([[1.0] * 8, [2.0] * 9])[:-2] + b"\xff\xff",
])
def test_parse_copy_rejects_anything_but_rows_of_eight_float8(payload):
    with pytest.raises(ValueError):
        fit.parse_copy(payload)


def loaded(data, seqs=None, excluded=0):
    seqs = np.arange(1, len(data) + 1) if seqs is None else np.array(seqs)
    return fit.Loaded(seqs, data, excluded)


def test_check_data_separates_permanent_problems():
    good = np.arange(24, dtype=np.float64).reshape(3, 8)
    fit.check_data(loaded(good), 3)
    with pytest.raises(fit.InsufficientEvents, match=r"insufficient events: 3 stored with seq ≤ 4"):
        fit.check_data(loaded(good), 4)
    fit.check_data(loaded(good, [1, 3, 4], excluded=1), 4)  # seq 2 quarantined: still all of 1..4
    with pytest.raises(fit.InsufficientEvents, match=r"insufficient events: 4 stored with seq ≤ 5"):
        fit.check_data(loaded(good, [1, 3, 4], excluded=1), 5)
    with pytest.raises(fit.InsufficientEvents, match=r"all 2 events with seq ≤ 2 are quarantined"):
        fit.check_data(loaded(good[:0], excluded=2), 2)
    bad = good.copy()
    bad[1, 6], bad[2, 0] = np.inf, np.nan
    with pytest.raises(fit.InvalidData, match=r"2 event\(s\) .* the first at seq 2 \(peak_2 = inf\)"):
        fit.check_data(loaded(bad), 3)
    with pytest.raises(fit.InvalidData, match=r"the first at seq 7 \(peak_2 = inf\)"):
        fit.check_data(loaded(bad, [1, 7, 9], excluded=6), 9)  # seqs, not row numbers
    with pytest.raises(fit.InvalidData, match="8 feature columns"):
        fit.check_data(loaded(good[:, :7]), 3)
    huge = good.copy()
    huge[2, 3] = -2e15
    with pytest.raises(fit.InvalidData, match=r"1 event\(s\) with a feature beyond ±1e\+15, too large to "
                                                     r"cluster, the first at seq 3 "
                                                     r"\(current_a = -2000000000000000\.0\)"):
        fit.check_data(loaded(huge), 3)
    assert issubclass(fit.DegenerateData, runs.PermanentRunError)
    assert not issubclass(runs.RunBusy, runs.PermanentRunError)


def test_identical_rows_are_degenerate():
    data = np.tile([60.0, 20.0, 63.2, 0.26, 230.0, 0.26, 0.26, 0.26], (500, 1))
    with pytest.raises(fit.DegenerateData, match=r"^degenerate data: estimate_bandwidth gave 0\.0 for 500 "
                                                         r"events \(1 distinct feature rows\)"):
        fit.fit(data)
    with pytest.raises(fit.DegenerateData):
        fit.fit(data[:1])  # a single event


def test_one_huge_value_makes_the_bandwidth_inf_and_the_error_names_it():
    rng = np.random.default_rng(2)
    data = 100 + rng.normal(0, 5, (300, 8))
    data[41, 0] = 1e160  # squared, it overflows: estimate_bandwidth returns inf
    with pytest.raises(fit.DegenerateData, match=r"gave inf for 300 events: .* active_power_w = 1e\+160 in "
                                                         r"row 42\); quarantine implausible events"):
        fit.fit(data)


def test_features_sql_takes_a_window_as_the_lower_end_of_the_set():
    assert label_store.features_sql(2000, first=1) == label_store.features_sql(2000)  # no window: the spec's
    assert label_store.excluded_sql(2000, first=1) == label_store.excluded_sql(2000)
    sql = label_store.features_sql(2000, first=1501)
    assert ("WHERE e.seq BETWEEN 1501 AND 2000 AND NOT EXISTS (SELECT FROM quarantined_events q "
            "WHERE q.seq = e.seq) ORDER BY e.seq") in sql
    assert "seq BETWEEN 1501 AND 2000" in label_store.excluded_sql(2000, first=1501)
    assert [label_store.first_seq(2000, w) for w in (0, 1, 500, 2000, 5000)] == [1, 2000, 1501, 1, 1]


def test_a_window_short_of_events_names_its_range():
    data = np.ones((400, 8))
    with pytest.raises(fit.InsufficientEvents, match=r"400 stored with 1501 ≤ seq ≤ 2000, the run needs 500"):
        fit.check_data(fit.Loaded(np.arange(1601, 2001), data, 0, 1501), 2000)
    fit.check_data(fit.Loaded(np.arange(1601, 2001), data, 100, 1501), 2000)  # 100 quarantined: all there


def blobs(per: int = 400, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    centres = np.array([[0.0] * 8, [1000.0] * 8, [2000.0] * 8, [2600.0] * 8])
    return np.vstack([c + rng.normal(0, 40, (per, 8)) for c in centres])


def test_two_threaded_workers_give_the_labels_of_one(monkeypatch):
    from joblib.parallel import get_active_backend

    data = blobs()
    one, two = fit.fit(data, threads=1), fit.fit(data, threads=2)
    assert one.n_clusters >= 3 and (one.labels == -1).any()  # several seeds climbing, a fringe left out
    np.testing.assert_array_equal(one.labels, two.labels)
    np.testing.assert_array_equal(one.centres, two.centres)
    assert one.bandwidth == two.bandwidth
    # The threaded fit really runs in two joblib threads (not silently one); 1 is the spec's call, no n_jobs.
    seen = []
    real = fit.MeanShift.fit_predict

    def watched(self, X):
        backend, jobs = get_active_backend()
        seen.append((type(backend).__name__, jobs, self.n_jobs))
        return real(self, X)

    monkeypatch.setattr(fit.MeanShift, "fit_predict", watched)
    fit.fit(data, threads=2)
    fit.fit(data, threads=1)
    assert seen[0] == ("ThreadingBackend", 2, 2) and seen[1][2] is None


def test_fit_is_the_spec_and_deterministic():
    rng = np.random.default_rng(0)
    centres = np.array([[0.0] * 8, [1000.0] * 8, [2000.0] * 8])
    data = np.vstack([c + rng.normal(0, 10, (300, 8)) for c in centres])
    first, second = fit.fit(data), fit.fit(data)
    np.testing.assert_array_equal(first.labels, second.labels)
    assert first.bandwidth == second.bandwidth > 0
    assert first.n_clusters == 3 and first.labels.dtype == np.int64
    # Each blob is one cluster; its fringe (beyond the bandwidth of every centre) stays -1, never merged.
    groups = [set(first.labels[i:i + 300].tolist()) - {-1} for i in (0, 300, 600)]
    assert sorted(len(g) for g in groups) == [1, 1, 1] and set.union(*groups) == {0, 1, 2}
    assert [int((first.labels[i:i + 300] == -1).sum()) for i in (0, 300, 600)] == [7, 6, 7]


def test_label_stats_per_label_including_unclustered():
    data = np.array([[10.0, 1, 2, 3, 4, 5, 6, 7],
                     [20.0, 1, 2, 3, 4, 5, 6, 9],
                     [5.0, 0, 0, 0, 0, 0, 0, 0],
                     [30.0, 3, 2, 3, 4, 5, 6, 8],
                     [7.0, 2, 2, 2, 2, 2, 2, 2]])
    labels = np.array([0, 0, -1, 0, 1])
    stats = fit.label_stats(data, labels)
    assert [s.label for s in stats] == [-1, 0, 1]
    unclustered, zero, one = stats
    assert (unclustered.events, unclustered.mean_active_power_w, unclustered.min_active_power_w,
            unclustered.max_active_power_w, unclustered.centre) == (1, 5.0, 5.0, 5.0, (5.0,) + (0.0,) * 7)
    assert (zero.events, zero.mean_active_power_w, zero.min_active_power_w, zero.max_active_power_w) == (
        3, 20.0, 10.0, 30.0)
    assert zero.centre == (20.0, 5 / 3, 2.0, 3.0, 4.0, 5.0, 6.0, 8.0)
    assert one.centre == (7.0, 2.0, 2.0, 2.0, 2.0, 2.0, 2.0, 2.0) and one.events == 1
    assert sum(s.events for s in stats) == len(data)


def test_label_stats_equal_numpy_means_over_each_label_exactly():
    rng = np.random.default_rng(1)
    data = rng.normal(100, 30, (5000, 8))
    labels = rng.integers(-1, 6, 5000)
    for s in fit.label_stats(data, labels):
        rows = data[labels == s.label]
        assert s.centre == tuple(rows.mean(axis=0).tolist())
        assert s.mean_active_power_w == rows[:, 0].mean()


def test_labels_copy_is_binary_rows_of_run_seq_label():
    payload = fit.labels_copy(42, np.array([0, -1, 3]))
    assert payload[:11] == SIGNATURE and payload[-2:] == b"\xff\xff"
    body = payload[19:-2]
    rows = [struct.unpack_from(">hiqiqih", body, offset) for offset in range(0, len(body), 32)]
    assert rows == [(3, 8, 42, 8, 1, 2, 0), (3, 8, 42, 8, 2, 2, -1), (3, 8, 42, 8, 3, 2, 3)]
    assert b"".join(bytes(c) for c in fit.chunks(payload, size=10)) == payload
    gapped = fit.labels_copy(42, np.array([0, -1, 3]), np.array([1, 3, 9]))[19:-2]
    assert [struct.unpack_from(">hiqiqih", gapped, offset)[4] for offset in range(0, len(gapped), 32)] == [1, 3, 9]
    with pytest.raises(ValueError):
        fit.labels_copy(1, np.array([40000]))


def test_centres_literal_and_stats_json_round_trip_exactly():
    centres = np.array([[0.1, 1 / 3, 2.0, 3.5, 4.0, 5.0, 6.0, 7.0], [1e-300, -0.0, 8, 9, 10, 11, 12, 13]])
    literal = fit.centres_literal(centres)
    assert literal.startswith("{{0.1,0.3333333333333333,2.0,") and literal.endswith("13.0}}")
    assert fit.centres_literal(np.empty((0, 8))) == "{}"
    stats = fit.label_stats(centres, np.array([-1, 0]))
    assert json.loads(fit.stats_json(stats))[0] == {
        "label": -1, "events": 1, "mean": 0.1, "min": 0.1, "max": 0.1, "centre": centres[0].tolist()}


@pytest.mark.parametrize("body", ["", "[]", "nope", '{"run_id": 1}', '{"run_id": "1", "threshold": 1000}',
                                  '{"run_id": true, "threshold": 1000}', '{"run_id": 1, "threshold": 0}',
                                  '{"run_id": 1.5, "threshold": 1000}'])
def test_parse_message_rejects_malformed_bodies(body):
    with pytest.raises(service.InvalidMessage):
        service.parse_message(body)


def test_parse_message_and_lease():
    assert service.parse_message('{"run_id": 7, "threshold": 7000}') == (7, 7000)
    assert runs.lease_seconds(900_000) == 960.0  # the invocation's remaining time plus the margin
    assert runs.lease_seconds(12_345) == 72.345
    assert runs.lease_seconds(None) == 960.0
    assert len(FEATURES) == fit.N_FEATURES == 8
