"""The supervisor board: every open request, live, with CIT coverage on duty now."""
from types import SimpleNamespace

from flask import Blueprint, current_app

from .auth import role_required
from .changes import cached, live_key
from .clock import now
from .db import get_db
from .duty import coverage
from .htmx import page_or_block, poll_response
from .program.coverage import roster_coverage
from .requests.domain import OPEN_STATES, STATE_LABELS

bp = Blueprint("board", __name__, url_prefix="/board")


def open_requests(db):
    """Open requests, unanswered first, then the oldest waiting, with alert counts: one query for them all.

    A failed push counts only when it was an alert to a specialist: the
    requester's and the supervisors' own pushes are not alerts.
    """
    marks = ",".join("?" * len(OPEN_STATES))
    # Attributes, not dict keys: Jinja reads `r.state` as an attribute first, and a
    # dict's failed attribute lookup, 20 times a row, was a third of a 200-row render.
    return list(map(lambda row: SimpleNamespace(**row),
        db.query(
            f"WITH open AS (SELECT * FROM cit_requests WHERE state IN ({marks})),"
            " counted AS (SELECT a.request_id, COUNT(*) AS alerted, SUM(a.declined_at IS NOT NULL) AS declined,"
            "  MIN(a.at) AS first_alert_at FROM alerts a JOIN open ON open.id = a.request_id GROUP BY a.request_id),"
            " failed AS (SELECT o.request_id, COUNT(*) AS n FROM outbox o JOIN open ON open.id = o.request_id"
            "  JOIN alerts a ON a.request_id = o.request_id AND a.user_id = o.user_id"
            "  WHERE o.channel = 'push' AND o.state IN ('failed', 'gone', 'expired') GROUP BY o.request_id),"
            # Specialists whose phones confirmed the alert (delivery receipts, issue 13).
            " confirmed AS (SELECT x.request_id,"
            "  COUNT(DISTINCT CASE WHEN x.delivered_at IS NOT NULL THEN x.user_id END) AS delivered,"
            "  COUNT(DISTINCT CASE WHEN x.seen_at IS NOT NULL THEN x.user_id END) AS seen"
            "  FROM alert_receipts x JOIN open ON open.id = x.request_id WHERE x.kind = 'alert' GROUP BY x.request_id)"
            " SELECT r.id, r.cad_incident, r.drill, r.state, r.created_at, r.accepted_at, r.unanswered, r.location_text,"
            " r.lat, r.lon, r.weapon, r.medical, r.juvenile, req.display_name AS requester, req.unit AS requester_unit,"
            " a.display_name AS assignee, COALESCE(c.alerted, 0) AS alerted, COALESCE(c.declined, 0) AS declined,"
            " COALESCE(f.n, 0) AS failed_pushes, c.first_alert_at,"
            " COALESCE(k.delivered, 0) AS delivered, COALESCE(k.seen, 0) AS seen"
            " FROM open r JOIN users req ON req.id = r.requester_id LEFT JOIN users a ON a.id = r.assigned_id"
            " LEFT JOIN counted c ON c.request_id = r.id LEFT JOIN failed f ON f.request_id = r.id"
            " LEFT JOIN confirmed k ON k.request_id = r.id"
            " ORDER BY r.unanswered DESC, (r.state = 'requested') DESC, r.created_at",
            list(OPEN_STATES),
        )
    ))


def _flag_unconfirmed(rows):
    """Flag each waiting request whose alert no phone confirmed within RECEIPT_TIMEOUT_S."""
    timeout = current_app.config["RECEIPT_TIMEOUT_S"]
    for row in rows:
        row.unconfirmed = (row.state == "requested" and row.first_alert_at is not None
                           and not row.delivered and now() - row.first_alert_at > timeout)
    return rows


def _overdue_alerts(db):
    """Waiting requests first alerted more than RECEIPT_TIMEOUT_S ago: time alone turns their flag on,
    with no write to move the change counter, so the board's poll key counts them."""
    return db.execute(
        "SELECT COUNT(*) FROM cit_requests r WHERE r.state = 'requested'"
        " AND (SELECT MIN(at) FROM alerts WHERE request_id = r.id) < ?",
        [now() - current_app.config["RECEIPT_TIMEOUT_S"]],
    ).fetchone()[0]


def _board_context():
    db = get_db()
    # Coverage is the same on every supervisor's poll until something is written: computed once per change.
    return {"rows": _flag_unconfirmed(open_requests(db)), "coverage": cached(db, "coverage", coverage),
            "shift_coverage": cached(db, "shift_coverage", roster_coverage),
            "labels": STATE_LABELS}


@bp.route("")
@role_required("supervisor", "dispatcher")
def index():
    """The board page; its live part polls `live`."""
    return page_or_block("board/index.html", "live", **_board_context())


@bp.route("/live")
@role_required("supervisor", "dispatcher")
def live():
    """The polled part of the board; 304 when nothing it shows changed, without rendering it."""
    # The counter decides an unchanged poll before anything of the board is computed.
    db = get_db()
    return poll_response(live_key(db, "board", _overdue_alerts(db)),
                         lambda: page_or_block("board/index.html", "live", **_board_context()))
