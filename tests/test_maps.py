"""The map: importing it, looking addresses up, and handing the scene to the device's navigation app.

Exact answers come from tests/fixtures/maps/town.osm, a town invented around SCENE; real ones from the
demo's central Helsinki (OpenStreetMap data). Speeds are measured in bench/maps.py, never here."""
import gzip
from pathlib import Path

import pytest

from fieldapp.maps import describe_place, eta_estimate, nearest_address, navigate_link, resolve_location
from fieldapp.maps import search_addresses
from fieldapp.maps.places import NO_MATCH, LocationNotFound
from tests.helpers import SCENE, offset

FIXTURES = Path(__file__).parent / "fixtures" / "maps"


def run(app, *args):
    """Run a `flask` command; returns click's result."""
    return app.test_cli_runner().invoke(args=[str(a) for a in args])


def a_tile_url(client):
    """The URL of one tile the live map has (its highest zoom's last)."""
    area = client.get("/map/area.json").get_json()
    z, x, y = area["tiles"][-1]
    return area["template"].format(z=z, x=x, y=y)


def live_files(folder):
    """The live map files' bytes, to show that a refused import changed nothing."""
    return {name: (folder / name).read_bytes() for name in ("basemap.pmtiles", "addresses.db")}


# ---- Importing ----


def test_import_builds_the_basemap_and_the_address_index(app):
    result = run(app, "map", "import", FIXTURES / "town.osm")
    assert result.exit_code == 0, result.output
    assert "6 addresses" in result.output and "3 named streets" in result.output
    info = run(app, "map", "info")
    assert info.exit_code == 0, info.output
    assert "south 35.14" in info.output and "Zooms        10–15" in info.output
    assert "Addresses    6 " in info.output and "© OpenStreetMap contributors" in info.output
    assert not list((Path(app.instance_path) / "map").glob("*.building.*"))


def test_map_info_without_a_map_says_how_to_import_one(app):
    result = run(app, "map", "info")
    assert result.exit_code == 1
    assert "map import EXTRACT.osm.pbf" in result.output and "Traceback" not in result.output


@pytest.mark.parametrize("content, says", [
    (b"", "is empty"),
    (b"\x00\x17not a pbf at all" * 64, "is not a readable OpenStreetMap extract"),
])
def test_import_refuses_a_bad_file_and_the_old_map_keeps_serving(app, client, officer, town_map, tmp_path, content,
                                                                  says):
    before = live_files(town_map)
    tile = a_tile_url(client)
    bad = tmp_path / "county.osm.pbf"
    bad.write_bytes(content)
    result = run(app, "map", "import", bad)
    assert result.exit_code == 1
    assert says in result.output and "The map in use is unchanged." in result.output
    assert "Traceback" not in result.output
    assert live_files(town_map) == before
    assert not list(town_map.glob("*.building.*"))
    assert client.get(tile).status_code == 200


def test_import_refuses_an_extract_with_no_roads_and_no_addresses(app, town_map):
    before = live_files(town_map)
    result = run(app, "map", "import", FIXTURES / "no-roads.osm")
    assert result.exit_code == 1
    assert "has no roads and no addresses" in result.output
    assert live_files(town_map) == before


def test_import_refuses_a_missing_file(app):
    result = run(app, "map", "import", "/nowhere/county.osm.pbf")
    assert result.exit_code != 0 and "is not a file" in result.output


def test_a_new_import_is_served_at_once_and_the_old_tiles_are_refused(app, client, officer, town_map):
    old = client.get("/map/area.json").get_json()["version"]
    old_tile = a_tile_url(client)
    assert run(app, "map", "import", Path(__file__).parent.parent / "fieldapp/maps/demo/helsinki.osm.pbf").exit_code == 0
    new = client.get("/map/area.json").get_json()["version"]
    assert new != old
    assert client.get(old_tile).status_code == 404
    with app.app_context():
        assert nearest_address(60.168545, 24.945342)["street"] == "Mikonkatu"


def test_address_format_must_name_both_parts(app):
    result = run(app, "map", "import", FIXTURES / "town.osm", "--address-format", "{street}")
    assert result.exit_code == 2 and "{housenumber}" in result.output


# ---- Looking addresses up ----


def test_nearest_address_is_the_exact_point(app, town_map):
    with app.app_context():
        found = nearest_address(35.14965, -90.0500)
    assert found["label"] == "12 Main Street" and found["place"] == "38103 Memphis"
    assert found["distance_m"] == 0 and (found["lat"], found["lon"]) == (35.14965, -90.05)


