"""The CIT program: the roster, its CSV import and export, coverage, and the outcome reports."""
import csv
import datetime
import io
import json
import re
from pathlib import Path

import pytest

from fieldapp.identity import accounts
from fieldapp.program import charts, coverage, reports, roster, roster_csv
from fieldapp.store.db import one, write_transaction
from tests.helpers import DISTRICTS, PASSWORD, alerted, ask, local, offset, past_request

# Every figure here is read on Thursday 28 May 2026 at noon, the day shift.
pytestmark = pytest.mark.usefixtures("midday")


@pytest.fixture
def coordinator(make_user, login, districts):
    """A signed-in CIT coordinator."""
    make_user("lt.ames", "coordinator", display_name="Lt. Jo Ames")
    return login("lt.ames")


def roster_row(db, username):
    return one(db, "SELECT r.* FROM roster r JOIN users u ON u.id = r.user_id WHERE u.username = ?", [username])


def audit_actions(db):
    return [(r["action"], r["subject"], r["detail"]) for r in db.query("SELECT * FROM audit_log ORDER BY id")]


def snapshot(db):
    """Everything an import or an edit could change."""
    return [list(db.query(f"SELECT * FROM {t}")) for t in ("users", "roster", "inservice_training", "audit_log")]


# ---- Roster ----


def test_roster_lists_each_specialist_with_selection_training_and_next_due(coordinator, on_roster):
    on_roster("reyes", course="2023-03-17", inservice=["2025-03-10"], districts="Central;North", shifts="day;evening",
              volunteered_on="2023-01-16", supervisor_recommendation="Calm under pressure", interview_notes="Strong")
    html = coordinator.get("/program/roster").get_data(as_text=True)
    for text in ("Ofc. Reyes", "2023-01-16", "Calm under pressure", "Strong", "2023-03-17", "2025-03-10",
                 "2027-03-10", "Central, North", "day, evening"):
        assert text in html


def test_next_inservice_is_due_two_years_after_the_latest_inservice():
    assert roster.next_inservice_due("2023-03-17", ["2024-02-01", "2025-03-10"], 730) == datetime.date(2027, 3, 10)


def test_next_inservice_is_due_two_years_after_the_course_when_there_is_none():
    assert roster.next_inservice_due("2024-09-20", [], 730) == datetime.date(2026, 9, 20)


def test_inservice_interval_comes_from_config(app, coordinator, on_roster):
    app.config["INSERVICE_INTERVAL_DAYS"] = 365
    on_roster("reyes", course="2025-09-01")
    assert "2026-09-01" in coordinator.get("/program/roster").get_data(as_text=True)


def test_specialist_past_due_for_inservice_is_flagged(app, db, coordinator, on_roster):
    on_roster("late", course="2022-01-10", inservice=["2024-05-01"])  # due 2026-05-01, four weeks ago
    on_roster("current", course="2025-06-01")
    with app.app_context():
        flags = {s["username"]: s["past_due"] for s in roster.read_roster(db)}
    assert flags == {"late": True, "current": False}
    rows = coordinator.get("/program/roster").get_data(as_text=True).split("<tr")
    assert [">Past due<" in row for row in rows if "Ofc. " in row] == [False, True]  # Current, then Late


def test_coordinator_sets_a_specialist_inactive_and_it_is_audited(db, coordinator, on_roster):
    user_id = on_roster("reyes", course="2025-01-10")
    response = coordinator.post(f"/program/roster/{user_id}/active", data={"active": "0"})
    assert response.status_code == 303
    assert roster_row(db, "reyes")["active"] == 0
    assert ("roster_updated", "reyes", "set inactive") in audit_actions(db)


def test_setting_inactive_answers_htmx_with_the_roster_table_only(coordinator, on_roster):
    user_id = on_roster("reyes", course="2025-01-10")
    response = coordinator.post(f"/program/roster/{user_id}/active", data={"active": "0"}, headers={"HX-Request": "true"})
    html = response.get_data(as_text=True)
    assert html.lstrip().startswith('<div id="roster-table"') and "Set active" in html


def test_inactive_specialist_is_never_alerted(client, officer, specialist, coordinator, db):
    benched = specialist("benched", offset(500))
    ready = specialist("ready", offset(3000))
    coordinator.post(f"/program/roster/{benched}/active", data={"active": "0"})
    assert alerted(db, ask(client)) == [ready]


def test_specialist_set_active_again_is_alerted_again(client, officer, specialist, coordinator, db):
    benched = specialist("benched", offset(500))
    coordinator.post(f"/program/roster/{benched}/active", data={"active": "0"})
    coordinator.post(f"/program/roster/{benched}/active", data={"active": "1"})
    assert alerted(db, ask(client)) == [benched]


NEW_OFFICER = {
    "username": "ofc.nakamura", "display_name": "Ofc. Rei Nakamura", "role": "cit", "unit": "4-CIT-2",
    "phone": "555-0177", "volunteered_on": "2025-10-01", "supervisor_recommendation": "Recommended",
    "interview_notes": "Good listener", "course_completed_on": "2026-02-20", "inservice_dates": "",
    "districts": ["South", "Central"], "shifts": ["night"], "active": "yes",
}


