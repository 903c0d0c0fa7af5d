"""Outbound webhooks: one signed delivery per request state change, queued and sent (owns `webhook_deliveries`).

Every state change of a request (`requested`, `accepted`, `on_scene`,
`stabilised`, `resolved`, `cancelled`) is written as one `webhook_deliveries`
row per subscribed endpoint, in the same transaction as the change, so a change
never goes unsent and sending never blocks a request. The worker leases due rows
and posts them signed per the Standard Webhooks specification (the
`standardwebhooks` reference library signs), retrying with backoff up to a cap.

The endpoints themselves, and the checks of where a webhook may go (again
before each send), are webhook_endpoints.py's; the coordinators' pages are
webhook_pages.py's.
"""
import datetime
import json
import time
import uuid

import requests as http

from ..clock import now
from ..store.db import one, write_transaction
from .webhook_endpoints import RESPONDER_EVENTS, event_type, url_refusal
from .webhook_secrets import signatures

# The timeline's events that are state changes, and the webhook event each one sends.
EVENTS = {"requested": "requested", "accepted": "accepted", "assigned": "accepted", "on_scene": "on_scene",
          "stabilised": "stabilised", "resolved": "resolved", "cancelled": "cancelled",
          "check_in_missed": "check_in_missed"}
MAX_ATTEMPTS = 8
BACKOFF_BASE_S = 2.0
BACKOFF_MAX_S = 300.0


# ---- Queuing: a listener to the timeline, inside the state change's transaction ----

# What a webhook says of a request (the requests area's dispatch status), given by create_app:
# the requests area builds on the timeline, so this module cannot import it.
_describe_request = None


def describe_requests_with(describe):
    """Set the function that gives a request's webhook `data`: describe(db, request_id) -> dict."""
    global _describe_request
    _describe_request = describe


def on_request_moved(db, *, request_id, event, **_):
    """Listener: queue the webhooks of a request's new timeline line."""
    queue_event(db, request_id, event)


def queue_event(db, request_id, timeline_event):
    """Queue one delivery per endpoint subscribed to this state change; does nothing for other events."""
    event = EVENTS.get(timeline_event)
    if event is None:
        return 0
    targets = [e for e in db.query("SELECT id, events FROM webhook_endpoints WHERE disabled_at IS NULL")
               if event in json.loads(e["events"])]
    if not targets:
        return 0
    t = now()
    # A responder's event says which request and when, and nothing about anyone (safety/timer.py).
    data = _describe_request(db, request_id) if event not in RESPONDER_EVENTS else _request_reference(db, request_id)
    # Never the notes here: a stored payload would outlive `purge`. They are added at each send (`_with_notes`).
    payload = json.dumps({
        "type": event_type(event),
        "timestamp": datetime.datetime.fromtimestamp(t, datetime.UTC).isoformat().replace("+00:00", "Z"),
        "data": data,
    })
    for target in targets:
        message_id = f"msg_{uuid.uuid4().hex}"
        db.execute(
            "INSERT INTO webhook_deliveries (endpoint_id, request_id, event, message_id, payload, next_attempt_at, created_at)"
            " VALUES (?, ?, ?, ?, ?, ?, ?)",
            [target["id"], request_id, event, message_id, payload, t, t],
        )
    return len(targets)


def forget_payloads_of_closed_requests(db, cutoff):
    """Round the coordinates the deliveries of requests closed before `cutoff` carried, as `purge` rounds the request's.

    For retention (`purge`); must run inside a write transaction. Notes were never kept here (`_with_notes`).
    """
    closed = "SELECT id FROM cit_requests WHERE state IN ('resolved', 'cancelled') AND closed_at < ?"
    rounded = "json_set(payload, '$.data.lat', ROUND(json_extract(payload, '$.data.lat'), 2)," \
              " '$.data.lon', ROUND(json_extract(payload, '$.data.lon'), 2))"
    return db.execute(f"UPDATE webhook_deliveries SET payload = {rounded} WHERE request_id IN ({closed})"
                      f" AND payload != {rounded}", [cutoff]).rowcount


# ---- Sending: the worker ----

_session = None


def _http():
    global _session
    if _session is None:
        _session = http.Session()
    return _session


