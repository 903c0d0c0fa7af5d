"""In Chromium on a small phone: the CIT officer on scene sees the check-in countdown and taps "I'm OK"."""
import re

import pytest
from playwright.sync_api import expect

from fieldapp.identity.accounts import create_user
from fieldapp.identity.sessions import User
from fieldapp.requests import domain as flow
from fieldapp.requests.escalation import create_request
from fieldapp.store.db import connect, one
from tests.helpers import PASSWORD, SCENE, sign_in

pytestmark = pytest.mark.browser
PHONE = {"width": 360, "height": 740}


def test_the_countdown_and_im_ok_on_a_small_phone(browser, live_server):
    base = live_server.base_url
    db = connect(live_server.config["DATABASE"])
    with live_server.test_request_context():
        officer = create_user(db, "ofc.lee", PASSWORD, "officer", "Ofc. Kim Lee")
        cit = create_user(db, "cit.reyes", PASSWORD, "cit", "Ofc. Jordan Reyes (CIT)")
        request_id, _ = create_request(db, officer, lat=SCENE[0], lon=SCENE[1])
        sgt = create_user(db, "sgt.diaz", PASSWORD, "supervisor", "Sgt. Robin Diaz")
        as_user = lambda user_id: User(one(db, "SELECT * FROM users WHERE id = ?", [user_id]))  # noqa: E731
        # A supervisor assigns the CIT officer, who arrives: through the state machine, as the pages do.
        flow.move(db, request_id, "assign", as_user(sgt), {"assignee_id": str(cit)})
        flow.move(db, request_id, "arrive", as_user(cit))

    page = browser.new_context(viewport=PHONE).new_page()
    sign_in(page, base, "cit.reyes")
    page.goto(f"{base}/requests/{request_id}")
    countdown = page.locator("[data-check-in] time[data-until]")
    expect(countdown).to_have_text(re.compile(r"^9:[0-5]\d$"))
    ok = page.get_by_role("button", name="I'm OK")
    box = ok.bounding_box()
    assert box["height"] >= 44 and box["x"] >= 0 and box["x"] + box["width"] <= PHONE["width"]
    before = one(db, "SELECT deadline_at FROM check_in_timers WHERE request_id = ?", [request_id])["deadline_at"]
    page.wait_for_timeout(1100)
    ok.click()
    expect(page.locator("#live")).to_contain_text("Next check-in in")
    for _ in range(50):
        after = one(db, "SELECT deadline_at FROM check_in_timers WHERE request_id = ?", [request_id])["deadline_at"]
        if after > before:
            break
        page.wait_for_timeout(100)
    assert after > before
    page.get_by_label("Check in every").select_option("5")
    page.get_by_role("button", name="Set").click()
    expect(page.locator("[data-check-in]")).to_contain_text("every 5 min")
    expect(countdown).to_have_text(re.compile(r"^4:[0-5]\d$"))


def test_the_supervisor_sees_a_missed_check_in_at_the_top_and_records_contact(browser, live_server):
    import time

    base = live_server.base_url
    db = connect(live_server.config["DATABASE"])
    with live_server.test_request_context():
        officer = create_user(db, "ofc.lee", PASSWORD, "officer", "Ofc. Kim Lee")
        cit = create_user(db, "cit.reyes", PASSWORD, "cit", "Ofc. Jordan Reyes (CIT)")
        sgt = create_user(db, "sgt.diaz", PASSWORD, "supervisor", "Sgt. Robin Diaz")
        request_id, _ = create_request(db, officer, lat=SCENE[0], lon=SCENE[1])
        as_user = lambda user_id: User(one(db, "SELECT * FROM users WHERE id = ?", [user_id]))  # noqa: E731
        flow.move(db, request_id, "assign", as_user(sgt), {"assignee_id": str(cit)})
        flow.move(db, request_id, "arrive", as_user(cit))
    # Ten minutes pass in a moment: the deadline went by 30 s ago, and the in-process worker finds it.
    db.execute("UPDATE check_in_timers SET deadline_at = ?, warn_at = NULL WHERE request_id = ?", [time.time() - 30, request_id])
    db.conn.commit()

    page = browser.new_context(viewport={"width": 1024, "height": 768}).new_page()
    sign_in(page, base, "sgt.diaz")
    page.goto(f"{base}/board")
    missed = page.locator(".missed-check-in").first
    expect(missed).to_contain_text(re.compile(r"Check-in missed 0:\d\d ago"), timeout=10_000)
    assert page.locator("#board-live li").first.get_attribute("class").endswith("missed-check-in")
    missed.get_by_role("link").click()
    page.get_by_label("Contact made: how").fill("Radio: answered, all OK")
    page.get_by_role("button", name="Contact made").click()
    expect(page.locator("[data-check-in]")).to_contain_text("Next check-in in")
    page.goto(f"{base}/board")
    expect(page.locator(".missed-check-in")).to_have_count(0)
