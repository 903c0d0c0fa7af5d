"""Health, readiness and metrics: what an orchestrator and Prometheus ask the app, and which release runs.

`/healthz` says the process answers, and which release it is. `/readyz` says
whether alerts would go out: the database is writable and current, a worker
has reported lately, and nothing waits longer than it should. `/metrics` is
Prometheus text, computed from the database at scrape time, so it is the same
whichever gunicorn worker answers and covers the separate worker process too.
This module owns the worker heartbeats and the backup-channel send log
(migration m015_health).

The version is pyproject.toml's, read from the installed package's metadata
(`pip install` writes it): `flask --app fieldapp version`, `/healthz` and the
coordinators' footer all say it.
"""
import functools
import hmac
import importlib.metadata
import ipaddress
import sqlite3

import click
from flask import Blueprint, Response, current_app, jsonify, request
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.exposition import CONTENT_TYPE_LATEST
from werkzeug.exceptions import Forbidden

from ..clock import now
from ..store.db import connect
from ..store.migrations import migrations

bp = Blueprint("health", __name__)

# A busy worker passes ten times a second; the heartbeat needs only a write every few seconds.
HEARTBEAT_EVERY_S = 5.0


def beat(worker):
    """Record that `worker` is alive, at most every HEARTBEAT_EVERY_S (called at the start of each pass)."""
    t = now()
    last = getattr(worker, "last_heartbeat", None)
    if last is not None and 0 <= t - last < HEARTBEAT_EVERY_S:
        return
    worker.db.execute(
        "INSERT INTO worker_heartbeats (worker, at) VALUES (?, ?) ON CONFLICT (worker) DO UPDATE SET at = excluded.at",
        [worker.name, t],
    )
    worker.last_heartbeat = t


def _scalar(db, sql, params=()):
    return db.execute(sql, params).fetchone()[0]


def state(db):
    """The figures readiness and metrics both read, from one connection."""
    t = now()
    oldest_outbox = _scalar(db, "SELECT MIN(created_at) FROM outbox WHERE state = 'pending'")
    oldest_due = _scalar(db, "SELECT MIN(next_escalation_at) FROM cit_requests WHERE state = 'requested'"
                             " AND next_escalation_at <= ?", [t])
    heartbeat = _scalar(db, "SELECT MAX(at) FROM worker_heartbeats")
    return {
        "now": t,
        "pending_migrations": [m.name for m in migrations.pending(db)],
        "outbox_pending": _scalar(db, "SELECT COUNT(*) FROM outbox WHERE state = 'pending'"),
        "outbox_oldest_age_s": max(0.0, t - oldest_outbox) if oldest_outbox is not None else 0.0,
        "escalation_lateness_s": max(0.0, t - oldest_due) if oldest_due is not None else 0.0,
        "heartbeat_age_s": max(0.0, t - heartbeat) if heartbeat is not None else None,
    }


def _writable(db):
    """Whether a write transaction can be taken (a full disk, a read-only mount or a held lock say no)."""
    try:
        db.conn.execute("BEGIN IMMEDIATE")
        db.conn.execute("ROLLBACK")
        return True, "ok"
    except sqlite3.Error as e:
        return False, str(e)


@functools.cache
def version():
    """This release's number, as pyproject.toml gave it to the installed package."""
    try:
        return importlib.metadata.version("fieldapp")
    except importlib.metadata.PackageNotFoundError:  # run from a checkout never installed with pip
        return "unknown"


@click.command("version")
def version_command():
    """Print the version of fieldapp installed here."""
    click.echo(version())


@bp.route("/healthz")
def healthz():
    """The process is alive and answering, and which release it is; nothing else is checked."""
    return {"status": "alive", "version": version()}


@bp.route("/readyz")
def readyz():
    """200 when alerts would go out now, 503 with the failing checks when not."""
    config = current_app.config
    checks = {}
    try:
        db = connect(config["DATABASE"])
        db.conn.execute("PRAGMA busy_timeout = 1000")  # a readiness probe must answer quickly
    except sqlite3.Error as e:
        return jsonify(status="unready", checks={"database": {"ok": False, "detail": str(e)}}), 503
    try:
        ok, detail = _writable(db)
        checks["database"] = {"ok": ok, "detail": detail}
        try:
            figures = state(db)
        except sqlite3.Error as e:  # tables missing: the schema is far behind
            checks["schema"] = {"ok": False, "detail": str(e)}
            figures = None
    finally:
        db.close()
    if figures is not None:
        pending = figures["pending_migrations"]
        checks["schema"] = {"ok": not pending, "pending": pending}
        age = figures["heartbeat_age_s"]
        checks["worker"] = {"ok": age is not None and age <= config["WORKER_STALE_S"],
                            "heartbeat_age_s": None if age is None else round(age, 1),
                            "limit_s": config["WORKER_STALE_S"]}
        checks["outbox"] = {"ok": figures["outbox_oldest_age_s"] <= config["OUTBOX_STALE_S"],
                            "pending": figures["outbox_pending"],
                            "oldest_age_s": round(figures["outbox_oldest_age_s"], 1), "limit_s": config["OUTBOX_STALE_S"]}
        checks["escalations"] = {"ok": figures["escalation_lateness_s"] <= config["ESCALATION_LATE_S"],
                                 "oldest_late_s": round(figures["escalation_lateness_s"], 1),
                                 "limit_s": config["ESCALATION_LATE_S"]}
    ready = all(c["ok"] for c in checks.values())
    return jsonify(status="ready" if ready else "unready", checks=checks), 200 if ready else 503


