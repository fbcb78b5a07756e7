"""The dashboard's energy view in a real headless Chromium against the local stack: the power over time, bars per
quarter hour with partial buckets marked, the fleet and the top consumers, and new buckets arriving over the live
channel (POST /energy's as buckets, the sensor feed's as re-reads of the shown device's series)."""

from __future__ import annotations

import json
import urllib.request

from playwright.sync_api import sync_playwright

from test_dashboard import ARTIFACTS, CHROMIUM, CHROMIUM_ARGS, TIMEOUT_MS, new_page, sign_in


def post_energy(stack, device: int, units: str, points: list[tuple[str, float]]) -> dict:
    body = json.dumps({"device_id": device, "units": units,
                       "data": [{"datetime": t, "value": v} for t, v in points]}).encode()
    request = urllib.request.Request(stack.info["url"] + "/energy", method="POST", data=body,
                                     headers={"Authorization": f"Bearer {stack.info['tokens']['ingest']}",
                                              "Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=30) as response:
        return json.loads(response.read())


def at(minutes: int) -> str:
    return f"2019-01-05T{minutes // 60:02d}:{minutes % 60:02d}:00Z"


def open_energy_view(p, stack, device: int, day: str, errors: list[str], before=None):
    """A page signed in and live, showing `device`'s energy view for one day; page errors go to `errors`;
    `before(page)` runs before it loads."""
    browser, page = new_page(p, errors, height=1800)
    if before:
        before(page)
    sign_in(page, stack)
    page.evaluate("window.__sameDocument = true")
    page.get_by_label("Device").fill(str(device))
    page.get_by_label("From (UTC)").fill(day)
    page.get_by_label("Days").select_option("1")
    page.get_by_role("button", name="Show").click()
    return browser, page


def test_the_energy_view_shows_buckets_partial_ones_and_live_updates(local_stack):
    stack = local_stack
    # Device 42: 2 kW from 00:07, every 5 minutes from 00:10 to 01:00: 00:00 is partial (8 of 15 minutes), and so
    # is 01:00 (the last reading's estimated end: 5 minutes). Device 7: 1 kWh over the first hour.
    post_energy(stack, 42, "kW", [(at(7), 2.0)] + [(at(m), 2.0) for m in range(10, 61, 5)])
    post_energy(stack, 7, "kWh", [(at(0), 1.0), (at(60), 0.0)])
    with sync_playwright() as p:
        errors: list[str] = []
        browser, page = open_energy_view(p, stack, 42, "2019-01-05", errors)
        page.wait_for_function("document.querySelectorAll('#energy-chart rect.bar').length === 5")
        partial = page.eval_on_selector_all("#energy-chart rect.bar.partial", "bars => bars.map(b => b.dataset.datetime)")
        assert partial == ["2019-01-05T00:00:00Z", "2019-01-05T01:00:00Z"]
        assert page.text_content("#fleet-total") == "2.93 kWh"  # 2 kW × 58 minutes (device 42) + 1 (device 7)
        top = page.eval_on_selector_all("#energy-top tbody tr", "rows => rows.map(r => r.innerText.split('\\t'))")
        assert [row[1] for row in top] == ["42", "7"]
        # Above the bars, the power the readings hold: 2 kW from 00:07 in 12 steps (the last one estimated).
        assert page.get_attribute("#power-chart path.power", "data-steps") == "12"
        assert page.get_attribute("#power-chart path.power", "data-last-end") == "2019-01-05T01:05:00Z"

        # New readings arrive while the page is open: their buckets come over the live channel, no reload; 01:00
        # is complete now (its reading's interval ends at 01:15).
        post_energy(stack, 42, "kW", [(at(m), 4.0) for m in range(75, 150, 5)])
        page.wait_for_function("document.querySelectorAll('#energy-chart rect.bar').length === 10")
        assert page.eval_on_selector_all("#energy-chart rect.bar.partial", "bars => bars.length") == 1
        # 2 kW × 58 minutes, then 01:00's interval completed (10 more minutes) and 4 kW × 75 minutes.
        page.wait_for_function("document.getElementById('energy-status').textContent.startsWith('Device 42: 7.267 kWh')")
        page.wait_for_function("document.getElementById('fleet-total').textContent !== '2.93 kWh'")
        page.wait_for_function("document.querySelector('#power-chart path.power').dataset.lastEnd === "
                               "'2019-01-05T02:30:00Z'")
        assert page.get_attribute("#power-chart path.power", "data-last-value") == "4"
        assert page.evaluate("window.__sameDocument") is True
        assert errors == []
        ARTIFACTS.mkdir(exist_ok=True)
        page.screenshot(path=str(ARTIFACTS / "dashboard-energy.png"), full_page=True)
        browser.close()


def test_a_change_announced_to_nobody_reaches_a_page_when_it_is_settled(local_stack):
    """Instances that counted no dashboard a moment ago announce nothing until they count again (up to
    wattprint.live.announce.COUNT_TTL): a change committed then reaches a new page only because the server tells it,
    once every instance sees it, that it is settled. Made certain here: every energy message is dropped on its way
    to the page, and `settled` is held back until the change is committed."""
    stack = local_stack
    post_energy(stack, 43, "kW", [(at(m), 1.0) for m in range(0, 60, 5)])
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        page = browser.new_page(viewport={"width": 1280, "height": 1800})
        page.set_default_timeout(TIMEOUT_MS)
        held: list = []

        def route(ws):
            server = ws.connect_to_server()

            def from_server(message):
                kind = json.loads(message).get("type")
                if kind == "settled":
                    held.append((ws, message))
                elif kind != "energy":
                    ws.send(message)

            server.on_message(from_server)

        page.route_web_socket("**/*", route)
        page.goto(stack.info["url"] + "/dashboard")
        page.get_by_label("Read token").fill(stack.info["tokens"]["read"])
        page.get_by_label("Read token").press("Enter")
        page.wait_for_function("document.getElementById('connection').dataset.state === 'live'")
        page.get_by_label("Device").fill("43")
        page.get_by_label("From (UTC)").fill("2019-01-05")
        page.get_by_label("Days").select_option("1")
        page.get_by_role("button", name="Show").click()
        page.wait_for_function("document.querySelectorAll('#energy-chart rect.bar').length === 4")
        post_energy(stack, 43, "kW", [(at(m), 1.0) for m in range(60, 120, 5)])
        page.wait_for_timeout(500)
        assert page.eval_on_selector_all("#energy-chart rect.bar", "bars => bars.length") == 4  # nothing told it
        for _ in range(100):
            if held:
                break
            page.wait_for_timeout(100)
        assert held, "the server never told the page it was settled"
        ws, message = held[0]
        ws.send(message)
        page.wait_for_function("document.querySelectorAll('#energy-chart rect.bar').length === 8")
        browser.close()


def sensor_line(device: int, minutes: int, watts: int) -> str:
    """One sensor event of `device` at 2019-01-07 plus `minutes` (its clock advancing), drawing `watts`."""
    import re

    from test_dashboard import sensor_lines

    line = sensor_lines(1)[0]
    line = re.sub(r"Device: ID=\d+", f"Device: ID={device}", line)
    line = re.sub(r"Active=\d+W", f"Active={watts}W", line)
    return re.sub(r"UTC Time: [^;]+", f"UTC Time: 2019-1-7 {minutes // 60:02d}:{minutes % 60:02d}:00", line)


def test_sensor_events_update_the_energy_view_of_their_device_to_the_last_of_a_burst(local_stack):
    """The feed function feeds the sensor events after ingest's commit, a batch of requests at a time, and announces
    each call's buckets in one `energy` message (issue 18: not one send per request): the page takes them and re-reads
    the power of the device it shows, so the last event of a burst shows without a reload."""
    from test_dashboard import post

    stack = local_stack
    post(stack, [sensor_line(77, 0, 2000), sensor_line(77, 5, 2000)])
    with sync_playwright() as p:
        errors: list[str] = []
        kinds: list[str] = []

        def watch(page):
            page.on("websocket", lambda ws: ws.on("framereceived", lambda frame: kinds.append(
                json.loads(frame).get("type"))))

        browser, page = open_energy_view(p, stack, 77, "2019-01-07", errors, before=watch)
        # 2 kW from 00:00, the 00:05 reading's interval estimated (5 minutes): one partial bar, two power steps.
        page.wait_for_function("document.querySelectorAll('#energy-chart rect.bar').length === 1")
        assert page.get_attribute("#power-chart path.power", "data-steps") == "2"
        # Once the page is settled every instance counts it, so the burst's events are announced.
        for _ in range(100):
            if "settled" in kinds:
                break
            page.wait_for_timeout(100)
        assert "settled" in kinds, "the server never told the page it was settled"

        # A burst, one request per event: 2 kW every 5 minutes to 01:55, then 6 kW at 02:00 (the burst's last).
        for minutes in range(10, 120, 5):
            post(stack, [sensor_line(77, minutes, 2000)])
        post(stack, [sensor_line(77, 120, 6000)])
        page.wait_for_function("document.querySelectorAll('#energy-chart rect.bar').length === 9")
        page.wait_for_function("document.querySelector('#power-chart path.power').dataset.lastValue === '6'")
        assert page.get_attribute("#power-chart path.power", "data-last-end") == "2019-01-07T02:05:00Z"
        assert page.get_attribute("#power-chart path.power", "data-steps") == "25"
        # 2 kW for two hours, then 6 kW over the last reading's estimated 5 minutes.
        page.wait_for_function("document.getElementById('energy-status').textContent.startsWith('Device 77: 4.5 kWh')")
        assert page.eval_on_selector_all("#energy-chart rect.bar.partial", "bars => bars.length") == 1
        assert page.evaluate("window.__sameDocument") is True
        # The buckets came over the live channel, in fewer messages than the burst's 24 requests.
        assert "events" in kinds and 0 < kinds.count("energy") < 24, kinds
        assert errors == []
        browser.close()
