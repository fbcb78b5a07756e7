"""Appliance states through the API (gateway, authorizer, handler, real PostgreSQL) and the command line."""

from __future__ import annotations

import csv
import io
import json
import os
import subprocess
import sys
from pathlib import Path
from urllib.parse import quote

import pytest

from local import nilm_synth
from local.apigw import Gateway
from test_openapi import validate
from wattprint import tokens
from wattprint.appliances import __main__ as cli

ROOT = Path(__file__).resolve().parents[2]
SPECS = nilm_synth.reference()
CSV = [("Content-Type", "text/csv")]


@pytest.fixture(scope="module")
def recordings():
    training = {spec.name: nilm_synth.training(spec, seed=30 + i).csv() for i, spec in enumerate(SPECS)}
    return training, nilm_synth.generate(SPECS, 2 * 3600, seed=31)


@pytest.fixture
def world(app, functions, database, conn):
    gateway = Gateway(app, functions, workers=2)
    _, read = tokens.create(conn, "read", "dashboard")
    _, ingest = tokens.create(conn, "ingest", "installer")
    yield gateway, read, ingest
    gateway.close()


def call(gateway, method, target, token=None, body="", headers=CSV):
    auth = [("Authorization", f"Bearer {token}")] if token else []
    return gateway.handle(method, target, auth + list(headers), body.encode())


def accuracies(labelled: str, mains) -> dict[str, float]:
    table = list(csv.DictReader(io.StringIO(labelled)))
    assert len(table) == len(mains.rows)
    assert [(r["timestamp"], r["Maximum current"], r["Effective current"]) for r in table] == mains.rows
    return {name: sum(r[f"{name} state"] == t for r, t in zip(table, truth)) / len(table)
            for name, truth in zip(mains.names, mains.truth)}


def test_train_then_label_through_the_api(world, recordings, conn):
    gateway, read, ingest = world
    training, mains = recordings
    for name, text in training.items():
        reply = call(gateway, "PUT", f"/appliances/models/{quote(name)}", ingest, text)
        assert reply.status == 201, reply.body
        model = validate(reply, "/appliances/models/{name}", "PUT")
        assert model["name"] == name and model["rows"] == 3600
    names = ["PC screen1", "PC screen2", "Temperature sensor"]
    listed = validate(call(gateway, "GET", "/appliances/models", read), "/appliances/models", "GET")["models"]
    assert [m["name"] for m in listed] == names
    assert [[s["name"] for s in m["states"]] for m in listed] == [["OFF", "IDLE", "ON"]] * 2 + [["OFF", "ON"]]

    reply = call(gateway, "POST", "/appliances/label", read, mains.csv())
    assert reply.status == 200, reply.body
    text = validate(reply, "/appliances/label", "POST")
    assert text.splitlines()[0] == ("timestamp,Maximum current,Effective current,PC screen1 state,PC screen2 state,"
                                    "Temperature sensor state")
    scores = accuracies(text, mains)
    assert min(scores.values()) >= 0.95, scores
    headers = dict(reply.headers)
    assert 0 <= float(headers["X-Rho-Rms"]) <= 1

    # only some appliances; names are case-blind
    reply = call(gateway, "POST", "/appliances/label?models=temperature%20sensor", read, mains.csv())
    assert reply.status == 200
    assert reply.body.decode().splitlines()[0].endswith("Effective current,Temperature sensor state")

    # training again replaces (200), a name differing only in case is the same appliance
    reply = call(gateway, "PUT", "/appliances/models/pc%20SCREEN1?states=off,standby,on", ingest,
                 training["PC screen1"])
    assert reply.status == 200, reply.body
    assert [s["name"] for s in validate(reply, "/appliances/models/{name}", "PUT")["states"]] == \
        ["off", "standby", "on"]
    assert conn.run("SELECT name FROM appliance_models ORDER BY lower(name)")[0] == ["pc SCREEN1"]
    assert conn.run("SELECT count(*) FROM appliance_models")[0][0] == 3


