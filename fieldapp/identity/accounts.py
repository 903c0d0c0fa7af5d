"""Accounts: the one owner of the `users` table.

Every read of an account by name and every write to `users` goes through a
function here: creating an account, its name, unit, phone and role, its
password hash, its sign-in failure count and lock-out, and whether it is
disabled. What else must happen with them (signing the account out on every
browser, taking it off duty) is auth's and duty's, which call these.
"""
from flask import current_app
from werkzeug.security import generate_password_hash

from .. import events
from ..clock import now
from ..store.db import one
from .sessions import end_every_session

# What a person does, least to most trusted (SSO picks the most trusted of several mapped groups);
# a clinical partner opens only the content review pages.
# The users table's CHECK holds the same list (store/migrations.py); a new role needs a migration.
ROLES = ("clinical_partner", "officer", "dispatcher", "cit", "supervisor", "coordinator")
# Everyone who works calls: every role but the clinical partner, who opens only content review.
AT_WORK = tuple(role for role in ROLES if role != "clinical_partner")


def user_by_username(db, username):
    """The account row named `username`, or None."""
    return one(db, "SELECT * FROM users WHERE username = ?", [username])


def user_by_id(db, user_id):
    """The account row with id `user_id`, or None."""
    return one(db, "SELECT * FROM users WHERE id = ?", [user_id])


def patrol_officer_named(db, who):
    """The id of the enabled officer with this username or unit, or None (a unit two people share is refused)."""
    rows = list(db.query(
        "SELECT id FROM users WHERE disabled = 0 AND role IN ('officer', 'cit', 'supervisor')"
        " AND (username = ? OR (unit != '' AND unit = ? COLLATE NOCASE))",
        [who, who],
    ))
    return rows[0]["id"] if len(rows) == 1 else None


def every_user(db):
    """Every account, by username."""
    return list(db.query("SELECT id, username, role, display_name, disabled FROM users ORDER BY username"))


def check_username(username):
    """The username trimmed, or ValueError saying what a username may be."""
    username = (username or "").strip()
    if not username or len(username) > 64 or not username.replace(".", "").replace("-", "").replace("_", "").isalnum():
        raise ValueError("A username is 1 to 64 letters, digits, dots, hyphens or underscores.")
    return username


def hash_password(password):
    """Hash with the configured method (werkzeug's scrypt unless a test asks for faster)."""
    return generate_password_hash(password, method=current_app.config.get("PASSWORD_HASH_METHOD", "scrypt"))


def check_new_password(password, repeat, username):
    """What is wrong with a new password, as a list of messages (empty when it will do)."""
    minimum = current_app.config["PASSWORD_MIN_LENGTH"]
    problems = []
    if len(password) < minimum:
        problems.append(f"A password has at least {minimum} characters; a few plain words in a row is fine.")
    if len(password) > 256:
        problems.append("A password has at most 256 characters.")
    if password.strip().lower() == username.lower():
        problems.append("A password cannot be the username.")
    if password != repeat:
        problems.append("The two new passwords are not the same.")
    return problems


def create_user(db, username, password, role, display_name=None, unit="", phone="", password_hash=None,
                must_change=False):
    """Create an account and return its id; raises ValueError on bad input.

    `password_hash` replaces `password` when the caller hashed it already:
    a bulk import hashes before taking the write lock, because each hash
    takes about a tenth of a second. `must_change` when someone else chose
    the password: its owner replaces it at first sign-in.
    """
    username = check_username(username)
    if role not in ROLES:
        raise ValueError(f"Role must be one of: {', '.join(ROLES)}.")
    if password_hash is None:
        problems = check_new_password(password or "", password or "", username)
        if problems:
            raise ValueError(" ".join(problems))
    if user_by_username(db, username):
        raise ValueError(f"The username {username!r} is taken.")
    cursor = db.execute(
        "INSERT INTO users (username, display_name, role, password_hash, unit, phone, created_at, must_change_password)"
        " VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
        [username, display_name or username, role, password_hash or hash_password(password), unit, phone, now(),
         int(must_change)],
    )
    return cursor.lastrowid


