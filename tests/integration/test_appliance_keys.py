"""Appliance keys (wattprint.appliances) through the cluster handler and the gateway, against PostgreSQL: ten runs
of generated data whose truth is known, where appliances appear, vanish (one for good, one for a while) and drift;
names given after run 2 are still on the right clusters at run 10."""

import json

import numpy as np
import pytest

from local.apigw import Gateway
from test_clustering import _BASE, body, deliver, insert
from wattprint import db, tokens
from wattprint.appliances import keys, service as appliances
from wattprint.report import queries
from wattprint.report import service as report

PER_RUN = 400
RUNS = range(1, 11)
# name: ((active W, reactive var) at run 1, active W added per run, the runs it is on in)
APPLIANCES = {
    "A": ((150.0, 40.0), 6.0, RUNS),                      # drifts up 54 W
    "B": ((900.0, 120.0), 0.0, range(1, 5)),              # vanishes after run 4, for good
    "C": ((1700.0, 300.0), 0.0, (1, 2, 6, 7, 8, 9, 10)),  # away in runs 3-5, back in 6
    "D": ((2600.0, 150.0), 30.0, RUNS),                   # drifts up 270 W
    "E": ((3500.0, 600.0), -10.0, range(4, 11)),          # appears in run 4
    "F": ((500.0, 400.0), 0.0, range(7, 11)),             # appears in run 7
}


def present(run: int) -> list[str]:
    return [name for name, (_, _, runs) in APPLIANCES.items() if run in runs]


def level(name: str, run: int) -> tuple[float, float]:
    (active, reactive), drift, _ = APPLIANCES[name]
    return active + drift * (run - 1), reactive


def features(run: int, n: int, seed: int) -> np.ndarray:
    """n events of the appliances on in `run`, in turn, each with noise (the eight features)."""
    rng = np.random.default_rng(seed)
    on = present(run)
    rows = np.empty((n, 8))
    for i in range(n):
        active, reactive = level(on[i % len(on)], run)
        noise = rng.normal(0, 1, 8)
        current = active / 230
        rows[i] = (active + 12 * noise[0], reactive + 8 * noise[1], np.hypot(active, reactive) + 12 * noise[2],
                   current + 0.05 * noise[3], 230 + noise[4], *(1.4 * current + 0.05 * noise[5:]))
    return rows


def set_features(conn, data: np.ndarray):
    """The events 1..len(data) take these features: each run sees the appliances of its own time (a run
    re-clusters every event so far, so without this nothing could vanish)."""
    columns = data.T.tolist()
    conn.run("UPDATE events e SET active_power_w = u.a, reactive_power_var = u.q, apparent_power_va = u.s, "
             "current_a = u.i, voltage_v = u.v, peaks[1] = u.p1, peaks[2] = u.p2, peaks[3] = u.p3 "
             "FROM unnest(CAST(:seq AS bigint[]), CAST(:a AS float8[]), CAST(:q AS float8[]), CAST(:s AS float8[]), "
             "CAST(:i AS float8[]), CAST(:v AS float8[]), CAST(:p1 AS float8[]), CAST(:p2 AS float8[]), "
             "CAST(:p3 AS float8[])) AS u(seq, a, q, s, i, v, p1, p2, p3) WHERE e.seq = u.seq",
             seq=list(range(1, len(data) + 1)), **dict(zip(("a", "q", "s", "i", "v", "p1", "p2", "p3"), columns)))


def truth(run: int, cluster: dict) -> str:
    """The appliance a cluster of `run` is: the one on whose level is nearest its centre."""
    return min(present(run), key=lambda name: abs(level(name, run)[0] - cluster["centre"]["active_power_w"]))