@pytest.mark.parametrize("metres, found", [(30, "12 Main Street"), (45, "12 Main Street"), (55, None)])
def test_nearest_address_looks_only_as_far_as_asked(app, town_map, metres, found):
    with app.app_context():
        address = nearest_address(*offset(metres, 0, origin=(35.14965, -90.0500)), within_m=50)
    assert (address["label"] if address else None) == found


def test_a_building_is_found_before_its_units(app, town_map):
    with app.app_context():
        assert nearest_address(35.14965, -90.0506)["label"] == "14 Main Street"


def test_an_addressed_building_is_found_by_a_point_inside_it(app, town_map):
    with app.app_context():
        assert nearest_address(35.1480, -90.0486)["label"] == "100 3rd Avenue"


def test_no_map_no_address(app):
    with app.app_context():
        assert nearest_address(*SCENE) is None and describe_place(*SCENE) is None
        assert search_addresses("12 main") == []


@pytest.mark.parametrize("point, described", [
    ((35.14965, -90.0500), "12 Main Street"),
    (offset(0, 400), "near Main Street and 3rd Avenue"),
    ((35.1509, -90.0505), "near Oak Street and 3rd Avenue"),
    ((35.2000, -90.0000), None),
])
def test_describe_place_gives_the_address_or_the_nearest_crossing(app, town_map, point, described):
    with app.app_context():
        assert describe_place(*point) == described


@pytest.mark.parametrize("text, first", [
    ("12 main", "12 Main Street"),
    ("12 Main St", "12 Main Street"),
    ("12 MAIN STREET MEMPHIS", "12 Main Street"),
    ("1250 ma", "1250 Main Street"),
    ("14 main street 2", "14 Main Street, Unit 2"),
    ("100 3rd ave", "100 3rd Avenue"),
])
def test_search_finds_addresses_as_typed(app, town_map, text, first):
    with app.app_context():
        assert search_addresses(text, 5)[0]["label"] == first


def test_search_lists_one_street_in_number_order(app, town_map):
    with app.app_context():
        labels = [a["label"] for a in search_addresses("main street", 10)]
    assert labels[:3] == ["12 Main Street", "14 Main Street", "14 Main Street, Unit 2"]
    assert labels[-1] == "1250 Main Street"


@pytest.mark.parametrize("text", ["oak", "zzz", "", "   ", '"*(', "12 AND OR NOT NEAR"])
def test_search_with_nothing_to_find_returns_nothing(app, town_map, text):
    with app.app_context():
        assert search_addresses(text, 5) == []


@pytest.mark.parametrize("text, matched, label, point", [
    ("12 Main Street", "address", "12 Main Street", (35.14965, -90.05)),
    ("12 MAIN ST", "address", "12 Main Street", (35.14965, -90.05)),
    ("12 MAIN ST, MEMPHIS", "address", "12 Main Street", (35.14965, -90.05)),
    ("14 MAIN ST APT 2", "address", "14 Main Street, Unit 2", (35.14965, -90.0506)),
    ("14 MAIN ST #9", "building", "14 Main Street", (35.14965, -90.0506)),
    ("MAIN ST / 3RD AVE", "intersection", "MAIN ST and 3RD AVE", (35.1495, -90.049)),
    ("3rd Avenue & Oak Street", "intersection", "3rd Avenue and Oak Street", (35.151, -90.049)),
    ("1200 BLK MAIN ST", "block", "1200 block of Main Street", (35.14935, -90.0467)),
    ("35.1495, -90.049", "coordinates", "35.14950, -90.04900", (35.1495, -90.049)),
    ("35.1495 -90.049", "coordinates", "35.14950, -90.04900", (35.1495, -90.049)),
])
def test_resolve_location_says_how_it_matched(app, town_map, text, matched, label, point):
    with app.app_context():
        found = resolve_location(text)
    assert (found["matched"], found["label"]) == (matched, label)
    assert (round(found["lat"], 5), round(found["lon"], 5)) == point


@pytest.mark.parametrize("text, message", [
    ("99 Nowhere Road", NO_MATCH),
    ("Main Street", NO_MATCH),
    ("", NO_MATCH),
    ("95, 10", "Latitude must be between -90 and 90."),
])
def test_resolve_location_refuses_what_names_no_point(app, town_map, text, message):
    with app.app_context(), pytest.raises(LocationNotFound) as refused:
        resolve_location(text)
    assert str(refused.value) == message


