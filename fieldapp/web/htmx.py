"""Our one door to htmx and htmx-flask.

Views read htmx's request headers through htmx-flask's `request.htmx`
(`is_htmx()`, `request.htmx.current_url`) and set its response headers with
htmx-flask's `make_response`, here `htmx_response(..., redirect=, trigger=)`.
htmx-flask 0.1.0 is frozen and its `reswap=` rejects valid values (a missing
comma joins two of them): set HX-Reswap on the response yourself.
"""
import hashlib
from pathlib import Path

from flask import current_app, make_response, render_template, request, session
from flask_wtf.csrf import generate_csrf
from htmx_flask import Htmx
from htmx_flask import make_response as htmx_response  # noqa: F401  (HX-Redirect, HX-Trigger: our one door)
from jinja2_fragments.flask import render_block

htmx = Htmx()


def is_htmx():
    """True for a request htmx made to swap part of a page (not a boosted navigation)."""
    return bool(getattr(request, "htmx", False)) and not request.htmx.boosted


def sent_by_htmx():
    """Whether htmx sent this request at all, a boosted link too: an answer must not land inside a swap."""
    return bool(getattr(request, "htmx", False))


def page_htmx_was_on():
    """The URL of the page htmx sent this request from, or '' when htmx did not send it."""
    return (request.htmx.current_url or "") if sent_by_htmx() else ""


def page_or_block(template, block, **context):
    """Render the whole page, or only `block` of it when htmx asks for a fragment."""
    if is_htmx():
        return render_block(template, block, **context)
    return render_template(template, **context)


def poll_response(shown, render):
    """A polled fragment keyed by `shown`: every value it displays (plain data), or a
    key that moves whenever any of them can, such as `changes.live_key(...)`.

    An unchanged poll is answered 304 before `render` is called, which saves
    the template's CPU on a fragment polled by many screens; with the change
    counter as the key, nothing of the page is computed either. Nothing in
    `shown` may depend on the time of the poll: ages are written as the clock
    time they started, and the page turns them into "4 min 12 s ago".

    The key also holds the code's version (templates, filters, views), so a
    deploy shows at once; whether this is the fragment or the whole page (one
    URL serves both); and the session's CSRF secret. The forms in a kept copy
    keep their tokens, which stay valid for the session (WTF_CSRF_TIME_LIMIT is
    None; sign-in, sign-out and the idle lock replace the session), and a copy
    cached under an earlier session is never reused after signing in again.
    """
    generate_csrf()  # makes the session's secret now if the render would make it later
    digest = hashlib.sha1(repr(shown).encode())
    digest.update(current_app.extensions["fieldapp.code_version"].encode())
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


def code_version(root):
    """A hash of the code that renders pages (.py and .html under `root`)."""
    digest = hashlib.sha1()
    for path in sorted(Path(root).rglob("*")):
        if path.suffix in (".py", ".html"):
            digest.update(path.read_bytes())
    return digest.hexdigest()


def init_app(app):
    """Install htmx-flask's request class, and hash the code once for the polls' ETags."""
    htmx.init_app(app)
    app.extensions["fieldapp.code_version"] = code_version(app.root_path)
