"""Changed energy buckets over the live channel: the announcement is checked, and a batch becomes one message."""

import json

import pytest

from wattprint.live import announce, live

ITEM = {"device_id": 7, "datetime": "2019-01-05T00:00:00Z", "value": 0.5, "coverage": 1.0, "flags": []}


def test_an_energy_announcement_is_checked():
    doc = {"kind": "energy", "items": [ITEM], "truncated": False}
    assert announce.parse(json.dumps(doc)) == doc
    for bad in ({**doc, "truncated": "no"}, {**doc, "items": [{**ITEM, "value": "1"}]},
                {**doc, "items": [{**ITEM, "extra": 1}]}, {**doc, "items": [{**ITEM, "device_id": True}]},
                {"kind": "energy", "items": "x", "truncated": False}):
        with pytest.raises(announce.InvalidAnnouncement):
            announce.parse(json.dumps(bad))


def test_a_batch_of_energy_announcements_is_one_message_with_the_latest_value_per_bucket():
    later = {**ITEM, "value": 0.75}
    other = {**ITEM, "device_id": 8}
    out = live.messages([{"kind": "energy", "items": [ITEM, other], "truncated": False},
                         {"kind": "energy", "items": [later], "truncated": True}])
    assert out == [{"type": "energy", "items": [later, other], "truncated": True}]


def test_long_announcements_are_cut_and_say_so(monkeypatch):
    sent = []
    monkeypatch.setattr(announce, "announce", lambda message: sent.append(message) or True)
    # Energy buckets are announced only while a dashboard is connected (issue 18): this instance counts one.
    monkeypatch.setenv("LIVE_QUEUE_URL", "https://sqs.example/live")
    monkeypatch.setattr(announce, "GATE", announce.Gate(count=lambda: 1))
    items = [{**ITEM, "datetime": f"2019-01-05T00:{m:02d}:00Z"} for m in range(announce.MAX_ENERGY_ITEMS + 1)]
    assert announce.energy_changed(items)
    assert len(sent[0]["items"]) == announce.MAX_ENERGY_ITEMS and sent[0]["truncated"] is True
