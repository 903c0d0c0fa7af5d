"""Failing closed: the app and its commands refuse to run on a missing or wrong database.

A new database is made only by `flask --app fieldapp migrate --create`. Every
other command, and the web app, need an existing instance folder (secrets) and
database; without them they say so in one line and stop, instead of quietly
making a fresh, empty instance with a new secret key. Files the app creates
are private to its user: the umask is set at start-up (0600 files, 0700
folders) and the places that create files also chmod them.
"""
import functools
import os
from pathlib import Path

import click
from flask import current_app, request
from flask.cli import with_appcontext
from werkzeug.exceptions import ServiceUnavailable

from ..audit.log import os_user
from ..settings import SETTINGS, in_cli, refuse
from ..store.db import connect, migrate
from ..store.migrations import migrations
from . import upgrade
from .upgrade import stamp_release

# Commands that read no instance and no database: `content check` lints card files before a deploy,
# `settings` writes the README's table, `version` says which release is installed, and
# `decrypt-backup` brings back the database a restore onto a new machine starts without.
UNGUARDED_COMMANDS = ("migrate", "content", "settings", "version", "decrypt-backup")
# Answered even while the database is missing or behind: the orchestrator must be able to ask.
OPEN_ENDPOINTS = ("health.healthz", "health.readyz", "health.metrics", "static")


def problems(app):
    """What keeps this app from serving or running a command, as one sentence, or None."""
    if not os.path.isdir(app.instance_path):
        return (f"There is no instance folder at {app.instance_path}. Set FIELDAPP_INSTANCE_PATH to the real one,"
                " or make a new instance with `flask --app fieldapp migrate --create`.")
    database = app.config["DATABASE"]
    if not os.path.isfile(database):
        return (f"There is no database at {database}. Set FIELDAPP_DATABASE to the real one, restore a backup,"
                " or make a new one with `flask --app fieldapp migrate --create`.")
    if not os.access(database, os.R_OK | os.W_OK):
        return f"The database at {database} cannot be read and written by this user ({os_user()})."
    return None


def check_settings(app):
    """Refuse settings that are not what they must be (numbers, the VAPID subject).

    Which settings are numbers, and what each means, comes from fieldapp/settings.py:
    a bad one is refused at start-up, not at 3 a.m. mid-escalation.
    """
    for setting in SETTINGS:
        if not setting.is_number():
            continue
        value = app.config.get(setting.name)
        if value is None and type(None) in setting.types():
            continue
        if isinstance(value, bool) or not isinstance(value, int | float) or value < 0:
            refuse(f"The setting {setting.name} ({setting.meaning}) must be a number of 0 or more; it is {value!r}.")
    if not str(app.config.get("VAPID_SUBJECT", "")).startswith(("mailto:", "https:")):
        refuse("The setting VAPID_SUBJECT must be a mailto: or https: URL.")


def prepare(app):
    """At the start of create_app: private files, and the checks that cannot wait.

    Under the CLI the instance is checked when a command runs (so that
    `migrate --create` can make it); anywhere else (gunicorn, a WSGI server)
    a missing instance or database stops the process here.
    """
    os.umask(0o077)
    check_settings(app)
    trouble = problems(app)
    if trouble and not in_cli():
        refuse(trouble)
    if trouble:
        # `flask run` on no database must not make an empty one through the worker's connection.
        app.config["WORKER_IN_PROCESS"] = False


def _guarded(app, callback):
    """Wrap a command's callback so it runs only on an existing instance and database."""

    @functools.wraps(callback)
    def run(*args, **kwargs):
        trouble = problems(app)
        if trouble:
            raise click.ClickException(trouble)
        return callback(*args, **kwargs)

    return run


def guard_commands(app):
    """Every app command but `migrate` (and `content`) refuses to run without an instance and database.

    Groups are guarded at the group, whose callback runs before any of its subcommands.
    """
    for name, command in app.cli.commands.items():
        if name in UNGUARDED_COMMANDS or command.callback is None:
            continue
        command.callback = _guarded(app, command.callback)


def create_instance(app):
    """Make the instance folder (0700) and the database file (0600) for `migrate --create`."""
    instance = Path(app.instance_path)
    try:
        instance.mkdir(mode=0o700, parents=True, exist_ok=True)
        instance.chmod(0o700)
        database = Path(app.config["DATABASE"])
        database.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        fd = os.open(database, os.O_CREAT | os.O_WRONLY, 0o600)
        os.close(fd)
        database.chmod(0o600)
    except OSError as e:
        raise click.ClickException(f"Cannot create {e.filename}: {e.strerror}.") from None


def check_migrate(app, create):
    """Before `migrate`: without --create, the instance and database must already exist."""
    if create:
        create_instance(app)
        return
    trouble = problems(app)
    if trouble:
        raise click.ClickException(trouble)


def _schema_current(app):
    """True once the database has no pending migration; remembered once true."""
    if app.extensions.get("fieldapp.schema_current"):
        return True
    db = connect(app.config["DATABASE"])
    try:
        pending = [m.name for m in migrations.pending(db)]
    finally:
        db.close()
    if pending:
        if not app.extensions.get("fieldapp.schema_pending_logged"):
            app.extensions["fieldapp.schema_pending_logged"] = True
            app.logger.error("Not serving: the database needs `flask --app fieldapp migrate` (%d pending: %s)",
                             len(pending), ", ".join(pending))
        return False
    app.extensions["fieldapp.schema_current"] = True
    return True


def refuse_until_migrated():
    """Before each request: 503 for every page while a migration is pending, instead of 500s."""
    if request.endpoint in OPEN_ENDPOINTS:
        return None
    app = current_app._get_current_object()
    if problems(app) or not _schema_current(app):
        raise ServiceUnavailable("fieldapp is being upgraded. Try again in a minute; in an emergency, call dispatch.")
    return None


def init_app(app):
    """At the end of create_app: the request guard and the command guards."""
    app.before_request_funcs.setdefault(None, []).insert(0, refuse_until_migrated)
    app.cli.add_command(migrate_command)
    upgrade.init_app(app)
    guard_commands(app)
    if not in_cli():
        _schema_current(app)  # logs the one clear line at start-up when a migration is pending


@click.command("migrate")
@click.option("--create", is_flag=True, help="Make a new instance folder and database if there are none.")
@with_appcontext
def migrate_command(create):
    """Upgrade the database to the newest schema; with --create, make a new one."""
    check_migrate(current_app, create)
    db = connect(current_app.config["DATABASE"])
    new = create and not migrations.applied(db)
    pending = [m.name for m in migrations.pending(db)]
    migrate(db)
    if new:
        stamp_release(db)  # its first `upgrade` shows only the notes of releases after this one
    click.echo(f"Database {current_app.config['DATABASE']}: applied {len(pending)} migration(s).")
