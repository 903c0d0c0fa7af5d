"""A request's timeline: the append-only `request_events` table, and who did what.

Appending a line announces it (`events.request_moved`); the audit log and the
webhooks listen, so the timeline knows neither.
"""
from .. import events
from ..clock import now
from ..identity.accounts import user_by_id
from ..store.db import one


def add_event(db, request_id, event, actor_id=None, detail=""):
    """Append one line to the request's timeline, and announce it to the listeners."""
    db.execute(
        "INSERT INTO request_events (request_id, at, actor_id, event, detail) VALUES (?, ?, ?, ?, ?)",
        [request_id, now(), actor_id, event, detail],
    )
    actor = user_by_id(db, actor_id) if actor_id is not None else None
    # In the same transaction: a state change and what its listeners write commit together or not at all.
    events.emit(events.request_moved, db, request_id=request_id, event=event, actor_id=actor_id,
                actor_name=actor["username"] if actor else "", detail=detail)


def add_past_events(db, events):
    """Append many lines that happened earlier, at once: [(request_id, at, actor_id, event, detail)].

    For history written in bulk (the demo's invented year): no audit lines,
    because nobody did anything now.
    """
    db.conn.executemany(
        "INSERT INTO request_events (request_id, at, actor_id, event, detail) VALUES (?, ?, ?, ?, ?)", events
    )


def request_timeline(db, request_id):
    """The request's timeline, oldest first, with actors' names."""
    return list(
        db.query(
            "SELECT e.*, u.display_name AS actor FROM request_events e LEFT JOIN users u ON u.id = e.actor_id"
            " WHERE e.request_id = ? ORDER BY e.id",
            [request_id],
        )
    )


def has_event(db, request_id, event):
    """Whether the timeline already holds `event` (events that must happen once a request)."""
    return one(db, "SELECT 1 AS x FROM request_events WHERE request_id = ? AND event = ?", [request_id, event]) is not None
