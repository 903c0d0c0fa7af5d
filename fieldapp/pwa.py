"""The installable app: manifest, service worker, offline page and versioned assets.

The service worker's precache is keyed by a hash of the content, the content
sign-offs and the static files, so any change to them ships a new worker and a
fresh cache.

What the worker keeps must be safe on a shared car computer: it asks for each
page as an *offline copy* (the OFFLINE_COPY header), rendered with no name,
CSRF token, user id or open request, and it keeps only responses the server
marked as such. A page with anything personal on it is never cached.
"""
import hashlib
from pathlib import Path

from flask import Blueprint, current_app, has_request_context, render_template, request, url_for
from flask_login import current_user

from .program import content_review
from .content import get_library
from .db import get_db
from .reference import card_link_template

bp = Blueprint("pwa", __name__)

# Files the worker caches at install, before anyone signs in.
PUBLIC_ASSETS = [
    "css/app.css",
    "js/app.js",
    "js/queue.js",
    "vendor/htmx-2.0.11.min.js",
    "icons/icon-192.png",
    "icons/icon-512.png",
    "icons/maskable-512.png",
]


def _file_hashes(static_folder):
    hashes = {}
    for path in sorted(Path(static_folder).rglob("*")):
        if path.is_file():
            hashes[path.relative_to(static_folder).as_posix()] = hashlib.sha256(path.read_bytes()).hexdigest()[:10]
    return hashes


def asset_url(filename):
    """URL of a static file with its content hash, so it can be cached for a year."""
    version = current_app.extensions["fieldapp.assets"].get(filename)
    return url_for("static", filename=filename, v=version)


def login_queued_url():
    """The sign-in page that returns home, where the queued CIT request is sent (app.js and the worker go there on a 401)."""
    return url_for("auth.login", next=url_for("home.index"), queued=1)


def _fixed_urls():
    """Templates' `url_for`, `asset_url` and `login_queued_url`, building each fixed URL once per process.

    Every page's frame asks for the same dozen URLs (assets, home, sign-out, the
    service worker...), which cannot change while the process runs: building each
    on every page was a fifth of a reference page's rendering. They are kept for
    one URL prefix at a time; calls with arguments and relative endpoints
    (".index") go to Flask each time.
    """
    if not has_request_context():  # no prefix to key on: templates keep Flask's own functions
        return {}
    app = current_app._get_current_object()
    if app.url_default_functions:  # URL defaults could make a URL differ from one request to the next
        return {"login_queued_url": login_queued_url()}
    prefix = request.script_root
    kept = app.extensions["fieldapp.fixed_urls"]
    if kept[0] != prefix:
        kept = app.extensions["fieldapp.fixed_urls"] = (prefix, {}, {}, login_queued_url())
    _, urls, assets, login_queued = kept

    def fixed_url_for(endpoint, **values):
        if values or endpoint.startswith("."):
            return url_for(endpoint, **values)
        url = urls.get(endpoint)
        if url is None:
            url = urls[endpoint] = url_for(endpoint)
        return url

    def fixed_asset_url(filename):
        url = assets.get(filename)
        if url is None:
            url = assets[filename] = asset_url(filename)
        return url

    return {"url_for": fixed_url_for, "asset_url": fixed_asset_url, "login_queued_url": login_queued}


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


# The pages an offline copy may be made of; nothing personal is in their main part.
OFFLINE_PAGES = {"home.index", "reference.index", "reference.topic", "reference.titles", "maps.index"}
OFFLINE_COPY = "X-Fieldapp-Offline-Copy"


def is_offline_copy():
    """True when the service worker asks for a page to keep: it is rendered with nothing personal."""
    return request.headers.get(OFFLINE_COPY) == "1" and request.endpoint in OFFLINE_PAGES


def _personal_context():
    # Templates show a name, a token or a user id only when `personal` is true.
    return {"personal": current_user.is_authenticated and not is_offline_copy()}


def _mark_offline_copy(response):
    # The worker caches only what carries this mark, so nothing else can slip into its cache.
    if response.status_code == 200 and is_offline_copy():
        response.headers[OFFLINE_COPY] = "1"
    return response


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
    """The signed-in pages to keep offline; empty for someone not signed in."""
    urls = page_urls() if current_user.is_authenticated else []
    return {"version": precache_version(), "urls": urls}


@bp.route("/offline")
def offline():
    """Shown when a page is not cached and the network is down."""
    return render_template("offline.html")


def _cache_versioned_assets(response):
    if request.endpoint != "static" or response.status_code != 200:
        return response
    # A hashed URL never changes content, so browsers may keep it for a year.
    if request.args.get("v"):
        response.headers["Cache-Control"] = "public, max-age=31536000, immutable"
    # Read the (small) file into memory so flask-compress compresses it in one
    # piece; its streaming path leaves the file handle open.
    response.direct_passthrough = False
    response.get_data()
    return response


def init_app(app):
    """Hash the static files once and expose `asset_url` (and a `url_for` that keeps fixed URLs) to templates."""
    app.extensions["fieldapp.assets"] = _file_hashes(app.static_folder)
    app.extensions["fieldapp.fixed_urls"] = (None, {}, {}, None)
    app.jinja_env.globals["asset_url"] = asset_url
    app.after_request(_cache_versioned_assets)
    app.after_request(_mark_offline_copy)
    app.context_processor(_personal_context)
    app.context_processor(_fixed_urls)
