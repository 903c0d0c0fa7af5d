"""Single sign-on with the agency's identity provider, against a real OpenID provider on loopback."""
from urllib.parse import parse_qs, urlsplit

import pytest

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


def linked(db, oidc_provider, username, subject):
    """A coordinator linked `username` to the provider's `subject` (the links page does the same)."""
    db.execute("INSERT INTO sso_links (issuer, subject, user_id, created_at, how) SELECT ?, ?, id, 0, 'a test' FROM users"
               " WHERE username = ?", [oidc_provider.issuer, subject, username])


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


def test_a_linked_account_signs_in_by_its_issuer_and_subject(client, make_user, browser_at_idp, oidc_provider, db):
    make_user("dana.reyes", "cit")
    linked(db, oidc_provider, "dana.reyes", "idp-0001")
    response = browser_at_idp.sign_in("idp-0001", {"preferred_username": "someone.else"})
    assert response.status_code == 302 and response.headers["Location"] == "/"
    assert signed_in_as(client) == "dana.reyes"
    assert audit_actions(db, "login")[-1] == {"subject": "dana.reyes", "detail": "via sso", "actor_name": "dana.reyes"}


# ---- What a first link may rest on (security review 2026-12-07, F2; docs/SSO.md) ----

@pytest.mark.parametrize("sso_settings", [{}, {"SSO_LINK_BY": {"email": "email"}}])
def test_preferred_username_never_links_an_account(client, make_user, app, db):
    make_user("supervisor", "supervisor")
    make_user("dana.reyes", "cit")
    before = snapshot(db)
    for account, name in (("attacker-3", "supervisor"), ("attacker-4", "DANA.REYES")):
        response = Browser(client).sign_in(account, {"preferred_username": name})
        assert response.status_code == 403 and "not linked to a fieldapp account yet" in response.get_data(as_text=True)
    assert signed_in_as(client) is None and snapshot(db) == before
    # Each is kept for a coordinator to map, with what the provider said, unverified.
    assert [r["subject"] for r in db.query("SELECT subject FROM sso_link_requests ORDER BY id")] == [
        "attacker-3", "attacker-4"]


@pytest.mark.parametrize("sso_settings", [{"SSO_LINK_BY": {"email": "email"}}])
@pytest.mark.parametrize("verified, links", [(True, True), (None, False), (False, False), ("true", False)])
def test_an_e_mail_links_only_when_the_agency_names_it_and_the_provider_says_it_is_verified(
        client, make_user, browser_at_idp, db, verified, links):
    user_id = make_user("k.okafor", "officer")
    db.execute("UPDATE users SET email = 'Kemi.Okafor@metro.example' WHERE id = ?", [user_id])
    claims = {"preferred_username": "kokafor", "email": "kemi.okafor@METRO.example"}
    if verified is not None:  # None: the provider does not say, which counts as not verified
        claims["email_verified"] = verified
    response = browser_at_idp.sign_in("idp-0002", claims)
    assert (signed_in_as(client) == "k.okafor") == links
    if links:
        assert one(db, "SELECT how FROM sso_links")["how"] == "the email claim"
    else:
        assert response.status_code == 403 and list(db.query("SELECT * FROM sso_links")) == []


@pytest.mark.parametrize("sso_settings", [{"SSO_LINK_BY": {"email": "email"}}])
def test_an_unverified_e_mail_is_not_kept_on_a_new_account_either(client, browser_at_idp, db, app):
    app.config["SSO_CREATE_ACCOUNTS"] = True
    browser_at_idp.sign_in("idp-0030", {"preferred_username": "new.officer", "email": "chief@metro.example"})
    assert one(db, "SELECT email FROM users WHERE username = 'new.officer'")["email"] is None


@pytest.mark.parametrize("sso_settings", [{"SSO_LINK_BY": {"employee_id": "username"}}])
def test_a_claim_the_agency_names_as_stable_links_on_first_sign_in(client, make_user, browser_at_idp, db):
    make_user("b4417", "cit")
    browser_at_idp.sign_in("idp-0031", {"preferred_username": "whatever", "employee_id": "b4417"})
    assert signed_in_as(client) == "b4417"
    assert audit_actions(db, "sso_linked")[-1]["detail"] == "sub idp-0031, by the employee_id claim"


