"""Shared fixtures: an app on a fresh database per test, accounts, a movable clock,
the stand-in push service, specialists on duty, a worker to run by hand, and the test maps."""
import base64
import json
import shutil
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
import requests

from fieldapp import create_app
from fieldapp.districts import save_centre
from fieldapp.store.db import connect, migrate
from fieldapp.delivery.push import application_server_key
from fieldapp.ops.worker import Worker
from tests.oidc_provider import Browser, LoopbackOpenIDProvider
from tests.helpers import (DISTRICTS, PASSWORD, FakeClock, add_specialist, add_user, local, new_instance, run_flask,
                           signed_in)
from tests.push_service import StandInPushService


@pytest.fixture
def clock():
    return FakeClock()


@pytest.fixture
def app_config(tmp_path, clock, migrated):
    """The test config, on an instance folder and a database made as `migrate --create` would
    (a copy of one database migrated for the run). Tests may change it before asking for `app`.
    """
    return new_instance(tmp_path, clock, migrated)


@pytest.fixture(scope="session")
def migrated(tmp_path_factory):
    """A database with every migration applied, made once for the run."""
    path = tmp_path_factory.mktemp("migrated") / "test.db"
    conn = connect(str(path))
    migrate(conn)
    conn.close()
    return path


@pytest.fixture
def app(app_config):
    return create_app(app_config)


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
    return lambda username, role="officer", **fields: add_user(app, db, username, role, **fields)


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
    return lambda username: signed_in(app, username)


@pytest.fixture
def flask_command(tmp_path):
    """`flask --app fieldapp ARGS` as an administrator types it, on the instance tmp_path/instance."""
    return lambda *args, **env: run_flask(tmp_path, *args, **env)


@pytest.fixture
def push_service():
    """The stand-in push service, one per test."""
    service = StandInPushService()
    yield service
    service.close()


WEB_PUSH = Path(__file__).parent / "webpush"


@pytest.fixture(scope="session")
def web_push_reference():
    """npm web-push's request for a push: web_push_reference(subscription, payload, vapid, subject, **options).

    tests/webpush is installed by `make install-test` (and .ci/run), never by a test.
    """
    if not (WEB_PUSH / "node_modules" / "web-push").exists():
        pytest.fail("npm web-push is not installed in tests/webpush: run `make install-test`")

    def request(subscription, payload, vapid, subject, **options):
        private = vapid.private_key.private_numbers().private_value.to_bytes(32, "big")
        keys = {"subject": subject, "publicKey": application_server_key(vapid),
                "privateKey": base64.urlsafe_b64encode(private).rstrip(b"=").decode()}
        job = {"subscription": subscription, "payload": payload, "options": {"vapidDetails": keys, **options}}
        done = subprocess.run(["node", str(WEB_PUSH / "request.mjs")], input=json.dumps(job), capture_output=True,
                              text=True, timeout=30, check=True)
        return json.loads(done.stdout)

    return request


@pytest.fixture(scope="session")
def s3_server():
    """moto's S3 server on loopback, one for the test session: its endpoint URL (buckets are the tests')."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    moto = Path(sys.executable).parent / "moto_server"
    if not moto.exists():
        pytest.fail("moto's S3 server is not installed: run `make install-test` (the test extra)")
    process = subprocess.Popen([str(moto), "-H", "127.0.0.1", "-p", str(port)], stdout=subprocess.DEVNULL,
                               stderr=subprocess.DEVNULL)
    endpoint = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while True:
        try:
            requests.get(endpoint, timeout=2)
            break
        except requests.ConnectionError:
            if time.monotonic() > deadline or process.poll() is not None:
                process.kill()
                raise RuntimeError("moto's S3 server did not start") from None
            time.sleep(0.1)
    yield endpoint
    process.terminate()
    process.wait(timeout=10)


@pytest.fixture(scope="session")
def oidc_provider():
    """A real OpenID provider (oidc-provider, Node) on loopback, one for the test session."""
    provider = LoopbackOpenIDProvider()
    yield provider
    provider.close()


@pytest.fixture
def browser_at_idp(client):
    """The test client as a person's browser that also visits the provider."""
    return Browser(client)


@pytest.fixture
def specialist(app, db, push_service):
    """A CIT specialist on duty at `position` with a device subscribed to the stand-in service:
    specialist('near', offset(1000)) -> user id."""
    return lambda username, *args, **kwargs: add_specialist(app, db, push_service, username, *args, **kwargs)


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
        return _closed_when_done(self.wsgi_app(environ, start_response))


def _closed_when_done(body):
    """The response's body, closed as soon as it has all been sent.

    werkzeug's development server closes a body only after draining the socket,
    and a browser that resets the connection then (a context closing) makes that
    drain raise first: a static file's handle was left to the garbage collector,
    whose ResourceWarning failed whichever test was running.
    """
    try:
        yield from body
    finally:
        if hasattr(body, "close"):
            body.close()


