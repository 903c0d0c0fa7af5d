"""Dispatch and CAD: a dispatcher or the agency's CAD asks for CIT from the 911 call, and hears what happened."""
import json

import pytest
from standardwebhooks.webhooks import Webhook

from fieldapp.api.keys import create_key, revoke_key
from fieldapp.districts import save_centre
from fieldapp.store.db import one
from tests.helpers import SCENE, alerted, events, offset, snapshot

CALL = {"cad_incident": "2026-118842", "location_text": "12 Invented Row", "district": "North", "note": "Caller's son",
        "medical": True}


@pytest.fixture
def app_config(app_config):
    # The tests' webhook receiver listens on loopback over http.
    return dict(app_config, WEBHOOK_INSECURE_HOSTS=("127.0.0.1",))


@pytest.fixture
def dispatcher(make_user, login):
    make_user("disp.ray", "dispatcher", display_name="Disp. Sam Ray")
    return login("disp.ray")


@pytest.fixture
def districts(db):
    for name, lat in (("North", SCENE[0] + 0.05), ("South", SCENE[0] - 0.05)):
        save_centre(db, name, lat, SCENE[1])


def api_key(app, db, name="cad", scopes=("requests:read", "requests:write")):
    with app.app_context():
        return {"Authorization": f"Bearer {create_key(db, name, scopes)}"}


def created_id(response):
    assert response.status_code in (200, 201), response.get_data(as_text=True)
    return int(response.headers["Location"].rsplit("/", 1)[1])


# ---- The dispatcher's console ----

def test_a_district_call_alerts_that_districts_specialists_first(dispatcher, specialist, districts, db):
    south = specialist("south", offset(100), district="South")
    north = specialist("north", offset(9000), district="North")
    response = dispatcher.post("/dispatch", data=CALL)
    request_id = int(response.headers["Location"].rsplit("/", 1)[1])
    in_order = [r["user_id"] for r in db.query("SELECT user_id FROM alerts WHERE request_id = ? ORDER BY id", [request_id])]
    assert in_order == [north, south]
    req = one(db, "SELECT cad_incident, district, medical FROM cit_requests WHERE id = ?", [request_id])
    assert req == {"cad_incident": "2026-118842", "district": "North", "medical": 1}


def test_an_address_without_a_district_is_refused_and_nothing_sent(dispatcher, districts, db):
    before = snapshot(db)
    response = dispatcher.post("/dispatch", data={**CALL, "district": ""})
    assert response.status_code == 422
    assert "address together with its district" in response.get_data(as_text=True)
    assert snapshot(db) == before


def test_a_dispatcher_makes_many_requests_without_the_officers_limits(dispatcher, districts, db, app):
    for n in range(app.config["REQUEST_RATE_MAX"] + 2):
        dispatcher.post("/dispatch", data={**CALL, "cad_incident": f"C-{n}"})
    assert one(db, "SELECT COUNT(*) AS n FROM cit_requests")["n"] == app.config["REQUEST_RATE_MAX"] + 2


def test_the_cad_number_shows_on_the_page_the_board_and_the_timeline(dispatcher, districts, db):
    request_id = int(dispatcher.post("/dispatch", data=CALL).headers["Location"].rsplit("/", 1)[1])
    assert "CAD incident 2026-118842" in dispatcher.get(f"/requests/{request_id}").get_data(as_text=True)
    assert "CAD 2026-118842" in dispatcher.get("/board").get_data(as_text=True)
    first = one(db, "SELECT detail FROM request_events WHERE request_id = ? ORDER BY id LIMIT 1", [request_id])
    assert first["detail"] == "from dispatch, CAD incident 2026-118842"


def test_the_cad_number_is_in_the_per_request_export(app, dispatcher, districts, db, clock):
    import datetime

    from fieldapp.program.exports import encounter_rows

    request_id = int(dispatcher.post("/dispatch", data=CALL).headers["Location"].rsplit("/", 1)[1])
    day = datetime.date.fromtimestamp(clock())
    with app.app_context():
        rows = list(encounter_rows(db, day, day))
    assert [(r["request_id"], r["cad_incident"]) for r in rows] == [(request_id, "2026-118842")]


