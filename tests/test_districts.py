"""Districts: an agency imports its district polygons, and requests and reports take the district a point is in."""
import datetime
import json
from pathlib import Path

import pytest

from fieldapp.audit.log import entries
from fieldapp.districts import all_districts, district_at
from fieldapp.duty.status import go_on_duty
from fieldapp.program import reports
from fieldapp.program.roster import add_record_once
from tests.helpers import ask

FIXTURE = Path(__file__).parent / "fixtures" / "districts.geojson"
# In the fixture: West and East are squares sharing the line lon -90.00; Islands is two squares
# to the south; Harbor is a centre only, just off East's north-east corner.
IN_WEST, IN_EAST, IN_ISLANDS = (35.15, -90.05), (35.15, -89.95), (35.02, -89.92)
ON_THE_WEST_EAST_BORDER = (35.15, -90.00)
# Inside East but nearer Harbor's centre than East's centroid: the polygon decides, not the distance.
IN_EAST_NEAR_HARBOR = (35.195, -89.905)
OUTSIDE_NEAR_HARBOR = (35.19, -89.87)


@pytest.fixture
def cli(app):
    """Run a `flask` command: cli('districts', 'list') -> click's Result."""
    runner = app.test_cli_runner()
    return lambda *args: runner.invoke(args=[str(a) for a in args])


@pytest.fixture
def imported(cli):
    result = cli("districts", "import", FIXTURE)
    assert result.exit_code == 0, result.output
    return result


def features():
    return json.loads(FIXTURE.read_text())["features"]


def geojson_file(tmp_path, content, name="districts.geojson"):
    path = tmp_path / name
    path.write_text(content if isinstance(content, str) else json.dumps({"type": "FeatureCollection", "features": content}))
    return path


def square(name, west, south, size=0.1):
    ring = [[west, south], [west + size, south], [west + size, south + size], [west, south + size], [west, south]]
    return {"type": "Feature", "properties": {"name": name}, "geometry": {"type": "Polygon", "coordinates": [ring]}}


def lookup(db, point):
    return district_at(db, *point)


def test_import_creates_polygon_and_centre_districts(app, db, imported):
    assert imported.stdout.strip() == "Districts from districts.geojson: 4 added, 0 updated, 0 removed."
    rows = {d["name"]: d for d in all_districts(db)}
    assert sorted(rows) == ["East", "Harbor", "Islands", "West"]
    assert json.loads(rows["Islands"]["geometry"])["type"] == "MultiPolygon"
    assert rows["Harbor"]["geometry"] is None and (rows["Harbor"]["lat"], rows["Harbor"]["lon"]) == (35.19, -89.88)
    # A polygon's centre is its centroid.
    assert rows["West"]["lat"] == pytest.approx(35.15) and rows["West"]["lon"] == pytest.approx(-90.05)


def test_a_point_takes_the_district_whose_polygon_holds_it(app, db, imported):
    assert lookup(db, IN_WEST) == "West"
    assert lookup(db, IN_EAST) == "East"
    assert lookup(db, IN_ISLANDS) == "Islands"
    assert lookup(db, IN_EAST_NEAR_HARBOR) == "East"


def test_a_point_on_a_shared_border_goes_to_the_first_district_by_name(app, db, cli, tmp_path):
    # Imported in the file's order (West first) and the other way round: East wins both times.
    assert cli("districts", "import", geojson_file(tmp_path, features())).exit_code == 0
    assert lookup(db, ON_THE_WEST_EAST_BORDER) == "East"
    db.execute("DELETE FROM districts")  # forced: an import updates rows in place, keeping the first file's order
    assert cli("districts", "import", geojson_file(tmp_path, features()[::-1], "reversed.geojson")).exit_code == 0
    assert lookup(db, ON_THE_WEST_EAST_BORDER) == "East"


def test_a_point_outside_every_polygon_takes_the_nearest_centre(app, db, imported):
    assert lookup(db, OUTSIDE_NEAR_HARBOR) == "Harbor"
    # Just north of West, nearest West's centroid.
    assert lookup(db, (35.22, -90.05)) == "West"


def test_reports_count_a_request_in_the_district_that_holds_it(app, db, clock, imported, make_user, login):
    for username, position in (("ofc.lee", IN_EAST_NEAR_HARBOR), ("ofc.kim", OUTSIDE_NEAR_HARBOR)):
        make_user(username, "officer")
        ask(login(username), position=position)
    day = datetime.date.fromtimestamp(clock.t)
    with app.app_context():
        rows = dict(reports.report(db, day, day, "district")["rows"])
    assert {name: f["requests"] for name, f in rows.items()} == {"East": 1, "Harbor": 1, "Islands": 0, "West": 0}


def test_lookups_follow_a_change_made_by_another_process(app, db, imported):
    assert lookup(db, IN_WEST) == "West"
    # As an administrator with sqlite3 would: the triggers tell every process to rebuild.
    db.execute("UPDATE districts SET name = 'Westside' WHERE name = 'West'")
    assert lookup(db, IN_WEST) == "Westside"


def test_import_updates_districts_by_name_and_keeps_the_others(app, db, cli, imported, tmp_path):
    moved = square("West", -90.30, 35.10)
    result = cli("districts", "import", geojson_file(tmp_path, [moved]))
    assert result.exit_code == 0 and "0 added, 1 updated, 0 removed" in result.stdout
    assert sorted(d["name"] for d in all_districts(db)) == ["East", "Harbor", "Islands", "West"]
    assert lookup(db, (35.15, -90.25)) == "West"


