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

from ..store.db import one
from .domain import OPEN_STATES, get_request
from .escalation import create_request
from .selection import alert_summary

# A call's fields, as requests.forms checks them; the idempotency key is not one of them.
CALL_FIELDS = ("cad_incident", "location_text", "district", "lat", "lon", "note", "weapon", "medical", "juvenile")


def districts(db):
    """The district names a dispatcher can choose from."""
    return [r["name"] for r in db.query("SELECT name FROM districts ORDER BY name")]


def body_hash(call):
    """A stable hash of a checked call: an idempotency key reused with another body is told apart."""
    return hashlib.sha256(json.dumps({name: call[name] for name in CALL_FIELDS}, sort_keys=True).encode()).hexdigest()


def create_dispatch_request(db, requester_id, call, idempotency_key=None):
    """Ask for CIT for a call checked by `forms.check_new_request`; returns (request_id, created).

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
