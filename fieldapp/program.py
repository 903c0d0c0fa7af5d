"""The CIT program: the coordinator's roster, coverage by district and shift, and outcome reports.

This area owns the `roster` and `inservice_training` tables (db.m004_program):
who volunteered, who was selected and trained, when each specialist's next
in-service is due, and which districts and shifts they cover. It reads
requests and their timelines to show whether the program works, and duty to
show who is on now.

Who may do what: only coordinators manage the roster; coordinators and
supervisors see coverage and reports.
"""
import csv
import dataclasses
import datetime
import io
import re
import secrets
import statistics
from collections import Counter

from flask import Blueprint, abort, current_app, flash, make_response, redirect, render_template, request, url_for
from flask_login import current_user
from markupsafe import Markup, escape
from werkzeug.exceptions import RequestEntityTooLarge

from . import audit
from .auth import check_username, create_user, hash_password, role_required, set_disabled, set_password
from .requests.domain import DISPOSITIONS, OPEN_STATES
from .clock import now
from .db import ROLES, get_db, one, write_transaction
from .downloads import FORMULA_START, csv_response
from .duty import coverage as on_duty_coverage
from .duty import districts as all_districts
from .geo import distance_m
from .htmx import is_htmx, page_or_block

bp = Blueprint("program", __name__, url_prefix="/program")

SHIFTS = ("day", "evening", "night")
# The roster's CSV columns, in order; import and export share them.
ROSTER_COLUMNS = (
    "username", "display_name", "unit", "phone", "volunteered_on", "supervisor_recommendation",
    "interview_notes", "course_completed_on", "inservice_dates", "districts", "shifts", "active",
)
TEXT_LIMITS = {"display_name": 100, "unit": 40, "phone": 40, "supervisor_recommendation": 2000, "interview_notes": 2000}
# Under the app's 64 KB request limit, so the preview can post the file back for the import.
MAX_IMPORT_BYTES = 56 * 1024
MAX_IMPORT_ROWS = 1000
# Diverted to crisis services, as the program counts it (emergency evaluation is reported on its own).
DIVERTED = ("resolved_on_scene", "voluntary_transport", "mobile_crisis_referral")
NO_COORDINATES = "No coordinates"
NO_DISTRICTS = "No districts set up"
MAX_REPORT_DAYS = 3660
DUE_SOON_DAYS = 60


@bp.record_once
def _config_defaults(state):
    # Defaults live with the area that reads them; config.py or FIELDAPP_* variables override them.
    state.app.config.setdefault("INSERVICE_INTERVAL_DAYS", 730)  # CIT International: in-service at least every two years
    state.app.config.setdefault("SHIFT_STARTS", {"day": 7, "evening": 15, "night": 23})


def today():
    """The calendar date of the app's clock, in the server's local time."""
    return datetime.date.fromtimestamp(now())


# ---- The roster ----


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
    # No roster row means active: cit_requests.ELIGIBLE alerts such a specialist too.
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


def read_roster(db):
    """Every CIT account with its roster record, in-service dates and next due date, by name."""
    interval, on = current_app.config["INSERVICE_INTERVAL_DAYS"], today()
    rows = db.query(f"{ROSTER_SQL} WHERE u.role = 'cit' ORDER BY u.display_name COLLATE NOCASE, u.username")
    return [_specialist(r, interval, on) for r in rows]


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


def set_active(db, user_id, active):
    """Set a specialist active or inactive; an inactive specialist is never alerted."""
    db.execute(
        "INSERT INTO roster (user_id, active, updated_at) VALUES (?, ?, ?)"
        " ON CONFLICT(user_id) DO UPDATE SET active = excluded.active, updated_at = excluded.updated_at",
        [user_id, int(active), now()],
    )


def _describe(values):
    """A short audit line for a roster record."""
    return (
        f"course {values['course_completed_on'] or '-'}; in-service {len(values['inservice_dates'])};"
        f" districts {','.join(values['districts']) or '-'}; shifts {','.join(values['shifts']) or '-'};"
        f" {'active' if values['active'] else 'inactive'}"
    )


def district_names(db):
    """Every district's name."""
    return [d["name"] for d in all_districts(db)]


# ---- CSV ----

# A spreadsheet runs a cell starting with one of these as a formula (CSV injection).
def roster_csv_rows(specialists):
    """The roster as CSV rows in ROSTER_COLUMNS order."""
    for s in specialists:
        yield [
            s["username"], s["display_name"], s["unit"], s["phone"], s["volunteered_on"] or "",
            s["supervisor_recommendation"], s["interview_notes"], s["course_completed_on"] or "",
            ";".join(s["inservice_dates"]), ";".join(s["districts"]), ";".join(s["shifts"]),
            "yes" if s["active"] else "no",
        ]


