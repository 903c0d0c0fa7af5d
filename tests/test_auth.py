"""Signing in and out, roles, lock-out, and the `users` commands."""
import re

import pytest

from fieldapp.identity import accounts
from fieldapp.store.db import one
from tests.helpers import PASSWORD, ask


def test_login_page_has_the_labelled_form(client):
    html = client.get("/login").get_data(as_text=True)
    assert '<label for="username">Username</label>' in html
    assert '<label for="password">Password</label>' in html
    assert ">Sign in</button>" in html


def test_pages_redirect_to_login_when_signed_out(client):
    response = client.get("/reference")
    assert response.status_code == 302
    assert response.headers["Location"].startswith("/login?next=")


def test_good_login_lands_home(client, make_user, auth):
    make_user("ofc.ruiz", "officer")
    response = auth.login("ofc.ruiz")
    assert response.status_code == 302 and response.headers["Location"] == "/"
    assert client.get("/").status_code == 200


def test_login_returns_to_the_page_asked_for(client, make_user):
    make_user("ofc.ruiz", "officer")
    response = client.post("/login", data={"username": "ofc.ruiz", "password": PASSWORD, "next": "/reference"})
    assert response.headers["Location"] == "/reference"


@pytest.mark.parametrize("target", ["https://evil.example/", "//evil.example/", "javascript:alert(1)"])
def test_login_never_redirects_off_site(client, make_user, target):
    make_user("ofc.ruiz", "officer")
    response = client.post("/login", data={"username": "ofc.ruiz", "password": PASSWORD, "next": target})
    assert response.headers["Location"] == "/"


def test_wrong_password_gets_a_generic_message(client, make_user):
    make_user("ofc.ruiz", "officer")
    wrong = client.post("/login", data={"username": "ofc.ruiz", "password": "nope-nope-nope"})
    missing = client.post("/login", data={"username": "nobody", "password": "nope-nope-nope"})
    assert wrong.status_code == missing.status_code == 401
    assert "Sign-in failed" in wrong.get_data(as_text=True)
    assert without_csrf_tokens(wrong) == without_csrf_tokens(missing)


def without_csrf_tokens(response):
    """The page with its CSRF tokens blanked: they carry a timestamp, so two
    requests a second apart differ there and nowhere else."""
    return re.sub(r"Ij[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+", "TOKEN", response.get_data(as_text=True))


def test_five_failures_lock_the_account_for_fifteen_minutes(client, make_user, clock, auth):
    make_user("ofc.ruiz", "officer")
    for address in ADDRESSES[:5]:  # one address alone is throttled before it can lock an account
        guess(client, "ofc.ruiz", address)
    assert auth.login("ofc.ruiz").status_code == 401
    clock.advance(15 * 60 + 1)
    assert auth.login("ofc.ruiz").status_code == 302


# Documentation addresses (RFC 5737): sign-ins from different places.
ADDRESSES = [f"198.51.100.{n}" for n in range(1, 41)]


def guess(client, username, address, password="wrong-password"):
    """A sign-in with a wrong password from `address`."""
    return client.post("/login", data={"username": username, "password": password}, environ_base={"REMOTE_ADDR": address})


def test_logout_needs_post_and_signs_out(client, officer):
    assert client.get("/logout").status_code == 405
    client.post("/logout")
    assert client.get("/").status_code == 302


def test_passwords_are_hashed(app, db, make_user, auth):
    # The other tests ask for a fast pbkdf2 (conftest); here the app runs on its own default.
    del app.config["PASSWORD_HASH_METHOD"]
    make_user("ofc.ruiz", "officer")
    row = one(db, "SELECT password_hash FROM users WHERE username = 'ofc.ruiz'")
    assert PASSWORD not in row["password_hash"]
    assert row["password_hash"].startswith("scrypt:")
    assert auth.login("ofc.ruiz").status_code == 302


def test_users_cli_create_list_disable(app, tmp_path, auth):
    runner = app.test_cli_runner()
    secret = tmp_path / "pw"
    secret.write_text("a-long-enough-password\n")
    result = runner.invoke(args=["users", "create", "sgt.diaz", "--role", "supervisor", "--password-file", str(secret)])
    assert result.exit_code == 0, result.output
    assert "sgt.diaz" in runner.invoke(args=["users", "list"]).output
    assert auth.login("sgt.diaz", "a-long-enough-password").status_code == 302
    auth.logout()
    assert runner.invoke(args=["users", "disable", "sgt.diaz"]).exit_code == 0
    assert auth.login("sgt.diaz", "a-long-enough-password").status_code == 401


