"""The dashboard's appliance states panel in headless Chromium against the local stack: models trained through
the API, then sensor events whose current follows a generated mains of known truth; the panel shows each
appliance's state as the states function decodes it, and changes it live when the truth changes."""

from __future__ import annotations

import json
import urllib.request
from urllib.parse import quote

from playwright.sync_api import sync_playwright

from local import nilm_synth
from tests.e2e.test_dashboard import ARTIFACTS, new_page, sign_in

SPECS = nilm_synth.reference()
DEVICE = 21


def request(stack, method, path, body: bytes, content_type: str, status: int = 200):
    req = urllib.request.Request(stack.info["url"] + path, data=body, method=method, headers={
        "Authorization": f"Bearer {stack.info['tokens']['ingest']}", "Content-Type": content_type})
    with urllib.request.urlopen(req, timeout=60) as response:
        assert response.status == status


def post_events(stack, records):
    for i in range(0, len(records), 50):  # a sensor's batches
        request(stack, "POST", "/events", json.dumps([r.to_json() for r in records[i:i + 50]]).encode(),
                "application/json", 201)


def shown(page) -> dict[str, str]:
    return page.evaluate("""() => Object.fromEntries([...document.querySelectorAll('#appliance-states li')]
        .map((li) => [li.dataset.appliance, li.textContent]))""")


def wait_for_states(page, expected: dict[str, str]) -> None:
    page.wait_for_function("""(expected) => {
        const rows = [...document.querySelectorAll('#appliance-states li')];
        return rows.length === Object.keys(expected).length
            && rows.every((li) => li.textContent.startsWith(`${li.dataset.appliance}: ${expected[li.dataset.appliance]} since `));
    }""", arg=expected, timeout=60_000)


def test_appliance_states_update_live(local_stack):
    for i, spec in enumerate(SPECS):
        names = "?states=OFF,ON" if len(spec.states) == 2 else ""
        request(local_stack, "PUT", f"/appliances/models/{quote(spec.name)}{names}",
                nilm_synth.training(spec, seed=60 + i).csv().encode(), "text/csv", 201)
    # Seed 65: at row 296 the screens are ON and the heater OFF; by row 596 the heater is ON too (both stable).
    mains = nilm_synth.generate(SPECS, 600, seed=65)
    records = nilm_synth.events(mains, device_id=DEVICE)
    truth = lambda row: {name: mains.truth[a][row] for a, name in enumerate(mains.names)}  # noqa: E731
    with sync_playwright() as p:
        errors: list[str] = []
        browser, page = new_page(p, errors)
        sign_in(page, local_stack)
        assert page.is_visible("#appliance-states-empty")

        post_events(local_stack, records[:300])
        first = truth(300 - 1 - 3)
        assert first == {"PC screen1": "ON", "PC screen2": "ON", "Temperature sensor": "OFF"}
        wait_for_states(page, first)
        assert page.locator("#appliance-states h3").all_text_contents() == [f"Device {DEVICE}"]
        before = shown(page)

        post_events(local_stack, records[300:])  # no reload: the live channel brings the change
        second = truth(600 - 1 - 3)
        assert second == {**first, "Temperature sensor": "ON"}
        wait_for_states(page, second)
        page.wait_for_function("document.getElementById('appliance-states-announce').textContent"
                               ".includes('Temperature sensor: ON')")
        after = shown(page)
        # The screens stayed ON, since the same moment; the heater's since is the new state's start.
        assert after["PC screen1"] == before["PC screen1"] and after["PC screen2"] == before["PC screen2"]
        assert after["Temperature sensor"] != before["Temperature sensor"]
        ARTIFACTS.mkdir(exist_ok=True)
        page.screenshot(path=str(ARTIFACTS / "dashboard-appliances.png"), full_page=True)
        browser.close()
    assert errors == []
