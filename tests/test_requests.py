"""Request CIT: one tap, the nearest specialists alerted, and the scene tracked to the end."""
import json
import threading

import pytest

from fieldapp.districts import save_centre
from fieldapp.requests import domain as flow
from fieldapp.identity.accounts import user_by_id, user_by_username
from fieldapp.store.db import connect, one
from fieldapp.duty.devices import save_subscription
from fieldapp.program.roster import set_active
from fieldapp.identity.sessions import User
from tests.helpers import SCENE, alerted, ask, events, offset, snapshot


def user(db, user_id):
    return User(one(db, "SELECT * FROM users WHERE id = ?", [user_id]))


@pytest.fixture
def five_specialists(specialist):
    """Specialists 1, 2, 4, 8 km away, one off duty at 0.5 km, one 20 km away."""
    return {
        "near": specialist("near", offset(1000)),
        "two": specialist("two", offset(-2000)),
        "four": specialist("four", offset(0, 4000)),
        "eight": specialist("eight", offset(8000)),
        "resting": specialist("resting", offset(500), on_duty=False),
        "far": specialist("far", offset(20_000)),
    }


def test_request_alerts_the_three_nearest_on_duty_specialists(client, officer, db, five_specialists):
    request_id = ask(client)
    s = five_specialists
    assert alerted(db, request_id) == [s["near"], s["two"], s["four"]]
    assert one(db, "SELECT COUNT(*) AS n FROM outbox WHERE request_id = ?", [request_id])["n"] == 3


def test_requester_sees_how_many_were_alerted_and_the_nearest(client, officer, five_specialists):
    html = client.get(f"/requests/{ask(client)}").get_data(as_text=True)
    assert "3 CIT officers alerted; the nearest is 1.0 km away." in html


def test_requester_is_never_alerted(app, specialist, login, db):
    me = specialist("self", SCENE)
    other = specialist("other", offset(3000))
    request_id = ask(login("self"))
    assert alerted(db, request_id) == [other]
    assert me not in alerted(db, request_id)


def test_stale_position_stands_in_as_the_district_centre(client, officer, specialist, db, clock):
    # Last seen 30 km away 20 minutes ago, but on duty in the district around the scene.
    moved = specialist("moved", offset(30_000), district="Central")
    clock.advance(20 * 60)
    request_id = ask(client)
    assert alerted(db, request_id) == [moved]
    assert one(db, "SELECT distance_m FROM alerts WHERE request_id = ?", [request_id])["distance_m"] < 1


def test_fresh_position_outside_the_radius_is_not_alerted(client, officer, specialist, db):
    specialist("distant", offset(16_000))
    request_id = ask(client)
    assert alerted(db, request_id) == []
    assert "no_specialists" in events(db, request_id)


def test_push_is_encrypted_and_the_stand_in_decrypts_it(client, officer, specialist, worker, push_service):
    specialist("near", offset(1200))
    request_id = ask(client, note="Pat Example says her brother is upset", location_text="12 Invented Lane")
    worker.run_once()
    [delivery] = push_service.wait_for(1)
    assert delivery.payload["request_id"] == request_id
    assert delivery.payload["title"] == "CIT requested · 1.2 km"
    assert delivery.payload["url"] == f"/requests/{request_id}"
    assert delivery.headers["ttl"] == "300"
    assert delivery.headers["urgency"] == "high"
    assert delivery.headers["topic"] == f"cit-request-{request_id}"
    assert delivery.claims["sub"].startswith("mailto:")


def test_push_payload_carries_no_names_notes_or_addresses(client, officer, specialist, worker, push_service):
    specialist("near", offset(1200))
    ask(client, note="Pat Example is upset", location_text="12 Invented Lane")
    worker.run_once()
    [delivery] = push_service.wait_for(1)
    # The receipt token is random: left out of the search so it never matches a name by chance.
    text = json.dumps({k: v for k, v in delivery.payload.items() if k != "receipt"})
    for private in ("Pat", "Example", "Invented", "Lane", "Kim Lee", "ofc.lee"):
        assert private not in text
    assert set(delivery.payload) == {"kind", "request_id", "distance_m", "created_at", "title", "body", "url", "topic",
                                     "drill", "receipt"}


