"""Admin actions against the local stack's database (or DATABASE_URL): the CLI twin of the admin Lambda.

    python -m local.admin create_token --scope ingest --name sensor-1
    python -m local.admin revoke_token --name sensor-1
    python -m local.admin list_tokens
    python -m local.admin migrate
    python -m local.admin quarantine --id 17 --id 18 --reason "Active=1e160W from a broken sensor"
    python -m local.admin quarantine --field active_power_w --min -100000 --max 100000 [--dry-run] [--max-events N]
    python -m local.admin list_quarantine
    python -m local.admin release_quarantine --id 17
    python -m local.admin register_webhook --url http://127.0.0.1:8099/alerts [--device-id 9]   (prints its secret)
    python -m local.admin list_webhooks
    python -m local.admin remove_webhook --webhook-id 1

Quarantine filters take one field (an event's number, or any element of peaks/fft_re/fft_img) and pick the events
whose value is below --min, above --max, NaN or missing. Quarantined events are left out of every later
clustering run; the report API still serves them.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "layers" / "core"))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m local.admin", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("action", choices=["create_token", "revoke_token", "list_tokens", "migrate", "quarantine",
                                           "list_quarantine", "release_quarantine", "register_webhook",
                                           "list_webhooks", "remove_webhook"])
    parser.add_argument("--scope", choices=["ingest", "read"])
    parser.add_argument("--name")
    parser.add_argument("--id", type=int, action="append", dest="ids", help="an event id (repeat for more)")
    parser.add_argument("--field", help="quarantine by filter: the field to test")
    parser.add_argument("--min", type=float, help="quarantine by filter: values below this are outside")
    parser.add_argument("--max", type=float, help="quarantine by filter: values above this are outside")
    parser.add_argument("--reason")
    parser.add_argument("--dry-run", action="store_true", help="quarantine by filter: only list what matches")
    parser.add_argument("--max-events", type=int, help="quarantine by filter: refuse above this many (1000)")
    parser.add_argument("--url", help="register_webhook: where alert notifications are POSTed")
    parser.add_argument("--device-id", type=int, help="register_webhook: only this device's alerts (default: all)")
    parser.add_argument("--webhook-id", type=int, help="remove_webhook: which one")
    parser.add_argument("--data-dir", type=Path, default=ROOT / ".local")
    args = parser.parse_args(argv)
    if not os.environ.get("DATABASE_URL") and not os.environ.get("PGHOST"):
        state = args.data_dir / "stack.json"
        if not state.exists():
            print("error: no DATABASE_URL and no running local stack (start it with `make run`)", file=sys.stderr)
            return 1
        info = json.loads(state.read_text())
        os.environ["DATABASE_URL"] = info["database_url"]
        os.environ.setdefault("WEBHOOK_ALLOW_HTTP", "true")  # the local stack delivers to receivers on this machine
        # Revoking a token closes its live connections through the stack's push queue and WebSocket API.
        if info.get("queues", {}).get("PushQueue"):
            for name, value in (("AWS_ENDPOINT_URL_SQS", info["sqs_endpoint"]), ("PUSH_QUEUE_URL", info["queues"]["PushQueue"]),
                                ("LIVE_MANAGEMENT_ENDPOINT", info["url"]), ("AWS_ACCESS_KEY_ID", "local"),
                                ("AWS_SECRET_ACCESS_KEY", "local"), ("AWS_DEFAULT_REGION", "us-east-1")):
                os.environ.setdefault(name, value)

    from wattprint import admin
    from wattprint.alerts import service as alerts
    from wattprint.clustering import service as clustering
    from wattprint.live import service as live
    from wattprint.errors import ServiceError

    request = {"action": args.action, **{k: v for k, v in (("scope", args.scope), ("name", args.name),
                                                            ("ids", args.ids), ("reason", args.reason),
                                                            ("max_events", args.max_events), ("url", args.url),
                                                            ("device_id", args.device_id),
                                                            ("webhook_id", args.webhook_id)) if v is not None}}
    if args.field is not None:
        request["filter"] = {"field": args.field, **{k: v for k, v in (("min", args.min), ("max", args.max))
                                                       if v is not None}}
        request["dry_run"] = args.dry_run
    try:
        more = {**clustering.OPERATOR_ACTIONS, **alerts.OPERATOR_ACTIONS}
        print(json.dumps(admin.handle(request, connections=live, more=more), indent=2))
    except ServiceError as error:
        print(f"error: {error.message}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
