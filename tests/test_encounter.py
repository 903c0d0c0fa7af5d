"""The encounter record at resolve: what the specialist taps, what config changes, and the times computed
from the timeline, checked against requests whose answers are worked out by hand."""
import datetime

import pytest

from fieldapp import create_app
from fieldapp.duty.positions import record_position
from fieldapp.program.exports import encounter_rows
from fieldapp.program.reports import report
from fieldapp.requests import domain as flow

from helpers import ask, offset, snapshot

FULL = {"disposition": "voluntary_transport", "force_level": "hands_on", "transport": "crisis_centre",
        "mh_evaluation": "yes", "follow_up": "no", "referral": "Peer support line", "not_mental_health": "1"}
ENCOUNTER = ("force_level", "force_used", "transport", "mh_evaluation", "follow_up", "referral", "not_mental_health",
             "age_band", "veteran")


def encounter_of(db, request_id):
    row = flow.get_request(db, request_id)
    return {k: row[k] for k in ENCOUNTER}


@pytest.fixture
def on_scene(client, officer, specialist, login):
    """A request a CIT officer accepted and reached: (request id, the CIT officer's client)."""
    specialist("near", offset(1000))
    cit = login("near")
    request_id = ask(client)
    cit.post(f"/requests/{request_id}/accept")
    cit.post(f"/requests/{request_id}/arrive")
    return request_id, cit


def test_every_field_of_the_encounter_is_recorded(on_scene, db):
    request_id, cit = on_scene
    assert cit.post(f"/requests/{request_id}/resolve", data=FULL).status_code == 303
    assert encounter_of(db, request_id) == {
        "force_level": "hands_on", "force_used": 1, "transport": "crisis_centre", "mh_evaluation": "yes",
        "follow_up": "no", "referral": "Peer support line", "not_mental_health": 1, "age_band": None, "veteran": None}


def test_the_resolved_request_shows_what_was_recorded_to_the_cit_officer_not_the_requester(on_scene, client):
    request_id, cit = on_scene
    cit.post(f"/requests/{request_id}/resolve", data=FULL)
    html = cit.get(f"/requests/{request_id}").get_data(as_text=True)
    assert "Highest level of force: Hands-on" in html and "Transported to: Crisis receiving centre" in html
    assert "Re-coded: not a mental-health call after all" in html
    assert "Highest level of force" not in client.get(f"/requests/{request_id}").get_data(as_text=True)


def test_a_disposition_alone_leaves_the_rest_not_recorded(on_scene, db):
    request_id, cit = on_scene
    assert cit.post(f"/requests/{request_id}/resolve", data={"disposition": "resolved_on_scene"}).status_code == 303
    assert encounter_of(db, request_id) == {
        "force_level": None, "force_used": None, "transport": None, "mh_evaluation": None, "follow_up": None,
        "referral": "", "not_mental_health": 0, "age_band": None, "veteran": None}


def test_not_recorded_is_an_answer_of_its_own(on_scene, db):
    request_id, cit = on_scene
    data = {"disposition": "other", **{k: "not_recorded" for k in ("force_level", "transport", "mh_evaluation", "follow_up")}}
    assert cit.post(f"/requests/{request_id}/resolve", data=data).status_code == 303
    assert encounter_of(db, request_id)["force_level"] is None


@pytest.mark.parametrize("level, used", [("none", 0), ("presence", 0), ("verbal", 0), ("hands_on", 1),
                                         ("less_lethal", 1), ("firearm_pointed", 1), ("firearm_discharged", 1)])
def test_force_used_counts_from_hands_on_up(on_scene, db, level, used):
    request_id, cit = on_scene
    cit.post(f"/requests/{request_id}/resolve", data={"disposition": "other", "force_level": level})
    assert encounter_of(db, request_id)["force_used"] == used


def test_the_resolve_form_offers_each_field_with_not_recorded(on_scene):
    request_id, cit = on_scene
    html = cit.get(f"/requests/{request_id}").get_data(as_text=True)
    for label in ("Highest level of force", "Transported to", "Emergency mental-health evaluation started?",
                  "Follow-up wanted?", "Firearm discharged", "Crisis receiving centre", "Not a mental-health call after all"):
        assert label in html
    assert html.count('value="not_recorded">Not recorded') == 4
    # Demographics are off unless the agency turns them on.
    assert "Age band" not in html and "Veteran" not in html


