"""Exports for outside forms and for publication: one row per encounter, export profiles, the public summary.

- `encounter_rows()` streams one row per request in ENCOUNTER_COLUMNS order, from a
  database cursor, so a year of requests never sits in memory at once;
- an *export profile* (a YAML file) maps those columns onto an outside form's
  fields, with value crosswalks, and lists the form's fields we do not collect:
  `flask --app fieldapp export --profile NAME --from DATE --to DATE` writes the
  form's CSV and a gap report;
- `public_summary_rows()` is the report with every count under 5 shown as "<5".

Every column here is described in fieldapp/data_dictionary.json.
"""
import csv
import datetime
from pathlib import Path

import click
import yaml
from flask import current_app
from flask.cli import with_appcontext

from ..audit import log as audit
from ..web.downloads import safe_cell
from ..store.db import connect
from ..requests.encounter import COMPUTED_SQL, FIRST_ACCEPT_SQL, FIRST_ON_SCENE_SQL, NOT_RECORDED
from .data_dictionary import load_dictionary
from .reports import _local_midnight, district_of, report, report_csv_columns, report_csv_rows, report_params

BUILT_IN_PROFILES = Path(__file__).resolve().parent.parent / "export_profiles"
SMALL_CELL = 5

ENCOUNTER_COLUMNS = (
    "request_id", "cad_incident", "created_at", "date", "month", "district", "state", "unanswered", "cancel_reason",
    "time_to_accept_s", "time_to_scene_s", "time_on_scene_s", "cit_time_on_call_s", "cit_reached_scene",
    "disposition", "not_mental_health", "weapon", "medical", "juvenile", "force_level", "force_used",
    "officer_injured", "person_injured", "transport", "mh_evaluation", "referral_made", "follow_up",
    "age_band", "veteran",
)


# How the columns that are not written one by one are written: seconds rounded, yes/no flags, and the
# encounter record's answers and flags, which exist only for a resolved request (an open or cancelled one has none).
SECONDS_COLUMNS = ("time_to_accept_s", "time_to_scene_s", "time_on_scene_s", "cit_time_on_call_s")
YES_NO_COLUMNS = ("unanswered", "cit_reached_scene", "not_mental_health", "weapon", "medical", "juvenile")
ENCOUNTER_ANSWER_COLUMNS = ("force_level", "transport", "mh_evaluation", "follow_up", "age_band", "veteran")
ENCOUNTER_YES_NO_COLUMNS = ("force_used", "officer_injured", "person_injured")


def _yes_no(value):
    return NOT_RECORDED if value is None else ("yes" if value else "no")


def encounter_rows(db, start_day, end_day):
    """One dict per request made from `start_day` to `end_day` (local), ENCOUNTER_COLUMNS as keys; a generator."""
    cursor = db.conn.execute(
        "SELECT r.id, r.cad_incident, r.created_at, r.lat, r.lon, r.state, r.unanswered, r.cancel_reason, r.disposition,"
        " r.not_mental_health, r.weapon, r.medical, r.juvenile, r.force_level, r.force_used, r.officer_injured,"
        " r.person_injured, r.transport, r.mh_evaluation, r.referral, r.follow_up, r.age_band, r.veteran,"
        f" {FIRST_ACCEPT_SQL} - r.created_at AS time_to_accept_s, {FIRST_ON_SCENE_SQL} - r.created_at AS time_to_scene_s,"
        # Drills (issue 13) are training: never in the program's figures or an outside form.
        f" {COMPUTED_SQL} FROM cit_requests r WHERE r.created_at >= ? AND r.created_at < ? AND r.drill = 0"
        " ORDER BY r.created_at",
        [_local_midnight(start_day), _local_midnight(end_day + datetime.timedelta(days=1))],
    )
    names = [d[0] for d in cursor.description]
    for values in cursor:
        r = dict(zip(names, values))
        created = datetime.datetime.fromtimestamp(r["created_at"])
        resolved = r["state"] == "resolved"
        row = {
            "request_id": r["id"],
            "cad_incident": r["cad_incident"] or "",
            "created_at": created.isoformat(timespec="seconds"),
            "date": created.date().isoformat(),
            "month": created.strftime("%Y-%m"),
            "district": district_of(db, r["lat"], r["lon"]),
            "state": r["state"],
            "cancel_reason": r["cancel_reason"] or "",
            "disposition": r["disposition"] or "",
            # Whether there was a referral, never its text: the text may name people or places.
            "referral_made": ("yes" if (r["referral"] or "").strip() else "no") if resolved else "",
        }
        row.update((name, _seconds(r[name])) for name in SECONDS_COLUMNS)
        row.update((name, _yes_no(r[name])) for name in YES_NO_COLUMNS)
        row.update((name, (r[name] or NOT_RECORDED) if resolved else "") for name in ENCOUNTER_ANSWER_COLUMNS)
        row.update((name, _yes_no(r[name]) if resolved else "") for name in ENCOUNTER_YES_NO_COLUMNS)
        yield {name: row[name] for name in ENCOUNTER_COLUMNS}


