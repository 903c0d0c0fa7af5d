"""What the requesting officer, and the supervisors' boards, are told by push as requests move on.

Accepted ("CIT officer en route · 1.4 km"), on scene, stabilised, and gone
unanswered to the supervisors: one push to each of the requester's devices
through the outbox and the worker, under a Topic of its own so a later state
replaces an earlier one on the lock screen (and never an alert's). The payload
follows the alerts' rule: no names, notes or addresses. The service worker also
tells the requester's open page, which refreshes at once (`_sw_live.js`).
"""
import json

from ..geo import human_distance
from ..delivery.outbox import queue_board_pushes, queue_to_devices
from .selection import alert_of

# What the requester reads, by the event that moved the request.
REQUESTER_NEWS = {
    "accepted": ("CIT officer en route", "Hold the scene; open fieldapp for who is coming."),
    "on_scene": ("CIT officer on scene", "The CIT officer has arrived."),
    "stabilised": ("Scene marked stabilised", "Open fieldapp for the next steps."),
    "unanswered": ("No CIT officer has accepted yet", "Your supervisors have been told. Hold the scene; call dispatch if you need help now."),
}


def status_topic(request_id):
    """The Web Push Topic of the requester's updates: apart from the alerts', one per request."""
    return f"cit-status-{request_id}"


def requester_payload(req, news, distance):
    """The push's JSON: the state and how far the CIT officer was, nothing that names anyone."""
    title, body = REQUESTER_NEWS[news]
    if news == "accepted" and distance is not None:
        title = f"{title} · {human_distance(distance)}"
    return json.dumps({
        "kind": "status",
        "news": news,
        "request_id": req["id"],
        "title": title,
        "body": body,
        "url": f"/requests/{req['id']}",
        "topic": status_topic(req["id"]),
    })


def tell_requester(db, req, news, assigned_id=None):
    """Queue the requester's push for `news` (a key of REQUESTER_NEWS); must run inside a write transaction.

    `req` is the row as it was before the move; `assigned_id` is who has it now,
    whose alert gives the distance.
    """
    alert = alert_of(db, req["id"], assigned_id) if assigned_id else None
    distance = alert["distance_m"] if alert else None
    queue_to_devices(db, req["id"], req["requester_id"], requester_payload(req, news, distance), status_topic(req["id"]))


# One Topic for every board push: each replaces the last, on the push service and on the screen.
BOARD_TOPIC = "fieldapp-board"
# However busy the night, a device gets at most one board push in this many seconds.
BOARD_QUIET_S = 10


def board_payload():
    """The board push: that something changed, and nothing else."""
    return json.dumps({"kind": "board", "title": "CIT board updated", "body": "Open requests changed.",
                       "url": "/board", "topic": BOARD_TOPIC})


def tell_boards(db):
    """A silent, replacing push to each device a supervisor asked board alerts on; must run inside a write transaction.

    Only where they asked: the platforms that matter (Chrome, Safari) show every
    push as a notification, so a push that shows nothing is not on offer. The
    open board page refreshes at once through the service worker (`_sw_live.js`).
    Returns how many were queued.
    """
    return queue_board_pushes(db, board_payload(), BOARD_TOPIC, BOARD_QUIET_S)
