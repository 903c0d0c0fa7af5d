"""A coordinator lets in an account locked after wrong passwords or codes.

The lock-out itself is lockout.py's; after its last lock an account waits
for this. The officer's page on the roster shows the button while it is locked.
"""
from flask import Blueprint, abort, flash, redirect, request, url_for
from flask_login import current_user

from . import accounts
from ..store.db import get_db
from .access import role_required
from .lockout import is_locked, let_in, waits_for_a_coordinator

bp = Blueprint("unlock", __name__)


@bp.app_context_processor
def _account_lock():
    """`account_lock(user_id)` for the officer's page: the account's lock, or None while it is not locked."""
    def account_lock(user_id):
        row = accounts.user_by_id(get_db(), user_id)
        if row is None or not is_locked(row):
            return None
        return {"failures": row["failed_logins"], "until": row["locked_until"],
                "for_a_coordinator": waits_for_a_coordinator(row)}

    return {"account_lock": account_lock}


@bp.route("/roster/<int:user_id>/sign-in/unlock", methods=["POST"])
@role_required("coordinator")
def unlock_account(user_id):
    """Lift the lock and forget the failures; check with the account's owner first, since someone was guessing."""
    db = get_db()
    target = accounts.user_by_id(db, user_id)
    if target is None:
        abort(404, description="No such account.")
    if user_id == current_user.id:
        abort(400, description="Ask another coordinator to unlock your own account.")
    if request.form.get("confirm") != "yes":
        abort(400, description="Tick the box to confirm you have checked with them. Nothing was changed.")
    let_in(db, target)
    flash(f"{target['display_name']} can sign in again.")
    return redirect(url_for("program.officer", user_id=user_id), 303)
