"""In a real Chromium: two people sign a card off from their own accounts, and no card claims a review it lacks."""
import datetime
from pathlib import Path

import pytest
from axe_playwright_python.sync_playwright import Axe
from playwright.sync_api import expect

from fieldapp.content import Library, content_dirs, get_library, load_topics
from fieldapp.identity.accounts import create_user, user_by_username
from fieldapp.reference.content_review import sign_off
from fieldapp.reference.offline import precache_version
from fieldapp.store.db import connect
from tests.helpers import PASSWORD, sign_in, wait_until

pytestmark = pytest.mark.browser
PHONE = {"width": 360, "height": 740}
FIXTURES = Path(__file__).parent / "content_fixtures"
SAVED = (
    "([path, version]) => caches.keys().then((keys) => keys.filter((k) => k.endsWith(version)))"
    ".then((keys) => Promise.all(keys.map((k) => caches.open(k).then((c) => c.match(path)))))"
    ".then((hits) => hits.some(Boolean))"
)


@pytest.fixture
def people(live_server):
    """An officer, the CIT coordinator and the clinical partner, each with their own account."""
    db = connect(live_server.config["DATABASE"])
    with live_server.app_context():
        create_user(db, "ofc.lee", PASSWORD, "officer", "Ofc. Kim Lee")
        create_user(db, "coord.ruiz", PASSWORD, "coordinator", "Sgt. B. Okafor")
        create_user(db, "dr.rivera", PASSWORD, "clinical_partner", "Dr. A. Rivera")
    yield db
    db.close()


def person(browser, live_server, username, lands_on="/", service_workers="allow"):
    """A phone of their own, signed in.

    An officer's phone serves a card it saved until a sign-off ships a new service
    worker (the last test here follows that); with workers blocked, each load asks the server.
    """
    context = browser.new_context(viewport=PHONE, base_url=live_server.base_url, service_workers=service_workers)
    page = context.new_page()
    sign_in(page, live_server.base_url, username, lands_on=lands_on)
    return page


def footer(page, base_url, slug):
    page.goto(f"{base_url}/reference/{slug}")
    return page.locator("footer.provenance [data-review]").inner_text()


def version_now(app):
    with app.test_request_context():
        return precache_version()


def sign_on_phone(page, base_url, slug, role):
    page.goto(f"{base_url}/program/content-review/{slug}")
    page.get_by_role("button", name=f"Sign off version 1 as the {role}").click()
    expect(page.locator(".flash")).to_contain_text(f"Signed off as the {role}")


def test_two_people_sign_off_from_their_own_accounts_and_an_edit_drops_it_to_draft(
        browser, agency_dir, live_server, people):
    base = live_server.base_url
    today = datetime.date.today().isoformat()
    officer = person(browser, live_server, "ofc.lee", service_workers="block")
    coordinator = person(browser, live_server, "coord.ruiz")
    partner = person(browser, live_server, "dr.rivera", lands_on="/program/content-review")
    try:
        assert footer(officer, base, "calm-voice").startswith("Draft")

        sign_on_phone(coordinator, base, "calm-voice", "CIT coordinator")
        one_sign_off = footer(officer, base, "calm-voice")
        assert "Reviewed" not in one_sign_off and "Signed off so far by the CIT coordinator only." in one_sign_off

        # The clinical partner finds the card on the list, reads it and signs it off.
        partner.goto(f"{base}/program/content-review")
        partner.get_by_role("link", name="Calm voice").click()
        expect(partner.locator(".review-preview article.topic h1")).to_have_text("Calm voice")
        partner.get_by_role("button", name="Sign off version 1 as the clinical partner").click()
        expect(partner.locator("[data-version]").first).to_contain_text("Reviewed")
        assert footer(officer, base, "calm-voice") == (
            f"Reviewed {today} by Sgt. B. Okafor (CIT coordinator) and Dr. A. Rivera (clinical partner).")

        # The agency edits the card file; the app loads it again, as at the next start.
        card = agency_dir / "calm-voice.md"
        card.write_text(card.read_text().replace("Shouting.", "Shouting, or several voices at once."))
        live_server.extensions["fieldapp.content"] = Library(load_topics(content_dirs(live_server)))
        edited = footer(officer, base, "calm-voice")
        assert "Reviewed" not in edited and edited.startswith("Draft")
        assert f"This text changed after its sign-off of {today} (changed: items)." in edited
        coordinator.goto(f"{base}/program/content-review")
        row = coordinator.locator("#card-calm-voice")
        expect(row).to_have_attribute("data-status", "changed since sign-off")
        expect(row.locator("[data-version]")).to_have_text(f"version 2, changed {today}")
    finally:
        for page in (officer, coordinator, partner):
            page.context.close()


