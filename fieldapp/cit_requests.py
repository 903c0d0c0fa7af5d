"""CIT requests: ask, alert, accept, track — from one tap to a resolved scene.

Who may move a request from which state to which lives in one table,
`ACTIONS`, and every route, the worker and every test go through `move()`.
Creating a request never waits for push delivery: the request, its alerts and
one outbox row per device are written in one transaction, and the worker
sends them.
"""
import dataclasses
import json
import math

from flask import current_app
from werkzeug.exceptions import Conflict, Forbidden, NotFound, TooManyRequests

from .audit import log as audit
from .clock import now
from .db import one, write_transaction
from .geo import bounding_box, distance_m, human_distance

STATES = ("requested", "accepted", "on_scene", "stabilised", "resolved", "cancelled")
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


@dataclasses.dataclass(frozen=True)
class Action:
    """One move in the request's life: from which states, to which, by whom."""

    from_states: tuple
    to_state: str
    # any of: "requester", "alerted" (and not declined), "assigned", "supervisor"
    who: tuple
    stamp: str | None = None  # the timestamp column the move sets


ACTIONS = {
    "accept": Action(("requested",), "accepted", ("alerted",), "accepted_at"),
    "assign": Action(("requested", "accepted"), "accepted", ("supervisor",), "accepted_at"),
    "arrive": Action(("accepted",), "on_scene", ("assigned",), "on_scene_at"),
    "stabilise": Action(("accepted", "on_scene"), "stabilised", ("requester", "assigned"), "stabilised_at"),
    "resolve": Action(("accepted", "on_scene", "stabilised"), "resolved", ("assigned", "supervisor"), "closed_at"),
    "cancel": Action(("requested", "accepted", "on_scene", "stabilised"), "cancelled", ("requester", "supervisor"), "closed_at"),
}