def test_an_attached_patrol_officer_follows_the_request_as_its_requester(dispatcher, districts, make_user, login, db):
    make_user("ofc.lee", "officer", unit="1-Adam-12")
    patrol = login("ofc.lee")
    request_id = int(dispatcher.post("/dispatch", data=CALL).headers["Location"].rsplit("/", 1)[1])
    assert patrol.get(f"/requests/{request_id}").status_code == 403
    assert dispatcher.post(f"/requests/{request_id}/attach", data={"officer": "1-adam-12"}).status_code == 303
    assert patrol.get(f"/requests/{request_id}").status_code == 200
    assert patrol.post(f"/requests/{request_id}/cancel", data={"reason": "person_left"}).status_code == 303  # a requester's step
    assert "officer_attached" in events(db, request_id)


def test_attaching_nobody_known_is_refused(dispatcher, districts, db):
    request_id = int(dispatcher.post("/dispatch", data=CALL).headers["Location"].rsplit("/", 1)[1])
    before = snapshot(db)
    response = dispatcher.post(f"/requests/{request_id}/attach", data={"officer": "nobody"})
    assert response.status_code == 409 and "No single officer" in response.get_data(as_text=True)
    assert snapshot(db) == before


def test_a_dispatcher_re_alerts_and_cancels_any_open_request(app, dispatcher, client, officer, specialist, db):
    specialist("near", offset(1000))
    specialist("later", offset(2000))
    app.config["ALERT_K"] = 1  # one specialist a step: the re-alert has someone left to alert
    request_id = int(client.post("/requests", data={"lat": SCENE[0], "lon": SCENE[1]}).headers["Location"].rsplit("/", 1)[1])
    assert dispatcher.post(f"/requests/{request_id}/realert").status_code == 303
    assert "realerted" in events(db, request_id)
    assert dispatcher.post(f"/requests/{request_id}/cancel", data={"reason": "sent_in_error"}).status_code == 303
    assert one(db, "SELECT state FROM cit_requests WHERE id = ?", [request_id])["state"] == "cancelled"


@pytest.mark.parametrize("path", ["/program/roster", "/audit", "/webhooks", "/program/content-review"])
def test_a_dispatcher_cannot_reach_coordinator_pages(dispatcher, path):
    assert dispatcher.get(path).status_code == 403


# ---- API keys ----

def test_the_key_is_printed_once_on_its_last_line_and_only_its_hash_kept(app, db):
    runner = app.test_cli_runner()
    result = runner.invoke(args=["api-keys", "create", "county-cad", "--scopes", "requests:read,requests:write"])
    assert result.exit_code == 0, result.output
    key = result.output.strip().splitlines()[-1]
    assert key.startswith("fapi_") and " " not in key
    stored = one(db, "SELECT * FROM api_keys WHERE name = 'county-cad'")
    assert key not in json.dumps(stored)
    assert "county-cad\trequests:read,requests:write\tactive" in runner.invoke(args=["api-keys", "list"]).output
    assert runner.invoke(args=["api-keys", "revoke", "county-cad"]).exit_code == 0
    assert "revoked" in runner.invoke(args=["api-keys", "list"]).output


def test_a_revoked_key_fails_at_once(app, db, client):
    headers = api_key(app, db)
    assert client.get("/api/v1/requests", headers=headers).status_code == 200
    with app.app_context():
        revoke_key(db, "cad")
    response = client.get("/api/v1/requests", headers=headers)
    assert response.status_code == 401
    assert response.content_type == "application/problem+json"
    assert response.json["detail"] == "The API key 'cad' has been revoked."


def test_a_read_key_cannot_create_a_request(app, db, client, districts):
    headers = api_key(app, db, "reader", ["requests:read"])
    before = snapshot(db)
    response = client.post("/api/v1/requests", json=CALL, headers=headers)
    assert response.status_code == 403
    assert "does not have the requests:write scope" in response.json["detail"]
    assert snapshot(db) == before


# ---- Reads, limits, caching and the scheme's case (security review 2026-12-07, F11, F12, F13, I3) ----

