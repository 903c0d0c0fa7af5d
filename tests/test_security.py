"""Trust: who may see what, CSRF, headers, cookies, idle lock-out, audit, retention, backups."""
import re
import sqlite3
import threading
import time
from pathlib import Path

import pytest

from fieldapp import create_app
from fieldapp.store.db import connect, one
from tests.helpers import PASSWORD, FakeClock, add_specialist, add_user, ask, new_instance, offset, signed_in, snapshot
from tests.push_service import StandInPushService

SIGNED_IN = ("officer", "dispatcher", "cit", "supervisor", "coordinator", "clinical_partner")
EVERYONE = SIGNED_IN
# Everyone at work reads the reference; a clinical partner reads the cards only on the content review pages.
AT_WORK = ("officer", "dispatcher", "cit", "supervisor", "coordinator")
REVIEWERS = ("coordinator", "clinical_partner")
# Which roles each endpoint lets in. "public" needs no sign-in; "bearer" takes a device token only;
# "loopback" needs no sign-in from this machine.
ACCESS = {
    "static": "public",
    "auth.login": "public",
    "pwa.manifest": "public",
    "pwa.service_worker": "public",
    "pwa.precache": "public",
    "pwa.offline": "public",
    "auth.logout": "public",  # signing out always works, and lands on the sign-in page
    "auth.change_password": EVERYONE,
    # Single sign-on: 404 unless configured; then the provider decides who it is (tests/test_sso.py).
    "sso.start": "public",
    "sso.callback": "public",
    "home.index": EVERYONE,  # a clinical partner's home is the content review page (a redirect)
    "reference.index": AT_WORK,
    "reference.search": AT_WORK,
    "reference.titles": AT_WORK,
    "reference.topic": AT_WORK,
    "maps.index": AT_WORK,
    "maps.tile": AT_WORK,
    "maps.area": AT_WORK,
    "duty.page": ("cit", "supervisor"),
    "duty.on": ("cit", "supervisor"),
    "duty.off": ("cit", "supervisor"),
    "duty.location": ("cit", "supervisor"),
    "duty.subscribe": ("officer", "cit", "supervisor"),  # an officer hears of their own request by push
    "duty.subscribe_board": ("supervisor",),
    "duty.unsubscribe": ("officer", "cit", "supervisor"),
    "duty.forget_devices": ("cit", "supervisor"),
    "duty.unit_location": "bearer",
    # A service worker's delivery receipt: no session, the push's single-use token is the credential.
    "requests.receipt": "public",
    "requests.drill": ("supervisor",),
    "readiness.test_alert": ("cit", "supervisor"),
    "readiness.test_alert_result": ("cit", "supervisor"),
    "readiness.own_channel": ("cit", "supervisor"),
    "readiness.channel_for": ("coordinator",),
    "requests.create": ("officer", "cit", "supervisor"),
    # The request below was made by the officer and alerted to the CIT officer.
    "requests.page": ("officer", "dispatcher", "cit", "supervisor"),
    "requests.live": ("officer", "dispatcher", "cit", "supervisor"),
    "requests.act": ("supervisor", "dispatcher"),  # acted on as "realert", which supervisors and dispatchers may do
    # Only the CIT officer assigned checks in; the world's request has none yet, so everyone is refused.
    "safety.check_in": (),
    "safety.contact_made": ("supervisor",),
    "board.index": ("supervisor", "dispatcher"),
    "board.live": ("supervisor", "dispatcher"),
    "dispatch.index": ("dispatcher",),
    "dispatch.create": ("dispatcher",),
    "webhooks.index": ("coordinator",),
    "webhooks.create": ("coordinator",),
    "webhooks.page": ("coordinator",),
    "webhooks.disable": ("coordinator",),
    "webhook_secrets.rotate_secret": ("coordinator",),
    # The CAD API takes an API key only: no role's session cookie gets in.
    "api.openapi": "public",
    "api.create_request": "bearer",
    "api.list_requests": "bearer",
    "api.read_request": "bearer",
    "api.cancel_request": "bearer",
    "audit.index": ("coordinator",),
    "audit.export": ("coordinator",),
    "program.index": ("coordinator", "supervisor"),
    "program.roster": ("coordinator",),
    "program.roster_csv": ("coordinator",),
    "program.roster_active": ("coordinator",),
    "program.new_officer": ("coordinator",),
    "program.officer": ("coordinator",),
    "program.reset_password": ("coordinator",),
    "program.sign_in_access": ("coordinator",),
    "program.inservice_title": ("coordinator",),
    "program.import_roster": ("coordinator",),
    "program.coverage": ("coordinator", "supervisor"),
    "program.districts": ("coordinator",),
    "program.reports": ("coordinator", "supervisor"),
    "program.reports_csv": ("coordinator", "supervisor"),
    "program.fidelity_csv": ("coordinator", "supervisor"),
    "program.public_summary_csv": ("coordinator", "supervisor"),
    "program.summary": ("coordinator", "supervisor"),
    "content_review.index": REVIEWERS,
    "content_review.card": REVIEWERS,
    "content_review.sign_off_card": REVIEWERS,
    "content_review.export": REVIEWERS,
    # Health checks answer anyone (no personal data); metrics only this machine or a bearer
    # METRICS_TOKEN. The test client calls from 127.0.0.1; test_health.py has the refusals.
    "health.healthz": "public",
    "health.readyz": "public",
    "health.metrics": "loopback",
    # Second factors: the Security page is everyone's; setting up a factor is also open, in the middle of
    # signing in, to whoever must enrol (401 otherwise); the sign-in steps are public like the form.
    "factors.security_page": EVERYONE,
    "factors.passkey_options": EVERYONE,
    "factors.add_passkey": EVERYONE,
    "factors.rename_passkey": EVERYONE,
    "factors.remove_passkey": EVERYONE,
    "factors.totp_setup": EVERYONE,
    "factors.remove_totp": EVERYONE,
    "factors.recovery_codes": EVERYONE,
    "factors.enrol": "public",
    "factors.second_factor": "public",
    "factors.sign_in_options": "public",
    "factors.sign_in_with_passkey": "public",
    "factors.reset": ("coordinator",),
    "unlock.unlock_account": ("coordinator",),
    "factors.end_other_sessions": EVERYONE,
    # Agency sign-in links: 404 unless single sign-on is configured (tests/test_sso.py checks them with it on).
    "sso_links.index": ("coordinator",),
    "sso_links.map_person": ("coordinator",),
    "sso_links.approve": ("coordinator",),
    "sso_links.refuse": ("coordinator",),
    "sso_links.remove": ("coordinator",),
    "sso_links.start_link": EVERYONE,
    "sso_links.remove_own_link": EVERYONE,
    "step_up.confirm": EVERYONE,
    "step_up.passkey_options": EVERYONE,
    "step_up.with_passkey": EVERYONE,
}
# user_id 2 is cit.one, the second account `world` makes.
SAMPLE = {"endpoint_id": 1, "slug": "psychosis", "filename": "css/app.css", "username": "cit.one", "action": "realert", "user_id": 2, "session_id": 1, "passkey_id": 1,
          "version": "0123456789ab", "z": 15, "x": 1, "y": 1}


