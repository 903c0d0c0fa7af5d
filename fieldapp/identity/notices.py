"""Notices to an account: what its owner, or a coordinator, must be told at their next page on every device.

Owns `account_notices`. A second factor added or removed, a password changed
or an account locked until a coordinator lets it in: each is written here, in
the transaction that made the change, and shown once on every browser signed
in to the account (as a message at the top of its next page), and again at
every sign-in for NOTICE_DAYS. The account row carries the newest notice's id,
so a page with nothing new costs no query.
"""
from flask import current_app, flash, request, session
from flask_login import current_user

from ..clock import now
from ..store.db import get_db
from ..web.context import is_offline_copy
from .access import NOT_AT_WORK_ENDPOINTS

SEEN_KEY = "notice_seen"
MADE_HERE_KEY = "notices_made_here"


def tell(db, user_id, text, seen_here=False):
    """Write a notice for the account `user_id`; call inside the change's write transaction.

    `seen_here`: the person on this browser made the change and already reads
    what happened (even mid-sign-in, enrolling); every other browser of the
    account is still told.
    """
    notice_id = db.execute("INSERT INTO account_notices (user_id, at, text) VALUES (?, ?, ?)",
                           [user_id, now(), text[:500]]).lastrowid
    db.execute("UPDATE users SET notice_id = ? WHERE id = ?", [notice_id, user_id])
    if seen_here:
        session[SEEN_KEY] = notice_id
        session[MADE_HERE_KEY] = [*session.get(MADE_HERE_KEY, [])[-9:], notice_id]
    return notice_id


def tell_coordinators(db, text):
    """Write a notice for every coordinator who can sign in; call inside a write transaction."""
    for row in db.query("SELECT id FROM users WHERE role = 'coordinator' AND disabled = 0"):
        tell(db, row["id"], text)


def recent(db, user_id, days=None):
    """The account's notices of the last NOTICE_DAYS, newest first, for the Security page."""
    days = current_app.config["NOTICE_DAYS"] if days is None else days
    return list(db.query("SELECT id, at, text FROM account_notices WHERE user_id = ? AND at >= ? ORDER BY id DESC",
                         [user_id, now() - days * 86400]))


def made_here():
    """The notices this browser's own changes wrote (read before a sign-in clears the session)."""
    made = session.get(MADE_HERE_KEY)
    return made if isinstance(made, list) else []


def show_at_sign_in(db, row, skip=()):
    """Show the notices of the last NOTICE_DAYS on the page a sign-in leads to; call after the session starts.

    `skip`: notices of changes made on this browser during this sign-in (a factor enrolled).
    """
    for notice in reversed(recent(db, row["id"])):
        if notice["id"] not in skip:
            flash(f"Security notice: {notice['text']}")
    session[SEEN_KEY] = max([row["notice_id"], *skip])


def show_new_notices():
    """Before a page: show any notice written since this browser last showed one.

    Only a page someone opened: not a poll, a fragment, a file or an offline
    copy the service worker fetches, whose answer must leave the cookie alone.
    """
    if (request.method != "GET" or request.headers.get("HX-Request") or request.endpoint in NOT_AT_WORK_ENDPOINTS
            or request.blueprint == "pwa" or is_offline_copy() or not current_user.is_authenticated):
        return None
    newest = current_user.row["notice_id"]
    seen = session.get(SEEN_KEY)
    if not isinstance(seen, int):  # a session started without a sign-in's notices (a new password): from now on
        session[SEEN_KEY] = newest
        return None
    if newest <= seen:
        return None
    for notice in get_db().query("SELECT text FROM account_notices WHERE user_id = ? AND id > ? ORDER BY id",
                                 [current_user.id, seen]):
        flash(f"Security notice: {notice['text']}")
    session[SEEN_KEY] = newest
    return None


def init_app(app):
    """How long notices are shown again at each sign-in; new ones shown on the next page."""
    app.before_request(show_new_notices)
