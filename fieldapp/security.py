"""Security controls that apply to every request: CSRF, headers, caching, cookies, session limits.

What each control stops, and the test that proves it, is in docs/SECURITY.md.
"""
from flask import current_app, flash, redirect, request, session, url_for
from flask.sessions import SecureCookieSessionInterface
from flask_login import current_user
from flask_wtf.csrf import CSRFError, CSRFProtect, generate_csrf

from . import auth, sessions
from .db import get_db
from .pwa import is_offline_copy
from .errors import handle_http_error

csrf = CSRFProtect()

# No inline script, no eval: htmx is configured to match (allowEval false, no indicator styles).
CONTENT_SECURITY_POLICY = "; ".join(
    [
        "default-src 'self'",
        "script-src 'self'",
        "style-src 'self'",
        "img-src 'self' data:",
        "connect-src 'self'",
        "worker-src 'self'",
        "manifest-src 'self'",
        "object-src 'none'",
        "base-uri 'self'",
        "form-action 'self'",
        "frame-ancestors 'none'",
    ]
)
LOCAL_HOSTS = ("localhost", "127.0.0.1", "[::1]")
# Not a person at work, so never keeping a session from the idle lock: polls,
# and the browser or its service worker fetching the app's own files.
NOT_AT_WORK_ENDPOINTS = {
    "requests.live", "board.live",
    "static", "pwa.service_worker", "pwa.manifest", "pwa.precache", "pwa.offline",
    "maps.tile", "maps.area",
}


class SessionInterface(SecureCookieSessionInterface):
    """Session cookies are Secure everywhere except on this machine's own loopback."""

    def get_cookie_secure(self, app):
        # Behind a TLS proxy the host is the public name, so the cookie is Secure;
        # on 127.0.0.1 (make run, the tests) browsers would drop a Secure cookie over http.
        return request.host.split(":")[0] not in LOCAL_HOSTS if request else True


def set_headers(response):
    """The security headers every response carries."""
    response.headers.setdefault("Content-Security-Policy", CONTENT_SECURITY_POLICY)
    response.headers["X-Content-Type-Options"] = "nosniff"
    response.headers["Referrer-Policy"] = "same-origin"
    response.headers["X-Frame-Options"] = "DENY"
    response.headers["Permissions-Policy"] = "geolocation=(self), camera=(), microphone=(), payment=(), usb=()"
    if request.is_secure:
        # Only over TLS (behind PROXY_FIX, the proxy's X-Forwarded-Proto): a browser ignores it over http.
        response.headers["Strict-Transport-Security"] = "max-age=31536000"
    # One rule for every page someone signed in sees, since each carries their name
    # and most carry someone's request, roster or audit trail: no copy is kept on
    # the device. Polled fragments set their own `no-cache, private` to stay 304s.
    if response.mimetype == "text/html" and "Cache-Control" not in response.headers and current_user.is_authenticated:
        response.headers["Cache-Control"] = "no-store"
    return response


SESSION_OVER = {
    "idle": "You were signed out after a period of inactivity. Sign in to carry on where you were.",
    "lifetime": "A sign-in lasts one shift. Sign in again to carry on where you were.",
}


def enforce_session_limits():
    """End a session idle longer than SESSION_IDLE_MINUTES (CJIS session lock) or older than SESSION_MAX_HOURS."""
    if not current_user.is_authenticated:
        return None
    why = sessions.session_over(current_user)
    if why:
        sessions.end_session(get_db())
        if request.method == "GET" and not request.htmx:
            flash(SESSION_OVER[why])
            return redirect(url_for("auth.login", next=request.full_path.rstrip("?")))
        return None  # login_required answers the rest
    # Like the endpoints in NOT_AT_WORK_ENDPOINTS, the service worker keeping its
    # offline copies is no one at work. And since noting
    # activity rewrites the session cookie, a file or a copy fetched in the
    # background under one officer could land after the next officer signed in
    # on a shared car computer, and replace their cookie with the last one's,
    # ended session.
    if request.endpoint not in NOT_AT_WORK_ENDPOINTS and not is_offline_copy():
        sessions.note_activity(get_db(), current_user)
    return None


def refuse_csrf(error):
    """A missing or wrong CSRF token.

    When the session behind it has ended (the idle lock, met first by a
    background request), the token went with it: that is a sign-in problem,
    answered like any signed-out post, so a CIT request tapped then is kept
    on the device and sent after sign-in rather than refused as forged.
    """
    if not current_user.is_authenticated and request.endpoint != "auth.login":
        return current_app.login_manager.unauthorized()
    return handle_http_error(error)


def kept_csrf_token():
    """Templates' `csrf_token()`: the session's signed token, signed once per process instead of on every page.

    Signing (two HMACs and a serialisation) was a tenth of a reference page's
    CPU. A token lives as long as its session (WTF_CSRF_TIME_LIMIT is None), so
    the copy signed first stays valid; with a time limit set, every page signs
    afresh as Flask-WTF does. Kept by the session's raw secret, which sign-in,
    sign-out and the idle lock replace.
    """
    raw = session.get("csrf_token")
    if raw is None or current_app.config["WTF_CSRF_TIME_LIMIT"] is not None:
        return generate_csrf()
    kept = current_app.extensions.setdefault("fieldapp.csrf_tokens", {})
    token = kept.get(raw)
    if token is None:
        if len(kept) >= 10_000:  # one per live session; a bound, not an expected size
            kept.clear()
        token = kept[raw] = generate_csrf()
    return token


def init_app(app):
    """Install CSRF protection, the headers, the cookie policy and the idle timeout."""
    app.config.setdefault("SESSION_IDLE_MINUTES", 30)
    # Absolute lifetime: a sign-in lasts a shift at most, however busy.
    app.config.setdefault("SESSION_MAX_HOURS", 12)
    # A token lives as long as its session, which sign-in, sign-out and the idle
    # timeout all clear; Flask-WTF's default of one hour would fail a form on a
    # board left open and polled for longer than that.
    app.config.setdefault("WTF_CSRF_TIME_LIMIT", None)
    app.session_interface = SessionInterface()
    csrf.init_app(app)
    app.context_processor(lambda: {"csrf_token": kept_csrf_token})  # after Flask-WTF's, which it replaces
    # Signing out must work from a page whose token has died (see auth.logout for why that is safe).
    csrf.exempt(auth.logout)
    app.register_error_handler(CSRFError, refuse_csrf)
    app.after_request(set_headers)
    app.before_request(enforce_session_limits)