def _from_loopback():
    """True for a request made on this machine directly, not relayed by a proxy.

    A reverse proxy on the same host connects from 127.0.0.1 for everyone, so
    a forwarded request never counts as local, and with PROXY_FIX the
    address before the fix is the one checked.
    """
    if request.headers.get("X-Forwarded-For") or request.headers.get("Forwarded"):
        return False
    original = request.environ.get("werkzeug.proxy_fix.orig", {}).get("REMOTE_ADDR", request.remote_addr)
    try:
        return ipaddress.ip_address(original or "").is_loopback
    except ValueError:
        return False


def _token_ok():
    """True when METRICS_TOKEN is set and the request carries it as a bearer token."""
    token = current_app.config.get("METRICS_TOKEN") or ""
    given = request.headers.get("Authorization", "")
    # The scheme is case-insensitive (RFC 6750).
    return bool(token) and given[:7].lower() == "bearer " and hmac.compare_digest(given[7:].encode(), token.encode())


class DatabaseCollector:
    """Prometheus metrics read from the database at scrape time."""

    def __init__(self, app):
        self.app = app

    def collect(self):
        db = connect(self.app.config["DATABASE"])
        try:
            yield from self._families(db)
        finally:
            db.close()

    def _families(self, db):
        figures = state(db)
        yield GaugeMetricFamily("fieldapp_outbox_pending", "Push messages waiting to be sent.", figures["outbox_pending"])
        yield GaugeMetricFamily("fieldapp_outbox_oldest_pending_age_seconds",
                                "Age of the oldest push message still waiting.", figures["outbox_oldest_age_s"])
        yield GaugeMetricFamily("fieldapp_escalation_lateness_seconds",
                                "How far past its deadline the most overdue escalation is (0 when none is).",
                                figures["escalation_lateness_s"])
        age = figures["heartbeat_age_s"]
        yield GaugeMetricFamily("fieldapp_worker_heartbeat_age_seconds",
                                "Seconds since a worker last reported (NaN before any has).",
                                float("nan") if age is None else age)
        yield GaugeMetricFamily("fieldapp_pending_migrations", "Migrations the database still needs.",
                                len(figures["pending_migrations"]))
        pushes = CounterMetricFamily("fieldapp_push_attempts", "Push attempts by outcome (purges remove old ones).",
                                     labels=["outcome"])
        for outcome, count in db.execute(
            "SELECT CASE WHEN status BETWEEN 200 AND 299 THEN 'delivered' WHEN status IN (404, 410) THEN 'gone'"
            " WHEN status = 429 THEN 'rate_limited' WHEN status >= 500 THEN 'push_service_error'"
            " WHEN status IS NULL THEN 'network_error' ELSE 'rejected' END AS outcome, COUNT(*)"
            " FROM push_attempts GROUP BY outcome"
        ).fetchall():
            pushes.add_metric([outcome], count)
        yield pushes
        backup = CounterMetricFamily("fieldapp_backup_channel_sends", "Backup-channel (Apprise) sends by result.",
                                     labels=["result"])
        for ok, count in db.execute("SELECT ok, COUNT(*) FROM backup_channel_sends GROUP BY ok").fetchall():
            backup.add_metric(["ok" if ok else "failed"], count)
        yield backup
        yield CounterMetricFamily("fieldapp_backup_channel_failures", "Backup-channel sends no channel took.",
                                  _scalar(db, "SELECT COUNT(*) FROM backup_channel_sends WHERE ok = 0"))
        yield CounterMetricFamily("fieldapp_signin_failures", "Failed sign-ins (from the audit log).",
                                  _scalar(db, "SELECT COUNT(*) FROM audit_log WHERE action = 'login_failed'"))
        yield CounterMetricFamily("fieldapp_lockouts", "Accounts locked after too many failed sign-ins.",
                                  _scalar(db, "SELECT COUNT(*) FROM audit_log WHERE action = 'account_locked'"))
        yield GaugeMetricFamily("fieldapp_accounts_locked", "Accounts locked out right now.",
                                _scalar(db, "SELECT COUNT(*) FROM users WHERE locked_until > ?", [figures["now"]]))


@bp.route("/metrics")
def metrics():
    """Prometheus text, for loopback callers or a bearer METRICS_TOKEN only."""
    if not (_from_loopback() or _token_ok()):
        raise Forbidden("Metrics are served to this machine or with the metrics token only.")
    registry = current_app.extensions["fieldapp.metrics"]
    return Response(generate_latest(registry), content_type=CONTENT_TYPE_LATEST)


def init_app(app):
    """The health blueprint, this app's own metrics registry (never the process-wide default), and the version."""
    registry = CollectorRegistry(auto_describe=False)
    registry.register(DatabaseCollector(app))
    app.extensions["fieldapp.metrics"] = registry
    app.register_blueprint(bp)
    app.cli.add_command(version_command)
    app.context_processor(lambda: {"fieldapp_version": version()})  # the coordinators' footer
