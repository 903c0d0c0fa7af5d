"""The worker: leases, retries, dead subscriptions, escalations that survive a restart."""
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import requests

import fieldapp
from fieldapp import create_app
from fieldapp.store.db import connect, one
from fieldapp.ops.worker import Worker
from tests.helpers import PASSWORD, SCENE, ask, events, offset


def outbox(db):
    return list(db.query("SELECT * FROM outbox ORDER BY id"))


def attempts(db):
    return [r["status"] for r in db.query("SELECT status FROM push_attempts ORDER BY id")]


def test_delivered_push_is_marked_sent_and_recorded(client, officer, specialist, worker, push_service, db):
    specialist("near", offset(1000))
    ask(client)
    assert worker.run_once() == 1
    [row] = outbox(db)
    assert row["state"] == "sent" and row["last_status"] == 201 and row["lease_owner"] is None
    assert attempts(db) == [201]
    assert worker.run_once() == 0


@pytest.mark.parametrize("status", [404, 410])
def test_gone_subscription_is_deleted(client, officer, specialist, worker, push_service, db, status):
    specialist("near", offset(1000))
    ask(client)
    push_service.answer(status)
    worker.run_once()
    assert outbox(db)[0]["state"] == "gone"
    assert one(db, "SELECT COUNT(*) AS n FROM push_subscriptions")["n"] == 0


def test_429_waits_for_retry_after_then_delivers(client, officer, specialist, worker, push_service, db, clock):
    specialist("near", offset(1000))
    ask(client)
    push_service.answer(429, retry_after=30)
    worker.run_once()
    row = outbox(db)[0]
    assert row["state"] == "pending" and row["attempts"] == 1
    assert row["next_attempt_at"] == pytest.approx(clock() + 30)
    clock.advance(29)
    assert worker.run_once() == 0
    clock.advance(2)
    worker.run_once()
    assert outbox(db)[0]["state"] == "sent"
    assert attempts(db) == [429, 201]


def test_server_errors_back_off_and_give_up_after_six_attempts(client, officer, specialist, worker, push_service, db, clock, app):
    app.config["PUSH_TTL"] = 10_000  # keep the alert fresh long enough to see every retry
    specialist("near", offset(1000))
    ask(client)
    push_service.answer(*[500] * 6)
    delays = []
    for _ in range(6):
        worker.run_once()
        row = outbox(db)[0]
        delays.append(round(row["next_attempt_at"] - clock()))
        clock.advance(61)
    assert outbox(db)[0]["state"] == "failed"
    assert attempts(db) == [500] * 6
    assert delays[:5] == [2, 4, 8, 16, 32]


def test_unreachable_push_service_is_retried(client, officer, specialist, worker, push_service, db):
    specialist("near", offset(1000))
    ask(client)
    push_service.close()
    worker.run_once()
    row = outbox(db)[0]
    assert row["state"] == "pending" and row["last_status"] is None
    assert "ConnectionError" in one(db, "SELECT error FROM push_attempts")["error"]


def test_slow_push_service_times_out_and_is_retried(client, officer, specialist, worker, push_service, db, app):
    app.config["PUSH_TIMEOUT"] = 0.2
    specialist("near", offset(1000))
    ask(client)
    push_service.delay_s = 1.0
    worker.run_once()
    assert outbox(db)[0]["state"] == "pending"
    assert "Timeout" in one(db, "SELECT error FROM push_attempts")["error"]


def test_alert_older_than_its_ttl_is_not_sent(client, officer, specialist, worker, push_service, db, clock):
    specialist("near", offset(1000))
    ask(client)
    clock.advance(301)
    worker.run_once()
    assert outbox(db)[0]["state"] == "expired"
    assert push_service.requests_seen == 0


def test_two_workers_never_lease_the_same_row(app, client, officer, specialist, db):
    for n in range(3):
        specialist(f"s{n}", offset(1000 + n), devices=4)
    ask(client)
    first, second = Worker(app, "one"), Worker(app, "two")
    with app.app_context():
        a = first.lease(6)
        b = second.lease(50)
    assert len(a) == 6 and len(b) == 6
    assert not {r["id"] for r in a} & {r["id"] for r in b}


