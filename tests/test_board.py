"""The supervisor board: open requests live, unanswered ones flagged, coverage on top."""
import pytest

from fieldapp.districts import save_centre
from tests.helpers import alerted, ask, events, offset


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
    s0, s1, s2, s3 = [specialist(f"s{n}", offset(km * 1000)) for n, km in enumerate([1, 2, 3, 4])]
    request_id = ask(client)
    assert alerted(db, request_id) == [s0, s1, s2]  # the nearest K = 3
    make_user("sgt.diaz", "supervisor")
    login("sgt.diaz").post(f"/requests/{request_id}/realert")
    assert alerted(db, request_id) == [s0, s1, s2, s3]  # the next nearest, and no one twice
    assert events(db, request_id).count("realerted") == 1


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
    save_centre(db, "North", 35.2, -90.0)


def test_an_unchanged_board_poll_is_304_without_rendering(watching, monkeypatch):
    from fieldapp.board import pages as board

    renders = []
    real = board.page_or_block
    monkeypatch.setattr(board, "page_or_block", lambda *a, **k: renders.append(1) or real(*a, **k))
    assert not watching["changed"]()
    assert renders == []
    assert watching["changed"]() is False


def test_the_board_changes_when_anything_it_shows_changes(watching, login, specialist, db, clock, on_roster):
    changed, request_id = watching["changed"], watching["request_id"]
    assert not changed()
    clock.advance(600)  # no phone confirmed the alert: the board flags it, once
    assert changed() and not changed()
    clock.advance(600)  # the page ticks the ages itself; the fragment stays the same
    assert not changed()
    specialist("second", offset(2000), district="North")  # coverage: one more on duty
    assert changed() and not changed()
    # Forced: the stand-in push service takes every push, so no send fails by itself.
    db.execute("UPDATE outbox SET state = 'failed' WHERE request_id = ?", [request_id])
    assert changed() and not changed()
    login("near").post(f"/requests/{request_id}/decline", data={"reason": "too_far"})
    assert changed() and not changed()
    # The coverage grid gains a rostered specialist.
    on_roster("near", course="2025-01-10", districts="Central", shifts="night", user_id=watching["near"])
    assert changed() and not changed()
    login("second").post(f"/requests/{request_id}/accept")
    assert changed() and not changed()


def test_a_compressed_etag_is_recognised(watching):
    sgt = watching["sgt"]
    first = sgt.get("/board/live", headers=dict(POLL, **{"Accept-Encoding": "gzip"}))
    assert first.headers.get("Content-Encoding") == "gzip" and first.headers["ETag"].endswith(':gzip"')
    again = sgt.get("/board/live", headers=dict(POLL, **{"Accept-Encoding": "gzip", "If-None-Match": first.headers["ETag"]}))
    assert again.status_code == 304


def test_the_board_query_does_not_walk_closed_requests_history(app, client, officer, specialist, db):
    from fieldapp.board.rows import _read_rows

    near = specialist("near", offset(1000))
    request_id = ask(client)
    columns = [c for c in db["cit_requests"].columns_dict if c not in ("id", "state")]
    steps = []
    db.conn.set_progress_handler(lambda: steps.append(1), 1)  # once per SQLite VM instruction: counted, not timed

    def steps_to_read():
        steps.clear()
        with app.app_context():
            assert len(_read_rows(db)) == 1
        return len(steps)

    before = steps_to_read()
    # A year of closed requests, each with its alert and its receipt: none on the board. Copied in SQL:
    # no function writes closed requests with their alerts and receipts.
    for n in range(300):
        db.execute(f"INSERT INTO cit_requests ({', '.join(columns)}, state) SELECT {', '.join(columns)}, 'resolved'"
                   " FROM cit_requests WHERE id = ?", [request_id])
        old = db.execute("SELECT last_insert_rowid()").fetchone()[0]
        db.execute("INSERT INTO alerts (request_id, user_id, step, distance_m, at) VALUES (?, ?, 0, 10, 0)", [old, near])
        db.execute("INSERT INTO alert_receipts (token_hash, kind, request_id, user_id, created_at, expires_at, delivered_at)"
                   " VALUES (?, 'alert', ?, ?, 0, 0, 0)", [f"t{n}", old, near])
    after = steps_to_read()
    db.conn.set_progress_handler(None, 1)
    # Grouping every alert and receipt ever written took a few steps for each of the 600 more rows.
    assert after <= before + 50, (before, after)


def test_the_board_read_change_by_change_is_the_board_read_whole(app, client, officer, specialist, make_user, login, db):
    from fieldapp.board import rows as board
    from fieldapp.identity.accounts import update_details

    near, far = specialist("near", offset(1000)), specialist("far", offset(3000))
    make_user("sgt.diaz", "supervisor")
    make_user("ofc.roe")
    sgt, roe, cit = login("sgt.diaz"), login("ofc.roe"), login("far")
    steps = []

    def same(step):
        # The supervisor's poll brings this process's kept rows up to date, reading only what was touched.
        assert sgt.get("/board/live", headers=POLL).status_code == 200
        kept = app.extensions["fieldapp.board_data"]["rows"][2]
        with app.app_context():
            whole = {row.id: row for row in board._read_rows(db)}
        assert kept == whole, step
        steps.append(step)

    first = ask(client, location_text="1 Invented Way")
    same("a request")
    second = ask(roe, location_text="2 Invented Way")
    same("a second request")
    login("near").post(f"/requests/{first}/decline", data={"reason": "too_far"})
    same("a decline")
    # From here, some writes go straight to the tables, as no one page makes them alone: each must still redraw its row.
    db.execute("UPDATE alerts SET declined_at = 5 WHERE request_id = ? AND user_id = ?", [second, far])
    same("a decline written on its own")
    db.execute("UPDATE outbox SET state = 'failed' WHERE request_id = ?", [second])
    same("a failed alert")
    db.execute("INSERT INTO alert_receipts (token_hash, kind, request_id, user_id, created_at, expires_at)"
               " VALUES ('t1', 'alert', ?, ?, 0, 9e9)", [second, near])
    db.execute("UPDATE alert_receipts SET delivered_at = 1 WHERE token_hash = 't1'")
    same("a phone confirmed the alert")
    db.execute("UPDATE alert_receipts SET seen_at = 2 WHERE token_hash = 't1'")
    same("and the specialist saw it")
    cit.post(f"/requests/{first}/accept")
    same("an accept")
    with app.app_context():
        update_details(db, far, "Ofc. Renamed Far", "9-Adam", "")
    same("the assignee renamed")
    cit.post(f"/requests/{first}/arrive")
    same("on scene")
    sgt.post(f"/requests/{second}/realert")
    same("a re-alert")
    db.execute("UPDATE cit_requests SET cad_incident = 'INV-1', weapon = 1 WHERE id = ?", [second])
    same("CAD and a weapon")
    cit.post(f"/requests/{first}/resolve", data={"disposition": "other", "not_mental_health": "1"})
    same("resolved")
    roe.post(f"/requests/{second}/cancel", data={"reason": "person_left"})
    same("cancelled")
    assert app.extensions["fieldapp.board_data"]["rows"][2] == {} and len(steps) == 14
