"""A coordinator administers accounts of every role: creating one, its details and role, a new
password, and whether it may sign in. Each change is audited.

Service functions only: the pages are the program area's (program/views.py),
and the `users` commands are cli.py's. The `users` table itself is
accounts.py's, which these call.
"""
import secrets

from ..audit import log as audit
from ..store.db import write_transaction
from . import accounts
from .accounts import set_disabled, set_password


def generated_password():
    """A password someone else hands over, shown once, and its hash: (password, hash).

    Hashed before any write lock is taken: a hash takes about 0.1 s, and
    request alerts must not wait behind it. Its owner replaces it at first sign-in.
    """
    password = secrets.token_urlsafe(12)
    return password, accounts.hash_password(password)


def create_account(db, username, role, details, password_hash):
    """Create an account whose owner must change the password at first sign-in, audited; returns its id.

    `details` holds display_name, unit and phone. Call inside a write
    transaction: a specialist's roster record is written in the same one.
    ValueError when the username is taken.
    """
    user_id = accounts.create_user(db, username, None, role, details["display_name"] or None, details["unit"],
                                   details["phone"], password_hash=password_hash, must_change=True)
    audit.record(db, "user_created", username, f"role {role}")
    return user_id


def update_account(db, target, details, role):
    """Set an account's name, unit and phone, and its role (audited when it changes).

    `target` is the account's row as it was; call inside a write transaction.
    """
    accounts.update_details(db, target["id"], details["display_name"], details["unit"], details["phone"])
    if role != target["role"]:
        accounts.set_role(db, target["id"], role)
        audit.record(db, "role_changed", target["username"], f"{target['role']} -> {role}")


def reset_password(db, target):
    """Give an account a new generated password and sign it out everywhere, audited; returns the password, shown once."""
    password, password_hash = generated_password()
    with write_transaction(db):
        set_password(db, target["id"], password_hash, must_change=True)
        audit.record(db, "password_reset", target["username"])
    return password


def set_sign_in_disabled(db, target, disabled):
    """Disable an account (signed out everywhere, off duty, no alerts) or let it sign in again.

    Audited when it changed anything; returns whether it did.
    """
    with write_transaction(db):
        changed = set_disabled(db, target["id"], disabled)
        if changed:
            audit.record(db, "user_disabled" if disabled else "user_enabled", target["username"])
    return changed
