"""Upgrading: every row from the first released schema comes through, the CHANGELOG's warnings are shown,
a failed migration changes nothing, and a kill -9 mid-way leaves the database as before or fully migrated."""
import os
import shutil
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest
from werkzeug.security import check_password_hash

from fieldapp.ops.at_rest import create_key, decrypt_backup, load_identity
from fieldapp.store.db import connect
from fieldapp.store.migrations import migrations
from fieldapp.ops.upgrade import CHANGELOG, before_you_upgrade
from tests.helpers import run_flask

FIXTURE = Path(__file__).parent / "fixtures" / "m001_accounts.sql"
M001_COLUMNS = ("id", "username", "display_name", "role", "password_hash", "unit", "phone", "disabled",
                "created_at", "failed_logins", "locked_until")
EVERY_MIGRATION = [m.name for m in migrations.pending(connect(":memory:"))]


def database_at(path, last):
    """A database migrated up to and including the migration `last`, as that release left it."""
    db = connect(path)
    db.enable_wal()
    migrations.apply(db, stop_before=EVERY_MIGRATION[EVERY_MIGRATION.index(last) + 1:])
    return db


def applied(path):
    conn = sqlite3.connect(path)
    try:
        return [row[0] for row in conn.execute("SELECT name FROM _sqlite_migrations ORDER BY id")]
    finally:
        conn.close()


def dump(path):
    conn = sqlite3.connect(path)
    try:
        return list(conn.iterdump())
    finally:
        conn.close()


def first_release_instance(folder):
    """An instance whose database is at m001, filled from the fixture written at that schema; its rows."""
    (folder / "instance").mkdir(mode=0o700)
    db = database_at(folder / "instance" / "fieldapp.db", "m001_accounts")
    db.executescript(FIXTURE.read_text())
    rows = [dict(zip(M001_COLUMNS, row)) for row in db.execute(f"SELECT {', '.join(M001_COLUMNS)} FROM users ORDER BY id")]
    db.close()
    return rows


@pytest.fixture(scope="module")
def upgraded(tmp_path_factory):
    """A first-release instance, its backup key made, upgraded once with `flask upgrade`:
    (folder, the fixture's rows, the upgrade's finished process)."""
    folder = tmp_path_factory.mktemp("first-release")
    rows = first_release_instance(folder)
    create_key(folder / "instance" / "backup.key")
    result = run_flask(folder, "upgrade", "--backup", str(folder / "before.db.age"))
    assert result.returncode == 0, result.stderr
    return folder, rows, result


def test_an_upgrade_from_the_first_release_keeps_every_row(upgraded):
    folder, before, _ = upgraded
    database = folder / "instance" / "fieldapp.db"
    assert len(before) == 6
    assert applied(database) == EVERY_MIGRATION
    db = connect(database)
    after = {row["id"]: row for row in db.query("SELECT * FROM users")}
    assert sorted(after) == [row["id"] for row in before]
    for row in before:
        upgraded_row = after[row["id"]]
        assert {column: upgraded_row[column] for column in M001_COLUMNS} == row, row["username"]
        # What later migrations added starts as a first-release account was: its own password, no e-mail.
        assert (upgraded_row["session_version"], upgraded_row["must_change_password"], upgraded_row["email"]) == (0, 0, None)
        assert check_password_hash(upgraded_row["password_hash"], "first-release passphrase")
    assert db.execute("PRAGMA foreign_key_check").fetchall() == []
    assert db.execute("PRAGMA integrity_check").fetchone()[0] == "ok"


def test_an_upgrade_shows_the_changelog_s_before_you_upgrade_lines_first(upgraded):
    output = upgraded[2].stdout
    notes = before_you_upgrade(CHANGELOG.read_text(), 0)
    assert notes, "CHANGELOG.md has no 'Before you upgrade' lines"
    for release, lines in notes:
        assert f"Before you upgrade (CHANGELOG.md, {release}):" in output
        for line in lines:
            assert line in output
    assert output.index("Before you upgrade") < output.index("Backed up to") < output.index("Migrated")


def test_an_upgrade_takes_an_encrypted_backup_of_the_database_before_it(upgraded):
    folder = upgraded[0]
    assert (folder / "before.db.age").read_bytes().startswith(b"age-encryption.org/v1\n")
    decrypt_backup(folder / "before.db.age", folder / "before.db", load_identity(folder / "instance" / "backup.key"))
    assert applied(folder / "before.db") == ["m001_accounts"]


def test_an_upgrade_runs_the_readiness_check(upgraded):
    output = upgraded[2].stdout
    assert "ok  database" in output and "ok  schema" in output
    assert "NOT worker" in output  # no worker runs during an upgrade; it says what will pass once one does


def test_a_second_upgrade_shows_only_later_releases_notes(upgraded, tmp_path):
    folder = tmp_path / "again"
    shutil.copytree(upgraded[0], folder)
    again = run_flask(folder, "upgrade")
    assert again.returncode == 0 and "0 migration(s) applied" in again.stdout
    for release, _ in before_you_upgrade(CHANGELOG.read_text(), 0):
        # Unreleased code has no number to stamp: its notes show until it is released.
        assert (f"CHANGELOG.md, {release})" in again.stdout) == (release == "Unreleased")