@dataclasses.dataclass
class ImportRow:
    """One line of a roster import: what it says, what it will do, and what is wrong with it."""

    line: int
    username: str
    account: dict = dataclasses.field(default_factory=dict)
    values: dict = dataclasses.field(default_factory=dict)
    errors: list = dataclasses.field(default_factory=list)
    user_id: int | None = None  # None: the import creates the account

    @property
    def next_due(self):
        return next_inservice_due(self.values.get("course_completed_on"), self.values.get("inservice_dates", []),
                                  current_app.config["INSERVICE_INTERVAL_DAYS"])


@dataclasses.dataclass
class ImportPreview:
    """A checked roster file: its rows and any problem with the file as a whole."""

    rows: list
    file_errors: list

    @property
    def valid(self):
        return not self.file_errors and bool(self.rows) and not any(r.errors for r in self.rows)

    @property
    def error_count(self):
        return len(self.file_errors) + sum(1 for r in self.rows if r.errors)


def read_roster_csv(db, text):
    """Parse and check a roster CSV against the database without writing anything."""
    reader = csv.reader(io.StringIO(text, newline=""))
    rows, header = [], None
    try:
        for fields in reader:
            if not any(f.strip() for f in fields):
                continue  # blank lines, as spreadsheets leave at the end
            if header is None:
                header = [f.strip().lower() for f in fields]
                problem = _header_problem(header)
                if problem:
                    return ImportPreview([], [problem])
                continue
            if len(rows) >= MAX_IMPORT_ROWS:
                return ImportPreview([], [f"The file has more than {MAX_IMPORT_ROWS} rows; split it."])
            rows.append((reader.line_num, fields))
    except csv.Error as e:
        return ImportPreview([], [f"Line {reader.line_num}: the file is not valid CSV ({e})."])
    if header is None:
        return ImportPreview([], ["The file is empty; the first line must name the columns."])
    if not rows:
        return ImportPreview([], ["The file has a header but no officers."])
    existing = {r["username"].lower(): r for r in db.query("SELECT id, username, role FROM users")}
    names, latest = district_names(db), today()
    seen, checked = set(), []
    for line, fields in rows:
        checked.append(_check_row(line, header, fields, existing, names, latest, seen))
    return ImportPreview(checked, [])


def _header_problem(header):
    missing = [c for c in ROSTER_COLUMNS if c not in header]
    unknown = [c for c in header if c not in ROSTER_COLUMNS]
    repeated = sorted({c for c in header if header.count(c) > 1})
    if missing or unknown or repeated:
        parts = []
        if missing:
            parts.append(f"missing columns: {', '.join(missing)}")
        if unknown:
            parts.append(f"unknown columns: {', '.join(unknown)}")
        if repeated:
            parts.append(f"repeated columns: {', '.join(repeated)}")
        return f"The header line is wrong ({'; '.join(parts)}). The columns are: {', '.join(ROSTER_COLUMNS)}."
    return None


def _check_row(line, header, fields, existing, names, latest, seen):
    if len(fields) != len(header):
        row = ImportRow(line, fields[0].strip() if fields else "")
        row.errors.append(f"The line has {len(fields)} fields; the header has {len(header)}.")
        return row
    raw = dict(zip(header, fields))
    row = ImportRow(line, raw["username"].strip())
    try:
        row.username = check_username(row.username)
    except ValueError as e:
        row.errors.append(f"username: {e}")
    key = row.username.lower()
    if key in seen:
        row.errors.append(f"username: {row.username} appears earlier in the file.")
    seen.add(key)
    account = existing.get(key)
    if account is not None:
        row.user_id = account["id"]
        if account["role"] != "cit":
            row.errors.append(f"username: {account['username']} is a {account['role']} account; change the role on their page first.")
    row.account, errors = clean_account_fields(raw)
    row.errors += errors
    row.values, errors = clean_roster_fields(raw, names, latest)
    row.errors += errors
    return row


def apply_roster_import(db, rows):
    """Write every row of a checked import in one transaction; returns [(username, display name, password)] for new accounts."""
    # Hash before taking the write lock: each hash takes about 0.1 s, and
    # request alerts must not wait behind a long import.
    created = [(r, secrets.token_urlsafe(12)) for r in rows if r.user_id is None]
    hashes = {r.username: hash_password(password) for r, password in created}
    with write_transaction(db):
        for r in rows:
            if r.user_id is None:
                r.user_id = create_user(db, r.username, None, "cit", r.account["display_name"] or None,
                                        r.account["unit"], r.account["phone"], password_hash=hashes[r.username],
                                        must_change=True)
                audit.record(db, "user_created", r.username, "role cit (roster import)")
            else:
                db.execute(
                    "UPDATE users SET display_name = COALESCE(NULLIF(?, ''), display_name), unit = ?, phone = ? WHERE id = ?",
                    [r.account["display_name"], r.account["unit"], r.account["phone"], r.user_id],
                )
            save_roster(db, r.user_id, r.values)
        audit.record(db, "roster_imported", "roster",
                     f"{len(rows)} rows: {len(created)} new accounts, {len(rows) - len(created)} updated")
    return [(r.username, r.account["display_name"] or r.username, password) for r, password in created]


