"""The check-in timer: its deadlines, the heads-up push, the missed alarm and its repeats (owns `check_in_timers`).

Every deadline is a stored row the worker reads on each pass (`run_due`),
never a timer in memory, so a killed worker, a restarted server or a closed
browser loses nothing. The timer starts and stops by listening to the
request's timeline (`on_request_moved`), so the state machine knows nothing of it.
"""
import json

from flask import current_app
from werkzeug.exceptions import BadRequest, Conflict, Forbidden

from ..audit.log import record as audit
from ..clock import now
from ..delivery import backup_channel
from ..delivery.outbox import queue_to_devices, wake_worker
from ..requests.domain import OPEN_STATES, get_request
from ..requests.selection import supervisors_to_alert
from ..requests.timeline import add_event
from ..requests.updates import tell_boards
from ..store.db import one, write_transaction

# What the officer may pick on the request page, in minutes; the agency's default is CHECK_IN_MINUTES.
CHOICES = (5, 10, 20, 30)
# The timer runs while the officer is on scene; "Scene stabilised", Resolve and Cancel stop it.
STOPPED_BY = ("stabilised", "resolved", "cancelled")


def warn_before(interval_s):
    """How long before the deadline the officer's phones get the heads-up: a minute, or half a short interval."""
    return 60.0 if interval_s >= 120 else interval_s / 2


def timer_of(db, request_id):
    """The request's check-in timer row, or None."""
    return one(db, "SELECT * FROM check_in_timers WHERE request_id = ?", [request_id])


def _set_deadline(db, request_id, interval_s, t):
    """Count down `interval_s` from `t`: a new deadline, its heads-up, and no alarm."""
    db.execute(
        "UPDATE check_in_timers SET interval_s = ?, checked_in_at = ?, deadline_at = ?, warn_at = ?, missed_at = NULL,"
        " next_alarm_at = NULL WHERE request_id = ?",
        [interval_s, t, t + interval_s, t + interval_s - warn_before(interval_s), request_id],
    )


# ---- Starting and stopping: listening to the timeline ----

def on_request_moved(db, *, request_id, event, actor_id, **_):
    """Listener: "On scene" starts the timer; stabilised, resolved and cancelled stop it. Inside the move's transaction."""
    if event == "on_scene" and actor_id is not None:
        start(db, request_id, actor_id)
    elif event in STOPPED_BY:
        db.execute("UPDATE check_in_timers SET stopped_at = ?, warn_at = NULL, next_alarm_at = NULL"
                   " WHERE request_id = ? AND stopped_at IS NULL", [now(), request_id])


def start(db, request_id, specialist_id):
    """Start the countdown at the agency's default; must run inside a write transaction."""
    interval_s = float(current_app.config["CHECK_IN_MINUTES"]) * 60
    t = now()
    db.execute(
        "INSERT OR REPLACE INTO check_in_timers (request_id, specialist_id, interval_s, started_at, checked_in_at,"
        " deadline_at, warn_at) VALUES (?, ?, ?, ?, ?, ?, ?)",
        [request_id, specialist_id, interval_s, t, t, t + interval_s, t + interval_s - warn_before(interval_s)],
    )
    add_event(db, request_id, "check_in_started", detail=f"Check-in every {interval_s / 60:g} min")


# ---- What people do: the officer's "I'm OK" and interval, a supervisor's "Contact made" ----

def _running_timer(db, request_id, req):
    """The request's running timer, or the 409 that says why there is none."""
    timer = timer_of(db, request_id)
    if req["state"] not in OPEN_STATES:
        raise Conflict(f"This request is already {req['state']}; there is nothing to check in to.")
    if timer is None or timer["stopped_at"] is not None:
        raise Conflict("The check-in timer is not running: it runs while the CIT officer is on scene.")
    return timer