def test_every_device_of_a_specialist_is_alerted(client, officer, specialist, worker, push_service):
    specialist("near", offset(800), devices=2)
    ask(client)
    worker.run_once()
    assert len({d.endpoint for d in push_service.wait_for(2)}) == 2


def test_location_denied_the_typed_place_still_creates_the_request(client, officer, specialist, db):
    near = specialist("near", offset(800))
    request_id = ask(client, position=None, location_text="Corner of Invented St and Example Ave")
    row = flow.get_request(db, request_id)
    assert row["lat"] is None and row["location_text"].startswith("Corner")
    assert alerted(db, request_id) == [near]


def test_no_location_and_no_typed_place_asks_where_and_creates_nothing(client, officer, db):
    response = client.post("/requests", data={})
    assert response.status_code == 422
    assert "Type where you are" in response.get_data(as_text=True)
    assert one(db, "SELECT COUNT(*) AS n FROM cit_requests")["n"] == 0


def test_same_device_id_twice_creates_one_request(client, officer, db):
    first = ask(client, client_id="3f1c9a70-1111-4a2b-9c3d-000000000001")
    second = ask(client, client_id="3f1c9a70-1111-4a2b-9c3d-000000000001")
    assert first == second
    assert one(db, "SELECT COUNT(*) AS n FROM cit_requests")["n"] == 1


def test_checklist_marks_go_with_the_request_as_item_texts(client, officer, db):
    marks = json.dumps({"psychosis": {"ids": ["bogus-id"]}, "no-such-topic": {"ids": ["x"]}})
    request_id = ask(client, observations=marks)
    assert json.loads(flow.get_request(db, request_id)["observations"]) == []
    from fieldapp.content import load_topics
    from pathlib import Path

    item = load_topics([Path(__file__).parent.parent / "content"])["psychosis"].items[0]
    request_id = ask(client, different_scene="1", observations=json.dumps({"psychosis": {"ids": [item["id"]]}}))
    assert json.loads(flow.get_request(db, request_id)["observations"]) == [
        {"topic": "Psychosis", "item": item["text"], "sign": "risk"}
    ]


@pytest.fixture
def fixture_cards(app_config):
    """The test fixtures' cards as the agency's own: `hearing-things` has a protective item."""
    from pathlib import Path

    app_config["CONTENT_DIRS"] = str(Path(__file__).parent / "content_fixtures" / "good")


def test_specialist_sees_risk_and_protective_marks_apart(fixture_cards, client, officer, specialist, login, db):
    specialist("cit.ash", offset(1000))
    marks = {"hearing-things": {"ids": ["talks-to-someone-who-is-not-there", "has-someone-they-trust-with-them"]}}
    request_id = ask(client, observations=json.dumps(marks))
    assert [o["sign"] for o in json.loads(flow.get_request(db, request_id)["observations"])] == ["risk", "protective"]
    html = login("cit.ash").get(f"/requests/{request_id}").get_data(as_text=True)
    risks = html.index("<h3>Risk signs</h3>")
    protective = html.index("<h3>Protective signs</h3>")
    assert risks < html.index("Talks to someone who is not there") < protective < html.index("Has someone they trust with them")


def test_escalates_after_60_seconds_without_accept(client, officer, db, clock, worker, five_specialists, make_user):
    make_user("sgt.diaz", "supervisor")
    request_id = ask(client)
    clock.advance(59)
    worker.run_once()
    assert "escalated" not in events(db, request_id)
    clock.advance(2)
    worker.run_once()
    s = five_specialists
    assert alerted(db, request_id) == [s["near"], s["two"], s["four"], s["eight"]]
    assert events(db, request_id)[-2:] == ["escalated", "supervisors_alerted"]


def test_after_180_seconds_every_specialist_is_alerted_and_it_is_unanswered(client, officer, db, clock, worker, five_specialists):
    request_id = ask(client)
    clock.advance(61)
    worker.run_once()
    clock.advance(120)
    worker.run_once()
    s = five_specialists
    assert set(alerted(db, request_id)) == {s["near"], s["two"], s["four"], s["eight"], s["far"]}
    assert flow.get_request(db, request_id)["unanswered"] == 1
    assert "unanswered" in events(db, request_id)