@pytest.mark.parametrize(
    "args, message",
    [
        (["users", "create", "x", "--role", "chief"], "Invalid value for '--role'"),
        (["users", "disable", "nobody"], "No account named 'nobody'"),
    ],
)
def test_users_cli_rejects_bad_input(app, args, message):
    result = app.test_cli_runner().invoke(args=args, input="pw\npw\n")
    assert result.exit_code != 0
    assert message in result.output


def test_users_cli_prompts_for_the_password(app, auth):
    result = app.test_cli_runner().invoke(
        args=["users", "create", "cit.wong", "--role", "cit"], input="long-password-1\nlong-password-1\n"
    )
    assert result.exit_code == 0, result.output
    assert auth.login("cit.wong", "long-password-1").status_code == 302


def test_seed_demo_creates_one_account_per_role_and_prints_passwords(app, db):
    result = app.test_cli_runner().invoke(args=["seed-demo"])
    assert result.exit_code == 0, result.output
    roles = {r["role"] for r in db.query("SELECT role FROM users")}
    assert roles == {"officer", "cit", "supervisor", "coordinator", "clinical_partner"}
    again = app.test_cli_runner().invoke(args=["seed-demo"])
    assert again.output == result.output


NEW_PASSWORD = "purple lantern harbour"


def change(client, current=PASSWORD, new=NEW_PASSWORD, repeat=None):
    return client.post("/account/password", data={
        "current_password": current, "new_password": new, "repeat_password": new if repeat is None else repeat,
    })


def test_changing_your_password_signs_out_your_other_devices_only(make_user, login, app):
    make_user("ofc.ruiz", "officer")
    phone, car = login("ofc.ruiz"), login("ofc.ruiz")
    response = change(phone)
    assert response.status_code == 303
    home = phone.get("/")
    assert home.status_code == 200 and "Password changed" in home.get_data(as_text=True)
    assert car.get("/").status_code == 302  # the other device is back at the sign-in form
    fresh = app.test_client()
    assert fresh.post("/login", data={"username": "ofc.ruiz", "password": PASSWORD}).status_code == 401
    assert fresh.post("/login", data={"username": "ofc.ruiz", "password": NEW_PASSWORD}).status_code == 302


@pytest.mark.parametrize("current, new, repeat, message", [
    ("wrong-password-here", NEW_PASSWORD, None, "Your current password is not right."),
    (PASSWORD, "short pass", None, "at least 15 characters"),
    (PASSWORD, NEW_PASSWORD, "purple lantern harbor", "The two new passwords are not the same."),
    (PASSWORD, "OFC.RUIZ", None, "cannot be the username"),
    (PASSWORD, PASSWORD, None, "must differ from the current one"),
])
def test_a_bad_password_change_says_why_and_changes_nothing(make_user, login, db, current, new, repeat, message):
    make_user("ofc.ruiz", "officer")
    client = login("ofc.ruiz")
    before = one(db, "SELECT password_hash, session_version FROM users WHERE username = 'ofc.ruiz'")
    response = change(client, current, new, repeat)
    assert response.status_code == 422
    assert message in response.get_data(as_text=True)
    assert one(db, "SELECT password_hash, session_version FROM users WHERE username = 'ofc.ruiz'") == before
    assert client.get("/").status_code == 200


def test_guessing_the_current_password_counts_towards_the_lock_out(make_user, login, app):
    make_user("ofc.ruiz", "officer")
    client = login("ofc.ruiz")
    for _ in range(5):
        assert change(client, current="a-wrong-guess-1").status_code == 422
    assert change(client).status_code == 422  # locked now, even with the right one
    assert app.test_client().post("/login", data={"username": "ofc.ruiz", "password": PASSWORD}).status_code == 401


def test_change_password_needs_sign_in(client):
    assert client.get("/account/password").headers["Location"] == "/login?next=/account/password"
    refused = change(client)
    assert refused.status_code == 401 and "You were signed out, so that was not done." in refused.get_data(as_text=True)


