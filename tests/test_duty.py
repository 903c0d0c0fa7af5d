"""Duty: on and off, positions from the phone and from the car, and push subscriptions."""
import pytest

from fieldapp.districts import save_centre
from fieldapp.store.db import one
from tests.helpers import offset


@pytest.fixture
def cit_client(make_user, login):
    make_user("cit.wong", "cit", display_name="Ofc. Lee Wong (CIT)")
    return login("cit.wong")


def duty_row(db):
    return one(db, "SELECT duty.* FROM duty JOIN users u ON u.id = duty.user_id WHERE u.username = 'cit.wong'")


def test_go_on_and_off_duty_with_a_district(cit_client, db):
    save_centre(db, "North", 35.2, -90.03)
    html = cit_client.post("/duty/on", data={"district": "North"}).get_data(as_text=True)
    assert "On duty" in html and "North" in html and "Go off duty" in html
    assert duty_row(db)["on_duty"] == 1 and duty_row(db)["district"] == "North"
    assert "Go on duty" in cit_client.post("/duty/off").get_data(as_text=True)
    assert duty_row(db)["on_duty"] == 0


def test_duty_buttons_answer_htmx_with_the_panel_only(cit_client):
    html = cit_client.post("/duty/on", headers={"HX-Request": "true"}).get_data(as_text=True)
    assert html.lstrip().startswith('<section id="duty-panel"')


def test_unknown_district_is_refused(cit_client, db):
    response = cit_client.post("/duty/on", data={"district": "Atlantis"})
    assert response.status_code == 400 and "There is no district called &#39;Atlantis&#39;" in response.get_data(as_text=True)
    assert duty_row(db) is None


def test_position_keeps_its_time_and_accuracy(cit_client, db, clock):
    assert cit_client.post("/duty/location", json={"lat": 35.1, "lon": -90.0, "accuracy": 15}).status_code == 200
    row = duty_row(db)
    assert (row["lat"], row["lon"], row["accuracy_m"], row["position_at"], row["position_source"]) == (35.1, -90.0, 15, clock(), "device")


@pytest.mark.parametrize(
    "body, message",
    [
        ({"lat": 95, "lon": 0}, "Latitude must be between -90 and 90."),
        ({"lat": 0, "lon": 200}, "Longitude must be between -180 and 180."),
        ({"lat": "x", "lon": 0}, "must be numbers"),
        ({"lat": 1, "lon": 1, "accuracy": "far"}, "Accuracy must be a number"),
        ([1, 2], "Send a position"),
    ],
)
def test_bad_positions_are_400_and_change_nothing(cit_client, db, body, message):
    response = cit_client.post("/duty/location", json=body)
    assert response.status_code == 400 and message in response.get_json()["error"]
    assert duty_row(db) is None


def test_officers_cannot_use_duty(client, officer):
    assert client.get("/duty").status_code == 403
    assert client.post("/duty/location", json={"lat": 1, "lon": 1}).status_code == 403


def test_subscription_is_stored_and_can_be_removed(cit_client, push_service, db):
    sub = push_service.new_subscription()
    assert cit_client.post("/push/subscriptions", json=sub).status_code == 201
    assert cit_client.post("/push/subscriptions", json=sub).status_code == 201  # re-subscribing on open is harmless
    assert one(db, "SELECT COUNT(*) AS n FROM push_subscriptions")["n"] == 1
    assert cit_client.delete("/push/subscriptions", json={"endpoint": sub["endpoint"]}).status_code == 200
    assert one(db, "SELECT COUNT(*) AS n FROM push_subscriptions")["n"] == 0
    assert cit_client.delete("/push/subscriptions", json={"endpoint": sub["endpoint"]}).status_code == 404


def test_several_devices_per_user(cit_client, push_service, db):
    for _ in range(3):
        cit_client.post("/push/subscriptions", json=push_service.new_subscription())
    assert one(db, "SELECT COUNT(*) AS n FROM push_subscriptions")["n"] == 3