def test_added_officer_gets_an_account_whose_password_is_shown_once(app, db, coordinator):
    response = coordinator.post("/program/roster/new", data=NEW_OFFICER)
    assert response.status_code == 201 and response.headers["Cache-Control"] == "no-store"
    password = response.get_data(as_text=True).split('<code class="secret">')[1].split("</code>")[0]
    signed_in = app.test_client().post("/login", data={"username": "ofc.nakamura", "password": password})
    assert signed_in.status_code == 302
    row = roster_row(db, "ofc.nakamura")
    assert (row["districts"], row["shifts"], row["course_completed_on"]) == ("South;Central", "night", "2026-02-20")
    assert ("user_created", "ofc.nakamura", "role cit") in audit_actions(db)


def test_adding_a_taken_username_is_refused_and_changes_nothing(db, coordinator, make_user):
    make_user("ofc.nakamura", "officer")
    before = snapshot(db)
    response = coordinator.post("/program/roster/new", data=NEW_OFFICER)
    assert response.status_code == 422 and "ofc.nakamura is taken" in response.get_data(as_text=True)
    assert snapshot(db) == before


def test_role_change_is_recorded_in_the_audit_log(db, coordinator, make_user):
    user_id = make_user("ofc.silva", "officer", display_name="Ofc. Ana Silva")
    form = NEW_OFFICER | {"display_name": "Ofc. Ana Silva", "role": "cit"}
    assert coordinator.post(f"/program/roster/{user_id}", data=form).status_code == 303
    assert one(db, "SELECT role FROM users WHERE id = ?", [user_id])["role"] == "cit"
    assert ("role_changed", "ofc.silva", "officer -> cit") in audit_actions(db)
    assert roster_row(db, "ofc.silva")["course_completed_on"] == "2026-02-20"


def test_coordinator_cannot_change_their_own_role(db, coordinator):
    me = accounts.user_by_username(db, "lt.ames")["id"]
    before = snapshot(db)
    response = coordinator.post(f"/program/roster/{me}", data={"display_name": "Lt. Jo Ames", "role": "officer"})
    assert response.status_code == 422 and "cannot change your own role" in response.get_data(as_text=True)
    assert snapshot(db) == before


@pytest.mark.parametrize(
    "change, message",
    [
        ({"course_completed_on": "2026-13-01"}, "course_completed_on: “2026-13-01” is not a date"),
        ({"volunteered_on": "next week"}, "volunteered_on: “next week” is not a date"),
        ({"course_completed_on": "2026-06-01"}, "course_completed_on: 2026-06-01 is in the future"),
        ({"inservice_dates": "2025-03-10; 10/03/2025"}, "inservice_dates: “10/03/2025” is not a date"),
        ({"districts": ["Atlantis"]}, "there is no district called “Atlantis”"),
        ({"shifts": ["graveyard"]}, "“graveyard” is not a shift"),
        ({"role": "admin"}, "role: choose one of"),
        ({"display_name": ""}, "a name others will see is needed"),
        ({"phone": "5" * 41}, "phone: keep it under 40 characters"),
    ],
)
def test_bad_roster_edit_is_a_clear_4xx_and_changes_nothing(db, coordinator, on_roster, change, message):
    user_id = on_roster("reyes", course="2025-01-10", districts="North", shifts="day")
    before = snapshot(db)
    response = coordinator.post(f"/program/roster/{user_id}", data=NEW_OFFICER | change)
    assert response.status_code == 422
    assert message in response.get_data(as_text=True)
    assert snapshot(db) == before


def test_unknown_account_is_a_404(coordinator):
    assert coordinator.get("/program/roster/9999").status_code == 404
    assert coordinator.post("/program/roster/9999/active", data={"active": "0"}).status_code == 404


# ---- CSV import and export ----

HEADER = ",".join(roster_csv.ROSTER_COLUMNS)
GOOD_ROW = "ofc.nakamura,Ofc. Rei Nakamura,4-CIT-2,555-0177,2025-10-01,Recommended,Good listener,2026-02-20,,South;Central,night,yes"


def upload(client, text, **form):
    """Post a CSV file to the import, as a browser's file input does."""
    data = {"file": (io.BytesIO(text.encode() if isinstance(text, str) else text), "roster.csv")} | form
    return client.post("/program/roster/import", data=data, content_type="multipart/form-data")


def confirm(client, text):
    """Press 'Import' on a preview: the checked file comes back as text."""
    return client.post("/program/roster/import", data={"csv_text": text, "confirm": "1"}, content_type="multipart/form-data")


