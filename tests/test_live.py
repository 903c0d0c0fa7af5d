"""Live within a second: the requester and the boards hear of changes by push, and a poll is decided by the change counter."""
import datetime
import json
import sqlite3

import pytest

import fieldapp.store.db
from fieldapp.store.changes import VIEWER_COLUMNS, current, part_current
from fieldapp.store.migrations import (M017_COUNTED_TABLES, M017_UPDATE_COLUMNS, M022_COUNTED_TABLES, M023_PARTS,
                                       M023_TOUCHED_TABLES, M028_COUNTED_TABLES)
from fieldapp.districts import save_centre
from fieldapp.duty.devices import save_subscription
from fieldapp.duty.status import go_off_duty
from fieldapp.requests.domain import CANCEL_REASONS
from tests.helpers import ask, offset

POLL = {"HX-Request": "true"}
# Read by every signed-in request, never shown by a live part: who is signed in
# (a new session is a new CSRF secret, which is in the poll's key), and the counter itself.
NOT_SHOWN = {"sessions", "change_counter", "part_counters", "request_touches", "sqlite_sequence"}
# What the triggers watch, as the migrations that made them froze it: a live part that reads
# more fails here, and its fix is a migration that adds the triggers.
LIVE_TABLES = M017_COUNTED_TABLES + M022_COUNTED_TABLES + M028_COUNTED_TABLES
UPDATE_COLUMNS = M017_UPDATE_COLUMNS
COVERAGE_TABLES, COVERAGE_UPDATE_COLUMNS = M023_PARTS["coverage"]
PEOPLE_UPDATE_COLUMNS = M023_PARTS["people"][1]


@pytest.fixture
def requester_device(app, db, officer, push_service):
    """The requesting officer's phone, subscribed to push."""
    sub = push_service.new_subscription()
    with app.app_context():
        save_subscription(db, officer, sub["endpoint"], sub["keys"]["p256dh"], sub["keys"]["auth"])
    return sub["endpoint"]


def pushes_to(push_service, endpoint, count):
    return [d for d in push_service.wait_for(count) if d.endpoint == endpoint]


def test_the_requester_hears_of_each_step_under_one_topic(client, officer, requester_device, specialist, login,
                                                          worker, push_service):
    specialist("near", offset(1400))
    request_id = ask(client)
    worker.run_once()  # the alert
    cit = login("near")
    cit.post(f"/requests/{request_id}/accept")
    worker.run_once()
    [en_route] = pushes_to(push_service, requester_device, 2)
    assert en_route.payload["title"] == "CIT officer en route · 1.4 km"
    assert en_route.headers["topic"] == f"cit-status-{request_id}"
    cit.post(f"/requests/{request_id}/arrive")
    worker.run_once()
    on_scene = pushes_to(push_service, requester_device, 3)[-1]
    assert on_scene.payload["title"] == "CIT officer on scene"
    assert on_scene.headers["topic"] == en_route.headers["topic"]  # the later state replaces the earlier


def test_the_requester_is_told_when_the_request_goes_unanswered(client, officer, requester_device, specialist,
                                                                 worker, push_service, clock):
    specialist("near", offset(1000))
    ask(client)
    worker.run_once()
    clock.advance(3600)
    worker.run_once()
    worker.run_once()
    told = [d.payload for d in push_service.wait_for(2) if d.endpoint == requester_device]  # the alert, and this
    assert [p["news"] for p in told] == ["unanswered"]


def test_the_requesters_push_carries_no_names_notes_or_addresses(client, officer, requester_device, specialist, login,
                                                                  worker, push_service):
    specialist("near", offset(1200))
    request_id = ask(client, note="Pat Example is upset", location_text="12 Invented Lane")
    worker.run_once()  # the alert
    login("near").post(f"/requests/{request_id}/accept")
    worker.run_once()
    [delivery] = pushes_to(push_service, requester_device, 2)
    text = json.dumps(delivery.payload)
    for private in ("Pat", "Example", "Invented", "Lane", "Kim Lee", "ofc.lee", "Near", "CIT-near", "555-0199"):
        assert private not in text
    assert set(delivery.payload) == {"kind", "news", "request_id", "title", "body", "url", "topic"}