@pytest.mark.parametrize("sso_settings", [{"SSO_LINK_BY": {"email": "email"}}])
@pytest.mark.parametrize("role", ["supervisor", "coordinator"])
def test_a_first_link_to_a_supervisor_or_coordinator_waits_for_a_coordinators_approval(
        client, make_user, browser_at_idp, login, db, role):
    target = make_user("dana.reyes", role, display_name="Lt. Dana Reyes")
    db.execute("UPDATE users SET email = 'dana.reyes@metro.example' WHERE id = ?", [target])
    make_user("lt.casey", "coordinator")
    claims = {"email": "Dana.Reyes@metro.example", "email_verified": True}
    before = snapshot(db)
    response = browser_at_idp.sign_in("idp-0032", claims)
    assert response.status_code == 403 and "waits for a coordinator" in response.get_data(as_text=True)
    assert snapshot(db) == before
    assert "first link to a " + role in audit_actions(db, "sso_link_requested")[-1]["detail"]
    coordinator = login("lt.casey")
    page = coordinator.get("/sso/links").get_data(as_text=True)
    assert "idp-0032" in page and "Lt. Dana Reyes" in page
    request_id = one(db, "SELECT id FROM sso_link_requests")["id"]
    assert coordinator.post(f"/sso/links/requests/{request_id}/approve").status_code == 303
    assert audit_actions(db, "sso_link_approved")[-1]["subject"] == "dana.reyes"
    assert browser_at_idp.sign_in("idp-0032", claims).status_code in (302, 303)
    assert signed_in_as(client) == "dana.reyes"


@pytest.mark.parametrize("sso_settings", [{"SSO_LINK_BY": {"email": "email"}}])
def test_a_coordinator_refuses_a_waiting_link_and_it_is_audited(client, make_user, browser_at_idp, login, db):
    target = make_user("sgt.lind", "supervisor")
    db.execute("UPDATE users SET email = 'ava.lind@metro.example' WHERE id = ?", [target])
    make_user("lt.casey", "coordinator")
    browser_at_idp.sign_in("attacker-6", {"email": "ava.lind@metro.example", "email_verified": True})
    coordinator = login("lt.casey")
    assert "asks to be linked to sgt.lind" in coordinator.get("/").get_data(as_text=True)  # coordinators are told
    request_id = one(db, "SELECT id FROM sso_link_requests")["id"]
    assert coordinator.post(f"/sso/links/requests/{request_id}/refuse").status_code == 303
    assert audit_actions(db, "sso_link_refused")[-1] == {"subject": "sgt.lind", "detail": "sub attacker-6",
                                                         "actor_name": "lt.casey"}
    assert list(db.query("SELECT * FROM sso_links")) == []


@pytest.mark.parametrize("sso_settings", [{"SSO_LINK_BY": {"email": "email"}, **GROUPS}])
def test_an_officer_whose_groups_make_them_a_supervisor_waits_for_approval_on_first_link(
        client, make_user, browser_at_idp, db):
    target = make_user("ofc.kim", "officer")
    db.execute("UPDATE users SET email = 'kim@metro.example' WHERE id = ?", [target])
    response = browser_at_idp.sign_in("idp-0033", {"email": "kim@metro.example", "email_verified": True,
                                                   "groups": ["grp-patrol-sgts"]})
    assert response.status_code == 403
    assert one(db, "SELECT role FROM users WHERE id = ?", [target])["role"] == "officer"
    assert one(db, "SELECT role FROM sso_link_requests")["role"] == "supervisor"


