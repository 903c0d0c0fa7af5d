"""The Security page, the second step of signing in, passkey sign-in, and a coordinator's reset of second factors.

Routes are thin: the checking lives in second_factors.py, and every sign-in
ends in sign_in.finish_sign_in().
"""
from flask import Blueprint, abort, current_app, flash, redirect, render_template, request, session, url_for
from flask_login import current_user, login_required

from . import second_factors as factors
from . import accounts, notices, sessions, step_up
from .access import role_required
from .lockout import is_locked, lock_message
from .sign_in import finish_sign_in
from ..store.db import get_db
from .throttle import limiter

bp = Blueprint("factors", __name__)


def _refused(db, refusal, subject="", status=400, actor=None):
    """Audit a refusal and abort with its message (JSON for the passkey calls, a page otherwise)."""
    factors.record_refusal(db, refusal, subject, actor)
    abort(status, description=refusal.message)


def _me(db, enrol_too=True):
    """The person setting up a factor: who is signed in, or whose password was right and must enrol now."""
    if current_user.is_authenticated:
        return current_user.row
    row = factors.pending_user(db, enrol=True) if enrol_too else None
    if row is None:
        abort(401, description="Sign in first.")
    return row


def _enrolled(db, row, method):
    """A factor was just set up: someone mid-sign-in is now signed in; someone signed in goes back to Security."""
    if current_user.is_authenticated:
        return redirect(url_for("factors.security_page"), 303)
    next_url, first = factors.pending_next(), factors.pending_first()
    session.pop("pending_sign_in", None)
    return finish_sign_in(row, f"{first}+{method} (enrolled)", next_url)


# ---- The Security page ----

@bp.route("/account/security")
@login_required
def security_page():
    """Your passkeys, security keys, authenticator app and recovery codes."""
    db = get_db()
    return render_template("factors/security.html", factors=factors.factors_of(db, current_user.id),
                           required=factors.required_for(current_user.row), enrolling=False,
                           notices=notices.recent(db, current_user.id), sessions=sessions.sessions_of(db, current_user.id))


@bp.route("/account/security/sessions/end-others", methods=["POST"])
@login_required
def end_other_sessions():
    """Sign out every other browser signed in as you: a phone left somewhere, or a copied cookie kept busy."""
    sessions.sign_out_elsewhere(get_db(), current_user)
    flash("Every other device signed in as you is signed out.")
    return redirect(url_for("factors.security_page"), 303)


@bp.route("/account/security/passkeys/options", methods=["POST"])
@step_up.required()
def passkey_options():
    """Options for the browser to make a passkey (this device) or a security key (USB or NFC)."""
    db = get_db()
    row = _me(db)
    kind = request.args.get("kind", "passkey")
    if kind not in ("passkey", "security_key"):
        abort(400, description="Say kind=passkey or kind=security_key.")
    return current_app.response_class(factors.registration_options(db, row, kind), mimetype="application/json")


@bp.route("/account/security/passkeys", methods=["POST"])
@step_up.required()
def add_passkey():
    """Keep the passkey the browser just made, under the name its owner gave it."""
    db = get_db()
    row = _me(db)
    body = _json_object()
    try:
        factors.register_passkey(db, row, body.get("credential"), body.get("name"))
    except factors.Refused as refusal:
        _refused(db, refusal, row["username"], actor=(row["id"], row["username"]))
    response = _enrolled(db, row, "passkey")
    flash("Passkey added.")  # after: signing in starts a new session, and its messages with it
    return _json_redirect(response)


def _json_object():
    """The posted JSON object, or an empty one for anything else (a list, a number, no JSON at all)."""
    body = request.get_json(silent=True)
    return body if isinstance(body, dict) else {}


def _json_redirect(response):
    """A redirect made for a page, told to the passkey script as JSON; the session cookie goes with it as usual."""
    return {"redirect": response.location}


@bp.route("/account/security/passkeys/<int:passkey_id>/name", methods=["POST"])
@login_required
def rename_passkey(passkey_id):
    """Rename a passkey, e.g. 'Blue key on my ring'."""
    db = get_db()
    try:
        if not factors.rename_passkey(db, current_user.row, passkey_id, request.form.get("name")):
            abort(404, description="No such passkey of yours.")
    except ValueError as e:
        abort(400, description=str(e))
    flash("Passkey renamed.")
    return redirect(url_for("factors.security_page"), 303)


@bp.route("/account/security/passkeys/<int:passkey_id>/remove", methods=["POST"])
@login_required
@step_up.required()
def remove_passkey(passkey_id):
    """Remove a passkey: a lost key stops working at once."""
    db = get_db()
    try:
        if not factors.remove_passkey(db, current_user.row, passkey_id):
            abort(404, description="No such passkey of yours.")
    except ValueError as e:
        abort(409, description=str(e))
    flash("Passkey removed.")
    return redirect(url_for("factors.security_page"), 303)


@bp.route("/account/security/app", methods=["GET", "POST"])
@step_up.required(back="factors.totp_setup")
def totp_setup():
    """Set up an authenticator app: scan the QR code, then type the code it shows."""
    db = get_db()
    row = _me(db)
    error = None
    if request.method == "POST":
        if factors.confirm_totp(db, row, request.form.get("code", "")[:20]):
            codes = factors.new_recovery_codes(db, row, tell=False)
            response = _enrolled(db, row, "totp")
            return render_template("factors/recovery_codes.html", codes=codes, continue_url=response.location)
        error = "That code is not right. Type the six digits your app shows now."
    uri = factors.totp_uri(db, row) if error else None
    if uri is None:
        uri = factors.start_totp(db, row)
    if uri is None:  # one is set up already; a second would silently replace the phone that holds it
        flash("An authenticator app is already set up. Remove it first to move it to another phone.")
        return redirect(url_for("factors.security_page"), 303)
    return render_template("factors/totp.html", qr=factors.qr_svg(uri), secret=uri.split("secret=")[1].split("&")[0],
                           error=error, enrolling=not current_user.is_authenticated), 422 if error else 200


