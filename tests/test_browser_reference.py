"""In a real Chromium: sign in, tick a checklist, lose the network, and still read it."""
import pytest
from playwright.sync_api import expect
from axe_playwright_python.sync_playwright import Axe

from fieldapp.identity.accounts import create_user
from fieldapp.store.db import connect
from tests.helpers import PASSWORD, sign_in, wait_for_offline_copy, wait_until

pytestmark = pytest.mark.browser
PHONE = {"width": 360, "height": 640}


@pytest.fixture
def officer_page(browser, live_server):
    with live_server.app_context():
        create_user(connect(live_server.config["DATABASE"]), "ofc.lee", PASSWORD, "officer", "Ofc. Kim Lee")
    context = browser.new_context(viewport=PHONE, base_url=live_server.base_url)
    page = context.new_page()
    yield page
    context.close()


def test_checklist_ticks_survive_going_offline(officer_page, live_server):
    page = officer_page
    sign_in(page, live_server.base_url, "ofc.lee")
    page.get_by_role("link", name="Reference", exact=True).click()
    page.get_by_role("link", name="Psychosis").first.click()
    boxes = page.locator("input[name=mark]")
    boxes.nth(0).check()
    boxes.nth(2).check()
    page.get_by_text("2 marked").wait_for()
    wait_for_offline_copy(page, "/reference/psychosis")

    page.context.set_offline(True)
    page.reload()
    expect(page.get_by_role("heading", name="Psychosis")).to_be_visible()
    expect(page.locator("#net-status")).to_be_visible()
    expect(boxes.nth(0)).to_be_checked()
    expect(boxes.nth(2)).to_be_checked()
    expect(boxes.nth(1)).not_to_be_checked()
    # Every other reference page is there too, though never opened.
    page.goto(live_server.base_url + "/reference/suicide-risk")
    expect(page.get_by_role("heading", name="Suicide risk")).to_be_visible()


def test_offline_search_finds_titles_from_the_saved_index(officer_page, live_server):
    page = officer_page
    sign_in(page, live_server.base_url, "ofc.lee")
    wait_for_offline_copy(page, "/reference/titles.json")
    # Even the page that was open while the worker installed is controlled, so searches offline.
    wait_until(page, "() => navigator.serviceWorker.controller !== null")
    page.context.set_offline(True)
    page.get_by_label("Search the reference").fill("suicide")
    page.get_by_text("Offline: searching titles only.").wait_for()
    # Wait for the swap rather than sampling once: a debounced earlier swap may land first.
    expect(page.locator("#search-results a[href='/reference/suicide-risk']")).to_be_visible()


# The result links now, once they are fewer than `broad`, all among them, and Psychosis one of them.
NARROWED = """broad => {
  const now = [...document.querySelectorAll("#search-results a")].map(a => a.getAttribute("href"));
  return now.length < broad.length && now.every(h => broad.includes(h)) && now.includes("/reference/psychosis") && now;
}"""


def test_online_search_narrows_as_you_type(officer_page, live_server):
    page = officer_page
    sign_in(page, live_server.base_url, "ofc.lee")
    search = page.get_by_label("Search the reference")
    search.fill("v")
    links = page.locator("#search-results a")
    expect(links.first).to_be_visible()
    broad = links.evaluate_all("links => links.map(a => a.getAttribute('href'))")
    search.fill("voices")
    narrowed = wait_until(page, NARROWED, broad)
    assert set(broad) - set(narrowed), "the cards that do not mention voices left the list"


@pytest.mark.parametrize("path", ["/login", "/", "/reference/psychosis", "/reference/search?q=suicide"])
def test_no_serious_or_critical_accessibility_violations(officer_page, live_server, path):
    page = officer_page
    if path != "/login":
        sign_in(page, live_server.base_url, "ofc.lee")
    page.goto(live_server.base_url + path)
    for theme in ("light", "dark"):
        page.emulate_media(color_scheme=theme)
        results = Axe().run(page)
        serious = [v for v in results.response["violations"] if v["impact"] in ("serious", "critical")]
        assert not serious, (theme, [(v["id"], [n["target"] for n in v["nodes"]]) for v in serious])


# content/README.md's length budget: a checklist or prompt reads in under three 360×740 screens, from the top
# of the page to the end of its body with "More signs" collapsed (Related and Sources below not counted).
THREE_SCREENS = 3 * 740
CARD_BOTTOM = """() => {
  const parts = [...document.querySelector("article.topic").children].filter((el) => !el.matches(".related, .provenance"));
  return Math.max(...parts.map((el) => el.getBoundingClientRect().bottom + window.scrollY));
}"""


def test_every_checklist_and_prompt_reads_in_under_three_phone_screens(browser, live_server):
    from fieldapp.content import NEEDS_FIRST, get_library

    with live_server.app_context():
        create_user(connect(live_server.config["DATABASE"]), "ofc.lee", PASSWORD, "officer", "Ofc. Kim Lee")
        slugs = sorted(t.slug for t in get_library().topics.values() if t.kind in NEEDS_FIRST)
    context = browser.new_context(viewport={"width": 360, "height": 740}, base_url=live_server.base_url)
    page = context.new_page()
    try:
        sign_in(page, live_server.base_url, "ofc.lee")
        too_long = []
        for slug in slugs:
            page.goto(f"{live_server.base_url}/reference/{slug}")
            more = page.locator("details.more-signs")
            assert more.count() <= 1 and not (more.count() and more.evaluate("d => d.open")), slug
            bottom = page.evaluate(CARD_BOTTOM)
            if bottom >= THREE_SCREENS:
                too_long.append((slug, round(bottom)))
        assert not too_long, f"over three screens at 360×740 (px from the top): {too_long}"
        # One tap opens the background signs.
        page.goto(f"{live_server.base_url}/reference/psychosis")
        expect(page.get_by_text("covers ears")).to_be_hidden()
        page.locator("details.more-signs summary").click()
        expect(page.get_by_text("covers ears")).to_be_visible()
    finally:
        context.close()


def test_usable_on_a_landscape_mdt(browser, live_server):
    with live_server.app_context():
        create_user(connect(live_server.config["DATABASE"]), "mdt.unit", PASSWORD, "officer", "Ofc. MDT")
    context = browser.new_context(viewport={"width": 1024, "height": 768}, base_url=live_server.base_url)
    page = context.new_page()
    sign_in(page, live_server.base_url, "mdt.unit")
    # Nothing wider than the screen, and the big button is big.
    assert page.evaluate("document.documentElement.scrollWidth") <= 1024
    box = page.get_by_role("button", name="Request CIT officer").bounding_box()
    assert box["height"] >= 48
    context.close()