def test_a_post_after_sign_out_gets_the_sign_in_form_not_a_redirect_it_cannot_replay(client, officer, clock, db):
    client.get("/")
    clock.advance(31 * 60)  # idle past the lock-out
    response = client.post("/requests", data={"location_text": "Invented Park"})
    html = response.get_data(as_text=True)
    assert response.status_code == 401 and '<input type="hidden" name="next" value="/">' in html
    assert "Sign in, then try again." in html
    assert db.execute("SELECT COUNT(*) FROM cit_requests").fetchone()[0] == 0


def test_an_htmx_poll_after_sign_out_is_sent_to_the_sign_in_page(client, officer, clock):
    request_id = ask(client)
    clock.advance(31 * 60)
    response = client.get(f"/requests/{request_id}/live",
                          headers={"HX-Request": "true", "HX-Current-URL": f"http://localhost/requests/{request_id}"})
    assert response.status_code == 401
    assert response.headers["HX-Redirect"] == f"/login?next=/requests/{request_id}"


def test_failed_password_changes_are_audited_and_say_when_the_account_is_locked(make_user, login, db):
    make_user("ofc.ruiz", "officer")
    client = login("ofc.ruiz")
    for _ in range(5):
        change(client, current="a-wrong-guess-1")
    locked = change(client)
    assert "Too many wrong passwords: the account is locked; try again in 15 minutes" in locked.get_data(as_text=True)
    assert db.execute("SELECT COUNT(*) FROM audit_log WHERE action = 'password_change_failed'").fetchone()[0] == 6


def test_signing_in_and_out_starts_a_new_session_and_csrf_token(app_config, make_user):
    from fieldapp import create_app

    app = create_app(dict(app_config, WTF_CSRF_ENABLED=True))
    make_user("ofc.ruiz", "officer")
    make_user("ofc.bell", "officer")
    client = app.test_client()
    planted = re.search(r'name="csrf_token" value="([^"]+)"', client.get("/login").get_data(as_text=True)).group(1)
    assert client.post("/login", data={"username": "ofc.ruiz", "password": PASSWORD, "csrf_token": planted}).status_code == 302
    refused = client.post("/requests", data={"location_text": "Invented Park", "csrf_token": planted})
    assert refused.status_code == 400  # the token from before sign-in died with that session
    token = re.search(r'name="csrf_token" value="([^"]+)"', client.get("/").get_data(as_text=True)).group(1)
    assert client.post("/logout", data={"csrf_token": token}).status_code == 302
    fresh = re.search(r'name="csrf_token" value="([^"]+)"', client.get("/login").get_data(as_text=True)).group(1)
    assert client.post("/login", data={"username": "ofc.bell", "password": PASSWORD, "csrf_token": fresh}).status_code == 302
    assert client.post("/requests", data={"location_text": "Invented Park", "csrf_token": token}).status_code == 400


def test_footer_links_to_change_password(app, client, officer):
    html = client.get("/").get_data(as_text=True)
    assert 'href="/account/password"' in html and "Signed in as Ofc. Kim Lee" in html
    assert 'href="/account/password"' not in app.test_client().get("/login").get_data(as_text=True)


def test_a_session_from_before_session_versions_lasts_until_the_first_change(client, officer, db, login):
    with client.session_transaction() as session:
        session["_user_id"] = str(officer)  # the bare id older releases stored
    assert client.get("/").status_code == 200
    assert change(login("ofc.lee")).status_code == 303
    assert client.get("/").status_code == 302


@pytest.mark.parametrize("session_id", ["", "x", "1:x", "-1:0", "1:0:0", "1:-1"])
def test_a_malformed_session_id_is_signed_out(client, officer, session_id):
    with client.session_transaction() as session:
        session["_user_id"] = session_id
    assert client.get("/").status_code == 302


