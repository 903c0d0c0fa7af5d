"""Shared fixtures: an app on a fresh database per test, accounts, a movable clock."""
import pytest

from fieldapp import create_app
from fieldapp.auth import create_user
from fieldapp.db import connect, migrate

PASSWORD = "correct horse battery"


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
