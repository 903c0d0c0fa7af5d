"""A webhook endpoint's signing secret: rotating it, and signing with the old one too while the receiver changes over.

Owns the secret columns of `webhook_endpoints` (the endpoints themselves are
webhooks.py's). Standard Webhooks lets a `webhook-signature` header carry
several space-separated signatures, and a receiver accepts a message when any
one of them verifies: for WEBHOOK_SECRET_OVERLAP_HOURS after a rotation every
message is signed with the new secret and the old, so the receiving system can
be given the new one at its own pace. The new secret is shown once.
"""
import datetime

from flask import Blueprint, abort, current_app, render_template
from standardwebhooks.webhooks import Webhook

from ..audit import log as audit
from ..clock import now
from ..identity.access import role_required
from ..store.db import get_db, one, write_transaction
from .webhook_endpoints import new_secret

bp = Blueprint("webhook_secrets", __name__, url_prefix="/webhooks")


def signatures(endpoint, message_id, sent_at, payload):
    """The `webhook-signature` header: the current secret's signature, and the previous one's during the overlap."""
    secrets = [endpoint["secret"]]
    if endpoint.get("previous_secret") and (endpoint.get("previous_secret_until") or 0) > now():
        secrets.append(endpoint["previous_secret"])
    return " ".join(Webhook(secret).sign(message_id, sent_at, payload) for secret in secrets)


def rotate(db, endpoint_id, new_secret):
    """Make `new_secret` the endpoint's secret, the old one signing too until the overlap ends; inside a write transaction."""
    until = now() + current_app.config["WEBHOOK_SECRET_OVERLAP_HOURS"] * 3600
    db.execute("UPDATE webhook_endpoints SET previous_secret = secret, previous_secret_until = ?, secret = ?"
               " WHERE id = ?", [until, new_secret, endpoint_id])
    return until


def rotate_secret_of(db, endpoint_id):
    """Give an endpoint a new secret, audited; (endpoint, secret, until), or None for no such endpoint."""
    with write_transaction(db):
        endpoint = one(db, "SELECT id, url FROM webhook_endpoints WHERE id = ?", [endpoint_id])
        if endpoint is None:
            return None
        secret = new_secret()
        until = rotate(db, endpoint_id, secret)
        audit.record(db, "webhook_secret_rotated", f"webhook {endpoint_id}",
                     f"the old secret signs too until {datetime.datetime.fromtimestamp(until):%Y-%m-%d %H:%M}")
    return endpoint, secret, until


@bp.route("/<int:endpoint_id>/rotate", methods=["POST"])
@role_required("coordinator")
def rotate_secret(endpoint_id):
    """Give an endpoint a new signing secret, shown once; the old one keeps signing through the overlap."""
    rotated = rotate_secret_of(get_db(), endpoint_id)
    if rotated is None:
        abort(404, description="There is no webhook endpoint with that number.")
    endpoint, secret, until = rotated
    return render_template("webhooks/new_secret.html", endpoint=endpoint, secret=secret, until=until)
