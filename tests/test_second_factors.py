"""A second factor: passkeys and security keys, an authenticator app, recovery codes, and who must have one.

The WebAuthn answers here come from tests/soft_authenticator.py (real keys and
signatures); tests/test_browser_passkeys.py does the same through Chromium.
"""
import re

import pyotp
import pytest
from webauthn.helpers import bytes_to_base64url

from fieldapp import create_app
from fieldapp.identity import accounts
from fieldapp.identity.accounts import ROLES
from fieldapp.store.db import one
from tests.helpers import PASSWORD
from tests.soft_authenticator import SoftAuthenticator

ORIGIN = "https://cit.example.org"
RP_ID = "cit.example.org"


@pytest.fixture
def app_config(app_config):
    """Every role must have a second factor, as shipped; the relying party is an agency's."""
    return dict(app_config, MFA_REQUIRED_ROLES=list(ROLES), WEBAUTHN_RP_ID=RP_ID, WEBAUTHN_ORIGIN=ORIGIN)


def audit_actions(db):
    return [(r["action"], r["subject"], r["detail"]) for r in db.query("SELECT * FROM audit_log ORDER BY id")]


def factor_state(db):
    """Everything a refused second factor must leave as it was."""
    return [list(db.query(f"SELECT * FROM {table} ORDER BY 1"))
            for table in ("sessions", "passkeys", "totp_secrets", "recovery_codes")]


def signed_in_as(client):
    """The display name in the footer, or None when the client is not signed in."""
    response = client.get("/")
    if response.status_code != 200:
        return None
    found = re.search(r"Signed in as ([^·<]+) ·", response.get_data(as_text=True))
    return found.group(1).strip() if found else None


def enrol_app(client, clock):
    """Set up an authenticator app mid-sign-in or on the Security page; returns (its TOTP, the recovery codes)."""
    page = client.get("/account/security/app").get_data(as_text=True)
    totp = pyotp.TOTP(re.search(r"<code>([A-Z2-7]+)</code>", page).group(1))
    done = client.post("/account/security/app", data={"code": totp.at(clock())})
    assert done.status_code == 200, done.get_data(as_text=True)
    codes = re.findall(r"<li><code>([0-9a-z-]+)</code></li>", done.get_data(as_text=True))
    return totp, codes


@pytest.fixture
def dana(make_user, client, clock, db):
    """A CIT officer who set up an authenticator app at her first sign-in, then signed out."""
    make_user("dana", "cit", display_name="Ofc. Dana Reyes")
    client.post("/login", data={"username": "dana", "password": PASSWORD})
    totp, codes = enrol_app(client, clock)
    client.post("/logout")
    clock.advance(60)
    return {"totp": totp, "codes": codes}


def passkey_options(client, url, **params):
    response = client.post(url, query_string=params, json={})
    assert response.status_code == 200, response.get_data(as_text=True)
    return response.get_json()


def add_key(client, key, name="Blue key"):
    """Register `key` for whoever is signed in (or mid-enrolment) on `client`."""
    options = passkey_options(client, "/account/security/passkeys/options", kind="security_key")
    return client.post("/account/security/passkeys", json={"credential": key.create(options), "name": name})


def passkey_sign_in(client, key, **bend):
    options = passkey_options(client, "/login/passkey/options")
    return client.post("/login/passkey", json={"credential": key.get(options, **bend)})


@pytest.fixture
def sam(make_user, login, app):
    """A patrol officer who added a security key on his Security page, and whose key it is."""
    make_user("sam", "officer", display_name="Ofc. Sam Okoro")
    key = SoftAuthenticator(ORIGIN)
    with app.app_context():
        app.config["MFA_REQUIRED_ROLES"] = []  # to sign in the first time with his password alone
        client = login("sam")
        app.config["MFA_REQUIRED_ROLES"] = list(ROLES)
    assert add_key(client, key).status_code == 200
    return key


# ---- Who must have a second factor ----

def test_every_role_must_have_a_second_factor_unless_configured(app_config):
    shipped = {key: value for key, value in app_config.items() if key != "MFA_REQUIRED_ROLES"}
    app = create_app(shipped)
    assert set(app.config["MFA_REQUIRED_ROLES"]) == set(ROLES)


