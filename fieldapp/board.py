"""The supervisor board: every open request, live, with CIT coverage on duty now."""
from flask import Blueprint, current_app

from .auth import role_required
from .clock import now
from .db import get_db
from .duty import coverage
from .htmx import page_or_block, poll_response
from .program.coverage import roster_coverage
from .requests import receipts
from .requests.domain import OPEN_STATES, STATE_LABELS

bp = Blueprint("board", __name__, url_prefix="/board")


def open_requests(db):
    """Open requests, unanswered first, then the oldest waiting, with alert counts."""
    marks = ",".join("?" * len(OPEN_STATES))
    return list(
        db.query(
            "SELECT r.id, r.cad_incident, r.state, r.created_at, r.accepted_at, r.unanswered, r.location_text, r.lat, r.lon,"
            " r.weapon, r.medical, r.juvenile, req.display_name AS requester, req.unit AS requester_unit,"
            " a.display_name AS assignee,"
            " (SELECT COUNT(*) FROM alerts WHERE request_id = r.id) AS alerted,"
            " (SELECT COUNT(*) FROM alerts WHERE request_id = r.id AND declined_at IS NOT NULL) AS declined,"
            " (SELECT COUNT(*) FROM outbox WHERE request_id = r.id AND state IN ('failed', 'gone', 'expired')) AS failed_pushes,"
            " (SELECT MIN(at) FROM alerts WHERE request_id = r.id) AS first_alert_at, r.drill"
            " FROM cit_requests r JOIN users req ON req.id = r.requester_id LEFT JOIN users a ON a.id = r.assigned_id"
            f" WHERE r.state IN ({marks})"
            " ORDER BY r.unanswered DESC, (r.state = 'requested') DESC, r.created_at",
            list(OPEN_STATES),
        )
    )


def _with_receipts(db, rows):
    """Each row's delivered and seen counts, and the flag for a request no phone confirmed in time."""
    timeout = current_app.config["RECEIPT_TIMEOUT_S"]
    for row in rows:
        row.update(receipts.counts(db, row["id"]))
        row["unconfirmed"] = (row["state"] == "requested" and row["first_alert_at"] is not None
                              and not row["delivered"] and now() - row["first_alert_at"] > timeout)
    return rows


def _board_context():
    db = get_db()
    return {"rows": _with_receipts(db, open_requests(db)), "coverage": coverage(db), "shift_coverage": roster_coverage(db),
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
    context = _board_context()
    return poll_response(context, lambda: page_or_block("board/index.html", "live", **context))