# ---- Coverage ----


def current_shift(hour, starts):
    """The shift in progress at `hour` (0–23), given the hour each shift starts."""
    ordered = sorted(starts.items(), key=lambda pair: pair[1])
    shift = ordered[-1][0]  # before the first start of the day, the last shift (across midnight) is still on
    for name, start in ordered:
        if hour >= start:
            shift = name
    return shift


def roster_coverage(db):
    """Certified, active specialists on the roster for each district and shift, and who is on duty now."""
    ready = [s for s in read_roster(db) if s["certified"] and s["active"] and not s["disabled"]]
    on_duty = on_duty_coverage(db)
    on_duty_by_district = dict(on_duty["districts"])
    rows = []
    for name in district_names(db):
        counts = {shift: sum(1 for s in ready if name in s["districts"] and shift in s["shifts"]) for shift in SHIFTS}
        rows.append({"district": name, "roster": counts, "on_duty": on_duty_by_district.get(name, 0)})
    hour = datetime.datetime.fromtimestamp(now()).hour
    return {
        "shifts": SHIFTS,
        "shift_now": current_shift(hour, current_app.config["SHIFT_STARTS"]),
        "starts": current_app.config["SHIFT_STARTS"],
        "rows": rows,
        "gaps": [(r["district"], shift) for r in rows for shift in SHIFTS if r["roster"][shift] == 0],
        "on_duty_total": on_duty["total"],
        "on_duty_no_district": on_duty["total"] - sum(on_duty_by_district.values()),
    }


# ---- Outcome reports ----


def _local_midnight(day):
    return datetime.datetime.combine(day, datetime.time.min).timestamp()


def request_facts(db, start_day, end_day):
    """Each request created from `start_day` to `end_day` inclusive (local time), with first accept and arrival."""
    return list(
        db.query(
            "SELECT r.id, r.created_at, r.lat, r.lon, r.state, r.unanswered, r.disposition,"
            " r.weapon, r.medical, r.juvenile, r.force_used, r.officer_injured, r.person_injured,"
            # From the timeline, not the columns: a reassignment overwrites accepted_at.
            " (SELECT MIN(e.at) FROM request_events e WHERE e.request_id = r.id AND e.event IN ('accepted', 'assigned'))"
            " AS first_accept_at,"
            " (SELECT MIN(e.at) FROM request_events e WHERE e.request_id = r.id AND e.event = 'on_scene') AS on_scene_at"
            " FROM cit_requests r WHERE r.created_at >= ? AND r.created_at < ? ORDER BY r.created_at",
            [_local_midnight(start_day), _local_midnight(end_day + datetime.timedelta(days=1))],
        )
    )


def district_of(lat, lon, centres):
    """The district whose centre is nearest to (lat, lon); NO_COORDINATES for a typed location."""
    if lat is None or lon is None:
        return NO_COORDINATES
    if not centres:
        return NO_DISTRICTS
    return min(centres, key=lambda d: (distance_m(lat, lon, d["lat"], d["lon"]), d["name"]))["name"]


def month_of(epoch):
    """'2026-04' for a timestamp, in the server's local time."""
    return datetime.datetime.fromtimestamp(epoch).strftime("%Y-%m")


def p90(values):
    """The 90th percentile, interpolating between closest ranks (Excel's PERCENTILE.INC); None when empty."""
    if not values:
        return None
    if len(values) == 1:
        return float(values[0])
    return statistics.quantiles(values, n=10, method="inclusive")[-1]


def _share(part, whole):
    return None if not whole else part / whole


