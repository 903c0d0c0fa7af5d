"""Running it for real: failing closed, one-line command errors, private files, health, metrics and logs."""
import getpass
import importlib.metadata
import json
import os
import re
import sqlite3
import stat
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest
from prometheus_client.parser import text_string_to_metric_families

from fieldapp import create_app
from fieldapp.ops.at_rest import create_key
from tests.helpers import SCENE, offset

FLASK = str(Path(sys.executable).parent / "flask")
REPO = Path(__file__).resolve().parents[1]
# Cards an agency has filled in: the shipped set warns about its unfilled one on every start.
FILLED_CONTENT = str(Path(__file__).parent / "content_fixtures" / "good")


def run_flask(tmp_path, *args, instance=None, database=None, **env):
    """`flask --app fieldapp ARGS` as an administrator would type it, in a folder of its own."""
    # PYTHONPATH: the code of this checkout, whichever one the virtualenv was installed from.
    environ = {"PATH": os.environ["PATH"], "HOME": str(tmp_path), "LANG": "C.UTF-8", "PYTHONPATH": str(REPO),
               "FIELDAPP_INSTANCE_PATH": str(instance or tmp_path / "instance"),
               "FIELDAPP_DATABASE": str(database or tmp_path / "instance" / "fieldapp.db"),
               "FIELDAPP_CONTENT_DIR": FILLED_CONTENT, **env}
    if "PYTHONPATH" in os.environ:  # a checkout run from outside the venv's own install
        environ["PYTHONPATH"] = os.environ["PYTHONPATH"]
    return subprocess.run([FLASK, "--app", "fieldapp", *args], cwd=tmp_path, env=environ,
                          capture_output=True, text=True, timeout=60)


def assert_one_line_error(result, *words):
    """Refused: a non-zero exit and one line on stderr that says what is wrong, no traceback."""
    assert result.returncode != 0, result.stdout
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert "Traceback" not in result.stderr
    for word in words:
        assert word in lines[0], lines[0]


def mode(path):
    return stat.S_IMODE(os.stat(path).st_mode)


@pytest.fixture
def instance(tmp_path):
    """A real instance made the documented way: `migrate --create`."""
    result = run_flask(tmp_path, "migrate", "--create")
    assert result.returncode == 0, result.stderr
    return tmp_path / "instance"


# ---- failing closed ----


def test_migrate_without_create_makes_no_database(tmp_path):
    result = run_flask(tmp_path, "migrate")
    assert_one_line_error(result, "no instance folder", "migrate --create")
    assert not (tmp_path / "instance").exists()


def test_migrate_without_create_refuses_a_missing_database_in_a_real_folder(tmp_path):
    (tmp_path / "instance").mkdir()
    result = run_flask(tmp_path, "migrate")
    assert_one_line_error(result, "no database", "migrate --create")
    assert not (tmp_path / "instance" / "fieldapp.db").exists()


def test_migrate_create_makes_private_files_and_folders(tmp_path, instance):
    assert mode(instance) == 0o700
    assert mode(instance / "fieldapp.db") == 0o600
    assert run_flask(tmp_path, "vapid", "show").returncode == 0  # makes the secret key and VAPID keys
    assert mode(instance / "secret_key") == 0o600
    assert mode(instance / "vapid_private.pem") == 0o600
    # The WAL and shared-memory files exist while a connection is open; SQLite gives them the database's mode.
    conn = sqlite3.connect(instance / "fieldapp.db")
    conn.execute("INSERT INTO worker_heartbeats VALUES ('probe', 0)")
    conn.commit()
    try:
        assert mode(instance / "fieldapp.db-wal") == 0o600
        assert mode(instance / "fieldapp.db-shm") == 0o600
    finally:
        conn.close()


