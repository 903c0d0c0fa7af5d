"""The check-in routes of the request page: "I'm OK" (with an interval, when picked) and "Contact made" (thin)."""
from flask import redirect, render_template, request, url_for
from flask_login import current_user, login_required
from jinja2_fragments.flask import render_block
from werkzeug.exceptions import BadRequest, Conflict, Forbidden

from ..requests import domain as flow
from ..requests.pages import with_scene
from ..store.db import get_db
from ..web.htmx import htmx_response, is_htmx
from . import bp
from . import timer


def _answer(request_id, do):
    """Do it, then answer as the request page's actions do: its live part (htmx) or the page."""
    db = get_db()
    try:
        do(db, current_user._get_current_object())
        message, status = None, 200
    except (BadRequest, Conflict, Forbidden) as refused:
        message, status = refused.description, refused.code
    if status == 403 and not flow.can_view(db, flow.get_request(db, request_id), current_user):
        raise Forbidden("This request is not yours to see.")
    view = with_scene(flow.request_view(db, request_id, current_user, message))
    if is_htmx():
        return htmx_response(render_block("requests/page.html", "live", **view), status, trigger="request-changed")
    if status != 200:
        return render_template("requests/page.html", **view), status
    return redirect(url_for("requests.page", request_id=request_id), 303)


@bp.route("/<int:request_id>/check-in", methods=["POST"])
@login_required
def check_in(request_id):
    """The CIT officer's "I'm OK", or a new interval: the countdown starts again."""
    minutes = request.form.get("minutes") or None
    return _answer(request_id, lambda db, user: timer.check_in(db, request_id, user, minutes))


@bp.route("/<int:request_id>/contact-made", methods=["POST"])
@login_required
def contact_made(request_id):
    """A supervisor reached the CIT officer after a missed check-in: the alarm stops."""
    return _answer(request_id, lambda db, user: timer.contact_made(db, request_id, user, request.form.get("note")))


def init_app(app):
    """The request page and the board read the timer through these template functions."""
    app.add_template_global(lambda request_id, roles: timer.check_in_view(get_db(), request_id, roles), "check_in_view")
