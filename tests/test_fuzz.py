"""Property-based: whatever a client sends, the answer is a 2xx/3xx or a clear 4xx, never a 500,
and a rejected input changes nothing."""
import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from tests.helpers import PASSWORD, ask, offset

SETTINGS = settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
junk_text = st.text(max_size=300) | st.sampled_from(["", " ", "0", "-1", "1e309", "nan", "NaN", "inf", "null", "<b>x</b>", "\x00"])
number_ish = st.one_of(st.floats(allow_nan=True, allow_infinity=True).map(str), st.integers().map(str), junk_text)
# Integers far past a float's range (a 400-digit latitude made float() overflow), and
# under Python's 4300-digit limit on turning text into an int.
huge_int = st.integers(min_value=10**300, max_value=10**4000) | st.integers(min_value=-10**4000, max_value=-10**300)
json_scalar = (st.none() | st.booleans() | st.floats() | st.integers() | huge_int | st.text(max_size=50)
               | st.sampled_from(["", "-1", "1e309", "NaN", "\x00", "٠١٢٣٤٥"]))
json_value = st.recursive(
    json_scalar,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=10), inner, max_size=4),
    max_leaves=10,
)
TABLES = ("users", "duty", "push_subscriptions", "cit_requests", "request_events", "alerts", "outbox", "passkeys",
          "alert_receipts", "webhook_deliveries")


def fields_of(*names):
    """A JSON object with some of a route's own fields, each of any JSON type: the body a confused client sends."""
    return st.fixed_dictionaries({}, optional={name: json_value for name in names})


def any_body(*names):
    """Any JSON at all: a value of any type, or an object with the route's fields of any type."""
    return json_value | fields_of(*names)


def state(db):
    return [list(db.query(f"SELECT * FROM {t} ORDER BY rowid")) for t in TABLES]


def check(response, db, before):
    assert response.status_code < 500, response.get_data(as_text=True)[:300]
    if response.status_code >= 400:
        body = response.get_data(as_text=True)
        assert body.strip(), "a refusal must say why"
        assert state(db) == before


@pytest.fixture
def cit(make_user, login):
    """A signed-in CIT officer; hypothesis runs every example of a test against this one."""
    make_user("cit.fuzz", "cit")
    return login("cit.fuzz")


@pytest.fixture
def scene(client, officer, specialist, login):
    specialist("near", offset(1000))
    return {"request_id": ask(client), "cit": login("near")}


@SETTINGS
@given(fields=st.fixed_dictionaries({}, optional={
    k: number_ish if k in ("lat", "lon", "accuracy") else junk_text
    for k in ("lat", "lon", "accuracy", "location_text", "note", "weapon", "medical", "juvenile", "observations", "client_id")
}))
def test_request_form(client, officer, db, fields):
    before = state(db)
    check(client.post("/requests", data=fields), db, before)


@SETTINGS
@given(action=st.sampled_from(["accept", "decline", "arrive", "stabilise", "resolve", "cancel", "assign", "realert"]) | junk_text.filter(lambda s: "/" not in s and s.strip()),
       fields=st.dictionaries(st.sampled_from(["reason", "disposition", "assignee_id", "force_used", "referral", "officer_injured"]), junk_text, max_size=4))
def test_request_actions(scene, db, action, fields):
    before = state(db)
    from urllib.parse import quote

    check(scene["cit"].post(f"/requests/{scene['request_id']}/{quote(action, safe='')}", data=fields), db, before)


@SETTINGS
@given(body=any_body("lat", "lon", "accuracy"))
def test_duty_location_json(cit, db, body):
    before = state(db)
    check(cit.post("/duty/location", json=body), db, before)


@SETTINGS
@given(body=any_body("endpoint", "keys") | st.fixed_dictionaries({"endpoint": junk_text, "keys": any_body("p256dh", "auth")}))
def test_push_subscription_json(cit, db, body):
    before = state(db)
    check(cit.post("/push/subscriptions", json=body), db, before)
    check(cit.delete("/push/subscriptions", json=body), db, state(db))


@SETTINGS
@given(username=junk_text.filter(lambda s: "/" not in s and s.strip()), token=junk_text,
       body=any_body("lat", "lon", "accuracy"))
def test_vehicle_feed(client, db, username, token, body):
    from urllib.parse import quote

    before = state(db)
    headers = {"Authorization": f"Bearer {token}"} if token.isprintable() else {}
    check(client.post(f"/api/units/{quote(username, safe='')}/location", json=body, headers=headers), db, before)


@SETTINGS
@given(username=junk_text, password=junk_text, next_url=junk_text)
def test_login_form(client, db, username, password, next_url):
    check(client.post("/login", data={"username": username, "password": password, "next": next_url}), db, state(db))


@SETTINGS
@given(q=junk_text)
def test_search(client, officer, db, q):
    check(client.get("/reference/search", query_string={"q": q}), db, state(db))


@SETTINGS
@given(district=junk_text)
def test_duty_on(cit, db, district):
    before = state(db)
    check(cit.post("/duty/on", data={"district": district}), db, before)


@SETTINGS
@given(new=junk_text, repeat=junk_text)
def test_change_password_form(client, officer, db, new, repeat):
    assume(new != repeat)  # a change that succeeds would leave the next example the wrong current password
    before = state(db)
    response = client.post("/account/password", data={"current_password": PASSWORD, "new_password": new, "repeat_password": repeat})
    assert response.status_code == 422
    check(response, db, before)


