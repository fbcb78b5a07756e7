"""AWS clients, made one way: cached while the Lambda stays warm, and failing within a request's time.

Every client here sits on a request path (ingest sends clustering runs and live announcements after its commit,
the live and push functions answer a queue). botocore's defaults (60 s to connect, 60 s to read, retries) can
outlast API Gateway's 29 s, and an ingest request that times out after its commit makes the sensor post its
events again; so a call gets 1 s to connect and 3 s to read, and `attempts` tries in all.
"""

from __future__ import annotations

import threading

from . import observability, settings

_lock = threading.Lock()
_clients: dict[tuple, object] = {}


def client(service: str, *, endpoint: str | None = None, region: str | None = None, attempts: int = 1):
    """One client per service, endpoint, region and attempts. The endpoint variables are part of the key: the
    local stack and the tests point services at servers that come and go."""
    import boto3  # only where something is sent: the runtime ships it, and importing it is slow (BENCHMARKS.md)
    from botocore.config import Config

    observability.trace_aws_calls()
    environment = settings.aws_settings()
    key = (service, endpoint, region, attempts, *environment.endpoint_key(service), environment.region)
    with _lock:
        if key not in _clients:
            _clients[key] = boto3.client(service, endpoint_url=endpoint, region_name=region, config=Config(
                connect_timeout=1, read_timeout=3, retries={"total_max_attempts": attempts, "mode": "standard"}))
        return _clients[key]


def errors() -> tuple[type[BaseException], ...]:
    """What a failed call raises (imported late, like boto3)."""
    from botocore.exceptions import BotoCoreError, ClientError

    return BotoCoreError, ClientError