def test_a_key_reads_open_requests_and_its_own_but_not_others_closed_ones(app, db, client, officer, districts):
    from tests.helpers import ask

    key = api_key(app, db)
    officers_closed = ask(client)  # an officer's tap, closed: not the CAD's
    client.post(f"/requests/{officers_closed}/cancel", data={"reason": "person_left"})
    ours = created_id(client.post("/api/v1/requests", json={**CALL, "cad_incident": "2026-7"}, headers=key))
    client.post(f"/api/v1/requests/{ours}/cancel", json={"reason": "person_left"}, headers=key)
    hidden = client.get(f"/api/v1/requests/{officers_closed}", headers=key)
    assert hidden.status_code == 404 and "lat" not in hidden.get_data(as_text=True)
    assert client.get(f"/api/v1/requests/{ours}", headers=key).status_code == 200  # closed, but this CAD made it
    other = ask(client, note="a new scene")
    assert client.get(f"/api/v1/requests/{other}", headers=key).json["state"] == "requested"  # open
    assert client.get("/api/v1/requests/999999", headers=key).status_code == 404


def test_each_key_is_limited_with_429_and_retry_after_and_coordinators_are_told(app, db, client, districts, make_user,
                                                                              login):
    app.config.update(API_READ_LIMIT="5 per minute", API_WRITE_LIMIT="2 per minute")
    make_user("lt.casey", "coordinator")
    key, other = api_key(app, db), api_key(app, db, name="other-cad")
    reads = [client.get("/api/v1/requests", headers=key) for _ in range(7)]
    assert [r.status_code for r in reads] == [200] * 5 + [429] * 2
    assert 1 <= int(reads[-1].headers["Retry-After"]) <= 61 and reads[-1].json["status"] == 429
    assert client.get("/api/v1/requests", headers=other).status_code == 200  # another key has its own window
    writes = [client.post("/api/v1/requests", json={**CALL, "cad_incident": f"L-{n}"}, headers=key) for n in range(3)]
    assert [w.status_code for w in writes] == [201, 201, 429] and "Retry-After" in writes[-1].headers
    assert one(db, "SELECT COUNT(*) AS n FROM cit_requests")["n"] == 2
    # Audited once a window, and coordinators told.
    assert [r["detail"] for r in db.query("SELECT detail FROM audit_log WHERE action = 'api_rate_limited'")] == [
        "over 5 per minute", "over 2 per minute"]
    assert "The API key cad went over its limit" in login("lt.casey").get("/").get_data(as_text=True)


def test_wrong_keys_from_one_address_are_refused_with_429(app, client):
    app.config["API_BAD_KEY_LIMIT"] = "5 per minute"
    statuses = [client.get("/api/v1/requests", headers={"Authorization": f"Bearer fapi_guess{n}"}).status_code
                for n in range(8)]
    assert statuses == [401] * 5 + [429] * 3


def test_every_api_answer_is_no_store_except_the_openapi_document(app, db, client, districts):
    key = api_key(app, db)
    created = client.post("/api/v1/requests", json=CALL, headers=key)
    answers = [created, client.get("/api/v1/requests", headers=key),
               client.get(f"/api/v1/requests/{created.json['id']}", headers=key),
               client.get("/api/v1/requests"), client.get("/api/v1/requests/999999", headers=key),
               client.post("/api/v1/requests", data="x", headers=key), client.get("/api/v1/nowhere")]
    assert [a.headers.get("Cache-Control") for a in answers] == ["no-store"] * len(answers)
    assert client.get("/api/v1/openapi.json").headers.get("Cache-Control") != "no-store"


@pytest.mark.parametrize("scheme", ["bearer", "BEARER", "Bearer", "bEaReR"])
def test_the_bearer_scheme_is_accepted_in_any_case(app, db, client, scheme):
    key = api_key(app, db)["Authorization"].split(" ", 1)[1]
    assert client.get("/api/v1/requests", headers={"Authorization": f"{scheme} {key}"}).status_code == 200


def test_a_session_cookie_never_authorises_the_api(dispatcher):
    response = dispatcher.get("/api/v1/requests")
    assert response.status_code == 401 and response.content_type == "application/problem+json"


def test_every_api_call_is_audited_with_the_keys_name(app, db, client):
    headers = api_key(app, db)
    client.get("/api/v1/requests", headers=headers)
    row = one(db, "SELECT * FROM audit_log WHERE action = 'api_call' ORDER BY id DESC LIMIT 1")
    assert row["actor_name"] == "api:cad" and row["detail"] == "GET /api/v1/requests 200"


# ---- The API ----

