"""The pages of a CIT request: the big button, the live request page and its actions."""
import json
import re

from flask import Blueprint, abort, current_app, make_response, redirect, render_template, request, url_for
from flask_login import current_user, login_required
from werkzeug.exceptions import Conflict, Forbidden, TooManyRequests

from . import cit_requests as flow
from .auth import role_required
from .content import get_library
from .db import get_db, one
from .geo import bearing_deg, compass, distance_m, human_distance, parse_coordinates
from .home import render_home
from .htmx import is_htmx, page_or_block, poll_response

bp = Blueprint("requests", __name__, url_prefix="/requests")

CLIENT_ID_RE = re.compile(r"^[A-Za-z0-9-]{8,64}$")
MAX_NOTE = 280
MAX_LOCATION_TEXT = 200
MAX_OBSERVATIONS = 60


def observations_from(raw):
    """Turn the device's checklist marks into [{topic, item, sign}] texts; unknown marks are dropped.

    `sign` is "protective" for an item the card marks protective (a reason to
    live, support nearby) and "risk" otherwise, so the specialist can weigh them apart.
    """
    if not raw:
        return []
    try:
        marks = json.loads(raw)
    except ValueError:
        abort(400, description="The attached checklist marks are not valid.")
    if not isinstance(marks, dict):
        abort(400, description="The attached checklist marks are not valid.")
    library = get_library()
    found = []
    for slug, entry in marks.items():
        topic = library.get(slug) if isinstance(slug, str) else None
        ids = entry.get("ids") if isinstance(entry, dict) else entry
        if topic is None or not isinstance(ids, list):
            continue
        for item_id in ids:
            item = topic.item(item_id) if isinstance(item_id, str) else None
            if item:
                sign = "protective" if item.get("protective") else "risk"
                found.append({"topic": topic.title, "item": item["text"], "sign": sign})
    return found[:MAX_OBSERVATIONS]


def _form_error(message, status=422):
    """Back to the home screen with the message and what was typed kept."""
    return render_home(request_error=message, form=request.form), status


@bp.route("", methods=["POST"])
@role_required("officer", "cit", "supervisor")
def create():
    """One tap: create the request with the device's position, or the place the officer typed."""
    form = request.form
    client_id = form.get("client_id") or None
    if client_id and not CLIENT_ID_RE.match(client_id):
        abort(400, description="The request id from this device is malformed.")
    # The page the button was on names who tapped it. On a shared car computer a
    # request queued under one officer must never go out under the next one's name.
    made_by = form.get("requester_id")
    if made_by and made_by != str(current_user.id):
        abort(403, description="That CIT request was made on this device by another officer, so it was not sent under your name.")
    location_text = form.get("location_text", "").strip()
    note = form.get("note", "").strip()
    if len(location_text) > MAX_LOCATION_TEXT:
        return _form_error(f"Keep the location under {MAX_LOCATION_TEXT} characters.", 400)
    if len(note) > MAX_NOTE:
        return _form_error(f"Keep the note to one line, under {MAX_NOTE} characters.", 400)
    lat = lon = accuracy = None
    if form.get("lat") or form.get("lon"):
        try:
            lat, lon, accuracy = parse_coordinates(form.get("lat"), form.get("lon"), form.get("accuracy"))
        except ValueError as e:
            return _form_error(str(e), 400)
    if lat is None and not location_text:
        return _form_error("Your location is not available. Type where you are, then send the request.")
    try:
        request_id, created = flow.create_request(
            get_db(), current_user.id, lat=lat, lon=lon, accuracy=accuracy, location_text=location_text, note=note,
            weapon=bool(form.get("weapon")), medical=bool(form.get("medical")), juvenile=bool(form.get("juvenile")),
            observations=observations_from(form.get("observations")), client_id=client_id,
            different_scene=form.get("different_scene") == "1",
        )
    except TooManyRequests as e:
        return _form_error(e.description, 429)
    # A second tap, or a queued copy, leads to the request already open.
    target = url_for("requests.page", request_id=request_id, **({} if created else {"already": 1}))
    if is_htmx():
        response = make_response("", 204)
        response.headers["HX-Redirect"] = target
        return response
    return redirect(target, 303)


def _load_visible(request_id):
    db = get_db()
    req = flow.get_request(db, request_id)
    if not flow.can_view(db, req, current_user):
        abort(403, description="This request is not yours to see.")
    return db, req