def make_world(app, db, push_service):
    """One user per role; the officer has an open request the CIT officer was alerted to."""
    add_user(app, db, "ofc.one", "officer")
    add_specialist(app, db, push_service, "cit.one", offset(1000))
    add_user(app, db, "sgt.one", "supervisor")
    add_user(app, db, "coord.one", "coordinator")
    add_user(app, db, "disp.one", "dispatcher")
    add_user(app, db, "dr.one", "clinical_partner")
    request_id = ask(signed_in(app, "ofc.one"))
    return {"request_id": request_id, "users": {"officer": "ofc.one", "cit": "cit.one", "supervisor": "sgt.one",
                                                "coordinator": "coord.one", "dispatcher": "disp.one",
                                                "clinical_partner": "dr.one"}}


@pytest.fixture
def world(app, db, push_service):
    return make_world(app, db, push_service)


def test_every_route_is_in_the_access_table(app):
    endpoints = {rule.endpoint for rule in app.url_map.iter_rules()}
    assert endpoints <= set(ACCESS), f"add these to ACCESS with a decision: {endpoints - set(ACCESS)}"


@pytest.fixture(scope="module")
def as_role(request, tmp_path_factory, migrated):
    """The world built once for one role (None: not signed in), and that role's cases run in it.

    Each role gets its own world, so what one role's cases change (a sign-out,
    going off duty, a re-alert) can never decide another role's answer.
    """
    role = request.param
    config = new_instance(tmp_path_factory.mktemp(f"access-{role}"), FakeClock(), migrated)
    app = create_app(config)
    db = connect(app.config["DATABASE"])
    push_service = StandInPushService()
    world = make_world(app, db, push_service)
    # Signed in afresh for each case: a case may sign the client out (auth.logout).
    client = (lambda: signed_in(app, world["users"][role])) if role else app.test_client
    yield role, app, world, client
    push_service.close()
    db.close()


@pytest.mark.parametrize("as_role", (None, *SIGNED_IN), indirect=True)
@pytest.mark.parametrize("endpoint", list(ACCESS))
def test_access_matrix(as_role, endpoint):
    role, app, world, client = as_role
    rules = [r for r in app.url_map.iter_rules() if r.endpoint == endpoint]
    if not rules:
        pytest.skip(f"{endpoint} is not built yet")
    rule = rules[0]
    values = {arg: (world["request_id"] if arg == "request_id" else SAMPLE[arg]) for arg in rule.arguments}
    with app.test_request_context():
        from flask import url_for

        url = url_for(endpoint, **values)
    method = next(m for m in ("GET", "POST", "DELETE") if m in rule.methods)
    who = client()
    kwargs = {"json": {}} if endpoint.startswith(("duty.subscribe", "duty.unsubscribe", "duty.location", "duty.unit_location")) else {}
    with getattr(who, method.lower())(url, **kwargs) as response:
        status = response.status_code
        refused = status in (401, 403) or (status == 302 and "/login?next=" in response.headers.get("Location", ""))
    allowed = ACCESS[endpoint]
    if allowed in ("public", "loopback"):
        assert not refused, (endpoint, role, status)
    elif allowed == "bearer":
        assert status == 401, (endpoint, role, status)
    else:
        assert refused == (role not in allowed), (endpoint, role, status)


def test_officers_see_only_their_own_requests(world, make_user, login):
    make_user("ofc.two", "officer")
    assert login("ofc.two").get(f"/requests/{world['request_id']}").status_code == 403