def test_a_password_alone_does_not_sign_in_someone_who_must_have_a_second_factor(make_user, client, db):
    make_user("dana", "cit")
    response = client.post("/login", data={"username": "dana", "password": PASSWORD})
    assert response.status_code == 303 and response.headers["Location"].endswith("/login/enrol")
    assert "set up a second way to sign in" in client.get("/login/enrol").get_data(as_text=True).lower()
    # Nothing else opens until the second factor is set up: there is no session yet.
    for page in ("/", "/reference", "/account/security", "/account/password"):
        assert "/login" in client.get(page).headers.get("Location", ""), page
    assert client.post("/account/security/recovery-codes").status_code == 401
    assert list(db.query("SELECT * FROM sessions")) == []


def test_roles_left_out_of_the_setting_sign_in_with_a_password(app, make_user, client):
    app.config["MFA_REQUIRED_ROLES"] = ["coordinator"]
    make_user("ofc.lee", "officer", display_name="Ofc. Kim Lee")
    assert client.post("/login", data={"username": "ofc.lee", "password": PASSWORD}).headers["Location"] == "/"
    assert signed_in_as(client) == "Ofc. Kim Lee"


# ---- Authenticator app (TOTP) on the test clock ----

def test_enrolling_an_authenticator_app_signs_in_and_shows_ten_recovery_codes_once(make_user, client, clock, db):
    make_user("dana", "cit", display_name="Ofc. Dana Reyes")
    client.post("/login", data={"username": "dana", "password": PASSWORD, "next": "/reference"})
    page = client.get("/account/security/app").get_data(as_text=True)
    assert "<svg" in page and "https://" not in page.split("<svg", 1)[1].split("</svg>")[0]  # drawn here, no CDN
    totp, codes = enrol_app(client, clock)
    assert len(codes) == 10 and len(set(codes)) == 10
    assert signed_in_as(client) == "Ofc. Dana Reyes"
    stored = [r["code_hash"] for r in db.query("SELECT code_hash FROM recovery_codes")]
    assert len(stored) == 10 and not set(codes) & set(stored)  # only hashes are kept
    assert "not right" not in page and one(db, "SELECT secret FROM totp_secrets")["secret"] != totp.secret
    assert ("login", "dana", "via password+totp (enrolled)") in audit_actions(db)


def test_the_code_from_the_app_is_the_second_step(dana, client, clock, db):
    response = client.post("/login", data={"username": "dana", "password": PASSWORD})
    assert response.headers["Location"].endswith("/login/second-factor")
    assert signed_in_as(client) is None
    response = client.post("/login/second-factor", data={"code": dana["totp"].at(clock())})
    assert response.status_code == 302 and signed_in_as(client) == "Ofc. Dana Reyes"
    assert ("login", "dana", "via password+totp") in audit_actions(db)


def test_setting_up_a_second_app_over_the_first_is_refused(dana, client, clock, db):
    client.post("/login", data={"username": "dana", "password": PASSWORD})
    client.post("/login/second-factor", data={"code": dana["totp"].at(clock())})
    before = factor_state(db)[2]
    response = client.get("/account/security/app")
    assert response.status_code == 303 and "already set up" in client.get("/account/security").get_data(as_text=True)
    assert factor_state(db)[2] == before


def test_a_code_from_a_clock_out_by_more_than_30_seconds_is_refused(dana, client, clock):
    client.post("/login", data={"username": "dana", "password": PASSWORD})
    old = dana["totp"].at(clock() - 65)
    assert client.post("/login/second-factor", data={"code": old}).status_code == 401
    assert client.post("/login/second-factor", data={"code": dana["totp"].at(clock() - 25)}).status_code == 302


def test_a_wrong_code_is_refused_audited_and_changes_nothing(dana, client, db):
    client.post("/login", data={"username": "dana", "password": PASSWORD})
    before = factor_state(db)
    response = client.post("/login/second-factor", data={"code": "000000"})
    assert response.status_code == 401 and "That code is not right" in response.get_data(as_text=True)
    assert factor_state(db) == before and signed_in_as(client) is None
    assert ("second_factor_failed", "dana", "wrong authenticator-app code") in audit_actions(db)


