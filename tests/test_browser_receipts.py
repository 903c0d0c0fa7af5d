"""In Chromium: the phone says the alert arrived with every page closed, the board shows it,
and an accept on another specialist's phone replaces the alert on the first."""
import json
import re
import time
from pathlib import Path

import pytest
from playwright.sync_api import expect

from fieldapp.identity.accounts import create_user
from fieldapp.store.db import connect, one
from fieldapp.requests.escalation import create_request
from tests.helpers import PASSWORD, SCENE, offset, sign_in

pytestmark = pytest.mark.browser
PHONE = {"width": 360, "height": 640}
STUB = (Path(__file__).parent / "push_stub.js").read_text()
NOTIFICATIONS = "() => self.registration.getNotifications().then(n => n.map(x => ({title: x.title, tag: x.tag})))"


def phone_with_alerts_on(browser, live_server, push_service, username, position):
    """A specialist's phone, on duty with alerts on: (context, page, endpoint)."""
    context = browser.new_context(viewport=PHONE, geolocation={"latitude": position[0], "longitude": position[1]},
                                  permissions=["geolocation", "notifications"])
    context.add_init_script(STUB.replace("__PUSH_ORIGIN__", push_service.origin))
    page = context.new_page()
    sign_in(page, live_server.base_url, username)
    page.goto(live_server.base_url + "/duty")
    page.get_by_role("button", name="Go on duty").click()
    expect(page.locator("[data-position-status]")).to_contain_text("Position sent", timeout=10_000)
    page.get_by_role("button", name="Enable alerts").click()
    expect(page.locator("[data-alerts-status]")).to_have_text("Alerts are on for this device.")
    saved = json.loads(page.evaluate("localStorage.getItem('__testPush')"))
    push_service.register_browser_key(saved["endpoint"], saved["jwk"], saved["keys"]["auth"])
    return context, page, saved["endpoint"]


def registration_of(context, page, base):
    """(CDP session, the app's service-worker registration id) for this phone."""
    cdp = context.new_cdp_session(page)
    registrations = []
    cdp.on("ServiceWorker.workerRegistrationUpdated", lambda e: registrations.extend(e["registrations"]))
    cdp.send("ServiceWorker.enable")
    for _ in range(150):  # CDP reports the registration as an event, soon after enable
        ours = sorted({r["registrationId"] for r in registrations if r["scopeURL"] == base + "/" and not r["isDeleted"]})
        if ours:
            return cdp, ours[0]
        page.wait_for_timeout(100)
    raise AssertionError("no service worker registration")


def delivered_at(db, endpoint, kind="alert"):
    row = one(db, "SELECT r.delivered_at FROM alert_receipts r JOIN push_subscriptions s ON s.id = r.subscription_id"
                  " WHERE s.endpoint = ? AND r.kind = ?", [endpoint, kind])
    return row and row["delivered_at"]


def test_the_phone_confirms_with_no_page_open_and_an_accept_elsewhere_replaces_its_alert(browser, live_server, push_service):
    base = live_server.base_url
    db = connect(live_server.config["DATABASE"])
    with live_server.app_context():
        officer = create_user(db, "ofc.lee", PASSWORD, "officer", "Ofc. Kim Lee")
        create_user(db, "cit.reyes", PASSWORD, "cit", "Ofc. Jordan Reyes (CIT)")
        create_user(db, "cit.ortiz", PASSWORD, "cit", "Ofc. Sam Ortiz (CIT)")
        create_user(db, "sgt.diaz", PASSWORD, "supervisor", "Sgt. Robin Diaz")
    reyes, reyes_page, reyes_endpoint = phone_with_alerts_on(browser, live_server, push_service, "cit.reyes", offset(800))
    ortiz, ortiz_page, _ = phone_with_alerts_on(browser, live_server, push_service, "cit.ortiz", offset(1500))
    cdp, registration_id = registration_of(reyes, reyes_page, base)
    # Every page of the app on Reyes's phone is closed: only the service worker is left.
    reyes_page.goto("about:blank")
    [worker] = [w for w in reyes.service_workers if w.url.endswith("/sw.js")]

    with live_server.app_context():
        request_id, _ = create_request(db, officer, lat=SCENE[0], lon=SCENE[1])
    deliveries = push_service.wait_for(2)
    [to_reyes] = [d for d in deliveries if d.endpoint == reyes_endpoint]

    cdp.send("ServiceWorker.deliverPushMessage", {"origin": base, "registrationId": registration_id,
                                                   "data": json.dumps(to_reyes.payload)})
    deadline = time.monotonic() + 10
    while not delivered_at(db, reyes_endpoint) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert delivered_at(db, reyes_endpoint), "the receipt never arrived"

    sgt = browser.new_context(viewport={"width": 1024, "height": 768})
    board = sgt.new_page()
    sign_in(board, base, "sgt.diaz")
    board.goto(base + "/board")
    expect(board.locator("#board-live")).to_contain_text("alerted 2 · delivered 1 · seen 0")

    # Ortiz accepts on his phone; Reyes's alert is replaced, not left ringing.
    ortiz_page.goto(f"{base}/requests/{request_id}")
    ortiz_page.get_by_role("button", name="Accept").click()
    expect(ortiz_page.locator("#live")).to_contain_text("CIT officer en route")
    taken = [d for d in push_service.wait_for(3)[2:] if d.endpoint == reyes_endpoint]
    assert taken and taken[0].headers["topic"] == to_reyes.headers["topic"]
    cdp.send("ServiceWorker.deliverPushMessage", {"origin": base, "registrationId": registration_id,
                                                   "data": json.dumps(taken[0].payload)})
    tag = f"cit-request-{request_id}"
    deadline = time.monotonic() + 10
    while worker.evaluate(NOTIFICATIONS) != [{"title": "Taken by another CIT officer", "tag": tag}]:
        assert time.monotonic() < deadline, worker.evaluate(NOTIFICATIONS)
        time.sleep(0.1)
    for context in (reyes, ortiz, sgt):
        context.close()


def test_the_duty_page_checks_readiness_and_a_test_alert_comes_back(browser, live_server, push_service):
    base = live_server.base_url
    db = connect(live_server.config["DATABASE"])
    with live_server.app_context():
        create_user(db, "cit.reyes", PASSWORD, "cit", "Ofc. Jordan Reyes (CIT)")
    phone, page, endpoint = phone_with_alerts_on(browser, live_server, push_service, "cit.reyes", offset(800))
    page.reload()
    for check in ("permission", "worker", "subscribed"):
        expect(page.locator(f'[data-check="{check}"] strong')).to_have_text("yes")
    expect(page.locator('[data-check="home-screen"]')).to_be_hidden()  # not an iPhone
    expect(page.locator('[data-check="device-last"] strong')).to_have_text("never: send a test alert")
    cdp, registration_id = registration_of(phone, page, base)

    page.get_by_role("button", name="Send a test alert").click()
    expect(page.locator("[data-test-result]")).to_contain_text("waiting for this phone to confirm")
    [test] = push_service.wait_for(1)
    assert test.endpoint == endpoint and test.payload["kind"] == "test"
    cdp.send("ServiceWorker.deliverPushMessage", {"origin": base, "registrationId": registration_id,
                                                   "data": json.dumps(test.payload)})
    expect(page.locator("[data-test-result]")).to_contain_text(re.compile(r"Test alert received in \d+\.\d s"))
    assert delivered_at(db, endpoint, "test")
    page.reload()
    expect(page.locator('[data-check="device-last"] strong')).to_have_text("under 1 min ago")
    phone.close()
