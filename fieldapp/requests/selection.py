"""Who gets alerted to a CIT request, and the alerts and pushes sent to them.

Who is *eligible* at all is duty's rule (duty/eligibility.py); this module
finds the nearest K of them and alerts them.

This module writes the `alerts` rows and queues one message per device
through `outbox`; the request's timeline and state belong to `domain`.
"""
import json
import math


from ..clock import now
from ..store.db import one
from ..geo import bounding_box, distance_m, human_distance
from ..delivery import receipts
from ..duty.eligibility import ELIGIBLE
from ..delivery.outbox import queue_message, withdraw_queued
from .timeline import add_event, has_event

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


def on_duty_specialists(db, exclude=frozenset()):
    """Ids of eligible specialists in the order they came on duty, leaving out `exclude`."""
    rows = db.execute(
        f"SELECT duty.user_id FROM duty JOIN users u ON u.id = duty.user_id WHERE {ELIGIBLE} ORDER BY duty.since"
    ).fetchall()
    return [r[0] for r in rows if r[0] not in exclude]


def choose_specialists(db, lat, lon, policy, exclude, *, everyone=False, count=None, district=None):
    """The next specialists to alert, nearest first: [(user_id, metres or None)]. Reads only."""
    k = None if everyone else (count or policy["k"])
    if lat is None and district and not everyone:
        # Dispatch typed an address with its district: that district's on-duty
        # specialists first, then the others, each in the order they came on duty.
        ids = on_duty_specialists(db, exclude)
        in_district = {r[0] for r in db.execute(
            "SELECT user_id FROM duty WHERE district = ? COLLATE NOCASE", [district]).fetchall()}
        ids = [u for u in ids if u in in_district] + [u for u in ids if u not in in_district]
        return [(u, None) for u in ids[:k]]
    if lat is None:
        # No coordinates (typed location only): distance is unknown, so take
        # on-duty specialists in the order they came on duty.
        ids = on_duty_specialists(db, exclude)
        return [(u, None) for u in (ids if k is None else ids[:k])]
    radius = math.inf if everyone else policy["radius_km"] * 1000
    picks = nearest_specialists(
        db, lat, lon, k=k, radius_m=min(radius, 20_037_000), exclude=exclude, max_age_s=policy["position_max_age_s"],
    )
    if everyone:
        # Specialists with no usable position at all are still alerted at the all-hands step.
        known = {u for u, _ in picks}
        picks += [(u, None) for u in on_duty_specialists(db, exclude | known)]
    return picks


# ---- The alerts and their pushes ----

SUPERVISOR_REASONS = {
    "unanswered": "Nobody has accepted yet.",
    "no_specialists": "No CIT officer could be alerted.",
    "unreachable": "No alerted CIT officer could be reached.",
    "rate_limited": "An officer's CIT requests are being refused: too many in a short time.",
}


CLOSED_TITLES = {
    "accepted": "Taken by another CIT officer",
    "cancelled": "Cancelled",
}


def _payload(req, distance, kind, receipt=None):
    # No names, notes or addresses: a lock screen is no place for them.
    if kind == "alert":
        title = f"CIT requested · {human_distance(distance)}" if distance is not None else "CIT requested"
        body = "Open to accept or decline."
    elif kind in CLOSED_TITLES:
        title, body = CLOSED_TITLES[kind], "No action needed."
    else:
        title = "CIT request needs a supervisor"
        body = SUPERVISOR_REASONS[kind]
    if req["drill"]:
        title = f"DRILL · {title}"
    return json.dumps(
        {
            "kind": "closed" if kind in CLOSED_TITLES else kind,
            "request_id": req["id"],
            "distance_m": None if distance is None else round(distance),
            "created_at": req["created_at"],
            "title": title,
            "body": body,
            "url": f"/requests/{req['id']}",
            "topic": topic_for(req["id"]),
            "drill": bool(req["drill"]),
            # The service worker posts this back to say the alert reached the phone.
            **({"receipt": receipt} if receipt else {}),
        }
    )


def topic_for(request_id):
    """The Web Push Topic header: a newer alert for a request replaces an older one."""
    return f"cit-request-{request_id}"


def _queue_push(db, req, user_id, distance, kind):
    t = now()
    for sub in db.execute("SELECT id FROM push_subscriptions WHERE user_id = ?", [user_id]).fetchall():
        # A specialist's alert carries a receipt token bound to this alert and this device.
        receipt = receipts.issue(db, "alert", user_id, sub[0], req["id"]) if kind == "alert" else None
        queue_message(db, req["id"], user_id, sub[0], _payload(req, distance, kind, receipt), topic_for(req["id"]), t)


