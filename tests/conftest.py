"""Shared fixtures: an app on a fresh database per test, accounts, a movable clock,
the stand-in push service, specialists on duty, and a worker to run by hand."""
import socket
import threading

import pytest

from fieldapp import create_app
from fieldapp.auth import create_user
from fieldapp.db import connect, migrate
from fieldapp.duty import go_on_duty, record_position
from fieldapp.worker import Worker
from tests.helpers import PASSWORD, SCENE
from tests.push_service import StandInPushService


class FakeClock:
    """A clock that only moves when a test moves it."""

    def __init__(self, start=1_780_000_000.0):
        self.t = start

    def __call__(self):
        return self.t

    def advance(self, seconds):
        self.t += seconds


@pytest.fixture
def clock():
    return FakeClock()


@pytest.fixture
def app_config(tmp_path, clock):
    """The test config; tests may change it before asking for `app`."""
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
    }


@pytest.fixture
def app(app_config):
    app = create_app(app_config)
    migrate(connect(app.config["DATABASE"]))
    return app


@pytest.fixture
def db(app):
    """A connection to the test database, outside any request."""
    conn = connect(app.config["DATABASE"])
    yield conn
    conn.close()


@pytest.fixture
def client(app):
    return app.test_client()


@pytest.fixture
def make_user(app, db):
    """Create an account: make_user('dana', 'cit') -> user id."""

    def make(username, role="officer", **fields):
        with app.app_context():
            return create_user(db, username, PASSWORD, role, fields.pop("display_name", None), **fields)

    return make


class Auth:
    def __init__(self, client):
        self.client = client

    def login(self, username, password=PASSWORD):
        return self.client.post("/login", data={"username": username, "password": password})

    def logout(self):
        return self.client.post("/logout")


@pytest.fixture
def auth(client):
    return Auth(client)


@pytest.fixture
def officer(make_user, auth):
    """A signed-in generalist officer."""
    user_id = make_user("ofc.lee", "officer", display_name="Ofc. Kim Lee", unit="1-Adam-12")
    auth.login("ofc.lee")
    return user_id


@pytest.fixture
def login(app):
    """A new test client signed in as `username`: each person gets their own."""

    def sign_in(username):
        client = app.test_client()
        response = client.post("/login", data={"username": username, "password": PASSWORD})
        assert response.status_code == 302, f"could not sign in {username}"
        return client

    return sign_in


@pytest.fixture
def push_service():
    """The stand-in push service, one per test."""
    service = StandInPushService()
    yield service
    service.close()


@pytest.fixture
def specialist(app, db, make_user, push_service):
    """A CIT specialist on duty at `position` with a device subscribed to the stand-in service."""

    def make(username, position=None, district=None, devices=1, on_duty=True):
        user_id = make_user(username, "cit", display_name=f"Ofc. {username.title()} (CIT)", unit=f"CIT-{username}", phone="555-0199")
        with app.app_context():
            if district:
                db["districts"].insert({"name": district, "lat": SCENE[0], "lon": SCENE[1]}, pk="name", replace=True)
            if on_duty:
                go_on_duty(db, user_id, district)
            if position:
                record_position(db, user_id, position[0], position[1], 10.0, "device")
        for _ in range(devices):
            sub = push_service.new_subscription()
            db.execute(
                "INSERT INTO push_subscriptions (user_id, endpoint, p256dh, auth, created_at) VALUES (?, ?, ?, ?, 0)",
                [user_id, sub["endpoint"], sub["keys"]["p256dh"], sub["keys"]["auth"]],
            )
        return user_id

    return make


@pytest.fixture
def worker(app):
    """A worker the test runs by hand with `worker.run_once()`."""
    return Worker(app, name="test-worker")


# ---- Browser tests: a real server in a thread and Debian's Chromium ----

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--headless=new", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
]


@pytest.fixture(scope="session")
def browser():
    """One Chromium for the whole run; each test gets fresh contexts."""
    from playwright.sync_api import expect, sync_playwright

    # These machines are shared: give live updates (4–5 s polls) room on a busy core.
    expect.set_options(timeout=15_000)
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
        yield browser
        browser.close()


class NetworkSwitch:
    """WSGI middleware that, while `down`, drops every connection unanswered.

    `context.set_offline(True)` does not always cover what a service worker
    sends on its own (Background Sync), so a test that means "no signal" also
    takes the network down here, where every request has to pass.
    """

    def __init__(self, wsgi_app):
        self.wsgi_app = wsgi_app
        self.down = False

    def __call__(self, environ, start_response):
        if self.down and "werkzeug.socket" in environ:
            environ["werkzeug.socket"].shutdown(socket.SHUT_RDWR)
            start_response("503 Service Unavailable", [("Content-Length", "0")])
            return [b""]
        return self.wsgi_app(environ, start_response)


@pytest.fixture
def live_server(app_config):
    """The app served on 127.0.0.1 with its in-process worker, on the real clock."""
    import time as _time

    from werkzeug.serving import make_server

    config = dict(app_config, CLOCK=_time.time, WORKER_IN_PROCESS=True, WORKER_POLL_S=0.1, WTF_CSRF_ENABLED=True)
    migrate(connect(config["DATABASE"]))  # before the app starts its worker, which reads the tables
    app = create_app(config)
    app.network = NetworkSwitch(app.wsgi_app)
    app.wsgi_app = app.network
    server = make_server("127.0.0.1", 0, app, threaded=True)
    # A short poll so shutdown() returns at once (the default waits up to 0.5 s).
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True)
    thread.start()
    app.base_url = f"http://127.0.0.1:{server.server_port}"
    yield app
    app.extensions["fieldapp.worker_stop"].set()
    app.extensions["fieldapp.worker_wake"].set()
    server.shutdown()
    server.server_close()


@pytest.fixture
def json_receiver():
    """A local HTTP endpoint for Apprise's json:// backup channel; collects what it is sent."""
    import json as _json
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

    received = []

    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args):
            pass

        def do_POST(self):
            received.append(_json.loads(self.rfile.read(int(self.headers.get("Content-Length", 0)))))
            self.send_response(200)
            self.send_header("Content-Length", "0")
            self.end_headers()

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True).start()
    server.url = f"json://127.0.0.1:{server.server_port}/alerts"
    server.received = received
    yield server
    server.shutdown()
    server.server_close()
