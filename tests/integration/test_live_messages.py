"""What a batch of live announcements becomes, read from a real PostgreSQL."""

import json

from local import synth
from wattprint import db
from wattprint.ingest import parser, store
from wattprint.live import live


def stored(conn, n):
    events = [(raw, rec) for _, raw, rec in parser.parse_lines("\n".join(synth.generate(n, seed=5)))]
    conn.run("BEGIN")
    store.insert_events(conn, events, 10**12)
    conn.run("COMMIT")


def test_events_message_holds_everything_since_the_first_announced_up_to_the_stored_total(database, conn):
    stored(conn, 10)
    # 6..10 were stored by requests whose announcements were skipped (wattprint.announce): they come along.
    (message,) = live.messages([{"kind": "events", "first_seq": 4, "last_seq": 4},
                                {"kind": "events", "first_seq": 3, "last_seq": 3}])
    assert (message["type"], message["total"], message["first_seq"], message["last_seq"]) == ("events", 10, 3, 10)
    assert [item["seq"] for item in message["items"]] == list(range(3, 11))


def test_a_tick_pushes_what_came_after_it_and_nothing_when_nothing_did(database, conn):
    stored(conn, 10)
    (message,) = live.messages([{"kind": "tick", "after_seq": 7}])
    assert (message["first_seq"], message["last_seq"]) == (8, 10)
    assert live.messages([{"kind": "tick", "after_seq": 10}]) == []


def test_a_large_batch_sends_its_newest_events_and_keeps_the_true_first_seq(database, conn):
    stored(conn, 150)
    (message,) = live.messages([{"kind": "events", "first_seq": 1, "last_seq": 150}])
    assert message["first_seq"] == 1
    assert [item["seq"] for item in message["items"]] == list(range(51, 151))


# ---------------------------------------------------------------------------------- connections per token

def open_for(conn, token_id):
    return conn.run("SELECT count(*) FROM live_connections WHERE token_id = :t", t=token_id)[0][0]


def test_a_token_holds_at_most_its_cap_of_connections(database, conn):
    assert [live.connect(f"c{i}", 7, "board", 3) for i in range(4)] == [True, True, True, False]
    assert open_for(conn, 7) == 3
    assert live.connect("other", 8, "wall", 3)  # another token's place is its own
    assert live.connect("c1", 7, "board", 3)  # the same connection again is not a new one
    live.disconnect(["c0"])
    assert live.connect("c4", 7, "board", 3)
    # A row older than API Gateway's two-hour connection limit lost its $disconnect: it holds no place.
    conn.run("UPDATE live_connections SET connected_at = now() - interval '2 hours 1 minute' WHERE connection_id = 'c1'")
    assert live.connect("c5", 7, "board", 3)
    assert not live.connect("c6", 7, "board", 3)


def test_concurrent_connects_never_exceed_the_cap(database, conn):
    import threading

    barrier, results = threading.Barrier(8), []

    def connect(i):
        barrier.wait()
        results.append(live.connect(f"race{i}", 9, "board", 3))

    threads = [threading.Thread(target=connect, args=(i,)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(results) == [False] * 5 + [True] * 3
    assert open_for(conn, 9) == 3


def test_the_live_role_keeps_connections_and_builds_pushes_and_does_nothing_else(database, conn, login_as, functions):
    import pytest

    stored(conn, 5)
    login_as("live")
    connect = {"requestContext": {"routeKey": "$connect", "connectionId": "abc",
                                  "authorizer": {"principalId": "token:4", "token_id": 4, "token_name": "board"}}}
    assert functions.invoke("LiveSocketFunction", connect) == {"statusCode": 200}
    assert live.connections() == ["abc"]
    (message,) = live.messages([{"kind": "events", "first_seq": 1, "last_seq": 5}])
    assert [item["seq"] for item in message["items"]] == [1, 2, 3, 4, 5]
    for statement in ("SELECT count(*) FROM api_tokens", "DELETE FROM events", "INSERT INTO events (seq) VALUES (0)",
                      "UPDATE clustering_runs SET status = 'done'", "UPDATE event_counter SET total = 0",
                      "DELETE FROM event_labels"):
        with pytest.raises(Exception, match="permission denied"):
            db.execute(statement)
    functions.invoke("LiveSocketFunction", {"requestContext": {"routeKey": "$disconnect", "connectionId": "abc"}})
    assert live.connections() == []


def test_connect_is_refused_over_the_cap_and_without_a_token_id(database, conn, functions, monkeypatch):
    monkeypatch.setenv("LIVE_CONNECTIONS_PER_TOKEN", "1")

    def connect(connection_id, authorizer):
        return functions.invoke("LiveSocketFunction", {"requestContext": {
            "routeKey": "$connect", "connectionId": connection_id, "authorizer": authorizer}})

    board = {"principalId": "token:4", "token_id": "4", "token_name": "board"}  # context values may be strings
    assert connect("a", board)["statusCode"] == 200
    refused = connect("b", board)
    assert refused["statusCode"] == 429
    assert json.loads(refused["body"])["error"]["code"] == "too_many_connections"
    assert connect("c", {"principalId": "token:4", "token_name": "board"})["statusCode"] == 403
    assert live.connections() == ["a"]
