"""A CIT request's life and who may move it: the state machine in one table, and what the page shows.

Every action on a request (accept, decline, assign, re-alert, arrive,
stabilise, resolve, cancel) is one entry in `ACTIONS`: who may take it, from
which states, to which state, and what else it does. Every route, the worker
and every test go through `move()`. `request_view()` is everything the request
page shows one person. Asking and escalating live in `escalation`, who is
alerted in `selection`.
"""
import dataclasses
import json
from collections.abc import Callable

from flask import current_app
from werkzeug.exceptions import Conflict, Forbidden, NotFound

from ..clock import now
from ..delivery.outbox import wake_worker
from ..content import get_library
from ..store.db import one, write_transaction
from ..districts import district_at
from ..duty.eligibility import eligible_specialists, is_available
from ..identity.accounts import patrol_officer_named
from ..geo import bearing_deg, compass, distance_m, human_distance
from .encounter import NOT_RECORDED, encounter_columns, encounter_fields
from .selection import (
    alert_nearest_specialists, alert_of, alert_summary, close_alerts, decline_alert, describe_alerted,
)
from .timeline import add_event, request_timeline
from .updates import REQUESTER_NEWS, tell_boards, tell_requester

OPEN_STATES = ("requested", "accepted", "on_scene", "stabilised")
DISPOSITIONS = {
    "resolved_on_scene": "Resolved on scene",
    "voluntary_transport": "Voluntary transport to crisis services",
    "emergency_evaluation": "Emergency evaluation",
    "mobile_crisis_referral": "Referred to mobile crisis team",
    "arrest": "Arrest",
    "medical_transport": "Medical transport",
    "other": "Other",
}
CANCEL_REASONS = {
    "resolved_before_arrival": "Resolved before CIT arrived",
    "person_left": "Person left the scene",
    "not_mental_health": "Not a mental-health call after all",
    "sent_in_error": "Sent in error",
    "other": "Other",
}
DECLINE_REASONS = {
    "off_duty": "Off duty",
    "committed": "Already committed to a call",
    "too_far": "Too far away",
    "other": "Other",
}
STATE_LABELS = {
    "requested": "Waiting for a CIT officer",
    "accepted": "CIT officer en route",
    "on_scene": "CIT officer on scene",
    "stabilised": "Scene stabilised",
    "resolved": "Resolved",
    "cancelled": "Cancelled",
}


def open_request_of(db, user_id):
    """The newest open request this user made, if any."""
    return one(
        db,
        f"SELECT * FROM cit_requests WHERE requester_id = ? AND state IN ({','.join('?' * len(OPEN_STATES))})"
        " ORDER BY created_at DESC LIMIT 1",
        [user_id, *OPEN_STATES],
    )


def get_request(db, request_id):
    """A request row, or NotFound."""
    row = one(db, "SELECT * FROM cit_requests WHERE id = ?", [request_id])
    if row is None:
        raise NotFound("There is no CIT request with that number.")
    return row


def strip_closed_requests(db, cutoff):
    """Take the note, typed location, checklist marks, referral and precise position out of requests
    closed before `cutoff`, keeping their statistics; returns how many changed.

    For retention (`purge`): coordinates keep two decimals (about 1 km), enough
    for district reports. Must run inside a write transaction.
    """
    return db.execute(
        "UPDATE cit_requests SET note = '', location_text = '', observations = '[]', referral = '',"
        " lat = ROUND(lat, 2), lon = ROUND(lon, 2), accuracy_m = NULL"
        " WHERE state IN ('resolved', 'cancelled') AND closed_at < ?"
        " AND (note != '' OR location_text != '' OR observations != '[]' OR referral != ''"
        "      OR lat != ROUND(lat, 2) OR lon != ROUND(lon, 2) OR accuracy_m IS NOT NULL)",
        [cutoff],
    ).rowcount