def test_cad_creates_a_request_with_201_and_location(app, db, client, districts, specialist):
    north = specialist("north", offset(9000), district="North")
    response = client.post("/api/v1/requests", json=CALL, headers={**api_key(app, db), "Idempotency-Key": "k-1"})
    assert response.status_code == 201
    request_id = created_id(response)
    assert response.headers["Location"] == f"/api/v1/requests/{request_id}"
    assert response.json["state"] == "requested" and response.json["alerted"] == 1
    assert alerted(db, request_id) == [north]


def test_the_same_idempotency_key_and_body_give_the_same_request(app, db, client, districts):
    headers = {**api_key(app, db), "Idempotency-Key": "k-1"}
    first = created_id(client.post("/api/v1/requests", json=CALL, headers=headers))
    again = client.post("/api/v1/requests", json=CALL, headers=headers)
    assert again.status_code == 200 and created_id(again) == first


def test_a_reused_idempotency_key_with_another_body_is_409_and_changes_nothing(app, db, client, districts):
    headers = {**api_key(app, db), "Idempotency-Key": "k-1"}
    client.post("/api/v1/requests", json=CALL, headers=headers)
    before = snapshot(db)
    response = client.post("/api/v1/requests", json={**CALL, "weapon": True}, headers=headers)
    assert response.status_code == 409 and "different request body" in response.json["detail"]
    assert snapshot(db) == before


@pytest.mark.parametrize("body, status, detail", [
    ("{not json", 400, "Send a JSON object"),
    (json.dumps({**CALL, "lat": 91, "lon": 0}), 422, "Latitude must be between -90 and 90."),
    (json.dumps({**CALL, "lat": 10, "lon": 200}), 422, "Longitude must be between -180 and 180."),
    (json.dumps({**CALL, "cad_incident": ""}), 422, "Give the CAD incident number"),
    (json.dumps({**CALL, "district": "Atlantis"}), 422, "There is no district called 'Atlantis'."),
])
def test_bad_input_is_a_problem_with_a_clear_detail_and_changes_nothing(app, db, client, districts, body, status, detail):
    headers = {**api_key(app, db), "Content-Type": "application/json"}
    before = snapshot(db)
    response = client.post("/api/v1/requests", data=body, headers=headers)
    assert response.status_code == status
    assert response.content_type == "application/problem+json"
    assert response.json["detail"].startswith(detail)
    assert snapshot(db) == before


@pytest.mark.parametrize("form, body, message", [
    ({"note": "y" * 281}, {"note": "y" * 281}, "Keep the note to one line, under 280 characters."),
    ({"location_text": "x" * 201}, {"location_text": "x" * 201}, "Keep the location under 200 characters."),
    ({"lat": "91", "lon": "0"}, {"lat": 91, "lon": 0}, "Latitude must be between -90 and 90."),
])
def test_the_button_the_console_and_the_api_refuse_a_request_in_the_same_words(app, db, client, officer, dispatcher,
                                                                               districts, form, body, message):
    headers = api_key(app, db)
    button = client.post("/requests", data={"location_text": "12 Invented Row", **form})
    console = dispatcher.post("/dispatch", data={**CALL, **form})
    api = client.post("/api/v1/requests", json={**CALL, **body}, headers=headers)
    # The officer's page answers a malformed value 400; the console and the API answer every refusal 422.
    assert (button.status_code, console.status_code, api.status_code) == (400, 422, 422)
    assert message in button.get_data(as_text=True) and message in console.get_data(as_text=True)
    assert api.json["detail"] == message


def test_cad_reads_lists_and_cancels_a_request(app, db, client, districts):
    headers = api_key(app, db)
    request_id = created_id(client.post("/api/v1/requests", json=CALL, headers=headers))
    assert [r["id"] for r in client.get("/api/v1/requests", headers=headers).json["requests"]] == [request_id]
    cancelled = client.post(f"/api/v1/requests/{request_id}/cancel", json={"reason": "person_left"}, headers=headers)
    assert cancelled.json["state"] == "cancelled" and cancelled.json["cancel_reason"] == "person_left"
    assert client.get("/api/v1/requests", headers=headers).json["requests"] == []
    again = client.post(f"/api/v1/requests/{request_id}/cancel", json={"reason": "person_left"}, headers=headers)
    assert again.status_code == 409 and again.json["detail"] == "This request is already cancelled."


# ---- Webhooks ----

