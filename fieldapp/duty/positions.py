"""Where specialists are: positions their devices report, and the agency's vehicle-location (AVL/MDT) feed.

Writes the `duty` table's position columns (lat, lon, accuracy_m,
position_at, position_source). The feed's bearer tokens are devices.py's;
the `units token` command that makes one is here, with the feed.
"""
import click
from flask import current_app
from flask.cli import AppGroup

from ..clock import now
from ..identity.accounts import user_by_username
from ..store.db import connect, one
from .devices import issue_device_token


def own_position(db, user_id):
    """(lat, lon) this user's device last sent, or (None, None)."""
    row = one(db, "SELECT lat, lon FROM duty WHERE user_id = ?", [user_id])
    return (row["lat"], row["lon"]) if row else (None, None)


def record_position(db, user_id, lat, lon, accuracy, source):
    """Keep a specialist's latest position with its time, accuracy and source."""
    db.execute(
        "INSERT INTO duty (user_id, lat, lon, accuracy_m, position_at, position_source) VALUES (?, ?, ?, ?, ?, ?)"
        " ON CONFLICT(user_id) DO UPDATE SET lat = excluded.lat, lon = excluded.lon,"
        " accuracy_m = excluded.accuracy_m, position_at = excluded.position_at, position_source = excluded.position_source",
        [user_id, lat, lon, accuracy, now(), source],
    )


def forget_positions_before(db, cutoff):
    """Clear every position reported before `cutoff`: alerting no longer uses it, so nothing needs it."""
    db.execute(
        "UPDATE duty SET lat = NULL, lon = NULL, accuracy_m = NULL, position_at = NULL, position_source = NULL"
        " WHERE position_at < ?",
        [cutoff],
    )


@click.group("units", cls=AppGroup)
def units_cli():
    """Vehicle-location (AVL/MDT) feed tokens."""


@units_cli.command("token")
@click.argument("username")
@click.option("--label", default="", help="Which device or feed holds the token.")
@click.option("--days", type=click.IntRange(1, 3650), default=None, help="Days until it expires (default AVL_TOKEN_DAYS, 90).")
def units_token(username, label, days):
    """Create a bearer token for USERNAME's position feed; it is shown once.

    Tokens expire, and disabling the account revokes them, so an account
    enabled again needs a new one.
    """
    db = connect(current_app.config["DATABASE"])
    user = user_by_username(db, username)
    if user is None:
        raise click.ClickException(f"No account named {username!r}.")
    click.echo(issue_device_token(db, user["id"], label, (days or current_app.config["AVL_TOKEN_DAYS"]) * 86400))
