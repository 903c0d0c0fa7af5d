"""The second rung before escalation: a specialist's own backup channel when no phone confirmed.

When none of an alerted specialist's devices has confirmed the alert within
RECEIPT_TIMEOUT_S, the worker queues one message to that specialist's backup
channel (delivery/backup_channel.py): a short generic text and the link, never names,
notes or addresses. It goes through the outbox like every other send, so it
survives a restart; it is queued at most once per alert (alerts.fallback_at,
set in the same transaction), and it is withdrawn with everything else once
someone accepts. Escalation runs on its own clock and never waits for it.
"""
import json

from flask import current_app

from ..clock import now
from ..store.db import write_transaction
from ..delivery.outbox import queue_message
from .selection import mark_fallback, topic_for
from .timeline import add_event

# Open requests only (cit_requests_open), then each one's alerts by its unique index.
_DUE = (
    "SELECT a.id, a.request_id, a.user_id, r.drill FROM cit_requests r JOIN alerts a ON a.request_id = r.id"
    " JOIN fallback_channels f ON f.user_id = a.user_id"
    " WHERE r.state = 'requested' AND a.fallback_at IS NULL AND a.declined_at IS NULL AND a.at <= ?"
    " AND NOT EXISTS (SELECT 1 FROM alert_receipts x WHERE x.request_id = a.request_id AND x.user_id = a.user_id"
    " AND x.delivered_at IS NOT NULL)"
)


def message_for(request_id, drill):
    """The backup channel's text: generic, with the link. (title, body)"""
    origin = current_app.config["WEBAUTHN_ORIGIN"].rstrip("/")
    title = ("DRILL · " if drill else "") + "CIT requested"
    return title, f"A CIT request is waiting and your phone has not confirmed the alert. Open: {origin}/requests/{request_id}"


def queue_due(db):
    """Queue the backup channel for every alert no phone confirmed in time; returns how many."""
    due = list(db.query(_DUE, [now() - current_app.config["RECEIPT_TIMEOUT_S"]]))
    queued = 0
    for alert in due:
        with write_transaction(db):
            # Claimed in the same transaction as the outbox row: two workers never both queue it.
            if not mark_fallback(db, alert["id"]):
                continue
            title, body = message_for(alert["request_id"], alert["drill"])
            queue_message(db, alert["request_id"], alert["user_id"], None, json.dumps({"title": title, "body": body}),
                          topic_for(alert["request_id"]), now(), channel="apprise")
            add_event(db, alert["request_id"], "fallback_queued",
                      detail=f"A CIT officer's phone did not confirm within {current_app.config['RECEIPT_TIMEOUT_S']:g} s:"
                      " their backup channel is being sent")
        queued += 1
    return queued