def test_roster_csv_round_trips(db, coordinator, on_roster):
    on_roster("reyes", course="2023-03-17", inservice=["2024-03-01", "2025-03-10"], districts="Central;North",
              shifts="day;evening", volunteered_on="2023-01-16", supervisor_recommendation="Steady, kind; \"a natural\"",
              interview_notes="Line one\nline two, with a comma")
    on_roster("morgan", course="2024-09-20", districts="South", shifts="night", active=0,
              interview_notes="=HYPERLINK(\"http://example.invalid\")")
    first = coordinator.get("/program/roster.csv")
    assert first.headers["Content-Type"].startswith("text/csv")
    text = first.get_data(as_text=True).lstrip("\ufeff")
    assert upload(coordinator, text).status_code == 200
    assert confirm(coordinator, text).status_code == 200
    assert coordinator.get("/program/roster.csv").get_data(as_text=True).lstrip("\ufeff") == text
    assert one(db, "SELECT interview_notes FROM roster r JOIN users u ON u.id = r.user_id WHERE username = 'morgan'")[
        "interview_notes"].startswith("=HYPERLINK")


def test_exported_cells_a_spreadsheet_would_run_are_made_text(coordinator, on_roster):
    on_roster("morgan", course="2024-09-20", interview_notes="=cmd|' /C calc'!A0", phone="+1 555 0100")
    rows = list(csv.DictReader(io.StringIO(coordinator.get("/program/roster.csv").get_data(as_text=True).lstrip("\ufeff"))))
    assert rows[0]["interview_notes"] == "'=cmd|' /C calc'!A0"


def test_roster_export_is_audited(db, coordinator, on_roster):
    on_roster("reyes", course="2025-01-10")
    coordinator.get("/program/roster.csv")
    assert ("roster_exported", "roster", "1 rows") in audit_actions(db)


def test_import_preview_writes_nothing_until_confirmed(db, coordinator):
    before = snapshot(db)
    response = upload(coordinator, f"{HEADER}\n{GOOD_ROW}\n")
    html = response.get_data(as_text=True)
    assert response.status_code == 200 and "Import 1 row" in html and "ofc.nakamura" in html
    assert snapshot(db) == before


def test_import_creates_new_specialists_with_passwords_shown_once(app, db, coordinator):
    response = confirm(coordinator, f"{HEADER}\n{GOOD_ROW}\n")
    html = response.get_data(as_text=True)
    assert response.status_code == 200 and response.headers["Cache-Control"] == "no-store"
    password = html.split('<code class="secret">')[1].split("</code>")[0]
    assert app.test_client().post("/login", data={"username": "ofc.nakamura", "password": password}).status_code == 302
    assert roster_row(db, "ofc.nakamura")["districts"] == "South;Central"
    assert ("roster_imported", "roster", "1 rows: 1 new accounts, 0 updated") in audit_actions(db)


def test_import_updates_an_existing_specialist_and_keeps_inservice_titles(app, db, coordinator, on_roster):
    user_id = on_roster("ofc.nakamura", course="2025-01-10", inservice=["2025-06-01"])
    [session] = roster.inservice_sessions(db, user_id)
    with app.test_request_context():
        roster.title_inservice(db, accounts.user_by_id(db, user_id), session, "Youth in crisis")
    row = GOOD_ROW.replace(",,South", ",2025-06-01;2026-04-02,South")
    assert confirm(coordinator, f"{HEADER}\n{row}\n").status_code == 200
    sessions = list(db.query("SELECT completed_on, title FROM inservice_training WHERE user_id = ? ORDER BY completed_on", [user_id]))
    assert sessions == [{"completed_on": "2025-06-01", "title": "Youth in crisis"}, {"completed_on": "2026-04-02", "title": ""}]
    assert roster_row(db, "ofc.nakamura")["course_completed_on"] == "2026-02-20"


@pytest.mark.parametrize(
    "bad_row, message",
    [
        (GOOD_ROW.replace("ofc.nakamura", "ofc.ito").replace("2026-02-20", "2026-02-30"), "course_completed_on: “2026-02-30” is not a date"),
        (GOOD_ROW.replace("ofc.nakamura", "ofc.ito").replace("South;Central", "South;Atlantis"), "there is no district called “Atlantis”"),
        (GOOD_ROW.replace("ofc.nakamura", "ofc.ito").replace(",night,", ",night;swing,"), "“swing” is not a shift"),
        (GOOD_ROW.replace("ofc.nakamura", "ofc.ito").replace(",yes", ",maybe"), "active: “maybe” is not yes or no"),
        (GOOD_ROW.replace("ofc.nakamura", "ofc ito!"), "username: A username is 1 to 64 letters"),
        (GOOD_ROW, "ofc.nakamura appears earlier in the file"),
        ("ofc.ito,Ofc. Ito,,,", "The line has 5 fields; the header has 12."),
        (GOOD_ROW.replace("ofc.nakamura", "sgt.okoro"), "sgt.okoro is a supervisor account"),
    ],
)
def test_import_with_a_malformed_row_writes_nothing(db, coordinator, make_user, bad_row, message):
    make_user("sgt.okoro", "supervisor")
    before = snapshot(db)
    text = f"{HEADER}\n{GOOD_ROW}\n{bad_row}\n"
    for response in (upload(coordinator, text), confirm(coordinator, text)):
        html = response.get_data(as_text=True)
        assert response.status_code == 422
        assert message in html and "Nothing was imported" in html
    assert snapshot(db) == before


