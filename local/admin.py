"""Admin actions against the local stack's database (or DATABASE_URL): the CLI twin of the admin Lambda.

    python -m local.admin create_token --scope ingest --name sensor-1
    python -m local.admin revoke_token --name sensor-1
    python -m local.admin list_tokens
    python -m local.admin migrate
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
    parser.add_argument("action", choices=["create_token", "revoke_token", "list_tokens", "migrate"])
    parser.add_argument("--scope", choices=["ingest", "read"])
    parser.add_argument("--name")
    parser.add_argument("--data-dir", type=Path, default=ROOT / ".local")
    args = parser.parse_args(argv)
    if not os.environ.get("DATABASE_URL") and not os.environ.get("PGHOST"):
        state = args.data_dir / "stack.json"
        if not state.exists():
            print("error: no DATABASE_URL and no running local stack (start it with `make run`)", file=sys.stderr)
            return 1
        info = json.loads(state.read_text())
        os.environ["DATABASE_URL"] = info["database_url"]
        # Revoking a token closes its live connections through the stack's push queue and WebSocket API.
        if info.get("queues", {}).get("PushQueue"):
            for name, value in (("AWS_ENDPOINT_URL_SQS", info["sqs_endpoint"]), ("PUSH_QUEUE_URL", info["queues"]["PushQueue"]),
                                ("LIVE_MANAGEMENT_ENDPOINT", info["url"]), ("AWS_ACCESS_KEY_ID", "local"),
                                ("AWS_SECRET_ACCESS_KEY", "local"), ("AWS_DEFAULT_REGION", "us-east-1")):
                os.environ.setdefault(name, value)

    from wattprint import admin
    from wattprint.live import service as live
    from wattprint.errors import ServiceError

    request = {"action": args.action, **{k: v for k, v in (("scope", args.scope), ("name", args.name)) if v}}
    try:
        print(json.dumps(admin.handle(request, connections=live), indent=2))
    except ServiceError as error:
        print(f"error: {error.message}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