def check_in(db, request_id, user, minutes=None):
    """The assignee's "I'm OK": the countdown starts again (at `minutes`, when given). Late, it ends the alarm."""
    interval_s = None
    if minutes is not None:
        # Exactly one of the choices, as the page's menu sends it: no 7, no 0.5, no 1e9.
        if str(minutes).strip() not in {str(m) for m in CHOICES}:
            raise BadRequest(f"Pick {', '.join(map(str, CHOICES[:-1]))} or {CHOICES[-1]} minutes.")
        interval_s = int(minutes) * 60.0
    with write_transaction(db):
        # Who first: a stranger learns nothing of the timer, and changes nothing.
        req = get_request(db, request_id)
        if req["assigned_id"] != user.id:
            raise Forbidden("Only the CIT officer on this request can check in.")
        timer = _running_timer(db, request_id, req)
        t = now()
        late = timer["missed_at"] is not None
        _set_deadline(db, request_id, interval_s or timer["interval_s"], t)
        if late:
            add_event(db, request_id, "checked_in_late", user.id,
                      f"Checked in {_ago(t - timer['deadline_at'])} after the deadline")
        elif interval_s is not None:
            add_event(db, request_id, "check_in_interval", user.id, f"Check-in every {interval_s / 60:g} min")
        else:
            add_event(db, request_id, "checked_in", user.id, "I'm OK")
        tell_boards(db)
    wake_worker()
    return timer_of(db, request_id)


def contact_made(db, request_id, user, note):
    """A supervisor reached the officer: the alarm stops and the countdown starts again.

    The note stays with the timer, never in the timeline: the timeline is
    append-only, and what people type must be removable.
    """
    if user.role != "supervisor":
        raise Forbidden("Only a supervisor can record contact.")
    note = (note or "").strip()
    if not note:
        raise BadRequest("Say how contact was made (for example: radio, officer answered).")
    if len(note) > 500:
        raise BadRequest("Keep the note under 500 characters.")
    with write_transaction(db):
        timer = _running_timer(db, request_id, get_request(db, request_id))
        if timer["missed_at"] is None:
            raise Conflict("No check-in is missed on this request.")
        _set_deadline(db, request_id, timer["interval_s"], now())
        db.execute("UPDATE check_in_timers SET contact_note = ? WHERE request_id = ?", [note, request_id])
        add_event(db, request_id, "contact_made", user.id, "A supervisor made contact with the CIT officer")
        tell_boards(db)
    wake_worker()


def forget_contact_notes_of_closed_requests(db, cutoff):
    """Take the supervisors' contact notes out of requests closed before `cutoff` (`purge`); inside a write transaction."""
    return db.execute(
        "UPDATE check_in_timers SET contact_note = NULL WHERE contact_note IS NOT NULL AND request_id IN"
        " (SELECT id FROM cit_requests WHERE state IN ('resolved', 'cancelled') AND closed_at < ?)", [cutoff]).rowcount


# ---- The worker's part: heads-ups and alarms when due ----

def due_timers(db):
    """Ids of requests whose timer has a heads-up, a deadline or a repeat due now."""
    t = now()
    return [r[0] for r in db.execute(
        "SELECT request_id FROM check_in_timers WHERE stopped_at IS NULL"
        " AND (warn_at <= ? OR (missed_at IS NULL AND deadline_at <= ?) OR next_alarm_at <= ?) ORDER BY deadline_at",
        [t, t, t]).fetchall()]


def run_due(db):
    """Take every due step (the worker calls this each pass); returns how many were taken.

    Each is re-read under the write lock, so two workers never take the same step twice.
    """
    done, alarms = 0, []
    for request_id in due_timers(db):
        with write_transaction(db):
            step = _take_due_step(db, request_id)
            if step:
                tell_boards(db)
        if step:
            done += 1
        if step == "missed":
            alarms.append(request_id)
    for request_id in alarms:
        backup_channel.send_to_agency(
            f"CIT request #{request_id}: check-in missed",
            f"The CIT officer on request #{request_id} has not checked in. Open fieldapp and make contact.")
    if done:
        wake_worker()
    return done