def test_a_coordinator_links_a_waiting_sign_in_to_an_account_and_the_person_signs_in(
        client, make_user, browser_at_idp, login, db, clock):
    make_user("dana.reyes", "cit")
    make_user("lt.casey", "coordinator")
    assert browser_at_idp.sign_in("idp-0034", {"preferred_username": "dreyes", "name": "Dana Reyes"}).status_code == 403
    coordinator = login("lt.casey")
    request_id = one(db, "SELECT id FROM sso_link_requests")["id"]
    clock.advance(6 * 60)  # a change to someone's keys: the coordinator confirms it is them first
    assert coordinator.post(f"/sso/links/requests/{request_id}/approve", data={"username": "dana.reyes"}
                            ).headers["Location"].startswith("/account/confirm")
    assert list(db.query("SELECT * FROM sso_links")) == []
    coordinator = login("lt.casey")
    assert coordinator.post(f"/sso/links/requests/{request_id}/approve", data={"username": "nobody"}).status_code == 400
    assert coordinator.post(f"/sso/links/requests/{request_id}/approve", data={"username": "dana.reyes"}).status_code == 303
    assert one(db, "SELECT how FROM sso_links")["how"] == "a coordinator's approval (lt.casey)"
    browser_at_idp.sign_in("idp-0034", {"preferred_username": "dreyes"})
    assert signed_in_as(client) == "dana.reyes"


def test_a_coordinator_maps_an_account_by_its_subject(client, make_user, browser_at_idp, login, db):
    make_user("dana.reyes", "cit")
    make_user("k.okafor", "cit")
    make_user("lt.casey", "coordinator")
    coordinator = login("lt.casey")
    assert coordinator.post("/sso/links", data={"username": "dana.reyes", "subject": "idp-0035"}).status_code == 303
    again = coordinator.post("/sso/links", data={"username": "k.okafor", "subject": "idp-0035"})
    assert again.status_code == 409 and "already linked" in again.get_data(as_text=True)
    assert coordinator.post("/sso/links", data={"username": "k.okafor", "subject": " "}).status_code == 400
    browser_at_idp.sign_in("idp-0035", {})
    assert signed_in_as(client) == "dana.reyes"
    user_id = one(db, "SELECT id FROM users WHERE username = 'dana.reyes'")["id"]
    assert coordinator.post(f"/sso/links/{user_id}/remove").status_code == 303
    assert audit_actions(db, "sso_unlinked")[-1]["detail"] == "sub idp-0035, by a coordinator (lt.casey)"


@pytest.mark.parametrize("settings, message", [
    ({"SSO_LINK_BY": {"preferred_username": "username"}}, "never links an account"),
    ({"SSO_LINK_BY": {"name": "username"}}, "never links an account"),
    ({"SSO_LINK_BY": {"email": "phone"}}, 'to "username" or "email"'),
    ({"SSO_LINK_BY": {"email": "email"}, "SSO_ISSUER": "https://login.microsoftonline.com/common/v2.0"},
     "multi-tenant"),
    ({"SSO_LINK_BY": ["email"]}, "maps a claim"),
    ({"SSO_APPROVAL_ROLES": ["sergeant"]}, "roles that do not exist"),
])
def test_link_settings_that_would_trust_what_the_provider_does_not_vouch_for_stop_the_start(app_config, settings,
                                                                                             message):
    from fieldapp import create_app

    with pytest.raises(ValueError, match=message):
        create_app({**app_config, **settings})


@pytest.mark.parametrize("sso_settings", [{"SSO_TENANT_ID": "tenant-metro", "SSO_LINK_BY": {"employee_id": "username"}}])
def test_an_id_token_from_another_tenant_is_refused(client, make_user, browser_at_idp, db):
    make_user("b4417", "cit")
    other = browser_at_idp.sign_in("idp-0036", {"employee_id": "b4417", "tid": "tenant-elsewhere"})
    assert other.status_code == 403 and "another organisation" in other.get_data(as_text=True)
    assert list(db.query("SELECT * FROM sso_links")) == []
    Browser(client).sign_in("idp-0037", {"employee_id": "b4417", "tid": "tenant-metro"})
    assert signed_in_as(client) == "b4417"


def test_an_unknown_person_is_refused_and_no_account_is_made(client, make_user, browser_at_idp, db):
    make_user("dana.reyes", "cit")
    before = snapshot(db)
    response = browser_at_idp.sign_in("idp-0003", {"preferred_username": "no.such.officer"})
    assert response.status_code == 403
    assert "not linked to a fieldapp account yet" in response.get_data(as_text=True)
    assert signed_in_as(client) is None
    assert snapshot(db) == before
    assert audit_actions(db, "sso_refused")[-1]["subject"] == "no.such.officer"


