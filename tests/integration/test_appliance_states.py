"""Live appliance states (issue 16): sensor events whose current follows a generated mains of known truth, posted
through ingest, decoded by the states function's entry with the models trained from the appliances' own
recordings, read back from GET /appliances/states and the live channel. Real PostgreSQL, moto for SQS."""

from __future__ import annotations

import json
import random

import boto3
import pytest
from moto import mock_aws

from local import nilm_synth
from local.sqs import scheduled_event
from test_appliances_api import call, world  # noqa: F401 (world: the fixture)
from test_live_announcements import Clock, live_queues
from test_openapi import validate
from wattprint import db, settings
from wattprint.appliances import decode, service as appliances, states
from wattprint.ingest import service as ingest
from wattprint.live import announce, live

SPECS = nilm_synth.reference()
REQUEST = json.dumps({"after_seq": 0})


@pytest.fixture
def queues(monkeypatch, database):
    with mock_aws():
        clock = Clock()
        calls, urls = live_queues(monkeypatch, clock, "states")
        monkeypatch.setenv("APPLIANCE_STATES_QUEUE_URL", urls["states"])
        monkeypatch.setattr(appliances, "TRIGGER", appliances._Trigger(clock=clock))
        yield calls, urls, clock


def sent(calls, url) -> list[dict]:
    found = [{**json.loads(c["MessageBody"]), "delay": c.get("DelaySeconds", 0)} for c in calls if c["QueueUrl"] == url]
    calls[:] = [c for c in calls if c["QueueUrl"] != url]
    return found


@pytest.fixture(scope="module")
def trained():
    return {spec.name: (nilm_synth.training(spec, seed=60 + i).csv(), "OFF,ON" if len(spec.states) == 2 else None)
            for i, spec in enumerate(SPECS)}


def train(trained):
    for name, (text, names) in trained.items():
        appliances.train(name, text, states=names)


def post(records) -> None:
    body = json.dumps([r.to_json() for r in records]).encode()
    ingest.accept(body, "application/json", settings.load())