def close_alerts(db, req, outcome, keep=None):
    """Stop a request's alerts: nothing still queued for it leaves, and every other alerted
    device gets a push with the same Topic and tag that replaces the alert.

    `outcome` is 'accepted' or 'cancelled'; `keep` is the specialist who has it.
    Must run inside the write transaction that moves the request.
    """
    withdraw_queued(db, req["id"])
    t = now()
    devices = db.execute(
        "SELECT DISTINCT o.user_id, o.subscription_id FROM outbox o JOIN alerts a"
        " ON a.request_id = o.request_id AND a.user_id = o.user_id"
        " WHERE o.request_id = ? AND o.channel = 'push' AND o.subscription_id IS NOT NULL AND o.user_id IS NOT ?",
        [req["id"], keep],
    ).fetchall()
    payload = _payload(req, None, outcome)
    for user_id, subscription_id in devices:
        queue_message(db, req["id"], user_id, subscription_id, payload, topic_for(req["id"]), t)
    return len(devices)


def alert_of(db, request_id, user_id):
    """The alert row of this specialist for this request, or None if they were never alerted."""
    return one(db, "SELECT * FROM alerts WHERE request_id = ? AND user_id = ?", [request_id, user_id])


def already_alerted(db, request_id):
    """Ids of the specialists alerted for this request so far."""
    return {r[0] for r in db.execute("SELECT user_id FROM alerts WHERE request_id = ?", [request_id]).fetchall()}


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
    picks = choose_specialists(db, req["lat"], req["lon"], json.loads(req["policy"]), exclude, everyone=everyone, count=count,
                               district=req.get("district"))
    return record_alerts(db, req, picks, step)


def describe_alerted(picks):
    """The timeline's line for an alert step: how many, and the nearest to the 100 m."""
    nearest = min((m for _, m in picks if m is not None), default=None)
    text = f"{len(picks)} CIT officer(s) alerted"
    # To the 100 m only: the timeline is append-only, so `purge` can never take an exact distance out of it.
    return text + (f"; nearest {human_distance(round(nearest, -2))}" if nearest is not None else "")


def mark_fallback(db, alert_id):
    """Claim this alert's one backup-channel send; False when it was already claimed."""
    return db.execute("UPDATE alerts SET fallback_at = ? WHERE id = ? AND fallback_at IS NULL", [now(), alert_id]).rowcount == 1


def decline_alert(db, alert_id, reason):
    """Mark one alert declined, with the specialist's reason if they gave one."""
    db.execute("UPDATE alerts SET declined_at = ?, decline_reason = ? WHERE id = ?", [now(), reason or None, alert_id])


def round_distances_of_closed_requests(db, cutoff):
    """Round to the kilometre the alerted specialists' distances to requests closed before `cutoff`.

    For retention (`purge`): a specialist's exact distance to a known scene
    says where they were. Must run inside a write transaction.
    """
    db.execute(
        "UPDATE alerts SET distance_m = ROUND(distance_m / 1000.0) * 1000 WHERE request_id IN"
        " (SELECT id FROM cit_requests WHERE state IN ('resolved', 'cancelled') AND closed_at < ?)"
        " AND distance_m != ROUND(distance_m / 1000.0) * 1000",
        [cutoff],
    )


def supervisors_to_alert(db):
    """Ids of the supervisors on duty, or of every supervisor when none is: whom an alarm goes to."""
    return [
        r[0]
        for r in db.execute(
            "SELECT u.id FROM users u JOIN duty ON duty.user_id = u.id"
            " WHERE u.role = 'supervisor' AND u.disabled = 0 AND duty.on_duty = 1"
        ).fetchall()
    ] or [r[0] for r in db.execute("SELECT id FROM users WHERE role = 'supervisor' AND disabled = 0").fetchall()]


def alert_supervisors(db, req, kind):
    """Push to on-duty supervisors (to every supervisor when none is on duty)."""
    ids = supervisors_to_alert(db)
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
    if alive or has_event(db, req["id"], "unreachable") or not already_alerted(db, req["id"]):
        return False
    add_event(db, req["id"], "unreachable", detail="No alert reached an alerted CIT officer")
    alert_supervisors(db, req, "unreachable")
    return True


# An alerted specialist is unreached when none of their devices has the alert sent or still on its way.
_UNREACHED = (
    "NOT EXISTS (SELECT 1 FROM outbox o WHERE o.request_id = alerts.request_id AND o.user_id = alerts.user_id"
    " AND o.state IN ('pending', 'sent', 'withdrawn'))"
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
    row.update(receipts.counts(db, request_id))
    return row