def test_users_cli_password_and_enable(app, make_user, tmp_path, login, auth):
    make_user("sgt.diaz", "supervisor")
    desk = login("sgt.diaz")
    runner = app.test_cli_runner()
    secret = tmp_path / "pw"
    secret.write_text(NEW_PASSWORD + "\n")
    assert runner.invoke(args=["users", "password", "sgt.diaz", "--password-file", str(secret)]).exit_code == 0
    assert desk.get("/").status_code == 302
    assert auth.login("sgt.diaz", NEW_PASSWORD).status_code == 302
    auth.logout()
    secret.write_text("too short\n")
    result = runner.invoke(args=["users", "password", "sgt.diaz", "--password-file", str(secret)])
    assert result.exit_code != 0 and "at least 15 characters" in result.output
    assert runner.invoke(args=["users", "disable", "sgt.diaz"]).exit_code == 0
    assert "was already disabled" in runner.invoke(args=["users", "disable", "sgt.diaz"]).output
    assert auth.login("sgt.diaz", NEW_PASSWORD).status_code == 401
    assert runner.invoke(args=["users", "enable", "sgt.diaz"]).exit_code == 0
    assert auth.login("sgt.diaz", NEW_PASSWORD).status_code == 302
    assert runner.invoke(args=["users", "enable", "nobody"]).exit_code != 0


# ---- Lock-out under attack, sign-in throttling, coordinator-set passwords (issue 11, findings 6, 8) ----

def test_twenty_wrong_passwords_at_once_count_twenty(app, make_user, db):
    import threading

    from werkzeug.security import generate_password_hash

    app.config["LOGIN_MAX_FAILURES"] = 100
    user_id = make_user("ofc.ruiz", "officer")
    # A hash slow enough that the twenty checks overlap, as a real one does.
    accounts.store_password(db, user_id, generate_password_hash(PASSWORD, method="pbkdf2:sha256:100000"))
    start = threading.Barrier(20)
    statuses = []

    def attacker(address):
        client = app.test_client()
        start.wait()
        statuses.append(guess(client, "ofc.ruiz", address).status_code)

    threads = [threading.Thread(target=attacker, args=(address,)) for address in ADDRESSES[:20]]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert statuses == [401] * 20
    assert one(db, "SELECT failed_logins FROM users WHERE id = ?", [user_id])["failed_logins"] == 20


@pytest.mark.parametrize("account", ["missing", "disabled", "locked", "wrong password"])
def test_every_refused_sign_in_costs_one_password_hash(app, make_user, db, clock, monkeypatch, account):
    from fieldapp.identity import lockout

    user_id = make_user("ofc.ruiz", "officer")
    if account == "disabled":
        accounts.mark_disabled(db, user_id, True)
    if account == "locked":
        accounts.lock_until(db, user_id, clock.t + 600)
    hashes = []
    real = lockout.check_password_hash
    monkeypatch.setattr(lockout, "check_password_hash", lambda *a: hashes.append(a[0].split("$")[0]) or real(*a))
    username = "nobody" if account == "missing" else "ofc.ruiz"
    assert app.test_client().post("/login", data={"username": username, "password": PASSWORD if account != "wrong password" else "x" * 20}).status_code == 401
    # One hash, made the way real ones are, so a refusal takes as long whatever the reason.
    assert hashes == [app.config["PASSWORD_HASH_METHOD"]]


def test_one_address_is_throttled_before_it_can_lock_an_account(client, make_user, app):
    make_user("ofc.ruiz", "officer")
    statuses = [guess(client, "ofc.ruiz", ADDRESSES[0]).status_code for _ in range(10)]
    assert statuses == [401] * 4 + [429] * 6
    assert "Too many failed sign-ins" in guess(client, "ofc.ruiz", ADDRESSES[0]).get_data(as_text=True)
    # The officer, elsewhere, still gets in: the account was never locked.
    assert guess(app.test_client(), "ofc.ruiz", ADDRESSES[1], PASSWORD).status_code == 302


def test_one_address_guessing_many_accounts_is_throttled(app, client, make_user):
    app.config["LOGIN_LIMIT_PER_ADDRESS"] = "6 per 15 minutes"
    make_user("ofc.ruiz", "officer")
    statuses = [guess(client, f"ofc.{n}", ADDRESSES[0]).status_code for n in range(8)]
    assert statuses == [401] * 6 + [429] * 2
    assert guess(client, "ofc.ruiz", ADDRESSES[1], PASSWORD).status_code == 302


def test_sign_ins_that_succeed_never_count_towards_the_throttle(client, make_user, app):
    make_user("ofc.ruiz", "officer")  # a station full of officers behind one address, at shift change
    for _ in range(12):
        assert guess(app.test_client(), "ofc.ruiz", ADDRESSES[0], PASSWORD).status_code == 302