def test_escalation_policy_is_stored_with_the_request(app, client, officer, db, clock, worker, five_specialists):
    request_id = ask(client)
    app.config["ESCALATE_AFTER_S"] = 3600  # a later policy change must not delay this request
    clock.advance(61)
    worker.run_once()
    assert "escalated" in events(db, request_id)


def test_no_specialist_on_duty_alerts_supervisors_at_once_and_says_so(client, officer, db, make_user, specialist, worker, push_service, login):
    sgt = make_user("sgt.diaz", "supervisor")
    sub = push_service.new_subscription()
    login("sgt.diaz").post("/push/subscriptions", json=sub)
    request_id = ask(client)
    assert "no_specialists" in events(db, request_id)
    # At once: queued with the request itself, for the supervisor and no one else.
    assert [r["user_id"] for r in db.query("SELECT user_id FROM outbox WHERE request_id = ?", [request_id])] == [sgt]
    worker.run_once()
    [delivery] = push_service.wait_for(1)
    assert delivery.endpoint == sub["endpoint"]
    assert delivery.payload["kind"] == "no_specialists" and delivery.payload["title"] == "CIT request needs a supervisor"
    html = client.get(f"/requests/{request_id}").get_data(as_text=True)
    assert "No CIT officer could be alerted." in html


def test_second_accept_is_told_who_has_it(client, officer, specialist, login, db):
    specialist("near", offset(1000))
    specialist("two", offset(2000))
    request_id = ask(client)
    assert login("near").post(f"/requests/{request_id}/accept").status_code == 303
    late = login("two").post(f"/requests/{request_id}/accept")
    assert late.status_code == 409
    assert "Ofc. Near (CIT) has already accepted this request." in late.get_data(as_text=True)


def test_accept_race_has_exactly_one_winner(app, client, officer, specialist, db):
    ids = [specialist(f"racer{n}", offset(1000 + n)) for n in range(3)]
    request_id = ask(client)
    results, barrier = {}, threading.Barrier(3)

    def accept(user_id):
        conn = connect(app.config["DATABASE"])
        with app.app_context():
            barrier.wait()
            try:
                flow.move(conn, request_id, "accept", user(conn, user_id))
                results[user_id] = "won"
            except Exception as e:  # noqa: BLE001 — the losers' exception is the point
                results[user_id] = type(e).__name__
        conn.close()

    threads = [threading.Thread(target=accept, args=(i,)) for i in ids]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(results.values()) == ["Conflict", "Conflict", "won"]
    winner = next(i for i, r in results.items() if r == "won")
    assert flow.get_request(db, request_id)["assigned_id"] == winner
    assert events(db, request_id).count("accepted") == 1


def test_whole_loop_keeps_a_timeline_of_who_did_what(client, officer, specialist, login, db, clock):
    specialist("near", offset(1500))
    cit = login("near")
    request_id = ask(client)
    for who, action, data in [
        (cit, "accept", {}),
        (cit, "arrive", {}),
        (client, "stabilise", {}),
        (cit, "resolve", {"disposition": "voluntary_transport", "force_level": "verbal", "referral": "Peer support"}),
    ]:
        clock.advance(30)
        assert who.post(f"/requests/{request_id}/{action}", data=data).status_code == 303, action
    timeline = flow.request_timeline(db, request_id)
    assert [e["event"] for e in timeline if e["actor"]] == ["requested", "accepted", "on_scene", "stabilised", "resolved"]
    assert [e["at"] - timeline[0]["at"] for e in timeline if e["actor"]] == [0, 30, 60, 90, 120]
    assert "1.5 km away" in next(e["detail"] for e in timeline if e["event"] == "accepted")
    row = flow.get_request(db, request_id)
    assert row["state"] == "resolved" and row["disposition"] == "voluntary_transport"
    assert (row["force_used"], row["officer_injured"], row["person_injured"], row["referral"]) == (0, 0, 0, "Peer support")


def test_requester_sees_who_is_coming(client, officer, specialist, login):
    specialist("near", offset(1500))
    request_id = ask(client)
    login("near").post(f"/requests/{request_id}/accept")
    html = client.get(f"/requests/{request_id}").get_data(as_text=True)
    assert "CIT officer en route" in html and "Ofc. Near (CIT)" in html and "CIT-near" in html
    assert "was 1.5 km away" in html