def test_the_states_live_decoding_reports_match_the_truth(queues, trained, conn):
    calls, urls, clock = queues
    train(trained)
    sent(calls, urls["states"])  # each stored model asked for a decoding (another test follows these)
    # Two households, interleaved in irregular requests: each device's decoder is carried on its own.
    mains = {7: nilm_synth.generate(SPECS, 2400, seed=61), 8: nilm_synth.generate(SPECS, 1800, seed=64)}
    # What POST /appliances/label makes of the same mains, whole: the live path, the same decoder carried from call
    # to call, does no worse (on seed 61 it does better: the batch's rho fit stays at 1 there).
    batch = {d: appliances.label(m.csv()).decoded.states(appliances._chosen(None)) for d, m in mains.items()}
    records = {d: nilm_synth.events(m, device_id=d, seed=d) for d, m in mains.items()}
    rng = random.Random(5)
    at = {d: 0 for d in mains}
    row_of = {}  # seq -> (device, row)
    hits = {(d, name): [] for d in mains for name in mains[d].names}
    agree = {key: [] for key in hits}  # the batch's label at the same rows, right or not
    requests = 0
    while any(at[d] < len(records[d]) for d in mains):
        d = rng.choice([d for d in mains if at[d] < len(records[d])])
        n = rng.randint(1, 60)
        chunk = records[d][at[d]:at[d] + n]
        total = conn.run("SELECT total FROM event_counter")[0][0]
        clock.now += 1.0  # a second later: this instance asks again
        post(chunk)
        row_of.update({total + 1 + i: (d, at[d] + i) for i in range(len(chunk))})
        at[d] += len(chunk)
        asked = sent(calls, urls["states"])
        assert asked == [{"after_seq": total + len(chunk), "delay": 0}]  # ingest asked for a decoding
        requests += 1
        outcome, dropped = appliances.decode_requests([("m", json.dumps({"after_seq": asked[0]["after_seq"]}))])
        assert dropped == [] and outcome["decoded"] == len(chunk) and not outcome["busy"]
        assert sent(calls, urls["states"]) == [{"after_seq": 0, "delay": appliances.TICK_DELAY}]  # look again
        for item in appliances.appliance_states({"device_id": str(d)})["items"]:
            device, row = row_of[item["seen_seq"]]
            assert device == d == item["device_id"]
            truth = mains[d].truth[mains[d].names.index(item["appliance"])]
            a = mains[d].names.index(item["appliance"])
            hits[(d, item["appliance"])].append(item["state"] == truth[row])
            agree[(d, item["appliance"])].append(batch[d][a][row] == truth[row])
            # since: the sensor time of a decoded event of this device, no later than the one seen
            since_device, since_row = row_of[item["since_seq"]]
            assert since_device == d and since_row <= row
            assert item["since"] == records[d][since_row].to_json()["sensor_time"].replace("Z", ".000000Z")
    # Every reported state is decided LAG events behind the newest: the decoder waits for the next ones.
    final = appliances.appliance_states(None)["items"]
    assert {(i["device_id"], i["appliance"]) for i in final} == set(hits)
    for item in final:
        assert row_of[item["seen_seq"]][1] == len(records[item["device_id"]]) - 1 - decode.LAG
    accuracy = {key: sum(h) / len(h) for key, h in hits.items()}
    assert requests > 60 and all(len(h) > 30 for h in hits.values())
    assert min(accuracy.values()) >= 0.95, accuracy
    batch_accuracy = {key: sum(h) / len(h) for key, h in agree.items()}
    assert all(accuracy[key] >= batch_accuracy[key] - 0.02 for key in hits), (accuracy, batch_accuracy)
    # A tick that finds nothing new ends, once every instance knows of the models: no request asks again.
    conn.run("UPDATE appliance_models SET updated_at = now() - make_interval(secs => :s)",
             s=appliances.WATCH_AFTER_MODEL)
    assert appliances.decode_requests([("tick", REQUEST)])[0] == {"decoded": 0, "busy": False, "changed": 0}
    assert sent(calls, urls["states"]) == []


def test_the_live_states_equal_the_batch_decoder_on_the_same_mains(queues, trained):
    """Carried across calls of any size, the live decoder labels as POST /appliances/label does (within a few
    seconds around switches: it cannot wait for the whole recording)."""
    train(trained)
    mains = nilm_synth.generate(SPECS, 1800, seed=63)
    labelled = appliances.label(mains.csv())
    batch = labelled.decoded.combinations
    models = labelled.models
    readings = [(i, float(row[0]), float(row[2]), float(row[1])) for i, row in enumerate(mains.rows)]
    rng, carried, decided, i = random.Random(1), None, [], 0
    while i < len(readings):
        n = rng.randint(1, 50)
        out, carried = decode.decode_live(models, carried, readings[i:i + n])
        carried = decode.Carried.from_json(json.loads(json.dumps(carried.to_json())))  # as the database keeps it
        decided += out
        i += n
    assert len(decided) == len(readings) - decode.LAG
    assert [r for r, _ in decided] == readings[:-decode.LAG]
    agree = sum(combo == batch[r[0]] for r, combo in decided) / len(decided)
    assert agree >= 0.97, agree


def test_nothing_is_asked_for_without_a_model_and_at_most_once_a_second(queues, trained, conn):
    calls, urls, clock = queues
    records = nilm_synth.events(nilm_synth.generate(SPECS, 30, seed=64), device_id=3)
    post(records[:10])
    assert sent(calls, urls["states"]) == []  # no model: no decoding to ask for
    train(trained)
    assert len(sent(calls, urls["states"])) == len(trained)  # each stored model asks once
    clock.now += appliances.TRIGGER_INTERVAL
    post(records[10:15])
    post(records[15:20])  # within the same second: not asked again
    assert len(sent(calls, urls["states"])) == 1
    clock.now += appliances.TRIGGER_INTERVAL
    post(records[20:25])
    assert len(sent(calls, urls["states"])) == 1
    outcome, _ = appliances.decode_requests([("m", REQUEST)])
    assert outcome["decoded"] == 25
    assert conn.run("SELECT after_seq FROM appliance_decoding")[0][0] == 25


