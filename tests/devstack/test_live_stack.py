"""Live updates through the local stack: the WebSocket API from template.yaml, its authorizer, the pushes."""

import json
import time
import urllib.request

import pytest

from local import websocket

@pytest.fixture
def stack(monkeypatch, request):
    monkeypatch.setenv("CLUSTER_THRESHOLD", "20")
    return request.getfixturevalue("local_stack")


def lines(n, seed=3):
    from local import synth

    return synth.generate(n, seed=seed)


def post(stack, body):
    request = urllib.request.Request(stack.info["url"] + "/events", data=body.encode(), method="POST", headers={
        "Authorization": f"Bearer {stack.info['tokens']['ingest']}", "Content-Type": "text/plain"})
    with urllib.request.urlopen(request, timeout=30) as response:
        return json.loads(response.read())


def wait_for(condition, seconds=10.0) -> bool:
    deadline = time.monotonic() + seconds
    while not condition():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.05)
    return True


def until(client, wanted, limit=50):
    """Messages until one satisfies `wanted` (each recv waits at most 10 s)."""
    for _ in range(limit):
        message = client.recv_json(timeout=10)
        if wanted(message):
            return message
    raise AssertionError("no such message")


def test_connect_needs_a_read_token(stack):
    url = stack.info["url"].replace("http://", "ws://") + "/"
    with pytest.raises(websocket.Refused) as missing:
        websocket.Client(url)
    with pytest.raises(websocket.Refused) as unknown:
        websocket.Client(url + "?token=wp_nobody")
    with pytest.raises(websocket.Refused) as wrong_scope:
        websocket.Client(url + "?token=" + stack.info["tokens"]["ingest"])
    assert (missing.value.status, unknown.value.status, wrong_scope.value.status) == (401, 401, 403)
    client = websocket.Client(url + "?token=" + stack.info["tokens"]["read"])
    from wattprint.live import live

    assert len(live.connections()) == 1
    client.close()


def test_events_and_runs_are_pushed_and_gone_connections_forgotten(stack):
    from wattprint.live import live

    config = json.loads(urllib.request.urlopen(stack.info["url"] + "/dashboard/config.json").read())
    client = websocket.Client(config["websocket_url"] + "?token=" + stack.info["tokens"]["read"])
    try:
        live.connect("ghost", 999, None, 5)  # a connection that closed without $disconnect
        post(stack, "\n".join(lines(5)))
        events = until(client, lambda m: m["type"] == "events")
        assert (events["total"], events["first_seq"], events["last_seq"]) == (5, 1, 5)
        assert [item["seq"] for item in events["items"]] == [1, 2, 3, 4, 5]
        assert set(events["items"][0]) >= {"id", "received_at", "active_power_w", "label", "run_id"}
        # The management API answered 410 for it: the live function forgets it (right after the push).
        assert wait_for(lambda: "ghost" not in live.connections())

        post(stack, "\n".join(lines(16, seed=4)))  # crosses 20: a run opens, is clustered, and is announced
        done = until(client, lambda m: m["type"] == "run" and m["run"]["status"] == "done")
        assert done["run"]["threshold"] == 20 and done["run"]["clusters"] >= 1
        runs = json.loads(urllib.request.urlopen(urllib.request.Request(
            stack.info["url"] + "/runs", headers={"Authorization": f"Bearer {stack.info['tokens']['read']}"})).read())
        assert done["run"] == runs["runs"][0]  # the same shape as GET /runs
    finally:
        client.close()
    assert wait_for(lambda: live.connections() == [])  # $disconnect ran


def ws_url(stack, token):
    return stack.info["url"].replace("http://", "ws://") + "/?token=" + token


def test_a_message_from_a_dashboard_invokes_nothing(stack):
    """The template has no $default route: the gateway answers Forbidden itself and the connection stays open."""
    from wattprint.live import live

    client = websocket.Client(ws_url(stack, stack.info["tokens"]["read"]))
    try:
        calls = []
        functions = stack.started[[kind for kind, _ in stack.started].index("gateway")][1].functions
        original = functions.invoke
        functions.invoke = lambda name, event: calls.append(name) or original(name, event)
        try:
            client.send_text('{"action": "anything"}')
            answer = client.recv_json(timeout=10)
        finally:
            functions.invoke = original
        assert answer["message"] == "Forbidden" and calls == []
        assert len(live.connections()) == 1
    finally:
        client.close()