def summarise(facts):
    """The report's figures for a set of requests."""
    accept = [f["first_accept_at"] - f["created_at"] for f in facts if f["first_accept_at"] is not None]
    on_scene = [f["on_scene_at"] - f["created_at"] for f in facts if f["on_scene_at"] is not None]
    resolved = [f for f in facts if f["state"] == "resolved" and f["disposition"]]
    dispositions = Counter(f["disposition"] for f in resolved)
    diverted = sum(dispositions[d] for d in DIVERTED)
    return {
        "requests": len(facts),
        "open": sum(1 for f in facts if f["state"] in OPEN_STATES),
        "resolved": len(resolved),
        "cancelled": sum(1 for f in facts if f["state"] == "cancelled"),
        "unanswered": sum(1 for f in facts if f["unanswered"]),
        "accepted": len(accept),
        "accept_median": statistics.median(accept) if accept else None,
        "accept_p90": p90(accept),
        "on_scene": len(on_scene),
        "on_scene_median": statistics.median(on_scene) if on_scene else None,
        "on_scene_p90": p90(on_scene),
        "dispositions": {key: dispositions[key] for key in DISPOSITIONS},
        "diverted": diverted,
        "diverted_share": _share(diverted, len(resolved)),
        "arrested": dispositions["arrest"],
        "arrested_share": _share(dispositions["arrest"], len(resolved)),
        "weapon": sum(1 for f in facts if f["weapon"]),
        "medical": sum(1 for f in facts if f["medical"]),
        "juvenile": sum(1 for f in facts if f["juvenile"]),
        "force_used": sum(1 for f in facts if f["force_used"]),
        "officer_injured": sum(1 for f in facts if f["officer_injured"]),
        "person_injured": sum(1 for f in facts if f["person_injured"]),
    }


def _months(start_day, end_day):
    months, year, month = [], start_day.year, start_day.month
    while (year, month) <= (end_day.year, end_day.month):
        months.append(f"{year:04d}-{month:02d}")
        year, month = (year + 1, 1) if month == 12 else (year, month + 1)
    return months


def report(db, start_day, end_day, by):
    """Figures per district or per month over the range, every group listed even when empty, and the total."""
    facts = request_facts(db, start_day, end_day)
    if by == "month":
        labels = _months(start_day, end_day)
        key = lambda f: month_of(f["created_at"])  # noqa: E731
    else:
        centres = all_districts(db)
        labels = [d["name"] for d in centres]
        key = lambda f: district_of(f["lat"], f["lon"], centres)  # noqa: E731
    groups = {label: [] for label in labels}
    for f in facts:
        groups.setdefault(key(f), []).append(f)
    return {"rows": [(label, summarise(members)) for label, members in groups.items()], "total": summarise(facts)}


REPORT_CSV_COLUMNS = (
    ["requests", "open", "resolved", "cancelled", "unanswered", "accepted", "median_accept_s", "p90_accept_s",
     "on_scene", "median_on_scene_s", "p90_on_scene_s"]
    + [f"disposition_{key}" for key in DISPOSITIONS]
    + ["diverted", "diverted_pct", "arrested", "arrested_pct", "weapon", "medical", "juvenile",
       "force_used", "officer_injured", "person_injured"]
)


def _round(value, places=1):
    return "" if value is None else round(value, places)


def _pct(share):
    return "" if share is None else round(share * 100, 1)


def report_csv_row(label, f):
    """One report row in REPORT_CSV_COLUMNS order, after the group's label."""
    return (
        [label, f["requests"], f["open"], f["resolved"], f["cancelled"], f["unanswered"], f["accepted"],
         _round(f["accept_median"]), _round(f["accept_p90"]), f["on_scene"], _round(f["on_scene_median"]),
         _round(f["on_scene_p90"])]
        + [f["dispositions"][key] for key in DISPOSITIONS]
        + [f["diverted"], _pct(f["diverted_share"]), f["arrested"], _pct(f["arrested_share"]),
           f["weapon"], f["medical"], f["juvenile"],
           f["force_used"], f["officer_injured"], f["person_injured"]]
    )


# ---- Charts: inline SVG drawn here, so they work offline, print, and need no script ----

# Each series names its class; app.css themes it, and the fill attribute is the fallback.
CHART_COLOURS = {"bar-a": "#12233d", "bar-b": "#067647", "bar-c": "#b42318"}


