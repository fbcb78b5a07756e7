"""POST /energy and the GET /energy routes through the local API Gateway stand-in, the real authorizer and
handler, and PostgreSQL."""

from __future__ import annotations

import csv
import io
import json
from datetime import datetime, timedelta, timezone

import pytest

from local.apigw import Gateway
from wattprint import tokens
from wattprint.energy import integrate, readings, times

UTC = timezone.utc
DAY0 = datetime(2019, 1, 5, tzinfo=UTC)


def iso(t: datetime) -> str:
    return t.strftime("%Y-%m-%dT%H:%M:%SZ")


def at(minutes: float) -> str:
    return iso(DAY0 + timedelta(minutes=minutes))


@pytest.fixture
def api(app, functions, database, conn):
    gateway = Gateway(app, functions, workers=2)
    _, ingest = tokens.create(conn, "ingest", "meter")
    _, read = tokens.create(conn, "read", "board")

    def call(method, target, body=None, token=None, headers=()):
        data = b"" if body is None else (body if isinstance(body, bytes) else json.dumps(body).encode())
        token = token or (ingest if method == "POST" else read)
        reply = gateway.handle(method, target, [("Authorization", f"Bearer {token}"),
                                                ("Content-Type", "application/json"), *headers], data)
        text = reply.body.decode()
        ctype = dict(reply.headers).get("Content-Type", "")
        return reply.status, (json.loads(text) if ctype.startswith("application/json") else text)

    call.tokens = (ingest, read)
    yield call
    gateway.close()


def post(api, device, units, points, status=200):
    code, body = api("POST", "/energy", {"device_id": device, "units": units,
                                         "data": [{"datetime": t, "value": v} for t, v in points]})
    assert code == status, body
    return body


def series(api, device, start, end, resolution="15m"):
    code, body = api("GET", f"/energy?device_id={device}&start={start}&end={end}&resolution={resolution}")
    assert code == 200, body
    return body


def stored(conn, device):
    return conn.run("SELECT CAST(extract(epoch FROM bucket_start) AS bigint), kwh, covered_us, estimated_us, "
                    "arrival_us FROM energy_buckets WHERE device_id = :d ORDER BY bucket_start", d=device)


def days(conn, device):
    return conn.run("SELECT day, kwh FROM energy_days WHERE device_id = :d ORDER BY day", d=device)


def test_the_specs_example_reads_back_as_3_per_quarter(api, conn):
    answer = post(api, 42, "kWh", [(at(0), 12), (at(60), 26)])
    assert answer == {"device_id": 42, "units": "kWh", "received": 2, "inserted": 2, "replaced": 0,
                      "unchanged": 0, "buckets_changed": 8}
    body = series(api, 42, at(0), at(120))
    assert [(d["datetime"], d["value"], d["coverage"], d["flags"]) for d in body["data"]] == [
        *[(at(m), 3.0, 1.0, []) for m in (0, 15, 30, 45)],
        *[(at(m), 6.5, 1.0, ["estimated_end"]) for m in (60, 75, 90, 105)]]
    assert (body["units"], body["resolution"], body["start"], body["end"]) == ("kWh", "15m", at(0), at(120))
    hourly = series(api, 42, at(0), at(120), "1h")["data"]
    assert [(d["value"], d["coverage"]) for d in hourly] == [(12.0, 1.0), (26.0, 1.0)]
    daily = series(api, 42, "2019-01-05T00-00-00Z", "2019-01-06T00-00-00Z", "1d")["data"]  # the spec's form
    assert daily == [{"datetime": at(0), "value": 38.0, "coverage": pytest.approx(8 / 96),
                      "flags": ["estimated_end"]}]


def test_kw_readings_1_4_1_are_half_a_kwh_and_a_gap_lowers_coverage(api, conn):
    post(api, 7, "kW", [(at(0), 1), (at(5), 4), (at(10), 1), (at(15), 0), (at(15 + 180), 2), (at(200), 2)])
    data = series(api, 7, at(0), at(225))["data"]
    assert data[0]["value"] == pytest.approx(0.5) and data[0]["coverage"] == 1.0
    assert [d["value"] for d in data[1:13]] == [0.0] * 12 and data[1]["coverage"] == 0.0  # the 3 h gap
    assert data[13]["datetime"] == at(195) and data[13]["value"] == pytest.approx(2 * 10 / 60)
    assert data[13]["coverage"] == pytest.approx(10 / 15) and data[13]["flags"] == ["estimated_end"]