def test_wrong_codes_count_towards_the_lock_out(dana, client, clock, db, app):
    for attempt in range(app.config["LOGIN_MAX_FAILURES"]):
        client.post("/login", data={"username": "dana", "password": PASSWORD})
        response = client.post("/login/second-factor", data={"code": "000000"})
    assert response.status_code == 303 and "locked" in client.get("/login").get_data(as_text=True)
    # Locked: not even the right password and code get in now.
    assert client.post("/login", data={"username": "dana", "password": PASSWORD}).status_code == 401
    clock.advance(app.config["LOGIN_LOCK_SECONDS"] + 1)
    client.post("/login", data={"username": "dana", "password": PASSWORD})
    assert client.post("/login/second-factor", data={"code": dana["totp"].at(clock())}).status_code == 302


def test_a_code_works_once(dana, client, clock, app, db):
    code = dana["totp"].at(clock())
    client.post("/login", data={"username": "dana", "password": PASSWORD})
    assert client.post("/login/second-factor", data={"code": code}).status_code == 302
    other = app.test_client()
    other.post("/login", data={"username": "dana", "password": PASSWORD})
    assert other.post("/login/second-factor", data={"code": code}).status_code == 401


def test_the_second_step_expires(dana, client, clock):
    client.post("/login", data={"username": "dana", "password": PASSWORD})
    clock.advance(6 * 60)
    response = client.post("/login/second-factor", data={"code": dana["totp"].at(clock())})
    assert response.status_code == 303 and response.headers["Location"].endswith("/login")
    assert signed_in_as(client) is None


# ---- Recovery codes ----

def test_a_recovery_code_signs_in_once(dana, client, app, db):
    client.post("/login", data={"username": "dana", "password": PASSWORD})
    code = dana["codes"][3]
    assert client.post("/login/second-factor", data={"recovery_code": code.upper()}).status_code == 302
    assert "9 are left" in client.get("/").get_data(as_text=True)
    other = app.test_client()
    other.post("/login", data={"username": "dana", "password": PASSWORD})
    before = factor_state(db)
    response = other.post("/login/second-factor", data={"recovery_code": code})
    assert response.status_code == 401 and "used before" in response.get_data(as_text=True)
    assert factor_state(db) == before and signed_in_as(other) is None
    assert ("second_factor_failed", "dana", "recovery code used before") in audit_actions(db)


def test_new_recovery_codes_replace_the_old_ones(dana, client, clock):
    client.post("/login", data={"username": "dana", "password": PASSWORD})
    client.post("/login/second-factor", data={"code": dana["totp"].at(clock())})
    page = client.post("/account/security/recovery-codes").get_data(as_text=True)
    new = re.findall(r"<li><code>([0-9a-z-]+)</code></li>", page)
    assert len(new) == 10 and not set(new) & set(dana["codes"])
    client.post("/logout")
    client.post("/login", data={"username": "dana", "password": PASSWORD})
    assert client.post("/login/second-factor", data={"recovery_code": dana["codes"][0]}).status_code == 401
    assert client.post("/login/second-factor", data={"recovery_code": new[0]}).status_code == 302


# ---- Passkeys and security keys ----

def test_a_passkey_signs_in_with_no_username_and_counts_as_both_factors(sam, client, db):
    response = passkey_sign_in(client, sam)
    assert response.status_code == 200 and response.get_json() == {"redirect": "/"}
    assert signed_in_as(client) == "Ofc. Sam Okoro"
    assert ("login", "sam", "via passkey") in audit_actions(db)
    assert one(db, "SELECT sign_count FROM passkeys")["sign_count"] == 1


def test_the_security_page_lists_names_and_removes_passkeys(sam, client, db, app):
    app.config["MFA_REQUIRED_ROLES"] = []
    passkey_sign_in(client, sam)
    page = client.get("/account/security").get_data(as_text=True)
    assert "Blue key" in page and "usb" in page
    passkey_id = one(db, "SELECT id FROM passkeys")["id"]
    client.post(f"/account/security/passkeys/{passkey_id}/name", data={"name": "Key on my belt"})
    assert "Key on my belt" in client.get("/account/security").get_data(as_text=True)
    assert client.post(f"/account/security/passkeys/{passkey_id}/remove").status_code == 303
    assert passkey_sign_in(app.test_client(), sam).status_code == 400


