"""The change counter: one number that moves whenever a live fragment's data may have changed.

Owner of the `change_counter` and `part_counters` tables. SQLite triggers (made
by `counter_triggers`, installed by migration m017_change_counter) bump it on
every insert, update and delete of the tables the board and the request page
read, so a poll compares one integer before it computes anything. A part kept
per process between polls (coverage) has a counter of its own in
`part_counters`, which only the tables that part reads move (m023): a new
request changes the board, not who is on duty. And `request_touches` logs which
request each write touched, so the board reads again only the rows that
changed (m023). Time passing alone never needs a bump:
the fragments write clock times, and what depends on the hour or the day (the
shift now, in-service due dates) goes into the poll's key beside the counter.
"""
import datetime

from flask import current_app

from ..clock import now

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


# The parts kept per process between polls (`cached`), each with the tables it
# reads: only a write to one of these moves its counter. A test reads the tables
# each part touches through SQLite's authorizer and fails when one is missing.
CACHED_PARTS = {
    "coverage": ("districts", "duty", "inservice_training", "roster", "users"),
    # The names and units the board's rows show: a rename redraws every row.
    "people": ("users",),
}
# The columns whose update moves a part's counter, where not every column does.
PART_UPDATE_COLUMNS = {"coverage": UPDATE_COLUMNS, "people": {"users": ("id", "display_name", "unit")}}

# The tables a board row is drawn from: the column that names the row's request,
# and the columns whose update changes what the row shows (None: every column).
# A write to one of them logs its request in `request_touches`. A test reads the
# columns the board's query touches through SQLite's authorizer and fails when
# one is missing.
REQUEST_ROW_TABLES = {
    "cit_requests": ("id", None),
    "alerts": ("request_id", None),
    "outbox": ("request_id", ("request_id", "user_id", "channel", "state")),
    "alert_receipts": ("request_id", ("request_id", "user_id", "kind", "delivered_at", "seen_at")),
}


def counter_triggers(tables, update_columns=None, part=None):
    """The SQL that creates the counter's three triggers on each of `tables`.

    `update_columns` ({table: columns}) limits a table's update trigger to those
    columns. With `part`, the triggers move that part's counter in `part_counters`.
    """
    update_columns = update_columns or {}
    name, bump = (f"part_counter_{part}", f"UPDATE part_counters SET n = n + 1 WHERE part = '{part}'") if part else (
        "change_counter", "UPDATE change_counter SET n = n + 1 WHERE id = 1")

    def event(op, table):
        columns = update_columns.get(table) if op == "UPDATE" else None
        return f"UPDATE OF {', '.join(columns)}" if columns else op

    return "\n".join(
        f"CREATE TRIGGER {name}_{table}_{op.lower()} AFTER {event(op, table)} ON {table} BEGIN {bump}; END;"
        for table in tables
        for op in ("INSERT", "UPDATE", "DELETE")
    )


def touch_triggers(tables):
    """The SQL that logs, in `request_touches`, the request each write to `tables` touched.

    `tables` is {table: (request column, columns whose update counts, or None for all)}.
    """
    def trigger(table, op, column, columns):
        event = f"UPDATE OF {', '.join(columns)}" if op == "UPDATE" and columns else op
        # Not every outbox row or receipt belongs to a request (board pushes, test pushes);
        # an update that moved a row to another request touches both.
        rows = {"INSERT": ["NEW"], "DELETE": ["OLD"], "UPDATE": ["NEW", "OLD"]}[op]
        body = " ".join(
            f"INSERT INTO request_touches (request_id) SELECT {row}.{column} WHERE {row}.{column} IS NOT NULL"
            + (f" AND OLD.{column} IS NOT NEW.{column};" if row == "OLD" and op == "UPDATE" else ";")
            for row in rows)
        return f"CREATE TRIGGER request_touch_{table}_{op.lower()} AFTER {event} ON {table} BEGIN {body} END;"

    return "\n".join(trigger(table, op, column, columns)
                     for table, (column, columns) in tables.items() for op in ("INSERT", "UPDATE", "DELETE"))


def last_touch(db):
    """The newest entry in the touch log (0 for none): a board read after it sees every touch up to it."""
    return db.execute("SELECT COALESCE(MAX(n), 0) FROM request_touches").fetchone()[0]


def touched_since(db, after):
    """The requests written since touch `after`, or None when the log no longer reaches back that far.

    The log keeps the last 1,000 to 2,000 touches (m023); a process that last
    read the board further back reads it whole.
    """
    # n counts up by one from 1 (AUTOINCREMENT); the oldest kept touch must be the one just after `after`, or older.
    oldest = db.execute("SELECT MIN(n) FROM request_touches").fetchone()[0]
    if oldest is not None and oldest > after + 1:
        return None
    return {row[0] for row in db.execute("SELECT DISTINCT request_id FROM request_touches WHERE n > ?", [after])}


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


def part_current(db, part):
    """A cached part's own counter now (a key of CACHED_PARTS)."""
    return db.execute("SELECT n FROM part_counters WHERE part = ?", [part]).fetchone()[0]


def cached(db, part, name, compute):
    """`compute(db)`, kept until `part`'s counter (a key of CACHED_PARTS) or the hour moves.

    For what is shown on many polls and costly to compute (coverage): one copy
    per process, dropped when a table it reads is written. `name` tells apart
    two computations that read the same part's tables.
    """
    key = (part_current(db, part), time_key())
    store = current_app.extensions.setdefault("fieldapp.change_cache", {})
    hit = store.get((part, name))
    if hit is None or hit[0] != key:
        hit = store[part, name] = (key, compute(db))
    return hit[1]
