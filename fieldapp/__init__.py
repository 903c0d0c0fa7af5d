"""fieldapp: recognise a crisis, request a CIT officer, hold the scene until one arrives."""
import os
import secrets
from pathlib import Path

from flask import Flask


def _instance_secret(app, filename, make):
    """Read a secret from the instance folder, generating it there on first run."""
    path = Path(app.instance_path) / filename
    if not path.exists():
        path.write_text(make())
        path.chmod(0o600)
    return path.read_text().strip()


# The areas are imported inside the functions below, not at the top: every module of the package
# imports this one first, and importing `fieldapp` alone (a command, a test, a bench) builds nothing.


def _listen():
    """Connect each event to its listeners (events.py): the writers never import them."""
    from . import events
    from .audit import log as audit_log
    from .delivery import webhooks
    from .duty import status as duty
    from .program import roster
    from .requests.dispatch import dispatch_status
    from .safety import timer as check_in_timer

    events.request_moved.connect(audit_log.on_request_moved)
    events.request_moved.connect(webhooks.on_request_moved)
    events.request_moved.connect(check_in_timer.on_request_moved)
    webhooks.describe_requests_with(dispatch_status)
    events.account_disabled.connect(duty.stand_down_everywhere)
    events.district_names_in_use.connect(duty.districts_chosen)
    events.district_names_in_use.connect(roster.district_references)


def create_app(test_config=None):
    """Build the app: config, database, content, areas and background worker."""
    # Tests and deployments may put the instance folder (secrets, database) elsewhere.
    instance_path = (test_config or {}).get("INSTANCE_PATH") or os.environ.get("FIELDAPP_INSTANCE_PATH")
    app = Flask(__name__, instance_relative_config=True, instance_path=instance_path)
    from . import settings

    # Every default, from the one list of settings; instance config and FIELDAPP_* variables override them.
    app.config.from_mapping(settings.defaults(app))
    settings.init_app(app)
    if test_config is None:
        app.config.from_pyfile("config.py", silent=True)
    else:
        app.config.from_mapping(test_config)
    app.config.from_prefixed_env("FIELDAPP")
    from .ops import startup

    # Fail closed: no new instance folder, secret or database here; `migrate --create` makes them.
    startup.prepare(app)
    if not app.config.get("SECRET_KEY") and os.path.isdir(app.instance_path):
        app.config["SECRET_KEY"] = _instance_secret(app, "secret_key", lambda: secrets.token_hex(32))

    from flask_compress import Compress

    from . import api, content, districts, maps, program, requests
    from .board import pages as board
    from .delivery import push, webhook_pages, webhook_secrets
    from .demo import seed as demo
    from .duty import pages as duty, readiness
    from .identity import (access, pages as auth, second_factor_pages, sso, throttle, cli as users_cli,
                           lockout, notices, sso_links, step_up_pages, unlock)
    from . import logs
    from .ops import health, records, restore, worker
    from .program import audit_pages, data_dictionary
    from .reference import content_review, offline, pages as reference
    from .requests import dispatch_pages, home
    from . import safety
    from .store import db
    from .web import assets, context, errors, formatting, htmx, security

    logs.init_app(app)
    Compress(app)
    # Order matters where one part uses what another set up; the worker starts last, after every table is known.
    for part in (security, db, htmx, throttle, access, notices, lockout, users_cli, sso, sso_links, content,
                 errors, assets, context, push, duty, demo, records, formatting, restore, data_dictionary,
                 safety.pages):
        part.init_app(app)
    for area in (auth, home, reference, offline, duty, requests, board, audit_pages, program, content_review, sso,
                 second_factor_pages, step_up_pages, sso_links, readiness, webhook_pages, webhook_secrets,
                 dispatch_pages, unlock, safety):
        app.register_blueprint(area.bp)
    # Signing out must work from a page whose token has died (see auth.logout for why that is safe).
    security.csrf.exempt(auth.logout)
    # The vehicle-location feed authenticates with a bearer token, not a session cookie.
    security.csrf.exempt(duty.unit_location)
    # A delivery receipt authenticates with the single-use token its push carried.
    security.csrf.exempt(requests.pages.receipt)
    _listen()
    # The agency's basemap and address index (fieldapp/maps): the map page, tiles, `map` and `addresses` commands.
    maps.init_app(app)
    app.register_blueprint(maps.bp)
    for part in (api, health, districts, worker, startup):
        part.init_app(app)
    if app.config.get("PROXY_FIX"):
        # Behind N trusted reverse proxies: take the client address, scheme and
        # host from their X-Forwarded-* headers (audit log IPs, Secure cookies).
        from werkzeug.middleware.proxy_fix import ProxyFix

        hops = int(app.config["PROXY_FIX"])
        app.wsgi_app = ProxyFix(app.wsgi_app, x_for=hops, x_proto=hops, x_host=hops)
    return app
