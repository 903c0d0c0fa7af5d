"""The check-in routes of the request page: "I'm OK" (with an interval, when picked) and "Contact made" (thin)."""
from flask import request
from flask_login import login_required
from werkzeug.exceptions import BadRequest, Conflict, Forbidden

from ..requests.pages import answer_an_action
from ..store.db import get_db
from . import bp
from . import timer


# A bad interval or an empty note is refused on the page, as the state machine's refusals are.
REFUSALS = (BadRequest, Conflict, Forbidden)


@bp.route("/<int:request_id>/check-in", methods=["POST"])
@login_required
def check_in(request_id):
    """The CIT officer's "I'm OK", or a new interval: the countdown starts again."""
    minutes = request.form.get("minutes") or None
    return answer_an_action(request_id, lambda db, user: timer.check_in(db, request_id, user, minutes),
                            REFUSALS)


@bp.route("/<int:request_id>/contact-made", methods=["POST"])
@login_required
def contact_made(request_id):
    """A supervisor reached the CIT officer after a missed check-in: the alarm stops."""
    return answer_an_action(request_id, lambda db, user: timer.contact_made(db, request_id, user, request.form.get("note")),
                            REFUSALS)


def init_app(app):
    """The request page and the board read the timer through these template functions."""
    app.add_template_global(lambda request_id, roles: timer.check_in_view(get_db(), request_id, roles), "check_in_view")