def test_the_last_second_factor_cannot_be_removed_while_the_role_needs_one(sam, client, db):
    passkey_sign_in(client, sam)
    passkey_id = one(db, "SELECT id FROM passkeys")["id"]
    response = client.post(f"/account/security/passkeys/{passkey_id}/remove")
    assert response.status_code == 409 and "must have a second factor" in response.get_data(as_text=True)
    assert one(db, "SELECT count(*) AS n FROM passkeys")["n"] == 1


def test_a_security_key_can_be_the_second_step_after_the_password(sam, client, make_user, app, db):
    client.post("/login", data={"username": "sam", "password": PASSWORD})
    options = passkey_options(client, "/login/passkey/options")
    assert [c["id"] for c in options["allowCredentials"]] == [bytes_to_base64url(sam.credential_id)]
    response = client.post("/login/passkey", json={"credential": sam.get(options)})
    assert response.status_code == 200 and signed_in_as(client) == "Ofc. Sam Okoro"
    assert ("login", "sam", "via password+security_key") in audit_actions(db)


def test_someone_elses_key_is_no_second_step(sam, make_user, app, clock, db):
    make_user("dana", "cit")
    client = app.test_client()
    client.post("/login", data={"username": "dana", "password": PASSWORD})
    enrol_app(client, clock)
    client.post("/logout")
    client.post("/login", data={"username": "dana", "password": PASSWORD})
    options = passkey_options(client, "/login/passkey/options")
    response = client.post("/login/passkey", json={"credential": sam.get(options)})
    assert response.status_code == 400 and signed_in_as(client) is None


# ---- Refusals: each with a clear message and a 4xx, audited, and changing nothing ----

def refused(client, db, response, status, message, action):
    assert response.status_code == status, response.get_data(as_text=True)
    assert message in response.get_json()["error"]
    assert action in [a for a, *_ in audit_actions(db)]
    assert signed_in_as(client) is None


def test_a_replayed_assertion_is_refused(sam, client, app, db):
    options = passkey_options(client, "/login/passkey/options")
    answer = sam.get(options)
    assert client.post("/login/passkey", json={"credential": answer}).status_code == 200
    thief = app.test_client()
    before = factor_state(db)
    response = thief.post("/login/passkey", json={"credential": answer})
    refused(thief, db, response, 400, "already used or has expired", "passkey_refused")
    assert factor_state(db) == before


@pytest.mark.parametrize("bend, message", [
    ({"origin": "https://cit.example.org.evil.example"}, "another web address"),
    ({"rp_id": "evil.example"}, "belongs to another site"),
])
def test_an_assertion_for_another_origin_or_rp_id_is_refused(sam, client, db, bend, message):
    before = factor_state(db)
    refused(client, db, passkey_sign_in(client, sam, **bend), 400, message, "passkey_refused")
    assert factor_state(db) == before


@pytest.mark.parametrize("bend, message", [
    ({"origin": "http://localhost:5000"}, "another web address"),
    ({"rp_id": "localhost"}, "belongs to another site"),
])
def test_a_registration_for_another_origin_or_rp_id_is_refused(make_user, login, app, db, bend, message):
    app.config["MFA_REQUIRED_ROLES"] = []
    make_user("ofc.lee", "officer")
    client = login("ofc.lee")
    options = passkey_options(client, "/account/security/passkeys/options", kind="passkey")
    response = client.post("/account/security/passkeys",
                           json={"credential": SoftAuthenticator(ORIGIN).create(options, **bend), "name": "x"})
    assert response.status_code == 400 and message in response.get_json()["error"]
    assert one(db, "SELECT count(*) AS n FROM passkeys")["n"] == 0
    assert "passkey_refused" in [a for a, *_ in audit_actions(db)]


def test_a_counter_that_goes_backwards_is_refused_as_a_possible_cloned_key(sam, client, db):
    for _ in range(3):
        assert passkey_sign_in(client, sam).status_code == 200
        client.post("/logout")
    assert one(db, "SELECT sign_count FROM passkeys")["sign_count"] == 3
    before = factor_state(db)
    response = passkey_sign_in(client, sam, sign_count=2)
    refused(client, db, response, 401, "counter went backwards", "passkey_cloned")
    assert factor_state(db) == before
    assert any(a == "passkey_cloned" and "possible cloned key" in d for a, _, d in audit_actions(db))