def test_csrf_token_is_required_for_every_change(app_config, make_user):
    app = create_app(dict(app_config, WTF_CSRF_ENABLED=True))
    client = app.test_client()
    page = client.get("/login").get_data(as_text=True)
    token = re.search(r'name="csrf_token" value="([^"]+)"', page).group(1)
    refused = client.post("/login", data={"username": "ofc.lee", "password": PASSWORD})
    assert refused.status_code == 400 and "CSRF token is missing" in refused.get_data(as_text=True)
    make_user("ofc.lee", "officer")
    assert client.post("/login", data={"username": "ofc.lee", "password": PASSWORD, "csrf_token": token}).status_code == 302
    token = re.search(r'name="csrf_token" value="([^"]+)"', client.get("/").get_data(as_text=True)).group(1)
    assert client.post("/requests", data={"location_text": "Invented Park"}).status_code == 400
    ok = client.post("/requests", data={"location_text": "Invented Park"}, headers={"X-CSRFToken": token})
    assert ok.status_code == 303


def csrf_client(app, username=None):
    """A test client of a CSRF-checking app, signed in as `username`, and its token."""
    client = app.test_client()
    token = re.search(r'name="csrf_token" value="([^"]+)"', client.get("/login").get_data(as_text=True)).group(1)
    if username:
        assert client.post("/login", data={"username": username, "password": PASSWORD, "csrf_token": token}).status_code == 302
        # Signing in starts a new session, with a new token.
        token = re.search(r'name="csrf_token" value="([^"]+)"', client.get("/").get_data(as_text=True)).group(1)
    return client, token


def signed_at(monkeypatch, epoch):
    """Make CSRF tokens look signed at `epoch`."""
    from itsdangerous import TimestampSigner

    monkeypatch.setattr(TimestampSigner, "get_timestamp", lambda self: int(epoch))


def test_a_csrf_token_stays_good_while_its_session_lives(app_config, make_user, monkeypatch):
    app = create_app(dict(app_config, WTF_CSRF_ENABLED=True))
    make_user("ofc.lee", "officer")
    signed_at(monkeypatch, time.time() - 3 * 3600)  # a page left open since the start of the shift
    client, old_token = csrf_client(app, "ofc.lee")
    monkeypatch.undo()
    assert client.post("/requests", data={"location_text": "Invented Park", "csrf_token": old_token}).status_code == 303


def test_a_sessions_token_is_signed_once_for_its_pages_and_a_new_session_has_its_own(app_config, make_user, monkeypatch):
    app = create_app(dict(app_config, WTF_CSRF_ENABLED=True))
    make_user("ofc.lee", "officer")
    client, token = csrf_client(app, "ofc.lee")
    signed_at(monkeypatch, time.time() + 60)  # signing again now would give another token
    assert f'value="{token}"' in client.get("/reference/psychosis").get_data(as_text=True)
    assert client.post("/requests", data={"location_text": "Invented Park", "csrf_token": token}).status_code == 303
    # Signing in again is a new session: a new secret, a new token, and the old one is refused.
    other, new_token = csrf_client(app, "ofc.lee")
    assert new_token != token
    assert other.post("/requests/1/cancel", data={"reason": "sent_in_error", "csrf_token": token}).status_code == 400


def test_with_a_token_time_limit_every_page_signs_afresh(app_config, make_user, monkeypatch):
    app = create_app(dict(app_config, WTF_CSRF_ENABLED=True, WTF_CSRF_TIME_LIMIT=3600))
    make_user("ofc.lee", "officer")
    client, token = csrf_client(app, "ofc.lee")
    signed_at(monkeypatch, time.time() + 60)
    page = client.get("/reference/psychosis").get_data(as_text=True)
    assert 'name="csrf_token"' in page and f'value="{token}"' not in page


def a_request_and_its_supervisor(app_config, make_user):
    """A CSRF-checking app where Ofc. Lee has asked for CIT: the officer's client and token, and a supervisor's client."""
    app = create_app(dict(app_config, WTF_CSRF_ENABLED=True))
    make_user("ofc.lee", "officer")
    make_user("sgt.diaz", "supervisor")
    officer, token = csrf_client(app, "ofc.lee")
    assert officer.post("/requests", data={"location_text": "Invented Park"}, headers={"X-CSRFToken": token}).status_code == 303
    sgt, _ = csrf_client(app, "sgt.diaz")
    return officer, token, sgt


def test_re_alert_from_the_board_works_with_csrf_on_with_and_without_scripts(app_config, make_user):
    _, _, sgt = a_request_and_its_supervisor(app_config, make_user)
    page = sgt.get("/board").get_data(as_text=True)
    # Without scripts: the button submits the one form outside the rows, to its own formaction.
    form = re.search(r'<form id="board-realert" method="post" hidden><input type="hidden" name="csrf_token" value="([^"]+)">', page)
    action = re.search(r'<button type="submit" form="board-realert" formaction="([^"]+)"', page).group(1)
    assert action == "/requests/1/realert"
    assert sgt.post(action, data={"csrf_token": form.group(1)}).status_code == 303
    # With htmx: the page's CSRF header.
    header = re.search(r"hx-headers='\{\"X-CSRFToken\": \"([^\"]+)\"\}'", page).group(1)
    assert sgt.post(action, headers={"HX-Request": "true", "X-CSRFToken": header}).status_code == 200
    assert sgt.post(action).status_code == 400  # and without either, refused


