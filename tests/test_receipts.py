"""Knowing the phone rang: receipts per device, alerts that stop once someone accepts,
and a specialist's own backup channel when no phone confirms."""
import pytest

from fieldapp.store.db import one
from fieldapp.delivery.backup_channel import set_channel
from tests.helpers import ask, events, offset


def receipt(client, delivery, stage="delivered", **override):
    """Post the receipt a service worker would post for this push, with no session."""
    body = {"token": delivery.payload["receipt"], "stage": stage, "request_id": delivery.payload.get("request_id"), **override}
    return client.post("/requests/receipts", json=body)


def receipt_rows(db):
    return [(r["delivered_at"] is not None, r["seen_at"] is not None)
            for r in db.query("SELECT delivered_at, seen_at FROM alert_receipts ORDER BY id")]


@pytest.fixture
def alerted_phone(app, client, officer, specialist, worker, push_service):
    """One specialist alerted on one phone: (request_id, the push the phone received)."""
    specialist("near", offset(1200))
    request_id = ask(client)
    worker.run_once()
    [delivery] = push_service.wait_for(1)
    return request_id, delivery


# ---- Receipts ----


def test_a_receipt_needs_no_sign_in_and_the_requester_sees_it(app, alerted_phone, client, db):
    request_id, delivery = alerted_phone
    phone = app.test_client()  # the service worker, with every page closed and no session
    assert receipt(phone, delivery).status_code == 204
    assert receipt_rows(db) == [(True, False)]
    assert "alerted 1 · delivered 1 · seen 0" in client.get(f"/requests/{request_id}").get_data(as_text=True)
    assert receipt(phone, delivery, "seen").status_code == 204
    assert "alerted 1 · delivered 1 · seen 1" in client.get(f"/requests/{request_id}").get_data(as_text=True)


def test_the_token_is_stored_only_as_a_hash(alerted_phone, db):
    _, delivery = alerted_phone
    [row] = db.query("SELECT * FROM alert_receipts")
    assert delivery.payload["receipt"] not in str(row.values())
    assert len(row["token_hash"]) == 64


def test_the_board_shows_delivered_and_flags_a_request_no_phone_confirmed(app, alerted_phone, make_user, login, clock):
    request_id, delivery = alerted_phone
    make_user("sgt.diaz", "supervisor")
    sgt = login("sgt.diaz")
    board = sgt.get("/board").get_data(as_text=True)
    assert "alerted 1 · delivered 0 · seen 0" in board and "No phone confirmed the alert" not in board
    clock.advance(21)
    assert "No phone confirmed the alert" in sgt.get("/board").get_data(as_text=True)
    receipt(app.test_client(), delivery)
    board = sgt.get("/board").get_data(as_text=True)
    assert "alerted 1 · delivered 1 · seen 0" in board and "No phone confirmed the alert" not in board


@pytest.mark.parametrize("bad, status", [
    (lambda d: {"token": "x" * 32}, 404),  # unknown
    (lambda d: {"request_id": d.payload["request_id"] + 1}, 404),  # another alert's
    (lambda d: {"token": "short"}, 400),
    (lambda d: {"token": "é" * 32}, 400),
    (lambda d: {"token": 12345678901234567890}, 400),
    (lambda d: {"stage": "accepted"}, 400),
    (lambda d: {"request_id": "1"}, 400),
])
def test_a_bad_receipt_is_refused_and_changes_nothing(app, alerted_phone, db, bad, status):
    _, delivery = alerted_phone
    response = receipt(app.test_client(), delivery, **bad(delivery))
    assert response.status_code == status and response.json["error"]
    assert receipt_rows(db) == [(False, False)]


def test_a_receipt_that_is_not_json_is_refused(app, alerted_phone, db):
    response = app.test_client().post("/requests/receipts", data="token=abc", content_type="application/x-www-form-urlencoded")
    assert response.status_code == 400
    assert receipt_rows(db) == [(False, False)]


def test_a_reused_receipt_is_refused(app, alerted_phone, db):
    _, delivery = alerted_phone
    phone = app.test_client()
    assert receipt(phone, delivery).status_code == 204
    before = one(db, "SELECT delivered_at FROM alert_receipts")
    assert receipt(phone, delivery).status_code == 409
    assert one(db, "SELECT delivered_at FROM alert_receipts") == before


