"""Security controls that apply to every request: CSRF, headers, caching, cookies.

The session limits (idle lock, a shift's lifetime) are identity's: identity/access.py.

What each control stops, and the test that proves it, is in docs/SECURITY.md.
"""
from flask import current_app, request, session
from flask.sessions import SecureCookieSessionInterface
from flask_login import current_user
from flask_wtf.csrf import CSRFError, CSRFProtect, generate_csrf

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
    app.session_interface = SessionInterface()
    csrf.init_app(app)
    app.context_processor(lambda: {"csrf_token": kept_csrf_token})  # after Flask-WTF's, which it replaces
    app.register_error_handler(CSRFError, refuse_csrf)
    app.after_request(set_headers)