def test_board_poll_is_304_with_csrf_on_though_tokens_are_re_signed(app_config, make_user, monkeypatch):
    officer, token, sgt = a_request_and_its_supervisor(app_config, make_user)
    poll = {"HX-Request": "true"}
    signed_at(monkeypatch, time.time())
    first = sgt.get("/board/live", headers=poll)
    assert 'name="csrf_token"' in first.get_data(as_text=True)  # the re-alert form
    signed_at(monkeypatch, time.time() + 5)
    again = sgt.get("/board/live", headers=dict(poll, **{"If-None-Match": first.headers["ETag"]}))
    assert again.status_code == 304
    assert officer.post("/requests/1/cancel", data={"reason": "sent_in_error"}, headers={"X-CSRFToken": token}).status_code == 303
    changed = sgt.get("/board/live", headers=dict(poll, **{"If-None-Match": first.headers["ETag"]}))
    assert changed.status_code == 200


def test_request_status_poll_is_304_with_csrf_on_though_its_forms_tokens_are_re_signed(app_config, make_user, monkeypatch):
    app = create_app(dict(app_config, WTF_CSRF_ENABLED=True))
    make_user("ofc.lee", "officer")
    officer, token = csrf_client(app, "ofc.lee")
    created = officer.post("/requests", data={"location_text": "Invented Park"}, headers={"X-CSRFToken": token})
    live = created.headers["Location"] + "/live"
    signed_at(monkeypatch, time.time())
    first = officer.get(live, headers={"HX-Request": "true"})
    assert 'name="csrf_token"' in first.get_data(as_text=True)  # the requester's Stabilised and Cancel forms
    signed_at(monkeypatch, time.time() + 5)
    assert officer.get(live, headers={"HX-Request": "true", "If-None-Match": first.headers["ETag"]}).status_code == 304


def test_a_poll_cached_under_another_session_or_as_the_whole_page_is_not_reused(app_config, make_user):
    app = create_app(dict(app_config, WTF_CSRF_ENABLED=True))
    make_user("sgt.diaz", "supervisor")
    sgt, _ = csrf_client(app, "sgt.diaz")
    fragment = sgt.get("/board/live", headers={"HX-Request": "true"})
    assert "HX-Request" in fragment.headers["Vary"]
    whole = sgt.get("/board/live", headers={"If-None-Match": fragment.headers["ETag"]})
    assert whole.status_code == 200 and "<html" in whole.get_data(as_text=True)
    again, _ = csrf_client(app, "sgt.diaz")  # signed in afresh: a new session
    assert again.get("/board/live", headers={"HX-Request": "true", "If-None-Match": fragment.headers["ETag"]}).status_code == 200


def test_security_headers_on_every_response(client, officer):
    for path in ("/login", "/", "/reference/psychosis", "/sw.js", "/manifest.webmanifest", "/nope"):
        headers = client.get(path).headers
        csp = headers["Content-Security-Policy"]
        assert "script-src 'self'" in csp and "unsafe-inline" not in csp and "unsafe-eval" not in csp
        assert "frame-ancestors 'none'" in csp
        assert headers["X-Content-Type-Options"] == "nosniff"
        assert headers["Referrer-Policy"] == "same-origin"
        assert "geolocation=(self)" in headers["Permissions-Policy"]


def test_no_template_has_inline_script_or_event_handler():
    from pathlib import Path

    for path in (Path(__file__).parent.parent / "fieldapp" / "templates").rglob("*.html"):
        text = path.read_text()
        assert not re.search(r"<script(?![^>]*\bsrc=)[^>]*>", text), path
        assert not re.search(r"\son[a-z]+\s*=", text), path
        assert "hx-on" not in text and "style=" not in text, path


def test_session_cookie_is_httponly_lax_and_secure_off_localhost(app, make_user):
    make_user("ofc.lee", "officer")
    local = app.test_client()
    local.post("/login", data={"username": "ofc.lee", "password": PASSWORD})
    cookie = local.get_cookie("session")
    assert cookie.http_only and cookie.same_site == "Lax" and not cookie.secure
    remote = app.test_client()
    response = remote.post("/login", data={"username": "ofc.lee", "password": PASSWORD}, base_url="https://fieldapp.example.org")
    assert "Secure" in response.headers["Set-Cookie"]


def test_idle_session_is_signed_out_and_returns_to_the_same_page(client, officer, clock):
    assert client.get("/reference/psychosis").status_code == 200
    clock.advance(31 * 60)
    response = client.get("/reference/psychosis")
    assert response.status_code == 302
    assert response.headers["Location"] == "/login?next=/reference/psychosis"
    back = client.post("/login", data={"username": "ofc.lee", "password": PASSWORD, "next": "/reference/psychosis"})
    assert back.headers["Location"] == "/reference/psychosis"


def test_polling_does_not_keep_an_idle_session_alive(client, officer, clock):
    request_id = ask(client)
    for _ in range(8):
        clock.advance(4 * 60)
        client.get(f"/requests/{request_id}/live", headers={"HX-Request": "true"})
    assert client.get("/").status_code == 302


def test_the_service_worker_keeping_its_files_and_offline_copies_neither_keeps_a_session_alive_nor_rewrites_its_cookie(client, officer, clock):
    assert client.get("/").status_code == 200
    for _ in range(7):  # 28 minutes of copies kept in the background, and no one at work
        clock.advance(4 * 60)
        copy = client.get("/reference/psychosis", headers={"X-Fieldapp-Offline-Copy": "1"})
        assert copy.status_code == 200 and "Set-Cookie" not in copy.headers
        for path in ("/sw.js", "/precache.json", "/manifest.webmanifest", "/static/css/app.css"):
            with client.get(path) as file:
                assert file.status_code == 200 and "Set-Cookie" not in file.headers, path
    clock.advance(4 * 60)
    assert client.get("/").status_code == 302


