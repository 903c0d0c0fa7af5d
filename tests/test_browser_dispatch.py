"""End to end in Chromium: a dispatcher asks for CIT from a 911 call, a specialist's device gets the push,
the specialist accepts on their phone, and the CAD's webhook hears `accepted`, signed."""
import pytest
from playwright.sync_api import expect
from standardwebhooks.webhooks import Webhook

from fieldapp.store.db import connect
from fieldapp.delivery.webhook_endpoints import add_endpoint
from tests.helpers import SCENE, add_specialist, add_user, offset, sign_in

pytestmark = pytest.mark.browser


@pytest.fixture
def app_config(app_config):
    return dict(app_config, WEBHOOK_INSECURE_HOSTS=("127.0.0.1",))


def test_a_dispatched_call_reaches_a_specialist_and_the_cad_hears_accepted(browser, live_server, push_service,
                                                                           webhook_receiver):
    base = live_server.base_url
    db = connect(live_server.config["DATABASE"])
    add_user(live_server, db, "disp.ray", "dispatcher", display_name="Disp. Sam Ray")
    add_specialist(live_server, db, push_service, "reyes", offset(1200))
    with live_server.app_context():
        _, secret = add_endpoint(db, webhook_receiver.url, ["requested", "accepted"])
    db.conn.commit()

    dispatch = browser.new_context().new_page()
    sign_in(dispatch, base, "disp.ray", lands_on="/dispatch")
    expect(dispatch.get_by_role("heading", name="Request CIT for a call")).to_be_visible()
    dispatch.get_by_label("CAD incident number").fill("2026-118842")
    dispatch.get_by_label("Latitude").fill(str(SCENE[0]))
    dispatch.get_by_label("Longitude").fill(str(SCENE[1]))
    dispatch.get_by_label("Medical").check()
    dispatch.get_by_role("button", name="Request CIT officer").click()
    expect(dispatch.locator(".cad")).to_have_text("CAD incident 2026-118842")
    request_id = int(dispatch.url.rsplit("/", 1)[1])

    [push] = push_service.wait_for(1)
    assert push.payload["request_id"] == request_id

    phone = browser.new_context(viewport={"width": 360, "height": 640}).new_page()
    sign_in(phone, base, "reyes")
    phone.goto(base + push.payload["url"])
    phone.get_by_role("button", name="Accept").click()
    expect(dispatch.locator("#live")).to_contain_text("CIT officer en route")

    deliveries = webhook_receiver.wait_for(2)
    events = [Webhook(secret).verify(body, headers) for headers, body, _ in deliveries]
    assert [e["type"] for e in events] == ["request.requested", "request.accepted"]
    assert events[1]["data"]["cad_incident"] == "2026-118842"
    assert events[1]["data"]["assignee_unit"] == "CIT-reyes"