def _seconds(value):
    return "" if value is None else round(value)


# ---- Export profiles ----


class ProfileError(ValueError):
    """An export profile that cannot be used; the message says which line of it is wrong."""


def profile_path(name):
    """The profile file for `name`: the instance folder's export_profiles/ first, then the built-in ones."""
    if not name.replace("-", "").replace("_", "").isalnum():
        raise ProfileError(f"{name!r} is not a profile name: use letters, digits, - and _.")
    for folder in (Path(current_app.instance_path) / "export_profiles", BUILT_IN_PROFILES):
        path = folder / f"{name}.yaml"
        if path.is_file():
            return path
    raise ProfileError(f"There is no export profile called {name!r}.")


def load_profile(path, dictionary):
    """A checked profile: every source is an encounter column, every crosswalk covers every allowed value."""
    try:
        profile = yaml.safe_load(Path(path).read_text())
    except yaml.YAMLError as e:
        raise ProfileError(f"{path}: not valid YAML ({e}).") from None
    if not isinstance(profile, dict) or not isinstance(profile.get("fields"), list) or not profile["fields"]:
        raise ProfileError(f"{path}: a profile needs a title and a list of fields.")
    columns = dictionary["$defs"]["encounter_csv"]["properties"]
    for i, field in enumerate(profile["fields"], 1):
        if not isinstance(field, dict) or not field.get("name"):
            raise ProfileError(f"{path}: field {i} has no name.")
        source = field.get("from")
        if source is None:
            continue  # a field of the form we do not collect: it goes in the gap report
        if source not in columns:
            raise ProfileError(f"{path}: {field['name']} comes from {source!r}, which fieldapp does not export.")
        crosswalk = field.get("crosswalk")
        if crosswalk is not None:
            allowed = _allowed_values(columns[source])
            missing = [v for v in allowed if v not in crosswalk]
            if missing:
                raise ProfileError(f"{path}: the crosswalk for {field['name']} does not say what to write for "
                                   f"{', '.join(missing)}.")
    return profile


def _allowed_values(column):
    """The values a dictionary column may take, from its enum, with config-dependent lists read from config."""
    if "x-values-from-config" in column:
        values = [*current_app.config[column["x-values-from-config"]], *column.get("enum", [])]
    else:
        values = list(column.get("enum", []))
    return [v for v in values if v != ""]  # a blank (no encounter record) is written blank


def profile_row(profile, row):
    """One form row from one encounter row: each field's source value, through its crosswalk."""
    out = []
    for field in profile["fields"]:
        if field.get("from") is None:
            out.append(field.get("blank", ""))
            continue
        value = row[field["from"]]
        crosswalk = field.get("crosswalk")
        out.append(crosswalk.get(value, "") if crosswalk is not None and value != "" else value)
    return out


def gap_report(profile):
    """The form's fields fieldapp does not collect, as (field, why) pairs."""
    return [(f["name"], f.get("note") or "Not collected by fieldapp.") for f in profile["fields"] if f.get("from") is None]


