"""The on-scene check-in timer (issue 30, part 1): a CIT officer on scene checks in, or the supervisors hear of it."""
import json

import pytest

from fieldapp.delivery.webhook_endpoints import add_endpoint
from fieldapp.ops.worker import Worker
from fieldapp.safety.timer import timer_of
from fieldapp.store.db import one
from tests.helpers import ask, events, offset


@pytest.fixture
def on_scene(client, officer, specialist, login, worker):
    """A request whose CIT officer ("near") just marked On scene: (request id, the officer's client)."""
    specialist("near", offset(1000))
    request_id = ask(client)
    cit = login("near")
    assert cit.post(f"/requests/{request_id}/accept").status_code == 303
    assert cit.post(f"/requests/{request_id}/arrive").status_code == 303
    worker.run_once()  # the alert and the requester's news go out
    return request_id, cit


@pytest.fixture
def supervisor_device(make_user, login, push_service):
    """A supervisor on duty with a phone subscribed: its endpoint."""
    make_user("sgt.diaz", "supervisor", display_name="Sgt. Ana Diaz")
    sgt = login("sgt.diaz")
    assert sgt.post("/duty/on").status_code in (200, 204, 303)
    sub = push_service.new_subscription()
    assert sgt.post("/push/subscriptions", json=sub).status_code in (200, 201, 204)
    return sub["endpoint"]


def pushes(push_service, kind="check_in"):
    """The check-in pushes the stand-in service received and decrypted."""
    return [d for d in push_service.deliveries if d.payload.get("kind") == kind]


def test_on_scene_starts_the_agency_default_countdown(db, on_scene, clock):
    request_id, cit = on_scene
    timer = timer_of(db, request_id)
    assert timer["deadline_at"] == pytest.approx(clock() + 600)
    html = cit.get(f"/requests/{request_id}").get_data(as_text=True)
    assert "I'm OK" in html and "Next check-in in" in html and "10:00" in html


def test_the_default_interval_may_be_a_fraction_of_a_minute(app, client, officer, specialist, login, db, clock):
    app.config["CHECK_IN_MINUTES"] = 0.5
    specialist("near", offset(1000))
    request_id = ask(client)
    cit = login("near")
    cit.post(f"/requests/{request_id}/accept")
    cit.post(f"/requests/{request_id}/arrive")
    timer = timer_of(db, request_id)
    assert timer["deadline_at"] - clock() == 30
    assert timer["warn_at"] - clock() == 15  # under two minutes: the heads-up at half the interval


def test_the_officer_is_warned_a_minute_before_the_deadline(db, on_scene, clock, worker, push_service):
    request_id, _ = on_scene
    clock.advance(538)
    worker.run_once()
    assert not pushes(push_service)
    clock.advance(2)
    worker.run_once()
    [warning] = pushes(push_service)
    assert warning.payload["news"] == "warn" and warning.payload["request_id"] == request_id
    assert "check_in_reminded" in events(db, request_id)


def test_im_ok_restarts_the_deadline(db, on_scene, clock, worker):
    request_id, cit = on_scene
    clock.advance(500)
    assert cit.post(f"/requests/{request_id}/check-in").status_code == 303
    assert timer_of(db, request_id)["deadline_at"] == pytest.approx(clock() + 600)
    clock.advance(200)  # past the first deadline, not the new one
    worker.run_once()
    assert "check_in_missed" not in events(db, request_id)
    assert "checked_in" in events(db, request_id)


@pytest.mark.parametrize("minutes", [5, 20, 30])
def test_the_officer_picks_the_interval(db, on_scene, clock, minutes):
    request_id, cit = on_scene
    assert cit.post(f"/requests/{request_id}/check-in", data={"minutes": minutes}).status_code == 303
    assert timer_of(db, request_id)["deadline_at"] == pytest.approx(clock() + minutes * 60)


@pytest.mark.parametrize("minutes", ["7", "0", "-5", "ten", "1e9"])
def test_a_bad_interval_is_refused(db, on_scene, minutes):
    request_id, cit = on_scene
    before = timer_of(db, request_id)
    assert cit.post(f"/requests/{request_id}/check-in", data={"minutes": minutes}).status_code == 400
    assert timer_of(db, request_id) == before