# ---- Every JSON route, with JSON of every type and size (security review 2026-12-07, F7) ----

@pytest.fixture
def unit_token(app, make_user):
    """A vehicle feed's token for the unit 'car.12'."""
    make_user("car.12", "cit")
    return app.test_cli_runner().invoke(args=["units", "token", "car.12"]).output.strip()


@SETTINGS
@given(body=any_body("lat", "lon", "accuracy"))
def test_vehicle_feed_json_with_a_good_token(client, db, unit_token, body):
    before = state(db)
    check(client.post("/api/units/car.12/location", json=body, headers={"Authorization": f"Bearer {unit_token}"}),
          db, before)


@SETTINGS
@given(body=any_body("credential", "name"))
def test_adding_a_passkey_json(cit, db, body):
    before = state(db)
    check(cit.post("/account/security/passkeys", json=body), db, before)


@SETTINGS
@given(body=any_body("credential"))
def test_passkey_sign_in_json(client, db, body):
    before = state(db)
    check(client.post("/login/passkey", json=body), db, before)


@SETTINGS
@given(body=any_body("credential"))
def test_confirming_with_a_passkey_json(cit, db, body):
    before = state(db)
    check(cit.post("/account/confirm/passkey", json=body), db, before)


@pytest.fixture
def sergeant(make_user, login):
    """A signed-in supervisor, whose devices may also take board pushes."""
    make_user("sgt.fuzz", "supervisor")
    return login("sgt.fuzz")


@SETTINGS
@given(body=any_body("endpoint", "keys"))
def test_board_push_subscription_json(sergeant, db, body):
    before = state(db)
    check(sergeant.post("/push/subscriptions/board", json=body), db, before)


@SETTINGS
@given(body=any_body("token", "stage", "request_id"))
def test_delivery_receipt_json(client, db, body):
    before = state(db)
    check(client.post("/requests/receipts", json=body), db, before)


@pytest.fixture
def api_key(app, db):
    """A CAD integration's key with both scopes, and a district to name."""
    from fieldapp.api.keys import create_key

    db["districts"].insert({"name": "North", "lat": 35.2, "lon": -90.0}, pk="name", replace=True)
    # Every example of a test is one key's calls: its limits are not what these tests are about.
    app.config.update(API_READ_LIMIT="100000 per minute", API_WRITE_LIMIT="100000 per minute")
    with app.app_context():
        return {"Authorization": f"Bearer {create_key(db, 'fuzz-cad', ['requests:read', 'requests:write'])}"}


@SETTINGS
@given(body=any_body("cad_incident", "lat", "lon", "location_text", "district", "note", "weapon", "medical", "juvenile")
       | st.fixed_dictionaries({"cad_incident": st.just("F-1"), "lat": json_value, "lon": json_value}))
def test_api_create_json(client, db, api_key, body):
    before = state(db)
    response = client.post("/api/v1/requests", json=body, headers=api_key)
    assert response.status_code < 500, response.get_data(as_text=True)[:300]
    if response.status_code >= 400:
        assert response.get_json()["detail"] and state(db) == before


@SETTINGS
@given(body=any_body("reason"))
def test_api_cancel_json(client, db, api_key, body):
    created = client.post("/api/v1/requests", json={"cad_incident": "F-2", "lat": 35.2, "lon": -90.0}, headers=api_key)
    before = state(db)
    response = client.post(f"/api/v1/requests/{created.get_json()['id']}/cancel", json=body, headers=api_key)
    assert response.status_code < 500, response.get_data(as_text=True)[:300]
    if response.status_code >= 400:
        assert response.get_json()["detail"] and state(db) == before


@pytest.mark.parametrize("field", ["lat", "lon", "accuracy"])
@pytest.mark.parametrize("sign", [1, -1])
def test_a_coordinate_of_hundreds_of_digits_is_a_400(cit, db, field, sign):
    before = state(db)
    response = cit.post("/duty/location", json={"lat": 1, "lon": 1, field: sign * int("9" * 400)})
    assert response.status_code == 400 and state(db) == before


@pytest.mark.parametrize("field", ["lat", "lon"])
def test_an_api_request_at_a_coordinate_of_hundreds_of_digits_is_a_422(client, db, api_key, field):
    before = state(db)
    body = {"cad_incident": "F-4", "lat": 35.2, "lon": -90.0, field: -int("9" * 400)}
    response = client.post("/api/v1/requests", json=body, headers=api_key)
    assert response.status_code == 422 and state(db) == before


@pytest.mark.parametrize("reason", [[], ["other"], {}, {"a": 1}, 5, None, True])
def test_a_cancel_reason_of_the_wrong_type_is_a_422(client, db, api_key, reason):
    created = client.post("/api/v1/requests", json={"cad_incident": "F-3", "lat": 35.2, "lon": -90.0}, headers=api_key)
    before = state(db)
    response = client.post(f"/api/v1/requests/{created.get_json()['id']}/cancel", json={"reason": reason},
                           headers=api_key)
    assert response.status_code == 422 and "reason must be one of" in response.get_json()["detail"]
    assert state(db) == before


@pytest.mark.parametrize("name", [{"a": 1}, ["a"], 5, True])
def test_a_passkey_name_that_is_not_text_is_a_400(cit, db, name):
    before = state(db)
    response = cit.post("/account/security/passkeys", json={"credential": {}, "name": name})
    assert response.status_code == 400 and "name" in response.get_json()["error"] and state(db) == before
