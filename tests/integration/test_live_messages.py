"""What a batch of live announcements becomes, read from a real PostgreSQL."""

from local import synth
from wattprint.ingest import parser, store
from wattprint.live import live


def stored(conn, n):
    events = [(raw, rec) for _, raw, rec in parser.parse_lines("\n".join(synth.generate(n, seed=5)))]
    conn.run("BEGIN")
    store.insert_events(conn, events, 10**12)
    conn.run("COMMIT")


def test_events_message_holds_the_batch_range_and_the_stored_total(database, conn):
    stored(conn, 10)
    (message,) = live.messages([{"kind": "events", "first_seq": 1, "last_seq": 3},
                                {"kind": "events", "first_seq": 4, "last_seq": 5}])
    assert (message["type"], message["total"], message["first_seq"], message["last_seq"]) == ("events", 10, 1, 5)
    assert [item["seq"] for item in message["items"]] == [1, 2, 3, 4, 5]  # not the newest overall (6..10)


def test_a_large_batch_sends_its_newest_events_and_keeps_the_true_first_seq(database, conn):
    stored(conn, 150)
    (message,) = live.messages([{"kind": "events", "first_seq": 1, "last_seq": 150}])
    assert message["first_seq"] == 1
    assert [item["seq"] for item in message["items"]] == list(range(51, 151))