def test_an_unfilled_card_never_shows_reviewed_and_says_why_it_cannot_be_signed(browser, live_server, people):
    base = live_server.base_url
    officer = person(browser, live_server, "ofc.lee", service_workers="block")
    partner = person(browser, live_server, "dr.rivera", lands_on="/program/content-review")
    try:
        partner.goto(f"{base}/program/content-review/emergency-evaluation")
        expect(partner.locator("[data-refusal]")).to_contain_text("is not filled in")
        expect(partner.get_by_role("button", name="Sign off", exact=False)).to_have_count(0)
        # Even a hand-made post is refused, with the reason on the page.
        token = partner.locator("input[name=csrf_token]").first.get_attribute("value") or partner.evaluate(
            "() => JSON.parse(document.body.getAttribute('hx-headers'))['X-CSRFToken']")
        with live_server.app_context():
            digest = get_library().get("emergency-evaluation").digest
        response = partner.request.post(f"{base}/program/content-review/emergency-evaluation",
                                        form={"content_hash": digest, "csrf_token": token})
        assert response.status == 409 and "is not filled in" in response.text()
        text = footer(officer, base, "emergency-evaluation")
        assert "Reviewed" not in text and text.startswith("Draft")
        expect(officer.locator(".unfilled")).to_contain_text("Not filled in.")
    finally:
        officer.context.close()
        partner.context.close()


def test_content_review_fits_a_phone_without_sideways_scroll(browser, live_server, people):
    base = live_server.base_url
    partner = person(browser, live_server, "dr.rivera", lands_on="/program/content-review")
    try:
        for path in ("/program/content-review", "/program/content-review/suicide-risk",
                     "/program/content-review/emergency-evaluation"):
            partner.goto(base + path)
            width = partner.evaluate("() => [document.documentElement.scrollWidth, window.innerWidth]")
            assert width[0] <= width[1] == PHONE["width"], (path, width)
    finally:
        partner.context.close()


def test_both_sign_offs_reach_the_card_saved_on_the_phone(browser, live_server, people):
    db = people
    with live_server.app_context():
        slug = next(t.slug for t in get_library().topics.values() if t.kind == "checklist" and not t.placeholders())
    page = person(browser, live_server, "ofc.lee")
    try:
        before = version_now(live_server)
        wait_until(page, SAVED, [f"/reference/{slug}", before])
        assert footer(page, live_server.base_url, slug).startswith("Draft")

        with live_server.test_request_context():
            library = get_library()
            for username in ("coord.ruiz", "dr.rivera"):
                sign_off(db, library, slug, library.get(slug).digest, user_by_username(db, username))
        # The officer opens the app again: the browser checks the worker and installs the
        # new version, which drops the old copies; the next page saves the cards again.
        version = version_now(live_server)
        assert version != before
        page.goto(f"{live_server.base_url}/")
        # The new worker is active once it has dropped the old version's caches.
        wait_until(
            page,
            "([old, version]) => caches.keys().then((keys) => keys.some((k) => k.endsWith(version)) && !keys.some((k) => k.endsWith(old)))",
            [before, version],
        )
        page.goto(f"{live_server.base_url}/")
        wait_until(page, SAVED, [f"/reference/{slug}", version])

        page.context.set_offline(True)
        page.goto(f"{live_server.base_url}/reference/{slug}")
        text = page.locator("footer.provenance").inner_text()
        assert (f"Reviewed {datetime.date.today().isoformat()} by Sgt. B. Okafor (CIT coordinator)"
                " and Dr. A. Rivera (clinical partner).") in text
    finally:
        page.context.close()


@pytest.mark.parametrize("path", ["/program/content-review", "/program/content-review/psychosis"])
def test_content_review_has_no_serious_accessibility_violations(browser, live_server, people, path):
    page = person(browser, live_server, "dr.rivera", lands_on="/program/content-review")
    try:
        page.goto(live_server.base_url + path)
        for theme in ("light", "dark"):
            page.emulate_media(color_scheme=theme)
            violations = Axe().run(page).response["violations"]
            serious = [v for v in violations if v["impact"] in ("serious", "critical")]
            assert not serious, (theme, [(v["id"], [n["target"] for n in v["nodes"]]) for v in serious])
    finally:
        page.context.close()