def test_a_backup_is_private_encrypted_and_audited_with_the_os_user(tmp_path, instance):
    (tmp_path / "backups").mkdir()
    assert run_flask(tmp_path, "backup-key", "create").returncode == 0
    assert mode(instance / "backup.key") == 0o600
    result = run_flask(tmp_path, "backup", str(tmp_path / "backups" / "nightly.db"))
    assert result.returncode == 0, result.stderr
    assert mode(tmp_path / "backups" / "nightly.db") == 0o600
    assert (tmp_path / "backups" / "nightly.db").read_bytes().startswith(b"age-encryption.org/v1\n")
    assert os.listdir(tmp_path / "backups") == ["nightly.db"]  # no plain copy left beside it
    [row] = sqlite3.connect(instance / "fieldapp.db").execute("SELECT actor_name FROM audit_log WHERE action = 'backup'")
    assert row[0] == f"cli:{getpass.getuser()}"


def test_backup_without_a_real_instance_makes_nothing(tmp_path):
    """SECURITY.md's backup line run without the instance path once made a new secret key and an empty "backup"."""
    (tmp_path / "backups").mkdir()
    result = run_flask(tmp_path, "backup", str(tmp_path / "backups" / "nightly.db"), instance=tmp_path / "nowhere")
    assert_one_line_error(result, "no instance folder", "FIELDAPP_INSTANCE_PATH")
    assert not (tmp_path / "nowhere").exists()
    assert not (tmp_path / "backups" / "nightly.db").exists()


def test_backup_without_the_backup_key_is_one_line_and_makes_nothing(tmp_path, instance):
    (tmp_path / "backups").mkdir()
    result = run_flask(tmp_path, "backup", str(tmp_path / "backups" / "nightly.db"))
    assert_one_line_error(result, "no backup key", "backup-key create")
    assert os.listdir(tmp_path / "backups") == []


def test_backup_into_a_missing_folder_is_one_line(tmp_path, instance):
    create_key(instance / "backup.key")
    result = run_flask(tmp_path, "backup", str(tmp_path / "no-such-folder" / "nightly.db"))
    assert_one_line_error(result, "does not exist")


def test_backup_to_a_path_that_cannot_be_written_is_one_line(tmp_path, instance):
    create_key(instance / "backup.key")
    result = run_flask(tmp_path, "backup", "/proc/fieldapp-backup.db")
    assert_one_line_error(result, "Cannot write /proc/fieldapp-backup.db")


@pytest.mark.parametrize("command", [("worker", "--once"), ("users", "list"), ("purge",), ("seed-demo",)])
def test_every_command_refuses_a_missing_database(tmp_path, command):
    (tmp_path / "instance").mkdir()
    result = run_flask(tmp_path, *command)
    assert_one_line_error(result, "no database")
    assert not (tmp_path / "instance" / "fieldapp.db").exists()


@pytest.mark.parametrize("setting, value", [("ESCALATE_AFTER_S", "soon"), ("ALERT_K", "-1"), ("VAPID_SUBJECT", "cit@example.org")])
def test_a_bad_setting_is_one_line(tmp_path, instance, setting, value):
    result = run_flask(tmp_path, "worker", "--once", **{f"FIELDAPP_{setting}": value})
    assert_one_line_error(result, setting)


def test_the_web_app_will_not_start_on_a_missing_database(tmp_path):
    """gunicorn's create_app(): one line and exit status 4, which gunicorn's arbiter takes as "do not retry"."""
    (tmp_path / "instance").mkdir()
    result = subprocess.run(
        [sys.executable, "-c", "from fieldapp import create_app; create_app()"], cwd=tmp_path, capture_output=True,
        text=True, timeout=60, env={"PATH": os.environ["PATH"], "PYTHONPATH": str(REPO),
                                    "FIELDAPP_INSTANCE_PATH": str(tmp_path / "instance"), "FIELDAPP_CONTENT_DIR": FILLED_CONTENT})
    assert result.returncode == 4
    assert_one_line_error(result, "no database")
    assert not (tmp_path / "instance" / "fieldapp.db").exists()


@pytest.fixture
def behind_by_one_migration(app_config):
    """The database as the previous release left it: m015_health not applied yet."""
    conn = sqlite3.connect(app_config["DATABASE"])
    conn.execute("DELETE FROM _sqlite_migrations WHERE name = 'm015_health'")
    conn.commit()
    conn.close()
    return app_config


