"""The account lock-out: checking a password or a code, and counting the failures that lock an account.

Every answer to a sign-in (a password, an authenticator-app code, a recovery
code) is settled in one write transaction that reads the lock-out state,
accepts the answer or counts the failure, and locks when it must. A right
answer that arrives while the account is locked, or while a burst is locking
it, is refused.

Failures are counted in a row, across locks, until a sign-in is finished
(sign_in.finish_sign_in). Every LOGIN_MAX_FAILURES of them lock the account,
each lock longer than the last (LOGIN_LOCK_SCHEDULE: 15 minutes, an hour, then
until a coordinator lets it in). NIST SP 800-63B (5.2.2) allows at most 100
failed attempts in a row on one account: past LOGIN_HARD_LIMIT the lock is for
a coordinator whatever the schedule. Coordinators are told when an account
reaches LOGIN_ALERT_FAILURES failures in a row, and whenever one waits for them.
The count and the lock are kept in `users` through accounts.py.
"""
import secrets

from flask import current_app
from werkzeug.security import check_password_hash, generate_password_hash

from . import accounts, notices
from ..audit import log as audit
from ..clock import now
from ..store.db import write_transaction

# `locked_until` of an account that waits for a coordinator: later than any lock the schedule gives.
UNTIL_A_COORDINATOR = 32_503_680_000.0  # 1 January 3000
# NIST SP 800-63B 5.2.2: no more than 100 consecutive failed attempts on a single account.
NIST_MOST_FAILURES = 100


def is_locked(row):
    """True while the account `row` is locked."""
    return bool(row["locked_until"] and row["locked_until"] > now())


def waits_for_a_coordinator(row):
    """True when the account is locked until a coordinator lets it in."""
    return bool(row["locked_until"] and row["locked_until"] >= UNTIL_A_COORDINATOR)


def lock_message(row, what="wrong answers"):
    """What a locked person is told: for how long, or that a coordinator must let them in."""
    if waits_for_a_coordinator(row):
        return f"Too many {what}: the account is locked until a coordinator lets it in. Ask a coordinator."
    minutes = max(1, round((row["locked_until"] - now()) / 60))
    return f"Too many {what}: the account is locked; try again in {minutes} minutes, or ask a coordinator."


def check_login(db, username, password):
    """Return the user row when the credentials are good and the account may sign in, else None.

    Failures count towards a lock-out; the caller's message stays generic
    so it never tells which half was wrong.
    """
    row = accounts.user_by_username(db, username)
    if row is None or row["disabled"] or is_locked(row):
        # One hash on every path, of the same cost: how long a refusal takes
        # must not tell a missing, disabled or locked account from a wrong password.
        check_password_hash(_dummy_hash(), password)
        return None
    right = check_password_hash(row["password_hash"], password)
    # The password must still be the one just checked: a change made meanwhile wins. The count
    # starts again only once signing in is finished (sign_in.finish_sign_in): a right password
    # followed by wrong second-factor codes must not wipe the count before each new guess.
    return settle(db, row, lambda fresh: right and fresh["password_hash"] == row["password_hash"])


def settle(db, row, answer_is_right):
    """Settle one answer for the account `row` in a single write transaction; the fresh row when accepted, else None.

    `answer_is_right(fresh_row)` runs inside the transaction, after the lock
    is read: it may write what accepting the answer spends (a code's step, a
    recovery code). A locked or disabled account refuses even a right answer,
    which is not counted; a wrong one is counted, and may lock the account.
    """
    with write_transaction(db):
        fresh = accounts.user_by_id(db, row["id"])
        if fresh is None or fresh["disabled"] or is_locked(fresh):
            return None
        if answer_is_right(fresh):
            return fresh
        _count_failure(db, fresh)
    return None


def record_failed_sign_in(db, username):
    """Audit a refused sign-in at the form, under the name typed (the page never says which half was wrong)."""
    audit.record(db, "login_failed", username, actor=(None, ""))


