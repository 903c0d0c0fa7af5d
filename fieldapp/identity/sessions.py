"""Who is signed in on this browser: the User, and the server-side record of each sign-in.

Owns the `sessions` table: a record is made at sign-in, touched as the
person works, and deleted at sign-out, by a password change or a disabled
account (every record of that account), and once it is too old to be used.
The limits a session lives within (the idle lock, one shift at most) are
read here and enforced on every request by security.py.
"""
import hashlib
import re
import secrets

from flask import current_app, request, session
from flask_login import UserMixin, current_user, login_user, logout_user

from ..audit import log as audit
from ..clock import now
from ..store.db import get_db, one, write_transaction


class User(UserMixin):
    """A signed-in person, built from a row of `users`."""

    def __init__(self, row):
        self.row = row
        self.id = row["id"]
        self.username = row["username"]
        self.display_name = row["display_name"]
        self.role = row["role"]
        self.unit = row["unit"]
        self.phone = row["phone"]

    @property
    def is_active(self):
        return not self.row["disabled"]

    def get_id(self):
        # The session holds the version too, so raising it ends every session at once.
        return f"{self.id}:{self.row['session_version']}"

    def has_role(self, *roles):
        """True when this user holds one of `roles`."""
        return self.role in roles


def load_user(session_id):
    """The user of this cookie, if its session is still on record.

    The cookie is signed, not secret from whoever holds it: what makes it
    worth anything is the record in `sessions`, which sign-out, a password
    change and a disabled account delete. A cookie with no record (copied
    before sign-out, or from before records were kept) signs no one in.
    """
    # A bare id is a session from before versions existed: version 0.
    user_id, _, version = str(session_id).partition(":")
    version = version or "0"
    token = session.get("sid")
    if not (re.fullmatch(r"[0-9]{1,18}", user_id) and re.fullmatch(r"[0-9]{1,18}", version) and isinstance(token, str)):
        return None
    row = one(
        get_db(),
        "SELECT users.*, sessions.created_at AS session_started_at, sessions.last_seen_at AS session_seen_at"
        " FROM users JOIN sessions ON sessions.user_id = users.id"
        " WHERE users.id = ? AND users.session_version = ? AND sessions.token_hash = ?",
        [int(user_id), int(version), _token_hash(token)],
    )
    return User(row) if row else None


def _token_hash(token):
    return hashlib.sha256(token.encode()).hexdigest()


def start_session(db, row):
    """Sign the person of `row` in on this browser: a fresh cookie session and its record."""
    session.clear()  # no session id or CSRF token from before sign-in carries over
    token = secrets.token_urlsafe(32)
    t = now()
    # Records of browsers closed without signing out go once they could no longer be used.
    db.execute("DELETE FROM sessions WHERE created_at <= ?", [t - current_app.config["SESSION_MAX_HOURS"] * 3600])
    db.execute(
        "INSERT INTO sessions (token_hash, user_id, created_at, last_seen_at, user_agent, ip) VALUES (?, ?, ?, ?, ?, ?)",
        [_token_hash(token), row["id"], t, t, request.user_agent.string[:200], request.remote_addr or ""],
    )
    login_user(User(row), remember=False)
    session["sid"] = token
    session["seen"] = t  # the idle lock counts from sign-in, even if no page follows


def end_session(db):
    """Sign this browser out: its record goes, so a copy of its cookie is worth nothing."""
    token = session.get("sid")
    if isinstance(token, str):
        db.execute("DELETE FROM sessions WHERE token_hash = ?", [_token_hash(token)])
    logout_user()
    session.clear()  # a new session and CSRF token from the next sign-in on


def sign_out(db):
    """The person signs out of this browser: audited when someone was signed in, then the session ends."""
    if current_user.is_authenticated:
        audit.record(db, "logout", current_user.username)
    end_session(db)


def sessions_of(db, user_id):
    """Where the account is signed in, newest first, each marked `here` when it is this browser."""
    token = session.get("sid")
    here = _token_hash(token) if isinstance(token, str) else ""
    return [dict(row, here=row["token_hash"] == here) for row in db.query(
        "SELECT token_hash, created_at, last_seen_at, user_agent, ip FROM sessions WHERE user_id = ?"
        " ORDER BY created_at DESC", [user_id])]


def end_other_sessions(db, user_id):
    """Sign an account out on every browser but this one (a change to its second factors)."""
    token = session.get("sid")
    db.execute("DELETE FROM sessions WHERE user_id = ? AND token_hash != ?",
               [user_id, _token_hash(token) if isinstance(token, str) else ""])


def sign_out_elsewhere(db, user):
    """The signed-in `user` signs out every other browser signed in as them, audited."""
    with write_transaction(db):
        end_other_sessions(db, user.id)
        audit.record(db, "signed_out_elsewhere", user.username)


def end_every_session(db, user_id):
    """Sign an account out on every browser (a new password, a disabled account)."""
    db.execute("DELETE FROM sessions WHERE user_id = ?", [user_id])


def session_over(user):
    """Why `user`'s session must end now ("idle" or "lifetime"), or None.

    Both follow the CJIS Security Policy: a session lock after at most 30
    minutes of inactivity (5.5.5, AC-11), and session termination on a
    condition the agency sets (AC-12): here, no sign-in outlives a shift.
    """
    t = now()
    if t - user.row["session_started_at"] >= current_app.config["SESSION_MAX_HOURS"] * 3600:
        return "lifetime"
    seen = session.get("seen")
    if seen is not None and t - seen > current_app.config["SESSION_IDLE_MINUTES"] * 60:
        return "idle"
    return None


def note_activity(db, user):
    """Someone is at work in this session: keep it from the idle lock, and record when it was last seen."""
    t = now()
    session["seen"] = t
    # At most one write a minute per session: the record is for people reading it, not the lock.
    if t - user.row["session_seen_at"] >= 60:
        db.execute("UPDATE sessions SET last_seen_at = ? WHERE token_hash = ?", [t, _token_hash(session["sid"])])

