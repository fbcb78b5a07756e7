"""Announcements: what the live queue may carry, and that announcing never fails a request."""

import pytest

from wattprint.live import announce


def test_announcements_parse():
    assert announce.parse('{"kind": "events", "first_seq": 1, "last_seq": 5}') == {"kind": "events", "first_seq": 1,
                                                                               "last_seq": 5}
    assert announce.parse('{"kind": "run", "run_id": 3}') == {"kind": "run", "run_id": 3}


@pytest.mark.parametrize("body", ["", "[]", "{}", '{"kind": "run"}', '{"kind": "run", "run_id": "3"}',
                                  '{"kind": "run", "run_id": true}', '{"kind": "events", "first_seq": 1}',
                                  '{"kind": "other", "run_id": 1}'])
def test_anything_else_is_refused(body):
    with pytest.raises(announce.InvalidAnnouncement):
        announce.parse(body)


def test_announcing_is_off_without_a_queue(monkeypatch):
    monkeypatch.delenv("LIVE_QUEUE_URL", raising=False)
    assert announce.events_stored(1, 2) is False and announce.run_changed(1) is False


def test_a_failed_announcement_is_logged_not_raised(monkeypatch, caplog):
    from moto import mock_aws

    with mock_aws():
        monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
        monkeypatch.setenv("LIVE_QUEUE_URL", "https://sqs.us-east-1.amazonaws.com/123456789012/no-such-queue")
        assert announce.events_stored(1, 2) is False
    assert "not announced" in caplog.text
