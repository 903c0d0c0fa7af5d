"""A person's devices: push subscriptions from subscribing to retirement, and vehicle-feed tokens.

Owns `push_subscriptions`, `retired_devices` and `device_tokens`. Officers
and supervisors subscribe too (an officer hears of their own request by
push), so a device belongs to an account, not to being on duty.
"""
import hashlib
import secrets

from flask import current_app

from ..clock import now
from ..store.db import one, write_transaction


class SubscriptionRefused(Exception):
    """A subscription that may not be saved; the message says why, to the user.

    409 when another account holds the endpoint (the browser then makes a new
    subscription of its own), 403 when the account has its most devices.
    """

    def __init__(self, message, status):
        super().__init__(message)
        self.status = status


def save_subscription(db, user_id, endpoint, p256dh, auth_secret, board_alerts=False):
    """Keep a device's push subscription for `user_id`, or refuse it.

    An endpoint another account holds is never moved: whoever knows a device's
    endpoint could otherwise take its alerts away from its owner. Each account
    holds at most PUSH_MAX_DEVICES, so one account cannot fill the sender's
    batches. Subscribing again clears the notice of a retired device. With
    `board_alerts` (a supervisor's), the device also gets a silent push
    whenever the board changes.
    """
    with write_transaction(db):
        holder = one(db, "SELECT user_id FROM push_subscriptions WHERE endpoint = ?", [endpoint])
        if holder is not None and holder["user_id"] != user_id:
            raise SubscriptionRefused("This device's alerts belong to another account.", 409)
        limit = current_app.config["PUSH_MAX_DEVICES"]
        if holder is None and device_count(db, user_id) >= limit:
            raise SubscriptionRefused(
                f"Alerts are already on for {limit} devices, the most one account may have."
                " On the Duty page, turn alerts off on every device, then enable them here again.",
                403,
            )
        db.execute(
            "INSERT INTO push_subscriptions (user_id, endpoint, p256dh, auth, created_at) VALUES (?, ?, ?, ?, ?)"
            " ON CONFLICT(endpoint) DO UPDATE SET p256dh = excluded.p256dh, auth = excluded.auth, failures = 0",
            [user_id, endpoint, p256dh, auth_secret, now()],
        )
        if board_alerts:
            db.execute("UPDATE push_subscriptions SET board_alerts = 1 WHERE endpoint = ? AND user_id = ?",
                       [endpoint, user_id])
        db.execute("DELETE FROM retired_devices WHERE user_id = ?", [user_id])


def device_count(db, user_id):
    """How many devices of this user have alerts on."""
    return one(db, "SELECT COUNT(*) AS n FROM push_subscriptions WHERE user_id = ?", [user_id])["n"]


def forget_device(db, user_id, endpoint):
    """Forget one of this user's devices; False when it has none with that endpoint."""
    cursor = db.execute("DELETE FROM push_subscriptions WHERE endpoint = ? AND user_id = ?", [endpoint, user_id])
    return cursor.rowcount > 0


def forget_devices(db, user_id):
    """Turn alerts off on every device of this user: a lost phone, the device limit, a disabled account."""
    db.execute("DELETE FROM push_subscriptions WHERE user_id = ?", [user_id])


def record_push_result(db, subscription_id, outcome, at):
    """Note how a send to this device went; retire a device that keeps failing.

    Only failures of the device's own subscription count (a malformed endpoint
    or keys, a refusal by the push service): an outage of the push service or
    the network fails every device at once and must not retire them all.
    Must run inside a write transaction.
    """
    if outcome.delivered:
        db.execute("UPDATE push_subscriptions SET last_success_at = ?, failures = 0 WHERE id = ?", [at, subscription_id])
    elif outcome.gone:
        retire_subscription(db, subscription_id, "the push service says the subscription has ended", at)
    elif outcome.device_failed:
        failures = db.execute(
            "UPDATE push_subscriptions SET failures = failures + 1 WHERE id = ? RETURNING failures", [subscription_id]
        ).fetchone()
        if failures and failures[0] >= current_app.config["PUSH_RETIRE_AFTER"]:
            retire_subscription(db, subscription_id, f"{failures[0]} sends in a row failed", at)


def retire_subscription(db, subscription_id, reason, at):
    """Delete a device that cannot receive alerts and keep a notice for its owner."""
    row = db.execute("DELETE FROM push_subscriptions WHERE id = ? RETURNING user_id", [subscription_id]).fetchone()
    if row is not None:
        db.execute("INSERT INTO retired_devices (user_id, at, reason) VALUES (?, ?, ?)", [row[0], at, reason])


def retired_devices(db, user_id):
    """This user's devices retired since they last subscribed, newest first."""
    return list(db.query("SELECT at, reason FROM retired_devices WHERE user_id = ? ORDER BY at DESC", [user_id]))


# ---- Vehicle-location feed tokens ----

def hash_token(token):
    """Device tokens are stored as SHA-256 hashes, never in the clear."""
    return hashlib.sha256(token.encode()).hexdigest()


def issue_device_token(db, user_id, label, lifetime_s):
    """A new bearer token for this user's position feed, valid `lifetime_s`; only its hash is kept."""
    token = secrets.token_urlsafe(32)
    db.execute(
        "INSERT INTO device_tokens (user_id, token_hash, label, created_at, expires_at) VALUES (?, ?, ?, ?, ?)",
        [user_id, hash_token(token), label, now(), now() + lifetime_s],
    )
    return token


def device_token_owner(db, token):
    """The enabled account {id, username} a valid, unexpired device token belongs to, or None."""
    return one(
        db,
        "SELECT u.id, u.username FROM device_tokens t JOIN users u ON u.id = t.user_id"
        " WHERE t.token_hash = ? AND u.disabled = 0 AND t.expires_at > ?",
        [hash_token(token), now()],
    )
