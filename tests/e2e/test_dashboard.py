"""The dashboard in a real headless Chromium against the local stack: it changes as events arrive, with no reload.

Needs Debian's chromium (/usr/bin/chromium, or WATTPRINT_CHROMIUM). Without it the test is skipped, unless
WATTPRINT_REQUIRE_BROWSER=1 (CI sets it after installing chromium), where a missing browser is a failure.
"""

from __future__ import annotations

import os
import shutil
import urllib.request
from pathlib import Path

import pytest
from playwright.sync_api import sync_playwright

ROOT = Path(__file__).resolve().parents[2]
ARTIFACTS = ROOT / "tests" / "artifacts"
CHROMIUM = os.environ.get("WATTPRINT_CHROMIUM") or shutil.which("chromium") or shutil.which("chromium-browser")
# As the machine's notes advise: without these, Chromium keeps trying to reach Google's hosts on a closed network.
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync"]
TIMEOUT_MS = 30_000

if not CHROMIUM:
    if os.environ.get("WATTPRINT_REQUIRE_BROWSER") == "1":
        raise RuntimeError("WATTPRINT_REQUIRE_BROWSER=1 but no chromium was found (apt-get install chromium)")
    pytest.skip("no chromium on this machine (CI installs it; or set WATTPRINT_CHROMIUM)", allow_module_level=True)


def new_page(p, errors: list[str], height: int = 1400):
    """A headless Chromium page whose errors go to `errors`: (browser, page)."""
    browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
    page = browser.new_page(viewport={"width": 1280, "height": height})
    page.on("pageerror", lambda error: errors.append(str(error)))
    page.set_default_timeout(TIMEOUT_MS)
    return browser, page


def sign_in(page, stack) -> None:
    """The dashboard opened, the read token typed and Enter pressed, and the page live."""
    page.goto(stack.info["url"] + "/dashboard")
    page.get_by_label("Read token").fill(stack.info["tokens"]["read"])
    page.get_by_label("Read token").press("Enter")
    # Live, or an error the page shows (then the test says which, instead of only timing out).
    page.wait_for_function("['live', 'error'].includes(document.getElementById('connection').dataset.state)")
    assert page.get_attribute("#connection", "data-state") == "live", page.text_content("#connection")


@pytest.fixture
def stack(local_stack):
    return local_stack


def sensor_lines(n: int) -> list[str]:
    real = ROOT.parent / "shared" / "data" / "sensor-events-1000.txt"
    if real.exists():
        lines = real.read_text().splitlines()
    else:
        from local import synth

        lines = synth.generate(1000, seed=7)
    return lines[:n]


def post(stack, lines: list[str]) -> None:
    request = urllib.request.Request(stack.info["url"] + "/events", method="POST", data="\n".join(lines).encode(),
                                     headers={"Authorization": f"Bearer {stack.info['tokens']['ingest']}",
                                              "Content-Type": "text/plain"})
    with urllib.request.urlopen(request, timeout=30) as response:
        assert response.status == 201


def test_dashboard_updates_live_and_shows_the_first_clustering(stack):
    lines = sensor_lines(1000)
    with sync_playwright() as p:
        errors: list[str] = []
        browser, page = new_page(p, errors)
        page.goto(stack.info["url"] + "/dashboard")

        # A wrong-scope token is refused with a message, and the page stays on the form.
        page.get_by_label("Read token").fill(stack.info["tokens"]["ingest"])
        page.get_by_role("button", name="Connect").click()
        page.wait_for_function("document.getElementById('login-error').textContent.includes('scope read')")

        # Keyboard only: type the token, press Enter.
        page.get_by_label("Read token").fill(stack.info["tokens"]["read"])
        page.get_by_label("Read token").press("Enter")
        page.wait_for_function("document.getElementById('connection').dataset.state === 'live'")
        assert page.text_content("#count-events") == "0"
        assert page.evaluate("sessionStorage.getItem('wattprint.readToken')") == stack.info["tokens"]["read"]
        assert stack.info["tokens"]["read"] not in page.content()  # never in the HTML
        page.evaluate("window.__sameDocument = true")  # gone if the page reloads

        post(stack, lines[:5])
        page.wait_for_function("document.getElementById('count-events').textContent === '5'")
        assert page.locator("#events tbody tr").count() == 5
        assert page.text_content("#count-next") == "995"

        for start in range(5, 1000, 199):
            post(stack, lines[start:start + 199])
        page.wait_for_function("document.getElementById('count-events').textContent === '1,000'")
        # The run is clustered by the local SQS trigger; the page switches to it and says so.
        page.wait_for_function("document.querySelectorAll('#clusters tbody tr').length > 1", timeout=60_000)
        page.wait_for_function("document.getElementById('announce').textContent.includes('completed')")
        page.wait_for_function("document.getElementById('scatter-desc').textContent.startsWith('1,000 of 1,000')")
        assert page.evaluate("window.__sameDocument") is True
        assert page.locator("#scatter path[data-label='-1']").count() == 1  # unclustered: drawn apart
        assert page.locator("#runs tbody tr").count() == 1
        assert "done" in page.text_content("#latest-run")
        page.wait_for_function("[...document.querySelectorAll('#events tbody tr td:last-child')]"
                               ".every(td => td.textContent !== '—')")  # the recent events got their labels

        # Another pair of features, picked with the keyboard from the menu.
        page.get_by_label("X axis").select_option("current_a")
        page.wait_for_function("document.getElementById('scatter-desc').textContent.includes('against Current (A)')")

        # The connection drops (closed by the server); events arrive meanwhile; the page reconnects by itself and
        # catches up from the API.
        from wattprint.live import live

        for connection_id in live.connections():
            urllib.request.urlopen(urllib.request.Request(f"{stack.info['url']}/@connections/{connection_id}",
                                                          method="DELETE"), timeout=10).read()
        page.wait_for_function("document.getElementById('connection').dataset.state === 'retrying'")
        post(stack, lines[:7])
        page.wait_for_function("document.getElementById('connection').dataset.state === 'live'")
        page.wait_for_function("document.getElementById('count-events').textContent === '1,007'")
        assert page.evaluate("window.__sameDocument") is True

        ARTIFACTS.mkdir(exist_ok=True)
        page.screenshot(path=str(ARTIFACTS / "dashboard.png"), full_page=True)
        browser.close()
    assert errors == []
