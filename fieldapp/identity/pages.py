"""The sign-in, sign-out and password pages.

Who may open what is access.py's; every sign-in ends in sign_in.py; whose
sign-in record is kept is sessions.py's (the `sessions` table); how many
failed sign-ins one address may make is throttle.py's; checking a password
and the lock-out are lockout.py's; the accounts themselves (`users`) are
accounts.py's; the `users` commands are cli.py's.
"""
from flask import Blueprint, current_app, flash, redirect, render_template, request, url_for
from flask_login import current_user, login_required

from . import accounts, second_factors, sso, step_up
from ..clock import now
from ..store.db import get_db
from ..web.context import safe_next
from .lockout import check_login, is_locked, lock_message, record_failed_password_change, record_failed_sign_in
from .second_factors import second_step
from .sessions import sign_out, start_session
from .sign_in import finish_sign_in
from .throttle import failed_sign_ins_limited

bp = Blueprint("auth", __name__)


@bp.route("/login", methods=["GET", "POST"])
@failed_sign_ins_limited
def login():
    """The sign-in form."""
    next_url = safe_next(request.values.get("next"))
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
        record_failed_sign_in(db, username)
        error = "Sign-in failed. Check your username and password, or ask your supervisor."
        status = 401
    return render_template("auth/login.html", error=error, next_url=next_url), status


@bp.route("/logout", methods=["POST"])
def logout():
    """Sign out and go back to the sign-in form.

    It needs no CSRF token (security.py exempts it): a page cached before its
    session ended holds a dead token, and a sign-out that fails leaves the next
    officer at the car computer signed in as this one. A forged sign-out could
    only sign someone out, and cannot even do that from another site: the
    cookie is SameSite=Lax, so a cross-site POST arrives without it.
    """
    provider_logout = sso.logout_url()  # before the session, which holds the ID token, is cleared
    sign_out(get_db())
    flash("You are signed out.")
    response = redirect(provider_logout or url_for("auth.login", signed_out=1))
    # Shared car computers: the browser's HTTP cache goes with the officer. Not "storage":
    # Chromium would unregister the service worker with it, and the offline cards and queue.
    response.headers["Clear-Site-Data"] = '"cache"'
    return response


@bp.route("/account/password", methods=["GET", "POST"])
@login_required
@step_up.required(back="auth.change_password")
def change_password():
    """Change your own password; every other session of yours is signed out.

    The answer to a lost phone or a stolen session, so the page also offers to
    remove the passkeys and app added in the last NOTICE_DAYS, which someone
    else may have added.
    """
    db = get_db()
    since = now() - current_app.config["NOTICE_DAYS"] * 86400
    recent = second_factors.added_since(db, current_user.id, since)
    if request.method == "GET":
        return render_template("auth/password.html", errors=[], recent=recent)
    current = request.form.get("current_password", "")[:256]
    new = request.form.get("new_password", "")
    repeat = request.form.get("repeat_password", "")
    errors = accounts.check_new_password(new, repeat, current_user.username)
    if current and new == current:
        errors.append("The new password must differ from the current one.")
    remove_keys = {int(v) for v in request.form.getlist("remove_passkey") if v.isascii() and v.isdigit() and len(v) < 19}
    # Checked like a sign-in, so guesses here count towards the lock-out too.
    if not errors and not check_login(db, current_user.username, current):
        record_failed_password_change(db, current_user.username)
        row = accounts.user_by_id(db, current_user.id)
        errors.append(lock_message(row, "wrong passwords") if is_locked(row) else "Your current password is not right.")
    if errors:
        return render_template("auth/password.html", errors=errors, recent=recent), 422
    try:
        row, removed = second_factors.change_own_password(db, current_user.row, new, since, remove_keys,
                                                          request.form.get("remove_totp") == "yes")
    except ValueError as e:
        return render_template("auth/password.html", errors=[str(e)], recent=recent), 422
    # This device stays signed in, in a new session under the new version; it just gave the password.
    start_session(db, row)
    step_up.mark_proved()
    flash("Password changed. Any other device signed in as you has been signed out."
          + (f" Removed {' and '.join(removed)}." if removed else ""))
    return redirect(url_for("home.index"), 303)
