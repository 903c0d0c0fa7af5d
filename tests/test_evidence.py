"""The program's evidence: the coverage forecast, the on-scene (fidelity) figure, and the demo's invented year."""
import csv
import datetime
import io

import pytest

from fieldapp.demo.seed import demo_people, seed_demo
from fieldapp.demo.history import invent_history
from fieldapp.program import coverage, fidelity, forecast, roster
from tests.helpers import DISTRICTS, local, past_request

TODAY = datetime.date(2026, 5, 28)

# Every figure here is read on Thursday 28 May 2026 at noon.
pytestmark = pytest.mark.usefixtures("midday")


# ---- The coverage forecast ----

@pytest.fixture
def lapsing(districts, on_roster):
    """A roster whose next 90 days are worked out by hand (in-service every 730 days)."""
    # Central day: Avery counts all window (due 2027-01-10); Blake is due 2026-07-01 (in-service
    # 2024-07-01 + 730 days), so counts up to that day and not from 2 July; Casey is past due already;
    # Devon is inactive.
    on_roster("avery", course="2025-01-10", districts="Central", shifts="day")
    on_roster("blake", course="2024-03-01", inservice=["2024-07-01"], districts="Central", shifts="day")
    on_roster("casey", course="2024-01-01", districts="Central", shifts="day")
    on_roster("devon", course="2025-02-01", districts="Central", shifts="day", active=0)
    # North evening: one, all window. South night: two, all window.
    on_roster("emery", course="2025-06-01", districts="North", shifts="evening")
    on_roster("frankie", course="2025-02-01", districts="South", shifts="night")
    on_roster("gale", course="2025-02-01", districts="South", shifts="night")


def forecast_rows(app, db, **options):
    with app.app_context():
        result = forecast.coverage_forecast(db, **options)
    return result, {(r["district"], r["shift"]): r for r in result["rows"]}


def test_forecast_counts_each_watch_day_by_day_as_in_service_lapses(app, db, lapsing):
    result, rows = forecast_rows(app, db)
    assert result["start"] == TODAY and result["days"] == 90 and result["minimum"] == 2
    central_day = rows[("Central", "day")]["counts"]
    # 28 May + 34 days = 1 July, the last day Blake counts; 2 July is day 35.
    assert central_day[:35] == [2] * 35 and central_day[35:] == [1] * 55
    assert rows[("North", "evening")]["counts"] == [1] * 90
    assert rows[("South", "night")]["counts"] == [2] * 90
    assert rows[("South", "day")]["counts"] == [0] * 90
    assert rows[("Central", "day")]["lapses"] == [(datetime.date(2026, 7, 2), "Ofc. Blake")]


def test_forecast_starts_from_todays_coverage(app, db, lapsing):
    with app.app_context():
        today = {r["district"]: r["roster"] for r in coverage.roster_coverage(db)["rows"]}
    _, rows = forecast_rows(app, db)
    assert {key: row["counts"][0] for key, row in rows.items()} == {
        (district, shift): today[district][shift] for district in DISTRICTS for shift in roster.SHIFTS}


def test_forecast_warns_with_the_first_day_a_watch_drops_below_the_target(app, db, lapsing):
    result, rows = forecast_rows(app, db)
    assert rows[("Central", "day")]["first_below"] == datetime.date(2026, 7, 2)
    assert rows[("South", "night")]["first_below"] is None
    assert rows[("North", "evening")]["first_below"] == TODAY
    warnings = forecast.forecast_warnings(result)
    assert (datetime.date(2026, 7, 2), "Central", "day", False) in warnings
    assert (TODAY, "North", "evening", True) in warnings
    # Every watch but South night is below two at some point: nine watches, one never.
    assert len(warnings) == 8 and warnings[-1][0] == datetime.date(2026, 7, 2)


def test_forecast_target_comes_from_config(app, db, lapsing):
    app.config["MIN_CIT_PER_SHIFT"] = 1
    _, rows = forecast_rows(app, db)
    assert rows[("Central", "day")]["first_below"] is None
    assert rows[("North", "evening")]["first_below"] is None