def test_events_an_instance_did_not_ask_for_after_a_new_model_are_decoded_by_the_watch(queues, trained, conn,
                                                                                      monkeypatch):
    calls, urls, clock = queues
    records = nilm_synth.events(nilm_synth.generate(SPECS, 30, seed=64), device_id=3)
    train(trained)
    assert sent(calls, urls["states"])  # each stored model asked
    # Another ingest instance counted "no model" just before, and trusts that answer for MODELS_TTL.
    stale = appliances._Trigger(clock=clock)
    stale._models, stale._counted_at = False, clock.now
    monkeypatch.setattr(appliances, "TRIGGER", stale)
    assert appliances.decode_requests([("m", REQUEST)])[0]["decoded"] == 0
    assert sent(calls, urls["states"]) == [{"after_seq": 0, "delay": appliances.TICK_DELAY}]  # watching
    post(records[:20])
    assert sent(calls, urls["states"]) == []  # the stale instance asks for nothing
    assert appliances.decode_requests([("tick", REQUEST)])[0]["decoded"] == 20
    assert sent(calls, urls["states"]) == [{"after_seq": 0, "delay": appliances.TICK_DELAY}]
    conn.run("UPDATE appliance_models SET updated_at = now() - make_interval(secs => :s)",
             s=appliances.WATCH_AFTER_MODEL)
    assert appliances.decode_requests([("tick", REQUEST)])[0]["decoded"] == 0
    assert sent(calls, urls["states"]) == []  # every instance knows of the models by now: the watch ends


def test_decoding_without_models_moves_the_cursor_on_and_stores_nothing(queues, conn):
    calls, urls, _ = queues
    post(nilm_synth.events(nilm_synth.generate(SPECS, 20, seed=65), device_id=3))
    assert appliances.decode_requests([("m", REQUEST)])[0] == {"decoded": 0, "busy": False, "changed": 0}
    assert conn.run("SELECT after_seq FROM appliance_decoding")[0][0] == 20
    assert conn.run("SELECT count(*) FROM appliance_states")[0][0] == 0
    assert sent(calls, urls["states"]) == []


def test_a_malformed_request_is_dropped_and_a_good_one_beside_it_decodes(queues, trained):
    train(trained)
    post(nilm_synth.events(nilm_synth.generate(SPECS, 30, seed=66), device_id=4))
    bad = ["{", "[]", '{"after_seq": "1"}', '{"after_seq": true}', '{"after_seq": 1, "more": 2}']
    outcome, dropped = appliances.decode_requests([(str(i), b) for i, b in enumerate(bad)])
    assert [m for m, _ in dropped] == [str(i) for i in range(len(bad))] and outcome["decoded"] == 0
    assert all("not a request to look" in reason for _, reason in dropped)
    outcome, dropped = appliances.decode_requests([("bad", "{"), ("good", REQUEST)])
    assert [m for m, _ in dropped] == ["bad"] and outcome["decoded"] == 30


def test_a_second_decoder_leaves_the_work_to_the_one_holding_the_cursor(queues, trained, conn):
    calls, urls, _ = queues
    train(trained)
    post(nilm_synth.events(nilm_synth.generate(SPECS, 30, seed=67), device_id=4))
    sent(calls, urls["states"])  # ingest's
    conn.run("START TRANSACTION")
    conn.run("SELECT after_seq FROM appliance_decoding FOR UPDATE")
    try:
        outcome, _ = appliances.decode_requests([("m", REQUEST)])
    finally:
        conn.run("ROLLBACK")
    assert outcome == {"decoded": 0, "busy": True, "changed": 0}
    assert sent(calls, urls["states"]) == [{"after_seq": 0, "delay": appliances.TICK_DELAY}]
    assert appliances.decode_requests([("m", REQUEST)])[0]["decoded"] == 30