def roles_of(db, req, user):
    """What `user` is to this request: requester, alerted, declined, assigned, supervisor."""
    roles = set()
    # A patrol officer that dispatch attached follows the request as its requester.
    if user.id in (req["requester_id"], req.get("patrol_officer_id")):
        roles.add("requester")
    if user.id == req["assigned_id"]:
        roles.add("assigned")
    if user.role in ("supervisor", "dispatcher"):
        roles.add(user.role)
    if user.role == "cit":
        alert = alert_of(db, req["id"], user.id)
        if alert:
            # A specialist who declined is no longer "alerted": ACTIONS never lets them accept.
            roles.add("declined" if alert["declined_at"] else "alerted")
    return roles


# ---- What each action does besides moving the state: (columns to set, timeline detail) ----


def _nothing_more(db, req, user, form):
    return {}, ""


def _assignee_line(db, req, assignee_id):
    assignee = one(db, "SELECT display_name FROM users WHERE id = ?", [assignee_id])
    alert = alert_of(db, req["id"], assignee_id)
    distance = f" · {human_distance(alert['distance_m'])} away" if alert and alert["distance_m"] is not None else ""
    return f"{assignee['display_name']}{distance}"


def _accept(db, req, user, form):
    return {"assigned_id": user.id}, _assignee_line(db, req, user.id)


def _assign(db, req, user, form):
    try:
        assignee_id = int(form.get("assignee_id"))
    except (TypeError, ValueError):
        assignee_id = None
    # The same rule as alerting: a specialist the roster set inactive cannot be assigned by hand either.
    if not is_available(db, assignee_id):
        raise Conflict("Choose an active CIT officer to assign.")
    return {"assigned_id": assignee_id}, _assignee_line(db, req, assignee_id) + f" (assigned by {user.display_name})"


def _resolve(db, req, user, form):
    disposition = form.get("disposition")
    if disposition not in DISPOSITIONS:
        raise Conflict("Choose a disposition to resolve the request.")
    return {
        "disposition": disposition,
        **encounter_columns(form),
        "officer_injured": int(bool(form.get("officer_injured"))),
        "person_injured": int(bool(form.get("person_injured"))),
        "referral": (form.get("referral") or "").strip()[:200],
    }, DISPOSITIONS[disposition]


def _cancel(db, req, user, form):
    reason = form.get("reason")
    if reason not in CANCEL_REASONS:
        raise Conflict("Choose a reason to cancel the request.")
    return {"cancel_reason": reason}, CANCEL_REASONS[reason]


def _attach(db, req, user, form):
    """Dispatch attaches the patrol officer on the call, by username or unit."""
    who = (form.get("officer") or "").strip()
    officer_id = patrol_officer_named(db, who) if who else None
    if officer_id is None:
        raise Conflict("No single officer has that username or unit.")
    name = one(db, "SELECT display_name, unit FROM users WHERE id = ?", [officer_id])
    return {"patrol_officer_id": officer_id}, f"{name['display_name']} {name['unit']}".strip()


def _decline(db, req, user, form):
    """Recorded, and the next nearest is alerted at once."""
    reason = form.get("reason") or None
    if reason not in (None, *DECLINE_REASONS):
        raise Conflict("Choose one of the listed reasons, or none.")
    decline_alert(db, alert_of(db, req["id"], user.id)["id"], reason)
    add_event(db, req["id"], "declined", user.id, DECLINE_REASONS.get(reason or "", ""))
    picks = alert_nearest_specialists(db, req, step=req["escalation_step"], count=1)
    add_event(db, req["id"], "alerted", detail=describe_alerted(picks) if picks else "No other CIT officer to alert")
    return {}, None


def _realert(db, req, user, form):
    """A supervisor alerts the next nearest specialists by hand."""
    picks = alert_nearest_specialists(db, req, step=req["escalation_step"])
    add_event(db, req["id"], "realerted", user.id, describe_alerted(picks) if picks else "No other CIT officer to alert")
    return {}, None


@dataclasses.dataclass(frozen=True)
class Action:
    """One action on a request: who may take it, from which states, to which state, and what else it does."""

    # any of: "requester", "alerted" (and not declined), "assigned", "supervisor", "dispatcher"
    who: tuple
    from_states: tuple
    to_state: str | None  # None: the state stays (a decline, a re-alert)
    # (db, req, user, form) -> (columns to set, timeline detail); checks the form, may write alerts and events
    does: Callable = _nothing_more
    stamp: str | None = None  # the timestamp column the move sets
    event: str | None = None  # the timeline line it writes; None when `does` writes its own
    refused: str = "You cannot do that on this request."  # the 403 for anyone not in `who`
    if_declined: tuple | None = None  # (error, message) for a specialist who declined
    wakes_worker: bool = False  # it queued alerts: the worker sends them at once