def bar_chart(title, labels, series, fmt=str):
    """A horizontal bar chart as inline SVG: one band per label, one bar per series.

    `series` is [(name, css_class, values)], one value per label; None draws
    no bar and shows a dash.
    """
    # A narrow viewBox keeps the text readable when the chart shrinks to a phone's width.
    width, label_w, value_w, bar_h, gap = 520, 112, 92, 18, 14
    legend_h = 28 if len(series) > 1 else 0
    band_h = len(series) * (bar_h + 3) + gap
    height = legend_h + band_h * len(labels) + 4
    peak = max([v for _, _, values in series for v in values if v is not None], default=0) or 1
    scale = (width - label_w - value_w) / peak
    parts = [
        f'<svg class="chart" viewBox="0 0 {width} {height}" width="{width}" height="{height}" role="img"'
        f' aria-label="{escape(title)}" xmlns="http://www.w3.org/2000/svg">',
        f"<title>{escape(title)}</title>",
    ]
    if legend_h:
        x = label_w
        for name, css, _ in series:
            parts.append(f'<rect class="{css}" x="{x}" y="6" width="14" height="14" fill="{CHART_COLOURS[css]}"/>')
            parts.append(f'<text x="{x + 19}" y="18" font-size="14" fill="currentColor">{escape(name)}</text>')
            x += 36 + 8 * len(name)
    for i, label in enumerate(labels):
        top = legend_h + i * band_h
        parts.append(f'<text x="{label_w - 8}" y="{top + (band_h - gap) / 2 + 5:.1f}" font-size="15" text-anchor="end"'
                     f' fill="currentColor">{escape(str(label)[:14])}</text>')
        for j, (name, css, values) in enumerate(series):
            value, y = values[i], top + j * (bar_h + 3)
            bar_w = 0 if value is None else value * scale
            shown = "—" if value is None else fmt(value)
            if bar_w:
                parts.append(f'<rect class="{css}" x="{label_w}" y="{y}" width="{bar_w:.1f}" height="{bar_h}"'
                             f' fill="{CHART_COLOURS[css]}"><title>{escape(name)}: {escape(shown)}</title></rect>')
            parts.append(f'<text x="{label_w + bar_w + 5:.1f}" y="{y + bar_h - 4}" font-size="14" fill="currentColor">'
                         f"{escape(shown)}</text>")
    parts.append("</svg>")
    return Markup("".join(parts))


def duration(seconds):
    """'4 min 24 s' for a number of seconds; '—' for none."""
    if seconds is None:
        return "—"
    seconds = round(seconds)
    return f"{seconds // 60} min {seconds % 60:02d} s" if seconds >= 60 else f"{seconds} s"


def percent(share):
    """'37.5%' for a share of one; '—' for none."""
    return "—" if share is None else f"{share * 100:.1f}%"


def report_charts(rows):
    """The report's charts as (caption, SVG): requests, diverted against arrested, minutes to accept and to scene."""
    labels = [label for label, _ in rows]
    figures = [f for _, f in rows]

    def scaled(key, factor):
        return [None if f[key] is None else f[key] * factor for f in figures]

    return [
        ("Requests", bar_chart("Requests", labels, [("Requests", "bar-a", [f["requests"] for f in figures])])),
        ("Diverted to crisis services and arrested, as a share of resolved requests",
         bar_chart("Diverted and arrested, share of resolved requests", labels,
                   [("Diverted", "bar-b", scaled("diverted_share", 100)), ("Arrested", "bar-c", scaled("arrested_share", 100))],
                   fmt=lambda v: f"{v:.1f}%")),
        ("Median minutes from the request to the first accept and to on scene",
         bar_chart("Median minutes to first accept and to on scene", labels,
                   [("To accept", "bar-a", scaled("accept_median", 1 / 60)), ("To on scene", "bar-b", scaled("on_scene_median", 1 / 60))],
                   fmt=lambda v: f"{v:.1f} min")),
    ]


def report_params(args):
    """The report's range and grouping from query arguments: (start, end, by); ValueError says what is wrong."""
    on = today()
    # By default the last twelve months, this one included.
    year, month = (on.year, on.month - 11) if on.month == 12 else (on.year - 1, on.month + 1)
    start = parse_day(args.get("from")) if args.get("from") else datetime.date(year, month, 1)
    end = parse_day(args.get("to")) if args.get("to") else on
    if start is None or end is None:
        raise ValueError("Give the dates as YYYY-MM-DD, for example 2026-01-31.")
    if end < start:
        raise ValueError("The end date is before the start date.")
    if (end - start).days > MAX_REPORT_DAYS:
        raise ValueError("Choose a range of at most ten years.")
    by = args.get("by") or "district"
    if by not in ("district", "month"):
        raise ValueError("Group the report by district or by month.")
    return start, end, by


# ---- Pages ----


@bp.app_template_filter("duration")
def duration_filter(seconds):
    """'4 min 24 s'."""
    return duration(seconds)


@bp.app_template_filter("percent")
def percent_filter(share):
    """'37.5%'."""
    return percent(share)


@bp.route("")
@role_required("coordinator", "supervisor")
def index():
    """The program's front door: the roster for coordinators, reports for supervisors."""
    return redirect(url_for("program.roster" if current_user.role == "coordinator" else "program.reports"))


def _roster_page(message=None):
    db = get_db()
    return page_or_block(
        "program/roster.html", "roster_table", specialists=read_roster(db), others=other_accounts(db),
        interval_days=current_app.config["INSERVICE_INTERVAL_DAYS"], message=message,
    )


@bp.route("/roster")
@role_required("coordinator")
def roster():
    """Every CIT specialist: selection, training, next in-service due, districts, shifts and whether active."""
    return _roster_page()


