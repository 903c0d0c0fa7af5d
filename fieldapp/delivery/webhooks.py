"""Outbound webhooks: coordinators' endpoints, one signed delivery per request state change.

Every state change of a request (`requested`, `accepted`, `on_scene`,
`stabilised`, `resolved`, `cancelled`) is written as one `webhook_deliveries`
row per subscribed endpoint, in the same transaction as the change, so a change
never goes unsent and sending never blocks a request. The worker leases due rows
and posts them signed per the Standard Webhooks specification (the
`standardwebhooks` reference library signs), retrying with backoff up to a cap.

Endpoints must be https; their host names are resolved and every address must
be public, at registration and again before each send (the SSRF rules push
endpoints follow). `WEBHOOK_INSECURE_HOSTS` names hosts allowed over http and on
private or loopback addresses (the tests' loopback receiver).
"""
import base64
import datetime
import ipaddress
import json
import secrets
import socket
import time
import uuid

import requests as http
from flask import Blueprint, abort, current_app, redirect, render_template, request, url_for
from urllib3.exceptions import LocationParseError
from urllib3.util import parse_url

from ..audit import log as audit
from ..identity.access import role_required
from ..clock import now
from ..store.db import get_db, one, write_transaction
from .url_safety import is_public
from .webhook_secrets import signatures

# The timeline's events that are state changes, and the webhook event each one sends.
EVENTS = {"requested": "requested", "accepted": "accepted", "assigned": "accepted", "on_scene": "on_scene",
          "stabilised": "stabilised", "resolved": "resolved", "cancelled": "cancelled"}
EVENT_NAMES = ("requested", "accepted", "on_scene", "stabilised", "resolved", "cancelled")
MAX_ATTEMPTS = 8
BACKOFF_BASE_S = 2.0
BACKOFF_MAX_S = 300.0
MAX_URL = 2048

bp = Blueprint("webhooks", __name__, url_prefix="/webhooks")


# ---- Where a webhook may go ----

def url_refusal(url, config, resolve=socket.getaddrinfo):
    """Why `url` may not receive webhooks, or None when it may (the name is resolved and every address checked)."""
    if not isinstance(url, str) or not url or len(url) > MAX_URL or not url.isascii() or not url.isprintable():
        return "Give the endpoint as a full https:// URL."
    if "\\" in url or " " in url:
        return "The URL has characters a URL cannot have."
    try:
        parts = parse_url(url)
    except (LocationParseError, ValueError):
        return "That is not a URL."
    host = (parts.host or "").lower().strip("[]")
    if parts.auth is not None or parts.fragment is not None or not host:
        return "Give the URL without a user name, password or #fragment."
    allowed = host in config.get("WEBHOOK_INSECURE_HOSTS", ())
    if parts.scheme != "https" and not (allowed and parts.scheme == "http"):
        return "Webhook endpoints must use https."
    try:
        infos = resolve(host, parts.port or (443 if parts.scheme == "https" else 80), proto=socket.IPPROTO_TCP)
    except (OSError, UnicodeError):
        return f"The host {host} could not be resolved."
    for info in infos:
        address = ipaddress.ip_address(info[4][0].split("%")[0])
        if not is_public(address) and not allowed:
            return f"The host {host} resolves to a private or reserved address ({address}); webhooks go to public hosts only."
    return None


# ---- Endpoints (coordinators) ----

def new_secret():
    """A Standard Webhooks secret: 'whsec_' and 32 random bytes in base64."""
    return "whsec_" + base64.b64encode(secrets.token_bytes(32)).decode()


def add_endpoint(db, url, events, include_notes=False):
    """Register an endpoint; returns (id, secret). The caller shows the secret once."""
    problem = url_refusal(url, current_app.config)
    if problem:
        raise ValueError(problem)
    events = [e for e in EVENT_NAMES if e in set(events)]
    if not events:
        raise ValueError("Choose at least one event to send.")
    secret = new_secret()
    cursor = db.execute(
        "INSERT INTO webhook_endpoints (url, events, secret, include_notes, created_at) VALUES (?, ?, ?, ?, ?)",
        [url, json.dumps(events), secret, int(bool(include_notes)), now()],
    )
    return cursor.lastrowid, secret