def policy_from_config(config):
    """The escalation policy in force now; it is stored with each request."""
    return {
        "k": int(config["ALERT_K"]),
        "radius_km": float(config["ALERT_RADIUS_KM"]),
        "escalate_after_s": float(config["ESCALATE_AFTER_S"]),
        "all_after_s": float(config["ALL_HANDS_AFTER_S"]),
        "position_max_age_s": float(config["POSITION_MAX_AGE_S"]),
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


def add_event(db, request_id, event, actor_id=None, detail=""):
    """Append one line to the request's timeline, and to the audit log when a person did it."""
    db.execute(
        "INSERT INTO request_events (request_id, at, actor_id, event, detail) VALUES (?, ?, ?, ?, ?)",
        [request_id, now(), actor_id, event, detail],
    )
    if actor_id is not None:
        name = one(db, "SELECT username FROM users WHERE id = ?", [actor_id])
        audit.record(db, f"request_{event}", f"request {request_id}", detail, actor=(actor_id, name["username"] if name else ""))


def request_timeline(db, request_id):
    """The request's timeline, oldest first, with actors' names."""
    return list(
        db.query(
            "SELECT e.*, u.display_name AS actor FROM request_events e LEFT JOIN users u ON u.id = e.actor_id"
            " WHERE e.request_id = ? ORDER BY e.id",
            [request_id],
        )
    )


# Who may be alerted: an enabled CIT account, on duty, not set inactive on the roster.
ELIGIBLE = (
    "duty.on_duty = 1 AND u.role = 'cit' AND u.disabled = 0"
    " AND NOT EXISTS (SELECT 1 FROM roster r WHERE r.user_id = u.id AND r.active = 0)"
)


def nearest_specialists(db, lat, lon, *, k, radius_m, exclude, max_age_s):
    """On-duty, enabled specialists nearest to (lat, lon): [(user_id, metres)].

    A position older than `max_age_s` stands in as the district's centre,
    because a PWA gets no location in the background. The search box starts
    at 2 km and widens until K are found inside the circle, so a dense city
    never hands thousands of rows to Python; everyone within the current
    radius is found at each step, so the K nearest are exact.
    """
    fresh_after = now() - max_age_s
    radius = radius_m if k is None else min(radius_m, FIRST_SEARCH_M)
    while True:
        found = _within(db, lat, lon, radius, exclude, fresh_after)
        if k is None or len(found) >= k or radius >= radius_m:
            return found if k is None else found[:k]
        radius = min(radius_m, radius * 2.5)


FIRST_SEARCH_M = 2000.0
# CROSS JOIN fixes the join order: SQLite's planner would otherwise walk every
# on-duty row and probe the R*Tree by rowid (measured in bench/tap_to_push.py).
WITHIN_BOX_SQL = (
    "SELECT duty.user_id, duty.lat, duty.lon FROM duty_positions p"
    " CROSS JOIN duty ON duty.user_id = p.user_id CROSS JOIN users u ON u.id = duty.user_id"
    " WHERE p.min_lat >= ? AND p.max_lat <= ? AND p.min_lon >= ? AND p.max_lon <= ?"
    f" AND duty.position_at >= ? AND {ELIGIBLE}"
    " UNION ALL "
    "SELECT duty.user_id, d.lat, d.lon FROM districts d CROSS JOIN duty ON duty.district = d.name"
    " CROSS JOIN users u ON u.id = duty.user_id"
    " WHERE d.lat BETWEEN ? AND ? AND d.lon BETWEEN ? AND ?"
    f" AND (duty.position_at IS NULL OR duty.position_at < ?) AND {ELIGIBLE}"
)


def _within(db, lat, lon, radius, exclude, fresh_after):
    min_lat, max_lat, min_lon, max_lon = bounding_box(lat, lon, radius)
    rows = db.execute(
        WITHIN_BOX_SQL,
        [min_lat, max_lat, min_lon, max_lon, fresh_after, min_lat, max_lat, min_lon, max_lon, fresh_after],
    ).fetchall()
    found = []
    for user_id, ulat, ulon in rows:
        if user_id in exclude:
            continue
        metres = distance_m(lat, lon, ulat, ulon)
        if metres <= radius:
            found.append((user_id, metres))
    found.sort(key=lambda pair: pair[1])
    return found


def _on_duty_specialists(db, exclude):
    rows = db.execute(
        f"SELECT duty.user_id FROM duty JOIN users u ON u.id = duty.user_id WHERE {ELIGIBLE} ORDER BY duty.since"
    ).fetchall()
    return [r[0] for r in rows if r[0] not in exclude]


SUPERVISOR_REASONS = {
    "unanswered": "Nobody has accepted yet.",
    "no_specialists": "No CIT officer could be alerted.",
    "unreachable": "No alerted CIT officer could be reached.",
    "rate_limited": "An officer's CIT requests are being refused: too many in a short time.",
}


def _payload(req, distance, kind):
    # No names, notes or addresses: a lock screen is no place for them.
    if kind == "alert":
        title = f"CIT requested · {human_distance(distance)}" if distance is not None else "CIT requested"
        body = "Open to accept or decline."
    else:
        title = "CIT request needs a supervisor"
        body = SUPERVISOR_REASONS[kind]
    return json.dumps(
        {
            "kind": kind,
            "request_id": req["id"],
            "distance_m": None if distance is None else round(distance),
            "created_at": req["created_at"],
            "title": title,
            "body": body,
            "url": f"/requests/{req['id']}",
            "topic": topic_for(req["id"]),
        }
    )


def topic_for(request_id):
    """The Web Push Topic header: a newer alert for a request replaces an older one."""
    return f"cit-request-{request_id}"


def _queue_push(db, req, user_id, distance, kind):
    t = now()
    payload = _payload(req, distance, kind)
    for sub in db.execute("SELECT id FROM push_subscriptions WHERE user_id = ?", [user_id]).fetchall():
        db.execute(
            "INSERT INTO outbox (request_id, user_id, subscription_id, payload, topic, next_attempt_at, created_at)"
            " VALUES (?, ?, ?, ?, ?, ?, ?)",
            [req["id"], user_id, sub[0], payload, topic_for(req["id"]), t, t],
        )


def already_alerted(db, request_id):
    """Ids of the specialists alerted for this request so far."""
    return {r[0] for r in db.execute("SELECT user_id FROM alerts WHERE request_id = ?", [request_id]).fetchall()}


def choose_specialists(db, lat, lon, policy, exclude, *, everyone=False, count=None):
    """The next specialists to alert, nearest first: [(user_id, metres or None)]. Reads only."""
    k = None if everyone else (count or policy["k"])
    if lat is None:
        # No coordinates (typed location only): distance is unknown, so take
        # on-duty specialists in the order they came on duty.
        ids = _on_duty_specialists(db, exclude)
        return [(u, None) for u in (ids if k is None else ids[:k])]
    radius = math.inf if everyone else policy["radius_km"] * 1000
    picks = nearest_specialists(
        db, lat, lon, k=k, radius_m=min(radius, 20_037_000), exclude=exclude, max_age_s=policy["position_max_age_s"],
    )
    if everyone:
        # Specialists with no usable position at all are still alerted at the all-hands step.
        known = {u for u, _ in picks}
        picks += [(u, None) for u in _on_duty_specialists(db, exclude | known)]
    return picks


def record_alerts(db, req, picks, step):
    """Write the alerts and queue a push to each device; must run inside a write transaction."""
    t = now()
    for user_id, metres in picks:
        db.execute(
            "INSERT INTO alerts (request_id, user_id, step, distance_m, at) VALUES (?, ?, ?, ?, ?)",
            [req["id"], user_id, step, metres, t],
        )
        _queue_push(db, req, user_id, metres, "alert")
    return picks


def alert_nearest_specialists(db, req, step, *, everyone=False, count=None):
    """Alert the next nearest specialists not yet alerted; must run inside a write transaction."""
    exclude = already_alerted(db, req["id"]) | {req["requester_id"]}
    picks = choose_specialists(db, req["lat"], req["lon"], json.loads(req["policy"]), exclude, everyone=everyone, count=count)
    return record_alerts(db, req, picks, step)


def alert_supervisors(db, req, kind):
    """Push to on-duty supervisors (to every supervisor when none is on duty)."""
    ids = [
        r[0]
        for r in db.execute(
            "SELECT u.id FROM users u JOIN duty ON duty.user_id = u.id"
            " WHERE u.role = 'supervisor' AND u.disabled = 0 AND duty.on_duty = 1"
        ).fetchall()
    ] or [r[0] for r in db.execute("SELECT id FROM users WHERE role = 'supervisor' AND disabled = 0").fetchall()]
    for user_id in ids:
        _queue_push(db, req, user_id, None, kind)
    add_event(db, req["id"], "supervisors_alerted", detail=f"{len(ids)} supervisor(s): {kind.replace('_', ' ')}")
    return ids


def supervise_if_unreachable(db, req):
    """Alert supervisors once when no alerted specialist has a live push on its way.

    Must run inside a write transaction; returns True when supervisors were alerted.
    """
    if req["state"] != "requested":
        return False
    alive = db.execute(
        "SELECT COUNT(*) FROM outbox o JOIN alerts a ON a.request_id = o.request_id AND a.user_id = o.user_id"
        " WHERE o.request_id = ? AND o.state IN ('pending', 'sent')",
        [req["id"]],
    ).fetchone()[0]
    already = db.execute(
        "SELECT 1 FROM request_events WHERE request_id = ? AND event = 'unreachable'", [req["id"]]
    ).fetchone()
    if alive or already or not already_alerted(db, req["id"]):
        return False
    add_event(db, req["id"], "unreachable", detail="No alert reached an alerted CIT officer")
    alert_supervisors(db, req, "unreachable")
    return True


def _describe_alerted(picks):
    nearest = min((m for _, m in picks if m is not None), default=None)
    text = f"{len(picks)} CIT officer(s) alerted"
    # To the 100 m only: the timeline is append-only, so `purge` can never take an exact distance out of it.
    return text + (f"; nearest {human_distance(round(nearest, -2))}" if nearest is not None else "")


def create_request(db, requester_id, **fields):
    """Record a CIT request and queue its first alerts; returns (request_id, created).

    `client_id` is the device's idempotency key, scoped to the requester:
    sending the same request twice (an offline queue replaying) creates it once.
    One open request per officer: a second tap leads to the first unless the
    officer said `different_scene`. Past the per-officer rate limit it raises
    TooManyRequests, and the supervisors are told the first time it trips.
    """
    try:
        return _create_request(db, requester_id, **fields)
    except _RateLimited as refused:
        _tell_supervisors_of_rate_limit(db, requester_id)
        wake_worker()
        raise TooManyRequests(str(refused)) from None


class _RateLimited(Exception):
    """Raised inside the write lock, so nothing of the refused request is written."""


def _create_request(db, requester_id, *, lat=None, lon=None, accuracy=None, location_text="", note="",
                    weapon=False, medical=False, juvenile=False, observations=(), client_id=None,
                    different_scene=False):
    t = now()
    policy = policy_from_config(current_app.config)
    # Choose before taking the write lock: with many specialists the search is
    # the slow part, and the worker must not wait behind it.
    picks = choose_specialists(db, lat, lon, policy, {requester_id})
    with write_transaction(db):
        if client_id:
            existing = one(db, "SELECT id FROM cit_requests WHERE requester_id = ? AND client_id = ?",
                           [requester_id, client_id])
            if existing:
                return existing["id"], False
        if not different_scene:
            already = open_request_of(db, requester_id)
            if already:
                return already["id"], False
        _refuse_past_the_rate_limit(db, requester_id)
        cursor = db.execute(
            "INSERT INTO cit_requests (client_id, requester_id, state, created_at, updated_at, lat, lon, accuracy_m,"
            " location_text, note, weapon, medical, juvenile, observations, policy, next_escalation_at)"
            " VALUES (?, ?, 'requested', ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            [client_id, requester_id, t, t, lat, lon, accuracy, location_text, note, int(weapon), int(medical),
             int(juvenile), json.dumps(list(observations)), json.dumps(policy), t + policy["escalate_after_s"]],
        )
        req = get_request(db, cursor.lastrowid)
        add_event(db, req["id"], "requested", requester_id,
                  # Never free text here: the timeline is append-only, and `purge` must be able to
                  # remove what officers typed.
                  "location from the device" if lat is not None else "location typed by the officer")
        record_alerts(db, req, picks, step=0)
        if picks:
            add_event(db, req["id"], "alerted", detail=_describe_alerted(picks))
            supervise_if_unreachable(db, req)
        elif not _on_duty_specialists(db, {requester_id}):
            add_event(db, req["id"], "no_specialists", detail="No CIT officer is on duty")
            alert_supervisors(db, req, "no_specialists")
        else:
            add_event(db, req["id"], "no_specialists",
                      detail=f"No CIT officer within {policy['radius_km']:g} km; widening after {policy['escalate_after_s']:g} s")
            alert_supervisors(db, req, "no_specialists")
    wake_worker()
    return req["id"], True


