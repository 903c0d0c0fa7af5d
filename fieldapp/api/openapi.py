"""The OpenAPI 3.1 document of /api/v1/, with the webhook payload as JSON Schema.

Kept true by tests/test_api.py, which runs schemathesis against the live app
with it: every response must match what is written here.
"""
from ..requests.domain import CANCEL_REASONS, DISPOSITIONS, STATE_LABELS
from ..requests.forms import MAX_LOCATION_TEXT, MAX_NOTE
from ..delivery.webhook_endpoints import EVENT_NAMES, RESPONDER_EVENTS, event_type

_TIME = {"type": ["number", "null"], "description": "Unix time in seconds, or null until it happens."}
_PROBLEM = {"$ref": "#/components/responses/Problem"}
_TOO_MANY = {"$ref": "#/components/responses/TooMany"}

REQUEST_STATUS = {
    "type": "object",
    "required": ["id", "cad_incident", "state", "created_at", "accepted_at", "on_scene_at", "stabilised_at",
                 "closed_at", "lat", "lon", "district", "alerted", "accepted", "assignee_unit", "disposition",
                 "cancel_reason"],
    "properties": {
        "id": {"type": "integer"},
        "cad_incident": {"type": ["string", "null"], "description": "Null for a request an officer made by tapping."},
        "state": {"type": "string", "enum": list(STATE_LABELS)},
        "created_at": {"type": "number"},
        "accepted_at": _TIME, "on_scene_at": _TIME, "stabilised_at": _TIME,
        "closed_at": {**_TIME, "description": "When it was resolved or cancelled."},
        "lat": {"type": ["number", "null"]}, "lon": {"type": ["number", "null"]},
        "district": {"type": ["string", "null"]},
        "alerted": {"type": "integer", "minimum": 0, "description": "CIT officers alerted so far."},
        "accepted": {"type": "integer", "minimum": 0, "description": "Accepts and assignments so far."},
        "assignee_unit": {"type": ["string", "null"], "description": "The unit of the CIT officer who has it."},
        "disposition": {"type": ["string", "null"], "enum": [*DISPOSITIONS, None]},
        "cancel_reason": {"type": ["string", "null"], "enum": [*CANCEL_REASONS, None]},
    },
}

def request_create(districts):
    """The body of a new request; `districts` are the agency's, so the document names them."""
    place = [{"required": ["lat", "lon"]}]
    properties = {
        "cad_incident": {"type": "string", "pattern": r"^[A-Za-z0-9][A-Za-z0-9._:/-]{0,39}$"},
        "lat": {"type": "number", "minimum": -90, "maximum": 90},
        "lon": {"type": "number", "minimum": -180, "maximum": 180},
        "location_text": {"type": "string", "maxLength": MAX_LOCATION_TEXT, "pattern": r"\S",
                          "description": "The address as typed."},
        "note": {"type": "string", "maxLength": MAX_NOTE, "description": "A short call note."},
        "weapon": {"type": "boolean"}, "medical": {"type": "boolean"}, "juvenile": {"type": "boolean"},
    }
    if districts:
        properties["district"] = {"type": "string", "enum": list(districts), "description": "One of the agency's districts."}
        place.append({"required": ["location_text", "district"]})
    return {
        "type": "object",
        "additionalProperties": False,
        "required": ["cad_incident"],
        "description": "A place is needed: lat and lon, or location_text together with district.",
        "properties": properties,
        "anyOf": place,
        "dependentRequired": {"lat": ["lon"], "lon": ["lat"]},
    }

WEBHOOK_EVENT = {
    "type": "object",
    "required": ["type", "timestamp", "data"],
    "properties": {
        "type": {"type": "string", "enum": [event_type(e) for e in EVENT_NAMES if e not in RESPONDER_EVENTS]},
        "timestamp": {"type": "string", "format": "date-time"},
        "data": {
            "allOf": [{"$ref": "#/components/schemas/RequestStatus"}],
            "properties": {
                "note": {"type": "string", "description": "Only to endpoints configured to receive notes."},
                "location_text": {"type": "string", "description": "Only to endpoints configured to receive notes."},
                "observations": {"type": "array", "items": {"type": "object"},
                                 "description": "Checklist observations; only to endpoints configured to receive notes."},
            },
        },
    },
}

# About the CIT officer on a request, not its state: which request, and nothing personal (safety/timer.py).
RESPONDER_EVENT = {
    "type": "object",
    "required": ["type", "timestamp", "data"],
    "properties": {
        "type": {"type": "string", "enum": [event_type(e) for e in RESPONDER_EVENTS]},
        "timestamp": {"type": "string", "format": "date-time"},
        "data": {"type": "object", "required": ["id", "cad_incident"], "additionalProperties": False, "properties": {
            "id": {"type": "integer"}, "cad_incident": {"type": ["string", "null"]}}},
    },
}


def _operation(summary, scope, responses, **more):
    return {"summary": summary, "security": [{"apiKey": [scope]}],
            "responses": {**responses, "401": _PROBLEM, "403": _PROBLEM, "429": _TOO_MANY}, **more}


