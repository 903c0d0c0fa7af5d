"""Sign-in throttling: how many failed sign-ins one network address may make.

Owns `sign_in_attempts`. Every attempt is written down before its password is
checked, in a write transaction that also counts the address's attempts in
the window, so twenty guesses sent at once are twenty attempts, not one: the
fifth and later are refused with a 429 before any password is hashed. An
attempt that succeeds is taken off again, so a station full of officers
behind one address signing in at shift change is never slowed. The counts
live in the database, so every worker process shares them.

The passkey options keep a Flask-Limiter limit of their own (`limiter`).
"""
import functools

from flask import current_app, make_response, request
from flask_limiter import Limiter
from limits import parse
from werkzeug.exceptions import TooManyRequests

from ..clock import now
from ..store.db import get_db, write_transaction
from ..web.errors import handle_http_error


def _address():
    """Where a sign-in comes from, as throttling sees it (the real client behind PROXY_FIX)."""
    return request.remote_addr or "unknown"


# Per-address limits on failed sign-ins, checked before any password is hashed.
# The limit for one account from one address sits below LOGIN_MAX_FAILURES, so
# one address can slow guessing at an account but never lock it: locking an
# officer out takes failures from several addresses (docs/SECURITY.md).
limiter = Limiter(_address)
THROTTLED = "Too many failed sign-ins from this network. Wait a few minutes, then try again, or ask your supervisor."


@limiter.request_filter
def _reads_are_never_limited():
    """Every limit here is on a POST (passkey options): a page read skips the limiter's lookup of its route."""
    return request.method in ("GET", "HEAD", "OPTIONS")


def take_a_try(db, address, account):
    """Write down one sign-in attempt from `address` at `account` before its password is checked.

    Returns (attempt id, None), or (None, seconds to wait) when the address is
    over LOGIN_LIMIT_PER_ACCOUNT_AND_ADDRESS for this account or
    LOGIN_LIMIT_PER_ADDRESS for all accounts together. Attempts still being
    checked count: that is what stops a burst.
    """
    config = current_app.config
    per_account, per_address = parse(config["LOGIN_LIMIT_PER_ACCOUNT_AND_ADDRESS"]), parse(config["LOGIN_LIMIT_PER_ADDRESS"])
    t = now()
    with write_transaction(db):
        db.execute("DELETE FROM sign_in_attempts WHERE at < ?",
                   [t - max(per_account.get_expiry(), per_address.get_expiry())])
        for limit, where, params in ((per_account, "address = ? AND account = ?", [address, account]),
                                     (per_address, "address = ?", [address])):
            window = t - limit.get_expiry()
            count, oldest = db.execute(f"SELECT COUNT(*), MIN(at) FROM sign_in_attempts WHERE {where} AND at >= ?",
                                       [*params, window]).fetchone()
            if count >= limit.amount:
                return None, max(1, int(oldest + limit.get_expiry() - t) + 1)
        attempt = db.execute("INSERT INTO sign_in_attempts (address, account, at) VALUES (?, ?, ?)",
                             [address, account, t]).lastrowid
    return attempt, None


def give_back(db, attempt):
    """Take an attempt that succeeded off the count."""
    db.execute("DELETE FROM sign_in_attempts WHERE id = ?", [attempt])


def failed_sign_ins_limited(view):
    """Limit the failed sign-ins at `view` from one address: to all accounts, and to any one account.

    The account is the form's `username`. A 401 is a failure and stays counted;
    any other answer (signed in, or on to the second step) is taken off.
    """
    @functools.wraps(view)
    def limited(*args, **kwargs):
        if request.method != "POST":
            return view(*args, **kwargs)
        account = request.form.get("username", "")[:64].strip().lower()
        db = get_db()
        attempt, wait = take_a_try(db, _address(), account)
        if attempt is None:
            response = make_response(handle_http_error(TooManyRequests(THROTTLED)))
            response.headers["Retry-After"] = str(wait)
            return response
        response = make_response(view(*args, **kwargs))
        if response.status_code != 401:
            give_back(db, attempt)
        return response

    return limited


def init_app(app):
    """Wire the limiter into the app."""
    limiter.init_app(app)
