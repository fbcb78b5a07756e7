"""The dashboard's files through the gateway: public, whitelisted, never carrying a token."""

import json
import re

import pytest

from local.apigw import Gateway
from wattprint import dashboard


@pytest.fixture
def gateway(app, functions, database):
    gw = Gateway(app, functions, workers=1)
    yield gw
    gw.close()


def get(gateway, path):
    reply = gateway.handle("GET", path, [], b"")  # no Authorization: these routes are public
    return reply.status, dict(reply.headers), reply.body.decode()


def test_page_script_and_style_are_served_without_a_token(gateway):
    status, headers, body = get(gateway, "/dashboard")
    assert (status, headers["Content-Type"]) == (200, "text/html; charset=utf-8")
    assert 'id="token"' in body and "dashboard/app.js" in body and "Bearer" not in body
    assert headers["Cache-Control"] == "no-cache"
    for name, media in (("app.js", "application/javascript"), ("style.css", "text/css")):
        status, headers, body = get(gateway, f"/dashboard/{name}")
        assert status == 200 and headers["Content-Type"].startswith(media)
        assert body == (dashboard.DIRECTORY / name).read_text()
    # Nothing fetched from elsewhere (the network may be closed): no absolute URL but the SVG namespace's name.
    shipped = "".join(get(gateway, path)[2] for path in ("/dashboard", "/dashboard/app.js", "/dashboard/style.css"))
    assert not re.search(r"https?://|//[a-z]", shipped.replace("http://www.w3.org/2000/svg", ""))


def test_config_names_the_websocket_api(gateway, monkeypatch):
    assert json.loads(get(gateway, "/dashboard/config.json")[2]) == {"websocket_url": None}
    monkeypatch.setenv("LIVE_WEBSOCKET_URL", "wss://abc.execute-api.eu-west-1.amazonaws.com/v1")
    assert json.loads(get(gateway, "/dashboard/config.json")[2]) == {
        "websocket_url": "wss://abc.execute-api.eu-west-1.amazonaws.com/v1"}


@pytest.mark.parametrize("name", ["__init__.py", "..%2F..%2Ftemplate.yaml", "index.htm", "APP.JS"])
def test_anything_else_is_404(gateway, name):
    status, _, body = get(gateway, f"/dashboard/{name}")
    assert status == 404 and json.loads(body)["error"]["code"] in ("asset_not_found", "not_found")


def test_query_parameters_are_refused(gateway):
    status, _, body = get(gateway, "/dashboard?token=x")
    assert status == 400 and json.loads(body)["error"]["code"] == "unknown_parameter"


def test_the_page_takes_the_device_it_shows(gateway):
    """ClusterScope=device: /dashboard?device_id=N shows device N (the page reads it); it is an integer, and only the
    page takes it."""
    assert get(gateway, "/dashboard?device_id=7")[0] == 200
    status, _, body = get(gateway, "/dashboard?device_id=seven")
    assert status == 400 and json.loads(body)["error"]["parameter"] == "device_id"
    assert get(gateway, "/dashboard/app.js?device_id=7")[0] == 400