@pytest.fixture
def live_server(app_config):
    """The app served on 127.0.0.1 with its in-process worker, on the real clock."""
    import time as _time

    from werkzeug.serving import make_server

    config = dict(app_config, CLOCK=_time.time, WORKER_IN_PROCESS=True, WORKER_POLL_S=0.1, WTF_CSRF_ENABLED=True)
    app = create_app(config)  # on the database app_config made, before the worker reads the tables
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
def localhost_server(live_server):
    """The live server under the name localhost: WebAuthn refuses an IP address as a relying party."""
    live_server.base_url = live_server.base_url.replace("127.0.0.1", "localhost")
    live_server.config.update(WEBAUTHN_RP_ID="localhost", WEBAUTHN_ORIGIN=live_server.base_url)
    return live_server


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


@pytest.fixture
def webhook_receiver():
    """A CAD's webhook endpoint on loopback: keeps each delivery's headers and body; `answer` sets the status."""
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

    received, statuses = [], []
    arrived = threading.Condition()

    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args):
            pass

        def do_POST(self):
            body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
            status = statuses.pop(0) if statuses else 204
            self.send_response(status)
            self.send_header("Content-Length", "0")
            self.end_headers()
            with arrived:
                received.append((dict(self.headers), body, status))
                arrived.notify_all()

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True).start()
    server.url = f"http://127.0.0.1:{server.server_port}/cad/hooks"
    server.received = received
    server.answer = lambda *codes: statuses.extend(codes)

    def wait_for(count, timeout=10.0):
        with arrived:
            arrived.wait_for(lambda: len(received) >= count, timeout)
        return received[:count]

    server.wait_for = wait_for
    yield server
    server.shutdown()
    server.server_close()


@pytest.fixture
def on_roster(app, db, make_user):
    """Put a CIT specialist on the roster: on_roster('dana', course='2025-01-10', ...) -> user id."""
    from fieldapp.program import roster

    def add(username, course=None, inservice=(), districts="", shifts="", active=1, user_id=None, **fields):
        user_id = user_id or make_user(username, "cit", display_name=f"Ofc. {username.title()}")
        values = {"volunteered_on": None, "supervisor_recommendation": "", "interview_notes": "",
                  "course_completed_on": course, "inservice_dates": list(inservice),
                  "districts": [d for d in districts.split(";") if d], "shifts": [s for s in shifts.split(";") if s],
                  "active": active} | fields
        with app.app_context():
            roster.save_roster(db, user_id, values)
        return user_id

    return add


# ---- The program's figures ----


@pytest.fixture
def midday(clock):
    """Thursday 28 May 2026 at noon, server time: the day shift, the day the program's tests read their figures."""
    clock.t = local(2026, 5, 28, 12, 0)


@pytest.fixture
def districts(db):
    """The three invented districts of `helpers.DISTRICTS` (a test module may define districts of its own)."""
    for name, (lat, lon) in DISTRICTS.items():
        save_centre(db, name, lat, lon)


@pytest.fixture
def supervisor(make_user, login, districts):
    """A signed-in supervisor, Sgt. Pat Okoro."""
    make_user("sgt.okoro", "supervisor", display_name="Sgt. Pat Okoro")
    return login("sgt.okoro")


# ---- The map (fieldapp/maps) ----

MAP_FIXTURES = Path(__file__).parent / "fixtures" / "maps"
DEMO_EXTRACT = Path(__file__).parent.parent / "fieldapp" / "maps" / "demo" / "helsinki.osm.pbf"


def _built_map(tmp_path_factory, extract, address_format=None):
    """A map folder built once for the run from `extract` (tippecanoe takes about a second)."""
    from fieldapp.maps.imports import import_extract

    folder = tmp_path_factory.mktemp("map")
    import_extract(folder, extract, address_format, echo=lambda *_: None)
    return folder


def _install_map(built, app_config):
    """Copy a built map into the test's instance folder, where the app looks for it."""
    folder = Path(app_config["INSTANCE_PATH"]) / "map"
    folder.mkdir(exist_ok=True)
    for name in ("basemap.pmtiles", "addresses.db"):
        shutil.copyfile(built / name, folder / name)
    return folder


@pytest.fixture(scope="session")
def built_town_map(tmp_path_factory):
    return _built_map(tmp_path_factory, MAP_FIXTURES / "town.osm")


@pytest.fixture(scope="session")
def built_helsinki_map(tmp_path_factory):
    return _built_map(tmp_path_factory, DEMO_EXTRACT, "{street} {housenumber}")


@pytest.fixture
def town_map(built_town_map, app_config):
    """The invented town of tests/fixtures/maps/town.osm around SCENE, as the app's live map; returns its folder."""
    return _install_map(built_town_map, app_config)


@pytest.fixture
def helsinki_map(built_helsinki_map, app_config):
    """The demo's central Helsinki (real OpenStreetMap data) as the app's live map; returns its folder."""
    return _install_map(built_helsinki_map, app_config)


@pytest.fixture
def agency_dir(tmp_path, app_config):
    """An agency content folder holding its own version of `calm-voice` (a test may rewrite it), set before the app starts."""
    folder = tmp_path / "agency"
    folder.mkdir()
    (folder / "calm-voice.md").write_text((Path(__file__).parent / "content_fixtures" / "good" / "calm-voice.md").read_text())
    app_config["CONTENT_DIRS"] = str(folder)
    return folder
