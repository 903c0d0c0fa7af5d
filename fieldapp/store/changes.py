"""The change counter: one number that moves whenever a live fragment's data may have changed.

Owner of the `change_counter` and `part_counters` tables. SQLite triggers
(created by migrations m017 and m022, whose lists of tables say which) bump it
on every insert, update and delete of the tables the board and the request
page read, so a poll compares one integer before it computes anything. A part
kept per process between polls (coverage) has a counter of its own in
`part_counters`, which only the tables that part reads move (m023's
M023_PARTS): a new request changes the board, not who is on duty. And
`request_touches` logs which request each write touched, so the board reads
again only the rows that changed (m023's M023_TOUCHED_TABLES). A change to
what the triggers watch is a new migration. Time passing alone never needs a bump:
the fragments write clock times, and what depends on the hour or the day (the
shift now, in-service due dates) goes into the poll's key beside the counter.
"""
import datetime

from flask import current_app

from ..clock import now

# Columns a live part reads only from the viewer's own row, which the request
# page's key holds itself (`viewer_position`): every on-duty specialist's phone
# writes its position about once a minute, and bumping the counter for each
# would leave a large agency's boards few 304s.
VIEWER_COLUMNS = {"duty": ("lat", "lon")}


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
    """A cached part's own counter now ('coverage' or 'people', m023)."""
    return db.execute("SELECT n FROM part_counters WHERE part = ?", [part]).fetchone()[0]


def cached(db, part, name, compute):
    """`compute(db)`, kept until `part`'s counter ('coverage' or 'people', m023) or the hour moves.

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