@bp.route("/roster/<int:user_id>/active", methods=["POST"])
@role_required("coordinator")
def roster_active(user_id):
    """Set a specialist active or inactive; inactive specialists are never alerted."""
    db = get_db()
    target = person(db, user_id)
    if target["role"] != "cit":
        abort(400, description="Only CIT specialists are on the roster.")
    value = request.form.get("active")
    if value not in ("0", "1"):
        abort(400, description="Say active=1 or active=0.")
    with write_transaction(db):
        set_active(db, user_id, value == "1")
        audit.record(db, "roster_updated", target["username"], "set active" if value == "1" else "set inactive")
    message = f"{target['display_name']} is {'active' if value == '1' else 'inactive: never alerted'}."
    if is_htmx():
        return _roster_page(message)
    flash(message)
    return redirect(url_for("program.roster"), 303)


def _form_from_person(target):
    """The officer form's fields, CSV-shaped, filled from an account and its roster record."""
    return {
        "username": target["username"], "display_name": target["display_name"], "role": target["role"],
        "unit": target["unit"], "phone": target["phone"], "volunteered_on": target["volunteered_on"] or "",
        "supervisor_recommendation": target["supervisor_recommendation"],
        "interview_notes": target["interview_notes"], "course_completed_on": target["course_completed_on"] or "",
        "inservice_dates": "; ".join(target["inservice_dates"]), "districts": ";".join(target["districts"]),
        "shifts": ";".join(target["shifts"]), "active": "yes" if target["active"] else "no",
    }


def _form_from_request(form):
    """The officer form's fields as posted, CSV-shaped so the import's checks apply unchanged."""
    values = {field: form.get(field, "") for field in ROSTER_COLUMNS if field not in ("districts", "shifts", "active")}
    values["role"] = form.get("role", "")
    values["districts"] = ";".join(form.getlist("districts"))
    values["shifts"] = ";".join(form.getlist("shifts"))
    values["active"] = "yes" if form.get("active") else "no"
    return values


def _officer_page(form, errors, target=None, status=200):
    db = get_db()
    return render_template(
        "program/officer.html", form=form, errors=errors, target=target, roles=ROLES, shifts=SHIFTS,
        districts=district_names(db), interval_days=current_app.config["INSERVICE_INTERVAL_DAYS"],
        sessions=inservice_sessions(db, target["id"]) if target else [],
    ), status


def _check_officer_form(form, target=None):
    """(account, roster values, errors) for the officer form; the roster is checked for CIT accounts only."""
    account, errors = clean_account_fields(form)
    if form["role"] not in ROLES:
        errors.append(f"role: choose one of {', '.join(ROLES)}.")
    if target is not None and target["id"] == current_user.id and form["role"] != target["role"]:
        errors.append("role: you cannot change your own role; ask another coordinator.")
    values = None
    if form["role"] == "cit":
        values, more = clean_roster_fields(form, district_names(get_db()), today())
        errors += more
    return account, values, errors


@bp.route("/roster/new", methods=["GET", "POST"])
@role_required("coordinator")
def new_officer():
    """Create an account with a generated password, shown once, and its roster record for a specialist."""
    if request.method == "GET":
        return _officer_page({"role": "cit", "active": "yes"}, [])
    form = _form_from_request(request.form)
    form["username"] = form["username"].strip()
    account, values, errors = _check_officer_form(form)
    try:
        check_username(form["username"])
    except ValueError as e:
        errors.insert(0, f"username: {e}")
    if one(get_db(), "SELECT id FROM users WHERE username = ?", [form["username"]]):
        errors.insert(0, f"username: {form['username']} is taken; find them under “Other accounts” to edit.")
    if errors:
        return _officer_page(form, errors, status=422)
    password = secrets.token_urlsafe(12)
    password_hash = hash_password(password)
    db = get_db()
    try:
        with write_transaction(db):
            user_id = create_user(db, form["username"], None, form["role"], account["display_name"] or None,
                                  account["unit"], account["phone"], password_hash=password_hash, must_change=True)
            audit.record(db, "user_created", form["username"], f"role {form['role']}")
            if values is not None:
                save_roster(db, user_id, values)
                audit.record(db, "roster_updated", form["username"], _describe(values))
    except ValueError as e:  # the username was taken meanwhile
        return _officer_page(form, [f"username: {e}"], status=409)
    return _created_page([(form["username"], account["display_name"] or form["username"], password)], status=201)


def _created_page(accounts, status=200, **context):
    response = make_response(render_template("program/created.html", accounts=accounts, **context), status)
    # The passwords are on this page once: never from a cache.
    response.headers["Cache-Control"] = "no-store"
    return response