def deliver_due(db, config, owner, limit=20):
    """Lease due deliveries, post them signed, and record each attempt; returns how many were tried."""
    t = now()
    if db.execute("SELECT 1 FROM webhook_deliveries WHERE state = 'pending' AND next_attempt_at <= ?"
                  " AND (lease_until IS NULL OR lease_until < ?) LIMIT 1", [t, t]).fetchone() is None:
        return 0
    with write_transaction(db):
        cursor = db.execute(
            "UPDATE webhook_deliveries SET lease_owner = ?, lease_until = ?"
            " WHERE id IN (SELECT id FROM webhook_deliveries WHERE state = 'pending' AND next_attempt_at <= ?"
            " AND (lease_until IS NULL OR lease_until < ?) ORDER BY next_attempt_at, id LIMIT ?)"
            " RETURNING id, endpoint_id, request_id, message_id, payload, attempts",
            [owner, t + 60, t, t, limit],
        )
        rows = [dict(zip([c[0] for c in cursor.description], r)) for r in cursor.fetchall()]
    for row in rows:
        endpoint = one(db, "SELECT url, secret, previous_secret, previous_secret_until, include_notes, disabled_at"
                           " FROM webhook_endpoints WHERE id = ?", [row["endpoint_id"]])
        if endpoint["include_notes"]:
            row["payload"] = _with_notes(db, row)
        status, error = _post(endpoint, row, config)
        _record(db, row, status, error)
    return len(rows)


def _request_reference(db, request_id):
    """Which request, for CAD: its id and CAD incident number, and nothing personal."""
    req = one(db, "SELECT id, cad_incident FROM cit_requests WHERE id = ?", [request_id])
    return {"id": req["id"], "cad_incident": req["cad_incident"]}


def _with_notes(db, row):
    """The payload with the call note, typed address and observations as they stand now (none once purged)."""
    body = json.loads(row["payload"])
    if body["type"].startswith("responder."):  # about the responder, never the scene's notes
        return row["payload"]
    req = one(db, "SELECT note, location_text, observations FROM cit_requests WHERE id = ?", [row["request_id"]])
    if req:
        body["data"].update(note=req["note"], location_text=req["location_text"],
                            observations=json.loads(req["observations"]))
    return json.dumps(body)


def _post(endpoint, row, config):
    """One signed POST; returns (HTTP status or None, error text)."""
    if endpoint["disabled_at"] is not None:
        return None, "endpoint disabled"
    # Checked again at each send: a name may point elsewhere since it was registered.
    problem = url_refusal(endpoint["url"], config)
    if problem:
        return None, problem
    sent_at = datetime.datetime.fromtimestamp(time.time(), datetime.UTC)
    signature = signatures(endpoint, row["message_id"], sent_at, row["payload"])
    headers = {"content-type": "application/json", "webhook-id": row["message_id"],
               "webhook-timestamp": str(int(sent_at.timestamp())), "webhook-signature": signature,
               "user-agent": "fieldapp-webhooks/1"}
    try:
        response = _http().post(endpoint["url"], data=row["payload"].encode(), headers=headers,
                                timeout=float(config.get("WEBHOOK_TIMEOUT", 5.0)), allow_redirects=False)
    except http.RequestException as e:
        return None, type(e).__name__
    return response.status_code, "" if 200 <= response.status_code < 300 else f"HTTP {response.status_code}"


def _record(db, row, status, error):
    attempts = row["attempts"] + 1
    t = now()
    if status is not None and 200 <= status < 300:
        state, next_at = "sent", None
    elif attempts < MAX_ATTEMPTS and error != "endpoint disabled":
        state, next_at = "pending", t + min(BACKOFF_MAX_S, BACKOFF_BASE_S ** attempts)
    else:
        state, next_at = "failed", None
    with write_transaction(db):
        db.execute(
            "UPDATE webhook_deliveries SET state = ?, attempts = ?, next_attempt_at = COALESCE(?, next_attempt_at),"
            " last_status = ?, last_error = ?, sent_at = CASE WHEN ? = 'sent' THEN ? ELSE sent_at END,"
            " lease_owner = NULL, lease_until = NULL WHERE id = ?",
            [state, attempts, next_at, status, error[:200], state, t, row["id"]],
        )


