"""Duty: specialists going on and off duty, where they are, and their push subscriptions."""
import base64
import hashlib
import secrets

import click
from flask.cli import AppGroup
from flask import Blueprint, abort, current_app, request
from flask_login import current_user

from ..identity.accounts import user_by_username
from ..identity.access import role_required
from ..clock import now
from ..store.db import connect, get_db, one, write_transaction
from ..districts import all_districts
from ..geo import parse_coordinates
from ..web.htmx import page_or_block
from ..delivery.push import endpoint_allowed, is_p256_point

bp = Blueprint("duty", __name__)


def duty_status(db, user_id):
    """The specialist's duty row joined with nothing; a blank one if never on duty."""
    return one(db, "SELECT * FROM duty WHERE user_id = ?", [user_id]) or {"user_id": user_id, "on_duty": 0, "district": None}


def districts_chosen(db):
    """The districts specialists have chosen on the duty page (on duty or not)."""
    return [r["district"] for r in db.query("SELECT DISTINCT district FROM duty WHERE district IS NOT NULL")]


def own_position(db, user_id):
    """(lat, lon) this user's device last sent, or (None, None)."""
    row = one(db, "SELECT lat, lon FROM duty WHERE user_id = ?", [user_id])
    return (row["lat"], row["lon"]) if row else (None, None)


def go_on_duty(db, user_id, district=None):
    """Mark a specialist on duty, optionally in a district."""
    if district and not one(db, "SELECT name FROM districts WHERE name = ?", [district]):
        raise ValueError(f"There is no district called {district!r}.")
    db.execute(
        "INSERT INTO duty (user_id, on_duty, district, since) VALUES (?, 1, ?, ?)"
        " ON CONFLICT(user_id) DO UPDATE SET on_duty = 1, district = excluded.district, since = excluded.since",
        [user_id, district or None, now()],
    )


def go_off_duty(db, user_id):
    """Mark a specialist off duty: they are no longer alerted."""
    db.execute("UPDATE duty SET on_duty = 0, since = ? WHERE user_id = ?", [now(), user_id])


def stand_down_everywhere(db, user_id):
    """Take an account off duty and forget every device it subscribed (a disabled account).

    A lost phone then stops receiving alerts even if the account comes back.
    """
    db.execute("UPDATE duty SET on_duty = 0 WHERE user_id = ?", [user_id])
    db.execute("DELETE FROM push_subscriptions WHERE user_id = ?", [user_id])


def record_position(db, user_id, lat, lon, accuracy, source):
    """Keep a specialist's latest position with its time, accuracy and source."""
    db.execute(
        "INSERT INTO duty (user_id, lat, lon, accuracy_m, position_at, position_source) VALUES (?, ?, ?, ?, ?, ?)"
        " ON CONFLICT(user_id) DO UPDATE SET lat = excluded.lat, lon = excluded.lon,"
        " accuracy_m = excluded.accuracy_m, position_at = excluded.position_at, position_source = excluded.position_source",
        [user_id, lat, lon, accuracy, now(), source],
    )


def forget_positions_before(db, cutoff):
    """Clear every position reported before `cutoff`: alerting no longer uses it, so nothing needs it."""
    db.execute(
        "UPDATE duty SET lat = NULL, lon = NULL, accuracy_m = NULL, position_at = NULL, position_source = NULL"
        " WHERE position_at < ?",
        [cutoff],
    )


def coverage(db):
    """Specialists who may be alerted now: {'total': n, 'districts': [(name, n)]}."""
    # Imported here: the requests area's pages reach the program pages, which import duty.
    from ..requests.selection import eligible_counts

    total, by_district = eligible_counts(db)
    return {"total": total, "districts": by_district}


def _panel(message=None, status=200):
    from . import readiness  # the delivery part of the page; it imports the requests area, which must load first

    db = get_db()
    return (
        page_or_block(
            "duty/page.html",
            "panel",
            duty=duty_status(db, current_user.id),
            districts=all_districts(db),
            devices=one(db, "SELECT COUNT(*) AS n FROM push_subscriptions WHERE user_id = ?", [current_user.id])["n"],
            retired=retired_devices(db, current_user.id),
            message=message,
            **readiness.context(db, current_user.id),
        ),
        status,
    )