ACTIONS = {
    "accept": Action(("alerted",), ("requested",), "accepted", _accept, "accepted_at", "accepted",
                     if_declined=(Forbidden, "You declined this request, so you cannot accept it. A supervisor can assign it to you.")),
    "decline": Action(("alerted",), ("requested",), None, _decline,
                      refused="Only a CIT officer alerted to this request can decline it.",
                      if_declined=(Conflict, "You have already declined this request."), wakes_worker=True),
    "assign": Action(("supervisor",), ("requested", "accepted"), "accepted", _assign, "accepted_at", "assigned"),
    "realert": Action(("supervisor", "dispatcher"), ("requested",), None, _realert,
                      refused="Only a supervisor or dispatcher can re-alert.", wakes_worker=True),
    "arrive": Action(("assigned",), ("accepted",), "on_scene", stamp="on_scene_at", event="on_scene"),
    "stabilise": Action(("requester", "assigned"), ("accepted", "on_scene"), "stabilised", stamp="stabilised_at",
                        event="stabilised"),
    "resolve": Action(("assigned", "supervisor"), ("accepted", "on_scene", "stabilised"), "resolved", _resolve,
                      "closed_at", "resolved"),
    "cancel": Action(("requester", "supervisor", "dispatcher"), OPEN_STATES, "cancelled", _cancel, "closed_at", "cancelled"),
    "attach": Action(("dispatcher", "supervisor"), OPEN_STATES, None, _attach, event="officer_attached"),
}


def allowed_actions(db, req, user, roles=None):
    """The actions `user` may take on this request now, from the ACTIONS table."""
    roles = roles_of(db, req, user) if roles is None else roles
    return {name for name, a in ACTIONS.items() if req["state"] in a.from_states and roles & set(a.who)}


def can_view(db, req, user):
    """Requesters, alerted or assigned specialists and supervisors may see a request."""
    return bool(roles_of(db, req, user))


def sees_scene(req, roles):
    """Whether someone sees the note, exact place, requester's phone and checklist marks.

    While nobody has accepted, every specialist still alerted needs them to
    decide. From the accept on, and after the request closes, only the
    assignee and supervisors do (the requester is at the scene); the other
    alerted specialists keep a summary: the state, who has it, the timeline.
    """
    if roles & {"assigned", "supervisor", "dispatcher"}:
        return True
    return "alerted" in roles and req["state"] == "requested"


def move(db, request_id, action_name, user, form=None):
    """Take `action_name` on a request for `user`, with the form's fields; the one door for every action.

    Raises NotFound, Forbidden (not yours to take) or Conflict (the request
    is not in a state that allows it, the message says who has it; or the
    form is incomplete). Nothing is written unless the whole action succeeds.
    """
    action = ACTIONS.get(action_name)
    if action is None:
        raise NotFound(f"There is no action called {action_name!r}.")
    form = form or {}
    with write_transaction(db):
        req = get_request(db, request_id)
        roles = roles_of(db, req, user)
        if not roles & set(action.who):
            if "declined" in roles and action.if_declined:
                error, message = action.if_declined
                raise error(message)
            raise Forbidden(action.refused)
        if req["state"] not in action.from_states:
            raise Conflict(_conflict_message(db, req, action_name, user))
        columns, detail = action.does(db, req, user, form)
        columns = {"state": action.to_state or req["state"], "updated_at": now(), **columns}
        if action.stamp:
            columns[action.stamp] = now()
        sets = ", ".join(f"{k} = ?" for k in columns)
        # The state in the WHERE makes the move atomic even without the lock: of two
        # specialists accepting at once, exactly one row update succeeds.
        cursor = db.execute(
            f"UPDATE cit_requests SET {sets} WHERE id = ? AND state = ?",
            [*columns.values(), request_id, req["state"]],
        )
        if cursor.rowcount != 1:
            raise Conflict(_conflict_message(db, get_request(db, request_id), action_name, user))
        if action.event:
            add_event(db, request_id, action.event, user.id, detail)
        closing = req["state"] == "requested" and columns["state"] != "requested"
        if closing:
            # Someone has it (or it is off): the other phones stop ringing, and nothing more goes out.
            close_alerts(db, req, "cancelled" if columns["state"] == "cancelled" else "accepted",
                         keep=columns.get("assigned_id"))
        # The requester hears of it by push, unless they made the move themselves (queued after
        # close_alerts, which withdraws what was still queued for the request).
        told = action.to_state in REQUESTER_NEWS and user.id != req["requester_id"]
        if told:
            tell_requester(db, req, action.to_state, columns.get("assigned_id") or req["assigned_id"])
        boards = tell_boards(db)
    if action.wakes_worker or closing or told or boards:
        wake_worker()
    return get_request(db, request_id)