def test_rows_held_by_a_killed_worker_are_sent_after_the_lease(app, client, officer, specialist, worker, push_service, db, clock):
    specialist("near", offset(1000))
    ask(client)
    with app.app_context():
        Worker(app, "killed").lease(10)  # leased, then the process died
    assert worker.run_once() == 0
    clock.advance(31)
    assert worker.run_once() == 1
    assert push_service.wait_for(1)[0].payload["kind"] == "alert"


def test_escalation_survives_an_app_restart(app_config, client, officer, specialist, db, clock):
    specialist("near", offset(1000))
    specialist("second", offset(5000))
    request_id = ask(client, client_id="restart-test-0001")
    # A new app on the same database, as after a crash; its worker finds the deadline.
    restarted = create_app(dict(app_config))
    clock.advance(61)
    Worker(restarted).run_once()
    assert "escalated" in events(db, request_id)


def _serve(env, port):
    return subprocess.Popen(
        [str(Path(sys.executable).parent / "flask"), "--app", "fieldapp", "run", "--port", str(port), "--no-reload"],
        env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True,
    )


def _wait_up(url, timeout=20):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            return requests.get(url, timeout=1)
        except requests.ConnectionError:
            time.sleep(0.1)
    raise AssertionError(f"{url} never came up")


def test_kill_9_during_a_pending_escalation_and_it_still_fires(tmp_path, make_user, specialist, app_config):
    """The real thing: a served app killed with SIGKILL, restarted, and the deadline kept."""
    make_user("ofc.kill", "officer")
    specialist("near", offset(1000))
    specialist("second", offset(4000))
    env = {
        "PATH": os.environ["PATH"], "FIELDAPP_INSTANCE_PATH": app_config["INSTANCE_PATH"],
        "FIELDAPP_DATABASE": app_config["DATABASE"], "FIELDAPP_WORKER_IN_PROCESS": "true",
        "FIELDAPP_ESCALATE_AFTER_S": "3", "FIELDAPP_PUSH_INSECURE_HOSTS": '["127.0.0.1"]', "FIELDAPP_MFA_REQUIRED_ROLES": "[]",
    }
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    base = f"http://127.0.0.1:{port}"
    server = _serve(env, port)
    try:
        _wait_up(base + "/login")
        session = requests.Session()
        token = re.search(r'name="csrf_token" value="([^"]+)"', session.get(base + "/login").text).group(1)
        session.post(base + "/login", data={"username": "ofc.kill", "password": PASSWORD, "csrf_token": token})
        token = re.search(r'name="csrf_token" value="([^"]+)"', session.get(base + "/").text).group(1)  # a new session's
        created = session.post(
            base + "/requests", data={"lat": SCENE[0], "lon": SCENE[1], "csrf_token": token}, allow_redirects=False
        )
        assert created.status_code == 303
        request_id = int(created.headers["Location"].rsplit("/", 1)[1])
    finally:
        os.killpg(server.pid, signal.SIGKILL)
        server.wait()
    db = connect(app_config["DATABASE"])
    assert "escalated" not in events(db, request_id)
    restarted = _serve(env, port)
    try:
        deadline = time.monotonic() + 20
        while "escalated" not in events(db, request_id):
            assert time.monotonic() < deadline, events(db, request_id)
            time.sleep(0.2)
    finally:
        os.killpg(restarted.pid, signal.SIGKILL)
        restarted.wait()


def test_worker_command_does_one_pass(app, client, officer, specialist, push_service):
    specialist("near", offset(1000))
    ask(client)
    result = app.test_cli_runner().invoke(args=["worker", "--once"])
    assert result.exit_code == 0 and "1 item(s) done." in result.output
    assert len(push_service.wait_for(1)) == 1


def supervisor_with_device(make_user, login, push_service):
    make_user("sgt.diaz", "supervisor")
    login("sgt.diaz").post("/push/subscriptions", json=push_service.new_subscription())


def test_when_every_alert_fails_the_supervisors_are_alerted(client, officer, specialist, worker, push_service, db, make_user, login):
    supervisor_with_device(make_user, login, push_service)
    specialist("near", offset(1000))
    request_id = ask(client)
    push_service.answer(410)
    worker.run_once()  # the specialist's push is gone
    worker.run_once()  # the supervisors' alert goes out
    assert "unreachable" in events(db, request_id)
    [delivery] = push_service.wait_for(1)
    assert delivery.payload["kind"] == "unreachable" and delivery.payload["body"] == "No alerted CIT officer could be reached."