def test_coverage_page_charts_the_forecast_and_says_where_the_target_comes_from(supervisor, lapsing):
    html = supervisor.get("/program/coverage").get_data(as_text=True)
    assert "Central · day: from <strong><time datetime=\"2026-07-02\">2026-07-02</time></strong>" in html
    assert "North · evening: already below today" in html
    assert html.count('<svg class="chart"') == 3  # one per district
    assert "Ofc. Blake (no longer counted from 2026-07-02)" in html
    assert "NAMI Chicago" in html and "a sufficient number" in html and "not a law" in html
    assert "<script" not in html.split("<main", 1)[1] and "style=" not in html.split("<main", 1)[1]


# ---- The fidelity figure: did a CIT officer reach the scene? ----

@pytest.fixture
def arrivals(db, make_user, districts):
    """Eight requests, six closed in April and May 2026; shifts start at 07, 15 and 23."""
    ofc = make_user("ofc.lee", "officer")
    reached, missed = [("accepted", 60), ("on_scene", 600)], [("accepted", 60)]
    past_request(db, ofc, local(2026, 4, 3, 10), "Central", "resolved", reached)  # day
    past_request(db, ofc, local(2026, 4, 10, 16), "Central", "resolved", missed)  # evening, resolved by phone
    past_request(db, ofc, local(2026, 5, 2, 2), "Central", "cancelled", missed)  # night
    past_request(db, ofc, local(2026, 5, 5, 11), "North", "resolved", reached)  # day
    past_request(db, ofc, local(2026, 5, 6, 23, 30), "North", "cancelled", reached)  # night, cancelled after arrival
    past_request(db, ofc, local(2026, 4, 12, 8), None, "resolved", reached)  # day, a typed location
    past_request(db, ofc, local(2026, 5, 27, 12), "Central", "on_scene", reached)  # still open: left out
    past_request(db, ofc, local(2026, 3, 15, 12), "Central", "resolved", reached)  # before the range


def fidelity_figures(app, db):
    with app.app_context():
        return fidelity.fidelity(db, datetime.date(2026, 4, 1), datetime.date(2026, 5, 31))


def test_on_scene_share_counts_closed_requests_by_district_shift_and_month(app, db, arrivals):
    f = fidelity_figures(app, db)
    assert f["total"] == ("All", 6, 4, 4 / 6)
    assert f["by_district"] == [("Central", 3, 1, 1 / 3), ("North", 2, 2, 1.0), ("South", 0, 0, None),
                                ("No coordinates", 1, 1, 1.0)]
    assert f["by_shift"] == [("day", 3, 3, 1.0), ("evening", 1, 0, 0.0), ("night", 2, 1, 0.5)]
    assert f["by_month"] == [("2026-04", 3, 2, 2 / 3), ("2026-05", 3, 2, 2 / 3)]
    cells = {key: (closed, reached) for key, closed, reached, _ in f["by_district_shift"]}
    assert cells[("Central", "day")] == (1, 1) and cells[("Central", "evening")] == (1, 0)
    assert cells[("Central", "night")] == (1, 0) and cells[("North", "night")] == (1, 1)
    assert cells[("South", "day")] == (0, 0)


def test_reports_page_shows_the_on_scene_share(supervisor, arrivals):
    html = supervisor.get("/program/reports?from=2026-04-01&to=2026-05-31").get_data(as_text=True)
    assert "Of 6 closed requests, a CIT officer reached the scene in 4" in html and "(66.7%)" in html
    assert "CIT officer on scene, share of closed requests, by month" in html
    assert "invented demo requests" not in html


def test_on_scene_csv_streams_every_breakdown(supervisor, arrivals):
    response = supervisor.get("/program/reports/fidelity.csv?from=2026-04-01&to=2026-05-31")
    # Written as the rows come: a streamed response has no length up front.
    assert response.status_code == 200 and "Content-Length" not in response.headers
    rows = list(csv.reader(io.StringIO(response.get_data(as_text=True).lstrip("\ufeff"))))
    assert rows[0] == fidelity.FIDELITY_CSV_COLUMNS
    assert ["district", "Central", "3", "1", "33.3"] in rows
    assert ["shift", "night", "2", "1", "50.0"] in rows
    assert ["district_shift", "North · night", "1", "1", "100.0"] in rows
    assert ["district", "South", "0", "0", ""] in rows
    assert rows[-1] == ["all", "All", "6", "4", "66.7"]


