"""The database: one SQLite file, opened through sqlite-utils; transactions; the `migrate` command.

Every area of the app reaches the database through `get_db()` inside a request,
or `connect()` in a background thread. The schema itself, its append-only
migrations, is in migrations.py.
"""
import contextlib
import sqlite3

import click
from flask.cli import with_appcontext
from flask import current_app, g
from sqlite_utils import Database

from .migrations import migrations


def connect(path):
    """Open the database at `path` with the settings every connection needs."""
    # check_same_thread=False: the in-process worker hands rows between threads,
    # but each thread still opens its own connection.
    conn = sqlite3.connect(str(path), timeout=10, check_same_thread=False)
    db = Database(conn)
    db.execute("PRAGMA foreign_keys = ON")
    db.execute("PRAGMA busy_timeout = 10000")
    # Full sync is unnecessary in WAL mode: NORMAL still never corrupts, and a
    # power cut loses at most the last transaction.
    db.execute("PRAGMA synchronous = NORMAL")
    return db


def get_db():
    """The request's database connection, opened on first use."""
    if "db" not in g:
        g.db = connect(current_app.config["DATABASE"])
    return g.db


def close_db(e=None):
    """Close the request's connection, if one was opened."""
    db = g.pop("db", None)
    if db is not None:
        db.close()


@contextlib.contextmanager
def write_transaction(db):
    """A transaction that takes the write lock at once (BEGIN IMMEDIATE).

    A deferred transaction that reads first and writes later can fail with
    SQLITE_BUSY in WAL mode when another writer got in between; taking the
    lock up front makes the busy timeout apply instead.
    """
    db.conn.execute("BEGIN IMMEDIATE")
    try:
        yield db
    except BaseException:
        db.conn.execute("ROLLBACK")
        raise
    else:
        db.conn.execute("COMMIT")


def migrate(db):
    """Apply every pending migration; WAL is switched on first."""
    db.enable_wal()
    migrations.apply(db)


def one(db, sql, params=()):
    """The first row of a read query as a dict, or None."""
    return next(iter(db.query(sql, params)), None)


@click.command("migrate")
@click.option("--create", is_flag=True, help="Make a new instance folder and database if there are none.")
@with_appcontext
def migrate_command(create):
    """Upgrade the database to the newest schema; with --create, make a new one."""
    from ..ops.startup import check_migrate

    check_migrate(current_app, create)
    db = connect(current_app.config["DATABASE"])
    pending = [m.name for m in migrations.pending(db)]
    migrate(db)
    click.echo(f"Database {current_app.config['DATABASE']}: applied {len(pending)} migration(s).")


def init_app(app):
    """Register the connection teardown and the `migrate` command."""
    app.teardown_appcontext(close_db)
    app.cli.add_command(migrate_command)