@pytest.mark.parametrize("sso_settings", [{"SSO_CREATE_ACCOUNTS": True, **GROUPS}])
def test_accounts_are_made_on_first_sign_in_only_when_configured(client, browser_at_idp, db):
    browser_at_idp.sign_in("idp-0004", {"preferred_username": "new.cit", "name": "Ofc. Ava Lind",
                                        "email": "ava.lind@metro.example", "email_verified": True,
                                        "groups": ["grp-cit-team"]})
    assert signed_in_as(client) == "new.cit"
    row = one(db, "SELECT role, display_name, email FROM users WHERE username = 'new.cit'")
    assert row == {"role": "cit", "display_name": "Ofc. Ava Lind", "email": "ava.lind@metro.example"}
    assert audit_actions(db, "user_created")[-1]["actor_name"] == "sso"


@pytest.mark.parametrize("sso_settings", [{"SSO_CREATE_ACCOUNTS": True, **GROUPS}])
def test_a_supervisors_account_is_made_only_once_a_coordinator_approves(client, browser_at_idp, make_user, login, db):
    claims = {"preferred_username": "new.sgt", "name": "Sgt. Ava Lind", "groups": ["grp-patrol-sgts"]}
    assert browser_at_idp.sign_in("idp-0040", claims).status_code == 403
    assert one(db, "SELECT id FROM users WHERE username = 'new.sgt'") is None
    make_user("lt.casey", "coordinator")
    request_id = one(db, "SELECT id FROM sso_link_requests")["id"]
    assert login("lt.casey").post(f"/sso/links/requests/{request_id}/approve").status_code == 303
    assert one(db, "SELECT role, display_name FROM users WHERE username = 'new.sgt'") == {
        "role": "supervisor", "display_name": "Sgt. Ava Lind"}
    browser_at_idp.sign_in("idp-0040", claims)
    assert signed_in_as(client) == "new.sgt"


@pytest.mark.parametrize("sso_settings", [GROUPS])
def test_the_group_claim_sets_the_role_and_the_change_is_audited(client, make_user, browser_at_idp, oidc_provider, db):
    make_user("dana.reyes", "officer")
    linked(db, oidc_provider, "dana.reyes", "idp-0005")
    browser_at_idp.sign_in("idp-0005", {"preferred_username": "dana.reyes", "groups": ["all-staff", "grp-cit-team"]})
    assert signed_in_as(client) == "dana.reyes"
    assert one(db, "SELECT role FROM users WHERE username = 'dana.reyes'")["role"] == "cit"
    assert audit_actions(db, "role_changed") == [
        {"subject": "dana.reyes", "detail": "officer -> cit (from the identity provider)", "actor_name": "sso"}]


@pytest.mark.parametrize("sso_settings", [GROUPS])
def test_two_mapped_groups_give_the_more_trusted_role(client, make_user, browser_at_idp, oidc_provider, db):
    make_user("dana.reyes", "officer")
    linked(db, oidc_provider, "dana.reyes", "idp-0006")
    browser_at_idp.sign_in("idp-0006", {"preferred_username": "dana.reyes",
                                        "groups": ["grp-cit-team", "grp-patrol-sgts"]})
    assert one(db, "SELECT role FROM users WHERE username = 'dana.reyes'")["role"] == "supervisor"


@pytest.mark.parametrize("sso_settings", [GROUPS])
def test_a_person_in_no_mapped_group_is_refused_and_keeps_their_role(client, make_user, browser_at_idp, oidc_provider,
                                                                     db):
    make_user("dana.reyes", "cit")
    linked(db, oidc_provider, "dana.reyes", "idp-0007")
    before = snapshot(db)
    response = browser_at_idp.sign_in("idp-0007", {"preferred_username": "dana.reyes", "groups": ["all-staff"]})
    refusals = refused(response, 403, "in no group that fieldapp gives a role to", client, db, before)
    assert "no_role" in refusals[-1]["detail"]