@pytest.mark.parametrize(
    "endpoint",
    ["https://evil.example.com/push/1", "http://fcm.googleapis.com/fcm/send/1", "ftp://127.0.0.1/x", "http://10.0.0.8/push", "not a url"],
)
def test_push_endpoints_off_the_known_services_are_refused(cit_client, push_service, db, endpoint):
    sub = push_service.new_subscription() | {"endpoint": endpoint}
    response = cit_client.post("/push/subscriptions", json=sub)
    assert response.status_code == 400 and "not on a known push service" in response.get_json()["error"]
    assert one(db, "SELECT COUNT(*) AS n FROM push_subscriptions")["n"] == 0


def test_known_push_service_is_accepted(cit_client, push_service):
    sub = push_service.new_subscription() | {"endpoint": "https://fcm.googleapis.com/fcm/send/abc123"}
    assert cit_client.post("/push/subscriptions", json=sub).status_code == 201


@pytest.mark.parametrize("keys", [{}, {"p256dh": "AAAA", "auth": "AAAA"}, {"p256dh": 5, "auth": None}])
def test_malformed_subscription_keys_are_refused(cit_client, push_service, keys):
    sub = push_service.new_subscription() | {"keys": keys}
    assert cit_client.post("/push/subscriptions", json=sub).status_code == 400


def test_a_p256dh_that_is_not_a_point_on_the_curve_is_refused_at_subscribe(cit_client, push_service, db):
    # Security review 2026-12-07, I1: 65 random bytes starting 0x04 have the shape but are no point on P-256.
    import base64

    off_the_curve = base64.urlsafe_b64encode(b"\x04" + b"\x01" * 64).rstrip(b"=").decode()
    sub = push_service.new_subscription()
    sub["keys"]["p256dh"] = off_the_curve
    response = cit_client.post("/push/subscriptions", json=sub)
    assert response.status_code == 400 and "malformed" in response.get_json()["error"]
    assert one(db, "SELECT COUNT(*) AS n FROM push_subscriptions")["n"] == 0


def test_vapid_key_is_generated_once_and_shown(app):
    first = app.test_cli_runner().invoke(args=["vapid", "show"]).output.strip()
    second = app.test_cli_runner().invoke(args=["vapid", "show"]).output.strip()
    assert first == second and len(first) == 87  # 65 bytes, base64url without padding


def test_vehicle_feed_reports_a_position_with_its_device_token(app, client, make_user, db):
    make_user("cit.car", "cit")
    token = app.test_cli_runner().invoke(args=["units", "token", "cit.car", "--label", "Car 12 MDT"]).output.strip()
    lat, lon = offset(500)
    response = client.post("/api/units/cit.car/location", json={"lat": lat, "lon": lon, "accuracy": 5},
                           headers={"Authorization": f"Bearer {token}"})
    assert response.status_code == 200
    row = one(db, "SELECT * FROM duty")
    assert row["position_source"] == "avl" and row["lat"] == lat
    assert token not in str(list(db.query("SELECT * FROM device_tokens")))


@pytest.mark.parametrize(
    "header, user, status",
    [(None, "cit.car", 401), ("Bearer wrong", "cit.car", 401), ("GOOD", "cit.other", 403)],
)
def test_vehicle_feed_refuses_missing_wrong_or_borrowed_tokens(app, client, make_user, db, header, user, status):
    make_user("cit.car", "cit")
    make_user("cit.other", "cit")
    token = app.test_cli_runner().invoke(args=["units", "token", "cit.car"]).output.strip()
    headers = {"Authorization": f"Bearer {token}" if header == "GOOD" else header} if header else {}
    response = client.post(f"/api/units/{user}/location", json={"lat": 1, "lon": 1}, headers=headers)
    assert response.status_code == status and response.get_json()["error"]
    assert one(db, "SELECT COUNT(*) AS n FROM duty")["n"] == 0