@bp.route("/duty")
@role_required("cit", "supervisor")
def page():
    """The specialist's duty page: on or off duty, district, alerts."""
    return _panel()


@bp.route("/duty/on", methods=["POST"])
@role_required("cit", "supervisor")
def on():
    """Go on duty."""
    try:
        go_on_duty(get_db(), current_user.id, request.form.get("district") or None)
    except ValueError as e:
        return _panel(str(e), 400)
    return _panel("You are on duty. Keep this app open so your position stays fresh.")


@bp.route("/duty/off", methods=["POST"])
@role_required("cit", "supervisor")
def off():
    """Go off duty."""
    go_off_duty(get_db(), current_user.id)
    return _panel("You are off duty. You will not be alerted.")


def _position_from(data):
    if not isinstance(data, dict):
        abort(400, description="Send a position as JSON or a form with lat and lon.")
    try:
        return parse_coordinates(data.get("lat"), data.get("lon"), data.get("accuracy"))
    except ValueError as e:
        abort(400, description=str(e))


@bp.route("/duty/location", methods=["POST"])
@role_required("cit", "supervisor")
def location():
    """The device reports where it is (throttled by the app to about once a minute or 200 m)."""
    lat, lon, accuracy = _position_from(request.get_json(silent=True) if request.is_json else request.form)
    record_position(get_db(), current_user.id, lat, lon, accuracy, "device")
    return {"ok": True}


def hash_token(token):
    """Device tokens are stored as SHA-256 hashes, never in the clear."""
    return hashlib.sha256(token.encode()).hexdigest()


@bp.route("/api/units/<username>/location", methods=["POST"])
def unit_location(username):
    """A department's vehicle-location (AVL/MDT) feed reports a unit's position."""
    header = request.headers.get("Authorization", "")
    if header[:7].lower() != "bearer ":  # the scheme is case-insensitive (RFC 6750)
        abort(401, description="Send the device token as 'Authorization: Bearer <token>'.")
    db = get_db()
    owner = one(
        db,
        "SELECT u.id, u.username FROM device_tokens t JOIN users u ON u.id = t.user_id"
        " WHERE t.token_hash = ? AND u.disabled = 0 AND t.expires_at > ?",
        [hash_token(header[7:].strip()), now()],
    )
    if owner is None:
        abort(401, description="That device token is not valid or has expired; ask for a new one.")
    if owner["username"].lower() != username.lower():
        abort(403, description="That device token belongs to another unit.")
    lat, lon, accuracy = _position_from(request.get_json(silent=True))
    record_position(db, owner["id"], lat, lon, accuracy, "avl")
    return {"ok": True}


@bp.route("/push/subscriptions", methods=["POST"])
@role_required("officer", "cit", "supervisor")  # an officer hears of their own request by push
def subscribe():
    """Store a browser's PushSubscription.toJSON(); one user may have several devices."""
    _save_posted_subscription()
    return {"ok": True}, 201


@bp.route("/push/subscriptions/board", methods=["POST"])
@role_required("supervisor")
def subscribe_board():
    """The same, and this device also gets a silent push whenever the board changes."""
    endpoint = _save_posted_subscription()
    get_db().execute("UPDATE push_subscriptions SET board_alerts = 1 WHERE endpoint = ? AND user_id = ?",
                     [endpoint, current_user.id])
    return {"ok": True}, 201


def _save_posted_subscription():
    """Check and keep the posted subscription (4xx on anything wrong); returns its endpoint."""
    data = request.get_json(silent=True)
    if not isinstance(data, dict):
        abort(400, description="Send the subscription as JSON.")
    endpoint = data.get("endpoint")
    keys = data.get("keys") if isinstance(data.get("keys"), dict) else {}
    if not isinstance(endpoint, str) or len(endpoint) > 2048 or not endpoint_allowed(endpoint, current_app.config):
        abort(400, description="The push endpoint is not on a known push service.")
    p256dh, auth_secret = keys.get("p256dh"), keys.get("auth")
    if not (_is_key(p256dh, 65) and _is_key(auth_secret, 16) and is_p256_point(p256dh)):
        abort(400, description="The subscription keys are missing or malformed.")
    try:
        save_subscription(get_db(), current_user.id, endpoint, p256dh, auth_secret)
    except SubscriptionRefused as e:
        abort(e.status, description=str(e))
    return endpoint


