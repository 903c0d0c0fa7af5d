"""The Confirm page: the fresh proof (step_up.py) a change to the keys of an account needs.

The password and a current second factor (a code from the app, or a
recovery code), or a passkey alone; someone who signs in through the agency's
identity provider may sign in there again instead of the password
(sso.py sends them back here for the second factor if one is still needed).
Wrong answers count towards the lock-out like any sign-in.
"""
from flask import Blueprint, abort, current_app, redirect, render_template, request, session, url_for
from flask_login import current_user, login_required

from ..store.db import get_db
from ..web.context import safe_next
from . import accounts, second_factors as factors, step_up
from .lockout import check_login, is_locked, lock_message

bp = Blueprint("step_up", __name__)

# Set by sso.py when the person signed in at the identity provider again for this: the first factor, given there.
FIRST_AT_PROVIDER = "step_up_first_at_provider"


def _next():
    return safe_next(request.values.get("next")) or url_for("factors.security_page")


def _first_factor_at_provider():
    """True when the identity provider confirmed the person a moment ago, for this step-up."""
    at = session.get(FIRST_AT_PROVIDER)
    return isinstance(at, (int, float)) and step_up.is_fresh_since(at)


def _page(error=None, status=200):
    mine = factors.factors_of(get_db(), current_user.id)
    return render_template("factors/confirm.html", factors=mine, error=error, next_url=_next(),
                           provider_done=_first_factor_at_provider(),
                           by_provider=session.get("sign_in_method") == "sso"), status


@bp.route("/account/confirm", methods=["GET", "POST"])
@login_required
def confirm():
    """Give the password and a second factor again (or a passkey) before changing how you sign in."""
    if request.method == "GET":
        return _page()
    db = get_db()
    row = accounts.user_by_id(db, current_user.id)
    mine = factors.factors_of(db, row["id"])
    code, recovery = request.form.get("code", "")[:20], request.form.get("recovery_code", "")[:40]
    if not _first_factor_at_provider():
        password = request.form.get("password", "")[:256]
        if not (password and check_login(db, row["username"], password)):
            step_up.record_failure(db, row["username"], "wrong password")
            row = accounts.user_by_id(db, row["id"])
            return _page(lock_message(row, "wrong passwords") if is_locked(row) else "Your password is not right.", 401)
    if mine["totp"] or mine["passkeys"] or recovery:
        if not (recovery or (code and mine["totp"])):
            return _page("Give the code your authenticator app shows now, or use your passkey.", 401)
        try:
            factors.check_code(db, row, code, recovery)
        except factors.Refused as refusal:
            step_up.record_failure(db, row["username"], refusal.detail)
            row = accounts.user_by_id(db, row["id"])
            return _page(lock_message(row, "wrong codes") if is_locked(row) else refusal.message, 401)
    first = "the identity provider" if _first_factor_at_provider() else "password"
    second = " and a recovery code" if recovery else " and a code" if code else ""
    return _confirmed(db, row, first + second)


def _confirmed(db, row, how):
    session.pop(FIRST_AT_PROVIDER, None)
    step_up.proved(db, row["username"], how)
    return redirect(_next(), 303)


@bp.route("/account/confirm/passkey/options", methods=["POST"])
@login_required
def passkey_options():
    """Options for the browser to confirm with one of this account's passkeys."""
    db = get_db()
    if not factors.factors_of(db, current_user.id)["passkeys"]:
        abort(400, description="You have no passkey here: confirm with your password and code instead.")
    return current_app.response_class(factors.authentication_options(db, current_user.row), mimetype="application/json")


@bp.route("/account/confirm/passkey", methods=["POST"])
@login_required
def with_passkey():
    """Check the passkey's answer: one that verifies the user is the password and the second factor at once."""
    db = get_db()
    body = request.get_json(silent=True)
    try:
        factors.authenticate_passkey(db, body.get("credential") if isinstance(body, dict) else None, current_user.row)
    except factors.Refused as refusal:
        factors.record_refusal(db, refusal, current_user.username, actor=(current_user.id, current_user.username))
        abort(401 if refusal.action == "passkey_cloned" else 400, description=refusal.message)
    return {"redirect": _confirmed(db, current_user.row, "passkey").location}