def test_a_repost_changes_nothing_and_a_correction_only_its_buckets(api, conn):
    points = [(at(m), 1.0) for m in range(0, 24 * 60, 10)]  # a day of 1 kW every 10 minutes
    post(api, 3, "kW", points)
    before = stored(conn, 3)
    ctid = conn.run("SELECT ctid::text FROM energy_buckets WHERE device_id = 3 ORDER BY bucket_start LIMIT 1")
    again = post(api, 3, "kW", points)
    assert (again["inserted"], again["replaced"], again["unchanged"], again["buckets_changed"]) == (0, 0, 144, 0)
    assert stored(conn, 3) == before
    assert conn.run("SELECT ctid::text FROM energy_buckets WHERE device_id = 3 ORDER BY bucket_start LIMIT 1") == ctid
    # 13:00's reading becomes 4 kW: its 10 minutes move from 1/6 to 4/6 kWh, in the 13:00 bucket only.
    fix = post(api, 3, "kW", [(at(13 * 60), 4.0)])
    assert (fix["inserted"], fix["replaced"], fix["buckets_changed"]) == (0, 1, 1)
    after = stored(conn, 3)
    changed = [(b, a) for b, a in zip(before, after) if b != a]
    assert len(after) == len(before) and len(changed) == 1
    assert changed[0][1][0] == times.to_us(DAY0 + timedelta(hours=13)) // times.SECOND
    assert changed[0][1][1] - changed[0][0][1] == pytest.approx(0.5)
    assert days(conn, 3)[0][1] == pytest.approx(24 + 0.5)  # the day total followed