def test_import_preview_shows_each_rows_errors_on_its_line(coordinator):
    text = f"{HEADER}\n{GOOD_ROW}\n{GOOD_ROW.replace('ofc.nakamura', 'ofc.ito').replace('2025-10-01', '2025-10-99')}\n"
    html = upload(coordinator, text).get_data(as_text=True)
    good, bad = html.split("<td>2</td>")[1], html.split("<td>3</td>")[1]
    assert good.split("</tr>")[0].count("OK") == 1
    assert "volunteered_on: “2025-10-99” is not a date" in bad.split("</tr>")[0]
    assert "2 problems" not in html and "1 problem" in html


@pytest.mark.parametrize(
    "content, status, message",
    [
        ("", 400, "Choose a CSV file to import."),
        (f"{HEADER}\n", 422, "The file has a header but no officers."),
        ("username,name\nofc.ito,Ofc. Ito\n", 422, "missing columns: display_name"),
        (f"{HEADER},badge\n{GOOD_ROW},7\n", 422, "unknown columns: badge"),
        ("username,display_name\xff".encode("latin-1"), 400, "The file is not UTF-8 text."),
    ],
)
def test_bad_import_file_is_a_clear_4xx_and_changes_nothing(db, coordinator, content, status, message):
    before = snapshot(db)
    response = upload(coordinator, content)
    assert response.status_code == status
    assert message in response.get_data(as_text=True)
    assert snapshot(db) == before