@bp.route("/account/security/app/remove", methods=["POST"])
@login_required
@step_up.required()
def remove_totp():
    """Turn off the authenticator app."""
    db = get_db()
    row = current_user.row
    try:
        factors.remove_totp(db, row)
    except ValueError as e:
        abort(409, description=str(e))
    flash("Authenticator app removed.")
    return redirect(url_for("factors.security_page"), 303)


@bp.route("/account/security/recovery-codes", methods=["POST"])
@login_required
@step_up.required()
def recovery_codes():
    """Ten new recovery codes, shown this once; any earlier ones stop working."""
    codes = factors.new_recovery_codes(get_db(), current_user.row)
    return render_template("factors/recovery_codes.html", codes=codes, continue_url=url_for("factors.security_page"))


# ---- Signing in ----

@bp.route("/login/enrol")
def enrol():
    """Right after the password, for someone who must have a second factor and has none: set one up."""
    db = get_db()
    row = factors.pending_user(db, enrol=True)
    if row is None:
        return redirect(url_for("auth.login"))
    return render_template("factors/security.html", factors=factors.factors_of(db, row["id"]), required=True,
                           enrolling=True, who=row)


@bp.route("/login/second-factor", methods=["GET", "POST"])
def second_factor():
    """Right after the password: a code from the authenticator app, a security key, or a recovery code."""
    db = get_db()
    row = factors.pending_user(db, enrol=False)
    if row is None:
        session.pop("pending_sign_in", None)
        flash("Sign in again: it took too long, or the account was locked or changed.")
        return redirect(url_for("auth.login"), 303 if request.method == "POST" else 302)
    mine = factors.factors_of(db, row["id"])
    if request.method == "GET":
        return render_template("factors/second_factor.html", factors=mine, error=None)
    code, recovery = request.form.get("code", "")[:20], request.form.get("recovery_code", "")[:40]
    try:
        factors.check_code(db, row, code, recovery)
    except factors.Refused as refusal:
        factors.record_refusal(db, refusal, row["username"])
        if factors.pending_user(db, enrol=False) is None:
            session.pop("pending_sign_in", None)
            locked = accounts.user_by_id(db, row["id"])
            flash(lock_message(locked, "wrong codes") if is_locked(locked)
                  else "Sign in again: it took too long, or the account was changed.")
            return redirect(url_for("auth.login"), 303)
        return render_template("factors/second_factor.html", factors=mine, error=refusal.message), 401
    next_url, first = factors.pending_next(), factors.pending_first()
    session.pop("pending_sign_in", None)
    response = finish_sign_in(row, f"{first}+recovery_code" if recovery else f"{first}+totp", next_url)
    if recovery:
        flash(f"You used a recovery code; {factors.factors_of(db, row['id'])['recovery_left']} are left.")
    return response


@bp.route("/login/passkey/options", methods=["POST"])
# Anyone may ask, and each answer keeps a challenge on record for two minutes: a limit per address.
@limiter.limit(lambda: current_app.config["PASSKEY_OPTIONS_LIMIT"])
def sign_in_options():
    """Options for the browser to sign in with a passkey: any of yours, or the key of the account mid-sign-in."""
    db = get_db()
    return current_app.response_class(factors.authentication_options(db, factors.pending_user(db, enrol=False)),
                                      mimetype="application/json")


@bp.route("/login/passkey", methods=["POST"])
def sign_in_with_passkey():
    """Check the passkey's answer and sign its owner in: a passkey that verifies the user is both factors."""
    db = get_db()
    pending = factors.pending_user(db, enrol=False)
    try:
        row = factors.authenticate_passkey(db, _json_object().get("credential"), pending)
    except factors.Refused as refusal:
        _refused(db, refusal, pending["username"] if pending else "", status=401 if refusal.action == "passkey_cloned" else 400)
    next_url = factors.pending_next() if pending else request.args.get("next")
    first = factors.pending_first()
    session.pop("pending_sign_in", None)
    return _json_redirect(finish_sign_in(row, f"{first}+security_key" if pending else "passkey", next_url))


# ---- A coordinator's reset ----

@bp.route("/roster/<int:user_id>/second-factors/reset", methods=["POST"])
@role_required("coordinator")
@step_up.required(back="program.roster")
def reset(user_id):
    """Remove every passkey, app and recovery code of someone who lost them; they are signed out everywhere."""
    db = get_db()
    target = accounts.user_by_id(db, user_id)
    if target is None:
        abort(404, description="No such account.")
    if user_id == current_user.id:
        abort(400, description="Manage your own second factors on your Security page.")
    if request.form.get("confirm") != "yes":
        abort(400, description="Tick the box to confirm: this signs them out everywhere.")
    factors.reset_factors(db, target)
    flash(f"{target['display_name']}'s passkeys, authenticator app and recovery codes are removed, and they are"
          " signed out everywhere. They set up a new second factor at their next sign-in.")
    return redirect(url_for("program.officer", user_id=user_id), 303)