def test_a_requester_who_stabilises_their_own_scene_gets_no_push_about_it(client, officer, requester_device, specialist,
                                                                         login, db):
    specialist("near", offset(1200))
    request_id = ask(client)
    login("near").post(f"/requests/{request_id}/accept")
    client.post(f"/requests/{request_id}/stabilise")
    news = [json.loads(r["payload"])["news"] for r in db.query(
        "SELECT payload FROM outbox WHERE topic = ?", [f"cit-status-{request_id}"])]
    assert news == ["accepted"]


def test_a_failed_push_to_the_requester_is_not_shown_as_a_failed_alert(client, officer, requester_device, specialist,
                                                                        make_user, login, db):
    specialist("near", offset(1200))
    request_id = ask(client)
    # Forced: the stand-in push service takes every push, so no send fails by itself.
    db.execute("UPDATE outbox SET state = 'failed' WHERE request_id = ? AND user_id = ?", [request_id, officer])
    make_user("sgt.diaz", "supervisor")
    assert "alert(s) failed" not in login("sgt.diaz").get("/board").get_data(as_text=True)


# ---- The change counter ----


@pytest.fixture
def tables_read(monkeypatch):
    """Every table SQLite reads while the app answers, through SQLite's own authorizer."""
    read = set()
    real = fieldapp.store.db.connect

    def watched(path):
        db = real(path)

        def authorize(action, table, column, *rest):
            if action == sqlite3.SQLITE_READ and table:
                read.add((table, column))
            return sqlite3.SQLITE_OK

        db.conn.set_authorizer(authorize)
        return db

    monkeypatch.setattr(fieldapp.store.db, "connect", watched)
    return read


def test_every_table_a_live_part_reads_moves_the_counter(client, officer, specialist, make_user, login, db, tables_read,
                                                         on_roster):
    near = specialist("near", offset(1000), district="Central")
    request_id = ask(client, note="Invented note")
    make_user("sgt.diaz", "supervisor")
    sgt, cit = login("sgt.diaz"), login("near")
    on_roster("near", course="2025-01-10", districts="Central", shifts="night", user_id=near)
    tables_read.clear()
    assert sgt.get("/board/live", headers=POLL).status_code == 200
    for viewer in (client, cit, sgt):
        assert viewer.get(f"/requests/{request_id}/live", headers=POLL).status_code == 200
    cit.post(f"/requests/{request_id}/accept")
    tables_read.clear()
    for viewer in (client, cit, sgt):
        assert viewer.get(f"/requests/{request_id}/live", headers=POLL).status_code == 200
    assert sgt.get("/board/live", headers=POLL).status_code == 200
    tables = {table for table, _ in tables_read}
    assert tables - NOT_SHOWN <= set(LIVE_TABLES), "a live part reads a table the counter does not watch"
    for table in LIVE_TABLES:
        for op in ("INSERT", "UPDATE", "DELETE"):
            [body] = [r[0] for r in db.execute(
                "SELECT sql FROM sqlite_master WHERE type = 'trigger' AND tbl_name = ? AND sql LIKE ?",
                [table, f"%AFTER {op}%ON {table}%"]).fetchall() if "change_counter" in r[0]] or [None]
            assert body and "n = n + 1" in body, f"no counter trigger for {op} on {table}"
    # Where only some columns' updates move the counter, every other column read is the viewer's own, in the key.
    for table, columns in UPDATE_COLUMNS.items():
        read = {column for t, column in tables_read if t == table} - set(VIEWER_COLUMNS.get(table, ()))
        assert read <= set(columns), f"{table}: {read - set(columns)} can change without the counter moving"
        [body] = [r[0] for r in db.execute(
            "SELECT sql FROM sqlite_master WHERE type = 'trigger' AND name = ?", [f"change_counter_{table}_update"])]
        assert f"AFTER UPDATE OF {', '.join(columns)} ON {table}" in body