def test_an_expired_receipt_is_refused(app, alerted_phone, db, clock):
    _, delivery = alerted_phone
    clock.advance(2 * app.config["PUSH_TTL"] + 1)
    assert receipt(app.test_client(), delivery).status_code == 410
    assert receipt_rows(db) == [(False, False)]


def test_each_device_gets_its_own_token(client, officer, specialist, worker, push_service, db):
    specialist("near", offset(800), devices=2)
    ask(client)
    worker.run_once()
    first, second = push_service.wait_for(2)
    assert first.payload["receipt"] != second.payload["receipt"]
    assert one(db, "SELECT COUNT(DISTINCT subscription_id) AS n FROM alert_receipts")["n"] == 2


# ---- Stop once someone accepts ----


def two_alerted(client, specialist, worker, push_service):
    specialist("near", offset(800))
    specialist("far", offset(1500))
    request_id = ask(client)
    worker.run_once()
    push_service.wait_for(2)
    return request_id


def test_an_accept_replaces_the_other_phones_alert(client, specialist, worker, push_service, login, officer):
    request_id = two_alerted(client, specialist, worker, push_service)
    first, second = push_service.deliveries
    login("far").post(f"/requests/{request_id}/accept")
    worker.run_once()
    [replaced] = push_service.wait_for(3)[2:]
    near = first if first.payload["distance_m"] < second.payload["distance_m"] else second
    assert replaced.endpoint == near.endpoint
    assert replaced.headers["topic"] == near.headers["topic"] == f"cit-request-{request_id}"
    assert replaced.payload["kind"] == "closed" and replaced.payload["title"] == "Taken by another CIT officer"
    assert "receipt" not in replaced.payload


def test_a_cancel_replaces_every_alert_with_cancelled(client, specialist, worker, push_service, officer):
    request_id = two_alerted(client, specialist, worker, push_service)
    client.post(f"/requests/{request_id}/cancel", data={"reason": "person_left"})
    worker.run_once()
    closing = push_service.wait_for(4)[2:]
    assert sorted(d.payload["title"] for d in closing) == ["Cancelled", "Cancelled"]


def test_nothing_leaves_for_a_request_after_the_accept(app, client, officer, specialist, worker, push_service, login,
                                                          db, clock, make_user, json_receiver):
    make_user("sgt.diaz", "supervisor")
    app.config["APPRISE_URLS"] = [json_receiver.url]
    near = specialist("near", offset(800))
    specialist("far", offset(1500))
    for _ in range(3):
        specialist(f"spare{_}", offset(4000 + _))
    with app.app_context():
        set_channel(db, near, json_receiver.url, near)
    app.config["ALERT_K"] = 2
    request_id = ask(client)
    push_service.answer(500, 500)  # both alerts fail once: retries are queued
    worker.run_once()
    assert one(db, "SELECT COUNT(*) AS n FROM outbox WHERE state = 'pending'")["n"] == 2
    login("far").post(f"/requests/{request_id}/accept")
    sent_before = len(push_service.deliveries)
    # Past every retry, the receipt timeout (fallback), the escalation steps and the all-hands step.
    for _ in range(8):
        clock.advance(60)
        worker.run_once()
    after = push_service.deliveries[sent_before:]
    assert [d.payload["kind"] for d in after] == ["closed"]  # only the near phone's "taken"
    assert json_receiver.received == []  # neither the backup channel nor the agency's Apprise
    assert not {"escalated", "unanswered", "fallback_queued", "supervisors_alerted"} & set(events(db, request_id))
    assert one(db, "SELECT COUNT(*) AS n FROM outbox WHERE state = 'withdrawn'")["n"] == 2