def test_a_pending_migration_is_503_and_one_log_line_not_500s(behind_by_one_migration, capsys):
    app = create_app(behind_by_one_migration)
    logged = capsys.readouterr().err
    assert "needs `flask --app fieldapp migrate`" in logged and "m015_health" in logged
    client = app.test_client()
    assert client.get("/login").status_code == 503
    assert client.get("/").status_code == 503
    ready = client.get("/readyz")
    assert ready.status_code == 503
    assert ready.json["checks"]["schema"] == {"ok": False, "pending": ["m015_health"]}
    assert client.get("/healthz").status_code == 200


# ---- readiness ----


def ready(client):
    response = client.get("/readyz")
    return response.status_code, {name: check["ok"] for name, check in response.json["checks"].items()}


def test_ready_on_a_fresh_database_once_a_worker_has_reported(client, worker):
    assert ready(client) == (503, {"database": True, "schema": True, "worker": False, "outbox": True, "escalations": True})
    worker.run_once()
    assert ready(client) == (200, {"database": True, "schema": True, "worker": True, "outbox": True, "escalations": True})


def test_a_stale_worker_heartbeat_is_503(app, client, worker, clock):
    worker.run_once()
    clock.advance(app.config["WORKER_STALE_S"] + 1)
    status, checks = ready(client)
    assert status == 503 and checks["worker"] is False
    worker.run_once()
    assert ready(client)[0] == 200


@pytest.fixture
def patient_worker_check(app_config):
    """Readiness that tolerates an idle worker for ten minutes, so only the queue is judged."""
    app_config["WORKER_STALE_S"] = 600
    return app_config


def test_an_old_pending_push_and_a_late_escalation_are_503(patient_worker_check, app, client, worker, clock, specialist, officer):
    specialist("near", offset(1000))
    worker.run_once()
    client.post("/requests", data={"lat": SCENE[0], "lon": SCENE[1], "accuracy": 12})
    clock.advance(app.config["OUTBOX_STALE_S"] + 1)  # nothing sent the alert in time
    status, checks = ready(client)
    assert status == 503 and checks["outbox"] is False and checks["escalations"] is True
    clock.advance(app.config["ESCALATION_LATE_S"] + 1)  # and the 60-s escalation is now overdue
    assert ready(client)[1]["escalations"] is False
    worker.run_once()
    assert ready(client) == (200, {"database": True, "schema": True, "worker": True, "outbox": True, "escalations": True})


# ---- metrics ----


def scrape(client, **kwargs):
    response = client.get("/metrics", **kwargs)
    assert response.status_code == 200, response.status_code
    return {(s.name, tuple(sorted(s.labels.items()))): s.value
            for family in text_string_to_metric_families(response.get_data(as_text=True)) for s in family.samples}


def test_a_failed_push_moves_the_push_metric(client, worker, specialist, officer, push_service):
    specialist("near", offset(1000))
    before = scrape(client)
    assert ("fieldapp_push_attempts_total", (("outcome", "push_service_error"),)) not in before
    push_service.default_status = 500
    client.post("/requests", data={"lat": SCENE[0], "lon": SCENE[1], "accuracy": 12})
    worker.run_once()
    after = scrape(client)
    assert after[("fieldapp_push_attempts_total", (("outcome", "push_service_error"),))] == 1
    assert after[("fieldapp_outbox_pending", ())] == 1  # kept for a retry


def test_sign_in_failures_and_lock_outs_are_counted(app, client, make_user):
    make_user("ofc.lee")
    for n in range(app.config["LOGIN_MAX_FAILURES"]):  # from several addresses, past the per-address limit
        client.post("/login", data={"username": "ofc.lee", "password": "not the password at all"},
                    environ_base={"REMOTE_ADDR": f"198.51.100.{n + 1}"})
    figures = scrape(client)
    assert figures[("fieldapp_signin_failures_total", ())] == app.config["LOGIN_MAX_FAILURES"]
    assert figures[("fieldapp_lockouts_total", ())] == 1
    assert figures[("fieldapp_accounts_locked", ())] == 1