def test_alerted_specialists_with_no_device_alert_the_supervisors_at_once(client, officer, specialist, db, make_user, login, push_service):
    supervisor_with_device(make_user, login, push_service)
    specialist("nodevice", offset(1000), devices=0)
    request_id = ask(client)
    assert events(db, request_id)[-2:] == ["unreachable", "supervisors_alerted"]


def test_board_shows_failed_alerts(client, officer, specialist, worker, push_service, make_user, login):
    specialist("near", offset(1000))
    ask(client)
    push_service.answer(410)
    worker.run_once()
    make_user("sgt.diaz", "supervisor")
    assert "1 alert(s) failed" in login("sgt.diaz").get("/board").get_data(as_text=True)


def test_escalation_also_goes_out_on_the_backup_channel(app, client, officer, specialist, worker, clock, json_receiver):
    app.config["APPRISE_URLS"] = [json_receiver.url]
    specialist("near", offset(1000))
    request_id = ask(client, note="Robin Invented", location_text="9 Example Court")
    clock.advance(61)
    worker.run_once()
    [message] = json_receiver.received
    assert message["title"] == f"CIT request #{request_id} not accepted"
    assert "Robin" not in str(message) and "Example Court" not in str(message)


def test_a_broken_backup_channel_never_stops_the_worker(app, client, officer, specialist, worker, clock, db):
    app.config["APPRISE_URLS"] = ["json://127.0.0.1:9/nothing-listens-here"]
    specialist("near", offset(1000))
    request_id = ask(client)
    clock.advance(61)
    worker.run_once()
    assert "escalated" in events(db, request_id)


# A subscription registered before the allow-list read URLs as requests does:
# pywebpush cannot find its audience and raises VapidException before sending.
CRAFTED_ENDPOINT = "https://127.0.0.1:5195\\@fcm.googleapis.com/x"


def endpoint_of(db, user_id):
    return one(db, "SELECT endpoint FROM push_subscriptions WHERE user_id = ?", [user_id])["endpoint"]


def give_crafted_endpoint(db, user_id):
    """Forced: save_subscription refuses such an endpoint today; a database from before may still hold one."""
    db.execute("UPDATE push_subscriptions SET endpoint = ? WHERE user_id = ?", [CRAFTED_ENDPOINT, user_id])


def outbox_state_of(db, user_id):
    return one(db, "SELECT state FROM outbox WHERE user_id = ?", [user_id])["state"]


def test_one_batch_with_a_raising_a_slow_and_a_gone_device_still_alerts_the_good_ones_once(
    app, client, officer, specialist, worker, push_service, db, clock
):
    app.config.update(ALERT_K=5, PUSH_TIMEOUT=0.3)
    good = [specialist("good.one", offset(1000)), specialist("good.two", offset(1200))]
    raising, slow, gone = specialist("raising", offset(1400)), specialist("slow", offset(1600)), specialist("gone", offset(1800))
    good_endpoints = [endpoint_of(db, u) for u in good]
    give_crafted_endpoint(db, raising)
    push_service.stall(endpoint_of(db, slow), 2.0)
    push_service.answer_for(endpoint_of(db, gone), 410)
    ask(client)

    assert worker.run_once() == 5  # one batch, and it finished
    assert [outbox_state_of(db, u) for u in good] == ["sent", "sent"]
    assert outbox_state_of(db, raising) == "failed"
    assert outbox_state_of(db, slow) == "pending"  # a timeout is retried
    assert outbox_state_of(db, gone) == "gone"
    errors = {r["user_id"]: (r["status"], r["error"]) for r in db.query(
        "SELECT o.user_id, a.status, a.error FROM push_attempts a JOIN outbox o ON o.id = a.outbox_id")}
    assert errors[raising][0] is None and "VapidException" in errors[raising][1]
    assert errors[slow][0] is None and "Timeout" in errors[slow][1]
    assert errors[gone][0] == 410

    clock.advance(3)  # past the slow device's back-off
    worker.run_once()
    assert [push_service.delivered_to(e) for e in good_endpoints] == [1, 1]
    assert one(db, "SELECT COUNT(*) AS n FROM push_attempts a JOIN outbox o ON o.id = a.outbox_id WHERE o.user_id = ?", [slow])["n"] == 2


