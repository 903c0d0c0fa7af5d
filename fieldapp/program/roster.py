"""The roster: who volunteered, who was selected and trained, when each specialist's next
in-service is due, and which districts and shifts they cover.

This module owns the `roster` and `inservice_training` tables (schema.m004_program):
every write to them is a function here, and a coordinator's change is audited
here too. The accounts themselves are identity's (accounts.py, admin.py).
"""
import datetime
import re

from flask import abort, current_app

from ..audit import log as audit
from ..clock import now
from ..identity import admin
from ..store.db import one, write_transaction
from ..web.downloads import FORMULA_START
from ..districts import all_districts
from ..delivery import receipts

SHIFTS = ("day", "evening", "night")
TEXT_LIMITS = {"display_name": 100, "unit": 40, "phone": 40, "supervisor_recommendation": 2000, "interview_notes": 2000}
DUE_SOON_DAYS = 60


def today():
    """The calendar date of the app's clock, in the server's local time."""
    return datetime.date.fromtimestamp(now())


def _split(text):
    return [part for part in (text or "").split(";") if part]


def next_inservice_due(course_completed_on, inservice_dates, interval_days):
    """When the next in-service is due: `interval_days` after the latest training, or None if never trained."""
    # The latest in-service, or the 40-hour course when there is none; taking the
    # later of all of them also copes with an in-service recorded before the course.
    latest = max([d for d in [course_completed_on, *inservice_dates] if d], default=None)
    if latest is None:
        return None
    return datetime.date.fromisoformat(latest) + datetime.timedelta(days=int(interval_days))


ROSTER_SQL = (
    "SELECT u.id, u.username, u.display_name, u.unit, u.phone, u.role, u.disabled,"
    " r.volunteered_on, COALESCE(r.supervisor_recommendation, '') AS supervisor_recommendation,"
    " COALESCE(r.interview_notes, '') AS interview_notes, r.course_completed_on,"
    " COALESCE(r.districts, '') AS districts, COALESCE(r.shifts, '') AS shifts,"
    # No roster row means active: requests.selection (the one eligibility rule) alerts such a specialist too.
    " COALESCE(r.active, 1) AS active,"
    " (SELECT GROUP_CONCAT(t.completed_on, ';') FROM inservice_training t WHERE t.user_id = u.id) AS inservice_dates"
    " FROM users u LEFT JOIN roster r ON r.user_id = u.id"
)


def _specialist(row, interval_days, on):
    """A roster row with its lists split and its due date and flags worked out for the day `on`."""
    entry = dict(row)
    entry["inservice_dates"] = sorted(set(_split(row["inservice_dates"])))
    entry["districts"] = _split(row["districts"])
    entry["shifts"] = _split(row["shifts"])
    entry["active"] = bool(row["active"])
    due = next_inservice_due(row["course_completed_on"], entry["inservice_dates"], interval_days)
    entry["next_due"] = due
    entry["past_due"] = due is not None and due < on
    entry["due_soon"] = due is not None and not entry["past_due"] and (due - on).days <= DUE_SOON_DAYS
    # Certified: completed the 40-hour course and not past due for in-service.
    entry["certified"] = bool(row["course_completed_on"]) and not entry["past_due"]
    return entry


def read_roster(db, last_delivery=True):
    """Every CIT account with its roster record, in-service dates and next due date, by name.

    With `last_delivery`, also when alerts last reached each one's phone (read
    from delivery receipts, which every alert writes: coverage, kept until a
    table it reads is written, goes without).
    """
    interval, on = current_app.config["INSERVICE_INTERVAL_DAYS"], today()
    rows = db.query(f"{ROSTER_SQL} WHERE u.role = 'cit' ORDER BY u.display_name COLLATE NOCASE, u.username")
    specialists = [_specialist(r, interval, on) for r in rows]
    return _with_last_delivery(db, specialists) if last_delivery else specialists


def _with_last_delivery(db, specialists):
    """When alerts last reached each specialist's phone; flagged after RECEIPT_STALE_DAYS of silence."""
    last = receipts.last_deliveries(db)
    stale_before = now() - current_app.config["RECEIPT_STALE_DAYS"] * 86400
    for entry in specialists:
        entry["last_delivery"] = last.get(entry["id"])
        entry["alerts_stale"] = entry["last_delivery"] is None or entry["last_delivery"] < stale_before
    return specialists


def person(db, user_id):
    """One account with whatever roster record it has, or NotFound."""
    row = one(db, f"{ROSTER_SQL} WHERE u.id = ?", [user_id])
    if row is None:
        abort(404, description="There is no account with that number.")
    return _specialist(row, current_app.config["INSERVICE_INTERVAL_DAYS"], today())