def test_a_backup_channel_that_fails_is_counted(app_config, client):
    app_config["APPRISE_URLS"] = "json://127.0.0.1:9/alerts"  # the discard port: nothing takes it
    app = create_app(app_config)
    from fieldapp.delivery import backup_channel

    with app.app_context():
        assert backup_channel.send_to_agency("CIT request #1 not accepted", "Open fieldapp.") is False
    figures = scrape(app.test_client())
    assert figures[("fieldapp_backup_channel_failures_total", ())] == 1


def test_metrics_are_refused_to_the_network_and_through_a_proxy(app_config):
    app_config["METRICS_TOKEN"] = "a-long-random-metrics-token"
    client = create_app(app_config).test_client()
    remote = {"REMOTE_ADDR": "203.0.113.5"}
    assert client.get("/metrics", environ_base=remote).status_code == 403
    assert client.get("/metrics", headers={"X-Forwarded-For": "203.0.113.5"}).status_code == 403
    assert client.get("/metrics", environ_base=remote, headers={"Authorization": "Bearer wrong"}).status_code == 403
    scrape(client, environ_base=remote, headers={"Authorization": "Bearer a-long-random-metrics-token"})


# ---- logs ----


def json_lines(text):
    return [json.loads(line) for line in text.splitlines() if line.strip()]


def test_worker_logs_are_json_with_every_step_and_no_names_or_notes(client, worker, clock, specialist, officer, capsys):
    specialist("near", offset(1000))
    specialist("far", offset(9000))
    client.post("/requests", data={"lat": SCENE[0], "lon": SCENE[1], "accuracy": 12,
                                   "note": "Dana Whitfield, talking about the bridge", "location_text": "12 Elm Street"})
    worker.run_once()
    clock.advance(61)
    worker.run_once()
    worker.run_once()
    lines = json_lines(capsys.readouterr().err)
    events = [(line.get("event"), line.get("outcome") or line.get("action") or line.get("step")) for line in lines]
    assert ("push", "sent") in events
    assert ("escalation", 1) in events
    assert ("audit", "request_requested") in events  # audit events reach the log stream too
    worker_text = json.dumps([line for line in lines if line["logger"] == "fieldapp.worker"])
    for private in ("Dana", "Whitfield", "bridge", "Elm", "Near (CIT)", "Kim Lee", "ofc.lee"):
        assert private not in worker_text


def test_the_audit_page_shows_the_client_address(app, make_user, login):
    make_user("coord.one", "coordinator")
    page = login("coord.one").get("/audit").get_data(as_text=True)
    assert "<th scope=\"col\">IP address</th>" in page
    assert "127.0.0.1" in page


def test_healthz_says_alive_and_which_release(client):
    assert client.get("/healthz").json == {"status": "alive", "version": importlib.metadata.version("fieldapp")}


# ---- the release ----


def test_the_version_command_prints_the_installed_release_without_an_instance(tmp_path):
    result = run_flask(tmp_path, "version")
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == importlib.metadata.version("fieldapp")
    assert not (tmp_path / "instance").exists()


def test_coordinators_see_the_release_in_the_footer_and_no_one_else_does(make_user, login):
    footer = "fieldapp " + importlib.metadata.version("fieldapp")
    make_user("coord.one", "coordinator")
    make_user("ofc.one", "officer")
    assert footer in login("coord.one").get("/program/roster").get_data(as_text=True)
    assert footer not in login("ofc.one").get("/").get_data(as_text=True)


def test_the_newest_release_in_the_changelog_is_the_version_and_unreleased_stands_above_it():
    version = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["version"]
    headings = re.findall(r"^## (.+)$", (REPO / "CHANGELOG.md").read_text(), re.M)
    assert headings[0] == "Unreleased"
    assert re.fullmatch(rf"{re.escape(version)} — \d{{4}}-\d{{2}}-\d{{2}}", headings[1]), headings[1]


def test_migrate_explains_create_in_its_help(tmp_path):
    result = run_flask(tmp_path, "migrate", "--help")
    assert result.returncode == 0 and "--create" in result.stdout