def test_the_demo_map_has_real_helsinki_addresses(app, helsinki_map):
    with app.app_context():
        assert nearest_address(60.168545, 24.945342)["label"] == "Mikonkatu 4"
        assert search_addresses("Mannerheimintie 14", 3)[0]["label"] == "Mannerheimintie 14"
        assert resolve_location("MANNERHEIMINTIE 14")["matched"] == "address"
        assert describe_place(60.16890, 24.94555).startswith(("Mikonkatu", "Aleksanterinkatu", "near "))


@pytest.mark.parametrize("args, says", [
    (("near", "35.14965", "-90.0500"), "12 Main Street, 38103 Memphis (0 m away"),
    (("near", "35.2", "-90.0"), "No address within 50 m."),
    (("search", "12", "main"), "12 Main Street, 38103 Memphis  (35.149650, -90.050000)"),
    (("search", "zzz"), "No address matches."),
    (("resolve", "MAIN ST / 3RD AVE"), "matched as intersection"),
])
def test_address_commands_print_what_the_app_would_show(app, town_map, args, says):
    result = run(app, "addresses", *args)
    assert result.exit_code == 0, result.output
    assert says in result.output


@pytest.mark.parametrize("args", [("near", "95", "10"), ("near", "a", "b"), ("resolve", "99 Nowhere Road")])
def test_address_commands_refuse_bad_input_without_a_traceback(app, town_map, args):
    result = run(app, "addresses", *args)
    assert result.exit_code != 0 and "Traceback" not in result.output


# ---- An agency's own address points ----


def test_nena_address_points_join_the_index_and_replace_osm_duplicates(app, town_map):
    result = run(app, "map", "import-addresses", FIXTURES / "nena-points.geojson")
    assert result.exit_code == 0, result.output
    assert "Imported 2 address points" in result.output and "1 OpenStreetMap duplicates dropped" in result.output
    with app.app_context():
        twelve = nearest_address(35.14966, -90.0500)
        assert (twelve["label"], twelve["source"]) == ("12 Main Street", "nena-points.geojson")
        assert search_addresses("20B north cleveland", 1)[0]["label"] == "20B North Cleveland Street, Unit 3"
        assert resolve_location("20B N CLEVELAND ST UNIT 3")["matched"] == "address"
        # The streets and crossings of the map stay.
        assert describe_place(*offset(0, 400)) == "near Main Street and 3rd Avenue"


def test_importing_the_same_address_file_again_replaces_its_points(app, town_map):
    for _ in range(2):
        assert run(app, "map", "import-addresses", FIXTURES / "nena-points.geojson").exit_code == 0
    with app.app_context():
        assert len(search_addresses("cleveland", 10)) == 1


def test_openaddresses_csv_joins_the_index(app, town_map):
    result = run(app, "map", "import-addresses", FIXTURES / "openaddresses.csv")
    assert result.exit_code == 0, result.output
    with app.app_context():
        assert search_addresses("9 oak st a", 1)[0]["label"] == "9 Oak St, Unit A"
        assert nearest_address(35.1512, -90.0495)["label"] == "7 Oak St"


@pytest.mark.parametrize("name, content, says", [
    ("points.geojson", '{"type": "FeatureCollection", "features": [{"type": "Feature", "geometry": {"type": "Point", '
     '"coordinates": [771234.5, 382211.0]}, "properties": {"Add_Number": 1, "St_Name": "Main"}}]}', "WGS 84"),
    ("points.geojson", "{not json", "not GeoJSON"),
    ("points.geojson", '{"type": "FeatureCollection", "features": []}', "has no address points"),
    ("points.csv", "X,Y\n1,2\n", "not an OpenAddresses CSV"),
    ("points.csv", "", "is empty"),
])
def test_a_bad_address_file_is_refused_and_changes_nothing(app, town_map, tmp_path, name, content, says):
    before = live_files(town_map)
    bad = tmp_path / name
    bad.write_text(content)
    result = run(app, "map", "import-addresses", bad)
    assert result.exit_code == 1 and says in result.output and "Traceback" not in result.output
    assert live_files(town_map) == before
    assert not list(town_map.glob("*.building.*"))


# ---- Navigation ----

IPHONE = "Mozilla/5.0 (iPhone; CPU iPhone OS 18_1 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/18.1 Mobile/15E148 Safari/604.1"
IPAD = "Mozilla/5.0 (iPad; CPU OS 17_5 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.5 Mobile/15E148 Safari/604.1"
ANDROID = "Mozilla/5.0 (Linux; Android 14; SM-S918B) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Mobile Safari/537.36"
WINDOWS = "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36 Edg/131.0.0.0"
LINUX = "Mozilla/5.0 (X11; Linux x86_64; rv:133.0) Gecko/20100101 Firefox/133.0"