def update_details(db, user_id, display_name, unit, phone):
    """Set an account's unit and phone, and its shown name unless `display_name` is blank."""
    db.execute(
        "UPDATE users SET display_name = COALESCE(NULLIF(?, ''), display_name), unit = ?, phone = ? WHERE id = ?",
        [display_name, unit, phone, user_id],
    )


def set_role(db, user_id, role):
    """Give an account another role (one of ROLES)."""
    if role not in ROLES:
        raise ValueError(f"Role must be one of: {', '.join(ROLES)}.")
    db.execute("UPDATE users SET role = ? WHERE id = ?", [role, user_id])


def store_password(db, user_id, password_hash, must_change=False):
    """Store a new password hash and clear any lock-out; call it through accounts.set_password.

    Raising `session_version` makes every cookie issued before worthless;
    accounts.set_password also deletes the session records.
    """
    db.execute(
        "UPDATE users SET password_hash = ?, failed_logins = 0, locked_until = NULL, must_change_password = ?,"
        " session_version = session_version + 1 WHERE id = ?",
        [password_hash, int(must_change), user_id],
    )


def set_email(db, user_id, email):
    """Record the account's e-mail address (single sign-on matches on it), cut to the 254 characters one may have."""
    db.execute("UPDATE users SET email = ? WHERE id = ?", [str(email)[:254], user_id])


def raise_session_version(db, user_id):
    """Make every cookie issued to the account before now worthless (its devices sign in again)."""
    db.execute("UPDATE users SET session_version = session_version + 1 WHERE id = ?", [user_id])


def mark_disabled(db, user_id, disabled):
    """Set whether an account is disabled; True if that changed it. Disabling raises its `session_version`."""
    cursor = db.execute(
        "UPDATE users SET disabled = ?, session_version = session_version + ? WHERE id = ? AND disabled != ?",
        [int(disabled), int(disabled), user_id, int(disabled)],
    )
    return cursor.rowcount > 0


def count_failed_sign_in(db, user_id):
    """Add one failed sign-in to the account and return the new count; call inside a write transaction.

    Counted in the database, not from a row read before: twenty guesses at
    once must count twenty, not one. (A statement that returns rows is not
    committed by itself, hence the transaction.)
    """
    return db.execute(
        "UPDATE users SET failed_logins = failed_logins + 1 WHERE id = ? RETURNING failed_logins", [user_id],
    ).fetchone()[0]


def lock_until(db, user_id, until):
    """Refuse sign-ins to the account until the time `until`; its failures keep counting across locks."""
    db.execute("UPDATE users SET locked_until = ? WHERE id = ?", [until, user_id])


def clear_failed_sign_ins(db, user_id):
    """Forget the account's failed sign-ins and any lock-out (after a good sign-in)."""
    db.execute("UPDATE users SET failed_logins = 0, locked_until = NULL WHERE id = ?", [user_id])


def set_password(db, user_id, password_hash, must_change=False):
    """Store a new password hash, clear any lock-out, and sign the account out everywhere.

    `must_change` when someone other than the owner chose it (a coordinator's
    reset): the owner must then choose their own at first sign-in (ASVS 2.3.1).
    """
    store_password(db, user_id, password_hash, must_change)
    end_every_session(db, user_id)


def set_disabled(db, user_id, disabled):
    """Disable an account or enable it again; True if it changed.

    Disabling signs it out everywhere, takes it off duty and forgets its push
    subscriptions, so a lost phone stops receiving alerts even if the account
    comes back.
    """
    changed = mark_disabled(db, user_id, disabled)
    if disabled and changed:
        end_every_session(db, user_id)
        events.emit(events.account_disabled, db, user_id=user_id)  # duty stands them down
    return changed
