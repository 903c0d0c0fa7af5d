"""The board's rows: every open request with its alert and receipt counts, read change by change.

Reads only: the requests, alerts, receipts and outbox are the requests and
delivery areas'; the board keeps what it last read in the app's extensions.
"""
from collections import namedtuple

from flask import current_app

from ..clock import now
from ..requests.domain import OPEN_STATES
from ..store.changes import last_touch, part_current, touched_since


# A board row: the request's own columns, its counts, and whether no phone confirmed its alert in time.
BoardRow = namedtuple("BoardRow", (
    "id", "cad_incident", "drill", "state", "created_at", "unanswered", "location_text", "weapon", "medical", "juvenile",
    "requester", "requester_unit", "assignee", "alerted", "declined", "first_alert_at", "failed_pushes", "delivered", "seen",
    "unconfirmed",
))


def _read_rows(db, ids=None):
    """Open requests (those of `ids` only, when given) as BoardRows, not yet flagged: one query for them all.

    A failed push counts only when it was an alert to a specialist: the
    requester's and the supervisors' own pushes are not alerts.
    """
    marks = ",".join("?" * len(OPEN_STATES))
    only = f" AND r.id IN ({','.join('?' * len(ids))})" if ids is not None else ""
    # Each count is found through the open request's own rows (the request_id
    # indexes): grouping alerts and receipts first walked every one ever written
    # (with a year's history, 15,600 alerts, the query cost 2.4 times as much).
    rows = db.execute(
        "SELECT r.id, r.cad_incident, r.drill, r.state, r.created_at, r.unanswered, r.location_text,"
        " r.weapon, r.medical, r.juvenile, req.display_name AS requester, req.unit AS requester_unit,"
        " a.display_name AS assignee, COUNT(al.request_id) AS alerted, COUNT(al.declined_at) AS declined,"
        " MIN(al.at) AS first_alert_at,"
        " (SELECT COUNT(*) FROM outbox o JOIN alerts x ON x.request_id = o.request_id AND x.user_id = o.user_id"
        "  WHERE o.request_id = r.id AND o.channel = 'push' AND o.state IN ('failed', 'gone', 'expired')) AS failed_pushes,"
        # Specialists whose phones confirmed the alert (delivery receipts, issue 13).
        " (SELECT COUNT(DISTINCT user_id) FROM alert_receipts"
        "  WHERE request_id = r.id AND kind = 'alert' AND delivered_at IS NOT NULL) AS delivered,"
        " (SELECT COUNT(DISTINCT user_id) FROM alert_receipts"
        "  WHERE request_id = r.id AND kind = 'alert' AND seen_at IS NOT NULL) AS seen"
        " FROM cit_requests r JOIN users req ON req.id = r.requester_id LEFT JOIN users a ON a.id = r.assigned_id"
        " LEFT JOIN alerts al ON al.request_id = r.id"
        f" WHERE r.state IN ({marks}){only} GROUP BY r.id",
        [*OPEN_STATES, *(ids or ())],
    )
    # Tuples with names: Jinja reads `r.state` as an attribute, which a dict
    # fails first (a third of a 200-row render), and a tuple is its own key for
    # the row's kept HTML (`_rendered_with_kept_rows`).
    return [BoardRow(*row, False) for row in rows]


# More requests touched than this since the last read: one query for them all is cheaper.
_WHOLE_AFTER = 50


def open_requests(db):
    """Open requests as BoardRows, unanswered first, then the oldest waiting, with alert counts.

    A changed poll reads again only the requests written since this process
    last read the board (the touch log, `changes.touched_since`), and keeps the
    rest: with 200 open requests, reading every row was most of a changed poll.
    A rename, or a log that no longer reaches back, reads them all. A waiting
    request is flagged unconfirmed when no phone confirmed its alert within
    RECEIPT_TIMEOUT_S: time alone turns that on, so it is worked out each time.
    """
    store = current_app.extensions.setdefault("fieldapp.board_data", {})
    # The touch mark is read before the rows: a write in between is read again next time, never missed.
    mark, people = last_touch(db), part_current(db, "people")
    kept = store.get("rows")
    touched = touched_since(db, kept[0]) if kept and kept[1] == people else None
    if touched is None or len(touched) > _WHOLE_AFTER:
        rows = {row.id: row for row in _read_rows(db)}
    else:
        rows = {id_: row for id_, row in kept[2].items() if id_ not in touched}
        if touched:
            rows.update((row.id, row) for row in _read_rows(db, sorted(touched)))
    # Whole values, replaced at once: a thread reading the board at the same time sees one or the other.
    store["rows"] = (mark, people, rows)
    since = now() - current_app.config["RECEIPT_TIMEOUT_S"]

    def flagged(row):
        if row.state == "requested" and row.first_alert_at is not None and not row.delivered and row.first_alert_at < since:
            return row._replace(unconfirmed=True)
        return row

    return [flagged(row) for row in sorted(rows.values(), key=_board_order)]


def _board_order(row):
    """Unanswered first, then the ones waiting for a CIT officer, then the oldest."""
    return (not row.unanswered, row.state != "requested", row.created_at, row.id)


def overdue_alerts(db):
    """Waiting requests first alerted more than RECEIPT_TIMEOUT_S ago: time alone turns their flag on,
    with no write to move the change counter, so the board's poll key counts them."""
    return db.execute(
        "SELECT COUNT(*) FROM cit_requests r WHERE r.state = 'requested'"
        " AND (SELECT MIN(at) FROM alerts WHERE request_id = r.id) < ?",
        [now() - current_app.config["RECEIPT_TIMEOUT_S"]],
    ).fetchone()[0]
