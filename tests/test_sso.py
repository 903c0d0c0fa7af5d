"""Single sign-on with the agency's identity provider, against a real OpenID provider on loopback."""
from urllib.parse import parse_qs, urlsplit

import pytest

from fieldapp.identity import accounts
from fieldapp.store.db import one
from tests.oidc_provider import Browser

GROUPS = {"SSO_ROLE_MAP": {"grp-cit-team": "cit", "grp-patrol-sgts": "supervisor"}}


@pytest.fixture
def sso_settings():
    """Settings a test adds to single sign-on (parametrize to change)."""
    return {}


@pytest.fixture
def app_config(app_config, oidc_provider, sso_settings):
    """The test config with single sign-on pointed at the loopback provider."""
    return {**app_config, **oidc_provider.config(**sso_settings)}


def signed_in_as(client):
    """The username the home page greets, or None when the client is not signed in."""
    response = client.get("/")
    if response.status_code != 200:
        return None
    with client.session_transaction() as s:
        return s.get("_user_id") and one_user(client, s["_user_id"])


def one_user(client, session_user_id):
    from fieldapp.store.db import connect

    db = connect(client.application.config["DATABASE"])
    try:
        return one(db, "SELECT username FROM users WHERE id = ?", [int(session_user_id.split(":")[0])])["username"]
    finally:
        db.close()


def audit_actions(db, action):
    return [dict(r) for r in db.query("SELECT subject, detail, actor_name FROM audit_log WHERE action = ? ORDER BY id",
                                      [action])]


def snapshot(db):
    """What a refused sign-in must leave as it was."""
    return (list(db.query("SELECT id, username, role, disabled, session_version, email FROM users ORDER BY id")),
            list(db.query("SELECT * FROM sso_links")), list(db.query("SELECT id FROM sessions")))


def refused(response, status, message, client, db, before):
    """A refused sign-in: `status`, saying `message`, nobody signed in, nothing changed. The refusals audited so far."""
    assert response.status_code == status
    assert message in response.get_data(as_text=True)
    assert signed_in_as(client) is None
    assert snapshot(db) == before
    return audit_actions(db, "sso_refused")


def test_the_sign_in_page_offers_the_agency_account(client):
    page = client.get("/login").get_data(as_text=True)
    assert "Sign in with Metro PD account" in page
    assert 'href="/sso/login"' in page


@pytest.mark.parametrize("sso_settings", [{"SSO_ISSUER": ""}])
def test_single_sign_on_is_off_unless_an_issuer_is_configured(client):
    assert "/sso/login" not in client.get("/login").get_data(as_text=True)
    assert client.get("/sso/login").status_code == 404
    assert client.get("/sso/callback?code=x&state=y").status_code == 404


def test_an_existing_account_signs_in_by_its_username(client, make_user, browser_at_idp, db):
    make_user("dana.reyes", "cit")
    response = browser_at_idp.sign_in("idp-0001", {"preferred_username": "dana.reyes"})
    assert response.status_code == 302 and response.headers["Location"] == "/"
    assert signed_in_as(client) == "dana.reyes"
    assert audit_actions(db, "login")[-1] == {"subject": "dana.reyes", "detail": "via sso", "actor_name": "dana.reyes"}
    assert one(db, "SELECT subject FROM sso_links")["subject"] == "idp-0001"


def test_an_existing_account_signs_in_by_its_e_mail(client, make_user, browser_at_idp, db):
    user_id = make_user("k.okafor", "officer")
    accounts.set_email(db, user_id, "Kemi.Okafor@metro.example")
    db.conn.commit()
    browser_at_idp.sign_in("idp-0002", {"preferred_username": "kokafor@metro.example",
                                        "email": "kemi.okafor@metro.example", "email_verified": True})
    assert signed_in_as(client) == "k.okafor"


def test_an_unknown_person_is_refused_and_no_account_is_made(client, make_user, browser_at_idp, db):
    make_user("dana.reyes", "cit")
    before = snapshot(db)
    response = browser_at_idp.sign_in("idp-0003", {"preferred_username": "no.such.officer"})
    assert refused(response, 403, "no fieldapp account yet", client, db, before)[-1]["subject"] == "no.such.officer"


@pytest.mark.parametrize("sso_settings", [{"SSO_CREATE_ACCOUNTS": True, **GROUPS}])
def test_accounts_are_made_on_first_sign_in_only_when_configured(client, browser_at_idp, db):
    browser_at_idp.sign_in("idp-0004", {"preferred_username": "new.sgt", "name": "Sgt. Ava Lind",
                                        "email": "ava.lind@metro.example", "groups": ["grp-patrol-sgts"]})
    assert signed_in_as(client) == "new.sgt"
    row = one(db, "SELECT role, display_name, email FROM users WHERE username = 'new.sgt'")
    assert row == {"role": "supervisor", "display_name": "Sgt. Ava Lind", "email": "ava.lind@metro.example"}
    assert audit_actions(db, "user_created")[-1]["actor_name"] == "sso"