def test_asking_for_passkey_challenges_is_limited_per_address(app, client):
    app.config["PASSKEY_OPTIONS_LIMIT"] = "3 per minute"
    assert [client.post("/login/passkey/options").status_code for _ in range(4)] == [200, 200, 200, 429]


def test_a_disabled_account_cannot_sign_in_with_its_passkey(sam, client, db):
    accounts.mark_disabled(db, accounts.user_by_username(db, "sam")["id"], True)
    response = passkey_sign_in(client, sam)
    assert response.status_code == 400 and "disabled" in response.get_json()["error"]
    assert signed_in_as(client) is None


# ---- Shared car computers ----

def test_a_passkey_sign_in_never_carries_on_the_previous_officers_session(sam, make_user, login, app, db):
    app.config["MFA_REQUIRED_ROLES"] = []
    make_user("ofc.lee", "officer", display_name="Ofc. Kim Lee")
    car = login("ofc.lee")  # Ofc. Lee walked away from the car computer still signed in
    lee_cookie = car.get_cookie("session").value
    assert passkey_sign_in(car, sam).status_code == 200
    assert signed_in_as(car) == "Ofc. Sam Okoro" and car.get_cookie("session").value != lee_cookie
    assert "ofc.lee" not in [r["username"] for r in db.query("SELECT username FROM sessions JOIN users ON users.id = user_id")]
    copy = app.test_client()
    copy.set_cookie("session", lee_cookie)
    assert signed_in_as(copy) is None


# ---- A coordinator's reset ----

def test_a_coordinator_resets_someones_second_factors_and_signs_them_out(sam, make_user, login, app, db):
    phone = app.test_client()
    passkey_sign_in(phone, sam)
    app.config["MFA_REQUIRED_ROLES"] = ["officer"]
    make_user("lt.casey", "coordinator")
    coordinator = login("lt.casey")
    sam_id = one(db, "SELECT id FROM users WHERE username = 'sam'")["id"]
    assert coordinator.post(f"/roster/{sam_id}/second-factors/reset").status_code == 400  # no confirmation ticked
    assert coordinator.post(f"/roster/{sam_id}/second-factors/reset", data={"confirm": "yes"}).status_code == 303
    assert signed_in_as(phone) is None
    assert factor_state(db)[1:] == [[], [], []]
    assert ("second_factors_reset", "sam", "") in audit_actions(db)
    # His next sign-in leads him to set up a new one.
    assert app.test_client().post("/login", data={"username": "sam", "password": PASSWORD}
                                  ).headers["Location"].endswith("/login/enrol")


# ---- Codes typed in other scripts (security review 2026-12-07, F4) ----

@pytest.mark.parametrize("code", ["٠١٢٣٤٥", "０１２３４５", "１２３４５６", "۱۲۳۴۵۶"])
def test_a_code_in_another_scripts_digits_is_a_wrong_code_not_a_500(dana, client, db, code):
    client.post("/login", data={"username": "dana", "password": PASSWORD})
    before = factor_state(db)
    response = client.post("/login/second-factor", data={"code": code})
    assert response.status_code == 401 and "That code is not right" in response.get_data(as_text=True)
    assert factor_state(db) == before
    assert one(db, "SELECT failed_logins FROM users WHERE username = 'dana'")["failed_logins"] == 1


def test_enrolling_with_another_scripts_digits_is_refused_not_a_500(make_user, client):
    make_user("dana", "cit")
    client.post("/login", data={"username": "dana", "password": PASSWORD})
    client.get("/account/security/app")
    response = client.post("/account/security/app", data={"code": "٠١٢٣٤٥"})
    assert response.status_code == 422 and "not right" in response.get_data(as_text=True)


# ---- One recovery code from several browsers at once (F5); guessing codes across locks (F6) ----