@pytest.fixture
def capped(monkeypatch, request):
    monkeypatch.setenv("LIVE_CONNECTIONS_PER_TOKEN", "2")
    return request.getfixturevalue("local_stack")


def test_the_connection_past_a_tokens_cap_is_refused(capped):
    from wattprint import admin

    token = capped.info["tokens"]["read"]
    first, second = websocket.Client(ws_url(capped, token)), websocket.Client(ws_url(capped, token))
    try:
        with pytest.raises(websocket.Refused) as refused:
            websocket.Client(ws_url(capped, token))
        assert refused.value.status == 429
        assert json.loads(refused.value.body)["error"]["code"] == "too_many_connections"
        other = admin.handle({"action": "create_token", "scope": "read", "name": "wall"})["token"]
        websocket.Client(ws_url(capped, other)).close()  # another token has places of its own
    finally:
        first.close()
        second.close()


def test_revoking_a_token_closes_its_live_connections(stack):
    from wattprint import admin
    from wattprint.live import live, service

    kept = websocket.Client(ws_url(stack, stack.info["tokens"]["read"]))
    board = admin.handle({"action": "create_token", "scope": "read", "name": "board"})["token"]
    doomed = [websocket.Client(ws_url(stack, board)) for _ in range(2)]
    try:
        assert wait_for(lambda: len(live.connections()) == 3)
        # As the admin function and `python -m local.admin` do: the live capability is handed in.
        assert admin.handle({"action": "revoke_token", "name": "board"},
                            connections=service)["live_connections_closed"] == 2
        for client in doomed:
            with pytest.raises(websocket.Closed):
                for _ in range(50):
                    client.recv(timeout=10)  # whatever was pushed before, then the close
        assert wait_for(lambda: len(live.connections()) == 1)
        post(stack, "\n".join(lines(2)))
        assert until(kept, lambda m: m["type"] == "events")["last_seq"] == 2  # the other token's stays live
        with pytest.raises(websocket.Refused) as refused:
            websocket.Client(ws_url(stack, board))
        assert refused.value.status == 401
    finally:
        kept.close()
        for client in doomed:
            client.close()


def test_the_local_management_api_refuses_a_message_over_api_gateways_limit(stack):
    from wattprint import aws
    from wattprint.live import live

    client = websocket.Client(ws_url(stack, stack.info["tokens"]["read"]))
    try:
        assert wait_for(lambda: len(live.connections()) == 1)
        (connection_id,) = live.connections()
        api = aws.client("apigatewaymanagementapi", endpoint=stack.info["url"])
        with pytest.raises(api.exceptions.PayloadTooLargeException):
            api.post_to_connection(ConnectionId=connection_id, Data=b"x" * (128 * 1024 + 1))
        api.post_to_connection(ConnectionId=connection_id, Data=b'{"fits": true}')
        assert client.recv_json(timeout=10) == {"fits": True}
    finally:
        client.close()


def test_the_last_event_of_a_burst_reaches_the_page(stack):
    """Single-event POSTs as fast as one client goes: most announcements are skipped (one a second while a
    dashboard is connected, none before the stack's count has seen it), yet the page gets the last event."""
    from wattprint.live import announce

    post(stack, "\n".join(lines(3)))  # stored before anyone listens
    skipped = sum(announce.GATE.skipped.values())
    client = websocket.Client(ws_url(stack, stack.info["tokens"]["read"]))
    try:
        for line in lines(40, seed=8):
            post(stack, line)
        last = until(client, lambda m: m["type"] == "events" and m["last_seq"] == 43, limit=200)
        assert last["total"] == 43 and last["items"][-1]["seq"] == 43
        assert sum(announce.GATE.skipped.values()) > skipped  # some were skipped, and nothing was lost
    finally:
        client.close()
