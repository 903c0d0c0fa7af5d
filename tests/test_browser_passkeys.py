"""Passkeys and security keys for real in Chromium, through its virtual authenticator (CDP WebAuthn domain)."""
import pytest
from playwright.sync_api import expect

from fieldapp.identity.accounts import ROLES
from fieldapp.store.db import connect
from tests.helpers import sign_in

pytestmark = pytest.mark.browser

PLATFORM = "internal"  # a phone's fingerprint or face
USB = "usb"  # a FIDO2 security key, the one for a shared car computer


@pytest.fixture
def app_config(app_config):
    """Every role must have a second factor, as shipped."""
    return dict(app_config, MFA_REQUIRED_ROLES=list(ROLES))


class Authenticators:
    """Chromium's virtual authenticators on one page: plug a key in, take it out, read what it holds."""

    def __init__(self, page):
        self.cdp = page.context.new_cdp_session(page)
        self.cdp.send("WebAuthn.enable", {"enableUI": False})

    def plug_in(self, transport):
        return self.cdp.send("WebAuthn.addVirtualAuthenticator", {"options": {
            "protocol": "ctap2", "transport": transport, "hasResidentKey": True, "hasUserVerification": True,
            "isUserVerified": True, "automaticPresenceSimulation": True,
        }})["authenticatorId"]

    def take_out(self, authenticator_id):
        self.cdp.send("WebAuthn.removeVirtualAuthenticator", {"authenticatorId": authenticator_id})

    def credentials(self, authenticator_id):
        return self.cdp.send("WebAuthn.getCredentials", {"authenticatorId": authenticator_id})["credentials"]


@pytest.fixture
def page(browser, localhost_server):
    context = browser.new_context(base_url=localhost_server.base_url)
    page = context.new_page()
    yield page
    context.close()


def signed_in_as(page):
    return page.locator("footer").inner_text()


def sign_in_with_passkey(page, base_url):
    page.goto(base_url + "/login")
    page.get_by_role("button", name="Sign in with a passkey").click()
    page.wait_for_url(base_url + "/")


def enrol_after_password(page, base_url, username, button, name):
    """Give the password, then set up a key on the enrolment page that follows it."""
    page.goto(base_url + "/login")
    page.get_by_label("Username").fill(username)
    page.get_by_label("Password").fill("correct horse battery")
    page.get_by_role("button", name="Sign in", exact=True).click()
    page.wait_for_url(base_url + "/login/enrol")
    page.get_by_label("Name it").fill(name)
    page.get_by_role("button", name=button).click()
    page.wait_for_url(base_url + "/")


def test_a_passkey_on_the_phone_is_set_up_after_the_password_and_then_signs_in_alone(page, localhost_server, make_user):
    base = localhost_server.base_url
    make_user("dana", "cit", display_name="Ofc. Dana Reyes")
    keys = Authenticators(page)
    phone = keys.plug_in(PLATFORM)
    enrol_after_password(page, base, "dana", "Add a passkey on this device", "My phone")
    assert "Signed in as Ofc. Dana Reyes" in signed_in_as(page)
    [credential] = keys.credentials(phone)
    assert credential["isResidentCredential"]
    page.get_by_role("button", name="Sign out").click()
    page.wait_for_url(f"{base}/login?signed_out=1")
    sign_in_with_passkey(page, base)
    assert "Signed in as Ofc. Dana Reyes" in signed_in_as(page)
    db = connect(localhost_server.config["DATABASE"])
    stored = list(db.query("SELECT name, sign_count, transports FROM passkeys"))
    assert [(s["name"], s["sign_count"]) for s in stored] == [("My phone", keys.credentials(phone)[0]["signCount"])]
    assert [r["detail"] for r in db.query("SELECT detail FROM audit_log WHERE action = 'login' ORDER BY id")] == [
        "via password+passkey (enrolled)", "via passkey"]


