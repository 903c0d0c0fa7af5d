"""Signing in and out: the sign-in, sign-out and password pages, the one way every sign-in ends, and roles.

Whose sign-in record is kept is sessions.py's (the `sessions` table); how
many failed sign-ins one address may make is throttle.py's; checking a
password and the lock-out are lockout.py's; the accounts themselves
(`users`) are accounts.py's; the `users` commands are users_cli.py's.
"""
import functools
import re
from urllib.parse import urlsplit

from flask import Blueprint, abort, current_app, flash, redirect, render_template, request, session, url_for
from flask_login import LoginManager, current_user, login_required
from werkzeug.exceptions import Forbidden

from . import accounts
from ..audit import log as audit
from ..clock import now
from ..store.db import get_db, write_transaction
from ..web.errors import handle_http_error
from ..web.htmx import htmx_response
from .lockout import check_login
from .second_factors import second_step
from .sessions import User, end_every_session, end_session, load_user, start_session
from .throttle import failed_sign_ins_limited

bp = Blueprint("auth", __name__)
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
    from ..web.pwa import is_offline_copy  # pwa's pages need role_required from here

    if is_offline_copy():
        return current_app.response_class(status=401)
    if request.method == "GET" and not request.htmx:
        flash(login_manager.login_message)
        return redirect(url_for("auth.login", next=request.full_path.rstrip("?")))
    page = _safe_next(urlsplit(request.htmx.current_url or "").path) or url_for("home.index")
    return htmx_response(render_template(
        "auth/login.html", next_url=page, error=None,
        notice="You were signed out, so that was not done. Sign in, then try again.",
    ), 401, redirect=url_for("auth.login", next=page) if request.htmx else None)


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


def set_password(db, user_id, password_hash, must_change=False):
    """Store a new password hash, clear any lock-out, and sign the account out everywhere.

    `must_change` when someone other than the owner chose it (a coordinator's
    reset): the owner must then choose their own at first sign-in (ASVS 2.3.1).
    """
    accounts.store_password(db, user_id, password_hash, must_change)
    end_every_session(db, user_id)


def set_disabled(db, user_id, disabled):
    """Disable an account or enable it again; True if it changed.

    Disabling signs it out everywhere, takes it off duty and forgets its push
    subscriptions, so a lost phone stops receiving alerts even if the account
    comes back.
    """
    # Imported here: duty imports role_required from this module.
    from ..duty.pages import stand_down_everywhere

    changed = accounts.mark_disabled(db, user_id, disabled)
    if disabled and changed:
        end_every_session(db, user_id)
        stand_down_everywhere(db, user_id)
    return changed


def _safe_next(target):
    """Only same-site relative paths may be redirected to after sign-in."""
    # A control character cannot go into a Location header, and a backslash is a slash to some browsers.
    if not target or re.search(r"[\x00-\x1f\x7f\\]", target):
        return None
    parts = urlsplit(target)
    if parts.scheme or parts.netloc or not target.startswith("/") or target.startswith("//"):
        return None
    return target


@bp.route("/login", methods=["GET", "POST"])
@failed_sign_ins_limited
def login():
    """The sign-in form."""
    next_url = _safe_next(request.values.get("next"))
    if current_user.is_authenticated:
        return redirect(next_url or url_for("home.index"))
    error = None
    status = 200
    if request.method == "POST":
        username = request.form.get("username", "")[:64].strip()
        password = request.form.get("password", "")[:256]
        db = get_db()
        row = check_login(db, username, password) if username and password else None
        if row:
            # The password is one factor: someone with (or who must have) a second goes on to it.
            return second_step(db, row, next_url) or finish_sign_in(row, "password", next_url)
        audit.record(db, "login_failed", username, actor=(None, ""))
        error = "Sign-in failed. Check your username and password, or ask your supervisor."
        status = 401
    return render_template("auth/login.html", error=error, next_url=next_url), status