def test_signed_out_the_service_worker_keeping_a_copy_gets_a_bare_401_and_no_cookie(client):
    for path in ("/", "/reference/psychosis"):
        copy = client.get(path, headers={"X-Fieldapp-Offline-Copy": "1"})
        assert copy.status_code == 401 and "Set-Cookie" not in copy.headers and copy.get_data() == b""
    assert client.get("/reference/psychosis").status_code == 302  # a person is still sent to sign in


def test_lockout_and_failures_are_in_the_audit_log(client, make_user, db):
    make_user("ofc.lee", "officer")
    for n in range(5):  # from five addresses: one alone is throttled first
        client.post("/login", data={"username": "ofc.lee", "password": "wrong-password"}, environ_base={"REMOTE_ADDR": f"198.51.100.{n}"})
    # Locked now: the right password, from a sixth address, is refused too, and that refusal is audited.
    right = client.post("/login", data={"username": "ofc.lee", "password": PASSWORD}, environ_base={"REMOTE_ADDR": "198.51.100.9"})
    assert right.status_code == 401
    actions = [r["action"] for r in db.query("SELECT action FROM audit_log WHERE subject = 'ofc.lee'")]
    # The fifth failure locks the account, and the lock-out is an audit event of its own.
    assert actions == ["login_failed"] * 4 + ["account_locked"] + ["login_failed"] * 2


def test_request_changes_and_board_actions_are_audited(world, login, db):
    login("sgt.one").post(f"/requests/{world['request_id']}/realert")
    login("cit.one").post(f"/requests/{world['request_id']}/accept")
    rows = list(db.query("SELECT actor_name, action, subject FROM audit_log WHERE subject LIKE 'request %' ORDER BY id"))
    assert [(r["actor_name"], r["action"]) for r in rows] == [
        ("ofc.one", "request_requested"), ("sgt.one", "request_realerted"), ("cit.one", "request_accepted"),
    ]


def test_coordinator_views_and_exports_the_audit_log_and_the_export_is_audited(world, login, db):
    coord = login("coord.one")
    assert "request requested" in coord.get("/audit").get_data(as_text=True)
    csv_text = coord.get("/audit/export.csv").get_data(as_text=True)
    assert csv_text.startswith("\ufeffid,at_utc,actor,action,subject,detail,ip")  # the BOM makes Excel read UTF-8
    assert "audit_export" in csv_text


def test_audit_export_shows_a_formula_typed_as_a_username_as_text(client, make_user, login):
    client.post("/login", data={"username": '=HYPERLINK("http://x.example")', "password": "wrong-password"})
    make_user("coord.one", "coordinator")
    import csv

    csv_text = login("coord.one").get("/audit/export.csv").get_data(as_text=True)
    [failed] = [row for row in csv.DictReader(csv_text.lstrip("\ufeff").splitlines()) if row["action"] == "login_failed"]
    assert failed["subject"] == '\'=HYPERLINK("http://x.example")'


def test_audit_log_and_timeline_are_append_only(world, db):
    for table in ("audit_log", "request_events"):
        with pytest.raises(sqlite3.IntegrityError, match="append-only"):
            db.execute(f"UPDATE {table} SET detail = 'x'")
        with pytest.raises(sqlite3.IntegrityError, match="append-only"):
            db.execute(f"DELETE FROM {table}")


def test_purge_removes_free_text_and_precise_location_and_keeps_statistics(app, client, officer, db, clock):
    request_id = ask(client, note="Sam Invented is upset", location_text="14 Example Row", position=(35.123456, -90.054321))
    client.post(f"/requests/{request_id}/cancel", data={"reason": "person_left"})
    fresh = ask(client, note="keep me")
    client.post(f"/requests/{fresh}/cancel", data={"reason": "other"})
    clock.advance(181 * 86400)
    client.post("/login", data={"username": "ofc.lee", "password": PASSWORD})  # the idle lock-out signed us out
    open_one = ask(client, note="still open")
    result = app.test_cli_runner().invoke(args=["purge", "--older-than", "180d"])
    assert result.exit_code == 0 and "from 2 closed request(s)" in result.output
    row = one(db, "SELECT * FROM cit_requests WHERE id = ?", [request_id])
    assert (row["note"], row["location_text"], row["lat"], row["lon"]) == ("", "", 35.12, -90.05)
    assert row["state"] == "cancelled" and row["cancel_reason"] == "person_left" and row["created_at"]
    assert one(db, "SELECT note FROM cit_requests WHERE id = ?", [open_one])["note"] == "still open"
    everything = str(list(db.query("SELECT * FROM request_events"))) + str(list(db.query("SELECT * FROM audit_log")))
    assert "Sam Invented" not in everything and "14 Example Row" not in everything


def test_purge_drops_old_positions_and_exact_alert_distances(app, client, officer, specialist, worker, db, clock):
    helper = specialist("near", offset(1234))
    request_id = ask(client)
    worker.run_once()
    client.post(f"/requests/{request_id}/cancel", data={"reason": "person_left"})
    clock.advance(181 * 86400)
    assert app.test_cli_runner().invoke(args=["purge", "--older-than", "180d"]).exit_code == 0
    assert one(db, "SELECT distance_m FROM alerts WHERE request_id = ?", [request_id])["distance_m"] == 1000
    assert one(db, "SELECT COUNT(*) AS n FROM outbox")["n"] == 0  # each push carried the exact distance
    position = one(db, "SELECT lat, lon, accuracy_m, position_at FROM duty WHERE user_id = ?", [helper])
    assert set(position.values()) == {None}


