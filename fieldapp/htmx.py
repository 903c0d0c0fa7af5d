"""Our one door to htmx and htmx-flask.

htmx-flask 0.1.0 is frozen: we use it for `request.htmx` only. Its
`make_response(reswap=...)` rejects valid values (a missing comma joins two of
them), so views set HX-* response headers directly (see request_pages.py).
"""
import hashlib
import re

from flask import make_response, render_template, request, session
from flask_wtf.csrf import generate_csrf
from htmx_flask import Htmx
from jinja2_fragments.flask import render_block

htmx = Htmx()

# A CSRF token is re-signed with the time on every render, so a fragment with a
# form in it would never be "unchanged" without leaving the token out of its ETag.
CSRF_VALUE = re.compile(rb'(name="csrf_token" value=")[^"]*(")')


def is_htmx():
    """True for a request htmx made to swap part of a page (not a boosted navigation)."""
    return bool(getattr(request, "htmx", False)) and not request.htmx.boosted


def page_or_block(template, block, **context):
    """Render the whole page, or only `block` of it when htmx asks for a fragment."""
    if is_htmx():
        return render_block(template, block, **context)
    return render_template(template, **context)


def poll_response(html):
    """A polled fragment: an ETag of what it shows, and 304 when the poller already has it.

    The ETag leaves out the CSRF tokens, which differ on every render: a poller
    that keeps its copy keeps tokens that stay valid for the session
    (WTF_CSRF_TIME_LIMIT is None; sign-in, sign-out and the idle lock replace
    the session, and the ETag holds the session's CSRF secret).
    """
    body = html.encode() if isinstance(html, str) else html
    return _poll(CSRF_VALUE.sub(rb"\1\2", body), lambda: html)


def poll_response_of(shown, render):
    """A polled fragment keyed by `shown`, every value it displays: an unchanged
    poll is answered 304 before `render` is called, which saves the template's
    CPU on a big fragment polled by many screens."""
    return _poll(repr(shown).encode(), render)


def _poll(shown, render):
    # The key also holds whether this is the fragment or the whole page (one URL
    # serves both), and the session's CSRF secret: a copy the browser cached under
    # an earlier session has that session's tokens in its forms, and must not be
    # reused after signing in again.
    generate_csrf()  # makes the session's secret now if the render would make it later
    digest = hashlib.sha1(shown)
    digest.update(f"|{is_htmx()}|{session.get('csrf_token', '')}".encode())
    etag = digest.hexdigest()
    # flask-compress sends the ETag back with its encoding appended ("…:gzip").
    tags = request.if_none_match
    unchanged = tags.star_tag or any(t == etag or t.startswith(etag + ":") for t in tags.as_set())
    response = make_response("" if unchanged else render(), 304 if unchanged else 200)
    response.headers["Cache-Control"] = "no-cache, private"
    response.vary.add("HX-Request")
    response.set_etag(etag)
    return response


def init_app(app):
    """Install htmx-flask's request class."""
    htmx.init_app(app)