@bp.route("/roster/<int:user_id>", methods=["GET", "POST"])
@role_required("coordinator")
def officer(user_id):
    """Edit an account's name, unit, phone and role, and a specialist's roster record."""
    db = get_db()
    target = person(db, user_id)
    if request.method == "GET":
        return _officer_page(_form_from_person(target), [], target)
    form = _form_from_request(request.form)
    form["username"] = target["username"]
    account, values, errors = _check_officer_form(form, target)
    if not account["display_name"]:
        errors.insert(0, "display_name: a name others will see is needed.")
    if errors:
        return _officer_page(form, errors, target, status=422)
    with write_transaction(db):
        db.execute("UPDATE users SET display_name = ?, unit = ?, phone = ?, role = ? WHERE id = ?",
                   [account["display_name"], account["unit"], account["phone"], form["role"], user_id])
        if form["role"] != target["role"]:
            audit.record(db, "role_changed", target["username"], f"{target['role']} -> {form['role']}")
        if values is not None:
            save_roster(db, user_id, values)
            audit.record(db, "roster_updated", target["username"], _describe(values))
    flash(f"Saved {account['display_name']}.")
    return redirect(url_for("program.roster"), 303)


def inservice_sessions(db, user_id):
    """A specialist's in-service training, newest first: [{id, completed_on, title}]."""
    return list(db.query(
        "SELECT id, completed_on, title FROM inservice_training WHERE user_id = ? ORDER BY completed_on DESC", [user_id]
    ))


@bp.route("/roster/<int:user_id>/inservice/<int:session_id>", methods=["POST"])
@role_required("coordinator")
def inservice_title(user_id, session_id):
    """Name an in-service session ("Autism awareness, 4 h"); its date is edited with the roster."""
    db = get_db()
    target = person(db, user_id)
    row = one(db, "SELECT id, completed_on FROM inservice_training WHERE id = ? AND user_id = ?", [session_id, user_id])
    if row is None:
        abort(404, description="That in-service session is not on this officer's record.")
    title = " ".join((request.form.get("title") or "").split())
    if len(title) > 100:
        abort(400, description="An in-service title has at most 100 characters.")
    with write_transaction(db):
        db.execute("UPDATE inservice_training SET title = ? WHERE id = ?", [title, session_id])
        audit.record(db, "roster_updated", target["username"], f"in-service {row['completed_on']} titled")
    message = f"Saved the title of the {row['completed_on']} session."
    if is_htmx():
        return page_or_block("program/officer.html", "inservice", target=target,
                            sessions=inservice_sessions(db, user_id), message=message)
    flash(message)
    return redirect(url_for("program.officer", user_id=user_id), 303)


def _someone_else(db, user_id, doing):
    """The account `user_id`, refusing the coordinator's own (they would lock
    themselves out) and any post without its confirming tick."""
    target = person(db, user_id)
    if target["id"] == current_user.id:
        abort(400, description=f"You cannot {doing} your own account here; ask another coordinator.")
    if request.form.get("confirm") != "yes":
        abort(400, description="Tick the box to confirm: this signs the officer out everywhere. Nothing was changed.")
    return target


@bp.route("/roster/<int:user_id>/password", methods=["POST"])
@role_required("coordinator")
def reset_password(user_id):
    """Give an account a new generated password, shown once, and sign it out everywhere."""
    db = get_db()
    target = _someone_else(db, user_id, "reset the password of")
    password = secrets.token_urlsafe(12)
    password_hash = hash_password(password)
    with write_transaction(db):
        set_password(db, user_id, password_hash, must_change=True)
        audit.record(db, "password_reset", target["username"])
    return _created_page([(target["username"], target["display_name"], password)], reset=True)


@bp.route("/roster/<int:user_id>/sign-in", methods=["POST"])
@role_required("coordinator")
def sign_in_access(user_id):
    """Disable an account (signed out everywhere, off duty, no alerts) or let it sign in again."""
    db = get_db()
    value = request.form.get("disabled")
    if value not in ("0", "1"):
        abort(400, description="Say disabled=1 or disabled=0.")
    target = _someone_else(db, user_id, "disable" if value == "1" else "enable")
    with write_transaction(db):
        if set_disabled(db, user_id, value == "1"):
            audit.record(db, "user_disabled" if value == "1" else "user_enabled", target["username"])
    flash(f"{target['display_name']} " + ("can no longer sign in, and is signed out everywhere." if value == "1"
                                          else "can sign in again."))
    return redirect(url_for("program.officer", user_id=user_id), 303)


@bp.route("/roster.csv")
@role_required("coordinator")
def roster_csv():
    """The roster as CSV, in the columns the import reads."""
    db = get_db()
    specialists = read_roster(db)
    audit.record(db, "roster_exported", "roster", f"{len(specialists)} rows")
    return csv_response(f"cit-roster-{today().isoformat()}.csv", ROSTER_COLUMNS, roster_csv_rows(specialists))


