"""Live updates' use cases: the announcements other capabilities make, and the work of the live, live_socket
and push functions.

Only announce and push (boto3 when something is sent, nothing else) are imported with this module: ingest and
clustering import it to announce, and the push function runs outside the VPC with no database driver. What
reads the database (wattprint.live.live, which reads through the report) is imported by the entries that need it.
"""

from __future__ import annotations

from .. import settings
from ..errors import Forbidden, TooManyConnections
from . import announce, push as pusher


def events_stored(first_seq: int, last_seq: int) -> bool:
    """After ingest's commit: events first_seq..last_seq were stored (best effort, never raises)."""
    return announce.events_stored(first_seq, last_seq)


def run_changed(run_id: int) -> bool:
    """A clustering run was claimed, finished or failed (best effort, never raises)."""
    return announce.run_changed(run_id)


def energy_changed(items: list[dict]) -> bool:
    """After energy's commit: these buckets (as GET /energy items, with device_id) changed (best effort)."""
    return announce.energy_changed(items)


def alert(payload: dict) -> bool:
    """An alert notification (wattprint.alerts) for the dashboards, pushed as it is (best effort, never raises)."""
    return announce.alert(payload)


def appliances_changed(items: list[dict]) -> bool:
    """After the states function's commit: these appliance states changed (best effort, never raises)."""
    return announce.appliances_changed(items)


def deliver(bodies: list[tuple[str, str]]) -> tuple[dict, list[tuple[str, str]]]:
    """The live function: a batch of (message id, body) from the live queue → push requests on the push queue.
    Returns the counts, and the (message id, reason) of each malformed announcement, which is dropped with the
    others delivered: retrying it cannot make it valid, and dashboards catch up from the API anyway."""
    from . import live

    announcements, dropped = [], []
    for message_id, body in bodies:
        try:
            announcements.append(announce.parse(body))
        except announce.InvalidAnnouncement as error:
            dropped.append((message_id, str(error)))
    return live.deliver(announcements), dropped


def connect(connection_id: str, authorizer: dict) -> None:
    """$connect (already authorised with a read token, whose context is `authorizer`): remember the connection, or
    refuse it (TooManyConnections) when the token holds its cap of open ones."""
    from . import live

    try:
        token_id = int(authorizer["token_id"])  # API Gateway may hand context values over as strings
    except (KeyError, TypeError, ValueError):
        # Fail closed: without the token's id its connections could be neither capped nor closed on revoke.
        raise Forbidden("the authorizer named no token") from None
    cap = settings.live_settings().connections_per_token
    if not live.connect(connection_id, token_id, authorizer.get("token_name"), cap):
        raise TooManyConnections(f"this token has {cap} live connections open already; close one", cap=cap)


def forget_token(conn, token_id: int) -> list[str]:
    """In the transaction that revokes or replaces a token: forget its connections (nothing more is pushed to
    them); their ids, for close_connections after the commit."""
    from . import live

    return live.forget_token(conn, token_id)


def close_connections(connection_ids: list[str]) -> bool:
    """Have the push function (outside the VPC) close these connections; False if it could not be asked."""
    from . import live

    return live.close(connection_ids)


def disconnect(connection_id: str) -> None:
    """$disconnect: forget the connection."""
    from . import live

    live.disconnect([connection_id])


def push(request: dict) -> list[str]:
    """The push function: post one push request's messages to its connections; the ones gone are announced."""
    return pusher.push(request)