def test_keys_and_names_survive_ten_runs_where_clusters_appear_vanish_and_drift(database, conn, functions):
    key_of: dict[str, int] = {}
    run_ids = {}
    for run in RUNS:
        (opened,) = insert(conn, [(f"event {i}", _BASE) for i in range(PER_RUN)], threshold=PER_RUN)
        set_features(conn, features(run, PER_RUN * run, seed=run))
        assert deliver(functions, body(opened))[0] == {"batchItemFailures": []}
        run_ids[run] = opened.id
        summary = report.summary(None)
        assert summary["run"]["id"] == opened.id
        clusters = [c for c in summary["clusters"] if not c["unclustered"]]
        assert sorted(truth(run, c) for c in clusters) == present(run), run  # MeanShift finds each, once
        for cluster in clusters:
            name = truth(run, cluster)
            expected = key_of.setdefault(name, cluster["appliance_key"])
            assert cluster["appliance_key"] == expected, (run, name, cluster["label"])
        if run == 2:
            for name, given in (("A", "fridge"), ("B", "kettle"), ("C", "heater"), ("D", "oven")):
                appliances.name_appliance(str(key_of[name]), json.dumps({"name": given, "kind": given}), "application/json")
    assert len(set(key_of.values())) == len(APPLIANCES)  # six appliances, six keys, none given twice
    # Run 10: the names given after run 2 are on the right clusters, in the summary and on every event.
    final = {truth(10, c): c for c in report.summary(None)["clusters"] if not c["unclustered"]}
    assert {name: c["appliance_name"] for name, c in final.items()} == {
        "A": "fridge", "C": "heater", "D": "oven", "E": None, "F": None}
    page = report.events({"limit": "1000", "order": "desc"}, None).body["items"]
    by_label = {c["label"]: c for c in final.values()}
    for item in page:
        if item["label"] == -1:
            assert (item["appliance_key"], item["appliance_name"]) == (None, None)
        else:
            cluster = by_label[item["label"]]
            assert (item["appliance_key"], item["appliance_name"]) == (cluster["appliance_key"],
                                                                       cluster["appliance_name"])
    # The list: B not seen since run 4, C seen again, E and F first seen when they appeared.
    listed = {a["key"]: a for a in appliances.appliances(None)["appliances"]}
    seen = {name: (listed[key]["first_run"]["id"], listed[key]["last_run"]["id"], listed[key]["in_current_run"])
            for name, key in key_of.items()}
    assert seen == {"A": (run_ids[1], run_ids[10], True), "B": (run_ids[1], run_ids[4], False),
                    "C": (run_ids[1], run_ids[10], True), "D": (run_ids[1], run_ids[10], True),
                    "E": (run_ids[4], run_ids[10], True), "F": (run_ids[7], run_ids[10], True)}
    assert listed[key_of["B"]]["name"] == "kettle" and listed[key_of["B"]]["kind"] == "kettle"


# ------------------------------------------------------------------------------------------- the matching

def test_the_assignment_is_optimal_not_greedy_and_refuses_what_is_too_far():
    scale = np.ones(8)
    known = [[0.0] * 8, [0.6] + [0.0] * 7]
    # Greedy would give centre 0 (at 0.3) the nearest known (0.0), leaving centre 1 (at -0.3) nothing within 0.5.
    assert keys.match([[0.3] + [0.0] * 7, [-0.3] + [0.0] * 7], known, scale) == [1, 0]
    assert keys.match([[2.0] + [0.0] * 7], known, scale) == [None]  # beyond the threshold: a new appliance
    assert keys.match([[0.0] * 8], [], scale) == [None]
    assert keys.match([], known, scale) == []
    # In spreads: 400 W is 0.4 of a 1000 W spread (the same appliance), 400 of a spread of 1; a spread of 0 (a
    # constant feature) is taken as 1 rather than dividing by zero.
    assert keys.match([[400.0] + [0.0] * 7], [[0.0] * 8], keys.spread_scale([1000.0] + [0.0] * 7)) == [0]
    assert keys.match([[400.0] + [0.0] * 7], [[0.0] * 8], scale) == [None]
    with pytest.raises(ValueError):
        keys.distances([[0.0] * 8], known, [0.0] * 8)


# ---------------------------------------------------------------------------------- the API (gateway, roles)

@pytest.fixture
def named_run(database, conn, functions):
    (opened,) = insert(conn, [(f"event {i}", _BASE) for i in range(PER_RUN)], threshold=PER_RUN)
    set_features(conn, features(1, PER_RUN, seed=1))
    assert deliver(functions, body(opened))[0] == {"batchItemFailures": []}
    return opened


