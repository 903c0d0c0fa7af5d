"""The audit log: an append-only record of who did what, for CJIS-style accountability.

Logins (good and bad), role changes, every change of a request's state, board
actions and exports are written here. The table refuses UPDATE and DELETE.
"""
import getpass
import os

from flask import has_request_context, request
from flask_login import current_user

from ..clock import now
from ..logs import AUDIT


def os_user():
    """Who is running this process, as the OS knows them (for messages and the audit log)."""
    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return f"uid {os.getuid()}"


def record(db, action, subject="", detail="", actor=None):
    """Append one entry; `actor` defaults to the signed-in user, if any."""
    actor_id, actor_name = None, ""
    if actor is not None:
        actor_id, actor_name = actor
    elif has_request_context() and current_user and current_user.is_authenticated:
        actor_id, actor_name = current_user.id, current_user.username
    if actor_name == "cli":  # a command: say which OS account ran it
        actor_name = f"cli:{os_user()}"
    ip = request.remote_addr or "" if has_request_context() else ""
    db.execute(
        "INSERT INTO audit_log (at, actor_id, actor_name, action, subject, detail, ip) VALUES (?, ?, ?, ?, ?, ?, ?)",
        [now(), actor_id, actor_name, action, subject, detail[:500], ip],
    )
    AUDIT.info(action, extra={"event": "audit", "action": action, "actor": actor_name, "subject": subject,
                              "detail": detail[:500], "ip": ip})


def on_request_moved(db, *, request_id, event, actor_id, actor_name, detail, **_):
    """Listener: a person's action on a request goes in the audit log; the system's own steps do not."""
    if actor_id is not None:
        record(db, f"request_{event}", f"request {request_id}", detail, actor=(actor_id, actor_name))
def export_entries(db):
    """Every entry, oldest first, for the CSV export; the export itself is recorded first."""
    record(db, "audit_export", "audit log")
    return reversed(entries(db, limit=1_000_000))


def entries(db, limit=500, since=None, until=None):
    """Newest entries first, optionally within [since, until)."""
    where, params = [], []
    if since is not None:
        where.append("at >= ?")
        params.append(since)
    if until is not None:
        where.append("at < ?")
        params.append(until)
    clause = f"WHERE {' AND '.join(where)}" if where else ""
    return list(db.query(f"SELECT * FROM audit_log {clause} ORDER BY id DESC LIMIT ?", [*params, limit]))