def test_a_position_report_changes_only_the_page_that_shows_distances_from_it(client, officer, specialist, make_user,
                                                                              login, db, app):
    from fieldapp.duty.positions import record_position

    near = specialist("near", offset(1000))
    request_id = ask(client)
    make_user("sgt.diaz", "supervisor")
    sgt, cit = login("sgt.diaz"), login("near")
    board = sgt.get("/board/live", headers=POLL).headers["ETag"]
    page = cit.get(f"/requests/{request_id}/live", headers=POLL).headers["ETag"]
    before = current(db)
    with app.app_context():
        record_position(db, near, *offset(3000), 10.0, "device")
    assert current(db) == before
    assert sgt.get("/board/live", headers=dict(POLL, **{"If-None-Match": board})).status_code == 304
    moved = cit.get(f"/requests/{request_id}/live", headers=dict(POLL, **{"If-None-Match": page}))
    assert moved.status_code == 200 and "3.0 km S of you" in moved.get_data(as_text=True)


@pytest.mark.parametrize("table", LIVE_TABLES)
def test_a_write_to_a_live_table_moves_the_counter(db, table, make_user):
    make_user("someone", "cit")
    save_centre(db, "Central", 35.1, -90.0)
    before = current(db)
    # A raw write on purpose: the triggers must see every writer, an administrator's sqlite3 too.
    column = UPDATE_COLUMNS.get(table, ("rowid",))[0]
    db.execute(f"UPDATE {table} SET {column} = {column}")
    rows = db.execute(f"SELECT COUNT(*) FROM {table}").fetchone()[0]
    # At least once a row: a write to districts also stamps districts_revision, which counts again.
    assert current(db) >= before + rows


def test_every_table_the_kept_coverage_reads_moves_its_own_counter(app, db, specialist, tables_read, login, on_roster):
    from fieldapp.duty.status import coverage
    from fieldapp.program.coverage import roster_coverage

    near = specialist("near", offset(1000), district="Central")
    on_roster("near", course="2025-01-10", districts="Central", shifts="night", user_id=near)
    watched = fieldapp.store.db.connect(app.config["DATABASE"])
    tables_read.clear()
    with app.test_request_context():
        coverage(watched), roster_coverage(watched)
    assert {t for t, _ in tables_read} <= set(COVERAGE_TABLES), "coverage reads a table its counter does not watch"
    for table in COVERAGE_TABLES:
        for op in ("INSERT", "UPDATE", "DELETE"):
            body = db.execute("SELECT sql FROM sqlite_master WHERE type = 'trigger' AND name = ?",
                              [f"part_counter_coverage_{table}_{op.lower()}"]).fetchone()
            assert body and "part = 'coverage'" in body[0], f"no coverage counter trigger for {op} on {table}"
    # duty's update trigger watches some columns: every other one coverage reads would go unseen.
    moving = set(COVERAGE_UPDATE_COLUMNS["duty"])
    read = {column for t, column in tables_read if t == "duty"}
    assert read and read <= moving, f"duty: {read - moving} can change unseen"


def test_every_column_a_board_row_reads_logs_its_request_when_written(app, db, client, officer, specialist, tables_read):
    from fieldapp.board.rows import _read_rows

    specialist("near", offset(1000))
    ask(client)
    watched = fieldapp.store.db.connect(app.config["DATABASE"])
    tables_read.clear()
    with app.app_context():
        assert _read_rows(watched)
    read = {}
    for table, column in tables_read:
        read.setdefault(table, set()).add(column)
    # Names and units: a rename moves the people counter, which reads every row again.
    assert read.pop("users") <= set(PEOPLE_UPDATE_COLUMNS["users"])
    assert set(read) <= set(M023_TOUCHED_TABLES), "a board row reads a table whose writes log no request"
    for table, (_, columns) in M023_TOUCHED_TABLES.items():
        assert columns is None or read[table] <= set(columns), f"{table}: {read[table] - set(columns)} can change unlogged"
        for op in ("INSERT", "UPDATE", "DELETE"):
            body = db.execute("SELECT sql FROM sqlite_master WHERE type = 'trigger' AND name = ?",
                              [f"request_touch_{table}_{op.lower()}"]).fetchone()
            assert body and "INSERT INTO request_touches" in body[0], f"no touch trigger for {op} on {table}"
    for op in ("INSERT", "UPDATE", "DELETE"):
        assert db.execute("SELECT 1 FROM sqlite_master WHERE name = ?", [f"part_counter_people_users_{op.lower()}"]).fetchone()