def _recent_requests(db, requester_id):
    """This officer's requests inside the rate-limit window, newest first."""
    window = float(current_app.config["REQUEST_RATE_WINDOW_S"])
    return list(db.query(
        "SELECT * FROM cit_requests WHERE requester_id = ? AND created_at > ? ORDER BY created_at DESC, id DESC",
        [requester_id, now() - window],
    ))


def _refuse_past_the_rate_limit(db, requester_id):
    """Raise _RateLimited past REQUEST_RATE_MAX requests per REQUEST_RATE_WINDOW_S.

    Counted inside the write lock, so parallel posts cannot slip past each other.
    """
    limit = int(current_app.config["REQUEST_RATE_MAX"])
    recent = _recent_requests(db, requester_id)
    if len(recent) >= limit:
        minutes = float(current_app.config["REQUEST_RATE_WINDOW_S"]) / 60
        raise _RateLimited(f"You have made {len(recent)} CIT requests in the last {minutes:g} minutes, so this one"
                           " was not sent. Your supervisors have been told. Call dispatch if you need help now.")


def _tell_supervisors_of_rate_limit(db, requester_id):
    """Write the trip on the officer's latest request and push it to the supervisors, once a run.

    A stuck button or a stolen account is seen at once; tapping on does not page them again.
    """
    with write_transaction(db):
        latest = next(iter(_recent_requests(db, requester_id)), None)
        if latest is None or one(db, "SELECT 1 AS x FROM request_events WHERE request_id = ? AND event = 'rate_limited'",
                                 [latest["id"]]):
            return
        minutes = float(current_app.config["REQUEST_RATE_WINDOW_S"]) / 60
        add_event(db, latest["id"], "rate_limited", requester_id,
                  f"A further request was refused: {current_app.config['REQUEST_RATE_MAX']} in {minutes:g} min")
        alert_supervisors(db, latest, "rate_limited")