@pytest.mark.parametrize("sso_settings", [GROUPS])
def test_the_group_claim_sets_the_role_and_the_change_is_audited(client, make_user, browser_at_idp, db):
    make_user("dana.reyes", "officer")
    browser_at_idp.sign_in("idp-0005", {"preferred_username": "dana.reyes", "groups": ["all-staff", "grp-cit-team"]})
    assert signed_in_as(client) == "dana.reyes"
    assert one(db, "SELECT role FROM users WHERE username = 'dana.reyes'")["role"] == "cit"
    assert audit_actions(db, "role_changed") == [
        {"subject": "dana.reyes", "detail": "officer -> cit (from the identity provider)", "actor_name": "sso"}]


@pytest.mark.parametrize("sso_settings", [GROUPS])
def test_two_mapped_groups_give_the_more_trusted_role(client, make_user, browser_at_idp, db):
    make_user("dana.reyes", "officer")
    browser_at_idp.sign_in("idp-0006", {"preferred_username": "dana.reyes",
                                        "groups": ["grp-cit-team", "grp-patrol-sgts"]})
    assert one(db, "SELECT role FROM users WHERE username = 'dana.reyes'")["role"] == "supervisor"


@pytest.mark.parametrize("sso_settings", [GROUPS])
def test_a_person_in_no_mapped_group_is_refused_and_keeps_their_role(client, make_user, browser_at_idp, db):
    make_user("dana.reyes", "cit")
    before = snapshot(db)
    response = browser_at_idp.sign_in("idp-0007", {"preferred_username": "dana.reyes", "groups": ["all-staff"]})
    refusals = refused(response, 403, "in no group that fieldapp gives a role to", client, db, before)
    assert "no_role" in refusals[-1]["detail"]


@pytest.mark.parametrize("sso_settings", [GROUPS])
def test_a_disabled_account_stays_disabled_whatever_the_provider_says(client, make_user, browser_at_idp, db):
    user_id = make_user("dana.reyes", "officer")
    accounts.mark_disabled(db, user_id, True)
    db.conn.commit()
    before = snapshot(db)
    response = browser_at_idp.sign_in("idp-0008", {"preferred_username": "dana.reyes", "groups": ["grp-cit-team"]})
    assert refused(response, 403, "account is disabled", client, db, before)[-1]["subject"] == "dana.reyes"


def test_a_linked_account_cannot_be_taken_by_another_person_renamed_at_the_provider(client, make_user, browser_at_idp,
                                                                                     app, db):
    make_user("dana.reyes", "cit")
    browser_at_idp.sign_in("idp-0009", {"preferred_username": "dana.reyes"})
    other = Browser(app.test_client())
    before = snapshot(db)
    response = other.sign_in("idp-9999", {"preferred_username": "dana.reyes"})
    refused(response, 403, "already linked to another agency account", other.client, db, before)


def test_a_state_this_browser_did_not_start_is_refused(client, make_user, browser_at_idp, db):
    make_user("dana.reyes", "cit")
    back = browser_at_idp.start_sign_in("idp-0010", {"preferred_username": "dana.reyes"})
    forged = back.replace("state=", "state=forged", 1)
    before = snapshot(db)
    response = browser_at_idp.back_at_app(forged)
    refusals = refused(response, 400, "not started here or has expired", client, db, before)
    assert "mismatching_state" in refusals[-1]["detail"]


def test_an_id_token_for_another_sign_in_attempt_is_refused_by_its_nonce(client, make_user, browser_at_idp, db):
    make_user("dana.reyes", "cit")
    back = browser_at_idp.start_sign_in("idp-0011", {"preferred_username": "dana.reyes"})
    # As if the code came from a sign-in started elsewhere: this browser expects another nonce.
    with client.session_transaction() as s:
        key = next(k for k in s if k.startswith("_state_agency_"))
        state = dict(s[key])
        state["data"] = {**state["data"], "nonce": "a-nonce-this-browser-never-sent"}
        s[key] = state
    before = snapshot(db)
    response = browser_at_idp.back_at_app(back)
    assert "nonce" in refused(response, 400, "could not be verified", client, db, before)[-1]["detail"]


@pytest.mark.parametrize("sso_settings, amr, acr, counts", [
    ({"SSO_MFA_FROM_IDP": True}, ["pwd", "mfa"], None, True),
    ({"SSO_MFA_FROM_IDP": True}, ["pwd"], None, False),
    ({"SSO_MFA_FROM_IDP": True, "SSO_MFA_ACR": ["gold"]}, ["pwd"], "gold", True),
    ({}, ["pwd", "mfa"], None, False),  # off unless the agency says its provider's MFA counts
])
def test_the_providers_own_mfa_counts_as_the_second_factor_when_configured(client, make_user, browser_at_idp, db,
                                                                           amr, acr, counts):
    make_user("dana.reyes", "cit")
    browser_at_idp.sign_in("idp-0012", {"preferred_username": "dana.reyes"}, amr=amr, acr=acr)
    assert signed_in_as(client) == "dana.reyes"
    assert audit_actions(db, "login")[-1]["detail"] == ("via sso, mfa" if counts else "via sso")


