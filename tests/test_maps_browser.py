"""In a real Chromium (GPU off, as on a weak MDT): the map draws, keeps drawing without a network, and asks
no host but ours for anything."""
from urllib.parse import urlsplit

import pytest
from playwright.sync_api import expect

from fieldapp.identity.accounts import create_user
from fieldapp.store.db import connect
from fieldapp.duty.positions import record_position
from fieldapp.duty.status import go_on_duty
from fieldapp.requests.escalation import create_request
from tests.helpers import PASSWORD, sign_in, wait_for_offline_copy, wait_until

pytestmark = pytest.mark.browser
PHONE = {"width": 360, "height": 740}
# True once a tile canvas of the map shows more than a few colours: streets, buildings, water, not a blank.
MAP_DRAWN = """() => [...document.querySelectorAll('.map canvas')].some((canvas) => {
  if (!canvas.width || !canvas.height) return false;
  const data = canvas.getContext('2d').getImageData(0, 0, canvas.width, canvas.height).data;
  const colours = new Set();
  for (let i = 0; i < data.length; i += 4 * 61) colours.add((data[i] << 16) | (data[i + 1] << 8) | data[i + 2]);
  return colours.size > 8;
})"""
MAP_KEPT = """() => fetch('/map/area.json').then((r) => r.json()).then((area) =>
  caches.open('fieldmap-' + area.version).then((cache) => cache.keys())
    .then((keys) => keys.length >= area.tiles.length + area.assets.length))"""


@pytest.fixture
def phone(browser, live_server, helsinki_map):
    with live_server.app_context():
        create_user(connect(live_server.config["DATABASE"]), "ofc.lee", PASSWORD, "officer", "Ofc. Kim Lee")
    context = browser.new_context(viewport=PHONE, base_url=live_server.base_url, has_touch=True, is_mobile=True,
                                  device_scale_factor=2)
    page = context.new_page()
    yield page
    context.close()


def test_the_map_draws_with_the_network_off_after_one_visit(phone, live_server):
    page = phone
    sign_in(page, live_server.base_url, "ofc.lee")
    page.goto(live_server.base_url + "/map/")
    wait_until(page, MAP_DRAWN)
    expect(page.locator(".leaflet-control-attribution")).to_contain_text("© OpenStreetMap contributors")
    wait_until(page, MAP_KEPT, timeout_s=30)
    wait_for_offline_copy(page, "/map/")

    page.context.set_offline(True)
    live_server.network.down = True
    page.goto(live_server.base_url + "/map/")
    wait_until(page, MAP_DRAWN)
    # Zoomed in, the map draws from the kept tiles too.
    page.locator(".leaflet-control-zoom-in").click()
    page.wait_for_timeout(300)
    wait_until(page, MAP_DRAWN)


def test_a_map_page_asks_no_host_but_the_apps(phone, live_server):
    page = phone
    asked = []
    page.context.on("request", lambda request: asked.append(request.url))
    sign_in(page, live_server.base_url, "ofc.lee")
    page.goto(live_server.base_url + "/map/?at=60.168545,24.945342")
    expect(page.locator("p.place")).to_have_text("Mikonkatu 4")
    wait_until(page, MAP_DRAWN)
    page.locator(".leaflet-control-zoom-out").click()
    page.wait_for_timeout(500)
    wait_until(page, MAP_DRAWN)
    ours = urlsplit(live_server.base_url).netloc
    others = [url for url in asked if urlsplit(url).scheme in ("http", "https") and urlsplit(url).netloc != ours]
    assert asked and others == []


def test_the_map_draws_at_night_too(phone, live_server):
    page = phone
    page.emulate_media(color_scheme="dark")
    sign_in(page, live_server.base_url, "ofc.lee")
    page.goto(live_server.base_url + "/map/?at=60.168545,24.945342")
    wait_until(page, MAP_DRAWN)
    # The land is dark: the middle of a tile is not the day map's cream.
    dark = page.evaluate("""() => { const c = document.querySelector('.map canvas');
      const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data; let sum = 0;
      for (let i = 0; i < d.length; i += 4) sum += d[i] + d[i + 1] + d[i + 2]; return sum / (d.length / 4) / 3; }""")
    assert dark < 100


def test_finding_an_address_shows_it_on_the_map(phone, live_server):
    page = phone
    sign_in(page, live_server.base_url, "ofc.lee")
    page.goto(live_server.base_url + "/map/")
    page.get_by_label("Find an address").fill("mannerheimintie 14")
    page.get_by_role("link", name="Mannerheimintie 14", exact=True).click()
    expect(page.locator("p.place")).to_have_text("Mannerheimintie 14")
    wait_until(page, MAP_DRAWN)


@pytest.mark.parametrize("theme", ["light", "dark"])
def test_the_map_page_has_no_serious_accessibility_violations(phone, live_server, theme):
    from axe_playwright_python.sync_playwright import Axe

    page = phone
    page.emulate_media(color_scheme=theme)
    sign_in(page, live_server.base_url, "ofc.lee")
    page.goto(live_server.base_url + "/map/?at=60.168545,24.945342")
    wait_until(page, MAP_DRAWN)
    results = Axe().run(page)
    serious = [v for v in results.response["violations"] if v["impact"] in ("serious", "critical")]
    assert not serious, [(v["id"], [n["target"] for n in v["nodes"]]) for v in serious]


IPHONE = ("Mozilla/5.0 (iPhone; CPU iPhone OS 18_1 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) "
          "Version/18.1 Mobile/15E148 Safari/604.1")


def test_the_specialist_sees_the_scene_and_navigate_on_the_first_screen(browser, live_server, helsinki_map):
    with live_server.app_context():
        db = connect(live_server.config["DATABASE"])
        officer = create_user(db, "ofc.lee", PASSWORD, "officer", "Ofc. Kim Lee")
        cit = create_user(db, "cit.reyes", PASSWORD, "cit", "Ofc. Jordan Reyes (CIT)")
        go_on_duty(db, cit)
        record_position(db, cit, 60.1740, 24.9480, 10.0, "device")
        request_id, _ = create_request(db, officer, lat=60.168545, lon=24.945342, accuracy=12)
    context = browser.new_context(viewport=PHONE, base_url=live_server.base_url, user_agent=IPHONE, has_touch=True,
                                  is_mobile=True)
    page = context.new_page()
    sign_in(page, live_server.base_url, "cit.reyes")
    page.goto(f"{live_server.base_url}/requests/{request_id}")
    expect(page.locator(".scene .place").first).to_have_text("Mikonkatu 4")
    wait_until(page, MAP_DRAWN)
    navigate = page.get_by_role("link", name="Navigate")
    expect(navigate).to_have_attribute("href", "https://maps.apple.com/?daddr=60.168545,24.945342&dirflg=d")
    box = navigate.bounding_box()
    assert box["y"] + box["height"] <= PHONE["height"], "Navigate must be on the first screen of a phone"
    context.close()
