"""The API's routes: thin, each a key check, a call into the requests area, and JSON back.

Errors are RFC 9457 problem details (`problem()`); every call is audited with
the key's name, refused ones too.
"""
import json
import re
import types

from flask import current_app, g, request, url_for
from werkzeug.exceptions import Conflict, Forbidden, HTTPException, NotFound

from ..audit import log as audit
from ..store.db import get_db, write_transaction
from ..web.errors import problem
from ..requests import domain
from ..requests.dispatch import create_dispatch_request, dispatch_status, districts, open_dispatch_requests
from ..requests.forms import RequestRefused, check_new_request
from . import bp
from .keys import key_for, note_use
from .limits import api_limits, tell_of_a_limit
from .openapi import document

IDEMPOTENCY_KEY_RE = re.compile(r"^[A-Za-z0-9._:-]{1,100}$")


class Problem(HTTPException):
    """An API error with its status and detail, answered as application/problem+json; `retry_after` in seconds."""

    def __init__(self, status, detail, retry_after=None):
        super().__init__(detail)
        self.code = status
        self.retry_after = retry_after


@bp.errorhandler(HTTPException)
def _http_error(error):
    body, status, headers = problem(error.code, error.description or error.name)
    if getattr(error, "retry_after", None):
        headers["Retry-After"] = str(error.retry_after)
    return body, status, headers


def _key(scope, limit="API_READ_LIMIT"):
    """The calling integration's key, checked for `scope` and counted against its `limit`; a Problem otherwise.

    Cookies are never read. The scheme is case-insensitive (RFC 6750 and RFC 9110: some CADs send "bearer").
    """
    scheme, _, presented = request.headers.get("Authorization", "").partition(" ")
    presented = presented.strip()
    limits, address = api_limits(), request.remote_addr or "unknown"
    wait = limits.over("API_BAD_KEY_LIMIT", address)
    if wait:
        raise Problem(429, "Too many calls with a wrong API key from this address. Wait, then try again.", wait)
    if scheme.lower() != "bearer" or not presented:
        limits.take("API_BAD_KEY_LIMIT", address)
        raise Problem(401, "Send the API key as 'Authorization: Bearer <key>'.")
    key = key_for(get_db(), presented)
    if key is None:
        limits.take("API_BAD_KEY_LIMIT", address)
        raise Problem(401, "That API key is not valid.")
    g.api_key = key["name"]
    if key["revoked_at"] is not None:
        raise Problem(401, f"The API key {key['name']!r} has been revoked.")
    if scope not in json.loads(key["scopes"]):
        raise Problem(403, f"The API key {key['name']!r} does not have the {scope} scope.")
    wait = limits.take(limit, key["key_hash"])
    if wait:
        tell_of_a_limit(get_db(), key, limit, wait)
        raise Problem(429, f"The API key {key['name']!r} is over its limit of"
                           f" {current_app.config[limit]}. Wait {wait} seconds, then try again.", wait)
    return key


def _acting(key):
    """The key's account as the state machine sees a person."""
    return types.SimpleNamespace(id=key["user_id"], role=key["role"], display_name=f"CAD integration {key['name']}")


def _json_body():
    data = request.get_json(silent=True)
    if not isinstance(data, dict):
        raise Problem(400, "Send a JSON object with Content-Type: application/json.")
    return data


@bp.after_request
def _audit(response):
    """Every use of a key is audited with its name, whatever came of it."""
    name = g.get("api_key")
    if name:
        db = get_db()
        with write_transaction(db):
            note_use(db, name)
            audit.record(db, "api_call", f"api key {name}", f"{request.method} {request.path} {response.status_code}",
                         actor=(None, f"api:{name}"))
    return response


@bp.get("/openapi.json")
def openapi():
    """The OpenAPI 3.1 document of this API (no key needed)."""
    return document(districts(get_db()))


@bp.post("/requests")
def create_request():
    """Ask for CIT for a place, from CAD; the Idempotency-Key header makes a retry safe."""
    key = _key("requests:write", "API_WRITE_LIMIT")
    idempotency_key = request.headers.get("Idempotency-Key")
    if idempotency_key is not None and not IDEMPOTENCY_KEY_RE.match(idempotency_key):
        raise Problem(400, "The Idempotency-Key header is 1 to 100 letters, digits, or . _ : -")
    db = get_db()
    try:
        call = check_new_request(db, _json_body(), "api")
        request_id, created = create_dispatch_request(db, key["user_id"], call, idempotency_key)
    except RequestRefused as e:
        raise Problem(e.status, str(e)) from None
    except Conflict as e:
        raise Problem(409, e.description) from None
    location = url_for("api.read_request", request_id=request_id)
    return dispatch_status(db, request_id), 201 if created else 200, {"Location": location}


@bp.get("/requests")
def list_requests():
    """Every open request."""
    _key("requests:read")
    return {"requests": open_dispatch_requests(get_db())}


@bp.get("/requests/<int(max=9007199254740991):request_id>")
def read_request(request_id):
    """One request's state, times, counts, assignee's unit and disposition: an open one, or one this integration made.

    A closed request someone else made is none of a CAD's business (security
    review 2026-12-07, F11): it answers as if there were none, as the list does.
    """
    key = _key("requests:read")
    db = get_db()
    try:
        req = domain.get_request(db, request_id)
    except NotFound:
        req = None
    if req is None or not (req["state"] in domain.OPEN_STATES or req["requester_id"] == key["user_id"]):
        raise Problem(404, f"There is no CIT request {request_id} open, or made by this integration.")
    return dispatch_status(db, request_id)


@bp.post("/requests/<int(max=9007199254740991):request_id>/cancel")
def cancel_request(request_id):
    """Cancel an open request with one of the listed reasons."""
    key = _key("requests:write", "API_WRITE_LIMIT")
    data = _json_body()
    if not isinstance(data.get("reason"), str) or data["reason"] not in domain.CANCEL_REASONS:
        raise Problem(422, f"reason must be one of: {', '.join(domain.CANCEL_REASONS)}.")
    db = get_db()
    try:
        domain.move(db, request_id, "cancel", _acting(key), {"reason": data["reason"]})
    except NotFound:
        raise Problem(404, f"There is no CIT request {request_id}.") from None
    except (Conflict, Forbidden) as e:
        raise Problem(e.code, e.description) from None
    return dispatch_status(db, request_id)
