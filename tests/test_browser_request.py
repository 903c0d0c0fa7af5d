"""End to end in Chromium: an officer asks, a specialist gets a real encrypted push,
opens it, accepts, and the scene is tracked to resolved while a supervisor watches."""
import json
import re
from pathlib import Path

import pytest
from playwright.sync_api import expect

from fieldapp.identity.accounts import create_user, user_by_username
from fieldapp.store.db import connect
from fieldapp.delivery.push import application_server_key, load_or_create_vapid
from tests.helpers import PASSWORD, SCENE, offset, sign_in, wait_for_offline_copy, wait_until

pytestmark = pytest.mark.browser
PHONE = {"width": 360, "height": 640}
STUB = (Path(__file__).parent / "push_stub.js").read_text()


def test_the_whole_loop_on_three_phones(browser, live_server, push_service):
    base = live_server.base_url
    with live_server.app_context():
        db = connect(live_server.config["DATABASE"])
        create_user(db, "ofc.lee", PASSWORD, "officer", "Ofc. Kim Lee", unit="1-Adam-12")
        create_user(db, "cit.reyes", PASSWORD, "cit", "Ofc. Jordan Reyes (CIT)", unit="2-CIT-3", phone="555-0130")
        create_user(db, "sgt.diaz", PASSWORD, "supervisor", "Sgt. Robin Diaz")
        server_key = application_server_key(load_or_create_vapid(live_server.instance_path))

    near = offset(1200)
    officer = browser.new_context(viewport=PHONE, geolocation={"latitude": SCENE[0], "longitude": SCENE[1]}, permissions=["geolocation"])
    cit = browser.new_context(viewport=PHONE, geolocation={"latitude": near[0], "longitude": near[1]}, permissions=["geolocation", "notifications"])
    sgt = browser.new_context(viewport={"width": 1024, "height": 768})
    cit.add_init_script(STUB.replace("__PUSH_ORIGIN__", push_service.origin))

    # The specialist goes on duty and turns alerts on.
    cit_page = cit.new_page()
    sign_in(cit_page, base, "cit.reyes")
    cit_page.goto(base + "/duty")
    cit_page.get_by_role("button", name="Go on duty").click()
    expect(cit_page.locator("[data-position-status]")).to_contain_text("Position sent", timeout=10_000)
    cit_page.get_by_role("button", name="Enable alerts").click()
    expect(cit_page.locator("[data-alerts-status]")).to_have_text("Alerts are on for this device.")
    saved = json.loads(cit_page.evaluate("localStorage.getItem('__testPush')"))
    assert saved["applicationServerKey"] == server_key
    push_service.register_browser_key(saved["endpoint"], saved["jwk"], saved["keys"]["auth"])

    # The supervisor watches the board.
    sgt_page = sgt.new_page()
    sign_in(sgt_page, base, "sgt.diaz")
    sgt_page.goto(base + "/board")
    expect(sgt_page.locator("#board-live")).to_contain_text("1 CIT officer on duty now")

    # The officer marks what they see, then taps the one big button.
    officer_page = officer.new_page()
    sign_in(officer_page, base, "ofc.lee")
    officer_page.goto(base + "/reference/psychosis")
    officer_page.locator("input[name=mark]").first.check()
    officer_page.goto(base + "/")
    officer_page.get_by_role("button", name="Request CIT officer").click()
    officer_page.wait_for_url(re.compile(r".*/requests/\d+$"))
    request_id = int(officer_page.url.rsplit("/", 1)[1])
    expect(officer_page.locator("#live")).to_contain_text("1 CIT officer alerted; the nearest is 1.2 km away.")
    expect(officer_page.get_by_role("heading", name="Until CIT arrives")).to_be_visible()

    # The server's push really is encrypted; the stand-in decrypts it with the browser's key.
    [delivery] = push_service.wait_for(1)
    assert delivery.endpoint == saved["endpoint"]
    assert delivery.payload["title"] == "CIT requested · 1.2 km"
    assert delivery.payload["request_id"] == request_id

    # Hand the decrypted message to the specialist's service worker, as the browser would.
    cdp = cit.new_cdp_session(cit_page)
    registrations = []
    cdp.on("ServiceWorker.workerRegistrationUpdated", lambda e: registrations.extend(e["registrations"]))
    cdp.send("ServiceWorker.enable")
    ours = lambda: sorted({r["registrationId"] for r in registrations if r["scopeURL"] == base + "/" and not r["isDeleted"]})  # noqa: E731
    for _ in range(150):  # CDP reports the registration as an event, soon after enable
        if ours():
            break
        cit_page.wait_for_timeout(100)
    [registration_id] = ours()
    cdp.send("ServiceWorker.deliverPushMessage", {
        "origin": base, "registrationId": registration_id, "data": json.dumps(delivery.payload),
    })
    wait_until(cit_page, "() => navigator.serviceWorker.ready.then(r => r.getNotifications()).then(n => n.length === 1)")
    shown = cit_page.evaluate(
        "() => navigator.serviceWorker.ready.then(r => r.getNotifications())"
        ".then(n => n.map(x => ({title: x.title, body: x.body, tag: x.tag, url: x.data.url, actions: x.actions.map(a => a.title)})))"
    )
    assert shown == [{
        "title": "CIT requested · 1.2 km", "body": "Open to accept or decline.", "tag": f"cit-request-{request_id}",
        "url": f"/requests/{request_id}", "actions": ["Accept", "Decline"],
    }]

    # Tapping the notification opens the request on the specialist's phone.
    [worker] = [w for w in cit.service_workers if w.url.endswith("/sw.js")]
    worker.evaluate(
        "() => self.registration.getNotifications().then(([n]) => self.dispatchEvent(new NotificationEvent('notificationclick', {notification: n})))"
    )
    cit_page.wait_for_url(f"{base}/requests/{request_id}")
    expect(cit_page.locator("#live")).to_contain_text("Ofc. Kim Lee")
    expect(cit_page.locator("#live")).to_contain_text("1.2 km S of you")
    expect(cit_page.locator("#live")).to_contain_text("What the officer marked")

    expect(sgt_page.locator("#board-live")).to_contain_text(f"#{request_id} · Waiting for a CIT officer", timeout=10_000)

    # Accept → en route; each side sees the other.
    cit_page.get_by_role("button", name="Accept").click()
    expect(cit_page.locator("#live")).to_contain_text("CIT officer en route")
    expect(officer_page.locator("#live")).to_contain_text("Ofc. Jordan Reyes (CIT)", timeout=10_000)
    # The server sends clock times; the page shows them as time elapsed, ticking.
    expect(officer_page.locator(".who time")).to_have_text(re.compile(r"^\d+ s ago$|^\d+ min \d+ s ago$"))
    expect(sgt_page.locator("#board-live time").first).to_have_text(re.compile(r"^\d+ s ago$|^\d+ min \d+ s ago$"))
    expect(sgt_page.locator("#board-live")).to_contain_text("Assigned: Ofc. Jordan Reyes (CIT)", timeout=10_000)

    cit_page.get_by_role("button", name="On scene").click()
    expect(officer_page.locator("#live")).to_contain_text("CIT officer on scene", timeout=10_000)

    officer_page.get_by_role("button", name="Scene stabilised").click()
    expect(officer_page.locator("#live")).to_contain_text("Scene stabilised")
    expect(cit_page.locator("#live")).to_contain_text("Scene stabilised", timeout=10_000)

    cit_page.get_by_label("Resolve: disposition").select_option("mobile_crisis_referral")
    cit_page.get_by_label("Highest level of force").select_option("verbal")
    cit_page.get_by_label("Transported to").select_option("crisis_centre")
    cit_page.get_by_role("button", name="Resolve").click()
    expect(cit_page.locator("#live")).to_contain_text("Disposition: Referred to mobile crisis team")
    expect(officer_page.locator("#live")).to_contain_text("Resolved", timeout=10_000)
    expect(sgt_page.locator("#board-live")).to_contain_text("No open requests", timeout=10_000)

    for context in (officer, cit, sgt):
        context.close()


