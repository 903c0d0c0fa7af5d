"""Versioned static files: each file's URL carries a hash of its content, so browsers may keep it a year.

Also the fixed URLs every page's frame asks for, built once per process.
"""
import hashlib
from pathlib import Path

from flask import current_app, has_request_context, request, url_for

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
    app.context_processor(_fixed_urls)