@pytest.mark.parametrize("field, value", [
    ("force_level", "chokehold"), ("transport", "moon"), ("mh_evaluation", "maybe"), ("follow_up", "1"),
    ("not_mental_health", "yes please"),
])
def test_an_answer_off_the_list_is_refused_and_changes_nothing(on_scene, db, field, value):
    request_id, cit = on_scene
    before = snapshot(db)
    response = cit.post(f"/requests/{request_id}/resolve", data={**FULL, field: value})
    assert response.status_code == 409
    assert "Choose one of the listed answers" in response.get_data(as_text=True) or field == "not_mental_health"
    assert snapshot(db) == before


@pytest.fixture
def strict(app_config):
    """A program that requires the force level and transport, and turns the demographics on."""
    app_config.update(ENCOUNTER_REQUIRED=("force_level", "transport"), ENCOUNTER_DEMOGRAPHICS=("age_band", "veteran"))
    return app_config


def test_a_field_the_program_requires_cannot_be_left_not_recorded(strict, on_scene, db):
    request_id, cit = on_scene
    before = snapshot(db)
    for data in ({"disposition": "other", "transport": "none"},
                 {"disposition": "other", "transport": "none", "force_level": "not_recorded"}):
        response = cit.post(f"/requests/{request_id}/resolve", data=data)
        assert response.status_code == 409
        assert "requires this at resolve: highest level of force" in response.get_data(as_text=True)
        assert snapshot(db) == before
    html = cit.get(f"/requests/{request_id}").get_data(as_text=True)
    assert html.count('value="not_recorded">Not recorded') == 2 + 2  # evaluation, follow-up, age band, veteran
    assert cit.post(f"/requests/{request_id}/resolve",
                    data={"disposition": "other", "transport": "none", "force_level": "none"}).status_code == 303


def test_demographics_are_recorded_only_where_turned_on_and_never_required(strict, on_scene, db):
    request_id, cit = on_scene
    data = {"disposition": "other", "force_level": "none", "transport": "jail", "age_band": "25_34", "veteran": "yes"}
    assert cit.post(f"/requests/{request_id}/resolve", data=data).status_code == 303
    assert (encounter_of(db, request_id)["age_band"], encounter_of(db, request_id)["veteran"]) == ("25_34", "yes")
    # Never in a push: no payload, queued or sent, carries them.
    payloads = " ".join(r["payload"] for r in db.query("SELECT payload FROM outbox"))
    assert payloads and "25_34" not in payloads and "veteran" not in payloads.lower()


def test_demographics_turned_off_are_not_stored_even_if_posted(on_scene, db):
    request_id, cit = on_scene
    cit.post(f"/requests/{request_id}/resolve", data={"disposition": "other", "age_band": "25_34", "veteran": "yes"})
    assert (encounter_of(db, request_id)["age_band"], encounter_of(db, request_id)["veteran"]) == (None, None)


@pytest.fixture
def own_scale(app_config):
    """An agency's own scale of force, counted as force from the Taser up."""
    app_config.update(ENCOUNTER_FORCE_LEVELS={"none": "None", "control": "Control hold", "taser": "Taser"},
                      ENCOUNTER_FORCE_USED_FROM="taser")


def test_an_agency_can_use_its_own_scale_of_force(own_scale, on_scene, db):
    request_id, cit = on_scene
    assert cit.post(f"/requests/{request_id}/resolve", data={"disposition": "other", "force_level": "hands_on"}).status_code == 409
    assert cit.post(f"/requests/{request_id}/resolve", data={"disposition": "other", "force_level": "control"}).status_code == 303
    assert encounter_of(db, request_id)["force_used"] == 0


# ---- Computed, not typed: the times on a call, against a timeline worked out by hand ----