def test_the_append_only_timeline_never_keeps_an_exact_distance(client, officer, specialist, db):
    specialist("near", offset(347))
    request_id = ask(client)
    [detail] = [r["detail"] for r in db.query("SELECT detail FROM request_events WHERE request_id = ? AND event = 'alerted'", [request_id])]
    assert detail == "1 CIT officer(s) alerted; nearest 300 m"


def test_purged_text_leaves_no_residue_in_the_database_files(app, client, officer, db, clock, tmp_path, monkeypatch):
    import fieldapp.ops.records

    def connect_as_a_build_without_secure_delete(path):
        conn = connect(path)
        conn.execute("PRAGMA secure_delete = OFF")  # Debian's build defaults to ON; SQLite's own default is OFF
        return conn

    monkeypatch.setattr(fieldapp.ops.records, "connect", connect_as_a_build_without_secure_delete)
    note = "Quinn Invented has a blade, " + "is pacing and talking about the river, " * 6  # a long note, as on a real scene
    request_id = ask(client, note=note[:270], location_text="77 Residue Lane")
    client.post(f"/requests/{request_id}/cancel", data={"reason": "person_left"})
    db.execute("PRAGMA wal_checkpoint(TRUNCATE)")  # as SQLite does by itself long before 180 days pass
    clock.advance(181 * 86400)
    assert app.test_cli_runner().invoke(args=["purge", "--older-than", "180d"]).exit_code == 0
    files = [p for p in tmp_path.iterdir() if p.name.startswith("test.db")]
    raw = b"".join(p.read_bytes() for p in files)
    assert b"Quinn Invented" not in raw and b"Residue Lane" not in raw


@pytest.mark.parametrize("age", ["soon", "0d", "-5d", "180"])
def test_purge_refuses_a_malformed_age(app, age):
    result = app.test_cli_runner().invoke(args=["purge", "--older-than", age])
    assert result.exit_code == 2 and "Give an age such as 180d" in result.output


def test_backup_is_a_consistent_copy_that_restores(app, client, officer, tmp_path):
    request_id = ask(client)
    target = tmp_path / "backup.db.age"
    runner = app.test_cli_runner()
    assert runner.invoke(args=["backup-key", "create"]).exit_code == 0
    result = runner.invoke(args=["backup", str(target)])
    assert result.exit_code == 0 and "integrity check: ok" in result.output
    assert runner.invoke(args=["decrypt-backup", str(target), str(tmp_path / "restored.db")]).exit_code == 0
    restored = connect(tmp_path / "restored.db")
    assert one(restored, "SELECT id FROM cit_requests")["id"] == request_id


def test_a_backup_holds_no_name_in_clear(app, make_user, tmp_path):
    make_user("ofc.quartermaine", "cit", display_name="Ofc. Zebulon Quartermaine")
    runner = app.test_cli_runner()
    runner.invoke(args=["backup-key", "create"])
    assert runner.invoke(args=["backup", str(tmp_path / "nightly.db.age")]).exit_code == 0
    data = (tmp_path / "nightly.db.age").read_bytes()
    assert data.startswith(b"age-encryption.org/v1\n") and b"Quartermaine" not in data


@pytest.fixture
def backup_made(app, tmp_path):
    """A backup made with the instance's key: (the CLI runner, its path)."""
    runner = app.test_cli_runner()
    runner.invoke(args=["backup-key", "create"])
    assert runner.invoke(args=["backup", str(tmp_path / "nightly.db.age")]).exit_code == 0
    return runner, tmp_path / "nightly.db.age"


def test_a_backup_with_another_key_is_refused_and_nothing_written(app, backup_made, tmp_path):
    runner, backup = backup_made
    key = Path(app.instance_path) / "backup.key"
    key.rename(tmp_path / "the-right.key")
    runner.invoke(args=["backup-key", "create"])  # a new install's key: not the one the backup was made with
    result = runner.invoke(args=["decrypt-backup", str(backup), str(tmp_path / "restored.db")])
    assert result.exit_code == 1 and "not the one it was made with" in result.output and "Nothing was written" in result.output
    assert sorted(p.name for p in tmp_path.iterdir() if p.name.startswith("restored")) == []


def test_a_backup_without_the_key_is_refused_with_what_to_do(app, backup_made, tmp_path):
    runner, backup = backup_made
    (Path(app.instance_path) / "backup.key").unlink()
    result = runner.invoke(args=["decrypt-backup", str(backup), str(tmp_path / "restored.db")])
    assert result.exit_code == 1 and "There is no backup key" in result.output and "Traceback" not in result.output
    assert not (tmp_path / "restored.db").exists()


def test_decrypting_over_an_existing_file_is_refused(backup_made, tmp_path):
    runner, backup = backup_made
    (tmp_path / "fieldapp.db").write_text("live")
    result = runner.invoke(args=["decrypt-backup", str(backup), str(tmp_path / "fieldapp.db")])
    assert result.exit_code == 1 and "it was kept" in result.output
    assert (tmp_path / "fieldapp.db").read_text() == "live"