def test_specialist_sees_where_to_go_and_what_is_waiting(client, officer, specialist, login):
    specialist("near", offset(-1500))
    request_id = ask(client, note="Shouting, no weapon seen", weapon="1", location_text="Invented Park, east gate")
    html = login("near").get(f"/requests/{request_id}").get_data(as_text=True)
    assert "1.5 km N of you" in html
    # The test client is no phone: Navigate opens the agency's web map (tests/test_maps.py has each device's).
    assert 'href="https://www.google.com/maps/dir/?api=1&amp;destination=35.149500,-90.049000"' in html
    assert "Invented Park, east gate" in html and "Ofc. Kim Lee" in html and "1-Adam-12" in html
    assert "Weapon involved" in html and "Shouting, no weapon seen" in html
    assert ">Accept</button>" in html and ">Decline</button>" in html


def test_decline_alerts_the_next_specialist_at_once(client, officer, db, login, five_specialists):
    request_id = ask(client)
    response = login("near").post(f"/requests/{request_id}/decline", data={"reason": "committed"})
    assert response.status_code == 303
    assert five_specialists["eight"] in alerted(db, request_id)
    assert one(db, "SELECT decline_reason FROM alerts WHERE user_id = ?", [five_specialists["near"]])["decline_reason"] == "committed"


def test_waiting_requester_sees_the_stabilisation_prompts(client, officer):
    html = client.get(f"/requests/{ask(client)}").get_data(as_text=True)
    assert "Until CIT arrives" in html and "/reference/scene-stabilisation" in html


def test_waiting_requester_sees_the_stabilisation_cards_first_action_above_its_items(fixture_cards, app, client, officer):
    app.config["STABILISATION_TOPIC"] = "hearing-things"
    html = client.get(f"/requests/{ask(client)}").get_data(as_text=True)
    hold = html.index('id="hold-h"')
    assert hold < html.index("Anyone hurt? A weapon? Step back and call EMS on 911.") < html.index("Talks to someone who is not there")


def test_requester_can_cancel_with_a_reason(client, officer, db):
    request_id = ask(client)
    assert client.post(f"/requests/{request_id}/cancel", data={"reason": "person_left"}).status_code == 303
    row = flow.get_request(db, request_id)
    assert row["state"] == "cancelled" and row["cancel_reason"] == "person_left"


def test_live_fragment_answers_304_when_nothing_changed(client, officer, specialist, login, clock):
    specialist("near", offset(1000))
    request_id = ask(client)
    first = client.get(f"/requests/{request_id}/live", headers={"HX-Request": "true"})
    assert first.status_code == 200 and first.headers["ETag"]
    assert "<html" not in first.get_data(as_text=True)
    clock.advance(50)  # time passing alone changes nothing sent: the page ticks the elapsed time itself
    again = client.get(f"/requests/{request_id}/live", headers={"HX-Request": "true", "If-None-Match": first.headers["ETag"]})
    assert again.status_code == 304
    login("near").post(f"/requests/{request_id}/accept")
    changed = client.get(f"/requests/{request_id}/live", headers={"HX-Request": "true", "If-None-Match": first.headers["ETag"]})
    assert changed.status_code == 200 and "Ofc. Near (CIT)" in changed.get_data(as_text=True)


@pytest.mark.parametrize(
    "data, message",
    [
        ({"lat": "91", "lon": "0"}, "Latitude must be between -90 and 90."),
        ({"lat": "0", "lon": "-181"}, "Longitude must be between -180 and 180."),
        ({"lat": "nan", "lon": "0"}, "Latitude must be between -90 and 90."),
        ({"lat": "north", "lon": "0"}, "Latitude and longitude must be numbers."),
        ({"lat": "1", "lon": "1", "accuracy": "-5"}, "Accuracy must be between 0 and 100000 metres."),
        ({"location_text": "x" * 201}, "Keep the location under 200 characters."),
        ({"location_text": "here", "note": "y" * 281}, "Keep the note to one line"),
        ({"location_text": "here", "client_id": "bad id!"}, "The request id from this device is malformed."),
        ({"location_text": "here", "observations": "{not json"}, "The attached checklist marks are not valid."),
    ],
)
def test_bad_request_input_is_a_clear_4xx_and_changes_nothing(client, officer, db, data, message):
    before = snapshot(db)
    response = client.post("/requests", data=data)
    assert response.status_code == 400
    assert message in response.get_data(as_text=True)
    assert snapshot(db) == before


