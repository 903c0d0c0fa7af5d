"""A request's timeline: the append-only `request_events` table, and who did what."""
from ..audit import log as audit
from ..clock import now
from ..store.db import one
from ..delivery.webhooks import queue_event


def add_event(db, request_id, event, actor_id=None, detail=""):
    """Append one line to the request's timeline, and to the audit log when a person did it."""
    db.execute(
        "INSERT INTO request_events (request_id, at, actor_id, event, detail) VALUES (?, ?, ?, ?, ?)",
        [request_id, now(), actor_id, event, detail],
    )
    # In the same transaction: a state change and its webhooks are written together or not at all.
    queue_event(db, request_id, event)
    if actor_id is not None:
        name = one(db, "SELECT username FROM users WHERE id = ?", [actor_id])
        audit.record(db, f"request_{event}", f"request {request_id}", detail, actor=(actor_id, name["username"] if name else ""))


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