@pytest.mark.parametrize("content", [b"", b"SQLite format 3\x00 not encrypted", b"age-encryption.org/v1\n-> X25519 cut short"])
def test_a_file_that_is_not_a_whole_backup_is_refused_in_one_line(backup_made, tmp_path, content):
    runner, _ = backup_made
    (tmp_path / "odd.age").write_bytes(content)
    result = runner.invoke(args=["decrypt-backup", str(tmp_path / "odd.age"), str(tmp_path / "restored.db")])
    assert result.exit_code == 1 and len(result.output.strip().splitlines()) == 1, result.output
    assert not (tmp_path / "restored.db").exists()


def test_backup_key_create_never_replaces_a_key(app, backup_made):
    key = Path(app.instance_path) / "backup.key"
    before = key.read_text()
    result = backup_made[0].invoke(args=["backup-key", "create"])
    assert result.exit_code == 1 and "was kept" in result.output
    assert key.read_text() == before


def test_oversized_body_is_refused_with_413(client, officer, db):
    before = snapshot(db)
    response = client.post("/requests", data={"location_text": "x", "note": "y" * (70 * 1024)})
    assert response.status_code == 413
    assert snapshot(db) == before


def test_json_nested_too_deeply_inside_a_form_is_a_400_too(client, officer, db):
    before = snapshot(db)
    deep = "[" * 30_000 + "]" * 30_000  # multipart, so it fits under the 64 KB body limit unencoded
    response = client.post("/requests", data={"location_text": "x", "observations": deep}, content_type="multipart/form-data")
    assert response.status_code == 400 and "nested too deeply" in response.get_data(as_text=True)
    assert snapshot(db) == before


def test_html_in_notes_is_escaped_everywhere(client, officer, specialist, make_user, login):
    specialist("near", offset(1000))
    request_id = ask(client, note='<script>alert("x")</script>', location_text="<b>Invented</b>")
    make_user("sgt.diaz", "supervisor")
    for who in (login("near"), login("sgt.diaz")):
        for path in (f"/requests/{request_id}", "/board"):
            html = who.get(path).get_data(as_text=True)
            assert "<script>alert" not in html and "<b>Invented</b>" not in html


def test_a_briefly_locked_database_waits_instead_of_failing(app, client, officer, db):
    blocker = sqlite3.connect(app.config["DATABASE"], check_same_thread=False)
    blocker.execute("BEGIN IMMEDIATE")
    threading.Timer(0.5, blocker.commit).start()
    started = time.monotonic()
    request_id = ask(client)
    assert time.monotonic() - started >= 0.4
    assert one(db, "SELECT id FROM cit_requests")["id"] == request_id
    blocker.close()


def test_behind_a_proxy_the_audit_log_keeps_the_real_client_address(app_config, make_user, db):
    app = create_app(dict(app_config, PROXY_FIX=1))
    make_user("ofc.lee", "officer")
    app.test_client().post(
        "/login", data={"username": "ofc.lee", "password": PASSWORD},
        headers={"X-Forwarded-For": "198.51.100.7", "X-Forwarded-Proto": "https", "X-Forwarded-Host": "cit.example.org"},
    )
    assert one(db, "SELECT ip FROM audit_log WHERE action = 'login'")["ip"] == "198.51.100.7"


def test_a_post_whose_session_the_idle_lock_already_ended_is_a_sign_in_not_a_forgery(app_config, make_user, clock, db):
    app = create_app(dict(app_config, WTF_CSRF_ENABLED=True))
    make_user("ofc.lee", "officer")
    client, token = csrf_client(app, "ofc.lee")
    clock.advance(31 * 60)
    assert client.get("/reference").status_code == 302  # a background request meets the idle lock first
    late = client.post("/requests", data={"location_text": "Invented Park", "csrf_token": token})
    assert late.status_code == 401 and "Sign in, then try again." in late.get_data(as_text=True)
    assert db.execute("SELECT COUNT(*) FROM cit_requests").fetchone()[0] == 0
    forged = csrf_client(app, "ofc.lee")[0].post("/requests", data={"location_text": "Invented Park", "csrf_token": "forged"})
    assert forged.status_code == 400 and "CSRF" in forged.get_data(as_text=True)


# ---- Sessions: sign-out always works and ends the session; a sign-in lasts a shift (issue 11, findings 4, 5, 8) ----

def test_sign_out_from_a_page_cached_under_an_earlier_session_still_signs_out(app_config, make_user):
    app = create_app(dict(app_config, WTF_CSRF_ENABLED=True))
    make_user("ofc.lee", "officer")
    make_user("ofc.bell", "officer")
    client, stale = csrf_client(app, "ofc.lee")  # the page the car computer cached, with Lee's token
    assert client.post("/logout", data={"csrf_token": stale}).status_code == 302
    fresh = re.search(r'name="csrf_token" value="([^"]+)"', client.get("/login").get_data(as_text=True)).group(1)
    assert client.post("/login", data={"username": "ofc.bell", "password": PASSWORD, "csrf_token": fresh}).status_code == 302
    for token in (stale, None):  # Bell signs out from the cached page, or from one with no token at all
        response = client.post("/logout", data={"csrf_token": token} if token else {})
        assert response.status_code == 302 and response.headers["Location"].startswith("/login")
        assert client.get("/").status_code == 302  # nobody is signed in at the car computer
        client.post("/login", data={"username": "ofc.bell", "password": PASSWORD, "csrf_token": fresh})


def stolen(app, client):
    """Another browser holding a copy of `client`'s session cookie."""
    thief = app.test_client()
    thief.set_cookie("session", client.get_cookie("session").value)
    return thief