def test_the_api_names_a_key_and_refuses_what_is_wrong(app, functions, named_run, conn, login_as):
    _, ingest = tokens.create(conn, "ingest", "installer")
    _, read = tokens.create(conn, "read", "board")
    (key,) = conn.run("SELECT min(key) FROM appliances")[0]
    gateway = Gateway(app, functions, workers=1)
    try:
        def call(method, target, token, payload=b"", content_type="application/json"):
            headers = [("Authorization", f"Bearer {token}"), ("Content-Type", content_type)]
            reply = gateway.handle(method, target, headers, payload)
            return reply.status, json.loads(reply.body) if reply.body else None

        # Warm the authorizer's cache first (as in AWS), then run the appliance function as its own role.
        assert call("GET", "/appliances", read)[0] == 200
        assert call("PUT", f"/appliances/{key}", ingest, b'{"name": "probe"}')[0] == 200
        login_as("appliances")
        status, named = call("PUT", f"/appliances/{key}", ingest, b'{"name": " Kettle ", "kind": "kettle"}')
        assert status == 200 and (named["key"], named["name"], named["kind"]) == (key, "Kettle", "kettle")
        status, listed = call("GET", "/appliances", read)
        assert status == 200 and [a["name"] for a in listed["appliances"] if a["key"] == key] == ["Kettle"]
        assert call("PUT", f"/appliances/{key}", read, b'{"name": "x"}')[0] == 403  # a read token cannot name
        for target, payload, content_type, expected, field in (
                ("/appliances/999999", b'{"name": "x"}', "application/json", (404, "appliance_not_found"), None),
                ("/appliances/models", b'{"name": "x"}', "application/json", (404, "appliance_not_found"), None),
                ("/appliances/0", b'{"name": "x"}', "application/json", (404, "appliance_not_found"), None),
                (f"/appliances/{key}", b"not json", "application/json", (400, "invalid_appliance"), None),
                (f"/appliances/{key}", b'["x"]', "application/json", (400, "invalid_appliance"), None),
                (f"/appliances/{key}", b'{"kind": "kettle"}', "application/json", (400, "invalid_appliance"), "name"),
                (f"/appliances/{key}", b'{"name": 3}', "application/json", (400, "invalid_appliance"), "name"),
                (f"/appliances/{key}", b'{"name": ""}', "application/json", (400, "invalid_appliance"), "name"),
                (f"/appliances/{key}", json.dumps({"name": "x" * 65}).encode(), "application/json",
                 (400, "invalid_appliance"), "name"),
                (f"/appliances/{key}", b'{"name": "a\\u0000b"}', "application/json", (400, "invalid_appliance"),
                 "name"),
                (f"/appliances/{key}", b'{"name": "x", "kind": ["k"]}', "application/json",
                 (400, "invalid_appliance"), "kind"),
                (f"/appliances/{key}", b'{"name": "x", "colour": "red"}', "application/json",
                 (400, "invalid_appliance"), "colour"),
                (f"/appliances/{key}", b'{"name": "x"}', "text/plain", (415, "unsupported_media_type"), None),
                (f"/appliances/{key}", b" " * 5000, "application/json", (413, "payload_too_large"), None)):
            status, answer = call("PUT", target, ingest, payload, content_type)
            assert (status, answer["error"]["code"]) == expected, (target, payload)
            assert answer["error"].get("field") == field, (target, payload)
        other = conn.run("SELECT max(key) FROM appliances")[0][0]
        assert other != key
        status, answer = call("PUT", f"/appliances/{other}", ingest, b'{"name": "kettle"}')  # case ignored
        assert (status, answer["error"]["code"], answer["error"]["key"]) == (409, "appliance_name_taken", key)
        assert call("GET", "/appliances?x=1", read)[0] == 400
        # Nothing half-stored by any refusal: the one name is the one given.
        assert conn.run("SELECT key, name, kind FROM appliances WHERE name IS NOT NULL") == [[key, "Kettle", "kettle"]]
        # Null clears.
        assert call("PUT", f"/appliances/{key}", ingest, b'{"name": null, "kind": null}')[1]["name"] is None
    finally:
        gateway.close()
    # The appliance role names keys and nothing else: it cannot mint, move or drop keys, nor read events.
    for statement in ("INSERT INTO appliances (centre, first_run_id, last_run_id) VALUES ('{1,2,3,4,5,6,7,8}', 1, 1)",
                      "UPDATE appliances SET centre = '{1,2,3,4,5,6,7,8}'", "DELETE FROM appliances",
                      "SELECT count(*) FROM events", "SELECT count(*) FROM api_tokens",
                      "UPDATE cluster_stats SET appliance_key = NULL"):
        with pytest.raises(Exception, match="permission denied"):
            db.execute(statement)


def test_the_report_and_live_roles_read_keys_and_names(named_run, conn, login_as):
    (key,) = conn.run("SELECT min(key) FROM appliances")[0]
    conn.run("UPDATE appliances SET name = 'fridge' WHERE key = :key", key=key)
    for role in ("report", "live"):
        login_as(role)
        items = queries.events_between(1, PER_RUN)
        assert {(i["appliance_key"], i["appliance_name"]) for i in items if i["label"] != -1} >= {(key, "fridge")}
        with pytest.raises(Exception, match="permission denied"):
            db.execute("UPDATE appliances SET name = 'x'")
    login_as("report")
    csv_text = report.events({"format": "csv", "limit": "1000"}, None).body
    header, first = csv_text.splitlines()[:2]
    assert header.endswith(",run_id,label,appliance_key,appliance_name")
