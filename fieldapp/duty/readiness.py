"""Will the alert reach this officer? The Duty page's readiness check, its test alert, and the
specialist's own backup channel (set by them, or by a coordinator for them).

The checks a browser alone can answer (permission, service worker, subscription,
Home Screen on iPhone) run in readiness.js; what the server knows (when an
alert last reached a phone, the channel, masked) is rendered here. A test
alert goes through the same outbox, worker, push and receipt as a real one.
"""
import hashlib
import json

from flask import Blueprint, abort, flash, redirect, request, url_for
from flask_login import current_user
from jinja2_fragments.flask import render_block

from ..delivery import backup_channel
from ..identity.accounts import user_by_id
from ..identity.access import role_required
from ..clock import now
from ..store.db import get_db, one, write_transaction
from ..web.formatting import ago_days
from ..web.htmx import is_htmx
from ..delivery.outbox import queue_message
from ..delivery import receipts
from ..delivery.outbox import wake_worker
from .devices import device_count

bp = Blueprint("readiness", __name__)

TEST_TOPIC = "fieldapp-test-alert"


def context(db, user_id):
    """What the Duty page's readiness part shows from the server."""
    return {
        "channel": backup_channel.masked_of(db, user_id),
        "last_delivery": receipts.last_delivery(db, user_id),
        "device_deliveries": device_deliveries(db, user_id),
    }


def device_deliveries(db, user_id):
    """{SHA-256 of a device's push endpoint: "3 days" since it last confirmed an alert, or None}.

    readiness.js hashes its own endpoint and finds its line: the page names no
    endpoint, and each device learns only when it itself last confirmed.
    """
    rows = db.query(
        "SELECT s.endpoint, (SELECT MAX(r.delivered_at) FROM alert_receipts r WHERE r.subscription_id = s.id) AS at"
        " FROM push_subscriptions s WHERE s.user_id = ?", [user_id])
    return {hashlib.sha256(r["endpoint"].encode()).hexdigest(): ago_days(r["at"]) if r["at"] else None for r in rows}


def send_test_alert(db, user_id):
    """Queue a test alert to every device of this user, each with its receipt token; returns when it was queued."""
    t = now()
    with write_transaction(db):
        for (subscription_id,) in db.execute("SELECT id FROM push_subscriptions WHERE user_id = ?", [user_id]).fetchall():
            payload = json.dumps({
                "kind": "test", "title": "Test alert", "body": "This phone receives CIT alerts. Nothing to do.",
                "url": url_for("duty.page"), "topic": TEST_TOPIC,
                "receipt": receipts.issue(db, "test", user_id, subscription_id),
            })
            queue_message(db, None, user_id, subscription_id, payload, TEST_TOPIC, t)
    wake_worker()
    return t


def test_result(db, user_id, since):
    """The first device to confirm the test alert sent at `since`: its round trip in seconds, or None."""
    row = one(db, "SELECT MIN(delivered_at - created_at) AS trip FROM alert_receipts"
              " WHERE user_id = ? AND kind = 'test' AND created_at >= ? AND delivered_at IS NOT NULL", [user_id, since])
    return row["trip"]


def _fragment(block, message, status=200, **fields):
    """The part of the Duty page that changed; without htmx, back to the page with the message."""
    if is_htmx():
        return render_block("duty/page.html", block, **fields), status
    flash(message)
    return redirect(url_for("duty.page"), 303)


def _test_block(test_since=None, test_trip=None, test_waited=0, test_error=None, status=200):
    message = test_error or ("Test alert received." if test_trip is not None else "Test alert sent.")
    return _fragment("test_alert", message, status, test_since=test_since, test_trip=test_trip, test_waited=test_waited,
                     test_error=test_error)


@bp.route("/duty/test-alert", methods=["POST"])
@role_required("cit", "supervisor")
def test_alert():
    """Send a test alert to this user's devices; the fragment then watches for its receipt."""
    db = get_db()
    if not device_count(db, current_user.id):
        return _test_block(test_error="No device of yours has alerts on: tap Enable alerts first.", status=409)
    return _test_block(test_since=send_test_alert(db, current_user.id))


@bp.route("/duty/test-alert/result")
@role_required("cit", "supervisor")
def test_alert_result():
    """The test alert's result, polled until a device confirms it."""
    try:
        since = float(request.args["since"])
    except (KeyError, ValueError):
        return _test_block(test_error="That test alert is unknown: send another.", status=400)
    trip = test_result(get_db(), current_user.id, since)
    waited = now() - since
    return _test_block(test_since=since, test_trip=trip, test_waited=waited)


@bp.route("/duty/channel", methods=["POST"])
@role_required("cit", "supervisor")
def own_channel():
    """Save or remove the signed-in specialist's backup channel."""
    db = get_db()
    message, status = _save_channel(db, current_user.id, current_user.id)
    return _fragment("channel", message, status, channel_message=message, **context(db, current_user.id))


@bp.route("/program/roster/<int:user_id>/channel", methods=["POST"])
@role_required("coordinator")
def channel_for(user_id):
    """A coordinator sets or removes a specialist's backup channel for them."""
    db = get_db()
    if user_by_id(db, user_id) is None:
        abort(404, description="There is no such account.")
    message, status = _save_channel(db, user_id, current_user.id)
    if status != 200:
        abort(status, description=message)
    flash(message)
    return redirect(url_for("program.officer", user_id=user_id), 303)


def _save_channel(db, user_id, set_by):
    """Save or remove the posted backup channel: (message, status)."""
    try:
        url = backup_channel.change_channel(db, user_id, request.form.get("url", ""), set_by)
    except backup_channel.ChannelRefused as refused:
        return str(refused), 422
    return ("Backup channel saved: " + backup_channel.masked(url)) if url else "Backup channel removed.", 200