@pytest.mark.parametrize("sso_settings", [GROUPS])
def test_a_disabled_account_stays_disabled_whatever_the_provider_says(client, make_user, browser_at_idp, oidc_provider,
                                                                      db):
    user_id = make_user("dana.reyes", "officer")
    linked(db, oidc_provider, "dana.reyes", "idp-0008")
    db.execute("UPDATE users SET disabled = 1 WHERE id = ?", [user_id])
    db.conn.commit()
    before = snapshot(db)
    response = browser_at_idp.sign_in("idp-0008", {"preferred_username": "dana.reyes", "groups": ["grp-cit-team"]})
    assert refused(response, 403, "account is disabled", client, db, before)[-1]["subject"] == "dana.reyes"


@pytest.mark.parametrize("sso_settings", [{"SSO_LINK_BY": {"employee_id": "username"}}])
def test_a_linked_account_cannot_be_taken_by_another_person_renamed_at_the_provider(client, make_user, browser_at_idp,
                                                                                     app, db):
    make_user("dana.reyes", "cit")
    browser_at_idp.sign_in("idp-0009", {"employee_id": "dana.reyes"})
    other = Browser(app.test_client())
    before = snapshot(db)
    response = other.sign_in("idp-9999", {"employee_id": "dana.reyes"})
    assert response.status_code == 403
    assert "already linked to another agency account" in response.get_data(as_text=True)
    assert signed_in_as(other.client) is None
    assert snapshot(db) == before


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
                                                                           oidc_provider, amr, acr, counts):
    make_user("dana.reyes", "cit")
    linked(db, oidc_provider, "dana.reyes", "idp-0012")
    browser_at_idp.sign_in("idp-0012", {"preferred_username": "dana.reyes"}, amr=amr, acr=acr)
    assert signed_in_as(client) == "dana.reyes"
    assert audit_actions(db, "login")[-1]["detail"] == ("via sso, mfa" if counts else "via sso")


@pytest.mark.parametrize("sso_settings, amr, status, goes_to", [
    ({"SSO_MFA_FROM_IDP": True, "MFA_REQUIRED_ROLES": ["cit"]}, ["pwd"], 303, "/login/enrol"),
    ({"SSO_MFA_FROM_IDP": True, "MFA_REQUIRED_ROLES": ["cit"]}, ["pwd", "mfa"], 302, "/"),
])
def test_without_the_providers_mfa_a_role_that_needs_a_second_factor_goes_on_to_it(client, make_user, browser_at_idp,
                                                                                    db, oidc_provider, amr, status,
                                                                                    goes_to):
    make_user("dana.reyes", "cit")
    linked(db, oidc_provider, "dana.reyes", "idp-0020")
    response = browser_at_idp.sign_in("idp-0020", {"preferred_username": "dana.reyes"}, amr=amr)
    assert response.status_code == status and response.headers["Location"].endswith(goes_to)
    if goes_to == "/login/enrol":
        assert signed_in_as(client) is None
        assert list(db.query("SELECT id FROM sessions")) == []
    else:
        assert signed_in_as(client) == "dana.reyes"


def test_sign_out_ends_the_session_here_and_at_the_provider(client, make_user, browser_at_idp, oidc_provider, db):
    make_user("dana.reyes", "cit")
    linked(db, oidc_provider, "dana.reyes", "idp-0013")
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


def test_sign_out_lets_the_provider_be_a_form_target(client, make_user, browser_at_idp, oidc_provider, db):
    make_user("dana.reyes", "cit")
    linked(db, oidc_provider, "dana.reyes", "idp-0014")
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
        client, make_user, browser_at_idp, oidc_provider, db):
    user_id = make_user("dana.reyes", "cit")
    linked(db, oidc_provider, "dana.reyes", "idp-0015")
    db.execute("UPDATE users SET must_change_password = 1 WHERE id = ?", [user_id])
    db.conn.commit()
    browser_at_idp.sign_in("idp-0015", {"preferred_username": "dana.reyes"})
    assert client.get("/").status_code == 200


@pytest.mark.browser
@pytest.mark.parametrize("sso_settings", [{"SSO_CLIENT_ID": "fieldapp-browser"}])
def test_in_a_browser_sign_in_and_sign_out_go_through_the_provider(live_server, browser, make_user, oidc_provider, db):
    make_user("dana.reyes", "cit", display_name="Ofc. Dana Reyes")
    linked(db, oidc_provider, "dana.reyes", "idp-0016")
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