def _take_due_step(db, request_id):
    """The one step due on this timer now: 'warned', 'missed' or None. Inside a write transaction."""
    timer, t = timer_of(db, request_id), now()
    if timer is None or timer["stopped_at"] is not None:
        return None
    req = get_request(db, request_id)
    first_miss = timer["missed_at"] is None and timer["deadline_at"] <= t
    repeat = timer["next_alarm_at"] is not None and timer["next_alarm_at"] <= t
    if first_miss or repeat:
        repeat_s = float(current_app.config["CHECK_IN_REPEAT_MINUTES"]) * 60
        db.execute(
            "UPDATE check_in_timers SET missed_at = COALESCE(missed_at, ?), warn_at = NULL, next_alarm_at = ?,"
            " alarms = alarms + 1 WHERE request_id = ?", [t, t + repeat_s, request_id])
        late = _ago(t - timer["deadline_at"])
        detail = f"No check-in from the CIT officer; deadline passed {late} ago"
        add_event(db, request_id, "check_in_missed", detail=detail)
        audit(db, "check_in_missed", f"request {request_id}", detail)
        payload = _payload(request_id, "missed")
        for user_id in {*supervisors_to_alert(db), req["requester_id"]}:
            queue_to_devices(db, request_id, user_id, payload, _topic(request_id))
        return "missed"
    if timer["warn_at"] is not None and timer["warn_at"] <= t:
        db.execute("UPDATE check_in_timers SET warn_at = NULL WHERE request_id = ?", [request_id])
        queue_to_devices(db, request_id, timer["specialist_id"], _payload(request_id, "warn"), _topic(request_id))
        add_event(db, request_id, "check_in_reminded",
                  detail=f"Check-in due in {_ago(timer['deadline_at'] - t)}: the CIT officer's phones were told")
        return "warned"
    return None


def _topic(request_id):
    """One Topic per request's check-ins: a repeat replaces the last on the lock screen."""
    return f"cit-check-in-{request_id}"


# The pushes say nothing that names anyone, and no note or address: the request number and the URL.
_NEWS = {
    "warn": ("Check in: are you OK?", "Tap I'm OK in fieldapp before your check-in runs out."),
    "missed": ("CIT officer missed a check-in", "No check-in from the CIT officer on scene. Open fieldapp and make contact."),
}


def _payload(request_id, news):
    """The push's JSON for `news` ('warn' or 'missed')."""
    title, body = _NEWS[news]
    return json.dumps({"kind": "check_in", "news": news, "request_id": request_id, "title": f"#{request_id} {title}",
                       "body": body, "url": f"/requests/{request_id}", "topic": _topic(request_id)})


def _ago(seconds):
    """0:30, 12:05: minutes and seconds, as the board writes them."""
    seconds = max(0, int(seconds))
    return f"{seconds // 60}:{seconds % 60:02d}"


# ---- What the pages show ----

def check_in_view(db, request_id, roles):
    """What the request page shows of the timer to this viewer, or None when there is nothing to show."""
    timer = timer_of(db, request_id)
    if timer is None or timer["stopped_at"] is not None or not roles & {"assigned", "supervisor", "requester"}:
        return None
    return {"deadline_at": timer["deadline_at"], "left": _ago(timer["deadline_at"] - now()),
            "missed_for": _ago(now() - timer["deadline_at"]), "minutes": timer["interval_s"] / 60,
            "every": f"{timer['interval_s'] / 60:g}", "missed": timer["missed_at"] is not None,
            "choices": CHOICES, "can_check_in": "assigned" in roles,
            "can_record_contact": "supervisor" in roles and timer["missed_at"] is not None}


def missed_check_ins(db):
    """Open requests whose check-in was missed, longest missed first: the board shows them red at the top."""
    t = now()
    return [{**row, "missed_for": _ago(t - row["deadline_at"])} for row in db.query(
        "SELECT t.request_id, t.deadline_at, r.cad_incident, u.display_name AS specialist, u.unit"
        " FROM check_in_timers t JOIN cit_requests r ON r.id = t.request_id JOIN users u ON u.id = t.specialist_id"
        " WHERE t.stopped_at IS NULL AND t.missed_at IS NOT NULL ORDER BY t.deadline_at")]
