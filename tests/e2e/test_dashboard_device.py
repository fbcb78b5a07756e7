"""The dashboard of a ClusterScope=device stack in a real headless Chromium: it shows the device its address names
(its runs, clusters, events and count), keeps only that device's live events, and says how to choose a device."""

from __future__ import annotations

import dataclasses

import pytest
from playwright.sync_api import sync_playwright

from local import synth
from test_dashboard import new_page, post


@pytest.fixture
def device_scope(monkeypatch):
    monkeypatch.setenv("CLUSTER_SCOPE", "device")
    monkeypatch.setenv("CLUSTER_THRESHOLD", "50")


def lines_of(device: int, n: int, seed: int) -> list[str]:
    return [synth.render(dataclasses.replace(r, device_id=device)) for r in synth.generate_records(n, seed=seed)]


def rows(page, table: str) -> int:
    return page.evaluate(f"document.getElementById('{table}').tBodies[0].rows.length")


def test_the_dashboard_shows_one_device(device_scope, local_stack):
    stack = local_stack
    post(stack, lines_of(1, 60, seed=1))  # device 1: its run at 50
    post(stack, lines_of(2, 120, seed=2))  # device 2: runs at 50 and 100
    with sync_playwright() as p:
        errors: list[str] = []
        browser, page = new_page(p, errors)

        page.goto(stack.info["url"] + "/dashboard")  # no device: a message, not errors
        page.wait_for_function("document.getElementById('login-error').textContent.includes('?device_id=')")

        page.goto(stack.info["url"] + "/dashboard?device_id=1")
        page.get_by_label("Read token").fill(stack.info["tokens"]["read"])
        page.get_by_label("Read token").press("Enter")
        page.wait_for_function("document.getElementById('connection').dataset.state === 'live'")
        assert page.text_content("#clusters-title").startswith("Device 1: ")
        page.wait_for_function("document.getElementById('count-events').textContent === '60'")
        page.wait_for_function("document.getElementById('runs').tBodies[0].rows.length === 1")
        assert "50" in page.text_content("#runs tbody tr")
        devices = page.evaluate("[...document.querySelectorAll('#events tbody tr')].map(r => r.cells[1].textContent)")
        assert devices and set(devices) == {"1"}

        # Live: device 2's events and runs are not this page's; device 1's are.
        post(stack, lines_of(2, 40, seed=3))  # device 2's run at 150
        post(stack, lines_of(1, 5, seed=4))
        page.wait_for_function("document.getElementById('count-events').textContent === '65'")
        devices = page.evaluate("[...document.querySelectorAll('#events tbody tr')].map(r => r.cells[1].textContent)")
        assert set(devices) == {"1"} and rows(page, "runs") == 1
        assert not errors, errors
        browser.close()