def test_a_device_that_keeps_failing_is_retired_and_its_owner_told(app, specialist, worker, make_user, login, db):
    app.config["PUSH_RETIRE_AFTER"] = 3
    owner = specialist("broken", offset(1000))
    give_crafted_endpoint(db, owner)
    for n in range(3):
        make_user(f"ofc.n{n}", "officer")
        ask(login(f"ofc.n{n}"))
        worker.run_once()
    assert one(db, "SELECT COUNT(*) AS n FROM push_subscriptions WHERE user_id = ?", [owner])["n"] == 0
    duty_page = login("broken").get("/duty").get_data(as_text=True)
    assert "One of your devices stopped receiving alerts and was removed." in duty_page


def test_a_retired_device_notice_lasts_until_the_owner_subscribes_again(specialist, worker, client, officer, push_service, login, db):
    owner = specialist("ended", offset(1000))
    push_service.answer(410)
    ask(client)
    worker.run_once()
    me = login("ended")
    assert "stopped receiving alerts" in me.get("/duty").get_data(as_text=True)
    assert "stopped receiving alerts" in me.get("/duty").get_data(as_text=True)  # not a flash: still there
    assert me.post("/push/subscriptions", json=push_service.new_subscription()).status_code == 201
    assert "stopped receiving alerts" not in me.get("/duty").get_data(as_text=True)
    assert one(db, "SELECT COUNT(*) AS n FROM push_subscriptions WHERE user_id = ?", [owner])["n"] == 1


def test_an_outage_of_the_push_service_retires_no_device(app, client, officer, specialist, worker, push_service, db, clock):
    app.config["PUSH_TTL"] = 10_000
    specialist("near", offset(1000))
    ask(client)
    push_service.answer(*[500] * 6)
    for _ in range(6):
        worker.run_once()
        clock.advance(61)
    assert outbox(db)[0]["state"] == "failed"
    assert one(db, "SELECT failures FROM push_subscriptions")["failures"] == 0


def test_request_page_counts_only_the_officers_the_alert_could_reach(client, officer, specialist, worker, push_service, db):
    specialist("one", offset(1000))
    specialist("two", offset(2000))
    give_crafted_endpoint(db, specialist("crafted", offset(500)))
    request_id = ask(client)
    worker.run_once()
    html = client.get(f"/requests/{request_id}").get_data(as_text=True)
    assert "2 CIT officers alerted; the nearest is 1.0 km away. The alert could not reach 1 CIT officer." in html
    assert "3 CIT officers alerted" not in html


def test_board_shows_an_alert_that_raised_as_failed(client, officer, specialist, worker, push_service, make_user, login, db):
    give_crafted_endpoint(db, specialist("crafted", offset(1000)))
    ask(client)
    worker.run_once()
    make_user("sgt.diaz", "supervisor")
    assert "1 alert(s) failed" in login("sgt.diaz").get("/board").get_data(as_text=True)


# SQL that writes a table (INSERT [OR …] INTO, REPLACE INTO, UPDATE [OR …], DELETE FROM), or sqlite-utils' db["t"].insert().
OUTBOX_WRITE = re.compile(
    r"\b(?:INSERT(?:\s+OR\s+\w+)?\s+INTO|REPLACE\s+INTO|UPDATE(?:\s+OR\s+\w+)?|DELETE\s+FROM)\s+[\"'`]?(?:outbox|push_attempts)\b"
    r"|\[\s*[\"'](?:outbox|push_attempts)[\"']\s*\]\s*\.\s*(?:insert|upsert|update|delete)",
    re.IGNORECASE,
)


def test_nothing_but_the_outbox_module_writes_the_outbox_and_its_attempts():
    package = Path(fieldapp.__file__).parent
    writers = {
        path.relative_to(package).as_posix() for path in package.rglob("*.py")
        if path.name != "migrations.py" and OUTBOX_WRITE.search(path.read_text())  # migrations may reshape any table
    }
    assert writers == {"delivery/outbox.py"}
