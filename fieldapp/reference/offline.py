"""The installable app: manifest, service worker, offline page, and the reference kept offline.

The service worker's precache is keyed by a hash of the content, the content
sign-offs and the static files, so any change to them ships a new worker and a
fresh cache.

What the worker keeps must be safe on a shared car computer: it asks for each
page as an *offline copy* (web/context.py), rendered with no name, CSRF token,
user id or open request, and it keeps only responses the server marked as
such. A page with anything personal on it is never cached.
"""
import hashlib

from flask import Blueprint, current_app, render_template, url_for
from flask_login import current_user

from ..content import get_library
from ..store.db import get_db
from ..web.assets import PUBLIC_ASSETS, asset_url, login_queued_url
from ..web.context import OFFLINE_COPY
from . import content_review
from .pages import READERS, card_link_template

bp = Blueprint("pwa", __name__)


def precache_version():
    """One hash over the content, the cards' sign-offs and every static file."""
    digest = hashlib.sha256(get_library().version.encode())
    # A sign-off changes a card's footer: a new version makes every device fetch the cards again.
    digest.update(f"signoffs={content_review.state_version(get_db())};".encode())
    for name, version in sorted(current_app.extensions["fieldapp.assets"].items()):
        digest.update(f"{name}={version};".encode())
    return digest.hexdigest()[:12]


def page_urls():
    """Signed-in pages the worker keeps for offline use: the reference in full."""
    library = get_library()
    urls = [url_for("home.index"), url_for("reference.index"), url_for("reference.titles")]
    urls += [url_for("reference.topic", slug=slug) for slug in sorted(library.topics)]
    return urls


@bp.route("/manifest.webmanifest")
def manifest():
    """The web app manifest, so the app installs to the home screen."""
    data = {
        "id": "/",
        "name": "fieldapp — CIT field reference",
        "short_name": "fieldapp",
        "description": "Recognise a crisis, request a CIT officer, hold the scene.",
        "start_url": "/",
        "scope": "/",
        "display": "standalone",
        "orientation": "any",
        "theme_color": "#12233d",
        "background_color": "#0d1117",
        "icons": [
            {"src": asset_url("icons/icon-192.png"), "sizes": "192x192", "type": "image/png", "purpose": "any"},
            {"src": asset_url("icons/icon-512.png"), "sizes": "512x512", "type": "image/png", "purpose": "any"},
            {"src": asset_url("icons/maskable-512.png"), "sizes": "512x512", "type": "image/png", "purpose": "maskable"},
        ],
    }
    response = current_app.response_class(
        current_app.json.dumps(data), mimetype="application/manifest+json"
    )
    return response


@bp.route("/sw.js")
def service_worker():
    """The service worker, served from the root so its scope is the whole app."""
    body = render_template(
        "sw.js",
        version=precache_version(),
        public_urls=[asset_url(f) for f in PUBLIC_ASSETS] + [url_for("pwa.offline")],
        offline_url=url_for("pwa.offline"),
        titles_url=url_for("reference.titles"),
        search_url=url_for("reference.search"),
        requests_url=url_for("requests.create"),
        receipts_url=url_for("requests.receipt"),
        home_url=url_for("home.index"),
        reference_url=url_for("reference.index"),
        static_url=url_for("static", filename=""),
        login_queued_url=login_queued_url(),
        card_link=card_link_template(),
        queue_url=asset_url("js/queue.js"),
        offline_copy_header=OFFLINE_COPY,
    )
    response = current_app.response_class(body, mimetype="text/javascript")
    # The browser must always see a new worker when the precache changes.
    response.headers["Cache-Control"] = "no-cache"
    response.headers["Service-Worker-Allowed"] = "/"
    return response


@bp.route("/precache.json")
def precache():
    """The signed-in pages to keep offline; empty for someone not signed in, or whose role reads no reference."""
    urls = page_urls() if current_user.is_authenticated and current_user.has_role(*READERS) else []
    return {"version": precache_version(), "urls": urls}


@bp.route("/offline")
def offline():
    """Shown when a page is not cached and the network is down."""
    # The worker keeps this page when it installs, which can be after someone signed in: never personal.
    return render_template("offline.html", personal=False)
