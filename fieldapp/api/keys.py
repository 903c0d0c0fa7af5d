"""API keys: one per CAD integration, with scopes; only a SHA-256 of each key is kept.

Each key acts through an account of its own (role `dispatcher`, disabled, no
usable password), so the timeline and audit log name the integration and the
state machine's rules apply to it as to a dispatcher.
"""
import hashlib
import json
import re
import secrets

import click
from flask import current_app
from flask.cli import AppGroup

from ..identity import accounts
from ..audit import log as audit
from ..clock import now
from ..store.db import connect, one, write_transaction

SCOPES = ("requests:read", "requests:write")
KEY_PREFIX = "fapi_"
NAME_RE = re.compile(r"^[A-Za-z0-9._-]{1,40}$")


def hash_key(key):
    """Keys are 256 random bits, so a plain SHA-256 is enough to keep them unguessable at rest."""
    return hashlib.sha256(key.encode()).hexdigest()


def create_key(db, name, scopes):
    """Make a key for integration `name`; returns the key, which is never stored."""
    if not NAME_RE.match(name or ""):
        raise ValueError("Name the key with 1 to 40 letters, digits, dots, hyphens or underscores, e.g. county-cad.")
    scopes = sorted(set(scopes))
    unknown = set(scopes) - set(SCOPES)
    if not scopes or unknown:
        raise ValueError(f"Scopes must be some of: {', '.join(SCOPES)}.")
    key = KEY_PREFIX + secrets.token_urlsafe(32)
    with write_transaction(db):
        if one(db, "SELECT 1 AS x FROM api_keys WHERE name = ?", [name]):
            raise ValueError(f"There is already a key called {name!r}.")
        user_id = accounts.create_user(db, f"api-{name}", None, "dispatcher", f"CAD integration {name}",
                                       unit=name[:40], password_hash="!api-key-account")
        accounts.mark_disabled(db, user_id, True)  # no one signs in as an integration
        db.execute("INSERT INTO api_keys (name, key_hash, scopes, user_id, created_at) VALUES (?, ?, ?, ?, ?)",
                   [name, hash_key(key), json.dumps(scopes), user_id, now()])
        audit.record(db, "api_key_created", name, f"scopes {','.join(scopes)}", actor=(None, "cli"))
    return key


def key_for(db, presented):
    """The api_keys row a presented key matches (revoked or not), or None."""
    return one(db, "SELECT k.*, u.role FROM api_keys k JOIN users u ON u.id = k.user_id WHERE k.key_hash = ?",
               [hash_key(presented)])


def note_use(db, name):
    """Stamp the time this key was last used; must run inside a write transaction."""
    db.execute("UPDATE api_keys SET last_used_at = ? WHERE name = ?", [now(), name])


def revoke_key(db, name):
    """Revoke a key at once; returns False when there is no such key or it was revoked already."""
    with write_transaction(db):
        cursor = db.execute("UPDATE api_keys SET revoked_at = ? WHERE name = ? AND revoked_at IS NULL", [now(), name])
        if cursor.rowcount:
            audit.record(db, "api_key_revoked", name, actor=(None, "cli"))
    return cursor.rowcount == 1


def every_key(db):
    """Every key, without its hash."""
    return list(db.query("SELECT name, scopes, created_at, last_used_at, revoked_at FROM api_keys ORDER BY name"))


@click.group("api-keys", cls=AppGroup)
def api_keys_cli():
    """Manage the API keys of CAD integrations."""


@api_keys_cli.command("create")
@click.argument("name")
@click.option("--scopes", required=True, help="Comma-separated: requests:read, requests:write.")
def api_keys_create(name, scopes):
    """Create a key for integration NAME; it is printed once, alone on the last line."""
    db = connect(current_app.config["DATABASE"])
    try:
        key = create_key(db, name, [s.strip() for s in scopes.split(",") if s.strip()])
    except ValueError as e:
        raise click.ClickException(str(e))
    click.echo(f"Created API key {name!r} ({scopes}). It is shown only now; store it in the integration's settings:")
    click.echo(key)


@api_keys_cli.command("list")
def api_keys_list():
    """List the keys, their scopes and whether each is revoked."""
    db = connect(current_app.config["DATABASE"])
    for k in every_key(db):
        status = "revoked" if k["revoked_at"] else "active"
        click.echo(f"{k['name']}\t{','.join(json.loads(k['scopes']))}\t{status}")


@api_keys_cli.command("revoke")
@click.argument("name")
def api_keys_revoke(name):
    """Revoke the key of integration NAME; it stops working at once."""
    db = connect(current_app.config["DATABASE"])
    if not revoke_key(db, name):
        raise click.ClickException(f"No active key called {name!r}.")
    click.echo(f"Revoked API key {name!r}.")
