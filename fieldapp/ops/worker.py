"""The worker: due escalations and the push outbox, from the database alone.

Rows are leased, so two workers never send the same one and rows held by a
killed worker are picked up again once the lease runs out. Deadlines are read
from the database on every pass, never kept in memory, so a restart loses
nothing. With the embedded default it runs as a thread inside the app
(`WORKER_IN_PROCESS`); in production as `flask --app fieldapp worker`.
"""
import logging
import os
import socket
import threading
import time
import uuid

import click
from flask.cli import with_appcontext
from flask import current_app

import json

from ..delivery import backup_channel, outbox, webhooks
from ..duty import devices
from . import health
from ..clock import now
from ..store.db import connect, write_transaction
from ..logs import WORKER as log
from ..delivery.push import Outcome, get_sender
from ..requests import domain, escalation, selection
from ..requests.backup_channel import queue_due as queue_backup_channels
from ..requests.timeline import add_event
from ..safety import timer as check_in_timer


class Worker:
    """One worker: call `run_once()` in a loop, or `run_forever()`."""

    def __init__(self, app, name=None):
        self.app = app
        self.name = name or f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:6]}"
        self.db = connect(app.config["DATABASE"])

    def run_once(self):
        """Take due escalations, then send one batch of due pushes; returns how much was done."""
        with self.app.app_context():
            done = 0
            health.beat(self)
            for request_id in escalation.due_escalations(self.db):
                step = escalation.escalate(self.db, request_id)
                if step:
                    done += 1
                    log.info("escalation step", extra={"event": "escalation", "request_id": request_id, "step": step})
                    policy = self.app.config
                    after = policy["ESCALATE_AFTER_S"] if step == 1 else policy["ALL_HANDS_AFTER_S"]
                    backup_channel.send_to_agency(
                        f"CIT request #{request_id} not accepted",
                        f"No CIT officer has accepted request #{request_id} after about {after:g} s. Open fieldapp.",
                    )
            # On-scene check-ins: heads-ups and missed alarms whose time has come.
            done += check_in_timer.run_due(self.db)
            # A specialist whose phones confirmed nothing in time gets their own backup channel.
            done += queue_backup_channels(self.db)
            rows = self.lease(self.app.config["WORKER_BATCH"])
            if rows:
                self.deliver(rows)
            done += webhooks.deliver_due(self.db, self.app.config, self.name)
            return done + len(rows)

    def lease(self, limit):
        """Claim up to `limit` due outbox rows for this worker."""
        return outbox.lease(self.db, self.name, limit, self.app.config["WORKER_LEASE_S"])

    def deliver(self, rows):
        """Send leased rows concurrently and record every attempt."""
        t = now()
        ttl = self.app.config["PUSH_TTL"]
        to_send, outcomes = [], {}
        rows = outbox.still_queued(self.db, rows)
        if not rows:
            return
        subs = {
            r[0]: r
            for r in self.db.execute(
                f"SELECT id, endpoint, p256dh, auth FROM push_subscriptions WHERE id IN ({','.join('?' * len(rows))})",
                [r["subscription_id"] for r in rows],
            ).fetchall()
        }
        channels = {}
        for row in rows:
            if row["channel"] == "apprise":
                channels[row["id"]] = self._send_to_channel(row)
                continue
            sub = subs.get(row["subscription_id"])
            if sub is None or t - row["created_at"] > ttl:
                continue  # the device went away, or the alert is older than its TTL
            info = {"endpoint": sub[1], "keys": {"p256dh": sub[2], "auth": sub[3]}}
            to_send.append((row, (info, row["payload"], row["topic"])))
        sender = get_sender()
        results = sender.send_many([message for _, message in to_send])
        for (row, _), outcome in zip(to_send, results):
            outcomes[row["id"]] = outcome
        for row_id, future in channels.items():
            outcomes[row_id] = future.result()
        unreachable = []
        with write_transaction(self.db):
            for row in rows:
                self._record(row, outcomes.get(row["id"]), t)
            # When every alert for a request has failed, a person must step in.
            for request_id in {r["request_id"] for r in rows if r["request_id"]}:
                if selection.supervise_if_unreachable(self.db, domain.get_request(self.db, request_id)):
                    unreachable.append(request_id)
        for request_id in unreachable:
            backup_channel.send_to_agency(
                f"CIT request #{request_id}: alerts failed",
                f"No push alert for request #{request_id} reached a CIT officer. Open fieldapp.",
            )

    def _send_to_channel(self, row):
        """Send one backup-channel row through the sender's pool: a future of its Outcome."""
        url = backup_channel.url_of(self.db, row["user_id"])
        message = json.loads(row["payload"])

        def send():
            started = time.perf_counter()
            if url is None:  # removed since it was queued
                return Outcome(status=None, error="no backup channel set", permanent=True)
            ok = backup_channel.send_to_person(url, message["title"], message["body"])
            outcome = Outcome(status=200 if ok else None, error="" if ok else "the backup channel did not take it")
            outcome.duration_ms = (time.perf_counter() - started) * 1000
            return outcome

        return get_sender().pool.submit(send)

    def _record(self, row, outcome, t):
        """Record one row's attempt: sent, gone, to retry, or failed for good."""
        if outcome is None:
            log.info("push expired", extra={"event": "push", "outcome": "expired", "outbox_id": row["id"],
                                            "request_id": row["request_id"]})
            outbox.expire(self.db, row["id"])
            return
        state, attempts = outbox.record_outcome(self.db, row, outcome, t)
        if row["channel"] == "push":
            devices.record_push_result(self.db, row["subscription_id"], outcome, t)
        if row["channel"] == "apprise" and state != "pending":
            add_event(self.db, row["request_id"], "fallback_sent" if state == "sent" else "fallback_failed",
                      detail="A CIT officer's backup channel took the alert" if state == "sent"
                      else f"A CIT officer's backup channel failed: {outcome.error}")
        log.log(logging.INFO if outcome.delivered else logging.WARNING, "push %s", state, extra={
            "event": "push", "outcome": state, "status": outcome.status, "attempt": attempts, "outbox_id": row["id"],
            "request_id": row["request_id"], "subscription_id": row["subscription_id"],
            "duration_ms": round(outcome.duration_ms, 1)})

    def run_forever(self, stop, wake=None):
        """Loop until `stop` is set; sleep between passes unless woken."""
        interval = self.app.config["WORKER_POLL_S"]
        while not stop.is_set():
            try:
                done = self.run_once()
            except Exception:
                # A locked database or a bad row must never kill the worker.
                self.app.logger.exception("worker pass failed")
                done = 0
            if done:
                continue
            if wake is not None:
                wake.wait(interval)
                wake.clear()
            else:
                stop.wait(interval)


