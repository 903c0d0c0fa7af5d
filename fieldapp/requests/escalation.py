"""Asking for CIT and widening the ask: a new request, the per-officer rate limit, and escalation.

Creating a request never waits for push delivery: the request, its alerts and
one outbox row per device are written in one transaction, and the worker
sends them. Escalation deadlines live in the database, so a restart never
loses one.
"""
import json

from flask import current_app
from werkzeug.exceptions import Conflict, TooManyRequests

from ..clock import now
from ..delivery.outbox import wake_worker
from ..store.db import one, write_transaction
from .domain import get_request, open_request_of
from .selection import (
    alert_nearest_specialists, alert_supervisors, choose_specialists, describe_alerted, on_duty_specialists,
    record_alerts, supervise_if_unreachable,
)
from .timeline import add_event, has_event
from .updates import tell_boards, tell_requester


def policy_from_config(config):
    """The escalation policy in force now; it is stored with each request."""
    return {
        "k": int(config["ALERT_K"]),
        "radius_km": float(config["ALERT_RADIUS_KM"]),
        "escalate_after_s": float(config["ESCALATE_AFTER_S"]),
        "all_after_s": float(config["ALL_HANDS_AFTER_S"]),
        "position_max_age_s": float(config["POSITION_MAX_AGE_S"]),
    }


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
                    different_scene=False, drill=False, dispatch=None):
    t = now()
    policy = policy_from_config(current_app.config)
    dispatch = dispatch or {}
    # Choose before taking the write lock: with many specialists the search is
    # the slow part, and the worker must not wait behind it.
    picks = choose_specialists(db, lat, lon, policy, {requester_id}, district=dispatch.get("district"))
    with write_transaction(db):
        if client_id:
            existing = one(db, "SELECT id, client_body_hash FROM cit_requests WHERE requester_id = ? AND client_id = ?",
                           [requester_id, client_id])
            if existing:
                if existing["client_body_hash"] != dispatch.get("client_body_hash"):
                    raise Conflict("That Idempotency-Key was already used with a different request body.")
                return existing["id"], False
        # Dispatch asks for many scenes: the one-open-request rule and the
        # per-officer rate limit are for one officer's button.
        if not dispatch and not different_scene:
            already = open_request_of(db, requester_id)
            if already:
                return already["id"], False
        if not dispatch:
            _refuse_past_the_rate_limit(db, requester_id)
        cursor = db.execute(
            "INSERT INTO cit_requests (client_id, requester_id, state, created_at, updated_at, lat, lon, accuracy_m,"
            " location_text, note, weapon, medical, juvenile, observations, policy, next_escalation_at, drill)"
            " VALUES (?, ?, 'requested', ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            [client_id, requester_id, t, t, lat, lon, accuracy, location_text, note, int(weapon), int(medical),
             int(juvenile), json.dumps(list(observations)), json.dumps(policy), t + policy["escalate_after_s"], int(drill)],
        )
        if dispatch:
            db.execute("UPDATE cit_requests SET cad_incident = ?, district = ?, client_body_hash = ? WHERE id = ?",
                       [dispatch.get("cad_incident"), dispatch.get("district"), dispatch.get("client_body_hash"),
                        cursor.lastrowid])
        req = get_request(db, cursor.lastrowid)
        add_event(db, req["id"], "requested", requester_id,
                  # Never free text here: the timeline is append-only, and `purge` must be able to
                  # remove what officers typed. The CAD number is the agency's own reference.
                  ("DRILL: " if drill else "")
                  + (f"from dispatch, CAD incident {dispatch['cad_incident']}" if dispatch and dispatch.get("cad_incident")
                     else "location from the device" if lat is not None else "location typed by the officer"))
        record_alerts(db, req, picks, step=0)
        if picks:
            add_event(db, req["id"], "alerted", detail=describe_alerted(picks))
            supervise_if_unreachable(db, req)
        elif not on_duty_specialists(db, {requester_id}):
            add_event(db, req["id"], "no_specialists", detail="No CIT officer is on duty")
            alert_supervisors(db, req, "no_specialists")
        else:
            add_event(db, req["id"], "no_specialists",
                      detail=f"No CIT officer within {policy['radius_km']:g} km; widening after {policy['escalate_after_s']:g} s")
            alert_supervisors(db, req, "no_specialists")
        tell_boards(db)
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
        if latest is None or has_event(db, latest["id"], "rate_limited"):
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
                      detail=f"No accept after {policy['escalate_after_s']:g} s: {describe_alerted(picks)}")
            alert_supervisors(db, req, "unanswered")
            tell_requester(db, req, "unanswered")
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
        tell_boards(db)
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


def settle_escalations_due_by(db, moment):
    """Mark every escalation step due by `moment` as taken, without alerting anyone; call inside a write transaction.

    For a database restored from a copy (restore.py): those steps may already
    have gone out before the copy was made. Returns [(request_id, [steps])].
    """
    settled = []
    for req in db.query(
        "SELECT id, created_at, policy, escalation_step, next_escalation_at FROM cit_requests"
        " WHERE state = 'requested' AND next_escalation_at <= ?",
        [moment],
    ):
        step, next_at, steps = req["escalation_step"], req["next_escalation_at"], []
        policy = json.loads(req["policy"])
        # The same two steps as escalate(): the next K, then everyone.
        while next_at is not None and next_at <= moment:
            steps.append(step + 1)
            next_at = req["created_at"] + policy["all_after_s"] if step == 0 else None
            step += 1
        db.execute(
            "UPDATE cit_requests SET escalation_step = ?, next_escalation_at = ?,"
            " unanswered = CASE WHEN ? THEN 1 ELSE unanswered END, updated_at = ? WHERE id = ?",
            [step, next_at, next_at is None, now(), req["id"]],
        )
        settled.append((req["id"], steps))
    return settled