def officer_at_scene(browser, live_server, service_workers="allow"):
    """Ofc. Kim Lee signed in on a phone at the scene: (db, context, page).

    With service workers allowed, returns once the worker has the home screen
    saved and controls the page (app.js asks it to claim the page that was open
    while it installed).
    """
    db = connect(live_server.config["DATABASE"])
    with live_server.app_context():
        create_user(db, "ofc.lee", PASSWORD, "officer", "Ofc. Kim Lee")
    context = browser.new_context(viewport=PHONE, service_workers=service_workers,
                                  geolocation={"latitude": SCENE[0], "longitude": SCENE[1]}, permissions=["geolocation"])
    page = context.new_page()
    sign_in(page, live_server.base_url, "ofc.lee")
    if service_workers == "allow":
        wait_for_offline_copy(page, "/")
        wait_until(page, "() => navigator.serviceWorker.controller !== null")
    return db, context, page


def test_request_tapped_with_no_signal_is_queued_then_sent_once(browser, live_server):
    db, officer, page = officer_at_scene(browser, live_server)

    officer.set_offline(True)
    live_server.network.down = True
    page.get_by_role("button", name="Request CIT officer").click()
    expect(page.get_by_text("Queued — will send when online.")).to_be_visible(timeout=10_000)
    expect(page.get_by_role("link", name="Call dispatch instead")).to_have_attribute("href", "tel:911")
    assert db.execute("SELECT COUNT(*) FROM cit_requests").fetchone()[0] == 0

    live_server.network.down = False
    officer.set_offline(False)
    page.wait_for_url(re.compile(r".*/requests/\d+$"), timeout=15_000)
    expect(page.locator("#live")).to_contain_text("No CIT officer could be alerted.")
    wait_until(page, QUEUE_EMPTY)  # all sent: nothing is left that a racing Background Sync could send again
    assert db.execute("SELECT COUNT(*) FROM cit_requests").fetchone()[0] == 1
    officer.close()