class SubscriptionRefused(Exception):
    """A subscription that may not be saved; the message says why, to the user.

    409 when another account holds the endpoint (the browser then makes a new
    subscription of its own), 403 when the account has its most devices.
    """

    def __init__(self, message, status):
        super().__init__(message)
        self.status = status


def save_subscription(db, user_id, endpoint, p256dh, auth_secret):
    """Keep a device's push subscription for `user_id`, or refuse it.

    An endpoint another account holds is never moved: whoever knows a device's
    endpoint could otherwise take its alerts away from its owner. Each account
    holds at most PUSH_MAX_DEVICES, so one account cannot fill the sender's
    batches. Subscribing again clears the notice of a retired device.
    """
    with write_transaction(db):
        holder = one(db, "SELECT user_id FROM push_subscriptions WHERE endpoint = ?", [endpoint])
        if holder is not None and holder["user_id"] != user_id:
            raise SubscriptionRefused("This device's alerts belong to another account.", 409)
        limit = current_app.config["PUSH_MAX_DEVICES"]
        count = one(db, "SELECT COUNT(*) AS n FROM push_subscriptions WHERE user_id = ?", [user_id])["n"]
        if holder is None and count >= limit:
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
        db.execute("DELETE FROM retired_devices WHERE user_id = ?", [user_id])


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


@bp.route("/duty/devices/forget", methods=["POST"])
@role_required("cit", "supervisor")
def forget_devices():
    """Turn alerts off on every device of this account: for a lost phone, or when the device limit is reached."""
    get_db().execute("DELETE FROM push_subscriptions WHERE user_id = ?", [current_user.id])
    return _panel("Alerts are off on every device. Tap Enable alerts on each device you use.")


@bp.route("/push/subscriptions", methods=["DELETE"])
@role_required("officer", "cit", "supervisor")
def unsubscribe():
    """Forget one of this user's devices."""
    data = request.get_json(silent=True)
    if not isinstance(data, dict) or not isinstance(data.get("endpoint"), str):
        abort(400, description="Send {\"endpoint\": ...} as JSON.")
    cursor = get_db().execute(
        "DELETE FROM push_subscriptions WHERE endpoint = ? AND user_id = ?", [data["endpoint"], current_user.id]
    )
    if cursor.rowcount == 0:
        abort(404, description="No such subscription for this user.")
    return {"ok": True}


def _is_key(value, length):
    """A base64url string that decodes to exactly `length` bytes."""
    if not isinstance(value, str) or len(value) > 200:
        return False
    try:
        return len(base64.urlsafe_b64decode(value + "=" * (-len(value) % 4))) == length
    except ValueError:
        return False


@click.group("units", cls=AppGroup)
def units_cli():
    """Vehicle-location (AVL/MDT) feed tokens."""


@units_cli.command("token")
@click.argument("username")
@click.option("--label", default="", help="Which device or feed holds the token.")
@click.option("--days", type=click.IntRange(1, 3650), default=None, help="Days until it expires (default AVL_TOKEN_DAYS, 90).")
def units_token(username, label, days):
    """Create a bearer token for USERNAME's position feed; it is shown once.

    Tokens expire, and disabling the account revokes them, so an account
    enabled again needs a new one.
    """
    db = connect(current_app.config["DATABASE"])
    user = user_by_username(db, username)
    if user is None:
        raise click.ClickException(f"No account named {username!r}.")
    token = secrets.token_urlsafe(32)
    lifetime = (days or current_app.config["AVL_TOKEN_DAYS"]) * 86400
    db.execute(
        "INSERT INTO device_tokens (user_id, token_hash, label, created_at, expires_at) VALUES (?, ?, ?, ?, ?)",
        [user["id"], hash_token(token), label, now(), now() + lifetime],
    )
    click.echo(token)


def init_app(app):
    """Device limits and the `units` commands."""
    # Enough for a phone, a tablet and a car computer, with room for a replacement.
    app.config.setdefault("PUSH_MAX_DEVICES", 5)
    # Sends in a row that this device's subscription made fail before it is retired.
    app.config.setdefault("PUSH_RETIRE_AFTER", 3)
    app.config.setdefault("AVL_TOKEN_DAYS", 90)
    app.cli.add_command(units_cli)