def escalate(db, request_id):
    """Take the request's next escalation step if it is due; returns the step taken (1, 2) or 0.

    Steps: after `escalate_after_s` alert the next K and the supervisors;
    after `all_after_s` alert every on-duty specialist and flag it unanswered.
    Deadlines live in the database, so a restart never loses one.
    """
    with write_transaction(db):
        req = get_request(db, request_id)
        t = now()
        if req["state"] != "requested" or req["next_escalation_at"] is None or req["next_escalation_at"] > t:
            return 0
        policy = json.loads(req["policy"])
        if req["escalation_step"] == 0:
            picks = alert_nearest_specialists(db, req, step=1)
            add_event(db, req["id"], "escalated",
                      detail=f"No accept after {policy['escalate_after_s']:g} s: {_describe_alerted(picks)}")
            alert_supervisors(db, req, "unanswered")
            next_at = req["created_at"] + policy["all_after_s"]
        else:
            picks = alert_nearest_specialists(db, req, step=2, everyone=True)
            add_event(db, req["id"], "unanswered",
                      detail=f"No accept after {policy['all_after_s']:g} s: every on-duty CIT officer alerted ({len(picks)} more)")
            next_at = None
        db.execute(
            "UPDATE cit_requests SET escalation_step = escalation_step + 1, next_escalation_at = ?,"
            " unanswered = CASE WHEN ? THEN 1 ELSE unanswered END, updated_at = ? WHERE id = ?",
            [next_at, next_at is None, t, req["id"]],
        )
    wake_worker()
    return req["escalation_step"] + 1


