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

    from . import api, content, districts, program, requests
    from .identity import pages as auth, second_factor_pages, sso, throttle, cli as users_cli
    from .board import pages as board
    from .program import data_dictionary
    from .store import db
    from .demo import seed as demo
    from .requests import dispatch_pages, home
    from .duty import pages as duty, readiness
    from .web import errors, formatting, htmx, pwa, security
    from .ops import health, logs, restore
    from .delivery import push, webhooks, worker
    from .reference import pages as reference
    from .audit import pages as audit_pages
    from .ops import records
    from .reference import content_review

    logs.init_app(app)
    Compress(app)
    # Order matters where one part uses what another set up; the worker starts last, after every table is known.
    for part in (security, db, htmx, throttle, auth, users_cli, sso, content, errors, pwa, push, duty, demo, records,
                 formatting, restore, data_dictionary):
        part.init_app(app)
    for area in (auth, home, reference, pwa, duty, requests, board, audit_pages, program, content_review, sso,
                 second_factor_pages, readiness, webhooks, dispatch_pages):
        app.register_blueprint(area.bp)
    # The vehicle-location feed authenticates with a bearer token, not a session cookie.
    security.csrf.exempt(duty.unit_location)
    # A delivery receipt authenticates with the single-use token its push carried.
    security.csrf.exempt(requests.pages.receipt)
    for part in (api, health, districts, worker, startup):
        part.init_app(app)
    if app.config.get("PROXY_FIX"):
        # Behind N trusted reverse proxies: take the client address, scheme and
        # host from their X-Forwarded-* headers (audit log IPs, Secure cookies).
        from werkzeug.middleware.proxy_fix import ProxyFix

        hops = int(app.config["PROXY_FIX"])
        app.wsgi_app = ProxyFix(app.wsgi_app, x_for=hops, x_proto=hops, x_host=hops)
    return app