@pytest.mark.parametrize("user_agent, app_name, href", [
    (IPHONE, "Apple Maps", "https://maps.apple.com/?daddr=35.149500,-90.049000&dirflg=d"),
    (IPAD, "Apple Maps", "https://maps.apple.com/?daddr=35.149500,-90.049000&dirflg=d"),
    (ANDROID, "Google Maps", "google.navigation:q=35.149500,-90.049000&mode=d"),
    (WINDOWS, "Windows Maps", "bingmaps:?rtp=~pos.35.149500_-90.049000&mode=d"),
    (LINUX, "Web map", "https://www.google.com/maps/dir/?api=1&destination=35.149500,-90.049000"),
    ("", "Web map", "https://www.google.com/maps/dir/?api=1&destination=35.149500,-90.049000"),
])
def test_navigate_opens_the_devices_own_map_app(app, user_agent, app_name, href):
    with app.app_context():
        link = navigate_link(user_agent, *SCENE)
    assert (link["app"], link["href"]) == (app_name, href)


def test_android_also_offers_any_map_app_through_geo(app):
    with app.app_context():
        link = navigate_link(ANDROID, *SCENE, label="12 Main Street")
    assert link["other"][0] == {"href": "geo:35.149500,-90.049000?q=35.149500,-90.049000(12%20Main%20Street)",
                                "app": "Other map app"}


def test_the_agency_chooses_the_map_link_for_other_devices(app_config):
    from fieldapp import create_app

    app = create_app(dict(app_config, MAP_NAVIGATE_URL="https://maps.example.gov/route?to={lat},{lon}"))
    with app.app_context():
        assert navigate_link(LINUX, *SCENE)["href"] == "https://maps.example.gov/route?to=35.149500,-90.049000"
        assert navigate_link(IPHONE, *SCENE)["other"][0]["href"].startswith("https://maps.example.gov/")


def test_eta_is_straight_line_times_the_detour_factor_at_urban_speed(app):
    with app.app_context():
        eta = eta_estimate(*SCENE, *offset(3000, 0))
    assert round(eta["metres"]) == 3900 and round(eta["minutes"], 2) == 5.85
    assert eta["text"] == "about 6 min (3.9 km by road, estimated)"
    assert eta["how"] == "straight line × 1.3 at 40 km/h"


# ---- The map page and its tiles ----


def test_tiles_are_served_gzipped_and_kept_for_good(client, officer, town_map):
    response = client.get(a_tile_url(client))
    assert response.status_code == 200
    assert response.headers["Content-Encoding"] == "gzip"
    assert response.mimetype == "application/vnd.mapbox-vector-tile"
    assert "immutable" in response.headers["Cache-Control"]
    assert b"roads" in gzip.decompress(response.get_data())


def test_a_tile_where_the_map_has_nothing_is_empty(client, officer, town_map):
    version = client.get("/map/area.json").get_json()["version"]
    assert client.get(f"/map/tiles/{version}/15/0/0.mvt").status_code == 204
    assert client.get(f"/map/tiles/{version}/3/1/1.mvt").status_code == 204


def test_tiles_and_the_map_page_need_a_sign_in(client, town_map):
    assert client.get("/map/").status_code in (302, 401)
    assert client.get("/map/area.json").status_code in (302, 401)
    assert client.get("/map/tiles/abc/15/1/1.mvt").status_code in (302, 401)


def test_the_offline_list_holds_every_tile_within_the_budget(app, client, officer, town_map):
    area = client.get("/map/area.json").get_json()
    assert area["all"] is True and len(area["tiles"]) >= 6
    assert [t[0] for t in area["tiles"]] == sorted(t[0] for t in area["tiles"])  # lowest zooms first
    assert any("protomaps-leaflet" in url for url in area["assets"])
    app.config["MAP_OFFLINE_MB"] = area["bytes"] / 2 / 1024 / 1024
    smaller = client.get("/map/area.json").get_json()
    assert smaller["all"] is False and 0 < len(smaller["tiles"]) < len(area["tiles"])


def test_the_map_page_draws_the_map_with_its_attribution(client, officer, helsinki_map):
    html = client.get("/map/?at=60.168545,24.945342").get_data(as_text=True)
    assert 'data-map' in html and "OpenStreetMap&lt;/a&gt; contributors" in html  # Leaflet shows it on the map
    assert "Mikonkatu 4" in html and "60.16855, 24.94534" in html
    assert "protomaps-leaflet" in html and "map.js" in html


