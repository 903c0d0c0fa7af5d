"""The outbox: messages queued for the worker to send, and their attempts.

This module is the one writer of `outbox` and `push_attempts`. The requests
area queues messages here inside the write transaction that changes a
request, so a request never waits for push; the worker leases them, sends
them, and records each attempt here; restore and retention call it too.
"""
from flask import current_app

from ..clock import now
from ..store.db import write_transaction

# Retries: 2, 4, 8, 16, 32 s, at most six attempts in all (docs/SECURITY.md).
MAX_ATTEMPTS = 6
BACKOFF_BASE_S = 2.0
BACKOFF_MAX_S = 60.0


def queue_message(db, request_id, user_id, subscription_id, payload, topic, t, channel="push"):
    """One outbox row for the worker to send; must run inside a write transaction."""
    db.execute(
        "INSERT INTO outbox (request_id, user_id, subscription_id, payload, topic, next_attempt_at, created_at, channel)"
        " VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
        [request_id, user_id, subscription_id, payload, topic, t, t, channel],
    )


def queue_to_devices(db, request_id, user_id, payload, topic):
    """One outbox row per device of `user_id` for this payload and Topic; must run inside a write transaction."""
    t = now()
    for sub in db.execute("SELECT id FROM push_subscriptions WHERE user_id = ?", [user_id]).fetchall():
        queue_message(db, request_id, user_id, sub[0], payload, topic, t)


def queue_board_pushes(db, payload, topic, quiet_s):
    """One push to every device a supervisor asked board alerts on, unless one is pending or went out in the last `quiet_s`.

    Must run inside a write transaction; returns how many were queued. However
    fast the board changes, a device gets at most one push per `quiet_s`; its page still polls.
    """
    t = now()
    return db.execute(
        "INSERT INTO outbox (request_id, user_id, subscription_id, payload, topic, next_attempt_at, created_at)"
        " SELECT NULL, s.user_id, s.id, ?, ?, ?, ? FROM push_subscriptions s JOIN users u ON u.id = s.user_id"
        " WHERE s.board_alerts = 1 AND u.role = 'supervisor' AND u.disabled = 0 AND NOT EXISTS ("
        "  SELECT 1 FROM outbox o WHERE o.subscription_id = s.id AND o.topic = ? AND (o.state = 'pending' OR o.created_at > ?))",
        [payload, topic, t, t, topic, t - quiet_s],
    ).rowcount


def withdraw_queued(db, request_id):
    """Take every message still queued for a request out of the outbox (a leased one too)."""
    db.execute("UPDATE outbox SET state = 'withdrawn' WHERE request_id = ? AND state = 'pending'", [request_id])


def lease(db, owner, limit, lease_s):
    """Claim up to `limit` due rows for the worker `owner` for `lease_s` seconds; returns them as dicts.

    Takes its own write transaction.
    """
    t = now()
    # A read first: an idle worker polling several times a second must not
    # take the write lock each time.
    due = db.execute(
        "SELECT 1 FROM outbox WHERE state = 'pending' AND next_attempt_at <= ?"
        " AND (lease_until IS NULL OR lease_until < ?) LIMIT 1",
        [t, t],
    ).fetchone()
    if due is None:
        return []
    with write_transaction(db):
        cursor = db.execute(
            "UPDATE outbox SET lease_owner = ?, lease_until = ?"
            " WHERE id IN (SELECT id FROM outbox WHERE state = 'pending' AND next_attempt_at <= ?"
            " AND (lease_until IS NULL OR lease_until < ?) ORDER BY next_attempt_at, id LIMIT ?)"
            " RETURNING id, request_id, user_id, subscription_id, payload, topic, attempts, created_at, channel",
            [owner, t + lease_s, t, t, limit],
        )
        columns = [c[0] for c in cursor.description]
        rows = [dict(zip(columns, r)) for r in cursor.fetchall()]
    return rows


def still_queued(db, rows):
    """The leased rows nobody withdrew meanwhile: once a request is accepted, nothing more for it leaves."""
    pending = {r[0] for r in db.execute(
        f"SELECT id FROM outbox WHERE state = 'pending' AND id IN ({','.join('?' * len(rows))})",
        [r["id"] for r in rows]).fetchall()}
    return [r for r in rows if r["id"] in pending]


def expire(db, outbox_id):
    """Mark a leased row never sent: its device went away, or it outlived its TTL."""
    db.execute("UPDATE outbox SET state = 'expired', lease_owner = NULL, lease_until = NULL WHERE id = ?", [outbox_id])


def record_outcome(db, row, outcome, t):
    """Record one send of a leased row and settle it: sent, gone, to retry, or failed for good.

    Returns (state, attempts). Must run inside a write transaction.
    """
    db.execute(
        "INSERT INTO push_attempts (outbox_id, at, status, error, duration_ms) VALUES (?, ?, ?, ?, ?)",
        [row["id"], t, outcome.status, outcome.error, outcome.duration_ms],
    )
    attempts = row["attempts"] + 1
    if outcome.delivered:
        state, next_at = "sent", None
    elif outcome.gone:
        state, next_at = "gone", None
    elif outcome.retryable and attempts < MAX_ATTEMPTS:
        state = "pending"
        backoff = min(BACKOFF_MAX_S, BACKOFF_BASE_S ** attempts)
        next_at = t + max(backoff, outcome.retry_after or 0)
    else:
        state, next_at = "failed", None
    # `state = 'pending'`: a row withdrawn while it was being sent stays withdrawn, and is never retried.
    db.execute(
        "UPDATE outbox SET state = ?, attempts = ?, next_attempt_at = COALESCE(?, next_attempt_at), last_status = ?,"
        " sent_at = CASE WHEN ? = 'sent' THEN ? ELSE sent_at END, lease_owner = NULL, lease_until = NULL"
        " WHERE id = ? AND state = 'pending'",
        [state, attempts, next_at, outcome.status, state, t, row["id"]],
    )
    return state, attempts


def hold_back_pending(db, created_by, state):
    """Move every pending push queued by `created_by` to `state`, never to be sent; returns their request ids.

    For a database restored from a copy (restore.py): they may have gone out already.
    """
    return [row[0] for row in db.execute(
        "UPDATE outbox SET state = ?, lease_owner = NULL, lease_until = NULL"
        " WHERE state = 'pending' AND created_at <= ? RETURNING request_id",
        [state, created_by],
    ).fetchall()]


def forget_messages_of_closed_requests(db, cutoff):
    """Delete the messages, and their attempts, of requests closed before `cutoff`: they carried distances.

    For retention (`purge`); must run inside a write transaction.
    """
    closed = "SELECT id FROM cit_requests WHERE state IN ('resolved', 'cancelled') AND closed_at < ?"
    db.execute(f"DELETE FROM push_attempts WHERE outbox_id IN (SELECT id FROM outbox WHERE request_id IN ({closed}))", [cutoff])
    db.execute(f"DELETE FROM outbox WHERE request_id IN ({closed})", [cutoff])


def wake_worker():
    """Tell an in-process worker there is work, so alerts go out at once."""
    event = current_app.extensions.get("fieldapp.worker_wake")
    if event is not None:
        event.set()