def test_request_from_a_page_no_service_worker_controls_is_still_queued(browser, live_server):
    # As on the first page after the worker installs, before it controls anything.
    db, officer, page = officer_at_scene(browser, live_server, service_workers="block")
    assert page.evaluate("() => navigator.serviceWorker.controller") is None

    officer.set_offline(True)
    live_server.network.down = True
    page.get_by_role("button", name="Request CIT officer").click()
    expect(page.get_by_text("Queued — will send when online.")).to_be_visible(timeout=10_000)
    expect(page.get_by_text("No signal: the request is queued on this device.")).to_be_visible()
    assert db.execute("SELECT COUNT(*) FROM cit_requests").fetchone()[0] == 0

    live_server.network.down = False
    officer.set_offline(False)
    page.wait_for_url(re.compile(r".*/requests/\d+$"), timeout=15_000)
    expect(page.locator("#live")).to_contain_text("No CIT officer could be alerted.")
    assert db.execute("SELECT COUNT(*) FROM cit_requests").fetchone()[0] == 1
    officer.close()


@pytest.mark.parametrize("service_workers", ["allow", "block"])
def test_request_tapped_after_the_idle_lock_goes_out_after_signing_in(browser, live_server, service_workers):
    db, officer, page = officer_at_scene(browser, live_server, service_workers)
    # The home screen left open past the idle lock, then a crisis. A lock of zero: any moment
    # since the page's last request is past it, so nothing waits for the clock.
    live_server.config["SESSION_IDLE_MINUTES"] = 0
    page.get_by_role("button", name="Request CIT officer").click()
    # expect polls page.url: wait_for_url can miss a redirect the service worker answered.
    expect(page).to_have_url(re.compile(r".*/login\?next=/&queued=1$"))
    expect(page.get_by_text("Your CIT request is saved on this device.")).to_be_visible()
    assert db.execute("SELECT COUNT(*) FROM cit_requests").fetchone()[0] == 0

    live_server.config["SESSION_IDLE_MINUTES"] = 30
    page.get_by_label("Username").fill("ofc.lee")
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in", exact=True).click()
    page.wait_for_url(re.compile(r".*/requests/\d+$"), timeout=15_000)
    expect(page.locator("#live")).to_contain_text("No CIT officer could be alerted.")
    assert db.execute("SELECT COUNT(*) FROM cit_requests").fetchone()[0] == 1
    officer.close()


QUEUED = "() => fieldappQueue.all().then(entries => entries.map(e => ({user_id: e.user_id, note: e.fields.note})))"
QUEUE_EMPTY = "() => fieldappQueue.all().then(entries => entries.length === 0)"
CACHED_PAGES = (
    "() => caches.keys().then(keys => Promise.all(keys.map(k => caches.open(k).then(c => c.keys()"
    ".then(reqs => Promise.all(reqs.filter(r => !r.url.includes('/static/')).map(r => c.match(r).then(res => res.text()))))))))"
    ".then(lists => lists.flat())"
)