@pytest.mark.parametrize("target", ["/\r\nSet-Cookie: x=1", "/reference\n", "/\\evil.example", "/\t/evil.example"])
def test_a_next_with_a_line_break_or_backslash_goes_home(client, officer, target):
    response = client.get("/login", query_string={"next": target})
    assert response.status_code == 302 and response.headers["Location"] == "/"


def set_by_coordinator(login, make_user, db, how):
    """A coordinator gives ofc.ruiz a password, by reset or by adding the account; the one the page shows."""
    make_user("coord.kay", "coordinator")
    coordinator = login("coord.kay")
    if how == "reset":
        user_id = make_user("ofc.ruiz", "officer")
        page = coordinator.post(f"/program/roster/{user_id}/password", data={"confirm": "yes"})
    elif how == "roster import":
        page = coordinator.post("/program/roster/import", content_type="multipart/form-data", data={
            "csv_text": "username,display_name,unit,phone,volunteered_on,supervisor_recommendation,interview_notes,"
                        "course_completed_on,inservice_dates,districts,shifts,active\nofc.ruiz,Ofc. Ana Ruiz,,,,,,,,,,yes\n",
            "confirm": "1"})
    else:
        page = coordinator.post("/program/roster/new", data={"username": "ofc.ruiz", "display_name": "Ofc. Ana Ruiz",
                                                             "role": "officer"})
    return re.search(r'<code class="secret">([^<]+)</code>', page.get_data(as_text=True)).group(1)


@pytest.mark.parametrize("how", ["reset", "new account", "roster import"])
def test_a_coordinator_set_password_must_be_changed_at_first_sign_in(app, make_user, login, db, how):
    temporary = set_by_coordinator(login, make_user, db, how)
    client = app.test_client()
    signed_in = client.post("/login", data={"username": "ofc.ruiz", "password": temporary, "next": "/reference"})
    assert signed_in.headers["Location"] == "/account/password"
    page = client.get("/account/password").get_data(as_text=True)
    assert "A coordinator set your password" in page
    # Nothing else opens: pages lead back to the change, posts and htmx are refused and change nothing.
    assert client.get("/reference").headers["Location"] == "/account/password"
    refused = client.post("/requests", data={"location_text": "Invented Park"})
    assert refused.status_code == 403 and db.execute("SELECT COUNT(*) FROM cit_requests").fetchone()[0] == 0
    fragment = client.get("/reference/search?q=knife", headers={"HX-Request": "true"})
    assert fragment.status_code == 403 and fragment.headers["HX-Redirect"] == "/account/password"
    assert change(client, current=temporary).status_code == 303
    assert client.get("/reference").status_code == 200
    assert "A coordinator set your password" not in client.get("/account/password").get_data(as_text=True)


def test_a_password_set_on_the_command_line_is_changed_at_first_sign_in_unless_its_owner_chose_it(app, make_user, tmp_path, auth):
    make_user("sgt.diaz", "supervisor")
    runner = app.test_cli_runner()
    secret = tmp_path / "pw"
    secret.write_text(NEW_PASSWORD + "\n")
    runner.invoke(args=["users", "password", "sgt.diaz", "--password-file", str(secret)])
    assert auth.login("sgt.diaz", NEW_PASSWORD).headers["Location"] == "/account/password"
    auth.logout()
    runner.invoke(args=["users", "password", "sgt.diaz", "--password-file", str(secret), "--own-password"])
    assert auth.login("sgt.diaz", NEW_PASSWORD).headers["Location"] == "/"
    auth.logout()
    runner.invoke(args=["users", "create", "lt.ames", "--role", "coordinator", "--password-file", str(secret)])
    assert auth.login("lt.ames", NEW_PASSWORD).headers["Location"] == "/account/password"


# ---- Locks that hold under a burst (security review 2026-12-07, F3 and F6) ----

