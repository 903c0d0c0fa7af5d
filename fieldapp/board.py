"""The supervisor board: every open request, live, with CIT coverage on duty now."""
from types import SimpleNamespace

from flask import Blueprint

from .auth import role_required
from .changes import cached, live_key
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
            " counted AS (SELECT a.request_id, COUNT(*) AS alerted, SUM(a.declined_at IS NOT NULL) AS declined"
            "  FROM alerts a JOIN open ON open.id = a.request_id GROUP BY a.request_id),"
            " failed AS (SELECT o.request_id, COUNT(*) AS n FROM outbox o JOIN open ON open.id = o.request_id"
            "  JOIN alerts a ON a.request_id = o.request_id AND a.user_id = o.user_id"
            "  WHERE o.state IN ('failed', 'gone', 'expired') GROUP BY o.request_id)"
            " SELECT r.id, r.state, r.created_at, r.accepted_at, r.unanswered, r.location_text, r.lat, r.lon,"
            " r.weapon, r.medical, r.juvenile, req.display_name AS requester, req.unit AS requester_unit,"
            " a.display_name AS assignee, COALESCE(c.alerted, 0) AS alerted, COALESCE(c.declined, 0) AS declined,"
            " COALESCE(f.n, 0) AS failed_pushes"
            " FROM open r JOIN users req ON req.id = r.requester_id LEFT JOIN users a ON a.id = r.assigned_id"
            " LEFT JOIN counted c ON c.request_id = r.id LEFT JOIN failed f ON f.request_id = r.id"
            " ORDER BY r.unanswered DESC, (r.state = 'requested') DESC, r.created_at",
            list(OPEN_STATES),
        )
    ))


def _board_context():
    db = get_db()
    # Coverage is the same on every supervisor's poll until something is written: computed once per change.
    return {"rows": open_requests(db), "coverage": cached(db, "coverage", coverage),
            "shift_coverage": cached(db, "shift_coverage", roster_coverage),
            "labels": STATE_LABELS}


@bp.route("")
@role_required("supervisor")
def index():
    """The board page; its live part polls `live`."""
    return page_or_block("board/index.html", "live", **_board_context())


@bp.route("/live")
@role_required("supervisor")
def live():
    """The polled part of the board; 304 when nothing it shows changed, without rendering it."""
    # The counter decides an unchanged poll before anything of the board is computed.
    return poll_response(live_key(get_db(), "board"),
                         lambda: page_or_block("board/index.html", "live", **_board_context()))