def test_a_push_being_sent_when_the_accept_lands_is_not_retried(app, client, officer, specialist, worker, push_service,
                                                                login, db):
    request_id = two_alerted(client, specialist, worker, push_service)
    # Both alerts are due again (a retry, forced here), and the worker leases them just before the accept lands.
    db.execute("UPDATE outbox SET state = 'pending', next_attempt_at = 0")
    with app.app_context():
        leased = worker.lease(10)
    assert len(leased) == 2
    login("far").post(f"/requests/{request_id}/accept")
    with app.app_context():
        worker.deliver(leased)
    assert [d.payload["kind"] for d in push_service.deliveries] == ["alert", "alert"]
    assert {r["state"] for r in db.query("SELECT state FROM outbox WHERE id IN (1, 2)")} == {"withdrawn"}


# ---- The backup channel ----


def test_backup_channel_goes_once_when_no_phone_confirms(app, client, officer, specialist, worker, push_service, db,
                                                         clock, json_receiver):
    near = specialist("near", offset(1200))
    with app.app_context():
        set_channel(db, near, json_receiver.url, near)
    request_id = ask(client, note="Pat Example is upset", location_text="12 Invented Lane")
    worker.run_once()
    clock.advance(19)
    worker.run_once()
    assert json_receiver.received == []  # not before RECEIPT_TIMEOUT_S
    clock.advance(2)
    for _ in range(3):
        worker.run_once()
        clock.advance(5)
    [message] = json_receiver.received
    text = message["title"] + " " + message["message"]
    assert f"/requests/{request_id}" in text
    for private in ("Pat", "Example", "Invented", "Lane", "Kim Lee", "Near"):
        assert private not in text
    assert events(db, request_id).count("fallback_queued") == 1 and "fallback_sent" in events(db, request_id)
    # It never held up the ladder: escalation still comes at 60 s.
    clock.advance(60)
    worker.run_once()
    assert "escalated" in events(db, request_id)


def test_a_confirmed_phone_needs_no_backup_channel(app, alerted_phone, db, clock, worker, json_receiver):
    request_id, delivery = alerted_phone
    user_id = one(db, "SELECT user_id FROM alerts")["user_id"]
    with app.app_context():
        set_channel(db, user_id, json_receiver.url, user_id)
    receipt(app.test_client(), delivery)
    clock.advance(30)
    worker.run_once()
    assert json_receiver.received == [] and "fallback_queued" not in events(db, request_id)


def test_a_specialist_sets_their_own_backup_channel_and_sees_it_masked(specialist, login, db):
    near = specialist("near", offset(1200))
    phone = login("near")
    response = phone.post("/duty/channel", data={"url": "ntfys://secret-token@ntfy.example.org/cit-near"},
                          headers={"HX-Request": "true"})
    page = response.get_data(as_text=True)
    assert response.status_code == 200 and "ntfys://ntf…" in page
    assert "secret-token" not in page and "cit-near" not in phone.get("/duty").get_data(as_text=True)
    assert one(db, "SELECT url FROM fallback_channels WHERE user_id = ?", [near])["url"].startswith("ntfys://secret")
    phone.post("/duty/channel", data={"url": ""}, headers={"HX-Request": "true"})
    assert one(db, "SELECT COUNT(*) AS n FROM fallback_channels")["n"] == 0


@pytest.mark.parametrize("url", ["not a url", "https//nothing", "x" * 600, "ntfys://a\nb"])
def test_a_backup_channel_apprise_cannot_use_is_refused(specialist, login, db, url):
    specialist("near", offset(1200))
    response = login("near").post("/duty/channel", data={"url": url}, headers={"HX-Request": "true"})
    assert response.status_code == 422
    assert one(db, "SELECT COUNT(*) AS n FROM fallback_channels")["n"] == 0


def test_a_coordinator_sets_a_backup_channel_for_a_specialist(specialist, make_user, login, db):
    near = specialist("near", offset(1200))
    make_user("coord", "coordinator")
    coordinator = login("coord")
    assert coordinator.post(f"/program/roster/{near}/channel", data={"url": "pover://userkey@apptoken"}).status_code == 303
    assert "pover://app…" in coordinator.get(f"/program/roster/{near}").get_data(as_text=True)
    assert coordinator.post(f"/program/roster/{near}/channel", data={"url": "nope"}).status_code == 422
    assert login("near").post(f"/program/roster/{near}/channel", data={"url": ""}).status_code == 403
    assert one(db, "SELECT url FROM fallback_channels")["url"] == "pover://userkey@apptoken"


# ---- The test alert and the roster ----