def start_in_process(app):
    """Run a worker thread inside this app process (the embedded default)."""
    wake = threading.Event()
    stop = threading.Event()
    app.extensions["fieldapp.worker_wake"] = wake
    app.extensions["fieldapp.worker_stop"] = stop
    worker = Worker(app)
    thread = threading.Thread(target=worker.run_forever, args=(stop, wake), name="fieldapp-worker", daemon=True)
    thread.start()
    return thread


@click.command("worker")
@with_appcontext
@click.option("--once", is_flag=True, help="Do one pass and exit.")
def worker_command(once):
    """Send pushes and take due escalations until stopped."""
    app = current_app._get_current_object()
    worker = Worker(app)
    if once:
        click.echo(f"{worker.run_once()} item(s) done.")
        return
    click.echo(f"Worker {worker.name} running; Ctrl-C stops it.")
    stop = threading.Event()
    try:
        worker.run_forever(stop)
    except KeyboardInterrupt:
        stop.set()


def init_app(app):
    """The `worker` command, and the in-process thread when configured."""
    app.cli.add_command(worker_command)
    # The reloader's parent process must not send pushes too.
    if app.config.get("WORKER_IN_PROCESS") and os.environ.get("WERKZEUG_RUN_MAIN", "true") == "true":
        start_in_process(app)
