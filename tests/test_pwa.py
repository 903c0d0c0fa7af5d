"""The installable, offline-first shell: manifest, service worker, assets."""
import re
from pathlib import Path

import pytest

from fieldapp.db import connect, migrate

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


def test_versioned_static_files_are_cached_for_a_year(client):
    html = client.get("/login").get_data(as_text=True)
    css = re.search(r'href="(/static/css/app.css\?v=[0-9a-f]+)"', html).group(1)
    with client.get(css) as response:
        assert "max-age=31536000" in response.headers["Cache-Control"]


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
