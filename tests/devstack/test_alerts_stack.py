"""An alert end to end through the local stack: energy history posted, an unusual hour posted, the scorer fed by
the energy-changes queue, the alert pushed on the live WebSocket and delivered, signed, to a local webhook."""

import json
import threading
import time
import urllib.request
from datetime import datetime, timedelta, timezone
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from local import websocket
from local.usage_synth import household

UTC = timezone.utc


class Receiver(BaseHTTPRequestHandler):
    got: list = []

    def do_POST(self):  # noqa: N802
        type(self).got.append((dict(self.headers), self.rfile.read(int(self.headers["Content-Length"]))))
        self.send_response(204)
        self.end_headers()

    def log_message(self, *args):
        pass


def post_energy(stack, device, points):
    body = json.dumps({"device_id": device, "units": "kWh", "data": points}).encode()
    request = urllib.request.Request(stack.info["url"] + "/energy", data=body, method="POST", headers={
        "Authorization": f"Bearer {stack.info['tokens']['ingest']}", "Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=30) as response:
        assert response.status == 200


def iso(t):
    return t.strftime("%Y-%m-%dT%H:%M:%SZ")


def test_unusual_hour_reaches_the_dashboard_and_a_webhook(local_stack):
    from wattprint.alerts import service as alerts
    from wattprint.alerts import signing

    Receiver.got = []
    server = ThreadingHTTPServer(("127.0.0.1", 0), Receiver)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    hook = alerts.register_webhook(f"http://127.0.0.1:{server.server_address[1]}/alerts", None, allow_http=True)
    config = json.loads(urllib.request.urlopen(local_stack.info["url"] + "/dashboard/config.json").read())
    client = websocket.Client(config["websocket_url"] + "?token=" + local_stack.info["tokens"]["read"])
    try:
        house = household(9, days=35, seed=1, spikes=0, stuck=0, dead=0)
        history = [{"datetime": iso(t), "value": wh / 1000} for t, wh in house.hours]
        for i in range(0, len(history), 1000):
            post_energy(local_stack, 9, history[i:i + 1000])
        unusual = house.hours[-1][0] + timedelta(hours=1)  # 1.5 kWh in an hour that usually uses a fraction
        post_energy(local_stack, 9, [{"datetime": iso(unusual), "value": 1.5},
                                     {"datetime": iso(unusual + timedelta(hours=1)), "value": 0.1}])
        deadline = time.monotonic() + 60
        message = None
        while message is None and time.monotonic() < deadline:
            candidate = client.recv_json(timeout=30)
            if candidate["type"] == "alert" and candidate["alert"]["hour"] == iso(unusual):
                message = candidate
        assert message is not None and message["alert"]["kind"] == "fired"
        assert message["alert"]["text"].startswith("Device 9: unusual use: 1.5 kWh between")
        while not Receiver.got and time.monotonic() < deadline:
            time.sleep(0.1)
        headers, body = Receiver.got[0]
        assert json.loads(body)["alert_id"] == message["alert"]["alert_id"]
        assert signing.verify(hook["secret"], body, headers[signing.HEADER], int(datetime.now(UTC).timestamp()))
        reply = urllib.request.urlopen(urllib.request.Request(
            local_stack.info["url"] + "/alerts?device_id=9",
            headers={"Authorization": f"Bearer {local_stack.info['tokens']['read']}"}))
        assert [a["status"] for a in json.loads(reply.read())["items"]][:1] == ["firing"]
    finally:
        client.close()
        server.shutdown()
        server.server_close()
