"""On and off duty: who may be alerted now, and in which district.

Writes the `duty` table's status columns (on_duty, district, since); its
position columns are positions.py's.
"""
from ..clock import now
from ..store.db import one
from .devices import forget_devices
from .eligibility import eligible_counts


def duty_status(db, user_id):
    """The specialist's duty row joined with nothing; a blank one if never on duty."""
    return one(db, "SELECT * FROM duty WHERE user_id = ?", [user_id]) or {"user_id": user_id, "on_duty": 0, "district": None}


def districts_chosen(db):
    """The districts specialists have chosen on the duty page (on duty or not)."""
    return [r["district"] for r in db.query("SELECT DISTINCT district FROM duty WHERE district IS NOT NULL")]


def go_on_duty(db, user_id, district=None):
    """Mark a specialist on duty, optionally in a district."""
    if district and not one(db, "SELECT name FROM districts WHERE name = ?", [district]):
        raise ValueError(f"There is no district called {district!r}.")
    db.execute(
        "INSERT INTO duty (user_id, on_duty, district, since) VALUES (?, 1, ?, ?)"
        " ON CONFLICT(user_id) DO UPDATE SET on_duty = 1, district = excluded.district, since = excluded.since",
        [user_id, district or None, now()],
    )


def go_off_duty(db, user_id):
    """Mark a specialist off duty: they are no longer alerted."""
    db.execute("UPDATE duty SET on_duty = 0, since = ? WHERE user_id = ?", [now(), user_id])


def stand_down_everywhere(db, user_id):
    """Take an account off duty and forget every device it subscribed (a disabled account).

    A lost phone then stops receiving alerts even if the account comes back.
    """
    db.execute("UPDATE duty SET on_duty = 0 WHERE user_id = ?", [user_id])
    forget_devices(db, user_id)


def coverage(db):
    """Specialists who may be alerted now: {'total': n, 'districts': [(name, n)]}."""
    total, by_district = eligible_counts(db)
    return {"total": total, "districts": by_district}
