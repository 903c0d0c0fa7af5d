"""Webhook endpoints: where a webhook may go, and the coordinators' endpoints (owns `webhook_endpoints`).

Endpoints must be https; their host names are resolved and every address must
be public, at registration and again before each send (the SSRF rules push
endpoints follow). `WEBHOOK_INSECURE_HOSTS` names hosts allowed over http and on
private or loopback addresses (the tests' loopback receiver). What is sent to
them, and when, is webhooks.py's.
"""
import base64
import ipaddress
import json
import secrets
import socket

from flask import abort, current_app
from urllib3.exceptions import LocationParseError
from urllib3.util import parse_url

from ..audit import log as audit
from ..clock import now
from ..store.db import one, write_transaction
from .url_safety import is_public

# The state changes an endpoint may subscribe to (webhooks.EVENTS maps the timeline's events onto them).
EVENT_NAMES = ("requested", "accepted", "on_scene", "stabilised", "resolved", "cancelled", "check_in_missed")
# Events about the responder rather than the request's state: `responder.<name>`, the rest `request.<name>`.
RESPONDER_EVENTS = ("check_in_missed",)


def event_type(name):
    """The webhook's `type` for an event name: request.on_scene, responder.check_in_missed."""
    return f"{'responder' if name in RESPONDER_EVENTS else 'request'}.{name}"
MAX_URL = 2048


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


def register_endpoint(db, url, events, include_notes=False):
    """A coordinator adds an endpoint: added and audited in one transaction; returns (id, secret).

    ValueError says what is wrong with the URL or the events; nothing is written then.
    """
    with write_transaction(db):
        endpoint_id, secret = add_endpoint(db, url, events, include_notes)
        audit.record(db, "webhook_added", f"webhook {endpoint_id}", url[:200])
    return endpoint_id, secret


def disable_endpoint(db, endpoint_id):
    """Stop sending to an endpoint (its history stays), audited; NotFound if there is none."""
    endpoint(db, endpoint_id)
    with write_transaction(db):
        db.execute("UPDATE webhook_endpoints SET disabled_at = COALESCE(disabled_at, ?) WHERE id = ?", [now(), endpoint_id])
        audit.record(db, "webhook_disabled", f"webhook {endpoint_id}")


def endpoint(db, endpoint_id):
    """One endpoint with its events as a list, or NotFound."""
    row = one(db, "SELECT * FROM webhook_endpoints WHERE id = ?", [endpoint_id])
    if row is None:
        abort(404, description="There is no webhook endpoint with that number.")
    row["events"] = json.loads(row["events"])
    return row


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
