"""The supervisor board: every open request, live, with CIT coverage on duty now."""
from flask import Blueprint, current_app
from markupsafe import Markup

from ..identity.access import role_required
from ..store.changes import cached, live_key
from ..store.db import get_db
from ..duty.status import coverage
from ..web.htmx import page_or_block, poll_response
from ..program.coverage import roster_coverage
from ..requests.domain import STATE_LABELS
from ..safety.timer import missed_check_ins
from .rows import open_requests, overdue_alerts

bp = Blueprint("board", __name__, url_prefix="/board")


def _rendered_with_kept_rows(render):
    """`render(rows_html)`, where `rows_html(rows, requests_url, macro)` is the board rows' HTML, each kept by its values.

    A board of 200 open requests changes a row or two between polls, and
    rendering every row again was most of a changed poll. A row shows only its
    own values (nothing about the viewer or the time: ages are clock times the
    page counts from, and the re-alert buttons post through one form outside the
    rows), so equal values give equal HTML for every supervisor. The key also
    holds the code's version and the requests' URL. Each render keeps only the
    rows it showed, so the copy per process is never larger than the board.
    """
    store = current_app.extensions.setdefault("fieldapp.board_rows", {"rows": {}})
    kept, version, shown = store["rows"], current_app.extensions["fieldapp.code_version"], {}

    def rows_html(rows, requests_url, macro):
        for row in rows:
            key = (version, requests_url, row)
            # The template's indentation collapsed: a fifth less to send and to compress on every poll.
            shown[key] = kept.get(key) or " ".join(str(macro(row)).split())
        # Each row is the macro's own escaped output: joined as it is, not escaped again.
        return Markup("".join(shown.values()))

    page = render(rows_html)
    store["rows"] = shown
    return page


def _board():
    """The board page, or its live part, drawn from the data now."""
    db = get_db()
    # Coverage is the same on every supervisor's poll until something is written: computed once per change.
    context = {"rows": open_requests(db), "coverage": cached(db, "coverage", "on duty", coverage),
               "shift_coverage": cached(db, "coverage", "by shift", roster_coverage), "labels": STATE_LABELS,
               "missed_check_ins": missed_check_ins(db)}
    return _rendered_with_kept_rows(lambda rows_html: page_or_block("board/index.html", "live", rows_html=rows_html, **context))


@bp.route("")
@role_required("supervisor", "dispatcher")
def index():
    """The board page; its live part polls `live`."""
    return _board()


@bp.route("/live")
@role_required("supervisor", "dispatcher")
def live():
    """The polled part of the board; 304 when nothing it shows changed, without rendering it."""
    # The counter decides an unchanged poll before anything of the board is computed.
    db = get_db()
    return poll_response(live_key(db, "board", overdue_alerts(db)), _board)
