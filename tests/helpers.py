"""Plain helpers the tests share: a movable clock and the test config, accounts and
specialists, a scene and points around it, the officer's one tap, what a request
left in the database, and browser waits.

Fixtures live in conftest.py; anything a test calls directly lives here, so no
test module imports from another."""
import json
import math
import os
import shutil
import subprocess
import sys
from pathlib import Path
from time import monotonic

from fieldapp.districts import save_centre
from fieldapp.identity.accounts import create_user
from fieldapp.store.db import connect, migrate
from fieldapp.duty.devices import save_subscription
from fieldapp.duty.positions import record_position
from fieldapp.duty.status import go_on_duty

PASSWORD = "correct horse battery"


def run_flask(folder, *args, timeout=120, **env):
    """`flask --app fieldapp ARGS` as an administrator types it, on the instance folder/instance."""
    environ = {"PATH": os.environ["PATH"], "HOME": str(folder), "LANG": "C.UTF-8",
               "FIELDAPP_INSTANCE_PATH": str(Path(folder) / "instance"), "FIELDAPP_LOG_LEVEL": "ERROR",
               "FIELDAPP_CONTENT_DIR": str(Path(__file__).parent / "content_fixtures" / "good"), **env}
    if "PYTHONPATH" in os.environ:  # a checkout run from outside the venv's own install
        environ["PYTHONPATH"] = os.environ["PYTHONPATH"]
    return subprocess.run([str(Path(sys.executable).parent / "flask"), "--app", "fieldapp", *args], cwd=folder,
                          env=environ, capture_output=True, text=True, timeout=timeout)


class FakeClock:
    """A clock that only moves when a test moves it."""

    def __init__(self, start=1_780_000_000.0):
        self.t = start

    def __call__(self):
        return self.t

    def advance(self, seconds):
        self.t += seconds


def config_for(tmp_path, clock):
    """The config of an app on a fresh database in `tmp_path`, on `clock`."""
    return {
        "TESTING": True,
        "SECRET_KEY": "test-secret",
        "DATABASE": str(tmp_path / "test.db"),
        "CLOCK": clock,
        "INSTANCE_PATH": str(tmp_path / "instance"),
        "PUSH_INSECURE_HOSTS": ["127.0.0.1"],
        "PUSH_TIMEOUT": 3.0,
        # Unit tests post forms directly; test_security.py and the browser tests run with CSRF on.
        "WTF_CSRF_ENABLED": False,
        # Deliberately slow scrypt would dominate the suite's time; the method is still a real hash.
        "PASSWORD_HASH_METHOD": "pbkdf2:sha256:1000",
        # Second factors are off unless a test turns them on (tests/test_second_factors.py).
        "MFA_REQUIRED_ROLES": [],
    }


# An invented downtown and points at known distances from it.
SCENE = (35.1495, -90.0490)


def offset(metres_north, metres_east=0.0, origin=SCENE):
    """A point this many metres north and east of `origin` (small-distance approximation)."""
    lat = origin[0] + metres_north / 111_195.0
    lon = origin[1] + metres_east / (111_195.0 * math.cos(math.radians(origin[0])))
    return lat, lon


def new_instance(tmp_path, clock, migrated):
    """The config of an app on an instance folder and database made as `migrate --create` would."""
    (tmp_path / "instance").mkdir(mode=0o700)
    config = config_for(tmp_path, clock)
    start_from(migrated, config["DATABASE"])
    return config


def start_from(migrated, database):
    """Put a copy of the migrated database at `database`, unless the test made one there.

    Copying a file is much quicker than running every migration (each one
    commits to disk) for each of several hundred tests; migrate() still runs
    after it, and finds nothing to do.
    """
    if not Path(database).exists():
        shutil.copyfile(migrated, database)
    conn = connect(database)
    migrate(conn)
    conn.close()


# ---- Accounts and specialists ----


def add_user(app, db, username, role="officer", **fields):
    """Create an account with the shared test password; returns its id."""
    with app.app_context():
        return create_user(db, username, PASSWORD, role, fields.pop("display_name", None), **fields)


def signed_in(app, username):
    """A new test client signed in as `username`: each person gets their own."""
    client = app.test_client()
    response = client.post("/login", data={"username": username, "password": PASSWORD})
    assert response.status_code == 302, f"could not sign in {username}"
    return client


def add_specialist(app, db, push_service, username, position=None, district=None, devices=1, on_duty=True):
    """A CIT specialist on duty at `position` with `devices` subscribed to the stand-in push service."""
    user_id = add_user(app, db, username, "cit", display_name=f"Ofc. {username.title()} (CIT)", unit=f"CIT-{username}", phone="555-0199")
    with app.app_context():
        if district:
            save_centre(db, district, *SCENE)
        if on_duty:
            go_on_duty(db, user_id, district)
        if position:
            record_position(db, user_id, position[0], position[1], 10.0, "device")
        for _ in range(devices):
            sub = push_service.new_subscription()
            save_subscription(db, user_id, sub["endpoint"], sub["keys"]["p256dh"], sub["keys"]["auth"])
    return user_id