def _import_page(preview=None, text=None, error=None, status=200):
    return render_template(
        "program/import.html", preview=preview, text=text, error=error, columns=ROSTER_COLUMNS,
        max_kb=MAX_IMPORT_BYTES // 1024, shifts=SHIFTS,
    ), status


@bp.errorhandler(RequestEntityTooLarge)
def too_large(error=None):
    """A post over the size limit: say so plainly (on the import page for an upload); nothing changes."""
    message = f"The upload is too large. A roster file may be up to {MAX_IMPORT_BYTES // 1024} KB; split it."
    if request.endpoint == "program.import_roster":
        return _import_page(error=message, status=413)
    return render_template("errors.html", error=RequestEntityTooLarge(), message=message), 413


@bp.route("/roster/import", methods=["GET", "POST"])
@role_required("coordinator")
def import_roster():
    """Upload a roster CSV and see every row checked; import it all at once, or nothing."""
    if request.method == "GET":
        return _import_page()
    upload = request.files.get("file")
    if upload is not None and upload.filename:
        data = upload.read(MAX_IMPORT_BYTES + 1)
    else:
        # The preview posts the checked file back as text for the import itself.
        data = request.form.get("csv_text", "").encode()
    if not data.strip():
        return _import_page(error="Choose a CSV file to import.", status=400)
    if len(data) > MAX_IMPORT_BYTES:
        return too_large()
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError:
        return _import_page(error="The file is not UTF-8 text. Save it from your spreadsheet as “CSV UTF-8”.", status=400)
    db = get_db()
    preview = read_roster_csv(db, text)
    if not preview.valid:
        return _import_page(preview, status=422)
    if request.form.get("confirm") != "1":
        return _import_page(preview, text=text)
    try:
        created = apply_roster_import(db, preview.rows)
    except ValueError as e:  # an account was created meanwhile; the transaction rolled back
        return _import_page(preview, error=f"Nothing was imported: {e}", status=409)
    return _created_page(created, imported=len(preview.rows))


@bp.route("/coverage")
@role_required("coordinator", "supervisor")
def coverage():
    """Certified, active specialists per district and shift on the roster, and on duty now."""
    return render_template("program/coverage.html", shift_coverage=roster_coverage(get_db()))


def _report_context(args):
    """The reports page's context; for bad arguments, the message in `error` and no data."""
    try:
        start, end, by = report_params(args)
    except ValueError as e:
        return {"form": args, "error": str(e), "data": None}
    data = report(get_db(), start, end, by)
    return {
        "form": {"from": start.isoformat(), "to": end.isoformat(), "by": by},
        "error": None, "data": data, "by": by, "charts": report_charts(data["rows"]),
        "dispositions": DISPOSITIONS, "diverted": [DISPOSITIONS[d] for d in DIVERTED], "no_coordinates": NO_COORDINATES,
    }


@bp.route("/reports")
@role_required("coordinator", "supervisor")
def reports():
    """Outcomes over a date range, by district or by month, with charts."""
    context = _report_context(request.args)
    return page_or_block("program/reports.html", "results", **context), 400 if context["error"] else 200


@bp.route("/reports.csv")
@role_required("coordinator", "supervisor")
def reports_csv():
    """The report's rows, and the total, as CSV."""
    try:
        start, end, by = report_params(request.args)
    except ValueError as e:
        abort(400, description=str(e))
    db = get_db()
    data = report(db, start, end, by)
    audit.record(db, "report_exported", f"by {by}", f"{start.isoformat()} to {end.isoformat()}")
    rows = [report_csv_row(label, f) for label, f in data["rows"]] + [report_csv_row("All", data["total"])]
    return csv_response(f"cit-report-by-{by}-{start.isoformat()}-{end.isoformat()}.csv", [by, *REPORT_CSV_COLUMNS], rows)


@bp.route("/reports/summary")
@role_required("coordinator", "supervisor")
def summary():
    """A printable one-month summary for the program's steering committee."""
    on = today()
    text = request.args.get("month") or (on.replace(day=1) - datetime.timedelta(days=1)).strftime("%Y-%m")
    first = parse_month(text)
    if first is None:
        abort(400, description="Give the month as YYYY-MM, for example 2026-04.")
    last = (first + datetime.timedelta(days=32)).replace(day=1) - datetime.timedelta(days=1)
    db = get_db()
    data = report(db, first, last, "district")
    return render_template(
        "program/summary.html", month=first, last=last, data=data, charts=report_charts(data["rows"]),
        dispositions=DISPOSITIONS, diverted=[DISPOSITIONS[d] for d in DIVERTED], no_coordinates=NO_COORDINATES,
        shift_coverage=roster_coverage(db), generated=datetime.datetime.fromtimestamp(now()),
    )