def test_a_test_alert_goes_the_same_way_and_shows_its_round_trip(app, specialist, login, worker, push_service, clock, db):
    specialist("near", offset(1200))
    phone = login("near")
    hx = {"HX-Request": "true"}
    sent = phone.post("/duty/test-alert", headers=hx).get_data(as_text=True)
    assert "waiting for this phone to confirm" in sent
    worker.run_once()
    [delivery] = push_service.wait_for(1)
    assert delivery.payload["kind"] == "test" and delivery.headers["urgency"] == "high"
    clock.advance(0.8)
    assert receipt(app.test_client(), delivery).status_code == 204
    since = one(db, "SELECT created_at FROM alert_receipts")["created_at"]
    result = phone.get(f"/duty/test-alert/result?since={since}", headers=hx).get_data(as_text=True)
    assert "Test alert received</strong> in 0.8 s" in result
    assert "An alert last reached one of your devices under 1 min ago" in phone.get("/duty").get_data(as_text=True)


def test_a_test_alert_with_no_device_says_so(make_user, login):
    make_user("cit.new", "cit")
    response = login("cit.new").post("/duty/test-alert", headers={"HX-Request": "true"})
    assert response.status_code == 409 and "Enable alerts" in response.get_data(as_text=True)


def test_the_roster_shows_when_alerts_last_reached_each_specialist(app, alerted_phone, make_user, login, clock, specialist):
    _, delivery = alerted_phone
    specialist("quiet", offset(3000))
    receipt(app.test_client(), delivery)
    make_user("coord", "coordinator")
    clock.advance(3 * 86400)
    roster = login("coord").get("/program/roster").get_data(as_text=True)
    assert "Alerts last reached this officer 3 days ago" in roster
    assert "No alert has reached this officer yet" in roster
    assert roster.count("No alert confirmed in 7 days") == 1
    clock.advance(5 * 86400)
    assert login("coord").get("/program/roster").get_data(as_text=True).count("No alert confirmed in 7 days") == 2


# ---- Drills ----


def test_a_drill_runs_the_loop_marked_drill_and_is_never_counted(app, specialist, make_user, login, worker, push_service,
                                                                   db, json_receiver, clock):
    import datetime

    from fieldapp.program.fidelity import reached_rows
    from fieldapp.program.reports import request_facts

    near = specialist("near", offset(1200))
    with app.app_context():
        set_channel(db, near, json_receiver.url, near)
    make_user("sgt.diaz", "supervisor")
    sgt = login("sgt.diaz")
    response = sgt.post("/requests/drill")
    assert response.status_code == 303
    request_id = int(response.headers["Location"].rsplit("/", 1)[1])
    worker.run_once()
    [alert] = push_service.wait_for(1)
    assert alert.payload["title"].startswith("DRILL · CIT requested") and alert.payload["drill"] is True
    assert "DRILL" in sgt.get(f"/requests/{request_id}").get_data(as_text=True)
    assert f"DRILL · #{request_id}" in sgt.get("/board").get_data(as_text=True)
    clock.advance(21)
    worker.run_once()
    worker.run_once()
    [backup] = json_receiver.received
    assert backup["title"].startswith("DRILL")
    # The specialist accepts and resolves, as on a real call.
    phone = login("near")
    phone.post(f"/requests/{request_id}/accept")
    phone.post(f"/requests/{request_id}/resolve", data={"disposition": "resolved_on_scene", "force_used": "no"})
    assert one(db, "SELECT state FROM cit_requests WHERE id = ?", [request_id])["state"] == "resolved"
    day = datetime.date.fromtimestamp(clock())
    assert request_facts(db, day - datetime.timedelta(days=1), day + datetime.timedelta(days=1)) == []
    # Nor in the on-scene share (the program's fidelity figure).
    assert list(reached_rows(db, day - datetime.timedelta(days=1), day + datetime.timedelta(days=1))) == []


def test_only_a_supervisor_starts_a_drill(make_user, login, db):
    make_user("ofc.park", "officer")
    assert login("ofc.park").post("/requests/drill").status_code == 403
    assert one(db, "SELECT COUNT(*) AS n FROM cit_requests")["n"] == 0