def test_a_failed_decoding_stores_nothing_and_raises_so_the_batch_is_retried(queues, trained, conn, monkeypatch):
    train(trained)
    post(nilm_synth.events(nilm_synth.generate(SPECS, 30, seed=68), device_id=4))

    def broken(*args, **kwargs):
        raise RuntimeError("decoder crashed")

    monkeypatch.setattr(decode, "decode_live", broken)
    with pytest.raises(RuntimeError):
        appliances.decode_requests([("m", REQUEST)])
    assert conn.run("SELECT after_seq FROM appliance_decoding")[0][0] == 0
    assert conn.run("SELECT count(*) FROM appliance_decoders")[0][0] == 0


def test_new_models_start_a_device_afresh_and_forget_states_of_models_gone(queues, trained, conn):
    train(trained)
    records = nilm_synth.events(nilm_synth.generate(SPECS, 120, seed=69), device_id=5)
    post(records[:60])
    appliances.decode_requests([("m", REQUEST)])
    (before,), = conn.run("SELECT models FROM appliance_decoders WHERE device_id = 5")
    conn.run("DELETE FROM appliance_models WHERE name = 'PC screen2'")
    post(records[60:])
    appliances.decode_requests([("m", REQUEST)])
    (after, carried), = conn.run("SELECT models, carried FROM appliance_decoders WHERE device_id = 5")
    assert after != before and "PC screen2" not in after
    assert len(carried["cost"]) == 3 * 2  # PC screen1 x Temperature sensor
    assert {r[0] for r in conn.run("SELECT appliance FROM appliance_states WHERE device_id = 5")} == {
        "PC screen1", "Temperature sensor"}


def test_changes_reach_connected_dashboards_as_an_appliances_message(queues, trained, conn):
    calls, urls, clock = queues
    train(trained)
    conn.run("INSERT INTO live_connections (connection_id, token_id, token_name) VALUES ('c1', 1, 'dash')")
    post(nilm_synth.events(nilm_synth.generate(SPECS, 40, seed=70), device_id=6))
    outcome, _ = appliances.decode_requests([("m", REQUEST)])
    assert outcome["changed"] == 3  # every appliance's first state is a change
    (announced,) = [a for a in (json.loads(c["MessageBody"]) for c in calls if c["QueueUrl"] == urls["live"])
                    if a["kind"] == "appliances"]
    assert announce.parse(json.dumps(announced)) == announced and announced["truncated"] is False
    assert announced["items"] == appliances.appliance_states(None)["items"]
    (message,) = live.messages([announced, {**announced, "items": announced["items"][:1]}])
    assert message["type"] == "appliances" and len(message["items"]) == 3
    # No dashboard connected: nothing announced.
    conn.run("DELETE FROM live_connections")
    clock.now += announce.COUNT_TTL
    calls.clear()
    assert announce.appliances_changed(announced["items"]) is False
    assert sent(calls, urls["live"]) == []


def test_the_states_function_works_as_its_own_login_and_no_more(queues, trained, conn, login_as):
    from pg8000.exceptions import DatabaseError

    train(trained)
    post(nilm_synth.events(nilm_synth.generate(SPECS, 30, seed=71), device_id=4))
    login_as("states")
    outcome, _ = appliances.decode_requests([("m", REQUEST)])
    assert outcome["decoded"] == 30
    for sql in ("SELECT raw FROM events", "UPDATE appliance_models SET name = name",
                "INSERT INTO live_connections (connection_id, token_id) VALUES ('x', 1)"):
        with pytest.raises(DatabaseError):
            db.execute(sql)
    login_as("appliances")
    assert len(appliances.appliance_states({"device_id": "4"})["items"]) == 3
    login_as("ingest")  # the trigger's question, as ingest asks it
    assert db.execute(appliances._HAS_MODELS)[0][0] is True


def get(gateway, target, token):
    return call(gateway, "GET", target, token, headers=())


