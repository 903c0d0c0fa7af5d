"""Requests that come from dispatch: the 911 call-taker's console and the agency's CAD.

A dispatch request carries the CAD incident number, a place (coordinates, or an
address typed as text with its district), a short call note and the weapon,
medical and juvenile flags. It is asked for and alerted through `escalation`
like an officer's tap, less the per-officer rules (one open request, the rate
limit), which are for one officer's button. A patrol officer on the call can be
attached later and then follows it as its requester (the `attach` action).
"""
import hashlib
import json
import re

from ..store.db import one
from ..geo import parse_coordinates
from .domain import OPEN_STATES, get_request
from .escalation import create_request
from .selection import alert_summary

CAD_INCIDENT_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._:/-]{0,39}$")
MAX_NOTE = 280
MAX_LOCATION_TEXT = 200
FLAGS = ("weapon", "medical", "juvenile")


class BadCall(ValueError):
    """A dispatch call that cannot be sent, with the message to show."""


def districts(db):
    """The district names a dispatcher can choose from."""
    return [r["name"] for r in db.query("SELECT name FROM districts ORDER BY name")]


def check_call(db, data, from_form=False):
    """Validate a call from the console's form or the API's JSON; returns the fields or raises BadCall.

    Needs the CAD incident number and a place: coordinates, or an address with its district.
    JSON must use JSON's types (numbers, true/false); a form sends text and checkboxes.
    """
    def text(name, limit):
        value = data.get(name)
        if value is None:
            return ""
        if not isinstance(value, str):
            raise BadCall(f"{name} must be text.")
        value = value.strip()
        if len(value) > limit:
            raise BadCall(f"Keep {name} under {limit} characters.")
        return value

    cad = text("cad_incident", 40)
    if not CAD_INCIDENT_RE.match(cad):
        raise BadCall("Give the CAD incident number: up to 40 letters, digits and . _ : / -")
    location_text = text("location_text", MAX_LOCATION_TEXT)
    note = text("note", MAX_NOTE)
    district = text("district", 100) or None
    if district is not None:
        row = one(db, "SELECT name FROM districts WHERE name = ? COLLATE NOCASE", [district])
        if row is None:
            raise BadCall(f"There is no district called {district!r}.")
        district = row["name"]
    lat = lon = None
    if data.get("lat") not in (None, "") or data.get("lon") not in (None, ""):
        for name in ("lat", "lon"):
            if not from_form and (isinstance(data.get(name), bool) or not isinstance(data.get(name), (int, float))):
                raise BadCall("lat and lon must both be numbers.")
        try:
            lat, lon, _ = parse_coordinates(data.get("lat"), data.get("lon"))
        except ValueError as e:
            raise BadCall(str(e)) from None
    elif not (location_text and district):
        raise BadCall("Give the place: coordinates, or the address together with its district.")
    flags = {}
    for name in FLAGS:
        value = bool(data.get(name)) if from_form else data.get(name, False)  # a checkbox is sent or not
        if not isinstance(value, bool):
            raise BadCall(f"{name} must be true or false.")
        flags[name] = value
    return {"cad_incident": cad, "location_text": location_text, "district": district, "lat": lat, "lon": lon,
            "note": note, **flags}


def body_hash(call):
    """A stable hash of a checked call: an idempotency key reused with another body is told apart."""
    return hashlib.sha256(json.dumps(call, sort_keys=True).encode()).hexdigest()


def create_dispatch_request(db, requester_id, call, idempotency_key=None):
    """Ask for CIT for a checked call; returns (request_id, created).

    `idempotency_key` is scoped to the requester (a dispatcher, or an API key's
    account); the same key with another body raises Conflict and writes nothing.
    """
    dispatch = {"cad_incident": call["cad_incident"], "district": call["district"], "client_body_hash": body_hash(call)}
    return create_request(
        db, requester_id, lat=call["lat"], lon=call["lon"], location_text=call["location_text"], note=call["note"],
        weapon=call["weapon"], medical=call["medical"], juvenile=call["juvenile"], client_id=idempotency_key,
        dispatch=dispatch,
    )


def dispatch_status(db, request_id):
    """What a CAD sees of one request: state, times, counts, the assignee's unit and the disposition."""
    req = get_request(db, request_id)
    summary = alert_summary(db, request_id)
    accepted = one(db, "SELECT COUNT(*) AS n FROM request_events WHERE request_id = ? AND event IN ('accepted', 'assigned')",
                   [request_id])["n"]
    assignee = one(db, "SELECT unit FROM users WHERE id = ?", [req["assigned_id"]]) if req["assigned_id"] else None
    return {
        "id": req["id"],
        "cad_incident": req["cad_incident"],
        "state": req["state"],
        "created_at": req["created_at"],
        "accepted_at": req["accepted_at"],
        "on_scene_at": req["on_scene_at"],
        "stabilised_at": req["stabilised_at"],
        "closed_at": req["closed_at"],
        "lat": req["lat"],
        "lon": req["lon"],
        "district": req["district"],
        "alerted": summary["alerted"],
        "accepted": accepted,
        "assignee_unit": (assignee["unit"] or None) if assignee else None,
        "disposition": req["disposition"],
        "cancel_reason": req["cancel_reason"],
    }


def open_dispatch_requests(db, limit=200):
    """Every open request, oldest first, as `dispatch_status` shows them."""
    marks = ",".join("?" * len(OPEN_STATES))
    ids = [r["id"] for r in db.query(
        f"SELECT id FROM cit_requests WHERE state IN ({marks}) ORDER BY created_at, id LIMIT ?", [*OPEN_STATES, limit])]
    return [dispatch_status(db, i) for i in ids]
