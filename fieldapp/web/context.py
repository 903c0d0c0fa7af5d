"""What a request is, for every page: an offline copy for the service worker, and where it may go next.

An *offline copy* is a page the service worker asks for to keep (the
OFFLINE_COPY header): rendered with no name, CSRF token, user id or open
request, and marked so the worker keeps only what the server made for it.
"""
import re
from urllib.parse import urlsplit

from flask import request
from flask_login import current_user

# The pages an offline copy may be made of; nothing personal is in their main part.
OFFLINE_PAGES = {"home.index", "reference.index", "reference.topic", "reference.titles", "maps.index"}
OFFLINE_COPY = "X-Fieldapp-Offline-Copy"


def is_offline_copy():
    """True when the service worker asks for a page to keep: it is rendered with nothing personal."""
    return request.headers.get(OFFLINE_COPY) == "1" and request.endpoint in OFFLINE_PAGES


def safe_next(target):
    """Only same-site relative paths may be redirected to after sign-in."""
    # A control character cannot go into a Location header, and a backslash is a slash to some browsers.
    if not target or re.search(r"[\x00-\x1f\x7f\\]", target):
        return None
    parts = urlsplit(target)
    if parts.scheme or parts.netloc or not target.startswith("/") or target.startswith("//"):
        return None
    return target


def _personal_context():
    # Templates show a name, a token or a user id only when `personal` is true.
    return {"personal": current_user.is_authenticated and not is_offline_copy()}


def _mark_offline_copy(response):
    # The worker caches only what carries this mark, so nothing else can slip into its cache.
    if response.status_code == 200 and is_offline_copy():
        response.headers[OFFLINE_COPY] = "1"
    return response


def init_app(app):
    """Mark offline copies, and tell templates whether the page may show anything personal."""
    app.after_request(_mark_offline_copy)
    app.context_processor(_personal_context)