def test_shared_car_computer_keeps_nothing_of_one_officer_for_the_next(browser, live_server):
    base = live_server.base_url
    db, car, page = officer_at_scene(browser, live_server)
    with live_server.app_context():
        park = create_user(db, "ofc.park", PASSWORD, "officer", "Ofc. Dana Park")
    lee = user_by_username(db, "ofc.lee")["id"]

    # Ofc. Lee marks what they see, and opens a card or two.
    page.goto(base + "/reference/psychosis")
    page.locator("input[name=mark]").first.check()
    page.goto(base + "/")
    assert page.evaluate("localStorage.getItem('fieldapp.marks')") not in (None, "{}")
    assert "psychosis" in page.evaluate("localStorage.getItem('fieldapp.recent')")

    # The home screen left open past the idle lock (of zero: nothing waits for the clock); then a crisis, with a note.
    live_server.config["SESSION_IDLE_MINUTES"] = 0
    page.get_by_text("Add details (optional)").click()
    page.get_by_label("One-line note").fill("Person with a knife")
    page.get_by_role("button", name="Request CIT officer").click()
    expect(page).to_have_url(re.compile(r".*/login\?next=/&queued=1$"))
    expect(page.get_by_text("Your CIT request is saved on this device.")).to_be_visible()
    # The idle lock cleared the marks and recent topics; the request is kept, bound to Ofc. Lee.
    assert page.evaluate("localStorage.getItem('fieldapp.marks')") is None
    assert page.evaluate("localStorage.getItem('fieldapp.recent')") is None
    assert wait_until(page, QUEUED) == [{"user_id": str(lee), "note": "Person with a knife"}]

    # Nothing the worker saved carries a name or a token.
    saved = wait_until(page, CACHED_PAGES)
    assert len(saved) > 5
    for text in saved:
        assert "Ofc. Kim Lee" not in text and "csrf" not in text.lower() and "data-user=" not in text

    # Ofc. Park takes the car computer.
    live_server.config["SESSION_IDLE_MINUTES"] = 30
    page.get_by_label("Username").fill("ofc.park")
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in", exact=True).click()
    page.wait_for_url(base + "/")
    wait_until(page, QUEUE_EMPTY)
    expect(page.locator("footer")).to_contain_text("Signed in as Ofc. Dana Park")
    expect(page.locator("[data-queued]")).to_be_hidden()
    assert "Ofc. Kim Lee" not in page.content()
    assert db.execute("SELECT COUNT(*) FROM cit_requests").fetchone()[0] == 0  # never sent as Ofc. Park's

    # A saved card opened offline shows none of Ofc. Lee's marks.
    car.set_offline(True)
    page.goto(base + "/reference/psychosis")
    expect(page.get_by_role("heading", name="Psychosis")).to_be_visible()
    assert page.locator("input[name=mark]:checked").count() == 0
    assert "Ofc. Kim Lee" not in page.content()
    car.set_offline(False)

    # Ofc. Park's own request carries nothing of Ofc. Lee's.
    page.goto(base + "/")
    page.get_by_role("button", name="Request CIT officer").click()
    page.wait_for_url(re.compile(r".*/requests/\d+$"))
    [(requester, note, observations)] = db.execute("SELECT requester_id, note, observations FROM cit_requests").fetchall()
    assert (requester, note, observations) == (park, "", "[]")

    # Switch officer: signed out at once, and the device is cleared for the next one.
    page.get_by_role("button", name="Switch officer").click()
    page.wait_for_url(re.compile(r".*/login\?signed_out=1$"))
    expect(page.get_by_text("You are signed out.")).to_be_visible()
    left = page.evaluate("Object.keys(localStorage).filter(k => k.startsWith('fieldapp.') && !['fieldapp.theme', 'fieldapp.seen'].includes(k))")
    assert left == []
    assert page.evaluate(QUEUED) == []
    page.goto(base + "/")
    assert "/login" in page.url  # the session really ended
    # Clear-Site-Data said "cache", not "storage": the offline worker is still there.
    assert page.evaluate("() => navigator.serviceWorker.getRegistration().then(r => !!r)")
    car.close()


@pytest.mark.parametrize("service_workers", ["allow", "block"])
def test_second_tap_with_no_signal_does_not_queue_a_second_request(browser, live_server, service_workers):
    db, officer, page = officer_at_scene(browser, live_server, service_workers)
    officer.set_offline(True)
    live_server.network.down = True
    page.get_by_role("button", name="Request CIT officer").click()
    expect(page.get_by_text("Queued — will send when online.")).to_be_visible(timeout=10_000)
    button = page.locator("[data-request-button]")
    expect(button).to_have_text("CIT request queued — sends when online")
    button.click()
    expect(page.get_by_text("Already queued: your CIT request goes out as soon as there is signal.")).to_be_visible()
    assert len(page.evaluate(QUEUED)) == 1

    live_server.network.down = False
    officer.set_offline(False)
    page.wait_for_url(re.compile(r".*/requests/\d+$"), timeout=15_000)
    wait_until(page, QUEUE_EMPTY)  # everything queued went out, a second entry too if one was ever made
    assert db.execute("SELECT COUNT(*) FROM cit_requests").fetchone()[0] == 1
    officer.close()


def test_marks_left_past_the_idle_lock_are_cleared_on_the_device_itself(browser, live_server):
    # No server round trip at all: a saved card opened after the idle lock shows no one's marks.
    base = live_server.base_url
    db, car, page = officer_at_scene(browser, live_server)
    page.goto(base + "/reference/psychosis")
    page.locator("input[name=mark]").first.check()
    assert page.evaluate("localStorage.getItem('fieldapp.marks')") not in (None, "{}")
    page.evaluate("localStorage.setItem('fieldapp.seen', String(Date.now() - 31 * 60 * 1000))")
    car.set_offline(True)
    live_server.network.down = True
    page.goto(base + "/reference/psychosis")
    expect(page.get_by_role("heading", name="Psychosis")).to_be_visible()
    assert page.locator("input[name=mark]:checked").count() == 0
    assert page.evaluate("localStorage.getItem('fieldapp.marks')") is None
    car.close()