def test_a_missed_check_in_reaches_the_board_and_supervisors_devices(app, db, on_scene, clock, worker, push_service,
                                                                     supervisor_device, login, webhook_receiver):
    app.config["WEBHOOK_INSECURE_HOSTS"] = ["127.0.0.1"]
    with app.app_context():
        add_endpoint(db, webhook_receiver.url, ["check_in_missed"])
    request_id, _ = on_scene
    clock.advance(630)
    worker.run_once()
    missed = [d for d in pushes(push_service) if d.payload["news"] == "missed"]
    assert supervisor_device in {d.endpoint for d in missed}
    text = json.dumps([d.payload for d in missed])
    assert "Ofc." not in text and "Kim Lee" not in text  # no names
    board = login("sgt.diaz").get("/board").get_data(as_text=True)
    assert "Check-in missed" in board and "0:30</time> ago" in board
    # Red at the top: before the open requests' own rows.
    assert board.index("missed-check-in") < board.index(f"state-on_scene")
    [(headers, body, _)] = webhook_receiver.wait_for(1)
    sent = json.loads(body)
    assert sent["type"] == "responder.check_in_missed"
    assert sent["data"] == {"id": request_id, "cad_incident": None}
    assert "check_in_missed" in events(db, request_id)
    assert one(db, "SELECT action FROM audit_log WHERE action = 'check_in_missed'")


def test_the_requesting_officer_hears_of_a_missed_check_in(db, on_scene, clock, worker, push_service, app, officer):
    from fieldapp.duty.devices import save_subscription

    request_id, _ = on_scene
    sub = push_service.new_subscription()
    with app.app_context():
        save_subscription(db, officer, sub["endpoint"], sub["keys"]["p256dh"], sub["keys"]["auth"])
    clock.advance(601)
    worker.run_once()
    assert [d.payload["news"] for d in pushes(push_service) if d.endpoint == sub["endpoint"]] == ["missed"]


def test_the_alarm_repeats_until_a_supervisor_makes_contact(db, on_scene, clock, worker, supervisor_device, login):
    request_id, _ = on_scene
    clock.advance(601)
    worker.run_once()
    clock.advance(299)
    worker.run_once()
    assert events(db, request_id).count("check_in_missed") == 1
    clock.advance(2)
    worker.run_once()
    assert events(db, request_id).count("check_in_missed") == 2
    sgt = login("sgt.diaz")
    assert sgt.post(f"/requests/{request_id}/contact-made", data={"note": ""}).status_code == 400
    assert sgt.post(f"/requests/{request_id}/contact-made", data={"note": "Radio: answered, all OK"}).status_code == 303
    assert "Check-in missed" not in sgt.get("/board").get_data(as_text=True)
    clock.advance(301)
    worker.run_once()
    assert events(db, request_id).count("check_in_missed") == 2
    assert events(db, request_id)[-1] != "check_in_missed"
    assert "contact_made" in events(db, request_id)


def test_purge_forgets_the_contact_note(app, db, on_scene, clock, worker, supervisor_device, login):
    from fieldapp.ops.records import purge_closed_requests

    request_id, _ = on_scene
    clock.advance(601)
    worker.run_once()
    sgt = login("sgt.diaz")
    sgt.post(f"/requests/{request_id}/contact-made", data={"note": "Radio: answered"})
    sgt.post(f"/requests/{request_id}/resolve", data={"disposition": "resolved_on_scene"})
    assert timer_of(db, request_id)["contact_note"] == "Radio: answered"
    clock.advance(2 * 86400)
    with app.app_context():
        purge_closed_requests(db, 86400)
    assert timer_of(db, request_id)["contact_note"] is None


def test_a_late_check_in_ends_the_alarm(db, on_scene, clock, worker):
    request_id, cit = on_scene
    clock.advance(620)
    worker.run_once()
    assert cit.post(f"/requests/{request_id}/check-in").status_code == 303
    assert "checked_in_late" in events(db, request_id)
    assert timer_of(db, request_id)["missed_at"] is None
    clock.advance(300)
    worker.run_once()
    assert events(db, request_id).count("check_in_missed") == 1


@pytest.mark.parametrize("action", ["stabilise", "resolve", "cancel"])
def test_resolve_stops_the_timer(db, on_scene, clock, worker, login, supervisor_device, action):
    request_id, cit = on_scene
    who = login("sgt.diaz") if action == "cancel" else cit
    form = {"disposition": "resolved_on_scene"} if action == "resolve" else {"reason": "other"}
    response = who.post(f"/requests/{request_id}/{action}", data=form)
    assert response.status_code == 303, response.get_data(as_text=True)[:300]
    assert timer_of(db, request_id)["stopped_at"] is not None
    clock.advance(3600)
    worker.run_once()
    assert "check_in_missed" not in events(db, request_id)


def test_check_in_after_resolution_is_a_conflict(db, on_scene, login, supervisor_device):
    request_id, cit = on_scene
    login("sgt.diaz").post(f"/requests/{request_id}/resolve", data={"disposition": "resolved_on_scene"})
    response = cit.post(f"/requests/{request_id}/check-in")
    assert response.status_code == 409
    assert "already resolved" in response.get_data(as_text=True)


