"""After a restore: what the old service may already have sent is not sent again.

A restored database is a copy of an earlier moment: Litestream's last sync
(about a second before a crash) or last night's backup (hours before). The old
service went on running after that moment, and its worker sent pushes and took
escalation steps the copy knows nothing of. Started on the copy as it is, the
worker would send them all again: alerts for scenes long closed, all-hands
pushes to every specialist on duty.

`flask --app fieldapp restored --at TIME` is run once after a restore, before
the worker starts, with the moment the old service stopped (the restore point
as far as sending goes). Against that moment:

- pending pushes created before it are marked `maybe_sent` and never sent;
- escalation steps whose deadline passed before it are marked taken, without
  alerting anyone again; steps due after it still fire on time;

and each affected request's timeline says so, so a supervisor reading it knows
an alert may or may not have reached a phone. The worker's own functions do
the sending; this module only changes state (the outbox's owner is `outbox`, the
requests' is the requests area, and this module calls their functions).
"""
import datetime as dt

import click
from flask import current_app
from flask.cli import with_appcontext

from ..audit import log as audit
from ..requests.escalation import settle_escalations_due_by
from ..requests.timeline import add_event
from ..delivery.outbox import hold_back_pending
from ..clock import now
from ..store.db import connect, write_transaction

# The outbox state for a push that may have gone out before the restore point.
MAYBE_SENT = "maybe_sent"


def parse_moment(text):
    """An ISO 8601 time to epoch seconds; a time without a zone is the server's local time."""
    try:
        moment = dt.datetime.fromisoformat(text.strip())
    except (AttributeError, ValueError):
        raise click.BadParameter(f"{text!r} is not an ISO 8601 time, e.g. 2026-11-29T03:14:00Z.") from None
    if moment.tzinfo is None:
        moment = moment.astimezone()  # the server's zone, as the rest of the app reads times (TZ)
    return moment.timestamp()


def _hhmmss(t):
    return dt.datetime.fromtimestamp(t).strftime("%H:%M:%S")


def guard_restored(db, restore_point):
    """Mark what was due before `restore_point` as possibly done; returns (pushes, escalation steps) marked."""
    if restore_point > now():
        raise ValueError("The restore point is in the future: that would silence alerts not yet due.")
    marked_pushes, marked_steps = 0, 0
    with write_transaction(db):
        pushes = hold_back_pending(db, restore_point, MAYBE_SENT)
        per_request = {}
        for request_id in pushes:
            per_request[request_id] = per_request.get(request_id, 0) + 1
        for request_id, count in per_request.items():
            if request_id is not None:
                add_event(db, request_id, "restored",
                          detail=f"Restored from a copy: {count} push(es) queued before {_hhmmss(restore_point)}"
                                 " may already have gone out; not sent again")
        marked_pushes = len(pushes)
        for request_id, steps in settle_escalations_due_by(db, restore_point):
            add_event(db, request_id, "restored",
                      detail=f"Restored from a copy: escalation step {' and '.join(map(str, steps))} was due before"
                             f" {_hhmmss(restore_point)} and may already have gone out; not sent again")
            marked_steps += len(steps)
        audit.record(db, "restored", dt.datetime.fromtimestamp(restore_point).isoformat(timespec="seconds"),
                     f"{marked_pushes} push(es) marked maybe sent, {marked_steps} escalation step(s) marked taken",
                     actor=(None, "cli"))
    return marked_pushes, marked_steps


@click.command("restored")
@click.option("--at", "at", required=True, metavar="ISO8601",
              help="When the old service stopped (its worker's last chance to send), e.g. 2026-11-29T03:14:00Z.")
@with_appcontext
def restored_command(at):
    """After restoring the database: never re-send what was due before the restore point."""
    restore_point = parse_moment(at)
    try:
        pushes, steps = guard_restored(connect(current_app.config["DATABASE"]), restore_point)
    except ValueError as error:
        raise click.BadParameter(str(error), param_hint="--at") from None
    click.echo(f"Restore point {at}: {pushes} queued push(es) marked maybe sent, {steps} escalation step(s) marked taken.")


def init_app(app):
    """Register the `restored` command."""
    app.cli.add_command(restored_command)