# ---- Requests ----


def ask(client, position=SCENE, **fields):
    """The officer taps the button; returns the new request's id."""
    data = {"lat": position[0], "lon": position[1], "accuracy": 12} if position else {}
    data.update(fields)
    response = client.post("/requests", data=data)
    assert response.status_code == 303, response.get_data(as_text=True)[:500]
    return int(response.headers["Location"].rsplit("/", 1)[1].split("?")[0])


def alerted(db, request_id):
    """Who was alerted to the request, nearest first."""
    return [r["user_id"] for r in db.query("SELECT user_id FROM alerts WHERE request_id = ? ORDER BY distance_m", [request_id])]


def events(db, request_id):
    """The request's timeline, as event names in order."""
    return [r["event"] for r in db.query("SELECT event FROM request_events WHERE request_id = ? ORDER BY id", [request_id])]


def past_request(db, requester, created, where, state, events=(), **columns):
    """A request as the flow leaves it at a past time, with its timeline: `events` are (event, seconds after).

    Written in SQL: the state machine writes only at the clock's now, and the
    program's figures are counted over requests made on set days. `where` is a
    name in DISTRICTS, or None for a typed location.
    """
    lat, lon = DISTRICTS[where] if where else (None, None)
    request_id = db["cit_requests"].insert(
        {"requester_id": requester, "state": state, "created_at": created, "updated_at": created, "lat": lat, "lon": lon,
         "location_text": "" if where else "Typed: behind the invented library", "policy": json.dumps({}), **columns}
    ).last_pk
    db["request_events"].insert({"request_id": request_id, "at": created, "event": "requested"})
    for event, after in events:
        db["request_events"].insert({"request_id": request_id, "at": created + after, "event": event})
    return request_id


def snapshot(db):
    """Every row a request action could change: to check that a refused one changed nothing."""
    return [list(db.query(f"SELECT * FROM {t} ORDER BY id")) for t in ("cit_requests", "request_events", "alerts", "outbox")]


# ---- Browser ----


def wait_until(page, script, arg=None, timeout_s=15):
    """Poll `script` in the page until it is truthy, awaiting it if it is a promise.

    Playwright's wait_for_function takes a returned promise itself as the truthy
    answer and stops at once, so anything asynchronous (caches, the service
    worker) is polled here instead.
    """
    deadline = monotonic() + timeout_s
    while True:
        value = page.evaluate(script, arg)
        if value:
            return value
        if monotonic() > deadline:
            raise AssertionError(f"still false after {timeout_s} s: {script}")
        page.wait_for_timeout(100)


def sign_in(page, base_url, username, password=PASSWORD, lands_on="/"):
    """Fill the sign-in form like a person would; `lands_on` is the role's first page."""
    page.goto(base_url + "/login")
    page.get_by_label("Username").fill(username)
    page.get_by_label("Password").fill(password)
    page.get_by_role("button", name="Sign in", exact=True).click()
    page.wait_for_url(base_url + lands_on)


def wait_for_offline_copy(page, path):
    """Wait until the service worker has saved `path` for offline use."""
    wait_until(
        page,
        "path => caches.keys().then(keys => Promise.all(keys.map(k => caches.open(k).then(c => c.match(path)))))"
        ".then(hits => hits.some(Boolean))",
        path,
    )


def deliver_push(context, page, base_url, payload):
    """Hand a decrypted push to the service worker of `page`'s origin through CDP, as the browser would."""
    import json

    cdp = context.new_cdp_session(page)
    registrations = []
    cdp.on("ServiceWorker.workerRegistrationUpdated", lambda e: registrations.extend(e["registrations"]))
    cdp.send("ServiceWorker.enable")
    ours = lambda: sorted({r["registrationId"] for r in registrations  # noqa: E731
                           if r["scopeURL"] == base_url + "/" and not r["isDeleted"]})
    for _ in range(150):  # CDP reports the registration as an event, soon after enable
        if ours():
            break
        page.wait_for_timeout(100)
    [registration_id] = ours()
    cdp.send("ServiceWorker.deliverPushMessage", {"origin": base_url, "registrationId": registration_id,
                                                  "data": json.dumps(payload)})
    cdp.detach()


# ---- The program's figures ----

# Invented districts; the coordinates are Memphis, where CIT began.
DISTRICTS = {"North": (35.2000, -90.0300), "Central": (35.1495, -90.0490), "South": (35.0700, -90.0200)}


def local(*parts):
    """A timestamp for a local date and time, as the reports read them."""
    import datetime

    return datetime.datetime(*parts).timestamp()