def finish_sign_in(user, method, next_url=None, mfa=False):
    """Sign `user` (a `users` row or a User) in on this browser, by `method`, and return where to go next.

    Every way in ends here once its factors are checked: a password alone,
    a password and a second factor, a passkey, single sign-on. `method` is
    written to the audit log ("password", "password+totp", "passkey", "sso", ...).
    `mfa` says the identity provider's own MFA was counted (sso.py).
    Whoever was signed in on this browser before is signed out first, so on
    a shared car computer one officer never carries on in another's session.
    """
    row = user.row if isinstance(user, User) else user
    db = get_db()
    next_url = _safe_next(next_url)
    if current_user.is_authenticated or session.get("sid"):
        end_session(db)
    accounts.clear_failed_sign_ins(db, row["id"])
    start_session(db, row)
    session["sign_in_method"] = method.split("+")[0]
    audit.record(db, "login", row["username"], f"via {method}{', mfa' if mfa else ''}",
                 actor=(row["id"], row["username"]))
    if row["must_change_password"]:
        return redirect(url_for("auth.change_password"))
    return redirect(next_url or url_for("home.index"))


@bp.route("/logout", methods=["POST"])
def logout():
    """Sign out and go back to the sign-in form.

    It needs no CSRF token (security.py exempts it): a page cached before its
    session ended holds a dead token, and a sign-out that fails leaves the next
    officer at the car computer signed in as this one. A forged sign-out could
    only sign someone out, and cannot even do that from another site: the
    cookie is SameSite=Lax, so a cross-site POST arrives without it.
    """
    from . import sso  # imported here: sso builds on this module

    db = get_db()
    if current_user.is_authenticated:
        audit.record(db, "logout", current_user.username)
    provider_logout = sso.logout_url()  # before the session, which holds the ID token, is cleared
    end_session(db)
    flash("You are signed out.")
    response = redirect(provider_logout or url_for("auth.login", signed_out=1))
    # Shared car computers: the browser's HTTP cache goes with the officer. Not "storage":
    # Chromium would unregister the service worker with it, and the offline cards and queue.
    response.headers["Clear-Site-Data"] = '"cache"'
    return response


@bp.route("/account/password", methods=["GET", "POST"])
@login_required
def change_password():
    """Change your own password; every other session of yours is signed out."""
    if request.method == "GET":
        return render_template("auth/password.html", errors=[])
    current = request.form.get("current_password", "")[:256]
    new = request.form.get("new_password", "")
    repeat = request.form.get("repeat_password", "")
    db = get_db()
    errors = accounts.check_new_password(new, repeat, current_user.username)
    if current and new == current:
        errors.append("The new password must differ from the current one.")
    # Checked like a sign-in, so guesses here count towards the lock-out too.
    if not errors and not check_login(db, current_user.username, current):
        audit.record(db, "password_change_failed", current_user.username)
        locked = accounts.user_by_id(db, current_user.id)["locked_until"]
        minutes = current_app.config["LOGIN_LOCK_SECONDS"] // 60
        errors.append(f"Too many wrong passwords: try again in {minutes} minutes, or ask a coordinator."
                      if locked and locked > now() else "Your current password is not right.")
    if errors:
        return render_template("auth/password.html", errors=errors), 422
    with write_transaction(db):
        set_password(db, current_user.id, accounts.hash_password(new))
        audit.record(db, "password_changed", current_user.username)
        # Read inside the transaction: a change made at once on another device
        # must not leave this one holding a version that is no longer current.
        row = accounts.user_by_id(db, current_user.id)
    # This device stays signed in, in a new session under the new version.
    start_session(db, row)
    flash("Password changed. Any other device signed in as you has been signed out.")
    return redirect(url_for("home.index"), 303)


# While a password someone else chose stands, only changing it, signing out and the public files are open.
OPEN_UNTIL_PASSWORD_CHANGED = {"auth.change_password", "auth.logout", "auth.login", "static"}


def require_own_password():
    """Lead someone whose password a coordinator set to change it; nothing else opens until then (ASVS 2.3.1)."""
    if request.endpoint in OPEN_UNTIL_PASSWORD_CHANGED or request.blueprint == "pwa":
        return None
    if not (current_user.is_authenticated and current_user.row["must_change_password"]):
        return None
    if session.get("sign_in_method") == "sso":
        return None  # the password is not what this person signs in with
    if request.method == "GET" and not request.htmx:
        return redirect(url_for("auth.change_password"))
    return htmx_response(handle_http_error(Forbidden(
        "A coordinator set your password: choose your own first. Nothing was done.")),
        redirect=url_for("auth.change_password"))


def init_app(app):
    """Wire flask-login and the forced password change into the app."""
    login_manager.init_app(app)
    app.before_request(require_own_password)