def write_profile_export(db, profile, start, end, out):
    """Write the form's CSV to the open file `out`, streaming; returns how many rows it wrote."""
    writer = csv.writer(out)
    # Every cell as text a spreadsheet will not run, like every other CSV (security review 2026-12-07, I2).
    writer.writerow([safe_cell(f["name"]) for f in profile["fields"]])
    count = 0
    states = profile.get("states")
    for row in encounter_rows(db, start, end):
        if states and row["state"] not in states:
            continue
        writer.writerow([safe_cell(v) for v in profile_row(profile, row)])
        count += 1
    return count


@click.command("export")
@click.option("--profile", "name", required=True, help="The export profile: a file NAME.yaml in the instance "
              "folder's export_profiles/ or among the built-in ones (example-state-cit).")
@click.option("--from", "start", required=True, help="The first day, YYYY-MM-DD.")
@click.option("--to", "end", required=True, help="The last day, YYYY-MM-DD.")
@click.option("--out", type=click.Path(dir_okay=False), help="The CSV to write; the gap report goes beside it.")
@with_appcontext
def export_command(name, start, end, out):
    """Write an outside form's CSV from the encounter records, and a gap report of the fields we do not collect."""
    try:
        start_day, end_day, _ = report_params({"from": start, "to": end})
        profile = load_profile(profile_path(name), load_dictionary())
    except ValueError as e:
        raise click.UsageError(str(e)) from None
    out = Path(out or f"{name}-{start_day.isoformat()}-{end_day.isoformat()}.csv")
    gaps_path = out.with_name(out.stem + "-gaps.txt")
    db = connect(current_app.config["DATABASE"])
    with out.open("w", newline="", encoding="utf-8") as f:
        count = write_profile_export(db, profile, start_day, end_day, f)
    audit.record(db, "profile_exported", name, f"{start_day.isoformat()} to {end_day.isoformat()}: {count} rows",
                 actor=(None, "cli"))
    db.close()
    gaps = gap_report(profile)
    lines = [f"Gap report: {profile.get('title', name)}", f"Fields of the form that fieldapp does not collect: {len(gaps)}"]
    lines += [f"- {field}: {why}" for field, why in gaps]
    gaps_path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    if profile.get("example"):
        click.echo("This is an EXAMPLE profile, not any real state's form: check it against your own form.")
    click.echo(f"Wrote {count} row(s) to {out} and {len(gaps)} gap(s) to {gaps_path}.")


# ---- The public summary ----


# Derived columns and the count they rest on: suppressed with it, since a median of three or a
# percentage of four says as much about the people as the count does.
_DERIVED_FROM = {
    "median_accept_s": "accepted", "p90_accept_s": "accepted", "median_on_scene_s": "on_scene",
    "p90_on_scene_s": "on_scene", "diverted_pct": "resolved", "arrested_pct": "resolved",
}


def public_summary_rows(columns, rows):
    """The report's rows (label first, then `columns`) with small cells suppressed, for publication.

    Every count under 5 becomes "<5", and a median, 90th percentile or
    percentage becomes "<5" when the count under it is. Where a column has
    exactly one suppressed group, the next smallest is suppressed too, so the
    total (the last row) cannot give the hidden one away by subtraction. A
    cell that is neither a count nor a figure from one is not published.
    """
    hidden = f"<{SMALL_CELL}"
    index = {name: i + 1 for i, name in enumerate(columns)}
    out = [list(r) for r in rows]
    for name, i in index.items():
        base = index.get(_DERIVED_FROM.get(name, name))
        for r, original in zip(out, rows):
            if not _is_count(original[base]):
                r[i] = ""
            elif original[base] < SMALL_CELL:
                r[i] = hidden
        if name in _DERIVED_FROM:
            continue
        groups = out[:-1]
        shown = sorted((r for r in groups if _is_count(r[i])), key=lambda r: r[i])
        if sum(1 for r in groups if r[i] == hidden) == 1 and shown:
            shown[0][i] = hidden
    return out


def export_public_summary(db, start_day, end_day, by):
    """The report's rows for publication (small cells suppressed), with the export recorded in the audit log."""
    data = report(db, start_day, end_day, by)
    audit.record(db, "public_summary_exported", f"by {by}", f"{start_day.isoformat()} to {end_day.isoformat()}")
    return public_summary_rows(report_csv_columns(), report_csv_rows(data))


def _is_count(value):
    return isinstance(value, int) and not isinstance(value, bool)