def test_on_scene_csv_refuses_bad_dates_with_a_400(supervisor):
    response = supervisor.get("/program/reports/fidelity.csv?from=yesterday")
    assert response.status_code == 400 and "YYYY-MM-DD" in response.get_data(as_text=True)


# ---- A year of invented demo history ----

def history_rows(db):
    return [tuple(r.values()) for r in db.query(
        "SELECT requester_id, state, created_at, lat, lon, unanswered, assigned_id, on_scene_at, closed_at,"
        " disposition, cancel_reason, force_used FROM cit_requests ORDER BY id")]


def test_seed_demo_writes_a_year_of_closed_marked_requests_and_no_pushes(app, db, tmp_path):
    with app.app_context():
        seed_demo(db, tmp_path / "demo-accounts.txt")
    states = {r["state"]: r["n"] for r in db.query("SELECT state, COUNT(*) AS n FROM cit_requests GROUP BY state")}
    assert set(states) == {"resolved", "cancelled"} and sum(states.values()) == 2000
    assert db.execute("SELECT COUNT(*) FROM cit_requests WHERE demo != 1").fetchone()[0] == 0
    assert db.execute("SELECT COUNT(*) FROM outbox").fetchone()[0] == 0
    assert db.execute("SELECT COUNT(*) FROM alerts").fetchone()[0] == 0
    assert 20 < db.execute("SELECT SUM(unanswered) FROM cit_requests").fetchone()[0] < 120
    first, last = db.execute("SELECT MIN(created_at), MAX(created_at) FROM cit_requests").fetchone()
    assert datetime.date.fromtimestamp(last) < TODAY <= datetime.date.fromtimestamp(first) + datetime.timedelta(days=366)
    with app.app_context():
        f = fidelity.fidelity(db, TODAY - datetime.timedelta(days=366), TODAY)
    assert all(closed > 100 for name, closed, _, _ in f["by_district"] if name != "No coordinates")
    assert all(closed > 100 for _, closed, _, _ in f["by_shift"])
    assert sum(1 for _, closed, _, _ in f["by_month"] if closed > 50) == 12
    assert 0.7 < f["total"][3] < 0.95
    # The timeline is there for every one: at least requested, alerted and how it closed.
    assert db.execute("SELECT COUNT(*) FROM cit_requests r WHERE (SELECT COUNT(*) FROM request_events e"
                      " WHERE e.request_id = r.id) < 3").fetchone()[0] == 0


def test_demo_history_is_the_same_for_the_same_seed(app, db, tmp_path):
    with app.app_context():
        seed_demo(db, tmp_path / "demo-accounts.txt")
        centres = {d["name"]: (d["lat"], d["lon"]) for d in db.query("SELECT * FROM districts")}
        people = demo_people(db)
        again, once_more = invent_history(centres, people), invent_history(centres, people)
        other = invent_history(centres, people, seed=19)
    assert again == once_more
    assert history_rows(db) == [(row["requester_id"], row["state"], row["created_at"], row["lat"], row["lon"],
                                 row["unanswered"], row["assigned_id"], row["on_scene_at"], row["closed_at"],
                                 row["disposition"], row["cancel_reason"], row["force_used"]) for row, _ in again]
    assert [row for row, _ in other] != [row for row, _ in again]


def test_seed_demo_twice_adds_no_second_year(app, db):
    assert app.test_cli_runner().invoke(args=["seed-demo"]).exit_code == 0
    assert app.test_cli_runner().invoke(args=["seed-demo"]).exit_code == 0
    assert db.execute("SELECT COUNT(*) FROM cit_requests").fetchone()[0] == 2000


def test_seed_demo_no_history_writes_no_requests(app, db):
    result = app.test_cli_runner().invoke(args=["seed-demo", "--no-history"])
    assert result.exit_code == 0, result.output
    assert db.execute("SELECT COUNT(*) FROM users").fetchone()[0] == 6
    assert db.execute("SELECT COUNT(*) FROM cit_requests").fetchone()[0] == 0


def test_reports_say_when_they_include_invented_requests(app, db, supervisor):
    assert app.test_cli_runner().invoke(args=["seed-demo"]).exit_code == 0
    html = supervisor.get("/program/reports").get_data(as_text=True)
    assert "This database holds 2000 invented demo requests" in html