def record_failed_password_change(db, username):
    """Audit a password change refused for a wrong current password (it counted towards the lock-out)."""
    audit.record(db, "password_change_failed", username)


def lock_length(failures):
    """How long the lock reached at `failures` in a row lasts, in seconds; None until a coordinator lets it in."""
    config = current_app.config
    schedule = config["LOGIN_LOCK_SCHEDULE"] or [config["LOGIN_LOCK_SECONDS"], 3600, None]
    if failures >= config["LOGIN_HARD_LIMIT"]:
        return None
    return schedule[min(failures // config["LOGIN_MAX_FAILURES"], len(schedule)) - 1]


def _count_failure(db, row):
    """Count one failure inside the caller's write transaction; lock and tell when the count calls for it."""
    config = current_app.config
    failures = accounts.count_failed_sign_in(db, row["id"])
    if failures % config["LOGIN_MAX_FAILURES"] == 0 or failures >= config["LOGIN_HARD_LIMIT"]:
        seconds = lock_length(failures)
        accounts.lock_until(db, row["id"], UNTIL_A_COORDINATOR if seconds is None else now() + seconds)
        how_long = "until a coordinator lets it in" if seconds is None else f"for {seconds // 60} minutes"
        current_app.logger.warning("Account %s locked %s after %d failed sign-ins in a row",
                                   row["username"], how_long, failures)
        audit.record(db, "account_locked", row["username"], f"after {failures} failed sign-ins in a row, {how_long}",
                     actor=(None, ""))
        if seconds is None:
            notices.tell_coordinators(db, f"The account {row['username']} is locked after {failures} wrong passwords"
                                          " or codes in a row, and waits for a coordinator to let it in (its page"
                                          " on the roster). Check with its owner first.")
            return
    if failures == config["LOGIN_ALERT_FAILURES"]:
        audit.record(db, "failed_sign_ins_alert", row["username"], f"{failures} failed sign-ins in a row",
                     actor=(None, ""))
        notices.tell_coordinators(db, f"The account {row['username']} has had {failures} wrong passwords or codes in"
                                      " a row: someone may be guessing. Check with its owner.")


def unlock(db, row):
    """Let a locked account sign in again and forget its failures (a coordinator's act); call inside a write transaction."""
    accounts.clear_failed_sign_ins(db, row["id"])


def let_in(db, row):
    """A coordinator lets the locked account `row` in: unlocked, its failures forgotten, and audited."""
    with write_transaction(db):
        unlock(db, row)
        audit.record(db, "account_unlocked", row["username"], f"after {row['failed_logins']} failures in a row")


_DUMMY_HASHES = {}


def _dummy_hash():
    """A hash made the way real ones are now, so checking it costs what checking a real one does."""
    method = current_app.config.get("PASSWORD_HASH_METHOD", "scrypt")
    if method not in _DUMMY_HASHES:
        _DUMMY_HASHES[method] = generate_password_hash(secrets.token_urlsafe(16), method=method)
    return _DUMMY_HASHES[method]


def init_app(app):
    """The lock schedule's defaults, checked against NIST SP 800-63B's ceiling of 100 failures in a row."""
    if not 0 < app.config["LOGIN_HARD_LIMIT"] <= NIST_MOST_FAILURES:
        raise ValueError(f"LOGIN_HARD_LIMIT must be between 1 and {NIST_MOST_FAILURES} (NIST SP 800-63B 5.2.2).")
    schedule = app.config["LOGIN_LOCK_SCHEDULE"]
    if schedule is not None and (not schedule or any(s is not None and not (isinstance(s, int) and s > 0)
                                                     for s in schedule)):
        raise ValueError("LOGIN_LOCK_SCHEDULE lists each lock's length in whole seconds (more than 0), or null for"
                         " 'until a coordinator lets it in', e.g. [900, 3600, null].")
