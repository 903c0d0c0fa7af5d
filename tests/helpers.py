"""Plain helpers the tests share: a password, a scene and points around it, the
officer's one tap, what a request left in the database, and browser waits.

Fixtures live in conftest.py; anything a test calls directly lives here, so no
test module imports from another."""
import math
from time import monotonic

PASSWORD = "correct horse battery"

# An invented downtown and points at known distances from it.
SCENE = (35.1495, -90.0490)


def offset(metres_north, metres_east=0.0, origin=SCENE):
    """A point this many metres north and east of `origin` (small-distance approximation)."""
    lat = origin[0] + metres_north / 111_195.0
    lon = origin[1] + metres_east / (111_195.0 * math.cos(math.radians(origin[0])))
    return lat, lon


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


def sign_in(page, base_url, username, password=PASSWORD):
    """Fill the sign-in form like a person would."""
    page.goto(base_url + "/login")
    page.get_by_label("Username").fill(username)
    page.get_by_label("Password").fill(password)
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_url(base_url + "/")


def wait_for_offline_copy(page, path):
    """Wait until the service worker has saved `path` for offline use."""
    wait_until(
        page,
        "path => caches.keys().then(keys => Promise.all(keys.map(k => caches.open(k).then(c => c.match(path)))))"
        ".then(hits => hits.some(Boolean))",
        path,
    )
