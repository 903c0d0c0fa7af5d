"""The installable, offline-first shell: manifest, service worker, assets."""
import re
from pathlib import Path

import pytest

from fieldapp.store.db import connect, migrate
from tests.helpers import ask

ROOT = Path(__file__).parent.parent / "fieldapp"


def test_manifest_has_what_install_needs(client):
    response = client.get("/manifest.webmanifest")
    assert response.mimetype == "application/manifest+json"
    data = response.get_json(force=True)
    for key in ("id", "name", "short_name", "start_url", "scope", "theme_color", "background_color"):
        assert data[key]
    assert data["display"] == "standalone"
    sizes = {(i["sizes"], i["purpose"]) for i in data["icons"]}
    assert {("192x192", "any"), ("512x512", "any"), ("512x512", "maskable")} <= sizes
    for icon in data["icons"]:
        with client.get(icon["src"]) as response:
            assert response.status_code == 200 and response.mimetype == "image/png"


def test_every_page_links_the_manifest(client, officer):
    for path in ("/", "/reference", "/reference/psychosis", "/offline"):
        assert 'rel="manifest"' in client.get(path).get_data(as_text=True), path


def test_service_worker_is_served_from_root_uncached(client):
    response = client.get("/sw.js")
    assert response.mimetype == "text/javascript"
    assert response.headers["Cache-Control"] == "no-cache"
    body = response.get_data(as_text=True)
    assert re.search(r'const VERSION = "[0-9a-f]{12}";', body)


def test_service_worker_version_changes_with_content(app_config, tmp_path):
    from fieldapp import create_app

    migrate(connect(app_config["DATABASE"]))
    first = create_app(app_config).test_client().get("/sw.js").get_data(as_text=True)
    extra = tmp_path / "agency"
    extra.mkdir()
    (extra / "calm-voice.md").write_text(
        (Path(__file__).parent / "content_fixtures" / "good" / "calm-voice.md").read_text()
    )
    app_config["CONTENT_DIRS"] = str(extra)
    second = create_app(app_config).test_client().get("/sw.js").get_data(as_text=True)
    version = re.compile(r'const VERSION = "([0-9a-f]+)"')
    assert version.search(first).group(1) != version.search(second).group(1)


def test_precache_lists_every_reference_page_only_when_signed_in(client, make_user, auth):
    assert client.get("/precache.json").get_json()["urls"] == []
    make_user("ofc.ruiz", "officer")
    auth.login("ofc.ruiz")
    urls = client.get("/precache.json").get_json()["urls"]
    assert "/reference/psychosis" in urls and "/reference/titles.json" in urls


def test_htmx_is_vendored_with_its_licence():
    assert (ROOT / "static/vendor/htmx-2.0.11.min.js").stat().st_size > 40_000
    assert "Zero-Clause BSD" in (ROOT / "static/vendor/htmx-LICENSE.txt").read_text()


EXTERNAL = re.compile(
    r"""<script[^>]*\bsrc=["']https?://|<link[^>]*\bhref=["']https?://[^"']*\.(css|woff2?)|@import\s+url\(["']?https?://|fonts\.googleapis"""
)


@pytest.mark.parametrize(
    "path", sorted(p for p in ROOT.rglob("*") if p.suffix in {".html", ".js", ".css"} and "vendor" not in p.parts)
)
def test_nothing_loads_from_the_internet(path):
    assert not EXTERNAL.search(path.read_text()), path


# ---- Shared car computers (issue 11, finding 3) ----

OFFLINE_COPY = {"X-Fieldapp-Offline-Copy": "1"}


def test_offline_copies_carry_no_name_token_or_user_id(app, client, make_user):
    app.config["WTF_CSRF_ENABLED"] = True
    make_user("ofc.ruiz", "officer", display_name="Ofc. Alex Ruiz")
    token = re.search(r'name="csrf_token" value="([^"]+)"', client.get("/login").get_data(as_text=True)).group(1)
    client.post("/login", data={"username": "ofc.ruiz", "password": "correct horse battery", "csrf_token": token})
    live = client.get("/").get_data(as_text=True)
    live_token = re.search(r'"X-CSRFToken": "([^"]+)"', live).group(1)
    assert "Ofc. Alex Ruiz" in live and "data-user=" in live  # the live page does carry them
    for url in client.get("/precache.json").get_json()["urls"]:
        response = client.get(url, headers=OFFLINE_COPY)
        body = response.get_data(as_text=True)
        assert response.status_code == 200, url
        assert response.headers["X-Fieldapp-Offline-Copy"] == "1", url
        assert "Ofc. Alex Ruiz" not in body and "ofc.ruiz" not in body, url
        assert live_token not in body and "csrf_token" not in body and "X-CSRFToken" not in body, url
        assert "data-user=" not in body, url
    home = client.get("/", headers=OFFLINE_COPY).get_data(as_text=True)
    assert 'name="requester_id" value=""' in home


def test_the_offline_page_the_worker_keeps_at_install_carries_no_name_token_or_user_id(client, officer):
    # A worker that installs after the sign-in (a quick officer, a slow phone) fetches it with the session cookie.
    body = client.get("/offline").get_data(as_text=True)
    assert "Ofc. Kim Lee" not in body and "csrf" not in body.lower() and "data-user=" not in body


def test_pages_with_anything_personal_are_never_marked_as_offline_copies(client, officer):
    request_id = ask(client)
    for path in (f"/requests/{request_id}", "/account/password", "/precache.json"):
        response = client.get(path, headers=OFFLINE_COPY)
        assert "X-Fieldapp-Offline-Copy" not in response.headers, path
    assert "Ofc. Kim Lee" in client.get(f"/requests/{request_id}", headers=OFFLINE_COPY).get_data(as_text=True)


def test_service_worker_keeps_only_what_the_server_marked_as_an_offline_copy(client):
    body = client.get("/sw.js").get_data(as_text=True)
    assert 'const OFFLINE_COPY = "X-Fieldapp-Offline-Copy";' in body
    # The one place the worker writes pages, and it checks the mark (the map's part keeps only tiles and code).
    pages_part = body.split("// ---- The map")[0]
    assert pages_part.count("cache.put(") + pages_part.count(".put(url, response)") == 1
    assert 'response.headers.get(OFFLINE_COPY) === "1"' in body


def test_sign_out_clears_the_browsers_cache_but_keeps_the_offline_worker(client, officer):
    response = client.post("/logout")
    # "storage" or "*" would unregister the service worker: no offline cards, no request queue.
    assert response.headers["Clear-Site-Data"] == '"cache"'
