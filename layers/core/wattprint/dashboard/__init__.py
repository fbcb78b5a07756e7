"""The live dashboard's static files (index.html, app.js, alerts.js, appliances.js, style.css), served by the report function.

No build step and nothing fetched from a CDN: the files here are what the browser runs.
"""

from __future__ import annotations

from pathlib import Path

from .. import settings
from ..errors import AssetNotFound
from ..http import query_params
from ..query import INT32_MAX, INT32_MIN, parse_int

DIRECTORY = Path(__file__).parent
# The only files served, by name: nothing else in this folder (or outside it) can be asked for.
ASSETS = {"index.html": "text/html; charset=utf-8", "app.js": "application/javascript; charset=utf-8",
          "alerts.js": "application/javascript; charset=utf-8",
          "appliances.js": "application/javascript; charset=utf-8",
          "style.css": "text/css; charset=utf-8"}


def asset(name: str, query: dict | None = None) -> tuple[str, str]:
    """(content type, text) of one of the dashboard's files; 404 for any other name (400 for any parameter but the
    page's `device_id`, the device it shows with ClusterScope=device, an integer; the page reads it itself)."""
    page = query_params(query, ("device_id",) if name == "index.html" else ())
    if "device_id" in page:
        parse_int("device_id", page["device_id"], INT32_MIN, INT32_MAX)
    content_type = ASSETS.get(name)
    if content_type is None:
        raise AssetNotFound(f"the dashboard has no file {name!r}", asset=name)
    return content_type, (DIRECTORY / name).read_text(encoding="utf-8")


def config(query: dict | None = None) -> dict:
    """What the page cannot know by itself: where the live WebSocket API is (null: no live updates), and whether
    runs are per device (ClusterScope=device: the page then reads the device its address names)."""
    query_params(query, ())
    scope = settings.clustering_settings().scope
    return {"websocket_url": settings.live_settings().websocket_url,
            **({"cluster_scope": scope} if scope != "all" else {})}