@pytest.mark.parametrize(
    "endpoint",
    [
        "https://127.0.0.1\\@fcm.googleapis.com/x",  # urllib3, which requests connects with, reads host 127.0.0.1
        "https://127.0.0.1:5195\\@fcm.googleapis.com/x",
        "https://someone@fcm.googleapis.com/fcm/send/1",
        "https://fcm.googleapis.com:443/fcm/send/1",
        "https://fcm.googleapis.com:8443/fcm/send/1",
        "https://\u0435vil.fcm.googleapis.com/fcm/send/1",  # a Cyrillic е
        "https://fcm.googleapis.com/fcm/send/1#@127.0.0.1",
    ],
)
def test_push_endpoints_that_could_connect_elsewhere_are_refused(cit_client, push_service, db, endpoint):
    sub = push_service.new_subscription() | {"endpoint": endpoint}
    response = cit_client.post("/push/subscriptions", json=sub)
    assert response.status_code == 400 and "not on a known push service" in response.get_json()["error"]
    assert one(db, "SELECT COUNT(*) AS n FROM push_subscriptions")["n"] == 0


def test_an_endpoint_another_account_holds_is_never_moved(cit_client, make_user, login, push_service, db):
    sub = push_service.new_subscription()
    assert cit_client.post("/push/subscriptions", json=sub).status_code == 201
    make_user("cit.other", "cit")
    thief = push_service.new_subscription()
    response = login("cit.other").post("/push/subscriptions", json=sub | {"keys": thief["keys"]})
    assert response.status_code == 409 and "another account" in response.get_json()["error"]
    row = one(db, "SELECT u.username, s.p256dh FROM push_subscriptions s JOIN users u ON u.id = s.user_id")
    assert row == {"username": "cit.wong", "p256dh": sub["keys"]["p256dh"]}


def test_each_account_holds_at_most_push_max_devices(app, cit_client, push_service, db):
    app.config["PUSH_MAX_DEVICES"] = 2
    first = push_service.new_subscription()
    for sub in (first, push_service.new_subscription()):
        assert cit_client.post("/push/subscriptions", json=sub).status_code == 201
    response = cit_client.post("/push/subscriptions", json=push_service.new_subscription())
    assert response.status_code == 403 and "2 devices" in response.get_json()["error"]
    assert one(db, "SELECT COUNT(*) AS n FROM push_subscriptions")["n"] == 2
    assert cit_client.post("/push/subscriptions", json=first).status_code == 201  # re-subscribing on open still works


def test_turning_off_alerts_on_every_device_makes_room_for_a_new_one(app, cit_client, push_service, db):
    app.config["PUSH_MAX_DEVICES"] = 1
    cit_client.post("/push/subscriptions", json=push_service.new_subscription())
    html = cit_client.post("/duty/devices/forget").get_data(as_text=True)
    assert "Alerts are off on every device." in html and "Alerts on 0 devices." in html
    assert cit_client.post("/push/subscriptions", json=push_service.new_subscription()).status_code == 201


@pytest.mark.parametrize("path", ["/duty/location", "/push/subscriptions"])
def test_json_nested_30000_deep_is_refused_with_400(cit_client, db, path):
    body = "[" * 30_000 + "]" * 30_000
    response = cit_client.post(path, data=body, content_type="application/json")
    assert response.status_code == 400 and "nested too deeply" in response.get_json()["error"]
    assert one(db, "SELECT COUNT(*) AS n FROM push_subscriptions")["n"] == 0 and duty_row(db) is None


def feed(client, token):
    return client.post("/api/units/cit.car/location", json={"lat": 1, "lon": 1}, headers={"Authorization": f"Bearer {token}"})


def test_vehicle_feed_tokens_expire(app, client, make_user, clock):
    make_user("cit.car", "cit")
    token = app.test_cli_runner().invoke(args=["units", "token", "cit.car", "--days", "30"]).output.strip()
    clock.advance(29 * 86400)
    assert feed(client, token).status_code == 200
    clock.advance(2 * 86400)
    response = feed(client, token)
    assert response.status_code == 401 and "expired" in response.get_json()["error"]


def test_an_account_enabled_again_needs_a_new_vehicle_feed_token(app, client, make_user):
    make_user("cit.car", "cit")
    runner = app.test_cli_runner()
    token = runner.invoke(args=["units", "token", "cit.car"]).output.strip()
    runner.invoke(args=["users", "disable", "cit.car"])
    runner.invoke(args=["users", "enable", "cit.car"])
    assert feed(client, token).status_code == 401
    assert feed(client, runner.invoke(args=["units", "token", "cit.car"]).output.strip()).status_code == 200