def _context(db, req, message=None):
    """Everything the request page and its live fragment show."""
    roles = flow.roles_of(db, req, current_user)
    people = {
        r["id"]: r
        for r in db.query(
            "SELECT id, display_name, unit, phone FROM users WHERE id IN (?, ?)", [req["requester_id"], req["assigned_id"]]
        )
    }
    me = one(db, "SELECT lat, lon FROM duty WHERE user_id = ?", [current_user.id])
    where = None
    if req["lat"] is not None and me and me["lat"] is not None:
        metres = distance_m(me["lat"], me["lon"], req["lat"], req["lon"])
        where = f"{human_distance(metres)} {compass(bearing_deg(me['lat'], me['lon'], req['lat'], req['lon']))} of you"
    assigned_alert = one(db, "SELECT distance_m FROM alerts WHERE request_id = ? AND user_id = ?", [req["id"], req["assigned_id"]])
    specialists = []
    if "supervisor" in roles and req["state"] in ("requested", "accepted"):
        specialists = list(
            db.query(
                "SELECT u.id, u.display_name, duty.district FROM users u JOIN duty ON duty.user_id = u.id"
                " WHERE u.role = 'cit' AND u.disabled = 0 AND duty.on_duty = 1 ORDER BY u.display_name"
            )
        )
    stabilisation = get_library().get(current_app.config["STABILISATION_TOPIC"])
    return {
        "req": req,
        "roles": roles,
        "can": flow.allowed_actions(db, req, current_user, roles),
        "sees_scene": flow.sees_scene(req, roles),
        "requester": people.get(req["requester_id"]),
        "assignee": people.get(req["assigned_id"]),
        "assignee_distance": human_distance(assigned_alert["distance_m"]) if assigned_alert and assigned_alert["distance_m"] is not None else None,
        "where": where,
        "summary": flow.alert_summary(db, req["id"]),
        "timeline": flow.request_timeline(db, req["id"]),
        "observations": json.loads(req["observations"]),
        "specialists": specialists,
        "stabilisation": stabilisation,
        "labels": flow.STATE_LABELS,
        "dispositions": flow.DISPOSITIONS,
        "cancel_reasons": flow.CANCEL_REASONS,
        "decline_reasons": flow.DECLINE_REASONS,
        "is_open": req["state"] in flow.OPEN_STATES,
        "message": message,
        "human_distance": human_distance,
    }


@bp.route("/<int:request_id>")
@login_required
def page(request_id):
    """The request's page: live status for everyone, and what each person can do next."""
    db, req = _load_visible(request_id)
    return render_template("requests/page.html", **_context(db, req, request.args.get("message")))


@bp.route("/<int:request_id>/live")
@login_required
def live(request_id):
    """The polled fragment; answers 304 when nothing changed since the last poll."""
    db, req = _load_visible(request_id)
    return poll_response(page_or_block("requests/page.html", "live", **_context(db, req)))


@bp.route("/<int:request_id>/<action>", methods=["POST"])
@login_required
def act(request_id, action):
    """Accept, decline, arrive, stabilise, resolve, cancel, assign or re-alert."""
    db = get_db()
    form = request.form
    user = current_user._get_current_object()
    try:
        if action == "decline":
            flow.decline(db, request_id, user, form.get("reason") or None)
        elif action == "realert":
            flow.realert(db, request_id, user)
        elif action in flow.ACTIONS:
            assignee = form.get("assignee_id", type=int)
            outcome = {k: form.get(k) for k in ("force_used", "officer_injured", "person_injured", "referral")}
            flow.move(db, request_id, action, user, assignee_id=assignee, disposition=form.get("disposition"),
                      reason=form.get("reason"), outcome=outcome)
        else:
            abort(404, description=f"There is no action called {action!r}.")
        message, status = None, 200
    except Conflict as e:
        message, status = e.description, 409
    except Forbidden as e:
        message, status = e.description, 403
    req = flow.get_request(db, request_id)
    if not flow.can_view(db, req, current_user):
        abort(403, description="This request is not yours to see.")
    if is_htmx():
        response = make_response(page_or_block("requests/page.html", "live", **_context(db, req, message)), status)
        # The board listens for this to refresh at once rather than at its next poll.
        response.headers["HX-Trigger"] = "request-changed"
        return response
    if status != 200:
        return render_template("requests/page.html", **_context(db, req, message)), status
    return redirect(url_for("requests.page", request_id=request_id), 303)