def test_late_out_of_order_overlapping_posts_equal_one_post_of_everything(api, conn):
    points = [(at(m), float(m // 7 % 5)) for m in range(0, 600, 7)]
    post(api, 1, "kW", points)
    post(api, 2, "kW", points[40:])
    post(api, 2, "kW", points[:25])
    post(api, 2, "kW", points[20:45])  # overlaps both, in the middle
    one, two = stored(conn, 1), stored(conn, 2)
    assert [(r[0], *r[2:]) for r in one] == [(r[0], *r[2:]) for r in two]
    assert [r[1] for r in one] == pytest.approx([r[1] for r in two]) and sum(r[1] for r in one) > 10
    assert days(conn, 1)[0][1] == pytest.approx(days(conn, 2)[0][1])


def test_a_new_last_reading_replaces_the_old_estimated_end(api, conn):
    post(api, 5, "kW", [(at(0), 1), (at(60), 1)])  # the last one's interval: an hour, estimated
    assert len(stored(conn, 5)) == 8
    post(api, 5, "kW", [(at(70), 0), (at(80), 0)])  # 01:10: the 01:00 interval ends; spacing is now 10 min
    data = series(api, 5, at(0), at(120))["data"]
    assert [d["value"] for d in data[4:6]] == pytest.approx([10 / 60, 0.0])
    assert data[4]["flags"] == [] and data[5]["flags"] == ["estimated_end"]
    assert data[6]["value"] == 0 and data[6]["coverage"] == 0  # the old estimated end is gone
    assert sum(d["value"] for d in data) == pytest.approx(1 + 10 / 60)
    assert days(conn, 5)[0][1] == pytest.approx(1 + 10 / 60)


@pytest.mark.parametrize("body, index, field", [
    ({"device_id": 1, "units": "kW", "data": [{"datetime": "2019-01-05T04:42:00ZZ", "value": 1}]}, 0, "datetime"),
    ({"device_id": 1, "units": "kW", "data": [{"datetime": "2019-01-05T04:42:00", "value": 1}]}, 0, "datetime"),
    ({"device_id": 1, "units": "W", "data": [{"datetime": "2019-01-05T04:42:00Z", "value": 1}]}, None, "units"),
    ({"device_id": 1, "units": "kW", "data": [{"datetime": at(0), "value": 1}, {"datetime": at(1), "value": -2}]},
     1, "value"),
    ({"device_id": 1, "units": "kW", "data": [{"datetime": at(0), "value": 1},
                                              {"datetime": "2019-01-05T01:00:00+01:00", "value": 2}]}, 1, "datetime"),
    ({"device_id": 1, "units": "kW", "data": [{"datetime": at(0), "value": True}]}, 0, "value"),
    ({"device_id": 1, "units": "kW", "data": [{"datetime": at(0), "value": "1"}]}, 0, "value"),
    ({"device_id": 1, "units": "kW", "data": [{"datetime": at(0), "value": 1, "extra": 0}]}, 0, "extra"),
    ({"device_id": 1, "units": "kW", "data": [{"value": 1}]}, 0, "datetime"),
    ({"device_id": "1", "units": "kW", "data": [{"datetime": at(0), "value": 1}]}, None, "device_id"),
    ({"device_id": 2**31, "units": "kW", "data": [{"datetime": at(0), "value": 1}]}, None, "device_id"),
    ({"units": "kW", "data": [{"datetime": at(0), "value": 1}]}, None, "device_id"),
    ({"device_id": 1, "units": "kW", "data": []}, None, "data"),
    ({"device_id": 1, "units": "kW", "data": [{"datetime": at(i), "value": 1}
                                              for i in range(readings.MAX_READINGS + 1)]},
     readings.MAX_READINGS, "data"),
])
def test_invalid_posts_name_the_index_and_field_and_store_nothing(api, conn, body, index, field):
    code, answer = api("POST", "/energy", body)
    assert code == 400, answer
    assert answer["error"]["code"] == "invalid_reading"
    assert (answer["error"]["index"], answer["error"]["field"]) == (index, field)
    assert conn.run("SELECT (SELECT count(*) FROM energy_readings), (SELECT count(*) FROM energy_buckets)") == [[0, 0]]


@pytest.mark.parametrize("raw", [b'{"device_id": 1, "units": "kW", "data": [{"datetime": "2019-01-05T00:00:00Z", '
                                 b'"value": NaN}]}',
                                 b'{"device_id": 1, "units": "kW", "data": [{"datetime": "2019-01-05T00:00:00Z", '
                                 b'"value": 1e400}]}',
                                 b'not json', b'[1, 2]'])
def test_non_finite_values_and_non_objects_are_refused(api, conn, raw):
    code, answer = api("POST", "/energy", raw)
    assert code == 400 and answer["error"]["code"] == "invalid_reading", answer
    assert conn.run("SELECT count(*) FROM energy_readings") == [[0]]


def test_a_valid_prefix_is_not_stored_when_a_later_reading_is_bad(api, conn):
    good = [{"datetime": at(i), "value": 1} for i in range(50)]
    code, answer = api("POST", "/energy", {"device_id": 1, "units": "kW",
                                           "data": good + [{"datetime": at(10), "value": 1}]})
    assert code == 400 and (answer["error"]["index"], answer["error"]["field"]) == (50, "datetime")
    assert "reading 10" in answer["error"]["message"]
    assert conn.run("SELECT count(*) FROM energy_readings") == [[0]]


def test_scopes(api):
    ingest, read = api.tokens
    body = {"device_id": 1, "units": "kW", "data": [{"datetime": at(0), "value": 1}]}
    assert api("POST", "/energy", body, token=read)[0] == 403
    assert api("GET", f"/energy?device_id=1&start={at(0)}&end={at(15)}", token=ingest)[0] == 403
    assert api("POST", "/energy", body, token=ingest)[0] == 200


def test_fleet_sums_and_averages_over_the_devices_reporting(api):
    post(api, 1, "kW", [(at(0), 4), (at(15), 4), (at(30), 0)])
    post(api, 2, "kW", [(at(15), 2), (at(30), 2), (at(45), 0)])
    code, body = api("GET", f"/energy/fleet?start={at(0)}&end={at(75)}")
    assert code == 200
    # A last reading of 0 kW still reports over its (estimated) interval: it covers time, with no energy.
    assert [(d["sum"], d["avg"], d["devices"]) for d in body["data"]] == [
        (1.0, 1.0, 1), (1.5, 0.75, 2), (0.5, 0.25, 2), (0.0, 0.0, 1), (0.0, None, 0)]
    code, hourly = api("GET", f"/energy/fleet?start={at(0)}&end={at(60)}&resolution=1h")
    assert [(d["sum"], d["devices"]) for d in hourly["data"]] == [(3.0, 2)]


def test_top_ranks_by_energy_with_ties_by_device_id(api):
    post(api, 9, "kWh", [(at(0), 5), (at(60), 0), (at(24 * 60 + 60), 0)])
    post(api, 4, "kWh", [(at(0), 5), (at(60), 0)])
    post(api, 6, "kWh", [(at(0), 1), (at(60), 0), (at(24 * 60), 7), (at(24 * 60 + 60), 0)])
    code, body = api("GET", "/energy/top")
    assert code == 200 and body["count"] == 3 and body["start"] is None
    assert [(d["rank"], d["device_id"], d["kwh"]) for d in body["data"]] == [(1, 6, 8.0), (2, 4, 5.0), (3, 9, 5.0)]
    # A window that is not whole days: its ends come from the buckets, the rest from the day totals.
    code, body = api("GET", f"/energy/top?count=1&start={at(30)}&end={at(24 * 60 + 30)}")
    assert [(d["device_id"], d["kwh"]) for d in body["data"]] == [(6, pytest.approx(0.5 + 3.5))]
    code, body = api("GET", f"/energy/top?count=5&start={at(30)}&end={at(45)}")
    assert [(d["device_id"], d["kwh"]) for d in body["data"]] == [(4, 1.25), (9, 1.25), (6, 0.25)]


@pytest.mark.parametrize("target, parameter", [
    ("/energy?start=2019-01-05&end=2019-01-06", "device_id"),
    ("/energy?device_id=x&start=2019-01-05&end=2019-01-06", "device_id"),
    ("/energy?device_id=1&start=yesterday&end=2019-01-06", "start"),
    ("/energy?device_id=1&start=2019-01-06&end=2019-01-05", "end"),
    ("/energy?device_id=1&start=2019-01-05&end=2019-01-06&resolution=5m", "resolution"),
    ("/energy?device_id=1&start=2019-01-05&end=2019-12-06", "end"),
    ("/energy?device_id=1&start=2019-01-05&end=2019-01-06&devce=1", "devce"),
    ("/energy?device_id=1&device_id=2&start=2019-01-05&end=2019-01-06", "device_id"),
    ("/energy?device_id=1&start=2019-01-05&end=2019-01-06&format=xml", "format"),
    ("/energy/fleet?start=2019-01-05", "end"),
    ("/energy/top?count=0", "count"),
    ("/energy/top?start=2019-01-05", "end"),
    ("/energy/forecast?device_id=1", "start"),
    ("/energy/power?start=2019-01-05&end=2019-01-06", "device_id"),
    ("/energy/power?device_id=1&start=2019-01-05", "end"),
    ("/energy/power?device_id=1&start=2019-01-05&end=2019-12-06", "end"),
    ("/energy/power?device_id=1&start=2019-01-05&end=2019-01-06&resolution=1h", "resolution"),
])
def test_bad_queries_name_the_parameter(api, target, parameter):
    code, body = api("GET", target)
    assert code == 400, body
    assert body["error"]["parameter"] == parameter and body["error"]["code"] in ("invalid_parameter",
                                                                                "unknown_parameter")


def power(api, device, start, end):
    code, body = api("GET", f"/energy/power?device_id={device}&start={start}&end={end}")
    assert code == 200, body
    assert body["units"] == "kW" and (body["start"], body["end"]) == (start, end)
    return body


def steps(body):
    return [(d["datetime"], d["end"], d["value"], d["flags"]) for d in body["data"]]


def test_power_is_what_the_readings_hold_step_by_step(api):
    # kW held to the next reading; the last one over the typical spacing (estimated).
    post(api, 5, "kW", [(at(0), 1), (at(5), 4), (at(10), 1)])
    body = power(api, 5, at(0), at(30))
    assert body["resolution"] == "readings"
    assert steps(body) == [(at(0), at(5), 1.0, []), (at(5), at(10), 4.0, []), (at(10), at(15), 1.0, ["estimated_end"])]
    # kWh: the interval's energy over its length (12 kWh in an hour is 12 kW); clipped to the window.
    post(api, 6, "kWh", [(at(0), 12), (at(60), 26)])
    assert steps(power(api, 6, at(15), at(90))) == [(at(15), at(60), 12.0, []), (at(60), at(90), 26.0, ["estimated_end"])]
    # A gap over the maximum (2 h) is no step; the window's first step starts with the reading before it.
    post(api, 7, "kW", [(at(0), 2), (at(30), 3), (at(300), 1), (at(330), 1)])
    assert steps(power(api, 7, at(15), at(360))) == [
        (at(15), at(30), 2.0, []), (at(300), at(330), 1.0, []), (at(330), at(360), 1.0, ["estimated_end"])]
    # Nothing stored: no steps.
    assert power(api, 8, at(0), at(60))["data"] == []


def test_power_integrates_to_the_buckets_energy(api):
    post(api, 11, "kW", [(at(m), v) for m, v in ((0, 1.5), (7, 0.25), (19, 3.0), (41, 2.0), (44, 0.5), (58, 1.0))])
    body = power(api, 11, at(0), at(60))
    kwh = sum(d["value"] * (datetime.fromisoformat(d["end"]) - datetime.fromisoformat(d["datetime"])).total_seconds()
              / 3600 for d in body["data"])
    assert kwh == pytest.approx(sum(d["value"] for d in series(api, 11, at(0), at(60))["data"]))


def test_power_of_a_window_with_too_many_readings_is_per_bucket(api, monkeypatch):
    from wattprint.energy import params

    post(api, 12, "kW", [(at(m), 1.0 if m < 15 else 3.0) for m in range(0, 30, 3)] + [(at(30), 0)])
    monkeypatch.setattr(params, "MAX_POWER_READINGS", 5)
    body = power(api, 12, at(0), at(45))
    assert body["resolution"] == "15m"
    assert steps(body) == [(at(0), at(15), 1.0, []), (at(15), at(30), 3.0, []), (at(30), at(45), 0.0, ["estimated_end"])]
    monkeypatch.setattr(params, "MAX_POWER_READINGS", 11)
    assert power(api, 12, at(0), at(45))["resolution"] == "readings"


def test_csv_on_request(api):
    post(api, 42, "kWh", [(at(0), 12), (at(60), 26)])
    code, text = api("GET", f"/energy?device_id=42&start={at(0)}&end={at(60)}", headers=[("Accept", "text/csv")])
    assert code == 200
    rows = list(csv.reader(io.StringIO(text)))
    assert rows == [["datetime", "value", "coverage", "flags"], *[[at(m), "3.0", "1.0", ""] for m in (0, 15, 30, 45)]]
    code, text = api("GET", "/energy/top?format=csv")
    assert list(csv.reader(io.StringIO(text)))[1] == ["1", "42", "38.0"]
    code, text = api("GET", f"/energy/fleet?start={at(0)}&end={at(30)}&format=csv")
    assert list(csv.reader(io.StringIO(text)))[1:] == [[at(0), "3.0", "3.0", "1"], [at(15), "3.0", "3.0", "1"]]
    code, text = api("GET", f"/energy/power?device_id=42&start={at(0)}&end={at(75)}&format=csv")
    assert list(csv.reader(io.StringIO(text))) == [["datetime", "end", "value", "flags"], [at(0), at(60), "12.0", ""],
                                                   [at(60), at(75), "26.0", "estimated_end"]]


def test_forecast_says_when_history_is_too_short(api):
    code, body = api("GET", f"/energy/forecast?device_id=77&start={at(0)}&end={at(60)}")
    assert code == 409 and body["error"]["code"] == "insufficient_history" and body["error"]["weeks_available"] == 0
    post(api, 77, "kW", [(at(m), 1) for m in range(0, 3 * 24 * 60, 60)])
    code, body = api("GET", f"/energy/forecast?device_id=77&start={at(4 * 24 * 60)}&end={at(5 * 24 * 60)}")
    assert code == 409 and body["error"]["weeks_available"] == 0 and body["error"]["weeks_needed"] == 6


def test_forecast_of_a_weekly_pattern_with_its_backtest(api):
    # Eight weeks of hourly kWh: 2 kWh in the hours 8-17 on weekdays, 0.4 otherwise.
    points = []
    for h in range(8 * 7 * 24):
        t = DAY0 + timedelta(hours=h)
        points.append((iso(t), 2.0 if t.weekday() < 5 and 8 <= t.hour < 18 else 0.4))
    post(api, 8, "kWh", points)
    start = DAY0 + timedelta(weeks=8)
    code, body = api("GET", f"/energy/forecast?device_id=8&start={iso(start)}&end={iso(start + timedelta(days=1))}")
    assert code == 200, body
    assert body["origin"] == iso(start) and len(body["data"]) == 96
    assert start.weekday() == 5  # a Saturday: 0.1 kWh a quarter all day
    assert [d["value"] for d in body["data"]] == pytest.approx([0.1] * 96)
    assert body["total"] == pytest.approx(9.6)
    assert body["backtest"]["weeks"] == 2 and body["backtest"]["buckets"] == 2 * 672
    assert body["backtest"]["mae_kwh"] == pytest.approx(0, abs=1e-9) and body["method"]["level"] == pytest.approx(1)
    # A window in the past is forecast from what came before it, not from itself.
    past = DAY0 + timedelta(weeks=7, days=2)  # a Monday
    code, body = api("GET", f"/energy/forecast?device_id=8&start={iso(past + timedelta(hours=9))}"
                            f"&end={iso(past + timedelta(hours=10))}")
    assert code == 200 and body["origin"] == iso(past + timedelta(hours=9))
    assert [d["value"] for d in body["data"]] == pytest.approx([0.5] * 4)


def full_integration(conn, device):
    rows = conn.run("SELECT CAST(extract(epoch FROM ts) * 1000000 AS bigint), value, units, flags, source "
                    "FROM energy_readings WHERE device_id = :d ORDER BY ts, source", d=device)
    readings = [integrate.Reading(*row) for row in rows]
    gap = 7200 * times.SECOND
    spacing = integrate.typical_spacing([r.ts for r in readings][-integrate.SPACING_INTERVALS - 1:], gap) or 0
    return integrate.buckets(readings, gap, spacing)


@pytest.mark.parametrize("seed", range(6))
def test_any_order_of_chunks_and_corrections_leaves_the_buckets_of_a_full_integration(api, conn, seed):
    import random

    rng = random.Random(seed)
    t, points = 0.0, []
    for _ in range(rng.randint(30, 120)):
        t += rng.choice([0.5, 1, 3, 7, 15, 22, 60, 130])  # minutes; 130 is over the maximum gap
        points.append([at(t), round(rng.uniform(0, 9), 3)])
    units = rng.choice(["kW", "kWh"])
    chunks, i = [], 0
    while i < len(points):
        n = rng.randint(1, 25)
        chunks.append(points[i:i + n])
        i += n
    rng.shuffle(chunks)
    for chunk in chunks:
        post(api, 30, units, chunk)
        if rng.random() < 0.3:  # a correction of some earlier reading, and a re-post of a chunk
            fixed = rng.choice(chunk)
            fixed[1] = round(rng.uniform(0, 9), 3)
            post(api, 30, units, [fixed])
            post(api, 30, units, rng.choice(chunks))
    expected = full_integration(conn, 30)
    got = conn.run("SELECT CAST(extract(epoch FROM bucket_start) * 1000000 AS bigint), kwh, covered_us, "
                   "estimated_us, arrival_us FROM energy_buckets WHERE device_id = 30 ORDER BY 1")
    assert [row[0] for row in got] == sorted(expected)
    for start, kwh, covered, estimated, arrival in got:
        assert (covered, estimated, arrival) == (expected[start].covered, expected[start].estimated, 0)
        assert kwh == pytest.approx(expected[start].kwh, rel=1e-9, abs=1e-12)
    day_total = conn.run("SELECT sum(kwh), sum(covered_us) FROM energy_days WHERE device_id = 30")[0]
    assert day_total[0] == pytest.approx(sum(b.kwh for b in expected.values()))
    assert day_total[1] == sum(b.covered for b in expected.values())


def test_the_energy_routes_run_as_the_energy_role(app, functions, database, conn, login_as):
    _, ingest = tokens.create(conn, "ingest", "meter")
    _, read = tokens.create(conn, "read", "board")
    login_as("energy", "authorizer")  # the gateway runs the authorizer in this process too
    gateway = Gateway(app, functions, workers=1)
    try:
        def call(method, target, body=b"", token=read):
            reply = gateway.handle(method, target, [("Authorization", f"Bearer {token}"),
                                                    ("Content-Type", "application/json")], body)
            return reply.status, json.loads(reply.body)

        points = [{"datetime": at(m), "value": 1.0} for m in range(0, 60, 5)]
        body = json.dumps({"device_id": 5, "units": "kW", "data": points}).encode()
        assert call("POST", "/energy", body, ingest)[0] == 200
        fix = json.dumps({"device_id": 5, "units": "kW", "data": [{"datetime": at(20), "value": 0}]}).encode()
        assert call("POST", "/energy", fix, ingest)[1]["replaced"] == 1
        assert call("GET", f"/energy?device_id=5&start={at(0)}&end={at(60)}")[0] == 200
        assert call("GET", f"/energy/fleet?start={at(0)}&end={at(60)}")[0] == 200
        assert call("GET", "/energy/top")[1]["data"][0]["device_id"] == 5
        assert call("GET", f"/energy/forecast?device_id=5&start={at(60)}&end={at(120)}")[0] == 409
    finally:
        gateway.close()