def due_escalations(db):
    """Ids of open requests whose next escalation deadline has passed."""
    return [
        r[0]
        for r in db.execute(
            "SELECT id FROM cit_requests WHERE state = 'requested' AND next_escalation_at <= ? ORDER BY next_escalation_at",
            [now()],
        ).fetchall()
    ]


def roles_of(db, req, user):
    """What `user` is to this request: requester, alerted, declined, assigned, supervisor."""
    roles = set()
    if user.id == req["requester_id"]:
        roles.add("requester")
    if user.id == req["assigned_id"]:
        roles.add("assigned")
    if user.role == "supervisor":
        roles.add("supervisor")
    if user.role == "cit":
        alert = one(db, "SELECT declined_at FROM alerts WHERE request_id = ? AND user_id = ?", [req["id"], user.id])
        if alert:
            # A specialist who declined is no longer "alerted": ACTIONS never lets them accept.
            roles.add("declined" if alert["declined_at"] else "alerted")
    return roles


def allowed_actions(db, req, user, roles=None):
    """The actions `user` may take on this request now, from the ACTIONS table."""
    roles = roles_of(db, req, user) if roles is None else roles
    allowed = {name for name, a in ACTIONS.items() if req["state"] in a.from_states and roles & set(a.who)}
    if req["state"] == "requested" and "alerted" in roles:
        allowed.add("decline")
    if req["state"] == "requested" and "supervisor" in roles:
        allowed.add("realert")
    return allowed


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
    if roles & {"assigned", "supervisor"}:
        return True
    return "alerted" in roles and req["state"] == "requested"