# Actions that only make sense while nobody has the request: refused with who has it.
_BEFORE_ANYONE_HAS_IT = ("accept", "assign", "decline", "realert")


def _conflict_message(db, req, action_name, user):
    if req["assigned_id"] and action_name in _BEFORE_ANYONE_HAS_IT:
        holder = one(db, "SELECT display_name FROM users WHERE id = ?", [req["assigned_id"]])
        if req["assigned_id"] == user.id:
            return "You have already accepted this request."
        return f"{holder['display_name']} has already accepted this request."
    if req["state"] in ("resolved", "cancelled"):
        return f"This request is already {req['state']}."
    return f"This request is {STATE_LABELS[req['state']].lower()}; that step does not apply now."


def request_view(db, request_id, user, message=None):
    """Everything the request page and its live part show `user`; Forbidden if it is not theirs to see.

    Only data, no callables: the live poll's ETag is made from it.
    """
    req = get_request(db, request_id)
    roles = roles_of(db, req, user)
    if not roles:
        raise Forbidden("This request is not yours to see.")
    people = {
        r["id"]: r
        for r in db.query(
            "SELECT id, display_name, unit, phone FROM users WHERE id IN (?, ?)", [req["requester_id"], req["assigned_id"]]
        )
    }
    assigned_alert = alert_of(db, req["id"], req["assigned_id"])
    return {
        "req": req,
        "roles": roles,
        "can": allowed_actions(db, req, user, roles),
        "sees_scene": sees_scene(req, roles),
        "requester": people.get(req["requester_id"]),
        "assignee": people.get(req["assigned_id"]),
        "assignee_distance": human_distance(assigned_alert["distance_m"])
        if assigned_alert and assigned_alert["distance_m"] is not None else None,
        "where": _where_from(db, req, user),
        "district": district_at(db, req["lat"], req["lon"]) if req["lat"] is not None else None,
        "summary": alert_summary(db, req["id"]),
        "timeline": request_timeline(db, req["id"]),
        "observations": json.loads(req["observations"]),
        "specialists": eligible_specialists(db) if "supervisor" in roles and req["state"] in ("requested", "accepted") else [],
        "stabilisation": get_library().get(current_app.config["STABILISATION_TOPIC"]),
        "labels": STATE_LABELS,
        "dispositions": DISPOSITIONS,
        "encounter_fields": encounter_fields(),
        "not_recorded": NOT_RECORDED,
        "cancel_reasons": CANCEL_REASONS,
        "decline_reasons": DECLINE_REASONS,
        "is_open": req["state"] in OPEN_STATES,
        "message": message,
    }


def _where_from(db, req, user):
    """'1.2 km NE of you' from the viewer's last position, when both are known."""
    me = one(db, "SELECT lat, lon FROM duty WHERE user_id = ?", [user.id])
    if req["lat"] is None or not me or me["lat"] is None:
        return None
    metres = distance_m(me["lat"], me["lon"], req["lat"], req["lon"])
    return f"{human_distance(metres)} {compass(bearing_deg(me['lat'], me['lon'], req['lat'], req['lon']))} of you"