# ---- The agency sign-in as a fresh proof, and the owner's own link (F1 and F2) ----

def test_someone_who_signs_in_through_the_provider_confirms_it_is_them_there(
        client, make_user, browser_at_idp, oidc_provider, db, clock):
    make_user("dana.reyes", "cit")
    linked(db, oidc_provider, "dana.reyes", "idp-0050")
    browser_at_idp.sign_in("idp-0050", {})
    clock.advance(6 * 60)
    assert client.post("/account/security/recovery-codes").headers["Location"].startswith("/account/confirm")
    assert "Confirm with Metro PD account" in client.get("/account/confirm").get_data(as_text=True)
    # The provider must ask who it is again (prompt=login), and say when it did (max_age makes auth_time required).
    asked = parse_qs(urlsplit(client.get("/sso/login?for=step_up").headers["Location"]).query)
    assert asked["prompt"] == ["login"] and asked["max_age"] == ["300"]
    back = browser_at_idp.sign_in("idp-0050", {}, start="/sso/login?for=step_up&next=/account/security")
    assert back.status_code == 302 and back.headers["Location"] == "/account/security"
    assert audit_actions(db, "step_up")[-1]["detail"] == "with the identity provider"
    assert client.post("/account/security/recovery-codes").status_code == 200


def test_another_person_at_the_provider_confirms_nothing(client, make_user, app, oidc_provider, db, clock):
    make_user("dana.reyes", "cit")
    make_user("k.okafor", "cit")
    linked(db, oidc_provider, "dana.reyes", "idp-0051")
    linked(db, oidc_provider, "k.okafor", "idp-0052")
    Browser(client).sign_in("idp-0051", {})
    clock.advance(6 * 60)
    refused = Browser(client).sign_in("idp-0052", {}, start="/sso/login?for=step_up&next=/account/security")
    assert refused.status_code == 403 and "not the one linked to yours" in refused.get_data(as_text=True)
    assert client.post("/account/security/recovery-codes").headers["Location"].startswith("/account/confirm")


def test_the_owner_links_their_own_account_from_the_security_page(client, make_user, auth, browser_at_idp, db):
    make_user("ofc.kim", "officer", display_name="Ofc. Kim Lee")
    auth.login("ofc.kim")
    assert "Link Metro PD account" in client.get("/account/security").get_data(as_text=True)
    start = client.get("/account/security/sso/link")
    assert start.headers["Location"] == "/sso/login?for=link"
    back = browser_at_idp.sign_in("idp-0053", {"preferred_username": "whoever"}, start=start.headers["Location"])
    assert back.headers["Location"] == "/account/security"
    assert one(db, "SELECT subject, how FROM sso_links") == {"subject": "idp-0053",
                                                             "how": "its owner, from their Security page"}
    assert "Linked since" in client.get("/account/security").get_data(as_text=True)
    # And removes it: the next agency sign-in is refused until it is linked again.
    assert client.post("/account/security/sso/remove").status_code == 303
    assert list(db.query("SELECT * FROM sso_links")) == []
    assert [a["detail"] for a in audit_actions(db, "sso_unlinked")] == ["sub idp-0053, by its owner"]


def test_a_supervisor_linking_their_own_account_waits_for_a_coordinator(client, make_user, auth, browser_at_idp, db):
    make_user("sgt.lind", "supervisor")
    auth.login("sgt.lind")
    start = client.get("/account/security/sso/link")
    browser_at_idp.sign_in("idp-0054", {}, start=start.headers["Location"])
    assert list(db.query("SELECT * FROM sso_links")) == []
    assert one(db, "SELECT user_id FROM sso_link_requests")["user_id"] is not None
    assert "waits for a coordinator" in client.get("/account/security").get_data(as_text=True)


def test_linking_your_own_account_needs_a_fresh_proof(client, make_user, auth, db, clock):
    make_user("ofc.kim", "officer")
    auth.login("ofc.kim")
    clock.advance(6 * 60)
    assert client.get("/account/security/sso/link").headers["Location"].startswith("/account/confirm")
    assert client.post("/account/security/sso/remove").headers["Location"].startswith("/account/confirm")
