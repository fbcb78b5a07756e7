"""The dashboard's alerts panel in headless Chromium against the local stack: an unusual hour posted as energy
appears live as an alert, is announced, and can be acknowledged with the keyboard."""

from __future__ import annotations

from datetime import timedelta

from playwright.sync_api import sync_playwright

from local.usage_synth import household
from tests.devstack.test_alerts_stack import iso, post_energy
from tests.e2e.test_dashboard import ARTIFACTS, new_page, sign_in


def test_an_alert_arrives_live_and_is_acknowledged(local_stack):
    house = household(4, days=35, seed=3, spikes=0, stuck=0, dead=0)
    history = [{"datetime": iso(t), "value": wh / 1000} for t, wh in house.hours]
    for i in range(0, len(history), 1000):
        post_energy(local_stack, 4, history[i:i + 1000])
    with sync_playwright() as p:
        errors: list[str] = []
        browser, page = new_page(p, errors)
        sign_in(page, local_stack)
        assert page.is_visible("#alerts-empty")

        unusual = house.hours[-1][0] + timedelta(hours=1)
        post_energy(local_stack, 4, [{"datetime": iso(unusual), "value": 2.5},
                                     {"datetime": iso(unusual + timedelta(hours=1)), "value": 0.1}])
        page.wait_for_function("document.getElementById('alerts-announce').textContent.includes('unusual use: 2.5 kWh')",
                               timeout=60_000)
        page.wait_for_function("document.querySelectorAll('#alerts tbody tr[data-status=firing]').length === 1")
        button = page.get_by_role("button", name="Acknowledge the alert on device 4")
        button.focus()
        page.keyboard.press("Enter")
        page.wait_for_function("document.querySelector('#alerts tbody tr').textContent.includes('acknowledged')")
        ARTIFACTS.mkdir(exist_ok=True)
        page.screenshot(path=str(ARTIFACTS / "dashboard-alerts.png"), full_page=True)
        browser.close()
    assert errors == []
