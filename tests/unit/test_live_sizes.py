"""Live pushes stay under API Gateway's WebSocket message limit and SQS's message limit, however big the items."""

import json

from wattprint.live import live


def size(doc) -> int:
    return len(json.dumps(doc, separators=(",", ":")).encode())


def item(seq: int, fft: int = 9) -> dict:
    return {"id": seq + 100, "seq": seq, "active_power_w": 1.5 * seq, "fft_re": [123456.789] * fft,
            "fft_img": [-98765.4321] * fft, "label": None, "run_id": None}


def test_a_batch_that_fits_is_one_message_as_before():
    items = [item(s) for s in range(1, 6)]
    assert live.events_messages(5, 1, 5, items) == [
        {"type": "events", "total": 5, "first_seq": 1, "last_seq": 5, "items": items}]


def test_big_items_are_split_into_messages_under_the_limit_with_contiguous_ranges():
    items = [item(s, fft=700) for s in range(901, 1001)]  # ~ 17 KB each, ~1.7 MB in all
    assert size(items[0]) > 15_000
    out = live.events_messages(1000, 850, 1000, items)
    assert len(out) > 10
    assert all(size(m) <= live.MAX_MESSAGE_BYTES for m in out)
    assert [i for m in out for i in m["items"]] == items  # every item once, in order
    assert out[0]["first_seq"] == 850 and out[-1]["last_seq"] == 1000
    assert all(a["last_seq"] + 1 == b["first_seq"] for a, b in zip(out, out[1:]))
    assert all(m["first_seq"] <= m["items"][0]["seq"] and m["items"][-1]["seq"] <= m["last_seq"] for m in out)
    assert {m["total"] for m in out} == {1000}


def test_an_item_too_big_for_any_message_is_left_to_the_api_and_its_range_still_covered(caplog):
    items = [item(1), item(2, fft=20_000), item(3)]
    assert size(items[1]) > live.MAX_MESSAGE_BYTES
    out = live.events_messages(3, 1, 3, items)
    assert [i["seq"] for m in out for i in m["items"]] == [1, 3]
    assert (out[0]["first_seq"], out[-1]["last_seq"]) == (1, 3)
    assert all(size(m) <= live.MAX_MESSAGE_BYTES for m in out)
    assert "too large" in caplog.text


def test_the_limit_is_exact_at_the_boundary():
    items = [item(s) for s in range(1, 40)]
    smallest = max(size({"type": "events", "total": 39, "first_seq": 39, "last_seq": 39, "items": [i]}) for i in items)
    for limit in range(smallest, 3000, 37):
        out = live.events_messages(39, 1, 39, items, limit=limit)
        assert all(size(m) <= limit for m in out)
        assert [i for m in out for i in m["items"]] == items


def test_push_requests_fit_an_sqs_message_and_carry_everything_to_everyone():
    payloads = live.events_messages(1000, 850, 1000, [item(s, fft=700) for s in range(901, 1001)])
    payloads.append({"type": "run", "run": {"id": 1, "status": "done"}})
    ids = [f"conn-{i:011d}=" for i in range(1234)]
    requests = live.push_requests("https://api/v1", ids, payloads)
    assert all(size(r) <= live.MAX_REQUEST_BYTES for r in requests)
    delivered = {}
    for r in requests:
        for cid in r["connections"]:
            delivered.setdefault(cid, []).extend(r["messages"])
    assert set(delivered) == set(ids)
    assert all(got == payloads for got in delivered.values())  # in order, each once
    assert live.push_requests("https://api/v1", ids[:2], payloads[-1:]) == [
        {"endpoint": "https://api/v1", "connections": ids[:2], "messages": payloads[-1:]}]