def test_the_touch_log_keeps_the_last_thousand_and_says_when_it_no_longer_reaches_back(db):
    from fieldapp.store.changes import last_touch, touched_since

    start = last_touch(db)
    # Written straight in (triggers write it in the app): 2,500 touches, to see the oldest dropped.
    db.conn.executemany("INSERT INTO request_touches (request_id) VALUES (?)", [(n % 7,) for n in range(2500)])
    assert db.execute("SELECT COUNT(*) FROM request_touches").fetchone()[0] <= 2000
    assert touched_since(db, start) is None
    # The last three touches were for requests 2497 % 7, 2498 % 7 and 2499 % 7.
    assert touched_since(db, last_touch(db) - 3) == {5, 6, 0}


@pytest.mark.parametrize("table", COVERAGE_TABLES)
def test_a_write_to_a_table_coverage_reads_moves_its_counter(db, table, make_user):
    make_user("someone", "cit")
    save_centre(db, "Central", 35.1, -90.0)
    before = part_current(db, "coverage")
    # A raw write on purpose: the triggers must see every writer, an administrator's sqlite3 too.
    column = UPDATE_COLUMNS.get(table, ("rowid",))[0]
    db.execute(f"UPDATE {table} SET {column} = {column}")
    assert part_current(db, "coverage") >= before + db.execute(f"SELECT COUNT(*) FROM {table}").fetchone()[0]


def test_a_new_request_redraws_the_board_without_recounting_coverage(app, client, officer, specialist, make_user, login,
                                                                       monkeypatch, db):
    from fieldapp.board import pages as board

    near = specialist("near", offset(1000), district="Central")
    make_user("sgt.diaz", "supervisor")
    sgt = login("sgt.diaz")
    counted = []
    real = board.roster_coverage
    monkeypatch.setattr(board, "roster_coverage", lambda db: counted.append(1) or real(db))
    sgt.get("/board/live", headers=POLL)
    ask(client)
    assert "#1" in sgt.get("/board/live", headers=POLL).get_data(as_text=True) and counted == [1]
    # Someone going off duty is what moves it.
    with app.app_context():
        go_off_duty(db, near)
    assert "0</strong> CIT officers on duty now" in sgt.get("/board/live", headers=POLL).get_data(as_text=True)
    assert counted == [1, 1]


def test_a_board_row_that_changed_is_drawn_again_and_the_others_are_kept(client, officer, specialist, make_user, login,
                                                                          monkeypatch, db):
    specialist("near", offset(1000))
    make_user("ofc.roe")
    ask(client, location_text="1 Invented Way")
    second = ask(login("ofc.roe"), location_text="2 Invented Way")
    make_user("sgt.diaz", "supervisor")
    sgt = login("sgt.diaz")
    before = sgt.get("/board/live", headers=POLL).get_data(as_text=True)
    # Forced: no page edits a request's place or flags once it is made, but any write to them must redraw its row.
    db.execute("UPDATE cit_requests SET location_text = '9 Moved Street', weapon = 1 WHERE id = ?", [second])
    after = sgt.get("/board/live", headers=POLL).get_data(as_text=True)
    assert "9 Moved Street" in after and "Weapon" in after and "2 Invented Way" not in after
    assert "1 Invented Way" in after and "1 Invented Way" in before
    # Another supervisor sees the same rows, with a re-alert form of their own session.
    make_user("sgt.roe", "supervisor")
    other = login("sgt.roe").get("/board/live", headers=POLL).get_data(as_text=True)
    assert "9 Moved Street" in other and other.count('formaction="/requests/') == 2


def test_a_live_poll_is_decided_by_the_counter_before_the_view_is_computed(client, officer, specialist, monkeypatch, db):
    from fieldapp.requests import domain

    specialist("near", offset(1000))
    request_id = ask(client)
    etag = client.get(f"/requests/{request_id}/live", headers=POLL).headers["ETag"]
    computed = []
    real = domain.request_view
    monkeypatch.setattr(domain, "request_view", lambda *a, **k: computed.append(1) or real(*a, **k))
    again = client.get(f"/requests/{request_id}/live", headers=dict(POLL, **{"If-None-Match": etag}))
    assert again.status_code == 304 and computed == []
    db.execute("UPDATE cit_requests SET weapon = 1 WHERE id = ?", [request_id])  # forced: any write to the request counts
    assert client.get(f"/requests/{request_id}/live", headers=dict(POLL, **{"If-None-Match": etag})).status_code == 200