def test_one_recovery_code_sent_from_four_browsers_at_once_signs_in_one(make_user, app, clock, db):
    import threading

    make_user("dana", "cit")
    app.config["PASSWORD_HASH_METHOD"] = "pbkdf2:sha256:100000"  # recovery codes hashed as slowly as in production
    first = app.test_client()
    first.post("/login", data={"username": "dana", "password": PASSWORD})
    _, codes = enrol_app(first, clock)
    app.config["PASSWORD_HASH_METHOD"] = "pbkdf2:sha256:1000"
    browsers = [app.test_client() for _ in range(4)]
    for browser in browsers:
        browser.post("/login", data={"username": "dana", "password": PASSWORD})
    start = threading.Barrier(4)
    answers = [None] * 4

    def use(i):
        start.wait()
        response = browsers[i].post("/login/second-factor", data={"recovery_code": codes[9]})
        answers[i] = (response.status_code, response.get_data(as_text=True))

    threads = [threading.Thread(target=use, args=(i,)) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(status for status, _ in answers) == [302, 401, 401, 401]
    assert all("used before" in page for status, page in answers if status == 401)
    assert [r["detail"] for r in db.query("SELECT detail FROM audit_log WHERE action = 'second_factor_failed'")] == [
        "recovery code used before"] * 3


def test_a_recovery_code_spent_by_another_browser_while_this_one_checks_it_is_used_before_not_a_500(
        dana, client, app, db, monkeypatch):
    from fieldapp.identity import second_factors
    from fieldapp.store.db import connect

    code = dana["codes"][0]
    real = second_factors.check_password_hash

    def other_browser_wins(stored, given):
        right = real(stored, given)
        if right:  # the other browser, checking the same code, spends it first
            other = connect(app.config["DATABASE"])
            other.execute("UPDATE recovery_codes SET used_at = 1 WHERE code_hash = ?", [stored])
            other.close()
        return right

    monkeypatch.setattr(second_factors, "check_password_hash", other_browser_wins)
    client.post("/login", data={"username": "dana", "password": PASSWORD})
    response = client.post("/login/second-factor", data={"recovery_code": code})
    assert response.status_code == 401 and "used before" in response.get_data(as_text=True)
    assert signed_in_as(client) is None
    assert one(db, "SELECT failed_logins FROM users WHERE username = 'dana'")["failed_logins"] == 1


def test_guessing_codes_is_counted_across_locks_until_a_coordinator(dana, client, clock, db, app):
    state = lambda: one(db, "SELECT failed_logins, locked_until FROM users WHERE username = 'dana'")  # noqa: E731
    for lock, length in ((1, 15 * 60), (2, 60 * 60), (3, None)):
        for _ in range(app.config["LOGIN_MAX_FAILURES"]):
            assert client.post("/login", data={"username": "dana", "password": PASSWORD}).status_code == 303
            client.post("/login/second-factor", data={"code": "000000"})
        assert state()["failed_logins"] == 5 * lock  # a right password in between does not start the count again
        if length is None:
            assert "until a coordinator lets it in" in client.get("/login").get_data(as_text=True)
            break
        assert state()["locked_until"] == clock.t + length
        clock.advance(length + 1)
    clock.advance(7 * 86400)
    assert client.post("/login", data={"username": "dana", "password": PASSWORD}).status_code == 401


# ---- The keys to the account need a fresh proof (security review 2026-12-07, F1) ----

def signed_in_dana(app, dana, clock):
    """A new browser where Dana signs in with her password and a code from her app."""
    browser = app.test_client()
    browser.post("/login", data={"username": "dana", "password": PASSWORD})
    clock.advance(30)  # a code is good once: each sign-in takes the next one
    assert browser.post("/login/second-factor", data={"code": dana["totp"].at(clock())}).status_code == 302
    return browser


def confirm(browser, clock, dana, **fields):
    clock.advance(30)
    return browser.post("/account/confirm", data={"password": PASSWORD, "code": dana["totp"].at(clock()),
                                                   "next": "/account/security", **fields})


def test_a_session_left_open_cannot_change_how_its_account_signs_in(dana, app, clock, db):
    left_open = signed_in_dana(app, dana, clock)
    clock.advance(6 * 60)  # the sign-in's proof is older than STEP_UP_MINUTES; the session itself lives on
    before = factor_state(db)[1:], one(db, "SELECT password_hash FROM users WHERE username = 'dana'")
    options = left_open.post("/account/security/passkeys/options", query_string={"kind": "security_key"}, json={})
    assert options.status_code == 401 and options.get_json()["redirect"] == "/account/confirm?next=/account/security"
    key = SoftAuthenticator(ORIGIN)
    added = left_open.post("/account/security/passkeys", json={"credential": key.create({
        "challenge": "AAAA", "user": {"id": "AAAA"}, "rp": {"id": RP_ID}}), "name": "attacker key"})
    assert added.status_code == 401 and "Confirm it is you" in added.get_json()["error"]
    for url in ("/account/security/recovery-codes", "/account/security/app/remove", "/account/password"):
        response = left_open.post(url)
        assert response.status_code == 303 and response.headers["Location"].startswith("/account/confirm?next="), url
    for url in ("/account/security/app", "/account/password"):
        assert left_open.get(url).headers["Location"] == f"/account/confirm?next={url}"
    assert (factor_state(db)[1:], one(db, "SELECT password_hash FROM users WHERE username = 'dana'")) == before
    assert signed_in_as(left_open) == "Ofc. Dana Reyes"


def test_confirming_with_the_password_and_a_code_opens_changes_for_a_few_minutes(dana, app, clock, db):
    browser = signed_in_dana(app, dana, clock)
    clock.advance(6 * 60)
    wrong = browser.post("/account/confirm", data={"password": "not-her-password", "code": "123456"})
    assert wrong.status_code == 401 and "Your password is not right" in wrong.get_data(as_text=True)
    assert one(db, "SELECT failed_logins FROM users WHERE username = 'dana'")["failed_logins"] == 1
    no_code = browser.post("/account/confirm", data={"password": PASSWORD})
    assert no_code.status_code == 401 and "Give the code your authenticator app shows" in no_code.get_data(as_text=True)
    done = confirm(browser, clock, dana)
    assert done.status_code == 303 and done.headers["Location"] == "/account/security"
    assert ("step_up", "dana", "with password and a code") in audit_actions(db)
    page = browser.post("/account/security/recovery-codes")
    assert page.status_code == 200 and len(re.findall(r"<li><code>", page.get_data(as_text=True))) == 10
    clock.advance(app.config["STEP_UP_MINUTES"] * 60 + 1)
    assert browser.post("/account/security/recovery-codes").status_code == 303  # back to confirm again


def test_a_passkey_alone_confirms_it_is_you(sam, client, clock, db, app):
    assert passkey_sign_in(client, sam).status_code == 200
    clock.advance(6 * 60)
    assert client.post("/account/security/recovery-codes").status_code == 303
    options = passkey_options(client, "/account/confirm/passkey/options")
    answer = client.post("/account/confirm/passkey", query_string={"next": "/account/security"},
                         json={"credential": sam.get(options)})
    assert answer.status_code == 200 and answer.get_json() == {"redirect": "/account/security"}
    assert client.post("/account/security/recovery-codes").status_code == 200
    # An answer made for another site confirms nothing.
    clock.advance(6 * 60)
    refused = client.post("/account/confirm/passkey", json={"credential": sam.get(
        passkey_options(client, "/account/confirm/passkey/options"), origin="https://cit.example.org.evil.example")})
    assert refused.status_code == 400 and client.post("/account/security/recovery-codes").status_code == 303


def test_a_proof_that_lapses_during_a_passkey_ceremony_sends_back_to_confirm_never_a_500(dana, app, clock, db):
    browser = signed_in_dana(app, dana, clock)
    options = passkey_options(browser, "/account/security/passkeys/options", kind="security_key")
    clock.advance(6 * 60)  # the person took their time finding the key
    before = factor_state(db)[1:]
    response = browser.post("/account/security/passkeys",
                            json={"credential": SoftAuthenticator(ORIGIN).create(options), "name": "Blue key"})
    assert response.status_code == 401 and response.get_json()["redirect"].startswith("/account/confirm")
    assert factor_state(db)[1:] == before
    assert browser.get(response.get_json()["redirect"]).status_code == 200


@pytest.mark.parametrize("change, notice", [
    ("add a key", "A passkey or security key named “attacker key” was added to your account"),
    ("new recovery codes", "New recovery codes were made for your account"),
    ("remove a key", "The passkey or security key named “spare key” was removed from your account"),
])
def test_a_change_to_the_factors_ends_every_other_session_and_tells_the_owner_everywhere(
        dana, app, clock, db, change, notice):
    phone = signed_in_dana(app, dana, clock)
    if change == "remove a key":
        add_key(phone, SoftAuthenticator(ORIGIN), name="spare key")
    car = signed_in_dana(app, dana, clock)
    if change == "add a key":
        assert add_key(phone, SoftAuthenticator(ORIGIN), name="attacker key").status_code == 200
    elif change == "new recovery codes":
        assert phone.post("/account/security/recovery-codes").status_code == 200
    else:
        passkey_id = one(db, "SELECT id FROM passkeys")["id"]
        assert phone.post(f"/account/security/passkeys/{passkey_id}/remove").status_code == 303
    assert notice not in phone.get("/").get_data(as_text=True)  # this browser made it, and knows
    assert car.get("/").status_code == 302  # the other device is signed out
    assert [a for a in audit_actions(db) if a[0] in ("passkey_added", "passkey_removed", "recovery_codes_made")]
    # At the next sign-in on any device, the owner is told; once a page, not on every page.
    again = signed_in_dana(app, dana, clock)
    assert f"Security notice: {notice}" in again.get("/").get_data(as_text=True)
    assert f"Security notice: {notice}" not in again.get("/").get_data(as_text=True)


def test_a_password_change_offers_to_remove_the_factors_added_lately(dana, app, clock, db):
    clock.advance(30 * 86400)  # her app was set up long ago
    owner = signed_in_dana(app, dana, clock)
    thief = signed_in_dana(app, dana, clock)
    add_key(thief, SoftAuthenticator(ORIGIN), name="attacker key")
    owner = signed_in_dana(app, dana, clock)
    page = owner.get("/account/password").get_data(as_text=True)
    assert 'Remove the passkey "attacker key"' in page and "Remove the authenticator app" not in page
    key_id = one(db, "SELECT id FROM passkeys")["id"]
    new_password = "a brand new passphrase here"
    response = owner.post("/account/password", data={"current_password": PASSWORD, "new_password": new_password,
                                                     "repeat_password": new_password, "remove_passkey": str(key_id)})
    assert response.status_code == 303
    assert one(db, "SELECT COUNT(*) AS n FROM passkeys")["n"] == 0 and factor_state(db)[2]  # the app stays
    assert "Removed the passkey" in owner.get("/").get_data(as_text=True)
    assert thief.get("/").status_code == 302
    assert ("passkey_removed", "dana", "attacker key (with a password change)") in audit_actions(db)


def test_a_password_change_that_would_leave_no_second_factor_changes_nothing(dana, app, clock, db):
    owner = signed_in_dana(app, dana, clock)
    before = factor_state(db)[1:], one(db, "SELECT password_hash FROM users WHERE username = 'dana'")
    new_password = "a brand new passphrase here"
    response = owner.post("/account/password", data={"current_password": PASSWORD, "new_password": new_password,
                                                     "repeat_password": new_password, "remove_totp": "yes"})
    assert response.status_code == 422 and "must keep a second factor" in response.get_data(as_text=True)
    assert (factor_state(db)[1:], one(db, "SELECT password_hash FROM users WHERE username = 'dana'")) == before


def test_a_coordinators_reset_of_someone_elses_factors_needs_a_fresh_proof_too(sam, make_user, login, app, clock, db):
    app.config["MFA_REQUIRED_ROLES"] = ["officer"]
    make_user("lt.casey", "coordinator")
    coordinator = login("lt.casey")
    clock.advance(6 * 60)
    sam_id = one(db, "SELECT id FROM users WHERE username = 'sam'")["id"]
    response = coordinator.post(f"/roster/{sam_id}/second-factors/reset", data={"confirm": "yes"})
    assert response.status_code == 303 and response.headers["Location"].startswith("/account/confirm")
    assert one(db, "SELECT COUNT(*) AS n FROM passkeys")["n"] == 1


def test_a_coordinators_new_password_for_someone_else_needs_a_fresh_proof_too(make_user, login, app, clock, db):
    app.config["MFA_REQUIRED_ROLES"] = []
    officer_id = make_user("ofc.lee", "officer")
    make_user("lt.casey", "coordinator")
    coordinator = login("lt.casey")
    clock.advance(6 * 60)
    before = one(db, "SELECT password_hash FROM users WHERE id = ?", [officer_id])
    response = coordinator.post(f"/program/roster/{officer_id}/password", data={"confirm": "yes"})
    assert response.status_code == 303 and response.headers["Location"].startswith("/account/confirm")
    assert one(db, "SELECT password_hash FROM users WHERE id = ?", [officer_id]) == before
