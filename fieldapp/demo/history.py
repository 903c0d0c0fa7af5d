"""A year of invented requests for the demo, so a new install's reports, coverage and summary show real charts.

Every figure here is made up. The mix is only plausible (mostly diverted,
some arrests, a few unanswered and cancelled requests), and it is the same on
every run: one fixed seed, counted back from the app's today. The requests are
written already closed through the requests area (requests.history), marked
as demo, so they never alert anyone or send a push, and never mix with live ones.
"""
import datetime
import json
import math
import random

from flask import current_app

from ..clock import now
from ..store.db import write_transaction
from ..maps.demo_map import at_an_address
from ..requests.domain import CANCEL_REASONS, DISPOSITIONS
from ..requests.escalation import policy_from_config
from ..requests.history import demo_request_count, record_closed_requests

HISTORY_SEED = 18
HISTORY_DAYS = 365
HISTORY_REQUESTS = 2000
# How the invented requests spread: districts, shifts (evenings busiest) and what happened.
DISTRICT_WEIGHTS = {"Central": 45, "North": 30, "South": 25}
SHIFT_WEIGHTS = {"day": 30, "evening": 45, "night": 25}
DISPOSITION_WEIGHTS = {
    "resolved_on_scene": 30, "voluntary_transport": 22, "emergency_evaluation": 18, "mobile_crisis_referral": 12,
    "arrest": 6, "medical_transport": 7, "other": 5,
}
UNANSWERED_SHARE = 0.03  # nobody accepted before every on-duty specialist was alerted
CANCELLED_SHARE = 0.07  # cancelled after an accept, before or after arrival
NO_ARRIVAL_SHARE = 0.04  # resolved by the specialist without reaching the scene
TYPED_LOCATION_SHARE = 0.03
TYPED_LOCATION = "Invented demo address"


def _shift_hour(rng, shift, starts):
    """A random hour inside `shift`, given the hour each shift starts."""
    ordered = sorted(starts.items(), key=lambda pair: pair[1])
    index = [name for name, _ in ordered].index(shift)
    start = ordered[index][1]
    end = ordered[(index + 1) % len(ordered)][1]
    length = (end - start) % 24 or 24
    return (start + rng.randrange(length)) % 24


def _place(rng, centres, district):
    """A real address within about 500 m of the district's centre (the demo map is central Helsinki,
    1 by 1.7 km), or None for a typed location."""
    if district not in centres or rng.random() < TYPED_LOCATION_SHARE:
        return None, None
    lat, lon = centres[district]
    bearing, metres = rng.uniform(0, 2 * math.pi), rng.uniform(0, 500)
    return at_an_address(lat + metres * math.cos(bearing) / 111_195,
                         lon + metres * math.sin(bearing) / (111_195 * math.cos(math.radians(lat))))


def _pick(rng, weights):
    return rng.choices(list(weights), weights=list(weights.values()))[0]


