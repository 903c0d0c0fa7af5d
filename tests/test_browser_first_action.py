"""In a real Chromium on a 360×740 phone: every card's first action is on the first screen, in both themes."""
import pytest
from playwright.sync_api import expect

from fieldapp.identity.accounts import create_user
from fieldapp.content import NEEDS_FIRST, get_library
from fieldapp.store.db import connect
from tests.helpers import PASSWORD, sign_in

pytestmark = pytest.mark.browser
SCREEN = {"width": 360, "height": 740}


def cards_that_need_a_first_step(app):
    """Every checklist and prompt the running app serves: ours, or the agency's version."""
    with app.app_context():
        return sorted((t.slug, t.first) for t in get_library().topics.values() if t.kind in NEEDS_FIRST)


def style(locator, *properties):
    return locator.evaluate("(el, props) => props.map((p) => getComputedStyle(el)[p])", list(properties))


@pytest.mark.parametrize("theme", ["light", "dark"])
def test_every_cards_first_action_is_on_the_first_screen(browser, live_server, theme):
    with live_server.app_context():
        create_user(connect(live_server.config["DATABASE"]), "ofc.lee", PASSWORD, "officer", "Ofc. Kim Lee")
    cards = cards_that_need_a_first_step(live_server)
    assert cards, "the library has no checklist or prompt cards"
    context = browser.new_context(viewport=SCREEN, base_url=live_server.base_url, color_scheme=theme)
    page = context.new_page()
    try:
        sign_in(page, live_server.base_url, "ofc.lee")
        off_screen = []
        for slug, first in cards:
            page.goto(f"{live_server.base_url}/reference/{slug}")
            assert page.evaluate("matchMedia('(prefers-color-scheme: dark)').matches") == (theme == "dark")
            callout = page.locator("[data-first]")
            assert callout.count() == 1, f"{slug} has no first-action callout"
            assert first in callout.inner_text(), slug
            expect(callout, slug).to_be_visible()
            box = callout.bounding_box()
            if not (box and box["y"] >= 0 and box["y"] + box["height"] <= SCREEN["height"] and box["width"] > 0):
                off_screen.append((slug, box))
                continue
            # It comes before what the card asks the officer to read, and does not look like it.
            body = page.locator(".checklist .check, .prompt li").first
            body_box = body.bounding_box()
            assert box["y"] + box["height"] <= body_box["y"], slug
            assert style(callout, "borderLeftColor", "borderLeftWidth") != style(body, "borderLeftColor", "borderLeftWidth"), slug
        assert not off_screen, f"first action below the first screen at 360×740 ({theme}): {off_screen}"
    finally:
        context.close()
