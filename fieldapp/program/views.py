"""The program's pages: the roster and each officer's record, account administration,
the roster's CSV import and export, coverage, and the outcome reports.

Who may do what: only coordinators manage the roster and accounts; coordinators
and supervisors see coverage and reports. Each view checks its form and makes one
call: the roster's changes are roster.py's, the accounts' identity/admin.py's.
"""
import datetime

from flask import abort, current_app, flash, make_response, redirect, render_template, request, url_for
from flask_login import current_user
from werkzeug.exceptions import RequestEntityTooLarge

from ..identity import accounts, admin, step_up
from ..identity.accounts import ROLES
from ..delivery import backup_channel
from ..identity.access import role_required
from ..requests.domain import DISPOSITIONS
from ..clock import now
from ..store.db import get_db
from ..districts import district_list
from ..web.downloads import csv_response, csv_stream
from ..requests.history import demo_request_count
from ..web.htmx import is_htmx, page_or_block
from . import bp
from .charts import fidelity_chart, forecast_charts, report_charts
from .fidelity import FIDELITY_CSV_COLUMNS, export_fidelity, fidelity
from .coverage import roster_coverage
from .exports import export_public_summary
from .forecast import coverage_forecast, forecast_warnings
from .reports import DIVERTED, NO_COORDINATES, export_report, report, report_csv_columns, report_params
from .roster import (
    SHIFTS, add_officer, clean_account_fields, clean_roster_fields, district_names, inservice_session,
    inservice_sessions, other_accounts, parse_day, parse_month, person, read_roster, save_officer, set_active,
    title_inservice, today,
)
from .roster_csv import MAX_IMPORT_BYTES, ROSTER_COLUMNS, apply_roster_import, export_roster, read_roster_csv


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
    set_active(db, target, value == "1")
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
        backup_channel=backup_channel.masked_of(db, target["id"]) if target else None,
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
        accounts.check_username(form["username"])
    except ValueError as e:
        errors.insert(0, f"username: {e}")
    if accounts.user_by_username(get_db(), form["username"]):
        errors.insert(0, f"username: {form['username']} is taken; find them under “Other accounts” to edit.")
    if errors:
        return _officer_page(form, errors, status=422)
    try:
        password = add_officer(get_db(), form["username"], form["role"], account, values)
    except ValueError as e:  # the username was taken meanwhile
        return _officer_page(form, [f"username: {e}"], status=409)
    return _created_page([(form["username"], account["display_name"] or form["username"], password)], status=201)


def _created_page(created, status=200, **context):
    """The new passwords, [(username, display name, password)], on a page shown once."""
    response = make_response(render_template("program/created.html", accounts=created, **context), status)
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
    save_officer(db, target, form["role"], account, values)
    flash(f"Saved {account['display_name']}.")
    return redirect(url_for("program.roster"), 303)


@bp.route("/roster/<int:user_id>/inservice/<int:session_id>", methods=["POST"])
@role_required("coordinator")
def inservice_title(user_id, session_id):
    """Name an in-service session ("Autism awareness, 4 h"); its date is edited with the roster."""
    db = get_db()
    target = person(db, user_id)
    row = inservice_session(db, user_id, session_id)
    if row is None:
        abort(404, description="That in-service session is not on this officer's record.")
    title = " ".join((request.form.get("title") or "").split())
    if len(title) > 100:
        abort(400, description="An in-service title has at most 100 characters.")
    title_inservice(db, target, row, title)
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
@step_up.required(back="program.roster")
def reset_password(user_id):
    """Give an account a new generated password, shown once, and sign it out everywhere."""
    db = get_db()
    target = _someone_else(db, user_id, "reset the password of")
    password = admin.reset_password(db, target)
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
    admin.set_sign_in_disabled(db, target, value == "1")
    flash(f"{target['display_name']} " + ("can no longer sign in, and is signed out everywhere." if value == "1"
                                          else "can sign in again."))
    return redirect(url_for("program.officer", user_id=user_id), 303)


@bp.route("/roster.csv")
@role_required("coordinator")
def roster_csv():
    """The roster as CSV, in the columns the import reads."""
    return csv_response(f"cit-roster-{today().isoformat()}.csv", ROSTER_COLUMNS, export_roster(get_db()))


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
    db = get_db()
    forecast = coverage_forecast(db)
    return render_template(
        "program/coverage.html", shift_coverage=roster_coverage(db), forecast=forecast,
        warnings=forecast_warnings(forecast), forecast_charts=forecast_charts(forecast),
        lapses=sorted({lapse for row in forecast["rows"] for lapse in row["lapses"]}), timedelta=datetime.timedelta,
        interval_days=current_app.config["INSERVICE_INTERVAL_DAYS"],
    )


@bp.route("/districts")
@role_required("coordinator")
def districts():
    """The agency's districts: polygon or centre, and how a request's district is found."""
    return render_template("program/districts.html", districts=district_list(get_db()))


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
    if context["data"] is not None:
        context.update(_fidelity_context(context["form"]))
    return page_or_block("program/reports.html", "results", **context), 400 if context["error"] else 200


def _fidelity_context(form):
    """The fidelity figure for the report's (already checked) range, with its chart by month."""
    figures = fidelity(get_db(), parse_day(form["from"]), parse_day(form["to"]))
    return {"fidelity": figures, "fidelity_chart": fidelity_chart(figures), "demo_requests": demo_request_count(get_db())}


def _report_range_or_400():
    """The report's range and grouping from the query: (start, end, by), or a 400 that says what is wrong."""
    try:
        return report_params(request.args)
    except ValueError as e:
        abort(400, description=str(e))


@bp.route("/reports/fidelity.csv")
@role_required("coordinator", "supervisor")
def fidelity_csv():
    """The share of closed requests a CIT officer reached, by district, shift, month and both, as CSV (streamed)."""
    start, end, _ = _report_range_or_400()
    return csv_stream(f"cit-on-scene-{start.isoformat()}-{end.isoformat()}.csv", FIDELITY_CSV_COLUMNS,
                      export_fidelity(get_db(), start, end))


@bp.route("/reports.csv")
@role_required("coordinator", "supervisor")
def reports_csv():
    """The report's rows, and the total, as CSV."""
    start, end, by = _report_range_or_400()
    # Streamed as written; the figures themselves need every request's times (medians), held as one row each.
    return csv_stream(f"cit-report-by-{by}-{start.isoformat()}-{end.isoformat()}.csv", [by, *report_csv_columns()],
                      export_report(get_db(), start, end, by))


@bp.route("/reports/public.csv")
@role_required("coordinator", "supervisor")
def public_summary_csv():
    """The report for publication: every count under 5 shown as "<5"."""
    start, end, by = _report_range_or_400()
    return csv_response(f"cit-public-summary-by-{by}-{start.isoformat()}-{end.isoformat()}.csv",
                        [by, *report_csv_columns()], export_public_summary(get_db(), start, end, by))


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