def invent_request(rng, created_at, district, centres, people, policy):
    """One invented closed request and its timeline: (row, [(at, actor_id, event, detail)])."""
    officer, specialists, supervisor = people["officer"], people["specialists"], people["supervisor"]
    specialist = specialists[district] if district in specialists else rng.choice(list(specialists.values()))
    lat, lon = _place(rng, centres, district)
    row = {
        "requester_id": officer, "state": "resolved", "created_at": created_at, "lat": lat, "lon": lon,
        "location_text": TYPED_LOCATION if lat is None else "",
        "weapon": int(rng.random() < 0.08), "medical": int(rng.random() < 0.10), "juvenile": int(rng.random() < 0.07),
        "policy": policy, "unanswered": 0, "assigned_id": None, "accepted_at": None, "on_scene_at": None,
        "stabilised_at": None, "closed_at": None, "disposition": None, "cancel_reason": None,
        "force_used": None, "officer_injured": None, "person_injured": None,
    }
    events = [(created_at, officer, "requested",
               "location typed by the officer" if lat is None else "location from the device"),
              (created_at + 1, None, "alerted", "2 CIT officer(s) alerted")]
    t = created_at
    if rng.random() < UNANSWERED_SHARE:
        row["unanswered"] = 1
        events.append((created_at + 60, None, "escalated", "No accept after 60 s: 1 CIT officer(s) alerted"))
        events.append((created_at + 180, None, "unanswered", "No accept after 180 s: every on-duty CIT officer alerted (0 more)"))
        t = created_at + rng.uniform(300, 1200)
        reason = rng.choice(["resolved_before_arrival", "person_left"])
        row.update(state="cancelled", cancel_reason=reason, closed_at=t, updated_at=t)
        events.append((t, supervisor, "cancelled", CANCEL_REASONS[reason]))
        return row, events
    # Most accept within a few minutes; a supervisor assigns the odd one.
    t += min(rng.lognormvariate(math.log(75), 0.6), 170)
    row.update(assigned_id=specialist, accepted_at=t)
    assigned = rng.random() < 0.05
    events.append((t, supervisor if assigned else specialist, "assigned" if assigned else "accepted", "Demo CIT officer"))
    if rng.random() < CANCELLED_SHARE:
        t += rng.uniform(120, 900)
        reason = _pick(rng, {"resolved_before_arrival": 5, "person_left": 3, "not_mental_health": 2, "sent_in_error": 1})
        row.update(state="cancelled", cancel_reason=reason, closed_at=t, updated_at=t)
        events.append((t, officer, "cancelled", CANCEL_REASONS[reason]))
        return row, events
    if rng.random() >= NO_ARRIVAL_SHARE:
        t += rng.lognormvariate(math.log(540), 0.45)
        row["on_scene_at"] = t
        events.append((t, specialist, "on_scene", ""))
        if rng.random() < 0.6:
            t += rng.uniform(600, 2400)
            row["stabilised_at"] = t
            events.append((t, specialist, "stabilised", ""))
    t += rng.uniform(900, 3600)
    disposition = _pick(rng, DISPOSITION_WEIGHTS)
    row.update(closed_at=t, updated_at=t, disposition=disposition, force_used=int(rng.random() < 0.04),
               officer_injured=int(rng.random() < 0.01), person_injured=int(rng.random() < 0.02))
    events.append((t, specialist, "resolved", DISPOSITIONS[disposition]))
    return row, events


def invent_history(centres, people, *, seed=HISTORY_SEED, days=HISTORY_DAYS, count=HISTORY_REQUESTS):
    """`count` invented closed requests over the `days` days before today, oldest first; the same for the same seed and day."""
    rng = random.Random(seed)
    starts = current_app.config["SHIFT_STARTS"]
    policy = json.dumps(policy_from_config(current_app.config))
    today = datetime.date.fromtimestamp(now())
    names = [d for d in DISTRICT_WEIGHTS if d in centres] or list(centres) or ["Central"]
    weights = {d: DISTRICT_WEIGHTS.get(d, 30) for d in names}
    stamps = []
    for _ in range(count):
        day = today - datetime.timedelta(days=rng.randrange(1, days + 1))
        shift = _pick(rng, SHIFT_WEIGHTS)
        hour = _shift_hour(rng, shift, starts)
        # A night shift's early hours fall on the next calendar day.
        if hour < min(starts.values()):
            day += datetime.timedelta(days=1)
        moment = datetime.datetime.combine(day, datetime.time(hour, rng.randrange(60), rng.randrange(60)))
        if moment.date() >= today:
            moment -= datetime.timedelta(days=1)
        stamps.append((moment.timestamp(), _pick(rng, weights)))
    stamps.sort()
    return [invent_request(rng, at, district, centres, people, policy) for at, district in stamps]


def seed_history(db, people, **options):
    """Write the invented year unless demo requests are already there; returns how many were written."""
    if demo_request_count(db):
        return 0
    centres = {d["name"]: (d["lat"], d["lon"]) for d in db.query("SELECT name, lat, lon FROM districts")}
    closed = invent_history(centres, people, **options)
    with write_transaction(db):
        return record_closed_requests(db, closed)