def add_endpoint(login, make_user, url, **fields):
    make_user("coord.kim", "coordinator")
    coordinator = login("coord.kim")
    response = coordinator.post("/webhooks", data={"url": url, "events": ["requested", "accepted", "resolved"], **fields})
    assert response.status_code == 201, response.get_data(as_text=True)
    page = response.get_data(as_text=True)
    secret = page.split("<code data-secret>")[1].split("</code>")[0]
    return coordinator, secret


def test_the_whole_loop_from_cad_to_accepted_webhook(app, db, client, districts, specialist, push_service, login,
                                                     make_user, webhook_receiver, worker):
    coordinator, secret = add_endpoint(login, make_user, webhook_receiver.url)
    near = specialist("near", offset(1000))
    request_id = created_id(client.post("/api/v1/requests", json={**CALL, "lat": SCENE[0], "lon": SCENE[1]},
                                        headers=api_key(app, db)))
    worker.run_once()
    assert push_service.wait_for(1)
    assert login("near").post(f"/requests/{request_id}/accept").status_code == 303
    worker.run_once()
    deliveries = webhook_receiver.wait_for(2)
    verifier = Webhook(secret)
    payloads = [verifier.verify(body, headers) for headers, body, _ in deliveries]  # the reference library checks
    assert [p["type"] for p in payloads] == ["request.requested", "request.accepted"]
    accepted = payloads[1]["data"]
    assert accepted["id"] == request_id and accepted["cad_incident"] == "2026-118842"
    assert accepted["assignee_unit"] == "CIT-near" and accepted["state"] == "accepted"
    assert "note" not in accepted  # not configured for notes
    assert alerted(db, request_id) == [near]
    page = coordinator.get("/webhooks/1").get_data(as_text=True)
    assert page.count("<td>sent</td>") == 2


def test_a_tampered_webhook_fails_the_reference_check(app, db, client, districts, login, make_user, webhook_receiver, worker):
    from standardwebhooks.webhooks import WebhookVerificationError

    _, secret = add_endpoint(login, make_user, webhook_receiver.url)
    client.post("/api/v1/requests", json=CALL, headers=api_key(app, db))
    worker.run_once()
    [(headers, body, _)] = webhook_receiver.wait_for(1)
    with pytest.raises(WebhookVerificationError):
        Webhook(secret).verify(body.replace(b"2026-118842", b"2026-000000"), headers)


def test_rotating_the_secret_signs_with_both_through_the_overlap_then_the_new_one_alone(
        app, db, client, districts, login, make_user, webhook_receiver, worker, clock):
    from standardwebhooks.webhooks import WebhookVerificationError

    coordinator, old_secret = add_endpoint(login, make_user, webhook_receiver.url)
    rotated = coordinator.post("/webhooks/1/rotate")
    assert rotated.status_code == 200
    new_secret = rotated.get_data(as_text=True).split("<code data-secret>")[1].split("</code>")[0]
    assert new_secret.startswith("whsec_") and new_secret != old_secret
    assert new_secret not in coordinator.get("/webhooks/1").get_data(as_text=True)  # shown once
    assert ("webhook_secret_rotated", "webhook 1") in [(r["action"], r["subject"]) for r in db.query("SELECT * FROM audit_log")]
    key = api_key(app, db)
    client.post("/api/v1/requests", json=CALL, headers=key)
    worker.run_once()
    [(headers, body, _)] = webhook_receiver.wait_for(1)
    # During the overlap both secrets sign: a receiver holding either accepts the message.
    assert len({k.lower(): v for k, v in headers.items()}["webhook-signature"].split(" ")) == 2
    for secret in (old_secret, new_secret):
        assert Webhook(secret).verify(body, headers)["type"] == "request.requested"
    clock.advance(app.config["WEBHOOK_SECRET_OVERLAP_HOURS"] * 3600 + 1)
    client.post("/api/v1/requests", json={**CALL, "cad_incident": "2026-118843"}, headers=key)
    worker.run_once()
    (headers, body, _) = webhook_receiver.wait_for(2)[1]
    assert Webhook(new_secret).verify(body, headers)["data"]["cad_incident"] == "2026-118843"
    with pytest.raises(WebhookVerificationError):
        Webhook(old_secret).verify(body, headers)