@pytest.mark.parametrize("size_kb", [60, 80])  # over the import's limit; over the app's request limit
def test_oversized_upload_is_a_413_and_changes_nothing(db, coordinator, size_kb):
    before = snapshot(db)
    text = HEADER + "\n" + (GOOD_ROW + "\n") * (size_kb * 1024 // len(GOOD_ROW))
    response = upload(coordinator, text)
    assert response.status_code == 413
    assert "A roster file may be up to 56 KB" in response.get_data(as_text=True)
    assert snapshot(db) == before


# ---- Coverage ----


@pytest.fixture
def covered(on_roster, make_user, districts):
    """Who counts for coverage, and who does not."""
    on_roster("able", course="2025-01-10", districts="Central", shifts="day;evening")
    on_roster("both", course="2025-01-10", districts="Central;North", shifts="day")
    on_roster("lapsed", course="2022-01-10", districts="Central", shifts="night")  # past due
    on_roster("benched", course="2025-01-10", districts="North", shifts="night", active=0)
    on_roster("untrained", districts="South", shifts="day;evening;night")  # no course recorded


def test_coverage_counts_certified_active_specialists_by_district_and_shift(app, db, covered):
    with app.app_context():
        rows = {r["district"]: r["roster"] for r in coverage.roster_coverage(db)["rows"]}
    assert rows == {
        "Central": {"day": 2, "evening": 1, "night": 0},
        "North": {"day": 1, "evening": 0, "night": 0},
        "South": {"day": 0, "evening": 0, "night": 0},
    }


def test_coverage_warns_where_a_shift_has_nobody(coordinator, covered):
    html = coordinator.get("/program/coverage").get_data(as_text=True)
    assert "No certified specialist on the roster for:" in html
    assert "Central · night" in html and "South · day" in html and "Central · day" not in html


def test_coverage_counts_who_is_on_duty_now(app, db, specialist, covered):
    specialist("walker", offset(200), district="Central")
    with app.app_context():
        on_duty = {r["district"]: r["on_duty"] for r in coverage.roster_coverage(db)["rows"]}
    assert on_duty == {"Central": 1, "North": 0, "South": 0}


@pytest.mark.parametrize("hour, shift", [(0, "night"), (6, "night"), (7, "day"), (14, "day"), (15, "evening"), (23, "night")])
def test_the_shift_in_progress_follows_the_starting_hours(hour, shift):
    assert coverage.current_shift(hour, {"day": 7, "evening": 15, "night": 23}) == shift


def test_supervisor_sees_todays_coverage_on_the_board(supervisor, covered):
    html = supervisor.get("/board").get_data(as_text=True)
    assert "CIT coverage by shift" in html and "Day (now)" in html
    assert "South · day" in html


# ---- Outcome reports, against a data set counted by hand ----


@pytest.fixture
def outcomes(db, make_user, districts):
    """Eight requests whose figures are worked out by hand in the tests below."""
    ofc = make_user("ofc.lee", "officer")
    resolved = {"force_used": 0, "officer_injured": 0, "person_injured": 0}
    # Central, April: accepts after 60, 120, 300 s; on scene after 600, 900, 1200 s.
    past_request(db, ofc, local(2026, 4, 3, 10), "Central", "resolved", events=[("accepted", 60), ("on_scene", 600)],
                 disposition="voluntary_transport", weapon=1, **resolved)
    past_request(db, ofc, local(2026, 4, 10, 14), "Central", "resolved", events=[("accepted", 120), ("on_scene", 900)],
                 disposition="arrest", **resolved | {"force_used": 1, "officer_injured": 1})
    # Reassigned after the first accept: the first accept still counts.
    past_request(db, ofc, local(2026, 4, 20, 9), "Central", "resolved",
                 events=[("accepted", 300), ("assigned", 400), ("on_scene", 1200)],
                 disposition="mobile_crisis_referral", juvenile=1, **resolved)
    past_request(db, ofc, local(2026, 4, 25, 16), "Central", "cancelled", events=[("unanswered", 180), ("cancelled", 400)],
                 unanswered=1, medical=1)
    # North: a supervisor's assignment at 240 s in April; an accept at 90 s in March.
    past_request(db, ofc, local(2026, 4, 5, 11), "North", "resolved", events=[("assigned", 240), ("on_scene", 840)],
                 disposition="resolved_on_scene", **resolved | {"person_injured": 1})
    past_request(db, ofc, local(2026, 3, 15, 12), "North", "resolved", events=[("accepted", 90), ("on_scene", 500)],
                 disposition="emergency_evaluation", **resolved)
    # A typed location, still on scene.
    past_request(db, ofc, local(2026, 4, 12, 8), None, "on_scene", events=[("accepted", 180), ("on_scene", 700)])
    # Before the range.
    past_request(db, ofc, local(2026, 2, 20, 12), "Central", "resolved", events=[("accepted", 30)], disposition="arrest", **resolved)


def figures(app, db, by="district", start=(2026, 3, 1), end=(2026, 4, 30)):
    with app.app_context():
        data = reports.report(db, datetime.date(*start), datetime.date(*end), by)
    return dict(data["rows"]) | {"All": data["total"]}


def subset(f, keys):
    return {k: f[k] for k in keys}


RESPONSE = ("requests", "unanswered", "cancelled", "accept_median", "accept_p90", "on_scene_median", "on_scene_p90")
OUTCOME = ("resolved", "diverted", "diverted_share", "arrested", "arrested_share")
FLAGS = ("weapon", "medical", "juvenile", "force_used", "officer_injured", "person_injured")


@pytest.mark.parametrize(
    "group, expected",
    [
        # p90 of 60, 120, 300: rank 0.9 × 2 = 1.8, so 120 + 0.8 × 180 = 264.
        ("Central", {"requests": 4, "unanswered": 1, "cancelled": 1, "accept_median": 120, "accept_p90": 264.0,
                     "on_scene_median": 900, "on_scene_p90": 1140.0}),
        # 90 and 240: median 165; p90 at rank 0.9 is 90 + 0.9 × 150 = 225.
        ("North", {"requests": 2, "unanswered": 0, "cancelled": 0, "accept_median": 165.0, "accept_p90": 225.0,
                   "on_scene_median": 670.0, "on_scene_p90": 806.0}),
        ("South", {"requests": 0, "unanswered": 0, "cancelled": 0, "accept_median": None, "accept_p90": None,
                   "on_scene_median": None, "on_scene_p90": None}),
        ("No coordinates", {"requests": 1, "unanswered": 0, "cancelled": 0, "accept_median": 180, "accept_p90": 180.0,
                            "on_scene_median": 700, "on_scene_p90": 700.0}),
        # 60 90 120 180 240 300: median 150; rank 4.5 gives 270. 500 600 700 840 900 1200: 770 and 1050.
        ("All", {"requests": 7, "unanswered": 1, "cancelled": 1, "accept_median": 150.0, "accept_p90": 270.0,
                 "on_scene_median": 770.0, "on_scene_p90": 1050.0}),
    ],
)
def test_response_times_by_district_match_the_hand_count(app, db, outcomes, group, expected):
    assert subset(figures(app, db)[group], RESPONSE) == expected


@pytest.mark.parametrize(
    "group, expected",
    [
        ("Central", {"resolved": 3, "diverted": 2, "diverted_share": 2 / 3, "arrested": 1, "arrested_share": 1 / 3}),
        # Emergency evaluation is neither diverted nor arrested.
        ("North", {"resolved": 2, "diverted": 1, "diverted_share": 0.5, "arrested": 0, "arrested_share": 0.0}),
        ("South", {"resolved": 0, "diverted": 0, "diverted_share": None, "arrested": 0, "arrested_share": None}),
        ("All", {"resolved": 5, "diverted": 3, "diverted_share": 0.6, "arrested": 1, "arrested_share": 0.2}),
    ],
)
def test_diversion_against_arrest_by_district_matches_the_hand_count(app, db, outcomes, group, expected):
    assert subset(figures(app, db)[group], OUTCOME) == expected


def test_flags_force_and_injuries_match_the_hand_count(app, db, outcomes):
    assert subset(figures(app, db)["Central"], FLAGS) == {
        "weapon": 1, "medical": 1, "juvenile": 1, "force_used": 1, "officer_injured": 1, "person_injured": 0}
    assert subset(figures(app, db)["All"], FLAGS) == {
        "weapon": 1, "medical": 1, "juvenile": 1, "force_used": 1, "officer_injured": 1, "person_injured": 1}


def test_dispositions_are_counted_one_by_one(app, db, outcomes):
    assert figures(app, db)["All"]["dispositions"] == {
        "resolved_on_scene": 1, "voluntary_transport": 1, "emergency_evaluation": 1, "mobile_crisis_referral": 1,
        "arrest": 1, "medical_transport": 0, "other": 0}


def test_report_by_month_lists_every_month_in_the_range(app, db, outcomes):
    months = figures(app, db, by="month", start=(2026, 2, 1))
    assert [m for m in months if m != "All"] == ["2026-02", "2026-03", "2026-04"]
    # April: accepts 60 120 180 240 300 -> median 180, rank 3.6 -> 276.
    assert subset(months["2026-04"], ("requests", "accept_median", "accept_p90")) == {
        "requests": 6, "accept_median": 180, "accept_p90": 276.0}
    assert subset(months["2026-02"], ("requests", "arrested_share")) == {"requests": 1, "arrested_share": 1.0}


def test_requests_outside_the_range_are_left_out(app, db, outcomes):
    assert figures(app, db, start=(2026, 4, 1), end=(2026, 4, 30))["All"]["requests"] == 6


def test_district_is_the_nearest_district_centre(app, db, districts):
    with app.app_context():
        assert reports.district_of(db, 35.19, -90.035) == "North"
        assert reports.district_of(db, None, None) == reports.NO_COORDINATES


def test_reports_page_shows_figures_and_svg_charts_without_inline_styles_or_scripts(supervisor, outcomes):
    response = supervisor.get("/program/reports?from=2026-03-01&to=2026-04-30&by=district")
    html = response.get_data(as_text=True)
    assert response.status_code == 200
    assert html.count('<svg class="chart"') == 4  # three outcome charts and the on-scene share by month
    assert "4 min 24 s" in html and "66.7%" in html
    assert "style=" not in html and "<style" not in html
    assert html.count("<script") == html.count("<script src=")


def test_report_form_answers_htmx_with_the_results_only(supervisor, outcomes):
    response = supervisor.get("/program/reports?from=2026-03-01&to=2026-04-30&by=month", headers={"HX-Request": "true"})
    assert response.get_data(as_text=True).lstrip().startswith('<div id="report-results">')


def test_report_csv_has_the_same_rows_and_is_audited(db, supervisor, outcomes):
    response = supervisor.get("/program/reports.csv?from=2026-03-01&to=2026-04-30&by=district")
    rows = {r["district"]: r for r in csv.DictReader(io.StringIO(response.get_data(as_text=True).lstrip("\ufeff")))}
    assert list(rows) == ["Central", "North", "South", "No coordinates", "All"]
    assert subset(rows["Central"], ("requests", "median_accept_s", "p90_accept_s", "diverted_pct", "arrested_pct")) == {
        "requests": "4", "median_accept_s": "120.0", "p90_accept_s": "264.0", "diverted_pct": "66.7", "arrested_pct": "33.3"}
    assert rows["South"]["median_accept_s"] == ""
    assert ("report_exported", "by district", "2026-03-01 to 2026-04-30") in audit_actions(db)


def test_monthly_summary_is_a_printable_page_for_the_month(app, supervisor, outcomes):
    html = supervisor.get("/program/reports/summary?month=2026-04").get_data(as_text=True)
    assert "CIT program summary: April 2026" in html
    assert '<dd>6</dd>' in html and "<svg" in html
    stylesheet = Path(app.static_folder, "css", "app.css").read_text()
    assert "@media print" in stylesheet.split("==== CIT program")[1]


@pytest.mark.parametrize(
    "url, message",
    [
        ("/program/reports?from=2026-13-01&to=2026-04-30", "Give the dates as YYYY-MM-DD"),
        ("/program/reports?from=2026-W14-1&to=2026-04-30", "Give the dates as YYYY-MM-DD"),
        ("/program/reports?from=2026-04-30&to=2026-04-01", "The end date is before the start date."),
        ("/program/reports?from=2000-01-01&to=2026-04-01", "Choose a range of at most ten years."),
        ("/program/reports?by=week", "Group the report by district or by month."),
        ("/program/reports.csv?to=tomorrow", "Give the dates as YYYY-MM-DD"),
        ("/program/reports/summary?month=2026-4", "Give the month as YYYY-MM"),
        ("/program/reports?from=2026-01-01&to=9999-12-31", "Give the dates as YYYY-MM-DD"),
        ("/program/reports?from=0001-01-01&to=0001-02-01", "Give the dates as YYYY-MM-DD"),
        ("/program/reports/summary?month=9999-12", "Give the month as YYYY-MM"),
    ],
)
def test_bad_report_input_is_a_clear_400(db, supervisor, url, message):
    before = snapshot(db)
    response = supervisor.get(url)
    assert response.status_code == 400
    assert message in response.get_data(as_text=True)
    assert snapshot(db) == before


def test_bar_chart_is_plain_svg_that_escapes_its_labels():
    svg = str(charts.bar_chart("Requests", ["<North>"], [("Requests", "bar-a", [3])]))
    assert svg.startswith("<svg") and "&lt;North&gt;" in svg and "<North>" not in svg
    assert "style" not in svg and "script" not in svg


# ---- Who may see what ----


@pytest.mark.parametrize("role", ["officer", "cit"])
@pytest.mark.parametrize("url", ["/program", "/program/reports", "/program/reports.csv", "/program/reports/summary",
                                 "/program/coverage", "/program/roster"])
def test_officers_and_specialists_get_403_on_the_program(make_user, login, role, url):
    make_user("someone", role)
    assert login("someone").get(url).status_code == 403


@pytest.mark.parametrize("url", ["/program/reports", "/program/reports.csv", "/program/reports/summary", "/program/coverage"])
def test_supervisor_reads_reports_and_coverage(supervisor, url):
    assert supervisor.get(url).status_code == 200


@pytest.mark.parametrize(
    "method, url",
    [("get", "/program/roster"), ("get", "/program/roster.csv"), ("get", "/program/roster/new"), ("post", "/program/roster/new"),
     ("get", "/program/roster/import"), ("post", "/program/roster/import"), ("post", "/program/roster/1/active"),
     ("post", "/program/roster/1")],
)
def test_supervisor_cannot_edit_the_roster(db, supervisor, method, url):
    before = snapshot(db)
    assert getattr(supervisor, method)(url, data={"active": "0", "role": "coordinator"}).status_code == 403
    assert snapshot(db) == before


def test_signed_out_visitors_are_sent_to_sign_in(client):
    assert client.get("/program/reports").headers["Location"].startswith("/login")


@pytest.mark.parametrize("role, sees", [("coordinator", True), ("supervisor", True), ("officer", False), ("cit", False)])
def test_program_link_is_in_the_menu_for_coordinators_and_supervisors(make_user, login, role, sees):
    make_user("someone", role)
    assert ('href="/program"' in login("someone").get("/reference").get_data(as_text=True)) == sees


def test_demo_specialists_are_on_the_roster(app, db, tmp_path):
    from fieldapp.demo.seed import seed_demo

    with app.app_context():
        seed_demo(db, tmp_path / "demo-accounts.txt")
        specialists = {s["username"]: s for s in roster.read_roster(db)}
    assert set(specialists) == {"cit", "cit2"}
    assert all(s["course_completed_on"] and s["districts"] and s["shifts"] for s in specialists.values())


def test_passwords_are_never_in_the_audit_log(db, coordinator):
    html = coordinator.post("/program/roster/new", data=NEW_OFFICER).get_data(as_text=True)
    password = html.split('<code class="secret">')[1].split("</code>")[0]
    assert password not in json.dumps(audit_actions(db))


# ---- Sign-in: a coordinator resets a password or disables an account ----

def test_coordinator_sets_a_new_password_shown_once_and_the_old_one_dies(coordinator, make_user, login, app, db):
    user_id = make_user("ofc.nash", "officer", display_name="Ofc. Lou Nash")
    lost_phone = login("ofc.nash")
    with write_transaction(db):
        for _ in range(3):
            accounts.count_failed_sign_in(db, user_id)
    page = coordinator.post(f"/program/roster/{user_id}/password", data={"confirm": "yes"})
    assert page.status_code == 200 and page.headers["Cache-Control"] == "no-store"
    html = page.get_data(as_text=True)
    password = re.search(r'<code class="secret">([^<]+)</code>', html).group(1)
    assert "New password" in html and len(password) >= 15
    assert lost_phone.get("/").status_code == 302
    fresh = app.test_client()
    assert fresh.post("/login", data={"username": "ofc.nash", "password": PASSWORD}).status_code == 401
    assert fresh.post("/login", data={"username": "ofc.nash", "password": password}).status_code == 302
    assert one(db, "SELECT failed_logins FROM users WHERE id = ?", [user_id])["failed_logins"] == 0
    assert one(db, "SELECT subject, actor_name FROM audit_log WHERE action = 'password_reset'") == {
        "subject": "ofc.nash", "actor_name": "lt.ames"}


def test_disabling_an_account_signs_it_out_takes_it_off_duty_and_stops_its_alerts(coordinator, specialist, login, app, db):
    user_id = specialist("cit.vance", offset(500))
    phone = login("cit.vance")
    response = coordinator.post(f"/program/roster/{user_id}/sign-in", data={"disabled": "1", "confirm": "yes"})
    assert response.status_code == 303
    assert "can no longer sign in" in coordinator.get(response.headers["Location"]).get_data(as_text=True)
    assert phone.get("/").status_code == 302
    assert app.test_client().post("/login", data={"username": "cit.vance", "password": PASSWORD}).status_code == 401
    assert one(db, "SELECT on_duty FROM duty WHERE user_id = ?", [user_id])["on_duty"] == 0
    assert one(db, "SELECT count(*) AS n FROM push_subscriptions WHERE user_id = ?", [user_id])["n"] == 0
    assert "Account disabled" in coordinator.get(f"/program/roster/{user_id}").get_data(as_text=True)

    assert coordinator.post(f"/program/roster/{user_id}/sign-in", data={"disabled": "0", "confirm": "yes"}).status_code == 303
    assert app.test_client().post("/login", data={"username": "cit.vance", "password": PASSWORD}).status_code == 302
    actions = [r["action"] for r in db.query(
        "SELECT action FROM audit_log WHERE subject = 'cit.vance' AND action LIKE 'user_%' ORDER BY id")]
    assert actions == ["user_disabled", "user_enabled"]


def test_a_coordinator_cannot_lock_themself_out(coordinator, db):
    me = one(db, "SELECT id, password_hash FROM users WHERE username = 'lt.ames'")
    for path, data in ((f"/program/roster/{me['id']}/sign-in", {"disabled": "1"}), (f"/program/roster/{me['id']}/password", {})):
        response = coordinator.post(path, data=data)
        assert response.status_code == 400 and "ask another coordinator" in response.get_data(as_text=True)
    assert one(db, "SELECT id, password_hash FROM users WHERE username = 'lt.ames'") == me
    assert coordinator.get("/").status_code == 200


@pytest.mark.parametrize("data", [{}, {"disabled": "yes"}, {"disabled": "2"}])
def test_sign_in_access_takes_only_0_or_1(coordinator, make_user, db, data):
    user_id = make_user("ofc.nash", "officer")
    response = coordinator.post(f"/program/roster/{user_id}/sign-in", data=data)
    assert response.status_code == 400 and "disabled=1 or disabled=0" in response.get_data(as_text=True)
    assert one(db, "SELECT disabled FROM users WHERE id = ?", [user_id])["disabled"] == 0


def test_sign_in_actions_on_an_unknown_account_are_404(coordinator):
    assert coordinator.post("/program/roster/999/password", data={"confirm": "yes"}).status_code == 404
    assert coordinator.post("/program/roster/999/sign-in", data={"disabled": "1"}).status_code == 404


def test_coordinator_names_an_in_service_session(coordinator, on_roster, db):
    user_id = on_roster("dana", course="2025-01-10", inservice=["2025-06-01", "2026-03-02"])
    session = one(db, "SELECT id FROM inservice_training WHERE user_id = ? AND completed_on = '2026-03-02'", [user_id])
    page = coordinator.get(f"/program/roster/{user_id}").get_data(as_text=True)
    assert "In-service training" in page and 'value="2026-03-02' not in page  # dates are edited in the roster form
    response = coordinator.post(f"/program/roster/{user_id}/inservice/{session['id']}",
                                data={"title": "  Autism awareness,   4 h "}, headers={"HX-Request": "true"})
    html = response.get_data(as_text=True)
    assert response.status_code == 200 and "<html" not in html and 'id="inservice"' in html
    assert "Saved the title of the 2026-03-02 session." in html and 'value="Autism awareness, 4 h"' in html
    assert one(db, "SELECT title FROM inservice_training WHERE id = ?", [session["id"]])["title"] == "Autism awareness, 4 h"
    # Saving the roster form keeps the title of a session whose date stays.
    saved = coordinator.post(f"/program/roster/{user_id}", data={
        "display_name": "Ofc. Dana", "role": "cit", "course_completed_on": "2025-01-10",
        "inservice_dates": "2025-06-01; 2026-03-02", "active": "yes"})
    assert saved.status_code == 303
    assert one(db, "SELECT title FROM inservice_training WHERE id = ?", [session["id"]])["title"] == "Autism awareness, 4 h"
    assert one(db, "SELECT subject, actor_name FROM audit_log WHERE detail = 'in-service 2026-03-02 titled'") == {
        "subject": "dana", "actor_name": "lt.ames"}


def test_an_in_service_title_is_checked_and_scoped_to_its_officer(coordinator, on_roster, db):
    dana = on_roster("dana", course="2025-01-10", inservice=["2026-03-02"])
    lee = on_roster("lee", course="2025-01-10", inservice=["2026-03-03"])
    session = one(db, "SELECT id FROM inservice_training WHERE user_id = ?", [dana])["id"]
    too_long = coordinator.post(f"/program/roster/{dana}/inservice/{session}", data={"title": "x" * 101})
    assert too_long.status_code == 400 and "at most 100 characters" in too_long.get_data(as_text=True)
    assert coordinator.post(f"/program/roster/{lee}/inservice/{session}", data={"title": "Mine now"}).status_code == 404
    assert one(db, "SELECT title FROM inservice_training WHERE id = ?", [session])["title"] == ""
    plain = coordinator.post(f"/program/roster/{dana}/inservice/{session}", data={"title": "De-escalation refresher"})
    assert plain.status_code == 303 and plain.headers["Location"] == f"/program/roster/{dana}"


@pytest.mark.parametrize("path, data", [("password", {}), ("sign-in", {"disabled": "1"}), ("sign-in", {"disabled": "1", "confirm": "no"})])
def test_reset_and_disable_need_the_confirming_tick(coordinator, make_user, login, db, path, data):
    user_id = make_user("ofc.nash", "officer")
    phone = login("ofc.nash")
    before = one(db, "SELECT password_hash, disabled, session_version FROM users WHERE id = ?", [user_id])
    response = coordinator.post(f"/program/roster/{user_id}/{path}", data=data)
    assert response.status_code == 400 and "Tick the box to confirm" in response.get_data(as_text=True)
    assert one(db, "SELECT password_hash, disabled, session_version FROM users WHERE id = ?", [user_id]) == before
    assert phone.get("/").status_code == 200