def move(db, request_id, action_name, user, *, assignee_id=None, disposition=None, reason=None, outcome=None):
    """Apply `action_name` to a request for `user`; the one door for every state change.

    Raises NotFound, Forbidden (not yours to move) or Conflict (the request
    is not in a state that allows it; the message says who has it).
    """
    action = ACTIONS.get(action_name)
    if action is None:
        raise NotFound(f"Unknown action {action_name!r}.")
    with write_transaction(db):
        req = get_request(db, request_id)
        roles = roles_of(db, req, user)
        if not roles & set(action.who):
            if "declined" in roles and action_name == "accept":
                raise Forbidden("You declined this request, so you cannot accept it. A supervisor can assign it to you.")
            raise Forbidden("You cannot do that on this request.")
        if req["state"] not in action.from_states:
            raise Conflict(_conflict_message(db, req, action_name, user))
        fields = {"state": action.to_state, "updated_at": now()}
        detail = ""
        if action.stamp:
            fields[action.stamp] = now()
        if action_name == "accept":
            fields["assigned_id"] = user.id
        if action_name == "assign":
            fields["assigned_id"] = _assignable(db, assignee_id)
        if action_name == "resolve":
            if disposition not in DISPOSITIONS:
                raise Conflict("Choose a disposition to resolve the request.")
            outcome = outcome or {}
            if outcome.get("force_used") not in ("yes", "no"):
                raise Conflict("Say whether force was used to resolve the request.")
            fields["disposition"] = disposition
            fields["force_used"] = int(outcome["force_used"] == "yes")
            fields["officer_injured"] = int(bool(outcome.get("officer_injured")))
            fields["person_injured"] = int(bool(outcome.get("person_injured")))
            fields["referral"] = (outcome.get("referral") or "").strip()[:200]
            detail = DISPOSITIONS[disposition]
        if action_name == "cancel":
            if reason not in CANCEL_REASONS:
                raise Conflict("Choose a reason to cancel the request.")
            fields["cancel_reason"] = reason
            detail = CANCEL_REASONS[reason]
        sets = ", ".join(f"{k} = ?" for k in fields)
        # The state in the WHERE makes the move atomic even without the lock: of two
        # specialists accepting at once, exactly one row update succeeds.
        cursor = db.execute(
            f"UPDATE cit_requests SET {sets} WHERE id = ? AND state = ?",
            [*fields.values(), request_id, req["state"]],
        )
        if cursor.rowcount != 1:
            raise Conflict(_conflict_message(db, get_request(db, request_id), action_name, user))
        if action_name in ("accept", "assign"):
            assignee = one(db, "SELECT display_name FROM users WHERE id = ?", [fields["assigned_id"]])
            alert = one(db, "SELECT distance_m FROM alerts WHERE request_id = ? AND user_id = ?",
                        [request_id, fields["assigned_id"]])
            distance = f" · {human_distance(alert['distance_m'])} away" if alert and alert["distance_m"] is not None else ""
            detail = f"{assignee['display_name']}{distance}" + (f" (assigned by {user.display_name})" if action_name == "assign" else "")
        add_event(db, request_id, action.to_state if action_name != "assign" else "assigned", user.id, detail)
    return get_request(db, request_id)


