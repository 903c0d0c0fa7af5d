"""The change counter: one number that moves whenever a live fragment's data may have changed.

Owner of the `change_counter` table. SQLite triggers (made by `counter_triggers`,
installed by migration m017_change_counter) bump it on every insert, update and
delete of the tables the board and the request page read, so a poll compares
one integer before it computes anything. Time passing alone never needs a bump:
the fragments write clock times, and what depends on the hour or the day (the
shift now, in-service due dates) goes into the poll's key beside the counter.
"""
import datetime

from flask import current_app

from .clock import now

# Every table the board's or a request page's live part reads. A test reads the
# tables those fragments touch through SQLite's authorizer and fails when one is
# missing here; a new table needs a new migration that adds its triggers.
LIVE_TABLES = (
    "alerts", "cit_requests", "districts", "duty", "inservice_training", "outbox",
    "request_events", "roster", "users", "alert_receipts", "districts_revision",
)


# Columns a live part reads only from the viewer's own row, which the request
# page's key holds itself (`viewer_position`): every on-duty specialist's phone
# writes its position about once a minute, and bumping the counter for each
# would leave a large agency's boards few 304s.
VIEWER_COLUMNS = {"duty": ("lat", "lon")}
# The columns whose update moves the counter, where not every column does.
UPDATE_COLUMNS = {"duty": ("user_id", "on_duty", "district")}


def counter_triggers(tables, update_columns=None):
    """The SQL that creates the counter's three triggers on each of `tables`.

    `update_columns` ({table: columns}) limits a table's update trigger to those columns.
    """
    update_columns = update_columns or {}

    def event(op, table):
        columns = update_columns.get(table) if op == "UPDATE" else None
        return f"UPDATE OF {', '.join(columns)}" if columns else op

    return "\n".join(
        f"CREATE TRIGGER change_counter_{table}_{op.lower()} AFTER {event(op, table)} ON {table}"
        " BEGIN UPDATE change_counter SET n = n + 1 WHERE id = 1; END;"
        for table in tables
        for op in ("INSERT", "UPDATE", "DELETE")
    )


def viewer_position(db, user_id):
    """The viewer's own last position, for the key of a page that shows distances from it."""
    row = db.execute("SELECT lat, lon FROM duty WHERE user_id = ?", [user_id]).fetchone()
    return tuple(row) if row else None


def current(db):
    """The counter now: equal values mean no live table was written in between."""
    return db.execute("SELECT n FROM change_counter WHERE id = 1").fetchone()[0]


def time_key():
    """What the live fragments show that moves with time alone: the day and the hour."""
    return datetime.datetime.fromtimestamp(now()).strftime("%Y-%m-%d %H")


def live_key(db, *scope):
    """A live poll's key: the counter, the hour, and what names this fragment for this viewer."""
    return (current(db), time_key(), *scope)


def cached(db, name, compute):
    """`compute(db)`, kept until the counter, the hour or the code moves.

    For parts shown on many polls and costly to compute (coverage): one copy
    per process, dropped at the next change.
    """
    key = (current(db), time_key())
    store = current_app.extensions.setdefault("fieldapp.change_cache", {})
    hit = store.get(name)
    if hit is None or hit[0] != key:
        hit = store[name] = (key, compute(db))
    return hit[1]