def endpoints(db):
    """Every endpoint, newest first, with its delivery counts."""
    return list(db.query(
        "SELECT e.*, (SELECT COUNT(*) FROM webhook_deliveries d WHERE d.endpoint_id = e.id AND d.state = 'sent') AS sent,"
        " (SELECT COUNT(*) FROM webhook_deliveries d WHERE d.endpoint_id = e.id AND d.state = 'failed') AS failed"
        " FROM webhook_endpoints e ORDER BY e.id DESC"))


def deliveries(db, endpoint_id, limit=100):
    """An endpoint's latest deliveries, newest first."""
    return list(db.query("SELECT * FROM webhook_deliveries WHERE endpoint_id = ? ORDER BY id DESC LIMIT ?",
                         [endpoint_id, limit]))


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
    data = _describe_request(db, request_id)
    # Never the notes here: a stored payload would outlive `purge`. They are added at each send (`_with_notes`).
    payload = json.dumps({
        "type": f"request.{event}",
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


def _with_notes(db, row):
    """The payload with the call note, typed address and observations as they stand now (none once purged)."""
    body = json.loads(row["payload"])
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


# ---- Pages ----

@bp.route("")
@role_required("coordinator")
def index():
    """The endpoints, and the form to add one."""
    return render_template("webhooks/index.html", endpoints=endpoints(get_db()), events=EVENT_NAMES)


@bp.route("", methods=["POST"])
@role_required("coordinator")
def create():
    """Register an endpoint and show its signing secret, once."""
    db = get_db()
    form = request.form
    try:
        with write_transaction(db):
            endpoint_id, secret = add_endpoint(db, form.get("url", "").strip(), form.getlist("events"),
                                               bool(form.get("include_notes")))
            audit.record(db, "webhook_added", f"webhook {endpoint_id}", form.get("url", "").strip()[:200])
    except ValueError as e:
        return render_template("webhooks/index.html", endpoints=endpoints(db), events=EVENT_NAMES, error=str(e),
                               form=form), 400
    return render_template("webhooks/endpoint.html", endpoint=_endpoint(db, endpoint_id),
                           deliveries=[], secret=secret), 201


def _endpoint(db, endpoint_id):
    row = one(db, "SELECT * FROM webhook_endpoints WHERE id = ?", [endpoint_id])
    if row is None:
        abort(404, description="There is no webhook endpoint with that number.")
    row["events"] = json.loads(row["events"])
    return row


@bp.route("/<int:endpoint_id>")
@role_required("coordinator")
def page(endpoint_id):
    """One endpoint and its latest deliveries."""
    db = get_db()
    return render_template("webhooks/endpoint.html", endpoint=_endpoint(db, endpoint_id),
                           deliveries=deliveries(db, endpoint_id))


@bp.route("/<int:endpoint_id>/disable", methods=["POST"])
@role_required("coordinator")
def disable(endpoint_id):
    """Stop sending to an endpoint; its history stays."""
    db = get_db()
    _endpoint(db, endpoint_id)
    with write_transaction(db):
        db.execute("UPDATE webhook_endpoints SET disabled_at = COALESCE(disabled_at, ?) WHERE id = ?", [now(), endpoint_id])
        audit.record(db, "webhook_disabled", f"webhook {endpoint_id}")
    return redirect(url_for("webhooks.page", endpoint_id=endpoint_id), 303)


def init_app(app):
    """Webhook settings."""
    app.config.setdefault("WEBHOOK_INSECURE_HOSTS", ())
    app.config.setdefault("WEBHOOK_TIMEOUT", 5.0)