@pytest.mark.parametrize("sso_settings, amr, status, goes_to", [
    ({"SSO_MFA_FROM_IDP": True, "MFA_REQUIRED_ROLES": ["cit"]}, ["pwd"], 303, "/login/enrol"),
    ({"SSO_MFA_FROM_IDP": True, "MFA_REQUIRED_ROLES": ["cit"]}, ["pwd", "mfa"], 302, "/"),
])
def test_without_the_providers_mfa_a_role_that_needs_a_second_factor_goes_on_to_it(client, make_user, browser_at_idp,
                                                                                    db, amr, status, goes_to):
    make_user("dana.reyes", "cit")
    response = browser_at_idp.sign_in("idp-0020", {"preferred_username": "dana.reyes"}, amr=amr)
    assert response.status_code == status and response.headers["Location"].endswith(goes_to)
    if goes_to == "/login/enrol":
        assert signed_in_as(client) is None
        assert list(db.query("SELECT id FROM sessions")) == []
    else:
        assert signed_in_as(client) == "dana.reyes"


def test_sign_out_ends_the_session_here_and_at_the_provider(client, make_user, browser_at_idp, oidc_provider, db):
    make_user("dana.reyes", "cit")
    browser_at_idp.sign_in("idp-0013", {"preferred_username": "dana.reyes"})
    response = client.post("/logout")
    assert signed_in_as(client) is None
    assert db.execute("SELECT COUNT(*) FROM sessions").fetchone()[0] == 0
    end_session = response.headers["Location"]
    assert end_session.startswith(f"{oidc_provider.issuer}/session/end?")
    query = parse_qs(urlsplit(end_session).query)
    assert query["post_logout_redirect_uri"] == ["http://localhost/login?signed_out=1"] and query["id_token_hint"]
    # Back on the sign-in page that has the device forget the officer's saved pages, as a local sign-out does.
    assert browser_at_idp.sign_out_at_provider(end_session).startswith("http://localhost/login?signed_out=1&")
    # The provider forgot the person: the next sign-in asks who they are again.
    start = client.get("/sso/login")
    at_provider = browser_at_idp.at_provider.get(start.headers["Location"], allow_redirects=False, timeout=10)
    assert "/interaction/" in at_provider.headers["Location"]


def test_sign_out_lets_the_provider_be_a_form_target(client, make_user, browser_at_idp, oidc_provider):
    make_user("dana.reyes", "cit")
    browser_at_idp.sign_in("idp-0014", {"preferred_username": "dana.reyes"})
    csp = client.get("/").headers["Content-Security-Policy"]
    assert f"form-action 'self' {oidc_provider.issuer};" in csp
    assert "script-src 'self';" in csp


def test_a_password_sign_in_still_signs_out_locally_only(client, make_user, auth):
    make_user("dana.reyes", "cit")
    auth.login("dana.reyes")
    assert client.post("/logout").headers["Location"] == "/login?signed_out=1"


def test_a_refusal_or_error_from_the_provider_is_a_clear_400(client, db):
    response = client.get("/sso/callback?error=access_denied&error_description=User+cancelled&state=abc")
    assert response.status_code == 400
    assert "did not finish" in response.get_data(as_text=True)
    assert "access_denied" in audit_actions(db, "sso_refused")[-1]["detail"]


def test_someone_whose_password_a_coordinator_set_is_not_sent_to_change_it_after_single_sign_on(
        client, make_user, browser_at_idp, db):
    user_id = make_user("dana.reyes", "cit")
    # As a coordinator's reset leaves it, without the temporary password this test never uses.
    db.execute("UPDATE users SET must_change_password = 1 WHERE id = ?", [user_id])
    db.conn.commit()
    browser_at_idp.sign_in("idp-0015", {"preferred_username": "dana.reyes"})
    assert client.get("/").status_code == 200


@pytest.mark.browser
@pytest.mark.parametrize("sso_settings", [{"SSO_CLIENT_ID": "fieldapp-browser"}])
def test_in_a_browser_sign_in_and_sign_out_go_through_the_provider(live_server, browser, make_user):
    make_user("dana.reyes", "cit", display_name="Ofc. Dana Reyes")
    context = browser.new_context()
    page = context.new_page()
    page.goto(f"{live_server.base_url}/login")
    page.get_by_role("link", name="Sign in with Metro PD account").click()
    page.wait_for_url("**/interaction/**")
    page.goto(page.url + '?account=idp-0016&claims={"preferred_username":"dana.reyes"}')
    page.wait_for_url(f"{live_server.base_url}/")
    assert "Signed in as Ofc. Dana Reyes" in page.content()
    # Sign-out is a form post that ends at the provider: the page's CSP must let it through.
    page.get_by_role("button", name="Sign out", exact=True).click()
    page.wait_for_url("**/session/end**")
    page.get_by_role("button", name="Yes, sign me out").click()
    page.wait_for_url(f"{live_server.base_url}/login?signed_out=1**")
    page.goto(f"{live_server.base_url}/")
    page.wait_for_url(f"{live_server.base_url}/login?next=**")  # signed out here too
    context.close()
