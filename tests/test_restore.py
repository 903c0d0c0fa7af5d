"""After a restore, what the old service may already have sent is not sent again; what was not yet due still is."""
import datetime as dt

import pytest

from fieldapp.store.db import one
from fieldapp.ops.restore import guard_restored
from fieldapp.audit.log import os_user
from tests.helpers import SCENE, offset


def ask_for_cit(client):
    """The officer taps the button at the scene; returns the request's id."""
    response = client.post("/requests", data={"lat": SCENE[0], "lon": SCENE[1], "accuracy": 12})
    assert response.status_code == 303
    return int(response.headers["Location"].rsplit("/", 1)[1].split("?")[0])


def timeline(db, request_id):
    return [(r["event"], r["detail"]) for r in db.query("SELECT event, detail FROM request_events WHERE request_id = ? ORDER BY id", [request_id])]


def outbox_states(db):
    return [r["state"] for r in db.query("SELECT state FROM outbox ORDER BY id")]


def restore_at(app, db, moment):
    with app.app_context():
        return guard_restored(db, moment)


def iso(t):
    return dt.datetime.fromtimestamp(t, dt.timezone.utc).isoformat()


@pytest.fixture
def app_config(app_config):
    """One specialist alerted at first, so an escalation step is a new alert to the second."""
    return {**app_config, "ALERT_K": 1}


@pytest.fixture
def two_specialists(specialist):
    return specialist("near", offset(1000)), specialist("second", offset(5000))


def test_escalation_due_before_the_restore_point_is_not_fired_again(app, client, officer, two_specialists, worker, push_service, db, clock):
    request_id = ask_for_cit(client)
    worker.run_once()
    push_service.wait_for(1)
    clock.advance(61)  # the 60 s escalation fell due before the old service stopped: it may have gone out
    assert restore_at(app, db, clock()) == (0, 1)
    worker.run_once()
    events = [e for e, _ in timeline(db, request_id)]
    assert "escalated" not in events and "restored" in events
    assert one(db, "SELECT COUNT(*) AS n FROM alerts WHERE request_id = ?", [request_id])["n"] == 1
    assert len(push_service.deliveries) == 1
    # The next step, due after the restore point, still fires on time.
    clock.advance(120)
    worker.run_once()
    assert "unanswered" in [e for e, _ in timeline(db, request_id)]


def test_escalation_due_after_the_restore_point_still_fires(app, client, officer, two_specialists, worker, push_service, db, clock):
    request_id = ask_for_cit(client)
    worker.run_once()
    clock.advance(30)
    assert restore_at(app, db, clock()) == (0, 0)
    clock.advance(31)
    worker.run_once()
    assert "escalated" in [e for e, _ in timeline(db, request_id)]
    assert "restored" not in [e for e, _ in timeline(db, request_id)]


def test_both_steps_due_before_the_restore_point_leave_it_unanswered_and_quiet(app, client, officer, two_specialists, worker, db, clock):
    request_id = ask_for_cit(client)
    worker.run_once()
    clock.advance(200)
    assert restore_at(app, db, clock()) == (0, 2)
    req = one(db, "SELECT escalation_step, next_escalation_at, unanswered FROM cit_requests WHERE id = ?", [request_id])
    assert req == {"escalation_step": 2, "next_escalation_at": None, "unanswered": 1}
    assert worker.run_once() == 0


def test_push_queued_before_the_restore_point_is_not_sent_again(app, client, officer, two_specialists, worker, push_service, db, clock):
    request_id = ask_for_cit(client)
    assert restore_at(app, db, clock()) == (1, 0)
    assert worker.run_once() == 0
    assert push_service.deliveries == [] and outbox_states(db) == ["maybe_sent"]
    [(event, detail)] = [e for e in timeline(db, request_id) if e[0] == "restored"]
    assert "may already have gone out" in detail


def test_push_queued_after_the_restore_point_is_sent(app, client, officer, two_specialists, worker, push_service, db, clock):
    restore_point = clock()
    clock.advance(5)
    ask_for_cit(client)
    assert restore_at(app, db, restore_point) == (0, 0)
    worker.run_once()
    push_service.wait_for(1)
    assert outbox_states(db) == ["sent"]


def test_restored_command_marks_and_audits(app, client, officer, two_specialists, db, clock):
    ask_for_cit(client)
    result = app.test_cli_runner().invoke(args=["restored", "--at", iso(clock())])
    assert result.exit_code == 0, result.output
    assert "1 queued push(es) marked maybe sent" in result.output
    assert one(db, "SELECT action, actor_name FROM audit_log WHERE action = 'restored'") == {"action": "restored", "actor_name": f"cli:{os_user()}"}


@pytest.mark.parametrize("at, message", [
    ("last night", "not an ISO 8601 time"),
    ("2999-01-01T00:00:00Z", "in the future"),
])
def test_restored_command_refuses_a_bad_time_and_changes_nothing(app, client, officer, two_specialists, db, at, message):
    ask_for_cit(client)
    result = app.test_cli_runner().invoke(args=["restored", "--at", at])
    assert result.exit_code == 2 and message in result.output
    assert "Traceback" not in result.output
    assert outbox_states(db) == ["pending"]


def test_restored_command_has_help(app):
    result = app.test_cli_runner().invoke(args=["restored", "--help"])
    assert result.exit_code == 0 and "restore" in result.output and "--at" in result.output
