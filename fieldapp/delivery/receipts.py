"""Delivery receipts: whether an alert reached a phone, and whether it was opened.

Owns `alert_receipts`. Each push to each device carries a random token; only
its SHA-256 is stored, bound to that alert (or test alert) and that device,
and it expires when the alert can no longer arrive. The service worker posts
the token back on `push` ("delivered") and on `notificationclick` ("seen"),
with no session: the token is the only credential, and each stage takes it
once. A receipt that matches nothing changes nothing and costs one probe of a
unique index.
"""
import hashlib
import secrets

from flask import current_app

from ..clock import now
from ..store.db import one, write_transaction

STAGES = ("delivered", "seen")
# secrets.token_urlsafe(24) gives 32 characters; anything far off is refused before hashing.
TOKEN_MAX = 64


class ReceiptRefused(Exception):
    """A receipt that changes nothing: (HTTP status, message)."""

    def __init__(self, status, message):
        super().__init__(message)
        self.status = status
        self.message = message


def _hash(token):
    return hashlib.sha256(token.encode()).hexdigest()


def issue(db, kind, user_id, subscription_id, request_id=None):
    """A new token for one push to one device; the caller puts it in the payload.

    Must run inside a write transaction. It expires when the alert can no longer
    arrive: the worker sends it for up to PUSH_TTL, and the push service holds
    it for up to PUSH_TTL more.
    """
    token = secrets.token_urlsafe(24)
    t = now()
    db.execute(
        "INSERT INTO alert_receipts (token_hash, kind, request_id, user_id, subscription_id, created_at, expires_at)"
        " VALUES (?, ?, ?, ?, ?, ?, ?)",
        [_hash(token), kind, request_id, user_id, subscription_id, t, t + 2 * current_app.config["PUSH_TTL"]],
    )
    return token


def record(db, token, stage, request_id):
    """Record one stage of a receipt; raises ReceiptRefused (and writes nothing) for a bad one.

    `request_id` is the alert the service worker says the token came with
    (None for a test alert): a token from another alert is refused.
    """
    if stage not in STAGES:
        raise ReceiptRefused(400, "A receipt is either 'delivered' or 'seen'.")
    if not isinstance(token, str) or not 16 <= len(token) <= TOKEN_MAX or not token.isascii():
        raise ReceiptRefused(400, "That receipt token is malformed.")
    t = now()
    with write_transaction(db):
        row = one(db, "SELECT id, request_id, expires_at, delivered_at, seen_at FROM alert_receipts WHERE token_hash = ?",
                  [_hash(token)])
        if row is None or row["request_id"] != request_id:
            raise ReceiptRefused(404, "No alert has that receipt token.")
        if row["expires_at"] < t:
            raise ReceiptRefused(410, "That receipt token has expired.")
        if row[f"{stage}_at"] is not None:
            raise ReceiptRefused(409, f"That alert was already recorded as {stage}.")
        # Seen implies delivered: a push service may hand over a push the worker never confirmed.
        db.execute(
            f"UPDATE alert_receipts SET {stage}_at = ?, delivered_at = COALESCE(delivered_at, ?) WHERE id = ?",
            [t, t, row["id"]],
        )
    return row["id"]


def counts(db, request_id):
    """Specialists whose devices confirmed this request's alert: {'delivered': n, 'seen': n}."""
    row = one(
        db,
        "SELECT COUNT(DISTINCT CASE WHEN delivered_at IS NOT NULL THEN user_id END) AS delivered,"
        " COUNT(DISTINCT CASE WHEN seen_at IS NOT NULL THEN user_id END) AS seen"
        " FROM alert_receipts WHERE request_id = ? AND kind = 'alert'",
        [request_id],
    )
    return {"delivered": row["delivered"] or 0, "seen": row["seen"] or 0}


def last_delivery(db, user_id):
    """When an alert (real or test) last reached any of this user's devices, or None."""
    return one(db, "SELECT MAX(delivered_at) AS at FROM alert_receipts WHERE user_id = ?", [user_id])["at"]


def last_deliveries(db):
    """{user_id: last confirmed delivery} for everyone who has one; the roster shows it."""
    return {r["user_id"]: r["at"] for r in db.query(
        "SELECT user_id, MAX(delivered_at) AS at FROM alert_receipts WHERE delivered_at IS NOT NULL GROUP BY user_id")}

