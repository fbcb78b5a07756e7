"""What a batch of live announcements becomes, read from a real PostgreSQL."""

from local import synth
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
