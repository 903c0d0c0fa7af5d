"""The roster as CSV: the export, and the import that checks every row before it writes any."""
import csv
import dataclasses
import io

from flask import current_app

from ..identity import accounts
from ..identity.admin import generated_password
from ..audit import log as audit
from ..store.db import write_transaction
from .roster import (
    clean_account_fields, clean_roster_fields, district_names, next_inservice_due, read_roster, save_roster, today,
)

# The roster's CSV columns, in order; import and export share them.
ROSTER_COLUMNS = (
    "username", "display_name", "unit", "phone", "volunteered_on", "supervisor_recommendation",
    "interview_notes", "course_completed_on", "inservice_dates", "districts", "shifts", "active",
)
# Under the app's 64 KB request limit, so the preview can post the file back for the import.
MAX_IMPORT_BYTES = 56 * 1024
MAX_IMPORT_ROWS = 1000


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


def export_roster(db):
    """The roster's CSV rows, with the export recorded in the audit log."""
    specialists = read_roster(db)
    audit.record(db, "roster_exported", "roster", f"{len(specialists)} rows")
    return roster_csv_rows(specialists)


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
    existing = {r["username"].lower(): r for r in accounts.every_user(db)}
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
        row.username = accounts.check_username(row.username)
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
    created = [(r, *generated_password()) for r in rows if r.user_id is None]
    hashes = {r.username: password_hash for r, _, password_hash in created}
    with write_transaction(db):
        for r in rows:
            if r.user_id is None:
                r.user_id = accounts.create_user(db, r.username, None, "cit", r.account["display_name"] or None,
                                                 r.account["unit"], r.account["phone"], password_hash=hashes[r.username],
                                                 must_change=True)
                audit.record(db, "user_created", r.username, "role cit (roster import)")
            else:
                accounts.update_details(db, r.user_id, r.account["display_name"], r.account["unit"], r.account["phone"])
            save_roster(db, r.user_id, r.values)
        audit.record(db, "roster_imported", "roster",
                     f"{len(rows)} rows: {len(created)} new accounts, {len(rows) - len(created)} updated")
    return [(r.username, r.account["display_name"] or r.username, password) for r, password, _ in created]