def test_a_live_poll_of_someone_elses_request_is_refused(client, officer, specialist, make_user, login):
    specialist("near", offset(1000))
    request_id = ask(client)
    make_user("ofc.other")
    assert login("ofc.other").get(f"/requests/{request_id}/live", headers=POLL).status_code == 403


def test_the_board_changes_when_the_hour_turns(app, client, officer, make_user, login, clock):
    app.config["SESSION_IDLE_MINUTES"] = 120  # the hour may be most of an hour away
    ask(client)
    make_user("sgt.diaz", "supervisor")
    sgt = login("sgt.diaz")
    etag = sgt.get("/board/live", headers=POLL).headers["ETag"]
    # The coverage grid's shift now, and in-service due dates, move with time alone.
    at = datetime.datetime.fromtimestamp(clock())
    clock.advance(3600 - at.minute * 60 - at.second)
    assert datetime.datetime.fromtimestamp(clock()).minute == 0
    assert sgt.get("/board/live", headers=dict(POLL, **{"If-None-Match": etag})).status_code == 200


# ---- Supervisors' boards ----


@pytest.fixture
def board_device(make_user, login, push_service):
    """A supervisor who asked, on the board, for board alerts on one device; returns its endpoint."""
    make_user("sgt.diaz", "supervisor")
    sub = push_service.new_subscription()
    response = login("sgt.diaz").post("/push/subscriptions/board", json=sub)
    assert response.status_code == 201
    return sub["endpoint"]


def board_pushes(db):
    return list(db.query("SELECT payload, state FROM outbox WHERE topic = 'fieldapp-board'"))


def test_a_supervisor_who_asked_gets_one_board_push_for_a_burst_of_changes(client, officer, specialist, login,
                                                                          board_device, db, clock):
    specialist("near", offset(1000))
    request_id = ask(client, note="Pat Example is upset", location_text="12 Invented Lane")
    login("near").post(f"/requests/{request_id}/accept")  # a second change while the first push is pending
    [push] = board_pushes(db)
    payload = json.loads(push["payload"])
    assert payload["kind"] == "board" and payload["topic"] == "fieldapp-board"
    for private in ("Pat", "Example", "Invented", "Lane", "Kim Lee", "ofc.lee", "Near"):
        assert private not in push["payload"]
    db.execute("UPDATE outbox SET state = 'sent' WHERE topic = 'fieldapp-board'")  # as a worker leaves it, without one
    login("near").post(f"/requests/{request_id}/arrive")
    assert len(board_pushes(db)) == 1  # sent a moment ago: the next waits out the quiet time
    clock.advance(11)
    login("near").post(f"/requests/{request_id}/stabilise")
    assert len(board_pushes(db)) == 2


def test_board_pushes_go_only_to_devices_that_asked(client, officer, specialist, make_user, login, push_service, db):
    make_user("sgt.other", "supervisor")
    sub = push_service.new_subscription()
    assert login("sgt.other").post("/push/subscriptions", json=sub).status_code == 201  # alerts, not the board
    specialist("near", offset(1000))
    ask(client)
    assert board_pushes(db) == []
    assert client.post("/push/subscriptions/board", json=push_service.new_subscription()).status_code == 403


def test_a_request_closing_reaches_the_boards(client, officer, specialist, board_device, db):
    specialist("near", offset(1200))
    request_id = ask(client)
    # As a worker leaves it long ago, without one: past the quiet time, so the next change is pushed.
    db.execute("UPDATE outbox SET state = 'sent', created_at = 0 WHERE topic = 'fieldapp-board'")
    client.post(f"/requests/{request_id}/cancel", data={"reason": next(iter(CANCEL_REASONS))})
    assert [p["state"] for p in board_pushes(db)] == ["sent", "pending"]
