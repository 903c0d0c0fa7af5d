"""The database: one SQLite file, opened through sqlite-utils; transactions; the `migrate` command.

Every area of the app reaches the database through `get_db()` inside a request,
or `connect()` in a background thread. The schema itself, its append-only
migrations, is in migrations.py.
"""
import contextlib
import sqlite3

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
    """Apply every pending migration in one transaction; WAL is switched on first.

    sqlite-utils commits each migration on its own, so an error or a kill -9
    part-way would leave a database half upgraded, which neither the old code
    nor the new can run. In one transaction it is as it was, or fully upgraded.
    The two table rebuilds (m012, m018) need foreign keys off, which SQLite
    ignores inside a transaction: they are off for the whole of it, and every
    reference is checked before it commits.
    """
    db.enable_wal()
    if not migrations.pending(db):
        return
    db.execute("PRAGMA foreign_keys = OFF")
    try:
        with write_transaction(db):
            migrations.apply(db)
            broken = db.execute("PRAGMA foreign_key_check").fetchall()
            if broken:
                raise sqlite3.IntegrityError(f"the migrations would break references: {broken[:5]}")
    finally:
        db.execute("PRAGMA foreign_keys = ON")


def one(db, sql, params=()):
    """The first row of a read query as a dict, or None."""
    return next(iter(db.query(sql, params)), None)


def init_app(app):
    """Register the connection teardown."""
    app.teardown_appcontext(close_db)