def test_purge_forgets_the_exact_place_webhook_deliveries_carried(app, db, client, districts, login, make_user,
                                                                  webhook_receiver, worker, clock):
    add_endpoint(login, make_user, webhook_receiver.url)
    key = api_key(app, db)
    old = created_id(client.post("/api/v1/requests", json={"cad_incident": "2026-1", "lat": 35.123456,
                                                           "lon": -90.054321}, headers=key))
    client.post(f"/api/v1/requests/{old}/cancel", json={"reason": "person_left"}, headers=key)
    worker.run_once()
    clock.advance(181 * 86400)
    fresh = created_id(client.post("/api/v1/requests", json={"cad_incident": "2026-2", "lat": 35.654321,
                                                             "lon": -90.012345}, headers=key))
    worker.run_once()
    assert app.test_cli_runner().invoke(args=["purge", "--older-than", "180d"]).exit_code == 0
    kept = {r["request_id"]: json.loads(r["payload"])["data"] for r in db.query("SELECT * FROM webhook_deliveries")}
    assert (kept[old]["lat"], kept[old]["lon"]) == (35.12, -90.05)
    assert (kept[fresh]["lat"], kept[fresh]["lon"]) == (35.654321, -90.012345)  # still open: untouched
    assert "35.123456" not in str(list(db.query("SELECT payload FROM webhook_deliveries")))


def test_notes_go_only_to_endpoints_configured_for_them(app, db, client, districts, login, make_user, webhook_receiver, worker):
    _, secret = add_endpoint(login, make_user, webhook_receiver.url, include_notes="1")
    client.post("/api/v1/requests", json=CALL, headers=api_key(app, db))
    worker.run_once()
    [(headers, body, _)] = webhook_receiver.wait_for(1)
    assert Webhook(secret).verify(body, headers)["data"]["note"] == "Caller's son"
    # What is kept of the delivery holds no note, so retention (`purge`) needs no second place to clear.
    assert "Caller" not in one(db, "SELECT payload FROM webhook_deliveries")["payload"]


def test_a_failing_endpoint_is_retried_with_backoff_up_to_a_cap(app, db, client, districts, login, make_user,
                                                               webhook_receiver, worker, clock):
    from fieldapp.delivery import webhooks

    add_endpoint(login, make_user, webhook_receiver.url)
    webhook_receiver.answer(*[500] * webhooks.MAX_ATTEMPTS)
    client.post("/api/v1/requests", json=CALL, headers=api_key(app, db))
    worker.run_once()
    row = one(db, "SELECT * FROM webhook_deliveries")
    assert (row["state"], row["attempts"], row["last_status"]) == ("pending", 1, 500)
    assert row["next_attempt_at"] > clock()
    for _ in range(webhooks.MAX_ATTEMPTS):
        clock.advance(webhooks.BACKOFF_MAX_S)
        worker.run_once()
    row = one(db, "SELECT * FROM webhook_deliveries")
    assert (row["state"], row["attempts"]) == ("failed", webhooks.MAX_ATTEMPTS)


@pytest.mark.parametrize("url, detail", [
    ("http://cad.example.org/hooks", "must use https"),
    ("https://10.1.2.3/hooks", "private or reserved address"),
    ("https://127.0.0.2/hooks", "private or reserved address"),
    ("https://localhost/hooks", "private or reserved address"),
    ("https://user:pw@cad.example.org/hooks", "without a user name"),
])
def test_webhook_endpoints_follow_the_push_ssrf_rules(app, db, make_user, login, url, detail):
    make_user("coord.kim", "coordinator")
    response = login("coord.kim").post("/webhooks", data={"url": url, "events": ["requested"]})
    assert response.status_code == 400 and detail in response.get_data(as_text=True)
    assert one(db, "SELECT COUNT(*) AS n FROM webhook_endpoints")["n"] == 0


def test_a_name_that_resolves_to_a_private_address_is_refused():
    from fieldapp.delivery.webhook_endpoints import url_refusal

    def resolve(host, port, proto):
        return [(2, 1, 6, "", ("192.168.1.20", port))]

    assert "private or reserved" in url_refusal("https://cad.example.org/hooks", {}, resolve)


