"""`flask --app fieldapp upgrade`: an upgrade's steps in order, stopping at the first that fails.

1. The CHANGELOG's **Before you upgrade** lines, for every release newer than
   the one that last upgraded this database.
2. A backup, encrypted as every backup is: the way back if the new code has to
   be rolled back.
3. Every pending migration, in one transaction (`db.migrate`): a migration that
   fails, or a kill -9 part-way, leaves the database exactly as it was.
4. `/readyz`'s checks against the upgraded database.

Which release last upgraded a database is stamped in SQLite's own
`user_version` header field (no table, so no migration of its own), as
major * 1,000,000 + minor * 1,000 + patch; 0, the default, means none has.
"""
import datetime as dt
import importlib.metadata
import re
import traceback
from pathlib import Path

import click
from flask import current_app
from flask.cli import with_appcontext

from . import at_rest
from ..store.db import connect, migrate
from ..store.migrations import migrations

CHANGELOG = Path(__file__).resolve().parents[2] / "CHANGELOG.md"
VERSION_RE = re.compile(r"^(\d+)\.(\d+)\.(\d+)")
# Readiness checks the upgrade itself must pass; the others wait for the worker, started after it.
REQUIRED_CHECKS = ("database", "schema")


def version_number(text):
    """'0.2.0' (or '0.2.0 (2026-12-01)') as the number stamped in user_version; None for 'Unreleased'."""
    match = VERSION_RE.match(text.strip())
    if not match:
        return None
    major, minor, patch = (int(n) for n in match.groups())
    return major * 1_000_000 + minor * 1_000 + patch


def installed_version():
    """This code's release, as pip installed it ('0.0.0' when it was never installed)."""
    try:
        return importlib.metadata.version("fieldapp")
    except importlib.metadata.PackageNotFoundError:
        return "0.0.0"


def before_you_upgrade(changelog_text, since):
    """[(release heading, [lines])] of the "Before you upgrade" parts of releases newer than `since`.

    `since` is a stamped version number (0: every release). "Unreleased" is
    newer than any release.
    """
    found, release, lines, inside = [], None, [], False
    for line in changelog_text.splitlines() + ["## end"]:
        if line.startswith("## "):
            if release is not None and lines:
                found.append((release, lines))
            heading = line[3:].strip()
            number = version_number(heading)
            release = heading if number is None or number > since else None
            if heading == "end":
                break
            lines, inside = [], False
        elif line.startswith("### "):
            inside = line[4:].strip().lower() == "before you upgrade"
        elif inside and release is not None and line.strip():
            lines.append(line)
    return found


def stamp_release(db):
    """Record in the database that this release's code has upgraded (or made) it."""
    number = version_number(installed_version())
    if number:
        db.execute(f"PRAGMA user_version = {number}")


def failed_migration(error):
    """The name of the migration an exception came out of, or None."""
    names = [frame.name for frame in traceback.extract_tb(error.__traceback__) if re.match(r"m\d{3}_", frame.name)]
    return names[-1] if names else None


def readiness():
    """/readyz's JSON, asked of this app in process."""
    return current_app.test_client().get("/readyz").get_json()


@click.command("upgrade")
@click.option("--backup", "backup_path", type=click.Path(dir_okay=False),
              help="Where the backup goes (default: BACKUP_DIR/before-upgrade-<time>.db.age).")
@with_appcontext
def upgrade_command(backup_path):
    """Upgrade the database: say what to know first, back up, migrate (all or nothing), check readiness."""
    database = current_app.config["DATABASE"]
    db = connect(database)
    try:
        since = db.execute("PRAGMA user_version").fetchone()[0]
        pending = [m.name for m in migrations.pending(db)]
    finally:
        db.close()
    version = installed_version()

    text = CHANGELOG.read_text() if CHANGELOG.exists() else ""
    notes = before_you_upgrade(text, since)
    for release, lines in notes:
        click.echo(f"Before you upgrade (CHANGELOG.md, {release}):")
        for line in lines:
            click.echo(f"  {line}")
    if not text:
        click.echo(f"No CHANGELOG.md at {CHANGELOG}: read the release's notes before you go on.")

    if not backup_path:
        folder = Path(current_app.config["BACKUP_DIR"])
        try:
            folder.mkdir(mode=0o700, parents=True, exist_ok=True)
        except OSError as e:
            raise click.ClickException(f"Cannot make the backup folder {folder}: {e.strerror}. Nothing was changed;"
                                       " set BACKUP_DIR or give --backup PATH.") from None
        backup_path = str(folder / f"before-upgrade-{dt.datetime.now():%Y%m%dT%H%M%S}.db.age")
    ok = at_rest.encrypt_backup(database, backup_path)
    if ok != "ok":
        Path(backup_path).unlink(missing_ok=True)
        raise click.ClickException(f"The database failed its integrity check before the upgrade ({ok});"
                                   " nothing was changed. Restore a backup first.")
    click.echo(f"Backed up to {backup_path} (encrypted with the backup key).")

    db = connect(database)
    try:
        migrate(db)
        stamp_release(db)
    except Exception as e:  # any migration's error: the one transaction rolled back
        name = failed_migration(e)
        raise click.ClickException(
            f"Migration {name or '(unknown)'} failed: {str(e).splitlines()[0] if str(e) else type(e).__name__}."
            f" The database is as it was: none of the {len(pending)} pending migration(s) was applied."
            f" Put the old release's code back and start it; the backup is {backup_path}.") from None
    finally:
        db.close()
    click.echo(f"Migrated {database}: {len(pending)} migration(s) applied ({', '.join(pending) or 'none pending'}).")

    report = readiness()
    for name, check in report["checks"].items():
        detail = ", ".join(f"{k} {v}" for k, v in check.items() if k != "ok" and v != "ok")
        click.echo(f"  {'ok ' if check['ok'] else 'NOT'} {name}{': ' + detail if detail else ''}")
    broken = [name for name in REQUIRED_CHECKS if not report["checks"].get(name, {}).get("ok")]
    if broken:
        raise click.ClickException(f"Not ready after the upgrade: {', '.join(broken)}. See the lines above.")
    waiting = [name for name, check in report["checks"].items() if not check["ok"]]
    click.echo(f"Upgraded to fieldapp {version}."
               + (f" Start the services; {', '.join(waiting)} will pass once the worker runs (check /readyz)."
                  if waiting else " Ready."))


def init_app(app):
    """The `upgrade` command and where its backups go."""
    app.cli.add_command(upgrade_command)
