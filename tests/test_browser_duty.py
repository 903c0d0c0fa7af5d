"""Alerts on a shared device, in Chromium: a push subscription never passes from one officer to the next."""
import json
from pathlib import Path

import pytest
from playwright.sync_api import expect

from fieldapp.identity.accounts import create_user
from fieldapp.store.db import connect
from fieldapp.duty.devices import save_subscription
from tests.helpers import PASSWORD, sign_in

pytestmark = pytest.mark.browser
STUB = (Path(__file__).parent / "push_stub.js").read_text()


def holders(db):
    return {r[0]: r[1] for r in db.execute(
        "SELECT s.endpoint, u.username FROM push_subscriptions s JOIN users u ON u.id = s.user_id").fetchall()}


def enable_alerts(page, base):
    page.goto(base + "/duty")
    page.get_by_role("button", name="Enable alerts").click()
    expect(page.locator("[data-alerts-status]")).to_have_text("Alerts are on for this device.")
    return json.loads(page.evaluate("localStorage.getItem('__testPush')"))["endpoint"]


def test_the_next_officer_on_a_shared_device_gets_a_subscription_of_their_own(browser, live_server, push_service):
    base = live_server.base_url
    with live_server.app_context():
        db = connect(live_server.config["DATABASE"])
        create_user(db, "cit.first", PASSWORD, "cit", "Ofc. Ari First (CIT)")
        create_user(db, "cit.next", PASSWORD, "cit", "Ofc. Bo Next (CIT)")
    car = browser.new_context(permissions=["notifications"])
    car.add_init_script(STUB.replace("__PUSH_ORIGIN__", push_service.origin))
    page = car.new_page()

    sign_in(page, base, "cit.first")
    first = enable_alerts(page, base)
    page.get_by_role("button", name="Sign out").click()
    sign_in(page, base, "cit.next")
    second = enable_alerts(page, base)

    assert second != first
    assert holders(db) == {first: "cit.first", second: "cit.next"}  # the first officer's endpoint never moved


def test_a_refused_subscription_says_why(browser, live_server, push_service):
    base = live_server.base_url
    live_server.config["PUSH_MAX_DEVICES"] = 2
    with live_server.app_context():
        db = connect(live_server.config["DATABASE"])
        user_id = create_user(db, "cit.full", PASSWORD, "cit", "Ofc. Cy Full (CIT)")
        for _ in range(2):
            sub = push_service.new_subscription()
            save_subscription(db, user_id, sub["endpoint"], sub["keys"]["p256dh"], sub["keys"]["auth"])
    context = browser.new_context(permissions=["notifications"])
    context.add_init_script(STUB.replace("__PUSH_ORIGIN__", push_service.origin))
    page = context.new_page()
    sign_in(page, base, "cit.full")
    page.goto(base + "/duty")
    page.get_by_role("button", name="Enable alerts").click()
    expect(page.locator("[data-alerts-status]")).to_contain_text(
        "Alerts are not on: Alerts are already on for 2 devices, the most one account may have.")