def test_times_on_the_call_are_computed_from_the_timeline(app, client, officer, specialist, login, db, clock):
    near = specialist("near", offset(1000))
    cit = login("near")
    # Reached the scene: accept after 60 s, arrive at 600 s, resolve at 1500 s.
    arrived = ask(client)
    for after, action, data in [(60, "accept", {}), (540, "arrive", {}), (900, "resolve", {"disposition": "other"})]:
        clock.advance(after)
        assert cit.post(f"/requests/{arrived}/{action}", data=data).status_code == 303
    # Never reached it: accepted after 30 s, the officer stabilised it at 300 s, resolved at 420 s.
    clock.advance(10)
    with app.app_context():
        record_position(db, near, *offset(1000), 10.0, "device")  # still on duty, a fresh position
    never = ask(client)
    clock.advance(30)
    assert cit.post(f"/requests/{never}/accept").status_code == 303
    clock.advance(270)
    assert client.post(f"/requests/{never}/stabilise").status_code == 303
    clock.advance(120)
    assert cit.post(f"/requests/{never}/resolve", data={"disposition": "resolved_on_scene"}).status_code == 303
    # Still open: nothing computed yet.
    still_open = ask(client)
    day = datetime.date.fromtimestamp(clock.t)
    with app.app_context():
        rows = {r["request_id"]: r for r in encounter_rows(db, day - datetime.timedelta(days=1), day)}
    pick = ("time_to_accept_s", "time_to_scene_s", "time_on_scene_s", "cit_time_on_call_s", "cit_reached_scene")
    assert {k: rows[arrived][k] for k in pick} == {
        "time_to_accept_s": 60, "time_to_scene_s": 600, "time_on_scene_s": 900, "cit_time_on_call_s": 1440,
        "cit_reached_scene": "yes"}
    assert {k: rows[never][k] for k in pick} == {
        "time_to_accept_s": 30, "time_to_scene_s": "", "time_on_scene_s": "", "cit_time_on_call_s": 390,
        "cit_reached_scene": "no"}
    assert {k: rows[still_open][k] for k in pick} == {
        "time_to_accept_s": "", "time_to_scene_s": "", "time_on_scene_s": "", "cit_time_on_call_s": "",
        "cit_reached_scene": "no"}


# ---- Reports: force levels and transport, the re-coded counted apart ----


def test_reports_count_force_and_transport_and_keep_the_re_coded_apart(app, client, officer, specialist, login, db, clock):
    specialist("near", offset(1000))
    cit = login("near")
    answers = [
        {"disposition": "arrest", "force_level": "hands_on", "transport": "jail"},
        {"disposition": "voluntary_transport", "force_level": "verbal", "transport": "crisis_centre", "mh_evaluation": "yes"},
        {"disposition": "voluntary_transport", "force_level": "verbal", "transport": "crisis_centre", "follow_up": "yes"},
        {"disposition": "resolved_on_scene"},
        # Re-coded: counted apart, and in neither the force nor the transport counts.
        {"disposition": "other", "force_level": "firearm_pointed", "transport": "none", "not_mental_health": "1"},
    ]
    for data in answers:
        request_id = ask(client)
        cit.post(f"/requests/{request_id}/accept")
        assert cit.post(f"/requests/{request_id}/resolve", data=data).status_code == 303
        clock.advance(60)
    day = datetime.date.fromtimestamp(clock.t)
    with app.app_context():
        total = report(db, day, day, "month")["total"]
    assert total["not_mental_health"] == 1
    assert total["force_levels"] == {"none": 0, "presence": 0, "verbal": 2, "hands_on": 1, "less_lethal": 0,
                                     "firearm_pointed": 0, "firearm_discharged": 0, "not_recorded": 1}
    assert total["transports"] == {"none": 0, "crisis_centre": 2, "emergency_department": 0, "jail": 1,
                                   "home_family": 0, "other": 0, "not_recorded": 1}
    assert (total["mh_evaluation"], total["follow_up"]) == (1, 1)


def test_the_reports_page_shows_force_and_transport_with_the_re_coded_apart(app, client, officer, specialist, login,
                                                                            make_user, clock):
    specialist("near", offset(1000))
    cit = login("near")
    request_id = ask(client)
    cit.post(f"/requests/{request_id}/accept")
    cit.post(f"/requests/{request_id}/resolve", data={"disposition": "other", "force_level": "less_lethal",
                                                      "transport": "emergency_department"})
    make_user("lt.ames", "coordinator")
    day = datetime.date.fromtimestamp(clock.t).isoformat()
    html = login("lt.ames").get(f"/program/reports?from={day}&to={day}&by=month").get_data(as_text=True)
    assert "Highest level of force, mental-health calls" in html and "Less-lethal weapon" in html
    assert "Transported to, mental-health calls" in html and "Not a mental-health call (apart)" in html


@pytest.mark.parametrize("setting, value, message", [
    ("ENCOUNTER_FORCE_USED_FROM", "chokehold", "ENCOUNTER_FORCE_USED_FROM must be one of the keys"),
    ("ENCOUNTER_REQUIRED", ["age_band"], "demographics are never required"),
    ("ENCOUNTER_DEMOGRAPHICS", ["religion"], "may name only age_band, veteran"),
    ("ENCOUNTER_TRANSPORT", ["jail"], "ENCOUNTER_TRANSPORT must be a non-empty mapping"),
])
def test_encounter_settings_that_cannot_work_stop_the_start(app_config, setting, value, message, capsys):
    app_config[setting] = value
    with pytest.raises(SystemExit):
        create_app(app_config)
    assert message in capsys.readouterr().err
