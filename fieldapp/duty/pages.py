"""The Duty area's routes: on and off duty, positions and the vehicle feed, push subscriptions.

Thin routes: each checks its input, makes one call into status.py,
positions.py or devices.py, and renders. The readiness part of the Duty page
has its own blueprint (readiness.py).
"""
import base64

from flask import Blueprint, abort, current_app, request
from flask_login import current_user

from ..delivery.push import endpoint_allowed
from ..districts import all_districts
from ..geo import parse_coordinates
from ..identity.access import role_required
from ..store.db import get_db
from ..web.htmx import page_or_block
from . import devices
from .positions import record_position, units_cli
from . import readiness
from .status import duty_status, go_off_duty, go_on_duty
from ..delivery.push import is_p256_point

bp = Blueprint("duty", __name__)


def _panel(message=None, status=200):
    db = get_db()
    return (
        page_or_block(
            "duty/page.html",
            "panel",
            duty=duty_status(db, current_user.id),
            districts=all_districts(db),
            devices=devices.device_count(db, current_user.id),
            retired=devices.retired_devices(db, current_user.id),
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


@bp.route("/api/units/<username>/location", methods=["POST"])
def unit_location(username):
    """A department's vehicle-location (AVL/MDT) feed reports a unit's position."""
    header = request.headers.get("Authorization", "")
    if header[:7].lower() != "bearer ":  # the scheme is case-insensitive (RFC 6750)
        abort(401, description="Send the device token as 'Authorization: Bearer <token>'.")
    db = get_db()
    owner = devices.device_token_owner(db, header[7:].strip())
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
    _save_posted_subscription(board_alerts=True)
    return {"ok": True}, 201


def _save_posted_subscription(board_alerts=False):
    """Check and keep the posted subscription (4xx on anything wrong)."""
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
        devices.save_subscription(get_db(), current_user.id, endpoint, p256dh, auth_secret, board_alerts)
    except devices.SubscriptionRefused as e:
        abort(e.status, description=str(e))


@bp.route("/duty/devices/forget", methods=["POST"])
@role_required("cit", "supervisor")
def forget_devices():
    """Turn alerts off on every device of this account: for a lost phone, or when the device limit is reached."""
    devices.forget_devices(get_db(), current_user.id)
    return _panel("Alerts are off on every device. Tap Enable alerts on each device you use.")


@bp.route("/push/subscriptions", methods=["DELETE"])
@role_required("officer", "cit", "supervisor")
def unsubscribe():
    """Forget one of this user's devices."""
    data = request.get_json(silent=True)
    if not isinstance(data, dict) or not isinstance(data.get("endpoint"), str):
        abort(400, description="Send {\"endpoint\": ...} as JSON.")
    if not devices.forget_device(get_db(), current_user.id, data["endpoint"]):
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


def init_app(app):
    """The `units` commands."""
    app.cli.add_command(units_cli)
