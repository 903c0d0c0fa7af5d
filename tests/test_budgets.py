"""Byte budgets: what a weak phone on a poor connection has to download.

These measure bytes, never times, so they fail the same way on any machine.
A response's transfer is counted as what crosses the wire: its status line and
headers plus its body as sent, compressed when the client asked for gzip, as
every browser does. Figures and how they were measured: docs/PERFORMANCE.md.
"""
import gzip
import json
from html.parser import HTMLParser
from urllib.parse import urlsplit

import pytest

from fieldapp.content import get_library

KB = 1024
FIRST_VISIT_BUDGET = 60 * KB  # login page + officer's home, with every asset they reference
REFERENCE_PAGE_BUDGET = 15 * KB  # one reference page, its assets already cached
ONE_YEAR = 365 * 24 * 3600
GZIP = {"Accept-Encoding": "gzip"}
# htmx polls carry these; a poll asks for the fragment, not the page.
POLL_HEADERS = {**GZIP, "HX-Request": "true"}


class AssetLinks(HTMLParser):
    """The URLs a page makes the browser fetch: styles, scripts, icons, manifest, images."""

    FETCHED_RELS = {"stylesheet", "icon", "apple-touch-icon", "manifest", "preload", "modulepreload"}

    def __init__(self):
        super().__init__()
        self.urls = []

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if tag == "link" and self.FETCHED_RELS & set((attrs.get("rel") or "").split()) and attrs.get("href"):
            self.urls.append(attrs["href"])
        elif tag in ("script", "img") and attrs.get("src"):
            self.urls.append(attrs["src"])


def assets_of(html):
    """Same-site asset paths referenced by `html` (not data: URIs), in order, without duplicates."""
    parser = AssetLinks()
    parser.feed(html)
    seen = []
    for url in parser.urls:
        if url.startswith("/") and not url.startswith("//") and url not in seen:
            seen.append(url)
    return seen


def wire_bytes(response):
    """Bytes on the wire for one response: status line, headers and body as sent."""
    head = len(f"HTTP/1.1 {response.status}\r\n") + sum(len(f"{k}: {v}\r\n") for k, v in response.headers.items()) + 2
    return head + len(response.get_data())


def text_of(response):
    """The response body as text, decompressed if it came gzipped."""
    data = response.get_data()
    if response.headers.get("Content-Encoding") == "gzip":
        data = gzip.decompress(data)
    return data.decode("utf-8")


def fetch(client, url, headers=GZIP):
    """GET `url` and return (status, wire bytes, headers, text or None), closing the response."""
    with client.get(url, headers=headers) as response:
        body = text_of(response) if response.mimetype.startswith(("text/", "application/")) else None
        return response.status_code, wire_bytes(response), response.headers, body


def first_visit(client, auth, username):
    """Open the sign-in page, sign in, land on home; every asset fetched once. Returns [(url, bytes)]."""
    log = []
    assets = []
    status, size, _, login_html = fetch(client, "/login")
    assert status == 200
    log.append(("/login", size))
    assets += assets_of(login_html)
    with auth.login(username) as response:
        assert response.status_code == 302
        log.append(("POST /login", wire_bytes(response)))
    status, size, _, home_html = fetch(client, "/")
    assert status == 200
    log.append(("/", size))
    assets += [url for url in assets_of(home_html) if url not in assets]
    fetched = set()
    for url in assets:
        status, size, headers, body = fetch(client, url)
        assert status == 200, url
        log.append((url, size))
        fetched.add(url)
        if headers.get("Content-Type", "").startswith("application/manifest+json"):
            # Browsers fetch the manifest's icons to offer installing the app.
            for icon in json.loads(body)["icons"]:
                if icon["src"] not in fetched and icon["src"] not in assets:
                    status, size, _, _ = fetch(client, icon["src"])
                    assert status == 200, icon["src"]
                    log.append((icon["src"], size))
                    fetched.add(icon["src"])
    return log