def other_accounts(db):
    """Accounts that are not CIT specialists, so a coordinator can find one to promote."""
    return list(db.query(
        "SELECT id, username, display_name, role, unit, disabled FROM users WHERE role != 'cit' ORDER BY role, display_name"
    ))


def parse_day(text):
    """A date written strictly as YYYY-MM-DD in the years 1900–2999, or None."""
    # Strict, because fromisoformat also takes week dates (2026-W14-1); bounded,
    # because year 1 or 9999 would overflow turning the range into timestamps.
    if not re.fullmatch(r"(19|2\d)\d\d-\d{2}-\d{2}", text or ""):
        return None
    try:
        return datetime.date.fromisoformat(text)
    except ValueError:
        return None


def parse_month(text):
    """The first day of a month written as YYYY-MM, or None."""
    return parse_day(f"{text}-01") if re.fullmatch(r"\d{4}-\d{2}", text or "") else None


def _date(text, label, latest):
    """A YYYY-MM-DD date no later than `latest`, as ISO text; ValueError otherwise."""
    day = parse_day(text)
    if day is None:
        raise ValueError(f"{label}: “{text}” is not a date; write it as YYYY-MM-DD.")
    if day > latest:
        raise ValueError(f"{label}: {day.isoformat()} is in the future.")
    return day.isoformat()


def _uncell(text):
    """Undo the apostrophe the export puts before a cell a spreadsheet would run as a formula."""
    return text[1:] if text[:1] == "'" and text[1:2] in FORMULA_START else text


def clean_account_fields(raw):
    """Display name, unit and phone trimmed and length-checked: (values, errors)."""
    values, errors = {}, []
    for field in ("display_name", "unit", "phone"):
        values[field] = _uncell((raw.get(field) or "").strip())
        if len(values[field]) > TEXT_LIMITS[field]:
            errors.append(f"{field}: keep it under {TEXT_LIMITS[field]} characters.")
    return values, errors


def clean_roster_fields(raw, known_districts, latest):
    """One specialist's roster values from CSV-shaped text: (values, errors).

    Dates are YYYY-MM-DD and not after `latest`; lists are separated by
    semicolons; districts must exist (case does not matter) and shifts are
    day, evening or night.
    """
    values, errors = {}, []
    for field in ("volunteered_on", "course_completed_on"):
        text = (raw.get(field) or "").strip()
        try:
            values[field] = _date(text, field, latest) if text else None
        except ValueError as e:
            errors.append(str(e))
    for field in ("supervisor_recommendation", "interview_notes"):
        values[field] = _uncell((raw.get(field) or "").strip())
        if len(values[field]) > TEXT_LIMITS[field]:
            errors.append(f"{field}: keep it under {TEXT_LIMITS[field]} characters.")
    dates = set()
    # Semicolons in the CSV; a person typing in the form may use commas or spaces too.
    for text in re.split(r"[;,\s]+", raw.get("inservice_dates") or ""):
        if text:
            try:
                dates.add(_date(text, "inservice_dates", latest))
            except ValueError as e:
                errors.append(str(e))
    values["inservice_dates"] = sorted(dates)
    by_lower = {name.lower(): name for name in known_districts}
    values["districts"] = []
    for name in _split_list(raw.get("districts")):
        if name.lower() not in by_lower:
            errors.append(f"districts: there is no district called “{name}” (known: {', '.join(known_districts) or 'none'}).")
        elif by_lower[name.lower()] not in values["districts"]:
            values["districts"].append(by_lower[name.lower()])
    values["shifts"] = []
    for name in _split_list(raw.get("shifts")):
        if name.lower() not in SHIFTS:
            errors.append(f"shifts: “{name}” is not a shift; use {', '.join(SHIFTS)}.")
        elif name.lower() not in values["shifts"]:
            values["shifts"].append(name.lower())
    values["shifts"].sort(key=SHIFTS.index)
    active = (raw.get("active") or "").strip().lower()
    if active in ("", "yes", "y", "true", "1", "active"):
        values["active"] = 1
    elif active in ("no", "n", "false", "0", "inactive"):
        values["active"] = 0
    else:
        errors.append(f"active: “{active}” is not yes or no.")
    return values, errors


def _split_list(text):
    return [part.strip() for part in (text or "").split(";") if part.strip()]


