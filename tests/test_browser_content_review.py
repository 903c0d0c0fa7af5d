"""In a real Chromium: a sign-off reaches the copy of a card an officer's phone keeps offline."""
import datetime

import pytest

from fieldapp.identity.accounts import create_user
from fieldapp.content import get_library
from fieldapp.store.db import connect
from fieldapp.reference.content_review import sign_off
from fieldapp.reference.offline import precache_version
from tests.helpers import PASSWORD, sign_in, wait_until

pytestmark = pytest.mark.browser
SAVED = (
    "([path, version]) => caches.keys().then((keys) => keys.filter((k) => k.endsWith(version)))"
    ".then((keys) => Promise.all(keys.map((k) => caches.open(k).then((c) => c.match(path)))))"
    ".then((hits) => hits.some(Boolean))"
)


def version_now(app):
    with app.test_request_context():
        return precache_version()


def test_a_sign_off_reaches_the_card_saved_on_the_phone(browser, live_server):
    db = connect(live_server.config["DATABASE"])
    with live_server.app_context():
        create_user(db, "ofc.lee", PASSWORD, "officer", "Ofc. Kim Lee")
        slug = next(t.slug for t in get_library().topics.values() if t.kind == "checklist")
    context = browser.new_context(viewport={"width": 360, "height": 740}, base_url=live_server.base_url)
    page = context.new_page()
    try:
        sign_in(page, live_server.base_url, "ofc.lee")
        before = version_now(live_server)
        wait_until(page, SAVED, [f"/reference/{slug}", before])
        page.goto(f"{live_server.base_url}/reference/{slug}")
        assert "Draft: not yet reviewed" in page.locator("footer.provenance").inner_text()

        with live_server.test_request_context():
            library = get_library()
            sign_off(db, library, slug, library.get(slug).digest, "Dr. A. Rivera", "clinical partner")
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

        context.set_offline(True)
        page.goto(f"{live_server.base_url}/reference/{slug}")
        footer = page.locator("footer.provenance").inner_text()
        assert f"Reviewed {datetime.date.today().isoformat()} by Dr. A. Rivera, clinical partner." in footer
    finally:
        context.close()
        db.close()