def _assignable(db, user_id):
    row = one(db, "SELECT id FROM users WHERE id = ? AND role = 'cit' AND disabled = 0", [user_id]) if user_id else None
    if row is None:
        raise Conflict("Choose an active CIT officer to assign.")
    return row["id"]


def _conflict_message(db, req, action_name, user):
    if req["assigned_id"] and action_name in ("accept", "assign"):
        holder = one(db, "SELECT display_name FROM users WHERE id = ?", [req["assigned_id"]])
        if req["assigned_id"] == user.id:
            return "You have already accepted this request."
        return f"{holder['display_name']} has already accepted this request."
    if req["state"] in ("resolved", "cancelled"):
        return f"This request is already {req['state']}."
    return f"This request is {STATE_LABELS[req['state']].lower()}; that step does not apply now."


def decline(db, request_id, user, reason=None):
    """A specialist declines: recorded, and the next nearest is alerted at once."""
    if reason not in (None, "", *DECLINE_REASONS):
        raise Conflict("Choose one of the listed reasons, or none.")
    with write_transaction(db):
        req = get_request(db, request_id)
        alert = one(db, "SELECT * FROM alerts WHERE request_id = ? AND user_id = ?", [request_id, user.id])
        if alert is None or user.role != "cit":
            raise Forbidden("Only a CIT officer alerted to this request can decline it.")
        if alert["declined_at"]:
            raise Conflict("You have already declined this request.")
        if req["state"] != "requested":
            raise Conflict(_conflict_message(db, req, "accept", user))
        db.execute("UPDATE alerts SET declined_at = ?, decline_reason = ? WHERE id = ?", [now(), reason or None, alert["id"]])
        add_event(db, request_id, "declined", user.id, DECLINE_REASONS.get(reason or "", ""))
        picks = alert_nearest_specialists(db, req, step=req["escalation_step"], count=1)
        add_event(db, request_id, "alerted", detail=_describe_alerted(picks) if picks else "No other CIT officer to alert")
        db.execute("UPDATE cit_requests SET updated_at = ? WHERE id = ?", [now(), request_id])
    wake_worker()


def realert(db, request_id, user):
    """A supervisor alerts the next nearest specialists by hand."""
    if user.role != "supervisor":
        raise Forbidden("Only a supervisor can re-alert.")
    with write_transaction(db):
        req = get_request(db, request_id)
        if req["state"] != "requested":
            raise Conflict(_conflict_message(db, req, "accept", user))
        picks = alert_nearest_specialists(db, req, step=req["escalation_step"])
        add_event(db, request_id, "realerted", user.id, _describe_alerted(picks) if picks else "No other CIT officer to alert")
        db.execute("UPDATE cit_requests SET updated_at = ? WHERE id = ?", [now(), request_id])
    wake_worker()


# An alerted specialist is unreached when none of their devices has the alert sent or still on its way.
_UNREACHED = (
    "NOT EXISTS (SELECT 1 FROM outbox o WHERE o.request_id = alerts.request_id AND o.user_id = alerts.user_id"
    " AND o.state IN ('pending', 'sent'))"
)


def alert_summary(db, request_id):
    """How many specialists were alerted, how many the alert could not reach, and how far the nearest reached was."""
    row = one(
        db,
        f"SELECT COUNT(*) AS alerted, SUM({_UNREACHED}) AS unreached,"
        f" MIN(CASE WHEN NOT {_UNREACHED} THEN distance_m END) AS nearest, SUM(declined_at IS NOT NULL) AS declined,"
        " EXISTS (SELECT 1 FROM request_events WHERE request_id = ? AND event = 'unreachable') AS unreachable"
        " FROM alerts WHERE request_id = ?",
        [request_id, request_id],
    )
    row["reached"] = row["alerted"] - (row["unreached"] or 0)
    return row


def wake_worker():
    """Tell an in-process worker there is work, so alerts go out at once."""
    event = current_app.extensions.get("fieldapp.worker_wake")
    if event is not None:
        event.set()
