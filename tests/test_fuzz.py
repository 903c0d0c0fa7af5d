"""Property-based: whatever a client sends, the answer is a 2xx/3xx or a clear 4xx, never a 500,
and a rejected input changes nothing."""
import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from tests.helpers import PASSWORD, ask, offset

SETTINGS = settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
junk_text = st.text(max_size=300) | st.sampled_from(["", " ", "0", "-1", "1e309", "nan", "NaN", "inf", "null", "<b>x</b>", "\x00"])
number_ish = st.one_of(st.floats(allow_nan=True, allow_infinity=True).map(str), st.integers().map(str), junk_text)
json_value = st.recursive(
    st.none() | st.booleans() | st.floats(allow_nan=False) | st.integers() | st.text(max_size=50),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=10), inner, max_size=4),
    max_leaves=10,
)
TABLES = ("users", "duty", "push_subscriptions", "cit_requests", "request_events", "alerts", "outbox")


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
@given(body=json_value)
def test_duty_location_json(cit, db, body):
    before = state(db)
    check(cit.post("/duty/location", json=body), db, before)


@SETTINGS
@given(body=json_value | st.fixed_dictionaries({"endpoint": junk_text, "keys": st.dictionaries(st.sampled_from(["p256dh", "auth"]), junk_text)}))
def test_push_subscription_json(cit, db, body):
    before = state(db)
    check(cit.post("/push/subscriptions", json=body), db, before)
    check(cit.delete("/push/subscriptions", json=body), db, state(db))


@SETTINGS
@given(username=junk_text.filter(lambda s: "/" not in s and s.strip()), token=junk_text, body=json_value)
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