def test_the_map_page_searches_addresses_in_place(client, officer, town_map):
    response = client.get("/map/?q=12+main", headers={"HX-Request": "true"})
    html = response.get_data(as_text=True)
    assert html.lstrip().startswith('<div id="address-results"') and "12 Main Street" in html
    assert "at=35.1496500%2C-90.0500000" in html or "at=35.1496500,-90.0500000" in html


def test_home_loads_no_map_code(client, officer, town_map):
    html = client.get("/").get_data(as_text=True)
    assert "leaflet" not in html and "map.js" not in html


def test_without_a_map_the_page_says_how_to_import_one(client, officer):
    html = client.get("/map/").get_data(as_text=True)
    assert "map import EXTRACT.osm.pbf" in html and "data-map" not in html


@pytest.mark.parametrize("query", ["at=91,0", "at=abc", "at=1", "q=" + "x" * 101, "q=%00"])
def test_bad_map_page_input_is_a_clear_400(client, officer, town_map, query):
    response = client.get(f"/map/?{query}")
    assert response.status_code == 400


def test_the_map_needs_no_loosening_of_the_content_security_policy(client, officer, town_map):
    csp = client.get("/map/").headers["Content-Security-Policy"]
    assert "blob:" not in csp and "unsafe" not in csp and "connect-src 'self'" in csp


def test_the_service_worker_keeps_map_tiles_apart_from_its_own_versions(client):
    sw = client.get("/sw.js").get_data(as_text=True)
    assert 'const MAP_CACHE_PREFIX = "fieldmap-";' in sw and '"/map/tiles/"' in sw


# ---- The specialist's request page ----


def test_the_specialist_sees_the_street_address_map_eta_and_navigate(client, officer, specialist, login, town_map):
    from tests.helpers import ask

    specialist("near", offset(-1500, 0, origin=(35.14965, -90.0500)))
    request_id = ask(client, position=(35.14965, -90.0500))
    html = login("near").get(f"/requests/{request_id}", headers={"User-Agent": IPHONE}).get_data(as_text=True)
    assert '<p class="place">12 Main Street</p>' in html
    assert '<p class="coords">35.14965, -90.05000' in html and "1.5 km N of you" in html
    assert "about 3 min (2.0 km by road, estimated)" in html
    assert 'class="button primary" href="https://maps.apple.com/?daddr=35.149650,-90.050000&amp;dirflg=d"' in html
    assert 'class="map map-small" data-map' in html and "data-you-lat" in html


def test_the_live_part_keeps_the_address_and_navigate(client, officer, specialist, login, town_map):
    from tests.helpers import ask

    specialist("near", offset(-1500))
    request_id = ask(client, position=(35.14965, -90.0500))
    html = login("near").get(f"/requests/{request_id}/live", headers={"HX-Request": "true", "User-Agent": ANDROID})
    html = html.get_data(as_text=True)
    assert "12 Main Street" in html and 'href="google.navigation:q=35.149650,-90.050000&amp;mode=d"' in html
    assert "data-map" not in html  # the map is outside the polled part, so a poll never redraws it


def test_the_requester_sees_no_map_of_their_own_scene(client, officer, specialist, town_map):
    from tests.helpers import ask

    specialist("near", offset(-1500))
    request_id = ask(client, position=(35.14965, -90.0500))
    assert "data-map" not in client.get(f"/requests/{request_id}").get_data(as_text=True)


# ---- The sea ----


@pytest.mark.parametrize("coast, water_at", [
    ([(0.5, 0.0), (0.5, 1.0)], 0.75),  # the coast runs north: the land on its left (west), the sea east
    ([(0.5, 1.0), (0.5, 0.0)], 0.25),  # and the other way round
    ([(0.5, 0.1), (0.5, 0.5), (0.55, 0.9)], 0.75),  # cut short of the extract's edge at both ends
])
def test_the_sea_is_on_the_right_of_the_coastline(coast, water_at):
    from fieldapp.maps.coast import sea_polygons

    [sea] = sea_polygons([coast], (0.0, 0.0, 1.0, 1.0))
    assert round(sea.centroid.x, 1) == round(water_at, 1)


def test_the_demo_map_draws_the_sea(built_helsinki_map):
    from fieldapp.maps.basemap import Basemap

    basemap = Basemap(built_helsinki_map / "basemap.pmtiles")
    z, x, y, _ = next(e for e in basemap.entries() if e[0] == 10)
    assert b"water" in gzip.decompress(basemap.tile(z, x, y))
