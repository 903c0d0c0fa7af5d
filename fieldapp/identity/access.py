"""Who may open what: the sign-in manager, `role_required` every area uses, and the limits on a session.

A session ends when idle longer than SESSION_IDLE_MINUTES (the CJIS session
lock) or older than SESSION_MAX_HOURS; someone whose password a coordinator
set must choose their own before anything else opens.
"""
import functools
from urllib.parse import urlsplit

from flask import abort, current_app, flash, redirect, render_template, request, session, url_for
from flask_login import LoginManager, current_user, login_required
from werkzeug.exceptions import Forbidden

from ..store.db import get_db
from ..web.context import is_offline_copy, safe_next
from ..web.errors import handle_http_error
from ..web.htmx import htmx_response, page_htmx_was_on, sent_by_htmx
from . import sessions
from .sessions import load_user

login_manager = LoginManager()
login_manager.login_view = "auth.login"
login_manager.login_message = "Please sign in to continue."
login_manager.user_loader(load_user)


@login_manager.unauthorized_handler
def unauthorized():
    """Someone not signed in: a page goes to the sign-in form and comes back after it.

    A POST cannot be replayed after signing in, and an htmx swap must not put the
    sign-in form inside a fragment, so both get a 401 instead: the sign-in form
    saying nothing was done, with HX-Redirect for htmx. The offline queue treats
    a 401 to a CIT request as "keep it and send it after sign-in".

    The service worker keeping an offline copy in the background gets a bare
    401: nothing to keep, and no message or new cookie, which could land after
    the next officer signed in on a shared car computer and undo their sign-in.
    """
    if is_offline_copy():
        return current_app.response_class(status=401)
    if request.method == "GET" and not sent_by_htmx():
        flash(login_manager.login_message)
        return redirect(url_for("auth.login", next=request.full_path.rstrip("?")))
    page = safe_next(urlsplit(page_htmx_was_on()).path) or url_for("home.index")
    return htmx_response(render_template(
        "auth/login.html", next_url=page, error=None,
        notice="You were signed out, so that was not done. Sign in, then try again.",
    ), 401, redirect=url_for("auth.login", next=page) if sent_by_htmx() else None)


def role_required(*roles):
    """Allow a view only to signed-in users holding one of `roles`; others get 403."""

    def decorator(view):
        @functools.wraps(view)
        @login_required
        def wrapped(*args, **kwargs):
            if not current_user.has_role(*roles):
                abort(403, description="Your role does not give access to this page.")
            return view(*args, **kwargs)

        return wrapped

    return decorator


# Not a person at work, so never keeping a session from the idle lock: polls,
# and the browser or its service worker fetching the app's own files.
NOT_AT_WORK_ENDPOINTS = {
    "requests.live", "board.live",
    "static", "pwa.service_worker", "pwa.manifest", "pwa.precache", "pwa.offline",
    "maps.tile", "maps.area",
}

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
        if request.method == "GET" and not sent_by_htmx():
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


# While a password someone else chose stands, only changing it, signing out and the public files are open.
OPEN_UNTIL_PASSWORD_CHANGED = {"auth.change_password", "auth.logout", "auth.login", "static",
                               # a password change needs a fresh proof (step_up.py) once the sign-in's has lapsed
                               "step_up.confirm", "step_up.passkey_options", "step_up.with_passkey"}


def require_own_password():
    """Lead someone whose password a coordinator set to change it; nothing else opens until then (ASVS 2.3.1)."""
    if request.endpoint in OPEN_UNTIL_PASSWORD_CHANGED or request.blueprint == "pwa":
        return None
    if not (current_user.is_authenticated and current_user.row["must_change_password"]):
        return None
    if session.get("sign_in_method") == "sso":
        return None  # the password is not what this person signs in with
    if request.method == "GET" and not sent_by_htmx():
        return redirect(url_for("auth.change_password"))
    return htmx_response(handle_http_error(Forbidden(
        "A coordinator set your password: choose your own first. Nothing was done.")),
        redirect=url_for("auth.change_password"))


def init_app(app):
    """Wire flask-login, the session limits and the forced password change into the app."""
    login_manager.init_app(app)
    app.before_request(enforce_session_limits)
    app.before_request(require_own_password)