def test_first_visit_to_login_and_home_is_under_60_kb(client, auth, make_user):
    make_user("ofc.first", "officer", display_name="Ofc. First Visit", unit="1-Adam-1")
    log = first_visit(client, auth, "ofc.first")
    urls = " ".join(url for url, _ in log)
    assert "htmx" in urls and ".css" in urls and ".js" in urls, f"the pages' assets were not all found: {urls}"
    total = sum(size for _, size in log)
    detail = "\n".join(f"  {size:7,d}  {url}" for url, size in log)
    assert total < FIRST_VISIT_BUDGET, f"first visit transfers {total:,} bytes, budget {FIRST_VISIT_BUDGET:,}:\n{detail}"


def test_the_first_visit_includes_htmx_compressed(client, auth, make_user):
    make_user("ofc.first", "officer")
    log = first_visit(client, auth, "ofc.first")
    htmx = [size for url, size in log if "htmx" in url]
    assert htmx and htmx[0] < 25 * KB, "htmx must be sent compressed (about 16 KB gzipped of 52 KB)"


def test_every_reference_page_is_under_15_kb(app, client, officer):
    with app.app_context():
        slugs = sorted(get_library().topics)
    assert "psychosis" in slugs
    sizes = {slug: fetch(client, f"/reference/{slug}")[1] for slug in slugs}
    over = {slug: size for slug, size in sizes.items() if size >= REFERENCE_PAGE_BUDGET}
    assert not over, f"reference pages over {REFERENCE_PAGE_BUDGET:,} bytes: {over}"


def test_a_reference_page_is_under_15_kb_with_its_assets_cached(client, officer):
    status, size, _, _ = fetch(client, "/reference/psychosis")
    assert status == 200
    assert size < REFERENCE_PAGE_BUDGET


def assert_gzipped(client, path):
    with client.get(path, headers=GZIP) as response:
        assert response.status_code == 200, path
        assert response.headers.get("Content-Encoding") == "gzip", path
        assert "Accept-Encoding" in response.headers.get("Vary", ""), path


def test_the_login_page_is_gzip_compressed(client):
    assert_gzipped(client, "/login")


@pytest.mark.parametrize("path", ["/", "/reference", "/reference/psychosis", "/reference/search?q=voices"])
def test_pages_are_gzip_compressed(client, officer, path):
    assert_gzipped(client, path)


def test_static_text_assets_are_gzip_compressed(client, officer):
    html = fetch(client, "/")[3]
    text_assets = [url for url in assets_of(html) if urlsplit(url).path.endswith((".css", ".js"))]
    assert len(text_assets) >= 3  # our stylesheet, our script, htmx
    for url in text_assets:
        with client.get(url, headers=GZIP) as response:
            assert response.headers.get("Content-Encoding") == "gzip", url


def test_versioned_static_files_are_cached_for_a_year(client, officer):
    html = fetch(client, "/")[3]
    versioned = [url for url in assets_of(html) if "/static/" in url]
    assert versioned and all("v=" in urlsplit(url).query for url in versioned), versioned
    for url in versioned:
        with client.get(url) as response:
            cache = response.headers.get("Cache-Control", "")
            directives = {d.strip().split("=")[0]: d.strip().partition("=")[2] for d in cache.split(",")}
            assert int(directives.get("max-age") or 0) >= ONE_YEAR, (url, cache)
            assert "immutable" in directives, (url, cache)


def _unchanged_poll(client, url):
    """Poll twice as htmx would, the second time with the ETag from the first; returns the second answer."""
    with client.get(url, headers=POLL_HEADERS) as first:
        assert first.status_code == 200, url
        etag = first.headers.get("ETag")
    headers = dict(POLL_HEADERS, **({"If-None-Match": etag} if etag else {}))
    with client.get(url, headers=headers) as second:
        return second.status_code, len(second.get_data()), wire_bytes(second)


def test_unchanged_compressed_request_status_poll_is_an_empty_304(client, officer):
    response = client.post("/requests", data={"location_text": "Corner of Main and 3rd", "client_id": "budget-test-1"})
    assert response.status_code == 303
    url = response.headers["Location"].rstrip("/") + "/live"
    status, body, _ = _unchanged_poll(client, urlsplit(url).path)
    assert (status, body) == (304, 0)