@pytest.mark.parametrize("address", [
    "::127.0.0.1",          # IPv4-compatible
    "::ffff:127.0.0.1",     # IPv4-mapped
    "64:ff9b::7f00:1",      # NAT64, well-known prefix
    "64:ff9b:1::a00:1",     # NAT64, local-use prefix, to 10.0.0.1
    "2002:7f00:1::1",       # 6to4 of 127.0.0.1
    "2002:a9fe:a9fe::1",    # 6to4 of 169.254.169.254, the cloud metadata address
    "224.0.0.1",            # multicast
    "ff02::1",              # IPv6 multicast
])
def test_loopback_and_private_addresses_hidden_in_ipv6_forms_and_multicast_are_refused(app, db, make_user, login,
                                                                                     address):
    # Security review 2026-12-07, F8: each of these was saved as an endpoint before.
    make_user("coord.kim", "coordinator")
    host = f"[{address}]" if ":" in address else address
    response = login("coord.kim").post("/webhooks", data={"url": f"https://{host}/hooks", "events": ["requested"]})
    assert response.status_code == 400 and "private or reserved" in response.get_data(as_text=True)
    assert one(db, "SELECT COUNT(*) AS n FROM webhook_endpoints")["n"] == 0


@pytest.mark.parametrize("address", ["8.8.8.8", "2606:4700:4700::1111", "64:ff9b::808:808", "2002:808:808::1"])
def test_public_addresses_stay_allowed_in_any_form(address):
    from fieldapp.delivery.url_safety import is_public

    assert is_public(address)


def test_upgrade_lets_an_existing_database_hold_dispatchers(tmp_path, monkeypatch):
    import fieldapp.store.migrations
    from fieldapp.store.db import connect, migrate
    from fieldapp.store.migrations import migrations

    db = connect(tmp_path / "old.db")
    # Rows as an older release wrote them, in SQL: today's functions write today's columns.
    with monkeypatch.context() as old:
        old.setattr(fieldapp.store.migrations, "_ROLES", ("officer", "cit", "supervisor", "coordinator"))  # before issue 16
        migrations.apply(db, stop_before=["m018_dispatch"])
    db.execute("INSERT INTO users (id, username, password_hash, role, display_name, created_at) VALUES (1, 'a', 'x', 'officer', 'A', 0)")
    db.execute("INSERT INTO cit_requests (id, requester_id, state, created_at, policy, updated_at) VALUES (7, 1, 'requested', 0, '{}', 0)")
    db.conn.commit()
    with pytest.raises(Exception, match="CHECK"):
        db.execute("INSERT INTO users (username, password_hash, role, display_name, created_at) VALUES ('d', 'x', 'dispatcher', 'D', 0)")
    migrate(db)
    db.execute("INSERT INTO users (username, password_hash, role, display_name, created_at) VALUES ('d', 'x', 'dispatcher', 'D', 0)")
    assert [r["id"] for r in db.query("SELECT id FROM cit_requests")] == [7]
    assert db.execute("PRAGMA foreign_key_check").fetchall() == []
    with pytest.raises(Exception, match="CHECK"):
        db.execute("INSERT INTO users (username, password_hash, role, display_name, created_at) VALUES ('x', 'x', 'chief', 'X', 0)")


def test_a_dispatcher_lands_on_the_dispatch_page(dispatcher, districts):
    response = dispatcher.get("/")
    assert response.status_code == 302 and response.headers["Location"] == "/dispatch"
    page = dispatcher.get("/dispatch").get_data(as_text=True)
    assert "CAD incident number" in page and "<option>North</option>" in page


def test_the_report_csv_counts_requests_from_dispatch(dispatcher, districts, make_user, login):
    dispatcher.post("/dispatch", data=CALL)
    make_user("coord.kim", "coordinator")
    csv_text = login("coord.kim").get("/program/reports.csv?by=month").get_data(as_text=True)
    header, *rows = [line.split(",") for line in csv_text.strip().splitlines()]
    assert rows[-1][header.index("from_dispatch")] == "1"


@pytest.mark.parametrize("args, message", [
    (["county cad", "--scopes", "requests:read"], "Name the key with"),
    (["county-cad", "--scopes", "requests:delete"], "Scopes must be some of"),
])
def test_a_bad_key_name_or_scope_is_refused_and_nothing_stored(app, db, args, message):
    result = app.test_cli_runner().invoke(args=["api-keys", "create", *args])
    assert result.exit_code != 0 and message in result.output
    assert one(db, "SELECT COUNT(*) AS n FROM api_keys")["n"] == 0