def test_a_cookie_copied_before_sign_out_is_worthless_after_it(app, client, officer):
    thief = stolen(app, client)
    assert thief.get("/").status_code == 200
    client.post("/logout")
    assert thief.get("/").status_code == 302
    assert thief.post("/requests", data={"location_text": "Invented Park"}).status_code == 401


def test_a_copied_cookie_dies_with_the_idle_lock_though_the_copy_was_kept_busy(app, client, officer, clock):
    thief = stolen(app, client)
    for _ in range(4):  # the copy is used every 10 minutes; the officer's own browser sits idle
        clock.advance(10 * 60)
        assert thief.get("/").status_code == 200
    assert client.get("/").status_code == 302  # the idle lock, met by the officer's browser
    assert thief.get("/").status_code == 302


def test_the_server_keeps_a_record_of_each_sign_in_with_only_a_hash_of_its_secret(app, make_user, login, db, clock):
    user_id = make_user("ofc.lee", "officer")
    phone = login("ofc.lee")
    login("ofc.lee")
    with phone.session_transaction() as session:
        secret = session["sid"]
    rows = list(db.query("SELECT * FROM sessions WHERE user_id = ?", [user_id]))
    assert len(rows) == 2 and all(r["created_at"] == clock.t and r["ip"] == "127.0.0.1" for r in rows)
    assert secret not in str(rows) and len(secret) >= 40
    clock.advance(5 * 60)
    phone.get("/")
    assert max(r["last_seen_at"] for r in db.query("SELECT last_seen_at FROM sessions")) == clock.t


@pytest.mark.parametrize("ending", ["password change", "coordinator reset", "disabled"])
def test_a_new_password_or_a_disabled_account_deletes_every_session_record(app, make_user, login, db, ending):
    user_id = make_user("ofc.lee", "officer")
    make_user("coord.kay", "coordinator")
    phone, car = login("ofc.lee"), login("ofc.lee")
    if ending == "password change":
        phone.post("/account/password", data={"current_password": PASSWORD, "new_password": "purple lantern harbour",
                                              "repeat_password": "purple lantern harbour"})
    elif ending == "coordinator reset":
        login("coord.kay").post(f"/program/roster/{user_id}/password", data={"confirm": "yes"})
    else:
        login("coord.kay").post(f"/program/roster/{user_id}/sign-in", data={"disabled": "1", "confirm": "yes"})
    kept = 1 if ending == "password change" else 0  # the device that changed it stays signed in
    assert db.execute("SELECT COUNT(*) FROM sessions WHERE user_id = ?", [user_id]).fetchone()[0] == kept
    assert car.get("/").status_code == 302


def test_a_sign_in_lasts_one_shift_however_busy(app, client, officer, clock):
    for _ in range(12 * 3 - 1):  # busy every 20 minutes, so the idle lock never comes
        clock.advance(20 * 60)
        assert client.get("/reference").status_code == 200
    clock.advance(20 * 60)  # twelve hours since sign-in
    response = client.get("/reference")
    assert response.status_code == 302 and response.headers["Location"] == "/login?next=/reference"
    assert "A sign-in lasts one shift" in client.get(response.headers["Location"]).get_data(as_text=True)


def test_the_shift_length_comes_from_config(app_config, make_user, clock):
    app = create_app(dict(app_config, SESSION_MAX_HOURS=2))
    make_user("ofc.lee", "officer")
    client = app.test_client()
    client.post("/login", data={"username": "ofc.lee", "password": PASSWORD})
    for _ in range(5):
        clock.advance(20 * 60)
        assert client.get("/").status_code == 200
    clock.advance(20 * 60)
    assert client.get("/").status_code == 302


def test_every_signed_in_page_is_kept_off_the_device(world, login):
    pages = {
        "officer": ["/", f"/requests/{world['request_id']}", "/reference/psychosis", "/account/password"],
        "supervisor": ["/board", f"/requests/{world['request_id']}"],
        "coordinator": ["/program/roster", "/audit", "/program/roster/2"],
        "clinical_partner": ["/program/content-review", "/program/content-review/psychosis"],
    }
    for role, paths in pages.items():
        client = login(world["users"][role])
        for path in paths:
            response = client.get(path)
            assert response.status_code == 200 and response.headers["Cache-Control"] == "no-store", (role, path)


def test_the_sign_in_page_and_files_keep_their_own_caching(app, client, officer):
    assert "Cache-Control" not in app.test_client().get("/login").headers
    assert client.get("/sw.js").headers["Cache-Control"] == "no-cache"
    stylesheet = re.search(r'href="(/static/css/app\.css\?v=[^"]+)"', client.get("/").get_data(as_text=True)).group(1)
    with client.get(stylesheet) as response:
        assert "immutable" in response.headers["Cache-Control"]


def test_hsts_only_when_served_over_tls(app_config, client):
    assert "Strict-Transport-Security" not in client.get("/login").headers
    assert client.get("/login", base_url="https://cit.example.org").headers["Strict-Transport-Security"] == "max-age=31536000"
    proxied = create_app(dict(app_config, PROXY_FIX=1)).test_client()
    behind = proxied.get("/login", headers={"X-Forwarded-Proto": "https", "X-Forwarded-For": "198.51.100.7"})
    assert behind.headers["Strict-Transport-Security"] == "max-age=31536000"
    assert "Strict-Transport-Security" not in proxied.get("/login").headers