def test_bad_requests_answer_400_and_store_nothing(world, recordings, conn):
    gateway, read, ingest = world
    training, mains = recordings
    good = training["Temperature sensor"]
    lines = good.splitlines()
    swapped = "\n".join(lines[:5] + [lines[6], lines[5]] + lines[7:])
    cases = [
        ("Timestamp,Effective current\n1,2\n", "invalid_recording", 1, "Maximum current"),
        (good.replace(lines[3].split(",")[1], "abc", 1), "invalid_recording", 4, "Maximum current"),
        (swapped, "invalid_recording", 7, "Timestamp"),
        ("\n".join(lines[:4] + [lines[3]] + lines[4:]), "invalid_recording", 5, "Timestamp"),
        ("\n".join(lines[:30]), "invalid_recording", 30, None),
    ]
    for body, code, row, column in cases:
        reply = call(gateway, "PUT", "/appliances/models/Heater", ingest, body)
        assert reply.status == 400, reply.body
        error = validate(reply, "/appliances/models/{name}", "PUT")["error"]
        assert (error["code"], error["row"], error["column"]) == (code, row, column), error
    for target, code in (("/appliances/models/Heater?states=A,B,C", "invalid_model"),
                         ("/appliances/models/Heater?state=A", "unknown_parameter"),
                         ("/appliances/models/%3Dcmd", "invalid_model")):
        reply = call(gateway, "PUT", target, ingest, good)
        assert reply.status == 400 and validate(reply, "/appliances/models/{name}", "PUT")["error"]["code"] == code
    reply = call(gateway, "PUT", "/appliances/models/Heater", ingest, good, [("Content-Type", "text/plain")])
    assert reply.status == 415 and validate(reply, "/appliances/models/{name}", "PUT")["error"]["code"] == \
        "unsupported_media_type"
    assert conn.run("SELECT count(*) FROM appliance_models")[0][0] == 0

    reply = call(gateway, "POST", "/appliances/label", read, mains.csv())
    assert reply.status == 400 and "train one first" in validate(reply, "/appliances/label", "POST")["error"]["message"]
    assert call(gateway, "PUT", "/appliances/models/Heater", ingest, good).status == 201
    for target, body, code in (("/appliances/label?models=Kettle", mains.csv(), "unknown_appliance"),
                               ("/appliances/label", "Timestamp,Maximum current,Effective current\n1,2,x\n",
                                "invalid_recording")):
        reply = call(gateway, "POST", target, read, body)
        assert reply.status == 400 and validate(reply, "/appliances/label", "POST")["error"]["code"] == code


def test_scopes(world, recordings):
    """A read token (in dashboards' browsers) may label but not train; a sensor's ingest token may train."""
    gateway, read, ingest = world
    training, mains = recordings
    body = training["Temperature sensor"]
    for method, target, token, status in (("PUT", "/appliances/models/Heater", read, 403),
                                          ("PUT", "/appliances/models/Heater", None, 401),
                                          ("POST", "/appliances/label", ingest, 403),
                                          ("GET", "/appliances/models", ingest, 403),
                                          ("PUT", "/appliances/models/Heater", ingest, 201),
                                          ("POST", "/appliances/label", read, 200)):
        reply = call(gateway, method, target, token, body if method != "POST" else mains.csv())
        assert reply.status == status, (method, target, reply.body)


def test_the_runtime_login_may_store_models(world, recordings, app_role):
    gateway, _, ingest = world
    training, _ = recordings
    reply = call(gateway, "PUT", "/appliances/models/Heater", ingest, training["Temperature sensor"])
    assert reply.status == 201, reply.body


def test_command_line_trains_and_labels(database, recordings, tmp_path, capsys):
    training, mains = recordings
    for name, text in training.items():
        path = tmp_path / f"{name}.csv"
        path.write_text(text)
        states = "OFF,ON" if name == "Temperature sensor" else None
        assert cli.main(["train", name, str(path)] + (["--states", states] if states else [])) == 0
        assert f"stored {name}" in capsys.readouterr().err
    main = tmp_path / "main.csv"
    main.write_text(mains.csv())
    assert cli.main(["label", str(main)]) == 0
    out, err = capsys.readouterr()
    assert min(accuracies(out, mains).values()) >= 0.95 and f"labelled {len(mains.rows)} rows" in err
    assert cli.main(["models"]) == 0
    assert [m["name"] for m in json.loads(capsys.readouterr().out)] == mains.names

    bad = tmp_path / "bad.csv"
    bad.write_text("Timestamp,Maximum current,Effective current\n1,2,3\n1,2,3\n")
    assert cli.main(["label", str(bad)]) == 2
    assert "error: timestamp '1' repeats the previous row's" in capsys.readouterr().err
    assert cli.main(["label", str(tmp_path / "missing.csv")]) == 2
    assert "No such file" in capsys.readouterr().err


def test_command_line_as_a_module(database, pg_url, recordings, tmp_path):
    """`python -m wattprint.appliances` on the database named by the environment, recording on stdin."""
    training, _ = recordings
    env = {**os.environ, "DATABASE_URL": pg_url, "DB_SCHEMA": database, "PYTHONPATH": str(ROOT / "layers" / "core")}
    done = subprocess.run([sys.executable, "-m", "wattprint.appliances", "train", "Heater", "-"], cwd=tmp_path,
                          env=env, input=training["Temperature sensor"], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert done.stderr.startswith("stored Heater: OFF ")