def at_once(calls):
    """Run each call in its own thread, all released together; their answers, in the calls' order."""
    import threading

    start = threading.Barrier(len(calls))
    answers = [None] * len(calls)

    def run(i, call):
        start.wait()
        answers[i] = call()

    threads = [threading.Thread(target=run, args=(i, call)) for i, call in enumerate(calls)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return answers


def slow_password(db, user_id):
    """Give the account a hash as slow as a real one, so parallel checks overlap as they do in production."""
    from werkzeug.security import generate_password_hash

    accounts.store_password(db, user_id, generate_password_hash(PASSWORD, method="pbkdf2:sha256:200000"))


def test_twenty_guesses_at_once_and_then_the_right_password_are_all_refused(app, make_user, db):
    import time

    user_id = make_user("ofc.ruiz", "officer")
    slow_password(db, user_id)

    def wrong(n):
        return lambda: guess(app.test_client(), "ofc.ruiz", ADDRESSES[0], f"wrong-guess-{n}").status_code

    def right_a_moment_later():
        time.sleep(0.4)
        return guess(app.test_client(), "ofc.ruiz", ADDRESSES[0], PASSWORD).status_code

    *guesses, right = at_once([wrong(n) for n in range(19)] + [right_a_moment_later])
    # The address's attempts are counted before any password is checked: four get an answer, the rest a 429.
    assert sorted(guesses) == [401] * 4 + [429] * 15
    assert right == 429
    assert one(db, "SELECT failed_logins FROM users WHERE id = ?", [user_id])["failed_logins"] == 4
    assert list(db.query("SELECT id FROM sessions")) == []


def test_a_right_password_checked_while_a_burst_locks_the_account_is_refused(app, make_user, db, monkeypatch):
    from fieldapp.identity import lockout
    from fieldapp.store.db import connect

    user_id = make_user("ofc.ruiz", "officer")
    real = lockout.check_password_hash

    def slow_check(stored, given):
        right = real(stored, given)
        if right:  # while this password was being hashed, the burst's fifth failure locked the account
            other = connect(app.config["DATABASE"])
            other.execute("UPDATE users SET failed_logins = 5, locked_until = ? WHERE id = ?", [app.config["CLOCK"]() + 900, user_id])
            other.conn.commit()
            other.close()
        return right

    monkeypatch.setattr(lockout, "check_password_hash", slow_check)
    response = guess(app.test_client(), "ofc.ruiz", ADDRESSES[0], PASSWORD)
    assert response.status_code == 401
    assert list(db.query("SELECT id FROM sessions")) == []
    # Refused but not counted: it was not a wrong password.
    assert one(db, "SELECT failed_logins FROM users WHERE id = ?", [user_id])["failed_logins"] == 5


def five_wrong(app, username, addresses):
    """Five wrong passwords, each from another address (one address alone is throttled before it can lock)."""
    return [guess(app.test_client(), username, address).status_code for address in addresses]


def test_failures_count_across_locks_and_each_lock_is_longer_until_a_coordinator(app, make_user, login, db, clock):
    user_id = make_user("ofc.ruiz", "officer")
    make_user("lt.casey", "coordinator")
    state = lambda: one(db, "SELECT failed_logins, locked_until FROM users WHERE id = ?", [user_id])  # noqa: E731
    five_wrong(app, "ofc.ruiz", ADDRESSES[0:5])
    assert state() == {"failed_logins": 5, "locked_until": clock.t + 15 * 60}
    clock.advance(15 * 60 + 1)
    five_wrong(app, "ofc.ruiz", ADDRESSES[5:10])
    assert state() == {"failed_logins": 10, "locked_until": clock.t + 60 * 60}
    clock.advance(60 * 60 + 1)
    five_wrong(app, "ofc.ruiz", ADDRESSES[10:15])
    assert state()["failed_logins"] == 15
    # A coordinator is told, at their next sign-in or page.
    assert "locked after 15 wrong passwords or codes in a row, and waits for a coordinator" in login(
        "lt.casey").get("/").get_data(as_text=True)
    clock.advance(11 * 3600)
    assert guess(app.test_client(), "ofc.ruiz", ADDRESSES[20], PASSWORD).status_code == 401  # still locked
    actions = [r["detail"] for r in db.query("SELECT detail FROM audit_log WHERE action = 'account_locked'")]
    assert actions == ["after 5 failed sign-ins in a row, for 15 minutes", "after 10 failed sign-ins in a row, for 60 minutes",
                       "after 15 failed sign-ins in a row, until a coordinator lets it in"]
    # The coordinator lets the officer in from the officer's page, and it is audited.
    coordinator = login("lt.casey")
    page = coordinator.get(f"/program/roster/{user_id}").get_data(as_text=True)
    assert "until a coordinator lets them in" in page and "Let ofc.ruiz sign in again" in page
    assert coordinator.post(f"/roster/{user_id}/sign-in/unlock").status_code == 400  # not confirmed
    assert coordinator.post(f"/roster/{user_id}/sign-in/unlock", data={"confirm": "yes"}).status_code == 303
    assert state() == {"failed_logins": 0, "locked_until": None}
    assert ("account_unlocked", "ofc.ruiz") in [(r["action"], r["subject"]) for r in db.query("SELECT * FROM audit_log")]
    assert guess(app.test_client(), "ofc.ruiz", ADDRESSES[20], PASSWORD).status_code == 302


def test_coordinators_are_told_when_an_account_reaches_the_alert_threshold(app, make_user, login, db, clock):
    make_user("ofc.ruiz", "officer")
    make_user("lt.casey", "coordinator")
    coordinator = login("lt.casey")
    assert "someone may be guessing" not in coordinator.get("/").get_data(as_text=True)
    five_wrong(app, "ofc.ruiz", ADDRESSES[0:5])
    clock.advance(15 * 60 + 1)
    five_wrong(app, "ofc.ruiz", ADDRESSES[5:10])
    page = coordinator.get("/").get_data(as_text=True)
    assert "The account ofc.ruiz has had 10 wrong passwords or codes in a row: someone may be guessing" in page
    assert "someone may be guessing" not in coordinator.get("/").get_data(as_text=True)  # told once per device
    assert [r["detail"] for r in db.query("SELECT detail FROM audit_log WHERE action = 'failed_sign_ins_alert'")] == [
        "10 failed sign-ins in a row"]


@pytest.mark.parametrize("schedule", [[], [0], ["soon"], [900, -1]])
def test_a_lock_schedule_that_cannot_work_stops_the_start(app_config, schedule):
    from fieldapp import create_app

    with pytest.raises(ValueError, match="LOGIN_LOCK_SCHEDULE"):
        create_app(dict(app_config, LOGIN_LOCK_SCHEDULE=schedule))


def test_with_a_schedule_that_never_waits_for_a_coordinator_nist_s_100_failures_still_do(app, make_user, db, clock):
    app.config.update(LOGIN_LOCK_SCHEDULE=[60], LOGIN_LIMIT_PER_ACCOUNT_AND_ADDRESS="1000 per minute")
    user_id = make_user("ofc.ruiz", "officer")
    for n in range(100):
        guess(app.test_client(), "ofc.ruiz", ADDRESSES[n % 40])
        clock.advance(61)
    row = one(db, "SELECT failed_logins, locked_until FROM users WHERE id = ?", [user_id])
    assert row["failed_logins"] == 100 and row["locked_until"] > clock.t + 365 * 86400


def test_users_unlock_lets_a_locked_account_in_from_the_command_line(app, make_user, db):
    make_user("ofc.ruiz", "officer")
    five_wrong(app, "ofc.ruiz", ADDRESSES[0:5])
    result = app.test_cli_runner().invoke(args=["users", "unlock", "ofc.ruiz"])
    assert result.exit_code == 0 and "Unlocked ofc.ruiz" in result.output
    assert guess(app.test_client(), "ofc.ruiz", ADDRESSES[6], PASSWORD).status_code == 302


def test_the_security_page_shows_where_you_are_signed_in_and_signs_out_the_rest(make_user, login, app, db):
    # Idle is counted in each browser's cookie (security review 2026-12-07, I4), so a copied
    # cookie kept busy lives until its original comes back idle; its owner can end it here.
    make_user("ofc.ruiz", "officer")
    phone = login("ofc.ruiz")
    copy = app.test_client()
    copy.set_cookie("session", phone.get_cookie("session").value)
    laptop = login("ofc.ruiz")
    page = laptop.get("/account/security").get_data(as_text=True)
    assert "Where you are signed in" in page and page.count("· from 127.0.0.1") == 2 and "This browser" in page
    assert laptop.post("/account/security/sessions/end-others").status_code == 303
    assert phone.get("/").status_code == copy.get("/").status_code == 302
    assert laptop.get("/").status_code == 200
    assert db.execute("SELECT COUNT(*) FROM audit_log WHERE action = 'signed_out_elsewhere'").fetchone()[0] == 1