def save_roster(db, user_id, values):
    """Write one specialist's roster record and in-service dates; call inside a write transaction."""
    db.execute(
        "INSERT INTO roster (user_id, volunteered_on, supervisor_recommendation, interview_notes, course_completed_on,"
        " districts, shifts, active, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)"
        " ON CONFLICT(user_id) DO UPDATE SET volunteered_on = excluded.volunteered_on,"
        " supervisor_recommendation = excluded.supervisor_recommendation, interview_notes = excluded.interview_notes,"
        " course_completed_on = excluded.course_completed_on, districts = excluded.districts,"
        " shifts = excluded.shifts, active = excluded.active, updated_at = excluded.updated_at",
        [user_id, values["volunteered_on"], values["supervisor_recommendation"], values["interview_notes"],
         values["course_completed_on"], ";".join(values["districts"]), ";".join(values["shifts"]),
         values["active"], now()],
    )
    # Only the dates change: a session kept keeps its title.
    kept = {r["completed_on"] for r in db.query("SELECT completed_on FROM inservice_training WHERE user_id = ?", [user_id])}
    wanted = set(values["inservice_dates"])
    for day in kept - wanted:
        db.execute("DELETE FROM inservice_training WHERE user_id = ? AND completed_on = ?", [user_id, day])
    for day in sorted(wanted - kept):
        db.execute("INSERT INTO inservice_training (user_id, completed_on) VALUES (?, ?)", [user_id, day])


def set_active(db, target, active):
    """Set a specialist active or inactive (an inactive specialist is never alerted), audited."""
    with write_transaction(db):
        db.execute(
            "INSERT INTO roster (user_id, active, updated_at) VALUES (?, ?, ?)"
            " ON CONFLICT(user_id) DO UPDATE SET active = excluded.active, updated_at = excluded.updated_at",
            [target["id"], int(active), now()],
        )
        audit.record(db, "roster_updated", target["username"], "set active" if active else "set inactive")


def add_officer(db, username, role, details, values):
    """Create an account with a generated password and, for a specialist, its roster record, in one audited
    transaction; returns the password, shown once.

    `details` are the account's name, unit and phone; `values` the roster
    record (None for another role). ValueError when the username was taken meanwhile.
    """
    password, password_hash = admin.generated_password()
    with write_transaction(db):
        user_id = admin.create_account(db, username, role, details, password_hash)
        if values is not None:
            _save_roster_audited(db, user_id, username, values)
    return password


def save_officer(db, target, role, details, values):
    """Save an account's name, unit, phone and role and, for a specialist, its roster record, in one audited transaction."""
    with write_transaction(db):
        admin.update_account(db, target, details, role)
        if values is not None:
            _save_roster_audited(db, target["id"], target["username"], values)


def _save_roster_audited(db, user_id, username, values):
    """Write a specialist's roster record and audit what it now says; inside the caller's transaction."""
    save_roster(db, user_id, values)
    audit.record(db, "roster_updated", username, describe(values))


def describe(values):
    """A short audit line for a roster record."""
    return (
        f"course {values['course_completed_on'] or '-'}; in-service {len(values['inservice_dates'])};"
        f" districts {','.join(values['districts']) or '-'}; shifts {','.join(values['shifts']) or '-'};"
        f" {'active' if values['active'] else 'inactive'}"
    )


def district_names(db):
    """Every district's name."""
    return [d["name"] for d in all_districts(db)]


def district_references(db):
    """Every district name that some roster record lists."""
    return {name for row in db.query("SELECT districts FROM roster WHERE districts != ''") for name in _split(row["districts"])}


def inservice_sessions(db, user_id):
    """A specialist's in-service training, newest first: [{id, completed_on, title}]."""
    return list(db.query(
        "SELECT id, completed_on, title FROM inservice_training WHERE user_id = ? ORDER BY completed_on DESC", [user_id]
    ))


def inservice_session(db, user_id, session_id):
    """One of a specialist's in-service sessions, {id, completed_on}, or None."""
    return one(db, "SELECT id, completed_on FROM inservice_training WHERE id = ? AND user_id = ?", [session_id, user_id])


def title_inservice(db, target, session, title):
    """Name one of a specialist's in-service sessions ("Autism awareness, 4 h"), audited."""
    with write_transaction(db):
        db.execute("UPDATE inservice_training SET title = ? WHERE id = ?", [title, session["id"]])
        audit.record(db, "roster_updated", target["username"], f"in-service {session['completed_on']} titled")


def add_record_once(db, user_id, values, inservice_title=""):
    """Give a specialist a roster record unless they have one; True if added.

    For demo data: a coordinator's later edits survive another `make run`.
    """
    added = db.execute(
        "INSERT OR IGNORE INTO roster (user_id, volunteered_on, supervisor_recommendation, course_completed_on,"
        " districts, shifts) VALUES (?, ?, ?, ?, ?, ?)",
        [user_id, values["volunteered_on"], values["supervisor_recommendation"], values["course_completed_on"],
         ";".join(values["districts"]), ";".join(values["shifts"])],
    ).rowcount == 1
    if added:
        for day in values["inservice_dates"]:
            db.execute("INSERT INTO inservice_training (user_id, completed_on, title) VALUES (?, ?, ?)",
                       [user_id, day, inservice_title])
    return added
