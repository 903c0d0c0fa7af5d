"""Requests written already closed, as history: the demo's invented year.

They never reach the state machine, the escalation steps or the outbox, so
they can never alert anyone or send a push. Each is marked `demo = 1`, so it
can always be told apart from a live request.
"""
from .timeline import add_past_events

CLOSED_STATES = ("resolved", "cancelled")
HISTORY_COLUMNS = (
    "requester_id", "state", "created_at", "updated_at", "lat", "lon", "location_text", "weapon", "medical",
    "juvenile", "policy", "unanswered", "assigned_id", "accepted_at", "on_scene_at", "stabilised_at", "closed_at",
    "disposition", "cancel_reason", "force_used", "officer_injured", "person_injured",
)


def record_closed_requests(db, closed):
    """Write closed demo requests and their timelines; call inside a write transaction.

    `closed` is [(row, events)]: `row` has HISTORY_COLUMNS, `events` is
    [(at, actor_id, event, detail)]. Returns how many were written.
    """
    for row, _ in closed:
        if row["state"] not in CLOSED_STATES:
            raise ValueError(f"History holds closed requests only, not {row['state']!r}.")
    # Ids are given, not taken from lastrowid, so both tables go in with executemany;
    # the caller's write transaction holds the lock, so nobody takes them meanwhile.
    first = (db.execute("SELECT COALESCE(MAX(id), 0) FROM cit_requests").fetchone()[0]) + 1
    marks = ", ".join("?" * (len(HISTORY_COLUMNS) + 2))
    db.conn.executemany(
        f"INSERT INTO cit_requests (id, demo, {', '.join(HISTORY_COLUMNS)}) VALUES ({marks})",
        [[first + i, 1, *(row[c] for c in HISTORY_COLUMNS)] for i, (row, _) in enumerate(closed)],
    )
    add_past_events(db, [(first + i, *event) for i, (_, events) in enumerate(closed) for event in events])
    return len(closed)


def demo_request_count(db):
    """How many invented demo requests the database holds."""
    return db.execute("SELECT COUNT(*) FROM cit_requests WHERE demo = 1").fetchone()[0]