def test_a_stranger_cannot_check_in(db, on_scene, client, specialist, login):
    request_id, _ = on_scene
    before = timer_of(db, request_id)
    specialist("other", offset(5000))
    assert login("other").post(f"/requests/{request_id}/check-in").status_code == 403
    assert client.post(f"/requests/{request_id}/check-in").status_code == 403  # the requesting officer
    assert timer_of(db, request_id) == before


def test_only_a_supervisor_records_contact(db, on_scene, clock, worker):
    request_id, cit = on_scene
    clock.advance(601)
    worker.run_once()
    assert cit.post(f"/requests/{request_id}/contact-made", data={"note": "me"}).status_code == 403
    assert timer_of(db, request_id)["missed_at"] is not None


def test_the_deadline_survives_a_worker_restart(app, db, on_scene, clock, worker):
    request_id, _ = on_scene
    clock.advance(300)
    worker.run_once()
    del worker  # the worker dies between the start and the deadline; nothing of the timer was in it
    clock.advance(301)
    Worker(app, name="restarted").run_once()
    assert "check_in_missed" in events(db, request_id)


def test_two_workers_raise_one_alarm(app, db, on_scene, clock):
    request_id, _ = on_scene
    clock.advance(601)
    Worker(app, name="a").run_once()
    Worker(app, name="b").run_once()
    assert events(db, request_id).count("check_in_missed") == 1


def test_a_worker_killed_with_sigkill_still_raises_the_alarm_after_restart(app_config, db, on_scene):
    """The real thing: a `flask worker` process killed with SIGKILL between the start and the deadline."""
    import os
    import signal
    import subprocess
    import sys
    import time
    from pathlib import Path

    request_id, _ = on_scene
    # The worker processes keep real time: a deadline 3 s from now, as a short interval leaves it.
    db.execute("UPDATE check_in_timers SET deadline_at = ?, warn_at = NULL WHERE request_id = ?", [time.time() + 3, request_id])
    db.conn.commit()
    env = {"PATH": os.environ["PATH"], "FIELDAPP_INSTANCE_PATH": app_config["INSTANCE_PATH"],
           "FIELDAPP_DATABASE": app_config["DATABASE"], "FIELDAPP_PUSH_INSECURE_HOSTS": '["127.0.0.1"]',
           **({"PYTHONPATH": os.environ["PYTHONPATH"]} if "PYTHONPATH" in os.environ else {})}

    def start_worker():
        return subprocess.Popen([str(Path(sys.executable).parent / "flask"), "--app", "fieldapp", "worker"], env=env,
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)

    first = start_worker()
    time.sleep(1)
    os.killpg(first.pid, signal.SIGKILL)
    first.wait()
    assert "check_in_missed" not in events(db, request_id)
    restarted = start_worker()
    try:
        deadline = time.monotonic() + 20
        while "check_in_missed" not in events(db, request_id):
            assert time.monotonic() < deadline, events(db, request_id)
            time.sleep(0.2)
    finally:
        os.killpg(restarted.pid, signal.SIGKILL)
        restarted.wait()


def test_the_api_document_describes_the_check_in_webhook(client):
    doc = client.get("/api/v1/openapi.json").json
    hook = doc["webhooks"]["responderCheckInMissed"]["post"]["requestBody"]["content"]["application/json"]["schema"]
    schema = doc["components"]["schemas"][hook["$ref"].rsplit("/", 1)[1]]
    assert schema["properties"]["type"]["enum"] == ["responder.check_in_missed"]
    assert set(schema["properties"]["data"]["properties"]) == {"id", "cad_incident"}
    assert "responder.check_in_missed" not in doc["components"]["schemas"]["WebhookEvent"]["properties"]["type"]["enum"]


def test_the_open_board_and_request_page_change_when_a_check_in_is_missed(on_scene, clock, worker, supervisor_device,
                                                                           login):
    request_id, cit = on_scene
    sgt = login("sgt.diaz")
    poll = {"HX-Request": "true"}
    board = sgt.get("/board/live", headers=poll).headers["ETag"]
    page = cit.get(f"/requests/{request_id}/live", headers=poll).headers["ETag"]
    clock.advance(601)
    worker.run_once()
    changed = sgt.get("/board/live", headers=dict(poll, **{"If-None-Match": board}))
    assert changed.status_code == 200 and "Check-in missed" in changed.get_data(as_text=True)
    mine = cit.get(f"/requests/{request_id}/live", headers=dict(poll, **{"If-None-Match": page}))
    assert mine.status_code == 200 and "Check-in missed" in mine.get_data(as_text=True)
    assert "I'm OK" in mine.get_data(as_text=True)  # the officer can still check in, late
    supervisors = sgt.get(f"/requests/{request_id}").get_data(as_text=True)
    assert "Contact made" in supervisors
