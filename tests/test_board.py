"""The supervisor board: open requests live, unanswered ones flagged, coverage on top."""
import pytest

from tests.helpers import ask, offset


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
    newer = ask(client, location_text="second", different_scene="1")
    clock.advance(181)
    worker.run_once()
    worker.run_once()
    make_user("sgt.diaz", "supervisor")
    html = login("sgt.diaz").get("/board").get_data(as_text=True)
    assert html.index(f"#{newer} ·") < html.index(f"#{older} ·")
    assert html.count(">Unanswered<") == 1


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


POLL = {"HX-Request": "true"}


@pytest.fixture
def watching(client, officer, specialist, make_user, login, districts_for_board):
    """A supervisor's board with one open request, and a poll that says whether the board changed."""
    near = specialist("near", offset(1000), district="Central")
    request_id = ask(client)
    make_user("sgt.diaz", "supervisor")
    sgt = login("sgt.diaz")
    etag = [sgt.get("/board/live", headers=POLL).headers["ETag"]]

    def changed():
        response = sgt.get("/board/live", headers=dict(POLL, **{"If-None-Match": etag[0]}))
        etag[0] = response.headers["ETag"]
        return response.status_code == 200

    return {"changed": changed, "request_id": request_id, "near": near, "sgt": sgt}


@pytest.fixture
def districts_for_board(db):
    db["districts"].insert({"name": "North", "lat": 35.2, "lon": -90.0}, pk="name", replace=True)


def test_an_unchanged_board_poll_is_304_without_rendering(watching, monkeypatch):
    from fieldapp import board

    renders = []
    real = board.page_or_block
    monkeypatch.setattr(board, "page_or_block", lambda *a, **k: renders.append(1) or real(*a, **k))
    assert not watching["changed"]()
    assert renders == []
    assert watching["changed"]() is False


def test_the_board_changes_when_anything_it_shows_changes(watching, login, specialist, db, clock):
    changed, request_id = watching["changed"], watching["request_id"]
    assert not changed()
    clock.advance(600)  # no phone confirmed the alert: the board flags it, once
    assert changed() and not changed()
    clock.advance(600)  # the page ticks the ages itself; the fragment stays the same
    assert not changed()
    specialist("second", offset(2000), district="North")  # coverage: one more on duty
    assert changed() and not changed()
    db.execute("UPDATE outbox SET state = 'failed' WHERE request_id = ?", [request_id])
    assert changed() and not changed()
    login("near").post(f"/requests/{request_id}/decline", data={"reason": "too_far"})
    assert changed() and not changed()
    db.execute("INSERT INTO roster (user_id, course_completed_on, districts, shifts) VALUES (?, '2025-01-10', 'Central', 'night')",
               [watching["near"]])  # the coverage grid gains a rostered specialist
    assert changed() and not changed()
    login("second").post(f"/requests/{request_id}/accept")
    assert changed() and not changed()


def test_a_compressed_etag_is_recognised(watching):
    sgt = watching["sgt"]
    first = sgt.get("/board/live", headers=dict(POLL, **{"Accept-Encoding": "gzip"}))
    assert first.headers.get("Content-Encoding") == "gzip" and first.headers["ETag"].endswith(':gzip"')
    again = sgt.get("/board/live", headers=dict(POLL, **{"Accept-Encoding": "gzip", "If-None-Match": first.headers["ETag"]}))
    assert again.status_code == 304
