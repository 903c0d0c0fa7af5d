"""The pages of a CIT request: the big button, the live request page and its actions.

Thin routes: the state machine and what the page shows live in `domain`.
"""
from flask import abort, redirect, render_template, request, url_for
from flask_login import current_user, login_required
from jinja2_fragments.flask import render_block
from werkzeug.exceptions import Conflict, Forbidden, TooManyRequests

from ..identity.access import role_required
from ..store.changes import live_key, viewer_position
from ..content import get_library
from ..store.db import get_db
from ..duty.positions import own_position
from .home import render_home
from .. import maps
from ..web.htmx import htmx_response, is_htmx, page_or_block, poll_response
from . import bp
from . import domain as flow
from ..delivery import receipts
from .escalation import create_request
from .forms import RequestRefused, check_new_request

DRILL_PLACE = "DRILL: no real scene"


def _form_error(message, status=422):
    """Back to the home screen with the message and what was typed kept."""
    return render_home(request_error=message, form=request.form), status


@bp.route("", methods=["POST"])
@role_required("officer", "cit", "supervisor")
def create():
    """One tap: create the request with the device's position, or the place the officer typed."""
    db = get_db()
    try:
        fields = check_new_request(db, request.form, "officer", current_user.id)
    except RequestRefused as refused:
        if not refused.on_form:
            abort(refused.status, description=str(refused))
        return _form_error(str(refused), refused.status)
    try:
        request_id, created = create_request(db, current_user.id, **fields)
    except TooManyRequests as e:
        return _form_error(e.description, 429)
    # A second tap, or a queued copy, leads to the request already open.
    target = url_for("requests.page", request_id=request_id, **({} if created else {"already": 1}))
    if is_htmx():
        return htmx_response("", 204, redirect=target)
    return redirect(target, 303)


@bp.route("/drill", methods=["POST"])
@role_required("supervisor")
def drill():
    """A supervisor starts a drill: a request marked DRILL everywhere that runs the whole loop."""
    db = get_db()
    position = own_position(db, current_user.id)
    request_id, _ = create_request(db, current_user.id, lat=position[0], lon=position[1], location_text=DRILL_PLACE,
                                   drill=True, different_scene=True)
    target = url_for("requests.page", request_id=request_id)
    if is_htmx():
        return htmx_response("", 204, redirect=target)
    return redirect(target, 303)


@bp.route("/<int:request_id>")
@login_required
def page(request_id):
    """The request's page: live status for everyone, and what each person can do next."""
    view = with_scene(flow.request_view(get_db(), request_id, current_user, request.args.get("message")))
    return render_template("requests/page.html", **view)


def with_scene(view):
    """The request's view plus, for those who see the scene, its street address, map, Navigate link and ETA."""
    req = view["req"]
    you = viewer_position(get_db(), current_user.id)
    view["scene"] = maps.scene_view(req["lat"], req["lon"], you, req["location_text"]) if view["sees_scene"] else {}
    return view


@bp.route("/<int:request_id>/live")
@login_required
def live(request_id):
    """The polled fragment; answers 304 when nothing it shows changed since the last poll."""
    db = get_db()
    if not flow.can_view(db, flow.get_request(db, request_id), current_user):
        raise Forbidden("This request is not yours to see.")
    # The counter decides an unchanged poll before the page's view is computed.
    key = live_key(db, "request", request_id, current_user.id, viewer_position(db, current_user.id),
                   get_library().version)
    return poll_response(key, lambda: page_or_block("requests/page.html", "live",
                                                    **with_scene(flow.request_view(db, request_id, current_user))))


@bp.route("/<int:request_id>/<action>", methods=["POST"])
@login_required
def act(request_id, action):
    """Accept, decline, arrive, stabilise, resolve, cancel, assign or re-alert: one call to the state machine."""
    return answer_an_action(request_id, lambda db, user: flow.move(db, request_id, action, user, request.form))


def answer_an_action(request_id, do, refusals=(Conflict, Forbidden)):
    """Do `do(db, user)`, then answer as every action on a request does: its live part (htmx), or the page.

    A refusal (one of `refusals`) is shown on the page with its status; someone who may not see the
    request at all gets a plain 403.
    """
    db = get_db()
    try:
        do(db, current_user._get_current_object())
        message, status = None, 200
    except refusals as refused:
        message, status = refused.description, refused.code
    if status == 403 and not flow.can_view(db, flow.get_request(db, request_id), current_user):
        raise Forbidden("This request is not yours to see.")
    view = with_scene(flow.request_view(db, request_id, current_user, message))
    if is_htmx():
        # The board listens for this to refresh at once rather than at its next poll.
        return htmx_response(render_block("requests/page.html", "live", **view), status, trigger="request-changed")
    if status != 200:
        return render_template("requests/page.html", **view), status
    return redirect(url_for("requests.page", request_id=request_id), 303)


@bp.route("/receipts", methods=["POST"])
def receipt():
    """A service worker says an alert reached the phone, or was opened; the token is the only credential.

    No session and no CSRF token: it must work with every page closed and after
    the sign-in timed out. A bad receipt gets a 4xx and changes nothing.
    """
    data = request.get_json(silent=True, force=True, cache=False) if (request.content_length or 0) <= 1024 else None
    if not isinstance(data, dict):
        return {"error": "Send a receipt as a small JSON object."}, 400
    request_id = data.get("request_id")
    if request_id is not None and (not isinstance(request_id, int) or isinstance(request_id, bool)):
        return {"error": "request_id must be a number."}, 400
    try:
        receipts.record(get_db(), data.get("token"), data.get("stage"), request_id)
    except receipts.ReceiptRefused as refused:
        return {"error": refused.message}, refused.status
    return "", 204