def test_unknown_request_is_a_404(client, officer):
    response = client.get("/requests/999999")
    assert response.status_code == 404
    assert "There is no CIT request with that number." in response.get_data(as_text=True)
    assert client.post("/requests/999999/accept").status_code == 404


def test_acting_on_a_closed_request_is_a_409_and_changes_nothing(client, officer, db):
    request_id = ask(client)
    client.post(f"/requests/{request_id}/cancel", data={"reason": "sent_in_error"})
    before = snapshot(db)
    response = client.post(f"/requests/{request_id}/stabilise")
    assert response.status_code == 409
    assert "This request is already cancelled." in response.get_data(as_text=True)
    assert snapshot(db) == before


def test_specialist_accepting_twice_is_a_409_and_changes_nothing(client, officer, specialist, login, db):
    specialist("near", offset(1000))
    request_id = ask(client)
    cit = login("near")
    cit.post(f"/requests/{request_id}/accept")
    before = snapshot(db)
    response = cit.post(f"/requests/{request_id}/accept")
    assert response.status_code == 409
    assert "You have already accepted this request." in response.get_data(as_text=True)
    assert snapshot(db) == before


@pytest.mark.parametrize(
    "action, data, status",
    [
        ("resolve", {"disposition": "teleported", "force_level": "none"}, 409),
        ("resolve", {"force_level": "none"}, 409),
        ("cancel", {"reason": ""}, 409),
        ("fly", {}, 404),
    ],
)
def test_unknown_disposition_reason_or_action_is_refused(client, officer, specialist, login, db, action, data, status):
    specialist("near", offset(1000))
    request_id = ask(client)
    login("near").post(f"/requests/{request_id}/accept")
    actor = login("near") if action == "resolve" else client
    before = snapshot(db)
    response = actor.post(f"/requests/{request_id}/{action}", data=data)
    assert response.status_code == status
    assert snapshot(db) == before


def test_someone_elses_request_is_forbidden(client, officer, make_user, login, specialist):
    specialist("unalerted", offset(50_000))
    request_id = ask(client)
    make_user("ofc.other", "officer")
    assert login("ofc.other").get(f"/requests/{request_id}").status_code == 403
    assert login("unalerted").post(f"/requests/{request_id}/accept").status_code == 403


def test_inactive_specialist_on_the_roster_is_never_alerted(app, client, officer, specialist, db):
    benched = specialist("benched", offset(500))
    active = specialist("active", offset(3000))
    with app.app_context():
        set_active(db, user_by_id(db, benched), False)
    assert alerted(db, ask(client)) == [active]


def test_inactive_specialist_cannot_be_assigned_by_hand(app, client, officer, specialist, make_user, login, db):
    benched = specialist("benched", offset(50_000))
    request_id = ask(client)
    with app.app_context():
        set_active(db, user_by_id(db, benched), False)
    make_user("sgt.diaz", "supervisor")
    sgt = login("sgt.diaz")
    assert f'value="{benched}"' not in sgt.get(f"/requests/{request_id}").get_data(as_text=True)
    refused = sgt.post(f"/requests/{request_id}/assign", data={"assignee_id": benched})
    assert refused.status_code == 409
    assert "Choose an active CIT officer to assign." in refused.get_data(as_text=True)
    assert flow.get_request(db, request_id)["state"] == "requested"


