"""The account lock-out: checking a password at sign-in, and counting the failures that lock an account.

An account is locked for LOGIN_LOCK_SECONDS after LOGIN_MAX_FAILURES failed
sign-ins (a wrong password or a wrong second factor); the failure count and
the lock itself are kept in `users` through accounts.py. The count starts
again once a sign-in is finished (sign_in.finish_sign_in).
"""
import secrets

from flask import current_app
from werkzeug.security import check_password_hash, generate_password_hash

from . import accounts
from ..audit import log as audit
from ..clock import now
from ..store.db import write_transaction


def check_login(db, username, password):
    """Return the user row when the credentials are good, else None.

    Failures count towards a lock-out; the caller's message stays generic
    so it never tells which half was wrong.
    """
    row = accounts.user_by_username(db, username)
    if row is None or row["disabled"] or (row["locked_until"] and row["locked_until"] > now()):
        # One hash on every path, of the same cost: how long a refusal takes
        # must not tell a missing, disabled or locked account from a wrong password.
        check_password_hash(_dummy_hash(), password)
        return None
    if not check_password_hash(row["password_hash"], password):
        count_failure(db, row)
        return None
    # The count starts again only once signing in is finished (sign_in.finish_sign_in): a right password
    # followed by wrong second-factor codes must not wipe the count before each new guess.
    return row


def count_failure(db, row):
    """Add one failed sign-in to the account, locking it at LOGIN_MAX_FAILURES."""
    with write_transaction(db):
        failures = accounts.count_failed_sign_in(db, row["id"])
        if failures >= current_app.config["LOGIN_MAX_FAILURES"]:
            accounts.lock_until(db, row["id"], now() + current_app.config["LOGIN_LOCK_SECONDS"])
            current_app.logger.warning("Account %s locked after %d failed sign-ins", row["username"], failures)
            audit.record(db, "account_locked", row["username"], f"after {failures} failed sign-ins", actor=(None, ""))


_DUMMY_HASHES = {}


def _dummy_hash():
    """A hash made the way real ones are now, so checking it costs what checking a real one does."""
    method = current_app.config.get("PASSWORD_HASH_METHOD", "scrypt")
    if method not in _DUMMY_HASHES:
        _DUMMY_HASHES[method] = generate_password_hash(secrets.token_urlsafe(16), method=method)
    return _DUMMY_HASHES[method]
