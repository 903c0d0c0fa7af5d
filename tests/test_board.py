"""The supervisor board: open requests live, unanswered ones flagged, coverage on top."""
from tests.conftest import offset
from tests.test_requests import ask


def test_board_lists_open_requests_with_alert_counts(client, officer, specialist, make_user, login):
    specialist("near", offset(1000), district="Central")
    request_id = ask(client, location_text="Invented Plaza")
    make_user("sgt.diaz", "supervisor")
    html = login("sgt.diaz").get("/board").get_data(as_text=True)
    assert f"#{request_id} · Waiting for a CIT officer" in html
    assert "1 alerted" in html and "Invented Plaza" in html
    assert "1</strong> CIT officer on duty now" in html and "Central: 1" in html


def test_unanswered_requests_are_flagged_and_listed_first(client, officer, specialist, make_user, login, worker, clock):
    specialist("near", offset(1000))
    older = ask(client, location_text="first")
    login("near").post(f"/requests/{older}/accept")
    clock.advance(10)
    newer = ask(client, location_text="second")
    clock.advance(181)
    worker.run_once()
    worker.run_once()
    make_user("sgt.diaz", "supervisor")
    html = login("sgt.diaz").get("/board").get_data(as_text=True)
    assert html.index(f"#{newer} ·") < html.index(f"#{older} ·")
    assert html.count(">Unanswered<") == 1


def test_board_poll_is_304_when_nothing_changed(make_user, login):
    make_user("sgt.diaz", "supervisor")
    sgt = login("sgt.diaz")
    first = sgt.get("/board/live", headers={"HX-Request": "true"})
    again = sgt.get("/board/live", headers={"HX-Request": "true", "If-None-Match": first.headers["ETag"]})
    assert again.status_code == 304


def test_supervisor_assigns_by_hand_and_it_is_in_the_timeline(client, officer, specialist, make_user, login, db):
    far = specialist("far", offset(40_000))
    request_id = ask(client)
    make_user("sgt.diaz", "supervisor", display_name="Sgt. Robin Diaz")
    response = login("sgt.diaz").post(f"/requests/{request_id}/assign", data={"assignee_id": far})
    assert response.status_code == 303
    detail = db.execute("SELECT detail FROM request_events WHERE event = 'assigned'").fetchone()[0]
    assert "(assigned by Sgt. Robin Diaz)" in detail


def test_supervisor_realerts_the_next_nearest(client, officer, specialist, make_user, login, db):
    for n, km in enumerate([1, 2, 3, 4]):
        specialist(f"s{n}", offset(km * 1000))
    request_id = ask(client)
    make_user("sgt.diaz", "supervisor")
    login("sgt.diaz").post(f"/requests/{request_id}/realert")
    assert db.execute("SELECT COUNT(*) FROM alerts WHERE request_id = ?", [request_id]).fetchone()[0] == 4
    assert db.execute("SELECT COUNT(*) FROM request_events WHERE event = 'realerted'").fetchone()[0] == 1


def test_only_supervisors_see_the_board(client, officer):
    assert client.get("/board").status_code == 403