def add_far_specialists(db, count, t):
    """`count` on-duty specialists 300 km away: half with fresh positions, half stale in a far district.

    Written in one batch, as bench/seed.py writes its own: create_user and go_on_duty take one
    account at a time, each hashing and committing, and the positions are made stale on purpose.
    """
    first = db.execute("SELECT MAX(id) FROM users").fetchone()[0] + 1
    with db.conn:
        for uid in range(first, first + count):
            lat, lon = offset(300_000 + (uid % 50) * 200, (uid // 50) * 200)
            db.execute("INSERT INTO users (id, username, display_name, role, password_hash, created_at)"
                       " VALUES (?, ?, ?, 'cit', '!', ?)", [uid, f"far{uid}", f"Ofc. Far {uid} (CIT)", t])
            db.execute("INSERT INTO duty (user_id, on_duty, district, since, lat, lon, position_at)"
                       " VALUES (?, 1, 'Elsewhere', ?, ?, ?, ?)", [uid, t, lat, lon, t if uid % 2 else t - 3600])


def test_selection_does_not_grow_with_the_number_of_specialists(app, db, specialist, clock):
    from fieldapp.requests.selection import nearest_specialists

    near = [specialist(f"near{n}", offset(300 * (n + 1))) for n in range(3)]
    # The scene's own district has no one in it; the far specialists' district is outside every box.
    save_centre(db, "Central", *SCENE)
    save_centre(db, "Elsewhere", offset(300_000)[0], SCENE[1])
    steps = []
    db.conn.set_progress_handler(lambda: steps.append(1), 1)  # once per SQLite VM instruction: counted, not timed

    def steps_to_select():
        steps.clear()
        with app.app_context():
            picks = nearest_specialists(db, *SCENE, k=3, radius_m=15_000, exclude=set(), max_age_s=15 * 60)
        assert [u for u, _ in picks] == near
        return len(steps)

    add_far_specialists(db, 10, clock())
    at_ten = steps_to_select()
    add_far_specialists(db, 990, clock())
    at_a_thousand = steps_to_select()
    db.conn.set_progress_handler(None, 1)
    # Walking every specialist would take at least a few steps for each of the 990 more.
    assert at_a_thousand <= at_ten + 50, (at_ten, at_a_thousand)


def test_search_widens_until_it_finds_k(client, officer, specialist, db):
    far = [specialist(f"far{n}", offset(9000 + n * 100)) for n in range(3)]
    near = specialist("near", offset(300))
    assert alerted(db, ask(client)) == [near, *far[:2]]


# ---- One open request per officer, and a rate limit (issue 11, finding 7) ----


def test_second_tap_leads_to_the_open_request(client, officer, db):
    first = client.post("/requests", data={"lat": SCENE[0], "lon": SCENE[1]})
    second = client.post("/requests", data={"lat": SCENE[0], "lon": SCENE[1], "client_id": "another-tap-0002"})
    assert second.status_code == 303
    assert second.headers["Location"] == first.headers["Location"] + "?already=1"
    assert one(db, "SELECT COUNT(*) AS n FROM cit_requests")["n"] == 1
    page = client.get(second.headers["Location"]).get_data(as_text=True)
    assert "tapping again does not send another" in page


def test_a_different_scene_is_a_deliberate_separate_request(client, officer, db):
    first = ask(client)
    home = client.get("/").get_data(as_text=True)
    assert f"Your CIT request #{first}" in home
    assert "This is a different scene" in home and 'name="different_scene" value="1"' in home
    second = ask(client, different_scene="1", location_text="Second scene")
    assert second != first
    assert [r["state"] for r in db.query("SELECT state FROM cit_requests ORDER BY id")] == ["requested", "requested"]


@pytest.fixture
def rate_limit(app):
    app.config.update(REQUEST_RATE_MAX=3, REQUEST_RATE_WINDOW_S=600)


def test_too_many_requests_are_refused_and_supervisors_told_once(app, client, officer, db, make_user, rate_limit, clock):
    sgt = make_user("sgt.diaz", "supervisor")
    with app.app_context():
        save_subscription(db, sgt, "https://fcm.googleapis.com/x", "k", "a")
    made = [ask(client, different_scene="1") for _ in range(3)]
    refused = client.post("/requests", data={"lat": SCENE[0], "lon": SCENE[1], "different_scene": "1"})
    assert refused.status_code == 429
    assert "You have made 3 CIT requests in the last 10 minutes, so this one was not sent." in refused.get_data(as_text=True)
    assert one(db, "SELECT COUNT(*) AS n FROM cit_requests")["n"] == 3
    pushed = [json.loads(r["payload"]) for r in db.query("SELECT payload FROM outbox WHERE user_id = ?", [sgt])]
    assert [p["kind"] for p in pushed].count("rate_limited") == 1
    assert "rate_limited" in events(db, made[-1])
    # Tapping on does not page the supervisors again.
    assert client.post("/requests", data={"lat": SCENE[0], "lon": SCENE[1], "different_scene": "1"}).status_code == 429
    assert [json.loads(r["payload"])["kind"] for r in db.query("SELECT payload FROM outbox WHERE user_id = ?", [sgt])].count("rate_limited") == 1
    clock.advance(601)
    ask(client, different_scene="1")
    assert one(db, "SELECT COUNT(*) AS n FROM cit_requests")["n"] == 4


def test_parallel_requests_cannot_slip_past_the_rate_limit(app, officer, db, rate_limit):
    statuses, barrier = [], threading.Barrier(10)
    # Ten devices signed in one after another (parallel sign-ins of one account are a burst the
    # sign-in throttle answers on its own), then ten taps at once.
    clients = [app.test_client() for _ in range(10)]
    for client in clients:
        assert client.post("/login", data={"username": "ofc.lee", "password": "correct horse battery"}).status_code == 302

    def tap(n):
        barrier.wait()
        statuses.append(clients[n].post("/requests", data={"lat": SCENE[0], "lon": SCENE[1], "different_scene": "1",
                                                           "client_id": f"parallel-tap-{n:04d}"}).status_code)

    threads = [threading.Thread(target=tap, args=(n,)) for n in range(10)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(statuses) == [303] * 3 + [429] * 7
    assert one(db, "SELECT COUNT(*) AS n FROM cit_requests")["n"] == 3


# ---- Declines, who sees the scene, and the device's request id (finding 8) ----


def test_specialist_who_declined_cannot_accept(client, officer, specialist, login, db):
    near = specialist("near", offset(1000))
    request_id = ask(client)
    cit = login("near")
    assert cit.post(f"/requests/{request_id}/decline").status_code == 303
    refused = cit.post(f"/requests/{request_id}/accept")
    assert refused.status_code == 403
    assert "You declined this request, so you cannot accept it." in refused.get_data(as_text=True)
    with pytest.raises(Exception, match="403"):
        flow.move(db, request_id, "accept", user(db, near))
    assert flow.get_request(db, request_id)["state"] == "requested"


SCENE_DETAILS = ("Sam Invented has a knife", "35.14950, -90.04900", "555-0142", "Hears voices")


@pytest.fixture
def accepted_scene(client, make_user, specialist, login, db):
    """A request with a note, exact place, phone and a mark, accepted by 'near'; 'two' was alerted too."""
    from fieldapp.content import get_library

    make_user("ofc.lee", "officer", display_name="Ofc. Kim Lee", phone="555-0142")
    client.post("/login", data={"username": "ofc.lee", "password": "correct horse battery"})
    specialist("near", offset(1000))
    specialist("two", offset(2000))
    with client.application.app_context():
        item = get_library().get("psychosis").items[0]
    request_id = ask(client, note="Sam Invented has a knife", observations=json.dumps({"psychosis": {"ids": [item["id"]]}}))
    return request_id, item["text"]


def test_before_accept_every_alerted_specialist_sees_the_scene(accepted_scene, login):
    request_id, mark = accepted_scene
    html = login("two").get(f"/requests/{request_id}").get_data(as_text=True)
    for detail in ("Sam Invented has a knife", "35.14950, -90.04900", "555-0142", mark):
        assert detail in html


def test_after_accept_only_the_assignee_and_supervisors_see_the_scene(accepted_scene, login, make_user):
    request_id, mark = accepted_scene
    near = login("near")
    assert near.post(f"/requests/{request_id}/accept").status_code == 303
    make_user("sgt.diaz", "supervisor")
    for who in ("near", "sgt.diaz"):
        html = login(who).get(f"/requests/{request_id}").get_data(as_text=True)
        assert "Sam Invented has a knife" in html and "35.14950, -90.04900" in html and mark in html, who
    other = login("two")
    for path in (f"/requests/{request_id}", f"/requests/{request_id}/live"):
        response = other.get(path)
        html = response.get_data(as_text=True)
        assert response.status_code == 200 and "CIT officer en route" in html
        for detail in ("Sam Invented has a knife", "35.14950", "555-0142", mark):
            assert detail not in html, (path, detail)
    # After resolve, the same rule.
    near.post(f"/requests/{request_id}/resolve", data={"disposition": "resolved_on_scene", "force_used": "no"})
    html = other.get(f"/requests/{request_id}").get_data(as_text=True)
    assert "Resolved" in html and "Sam Invented has a knife" not in html and "35.14950" not in html
    assert "Sam Invented has a knife" in near.get(f"/requests/{request_id}").get_data(as_text=True)


def test_the_same_device_id_from_another_officer_is_a_request_of_its_own(client, officer, make_user, login, db):
    make_user("ofc.park", "officer")
    mine = ask(client, client_id="same-device-id-0001")
    theirs = ask(login("ofc.park"), client_id="same-device-id-0001")
    assert mine != theirs
    assert [r["requester_id"] for r in db.query("SELECT requester_id FROM cit_requests ORDER BY id")] == [officer, user_by_username(db, "ofc.park")["id"]]


def test_a_request_tapped_under_another_officer_is_refused(client, officer, make_user, login, db):
    # Shared car computer: Ofc. Lee's request, queued after the idle lock, sent once Ofc. Park signed in.
    make_user("ofc.park", "officer")
    refused = login("ofc.park").post("/requests", data={"lat": SCENE[0], "lon": SCENE[1], "note": "Person with a knife",
                                                        "requester_id": str(officer), "client_id": "queued-by-lee-0001"})
    assert refused.status_code == 403
    assert "made on this device by another officer" in refused.get_data(as_text=True)
    assert one(db, "SELECT COUNT(*) AS n FROM cit_requests")["n"] == 0
    # The officer who made it still sends it after signing in again.
    ask(client, requester_id=str(officer), client_id="queued-by-lee-0001")
    assert one(db, "SELECT requester_id FROM cit_requests")["requester_id"] == officer


def test_upgrade_keeps_every_request_and_scopes_device_ids_per_officer(tmp_path):
    from fieldapp.store.db import migrate
    from fieldapp.store.migrations import migrations

    db = connect(tmp_path / "old.db")
    migrations.apply(db, stop_before=["m012_request_limits"])
    # Rows as an older release wrote them, in SQL: today's functions write today's columns.
    db.execute("INSERT INTO users (id, username, password_hash, role, display_name, created_at) VALUES (1, 'a', 'x', 'officer', 'A', 0), (2, 'b', 'x', 'officer', 'B', 0)")
    db.execute("INSERT INTO cit_requests (id, client_id, requester_id, state, created_at, policy, updated_at) VALUES (7, 'device-id-0001', 1, 'requested', 0, '{}', 0)")
    db.execute("INSERT INTO alerts (request_id, user_id, step, at) VALUES (7, 2, 0, 0)")
    db.conn.commit()
    migrate(db)
    assert [r["id"] for r in db.query("SELECT id FROM cit_requests")] == [7]
    assert db.execute("PRAGMA foreign_key_check").fetchall() == []
    assert db.execute("PRAGMA foreign_keys").fetchone()[0] == 1
    db.execute("INSERT INTO cit_requests (client_id, requester_id, state, created_at, policy, updated_at) VALUES ('device-id-0001', 2, 'requested', 0, '{}', 0)")
    with pytest.raises(Exception, match="UNIQUE"):
        db.execute("INSERT INTO cit_requests (client_id, requester_id, state, created_at, policy, updated_at) VALUES ('device-id-0001', 1, 'requested', 0, '{}', 0)")


def test_back_online_from_a_saved_page_the_officer_goes_straight_to_the_request(client, officer):
    # The saved copy sends the officer to the live home; the service worker may have sent the queued tap already.
    assert client.get("/?after_queue=1").status_code == 200  # nothing open: the home screen
    request_id = ask(client)
    response = client.get("/?after_queue=1")
    assert response.status_code == 302 and response.headers["Location"].endswith(f"/requests/{request_id}")
    assert client.get("/").status_code == 200  # an ordinary visit home stays home