def test_get_appliance_states_answers_the_documented_shapes(world, queues, trained):
    gw, read, write = world
    train(trained)
    post(nilm_synth.events(nilm_synth.generate(SPECS, 30, seed=72), device_id=9))
    post(nilm_synth.events(nilm_synth.generate(SPECS, 30, seed=73), device_id=10))
    appliances.decode_requests([("m", REQUEST)])
    everything = validate(get(gw, "/appliances/states", read), "/appliances/states", "GET")["items"]
    assert [(i["device_id"], i["appliance"]) for i in everything] == [
        (d, name) for d in (9, 10) for name in ("PC screen1", "PC screen2", "Temperature sensor")]
    one = validate(get(gw, "/appliances/states?device_id=10", read), "/appliances/states", "GET")["items"]
    assert one == everything[3:]
    assert validate(get(gw, "/appliances/states?device_id=11", read), "/appliances/states", "GET") == {"items": []}
    for target, code, parameter in (("/appliances/states?device_id=ten", "invalid_parameter", "device_id"),
                                    ("/appliances/states?device_id=99999999999", "invalid_parameter", "device_id"),
                                    ("/appliances/states?device=1", "unknown_parameter", "device")):
        reply = get(gw, target, read)
        error = validate(reply, "/appliances/states", "GET")["error"]
        assert reply.status == 400 and error["code"] == code and error["parameter"] == parameter
    assert get(gw, "/appliances/states", None).status == 401
    assert get(gw, "/appliances/states", write).status == 403


def test_too_many_combinations_for_live_states_skip_on_instead_of_failing(queues, trained, conn):
    text, _ = trained["PC screen1"]
    for name in ("A", "B", "C", "D", "E", "F"):  # 3^6 = 729 combinations: more than a decoder takes
        appliances.train(name, text)
    post(nilm_synth.events(nilm_synth.generate(SPECS, 30, seed=74), device_id=4))
    outcome, dropped = appliances.decode_requests([("m", REQUEST)])
    assert outcome == {"decoded": 0, "busy": False, "changed": 0} and dropped == []
    assert conn.run("SELECT after_seq FROM appliance_decoding")[0][0] == 30  # not retried for ever
    assert conn.run("SELECT count(*) FROM appliance_states")[0][0] == 0


def test_the_sweep_asks_the_followers_to_look_only_when_events_wait_for_them(queues, trained, conn, functions,
                                                                          login_as, monkeypatch):
    """A follower whose own look-again was lost (its SQS send failed) waits for the next event, which may not come:
    the hourly sweep asks it, as its own login, only if events wait (for the states, only with a model stored)."""
    calls, urls, _ = queues
    client = boto3.client("sqs", region_name="us-east-1")
    feed = client.create_queue(QueueName="feed")["QueueUrl"]
    monkeypatch.setenv("ENERGY_FEED_QUEUE_URL", feed)
    # The sweep's other work sends runs.
    monkeypatch.setenv("CLUSTER_QUEUE_URL", client.create_queue(QueueName="cluster")["QueueUrl"])
    post(nilm_synth.events(nilm_synth.generate(SPECS, 10, seed=66), device_id=4))
    calls.clear()  # what ingest itself asked
    login_as("sweep")

    def asked() -> dict:
        outcome = functions.invoke("SweepFunction", scheduled_event())["asked"]
        assert sent(calls, feed) == ([{"after_seq": 0, "delay": 0}] if outcome["energy_feed"] else [])
        assert sent(calls, urls["states"]) == ([{"after_seq": 0, "delay": 0}] if outcome["appliance_states"] else [])
        return outcome

    assert asked() == {"energy_feed": True, "appliance_states": False}  # no model: nothing to decode for
    conn.run("INSERT INTO appliance_models (name, model) SELECT 'probe', '{}'::jsonb")
    assert asked() == {"energy_feed": True, "appliance_states": True}
    conn.run("UPDATE energy_feed SET after_seq = (SELECT total FROM event_counter)")
    conn.run("UPDATE appliance_decoding SET after_seq = (SELECT total FROM event_counter)")
    assert asked() == {"energy_feed": False, "appliance_states": False}
