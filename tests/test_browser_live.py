"""In Chromium: the requesting officer's open page learns of the accept from the push, not from its poll."""
import json
import time
from pathlib import Path

import pytest
from playwright.sync_api import expect

from fieldapp.identity.accounts import create_user, user_by_username
from fieldapp.store.db import connect
from fieldapp.duty.positions import record_position
from fieldapp.duty.status import go_on_duty
from fieldapp.requests.domain import move
from fieldapp.requests.escalation import create_request
from fieldapp.identity.sessions import User
from tests.helpers import PASSWORD, SCENE, deliver_push, offset, sign_in, wait_for_offline_copy, wait_until

pytestmark = pytest.mark.browser
PHONE = {"width": 360, "height": 640}
STUB = (Path(__file__).parent / "push_stub.js").read_text()
# The page's own polls are stopped: only a refresh the service worker asks for may reach the server.
NO_POLLING = """() => {
  window.__polls = 0;
  document.body.addEventListener("htmx:beforeRequest", (e) => {
    const cause = e.detail.requestConfig && e.detail.requestConfig.triggeringEvent;
    if (!cause || cause.type !== "refresh") { window.__polls += 1; e.preventDefault(); }
  });
}"""


def officer_and_specialist_on_duty(live_server, db):
    """Ofc. Kim Lee, who will ask, and a CIT officer on duty 1.4 km from the scene."""
    with live_server.app_context():
        create_user(db, "ofc.lee", PASSWORD, "officer", "Ofc. Kim Lee")
        create_user(db, "cit.reyes", PASSWORD, "cit", "Ofc. Jordan Reyes (CIT)")
        specialist = user_by_username(db, "cit.reyes")
        go_on_duty(db, specialist["id"])
        record_position(db, specialist["id"], *offset(1400), 10.0, "device")


def test_the_requesters_page_shows_the_accept_from_the_push_alone(browser, live_server, push_service):
    base = live_server.base_url
    db = connect(live_server.config["DATABASE"])
    officer_and_specialist_on_duty(live_server, db)

    officer = browser.new_context(viewport=PHONE, geolocation={"latitude": SCENE[0], "longitude": SCENE[1]},
                                  permissions=["geolocation", "notifications"])
    officer.add_init_script(STUB.replace("__PUSH_ORIGIN__", push_service.origin))
    page = officer.new_page()
    sign_in(page, base, "ofc.lee")
    wait_for_offline_copy(page, "/")
    wait_until(page, "() => navigator.serviceWorker.controller !== null")
    with live_server.app_context():  # the button itself is test_browser_request.py's
        request_id, _ = create_request(db, user_by_username(db, "ofc.lee")["id"], lat=SCENE[0], lon=SCENE[1],
                                       accuracy=10.0, location_text="", note="")
    page.goto(f"{base}/requests/{request_id}")

    # The requester turns on notifications for this phone.
    page.get_by_role("button", name="Notify me on this phone").click()
    expect(page.locator("[data-alerts-status]")).to_have_text("Alerts are on for this device.")
    saved = json.loads(page.evaluate("localStorage.getItem('__testPush')"))
    push_service.register_browser_key(saved["endpoint"], saved["jwk"], saved["keys"]["auth"])

    page.evaluate(NO_POLLING)
    # A poll came due and was stopped (within its 4 s), and the page still says waiting.
    wait_until(page, "() => window.__polls >= 1", timeout_s=10)
    expect(page.locator("#live")).to_contain_text("Waiting for a CIT officer")

    with live_server.app_context():
        move(db, request_id, "accept", User(user_by_username(db, "cit.reyes")))
    [news] = [d for d in push_service.wait_for(1, timeout=5) if d.endpoint == saved["endpoint"]]
    assert news.payload["title"] == "CIT officer en route · 1.4 km"
    # Within a second of the push reaching the phone (the whole accept-to-page time,
    # push service included, is bench/live_push.py's: docs/PERFORMANCE.md).
    handed_over = time.monotonic()
    deliver_push(officer, page, base, news.payload)
    expect(page.locator("#live")).to_contain_text("Ofc. Jordan Reyes (CIT)", timeout=1000)
    assert time.monotonic() - handed_over < 1.0
    # The notification replaces any earlier one about this request's state, never an alert.
    shown = page.evaluate("() => navigator.serviceWorker.ready.then(r => r.getNotifications()).then(n => n.map(x => [x.title, x.tag]))")
    assert shown == [["CIT officer en route · 1.4 km", f"cit-status-{request_id}"]]
    officer.close()


def test_an_open_board_redraws_from_a_board_push_alone_and_shows_one_quiet_notification(browser, live_server, push_service):
    base = live_server.base_url
    db = connect(live_server.config["DATABASE"])
    officer_and_specialist_on_duty(live_server, db)
    with live_server.app_context():
        create_user(db, "sgt.diaz", PASSWORD, "supervisor", "Sgt. Robin Diaz")

    desk = browser.new_context(permissions=["notifications"])
    desk.add_init_script(STUB.replace("__PUSH_ORIGIN__", push_service.origin))
    page = desk.new_page()
    sign_in(page, base, "sgt.diaz")
    wait_for_offline_copy(page, "/")
    wait_until(page, "() => navigator.serviceWorker.controller !== null")
    page.goto(f"{base}/board")
    expect(page.locator("#board-live")).to_contain_text("No open requests.")

    # The supervisor asks for board alerts on this device.
    page.get_by_role("button", name="Board alerts on this device").click()
    expect(page.locator("[data-alerts-status]")).to_have_text("Alerts are on for this device.")
    saved = json.loads(page.evaluate("localStorage.getItem('__testPush')"))
    push_service.register_browser_key(saved["endpoint"], saved["jwk"], saved["keys"]["auth"])

    page.evaluate(NO_POLLING)
    page.evaluate("document.body.dispatchEvent(new Event('request-changed'))")  # a poll's own cause: stopped
    assert page.evaluate("window.__polls") == 1

    with live_server.app_context():
        request_id, _ = create_request(db, user_by_username(db, "ofc.lee")["id"], lat=SCENE[0], lon=SCENE[1],
                                       accuracy=10.0, location_text="", note="")
    # The specialist has no phone here, so the supervisors also hear that no one could be reached.
    [news] = [d for d in push_service.wait_for(2, timeout=5) if d.payload["kind"] == "board"]
    assert news.endpoint == saved["endpoint"]
    assert news.payload["kind"] == "board" and "request_id" not in news.payload
    handed_over = time.monotonic()
    deliver_push(desk, page, base, news.payload)
    expect(page.locator("#board-live")).to_contain_text(f"#{request_id} · Waiting for a CIT officer", timeout=1000)
    assert time.monotonic() - handed_over < 1.0

    # A second board push replaces the first notification, silently: never a storm on the desk.
    deliver_push(desk, page, base, news.payload)
    shown = "() => navigator.serviceWorker.ready.then(r => r.getNotifications()).then(n => n.map(x => [x.title, x.tag, x.silent]))"
    wait_until(page, f"() => ({shown})().then(n => n.length >= 1)")
    assert page.evaluate(shown) == [["CIT board updated", "fieldapp-board", True]]
    desk.close()