def test_a_usb_security_key_is_added_on_the_security_page_and_signs_in(page, localhost_server, make_user):
    base = localhost_server.base_url
    localhost_server.config["MFA_REQUIRED_ROLES"] = []
    make_user("sam", "officer", display_name="Ofc. Sam Okoro")
    keys = Authenticators(page)
    blue = keys.plug_in(USB)
    sign_in(page, base, "sam")
    page.get_by_role("link", name="Security").click()
    # The buttons work once passkeys.js (deferred) has run: a click before that does nothing.
    page.wait_for_url(base + "/account/security")
    page.wait_for_load_state("load")
    page.get_by_label("Name it").fill("Blue key")
    page.get_by_role("button", name="Add a security key").click()
    expect(page.get_by_text("Passkey added.")).to_be_visible()
    assert page.get_by_label("Name", exact=True).input_value() == "Blue key"
    assert "usb" in page.locator("main").inner_text()
    page.get_by_role("button", name="Sign out").click()
    page.wait_for_url(f"{base}/login?signed_out=1")
    sign_in_with_passkey(page, base)
    assert "Signed in as Ofc. Sam Okoro" in signed_in_as(page)
    assert len(keys.credentials(blue)) == 1


def session_cookie(page):
    return next(c for c in page.context.cookies() if c["name"] == "session")["value"]


def test_on_a_shared_car_computer_each_officer_signs_in_with_their_own_key_in_a_new_session(
        page, browser, localhost_server, make_user):
    base = localhost_server.base_url
    make_user("sam", "officer", display_name="Ofc. Sam Okoro")
    make_user("kim", "officer", display_name="Ofc. Kim Lee")
    keys = Authenticators(page)
    sams_key = keys.plug_in(USB)
    enrol_after_password(page, base, "sam", "Add a security key", "Sam's key")
    sams_first_cookie = session_cookie(page)
    held_by_sams_key = keys.credentials(sams_key)
    page.get_by_role("button", name="Switch officer").click()
    page.wait_for_url(f"{base}/login?signed_out=1")
    keys.take_out(sams_key)  # Sam takes his key home

    kims_key = keys.plug_in(USB)
    enrol_after_password(page, base, "kim", "Add a security key", "Kim's key")
    kims_cookie = session_cookie(page)
    page.get_by_role("button", name="Switch officer").click()
    page.wait_for_url(f"{base}/login?signed_out=1")
    keys.take_out(kims_key)

    # Next shift: Sam plugs his own key back in.
    sams_key = keys.plug_in(USB)
    keys.cdp.send("WebAuthn.addCredential", {"authenticatorId": sams_key, "credential": held_by_sams_key[0]})
    sign_in_with_passkey(page, base)
    assert "Signed in as Ofc. Sam Okoro" in signed_in_as(page)
    assert session_cookie(page) not in (kims_cookie, sams_first_cookie)
    # Neither earlier session can be picked up again from a copy of its cookie.
    for old in (kims_cookie, sams_first_cookie):
        other = browser.new_context(base_url=base)
        other.add_cookies([{"name": "session", "value": old, "url": base}])
        other_page = other.new_page()
        other_page.goto(base + "/")
        assert other_page.url.startswith(base + "/login")
        other.close()


def test_once_the_proof_lapses_a_change_asks_to_confirm_and_the_key_confirms_it(page, localhost_server, make_user):
    base = localhost_server.base_url
    localhost_server.config["MFA_REQUIRED_ROLES"] = []
    make_user("sam", "officer", display_name="Ofc. Sam Okoro")
    keys = Authenticators(page)
    keys.plug_in(USB)
    sign_in(page, base, "sam")
    page.goto(base + "/account/security")
    page.wait_for_load_state("load")
    page.get_by_label("Name it").fill("Blue key")
    page.get_by_role("button", name="Add a security key").click()
    expect(page.get_by_text("Passkey added.")).to_be_visible()
    localhost_server.config["STEP_UP_MINUTES"] = 0  # the sign-in's proof lapses at once
    page.get_by_label("Name it").fill("Spare key")
    page.get_by_role("button", name="Add a security key").click()
    # The passkey script follows the server to the Confirm page instead of showing an error.
    page.wait_for_url(base + "/account/confirm?next=/account/security")
    localhost_server.config["STEP_UP_MINUTES"] = 5
    page.wait_for_load_state("load")
    page.get_by_role("button", name="Confirm with your passkey or security key").click()
    page.wait_for_url(base + "/account/security")
    page.get_by_role("button", name="Make ten new recovery codes").click()
    expect(page.get_by_text("Your recovery codes")).to_be_visible()
