"""Keeping records: data retention (`purge`) and online backups (`backup`).

Retention keeps a closed request's statistics — times, states, disposition,
flags, outcomes — and removes what identifies a person or place: the note,
the typed location, the checklist marks, the referral text, and coordinates
beyond about 1 km (rounded to two decimals, enough for district reports).
Specialists' positions go too: their exact distances to old scenes (rounded
to the kilometre), the push messages that carried them, and any position
older than alerting uses; so do the exact coordinates webhook deliveries carried. SQLite's `secure_delete` overwrites what is removed,
whatever the SQLite build's default, and the WAL is checkpointed so no copy
of an old page stays behind in it.
"""
import re
from pathlib import Path

import click
from flask import current_app
from flask.cli import with_appcontext

from ..clock import now
from ..store.db import connect, write_transaction
from ..duty.positions import forget_positions_before
from ..delivery.outbox import forget_messages_of_closed_requests
from ..delivery.webhooks import forget_payloads_of_closed_requests
from ..requests.domain import strip_closed_requests
from ..safety.timer import forget_contact_notes_of_closed_requests
from ..requests.selection import round_distances_of_closed_requests
from ..audit import log as audit
from . import at_rest

DURATION_RE = re.compile(r"^(\d+)([dh])$")


def parse_age(text):
    """'180d' or '12h' to seconds; raises click.BadParameter otherwise."""
    match = DURATION_RE.match(text or "")
    if not match or int(match.group(1)) == 0:
        raise click.BadParameter("Give an age such as 180d (days) or 12h (hours).")
    return int(match.group(1)) * (86400 if match.group(2) == "d" else 3600)


def purge_closed_requests(db, older_than_s):
    """Strip free text and precise locations from requests closed more than `older_than_s` ago."""
    cutoff = now() - older_than_s
    db.execute("PRAGMA secure_delete = ON")
    with write_transaction(db):
        count = strip_closed_requests(db, cutoff)
        round_distances_of_closed_requests(db, cutoff)
        forget_messages_of_closed_requests(db, cutoff)
        forget_payloads_of_closed_requests(db, cutoff)
        forget_contact_notes_of_closed_requests(db, cutoff)
        forget_positions_before(db, now() - current_app.config["POSITION_MAX_AGE_S"])
        audit.record(db, "purge", f"{count} request(s)", f"closed before {cutoff:.0f}", actor=(None, "cli"))
    db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    return count


@click.command("purge")
@click.option("--older-than", "older_than", default=None, help="Age of closed requests to purge, e.g. 180d.")
@with_appcontext
def purge_command(older_than):
    """Remove notes and precise locations from closed requests, and old positions; keep statistics."""
    seconds = parse_age(older_than or current_app.config["RETENTION"])
    count = purge_closed_requests(connect(current_app.config["DATABASE"]), seconds)
    click.echo(f"Purged free text and precise locations from {count} closed request(s).")


@click.command("backup")
@click.argument("path", type=click.Path(dir_okay=False, writable=True))
@with_appcontext
def backup_command(path):
    """Copy the live database to PATH, encrypted with the backup key (safe while serving)."""
    ok = at_rest.encrypt_backup(current_app.config["DATABASE"], path)
    if ok != "ok":
        Path(path).unlink(missing_ok=True)
        raise click.ClickException(f"The backup for {path} failed its integrity check: {ok}")
    audit.record(connect(current_app.config["DATABASE"]), "backup", path, actor=(None, "cli"))
    click.echo(f"Backed up to {path}, encrypted with the backup key (integrity check: ok).")


def init_app(app):
    """Register `purge` and `backup`, and the backup key's commands."""
    app.cli.add_command(purge_command)
    app.cli.add_command(backup_command)
    at_rest.init_app(app)