def document(districts=()):
    """The whole document, as a dict."""
    one_request = {"description": "The request.", "content": {"application/json": {
        "schema": {"$ref": "#/components/schemas/RequestStatus"}}}}
    request_id = {"name": "request_id", "in": "path", "required": True, "schema": {"type": "integer", "minimum": 1, "maximum": 9007199254740991}}
    webhook = {"post": {
        "summary": "A request changed state (Standard Webhooks: webhook-id, webhook-timestamp, webhook-signature).",
        "requestBody": {"content": {"application/json": {"schema": {"$ref": "#/components/schemas/WebhookEvent"}}}},
        "responses": {"200": {"description": "Any 2xx acknowledges; anything else is retried with backoff."}},
    }}
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "fieldapp CAD API", "version": "1",
            "description": "Ask for a CIT officer from CAD and follow the request. Keys are per integration, sent as "
                           "'Authorization: Bearer <key>'. Errors are RFC 9457 problem details. Each key may make "
                           "API_READ_LIMIT reads and API_WRITE_LIMIT creates and cancels (120 and 30 a minute unless "
                           "the agency says otherwise); past that, 429 with Retry-After. Answers are never to be "
                           "cached (Cache-Control: no-store). Vehicle positions "
                           "(AVL) go to the separate feed POST /api/units/{username}/location with a device token; "
                           "see README.",
        },
        "servers": [{"url": "/"}],
        "paths": {
            "/api/v1/requests": {
                "post": _operation(
                    "Ask for CIT for a 911 call", "requests:write",
                    {"201": {**one_request, "headers": {"Location": {"schema": {"type": "string"}}}},
                     "200": {**one_request, "description": "The same Idempotency-Key and body were sent before."},
                     "400": _PROBLEM, "409": _PROBLEM, "413": _PROBLEM, "415": _PROBLEM, "422": _PROBLEM},
                    parameters=[{"name": "Idempotency-Key", "in": "header", "required": False,
                                 "schema": {"type": "string", "pattern": r"^[A-Za-z0-9._:-]{1,100}$"}}],
                    requestBody={"required": True, "content": {"application/json": {
                        "schema": {"$ref": "#/components/schemas/RequestCreate"}}}},
                ),
                "get": _operation("Every open request", "requests:read", {"200": {
                    "description": "Open requests, oldest first.", "content": {"application/json": {"schema": {
                        "type": "object", "required": ["requests"], "properties": {"requests": {
                            "type": "array", "items": {"$ref": "#/components/schemas/RequestStatus"}}}}}}}}),
            },
            "/api/v1/requests/{request_id}": {
                "get": _operation("One request: an open one, or one this integration made", "requests:read",
                                  {"200": one_request, "404": _PROBLEM}, parameters=[request_id]),
            },
            "/api/v1/requests/{request_id}/cancel": {
                "post": _operation(
                    "Cancel an open request", "requests:write",
                    {"200": one_request, "400": _PROBLEM, "404": _PROBLEM, "409": _PROBLEM, "413": _PROBLEM,
                     "415": _PROBLEM, "422": _PROBLEM},
                    parameters=[request_id],
                    requestBody={"required": True, "content": {"application/json": {"schema": {
                        "type": "object", "additionalProperties": False, "required": ["reason"],
                        "properties": {"reason": {"type": "string", "enum": list(CANCEL_REASONS)}}}}}},
                ),
            },
        },
        "webhooks": {"requestChanged": webhook, "responderCheckInMissed": {"post": {
            **webhook["post"], "requestBody": {"content": {"application/json": {
                "schema": {"$ref": "#/components/schemas/ResponderEvent"}}}},
            "summary": "The CIT officer on scene missed a check-in; repeats until contact is made (Standard Webhooks)."}}},
        "components": {
            "securitySchemes": {"apiKey": {"type": "http", "scheme": "bearer",
                                           "description": "Scopes: requests:read, requests:write."}},
            "schemas": {"RequestStatus": REQUEST_STATUS, "RequestCreate": request_create(districts), "WebhookEvent": WEBHOOK_EVENT,
                        "ResponderEvent": RESPONDER_EVENT,
                        "Problem": {"type": "object", "required": ["type", "title", "status", "detail"], "properties": {
                            "type": {"type": "string"}, "title": {"type": "string"}, "status": {"type": "integer"},
                            "detail": {"type": "string"}}}},
            "responses": {
                "Problem": {"description": "RFC 9457 problem details.", "content": {
                    "application/problem+json": {"schema": {"$ref": "#/components/schemas/Problem"}}}},
                "TooMany": {
                    "description": "Over the key's limit, or too many wrong keys from this address: wait, then retry.",
                    "headers": {"Retry-After": {"required": True, "description": "Seconds to wait.",
                                                "schema": {"type": "integer", "minimum": 1}}},
                    "content": {"application/problem+json": {"schema": {"$ref": "#/components/schemas/Problem"}}}},
            },
        },
    }