def test_replace_removes_districts_the_file_does_not_name(app, db, cli, imported, tmp_path):
    result = cli("districts", "import", "--replace", geojson_file(tmp_path, features()[:2]))
    assert result.exit_code == 0 and "0 added, 2 updated, 2 removed" in result.stdout
    assert sorted(d["name"] for d in all_districts(db)) == ["East", "West"]


def on_duty_in_harbor(app, db, user_id):
    with app.app_context():
        go_on_duty(db, user_id, "Harbor")


def on_the_roster_for_harbor(app, db, user_id):
    add_record_once(db, user_id, {"volunteered_on": "2025-01-10", "supervisor_recommendation": "", "course_completed_on": "",
                                  "inservice_dates": [], "districts": ["Central", "Harbor"], "shifts": ["day"]})


@pytest.mark.parametrize("use", [on_duty_in_harbor, on_the_roster_for_harbor])
def test_replace_refuses_to_remove_a_district_in_use(app, db, cli, imported, make_user, tmp_path, use):
    use(app, db, make_user("ofc.reyes", "cit"))
    before = all_districts(db)
    result = cli("districts", "import", "--replace", geojson_file(tmp_path, features()[:2]))
    assert result.exit_code != 0
    assert "would remove Harbor, still chosen on the duty page" in result.stderr
    assert all_districts(db) == before


def test_import_is_audited_with_the_os_user(db, imported):
    entry = entries(db, limit=1)[0]
    assert (entry["action"], entry["subject"]) == ("districts_imported", "districts.geojson")
    assert entry["actor_name"].startswith("cli:")
    assert entry["detail"] == "4 added, 0 updated, 0 removed; 3 polygon(s), 1 centre(s)"


BOWTIE = [[-90.1, 35.1], [-90.0, 35.2], [-90.0, 35.1], [-90.1, 35.2], [-90.1, 35.1]]


@pytest.mark.parametrize("content, says", [
    ("{not json", "not valid JSON (line 1, column 2"),
    ('{"type": "Feature"}', "not a GeoJSON FeatureCollection"),
    ([{"type": "Feature", "properties": {"title": "North"}, "geometry": {"type": "Point", "coordinates": [-90, 35]}}],
     "feature 1: no 'name' property"),
    ([{"type": "Feature", "properties": {"name": "Bowtie"}, "geometry": {"type": "Polygon", "coordinates": [BOWTIE]}}],
     "feature 1 (Bowtie): the Polygon is not valid: Self-intersection"),
    ([{"type": "Feature", "properties": {"name": "Short"}, "geometry": {"type": "Polygon", "coordinates": [[[-90, 35], [-89, 35]]]}}],
     "feature 1 (Short): its coordinates are not a Polygon"),
    ([square("North", -90.1, 35.1), square("north", -90.0, 35.1)], "feature 2: the name 'north' is also used by feature 1"),
    ([{"type": "Feature", "properties": {"name": "Road"}, "geometry": {"type": "LineString", "coordinates": [[-90, 35], [-89, 35]]}}],
     "must be a Polygon, MultiPolygon or Point, not LineString"),
    ([square("Swapped", 35.1, -90.1)], "coordinates must be longitude, latitude"),
    ([square("A;B", -90.1, 35.1)], "may not contain ';'"),
])
def test_a_bad_file_is_one_line_and_changes_nothing(db, cli, imported, tmp_path, content, says):
    before, audited = all_districts(db), len(entries(db))
    # The first feature is good: nothing of it may land when a later one is bad.
    if isinstance(content, list):
        content = [square("Good", -91.0, 36.0)] + content
        says = says.replace("feature 2", "feature 3").replace("feature 1", "feature 2")
    result = cli("districts", "import", geojson_file(tmp_path, content))
    assert result.exit_code != 0
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and says in lines[0] and lines[0].endswith("Nothing was changed."), result.stderr
    assert all_districts(db) == before and len(entries(db)) == audited


def test_a_missing_file_is_one_line(cli, tmp_path):
    result = cli("districts", "import", tmp_path / "nowhere.geojson")
    assert result.exit_code != 0 and len(result.stderr.strip().splitlines()) == 1 and "nowhere.geojson" in result.stderr


def test_districts_list_prints_each_district(cli, imported):
    lines = cli("districts", "list").stdout.strip().splitlines()
    assert [line.split("\t")[:3] for line in lines] == [
        ["East", "polygon", "5 point(s)"], ["Harbor", "centre", "1 point(s)"],
        ["Islands", "polygon", "10 point(s)"], ["West", "polygon", "5 point(s)"],
    ]


def test_coordinator_sees_each_district_with_its_kind_and_area(coordinator_client, imported):
    html = coordinator_client.get("/program/districts").get_data(as_text=True)
    assert "<th scope=\"row\">East</th>" in html and "Centre only" in html
    # West is 0.1 degree square at 35.15 N: about 9.10 km by 11.06 km, 100.6 km².
    assert "<td>100.6 km²</td>" in html
    assert 'href="/program/districts" aria-current="page"' in html


@pytest.fixture
def coordinator_client(make_user, login):
    make_user("lt.ames", "coordinator", display_name="Lt. Jo Ames")
    return login("lt.ames")


def test_the_request_page_names_the_district_of_the_scene(imported, make_user, login):
    make_user("ofc.lee", "officer")
    make_user("sgt.okafor", "supervisor")
    request_id = ask(login("ofc.lee"), position=IN_EAST_NEAR_HARBOR)
    assert "East district" in login("sgt.okafor").get(f"/requests/{request_id}").get_data(as_text=True)