def test_an_upgrade_without_the_backup_key_stops_before_changing_anything(tmp_path, flask_command):
    first_release_instance(tmp_path)
    before = dump(tmp_path / "instance" / "fieldapp.db")
    result = flask_command("upgrade")
    assert result.returncode == 1 and "Traceback" not in result.stderr
    [line] = result.stderr.strip().splitlines()
    assert "no backup key" in line
    assert dump(tmp_path / "instance" / "fieldapp.db") == before


def test_a_failed_migration_leaves_the_database_as_it_was(tmp_path, flask_command):
    (tmp_path / "instance").mkdir(mode=0o700)
    database = tmp_path / "instance" / "fieldapp.db"
    db = database_at(database, "m013_second_factors")
    # Something m018 creates is there already (a hand-made table, say): m018 fails, after m014-m017 ran.
    db.execute("CREATE TABLE webhook_deliveries (id INTEGER PRIMARY KEY)")
    db.execute("INSERT INTO users (username, display_name, role, password_hash, created_at)"
               " VALUES ('lt.brennan', 'Lt. Casey Brennan', 'coordinator', 'x', 0)")
    db.conn.commit()
    db.close()
    before = dump(database)
    create_key(tmp_path / "instance" / "backup.key")
    result = flask_command("upgrade")
    assert result.returncode == 1 and "Traceback" not in result.stderr
    [line] = result.stderr.strip().splitlines()
    assert "Migration m018_dispatch failed" in line and "as it was" in line and "backup" in line
    assert dump(database) == before
    assert applied(database)[-1] == "m013_second_factors"


MIGRATE = "import sys; from fieldapp.store.db import connect, migrate; migrate(connect(sys.argv[1]))"


def migrate_until_killed(database, wal_bytes=None, at_first_commit=False):
    """Run the app's migrate() in its own process; kill -9 it once the WAL holds `wal_bytes` (its
    transaction part-way), or once a reader sees a migration committed. Returns its exit status."""
    env = {**os.environ, "PYTHONPATH": os.environ.get("PYTHONPATH", str(Path(__file__).parent.parent))}
    start = len(applied(database))
    process = subprocess.Popen([sys.executable, "-c", MIGRATE, str(database)], env=env)
    wal = Path(f"{database}-wal")
    deadline = time.monotonic() + 60
    while process.poll() is None and time.monotonic() < deadline:
        if wal_bytes and wal.exists() and wal.stat().st_size >= wal_bytes:
            break
        if at_first_commit and len(applied(database)) > start:
            break
        time.sleep(0.002)
    process.send_signal(signal.SIGKILL)
    return process.wait(timeout=60)


@pytest.fixture(scope="module")
def many_on_duty(tmp_path_factory):
    """A database at m005 with 100,000 specialists on duty: m006 builds its position index from them,
    writing megabytes for a second, with eighteen migrations after it."""
    database = tmp_path_factory.mktemp("m005") / "fieldapp.db"
    db = database_at(database, "m005_audit_log")
    db.conn.executemany("INSERT INTO users (id, username, display_name, role, password_hash, created_at)"
                        " VALUES (?, ?, ?, 'cit', 'x', 0)", ((n, f"cit.{n}", f"Ofc. {n}") for n in range(1, 100_001)))
    db.conn.executemany("INSERT INTO duty (user_id, on_duty, lat, lon) VALUES (?, 1, ?, ?)",
                        ((n, 35 + n / 1e5, -90 + n / 1e5) for n in range(1, 100_001)))
    db.conn.commit()
    db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    db.close()
    return database


@pytest.mark.parametrize("kill", ["WAL at 1 MB", "WAL at 4 MB", "first migration committed"])
def test_a_kill_9_mid_upgrade_leaves_the_database_as_before_or_fully_migrated(many_on_duty, tmp_path, kill):
    """sqlite-utils commits migration by migration; fieldapp runs them all in one transaction."""
    database = tmp_path / "fieldapp.db"
    shutil.copyfile(many_on_duty, database)
    before = applied(database)
    if kill.startswith("WAL"):
        status = migrate_until_killed(database, wal_bytes=int(kill.split()[2]) * 1024 * 1024)
        assert status == -signal.SIGKILL, "the migration finished before the kill: give it more rows"
    else:
        migrate_until_killed(database, at_first_commit=True)
    state = applied(database)
    assert state in (before, EVERY_MIGRATION)  # never a migration or two of the way
    if kill.startswith("WAL"):
        assert state == before  # killed inside the one transaction
    db = connect(database)
    assert db.execute("SELECT count(*) FROM duty").fetchone()[0] == 100_000
    assert db.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    db.close()
    if kill == "WAL at 4 MB":
        assert migrate_until_killed(database, wal_bytes=1 << 40) == 0  # run again, to the end: fully migrated
        assert applied(database) == EVERY_MIGRATION
