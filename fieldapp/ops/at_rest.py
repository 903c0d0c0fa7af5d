"""Encryption at rest: the backup key, and backups written and read with it.

One age key (age-encryption.org/v1, X25519) encrypts every copy of the
database that leaves the machine's live file: the nightly `backup` files, and
Litestream's replica in the object store (deploy/litestream reads the same key
file). The key lives in the instance folder, or wherever `BACKUP_KEY_FILE`
says, never beside the copies it protects: whoever holds the bucket or the
backup folder without it holds noise. Without it nothing can be restored, so
the administrator keeps a second copy of it offline (docs/DEPLOY.md).

pyrage (Python bindings to the rage implementation of age) does the
encryption; Litestream 0.3 uses the Go implementation, and files from either
open with the other and with the `age` command line.
"""
import datetime as dt
import os
import sqlite3
from pathlib import Path

import click
import pyrage
from flask import current_app
from flask.cli import with_appcontext
from pyrage import x25519


# What an age file starts with: a backup is refused when it does not.
AGE_HEADER = b"age-encryption.org/v1\n"


class KeyProblem(click.ClickException):
    """The backup key is missing, unreadable or not an age key; the message says what to do."""


def open_private(path):
    """Create `path` as an empty file only this user can read (for backups); one-line errors."""
    target = Path(path)
    if not target.parent.is_dir():
        raise click.ClickException(f"The folder {target.parent} does not exist; create it first (mode 0700).")
    try:
        fd = os.open(target, os.O_CREAT | os.O_WRONLY | os.O_TRUNC, 0o600)
        os.close(fd)
        target.chmod(0o600)
    except OSError as e:
        raise click.ClickException(f"Cannot write {path}: {e.strerror}.") from None


def key_path():
    """Where the backup key is: BACKUP_KEY_FILE, or `backup.key` in the instance folder."""
    return Path(current_app.config.get("BACKUP_KEY_FILE") or Path(current_app.instance_path) / "backup.key")


def load_identity(path=None):
    """The age identity (private key) in the key file, or a KeyProblem naming the file."""
    path = Path(path or key_path())
    try:
        lines = path.read_text().splitlines()
    except FileNotFoundError:
        raise KeyProblem(f"There is no backup key at {path}. Put back the agency's copy of it (docs/DEPLOY.md,"
                         " \"The backup key\"), or, on a new install only, make one with"
                         " `flask --app fieldapp backup-key create`.") from None
    except OSError as e:
        raise KeyProblem(f"Cannot read the backup key at {path}: {e.strerror}.") from None
    secrets = [line.strip() for line in lines if line.strip().startswith("AGE-SECRET-KEY-")]
    if len(secrets) != 1:
        raise KeyProblem(f"{path} is not an age key file: it must hold one AGE-SECRET-KEY-1... line.")
    try:
        return x25519.Identity.from_str(secrets[0])
    except pyrage.IdentityError:
        raise KeyProblem(f"{path} is not an age key file: its AGE-SECRET-KEY line does not read.") from None


def create_key(path):
    """Write a new key file, age-keygen's format, readable by this user only; refuses to replace one."""
    identity = x25519.Identity.generate()
    created = dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
    text = f"# created: {created}\n# public key: {identity.to_public()}\n{identity}\n"
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        raise KeyProblem(f"There is a backup key at {path} already; it was kept. Replacing it would make"
                         " every backup and replica made with it unreadable.") from None
    except OSError as e:
        raise KeyProblem(f"Cannot write {path}: {e.strerror}.") from None
    with os.fdopen(fd, "w") as f:
        f.write(text)
    return identity


def encrypt_backup(database, target):
    """Copy the live `database` into `target`, encrypted to the backup key; returns the integrity check's answer.

    The plain copy (SQLite's online backup API, safe while serving) is made in
    a private file beside the target and removed once encrypted, so nothing
    unencrypted is left in the backup folder.
    """
    recipient = load_identity().to_public()
    open_private(target)  # 0600, and a one-line error for a missing folder or an unwritable path
    plain = Path(f"{target}.plain")
    open_private(plain)
    try:
        source, copy = sqlite3.connect(database), sqlite3.connect(plain)
        try:
            with copy:
                source.backup(copy)
            ok = copy.execute("PRAGMA integrity_check").fetchone()[0]
        finally:
            copy.close()
            source.close()
        if ok == "ok":
            try:
                pyrage.encrypt_file(str(plain), str(target), [recipient])
            except (pyrage.EncryptError, OSError) as e:
                Path(target).unlink(missing_ok=True)
                raise click.ClickException(f"Cannot write the encrypted backup {target}: {e}.") from None
    finally:
        plain.unlink(missing_ok=True)
    return ok


def decrypt_backup(source, target, identity):
    """Decrypt the age file `source` into `target`, a file that must not exist yet; one-line errors.

    It is decrypted into a private file beside the target first and renamed
    into place only once it decrypted and is a sound SQLite database, so a
    wrong key or a damaged file leaves nothing behind.
    """
    source, target = Path(source), Path(target)
    try:
        with source.open("rb") as f:
            header = f.read(len(AGE_HEADER))
    except OSError as e:
        raise click.ClickException(f"Cannot read {source}: {e.strerror}.") from None
    if header != AGE_HEADER:
        raise click.ClickException(f"{source} is not an encrypted fieldapp backup (no age header).")
    if target.exists():
        raise click.ClickException(f"{target} exists already; it was kept. Decrypt into a new file.")
    staging = Path(f"{target}.decrypting")
    open_private(staging)
    try:
        try:
            pyrage.decrypt_file(str(source), str(staging), [identity])
        except pyrage.DecryptError as e:
            reason = ("the backup key is not the one it was made with" if "No matching keys" in str(e)
                      else f"the file is damaged ({e})")
            raise click.ClickException(f"Cannot decrypt {source}: {reason}. Nothing was written.") from None
        try:
            ok = sqlite3.connect(staging).execute("PRAGMA integrity_check").fetchone()[0]
        except sqlite3.DatabaseError as e:
            ok = str(e)
        if ok != "ok":
            raise click.ClickException(f"{source} decrypted, but is not a sound database ({ok}). Nothing was written.")
        os.link(staging, target)  # fails rather than replace a file made meanwhile
    finally:
        staging.unlink(missing_ok=True)


@click.group("backup-key")
def backup_key_cli():
    """The age key that encrypts backups and Litestream's replica."""


@backup_key_cli.command("create")
@with_appcontext
def backup_key_create():
    """Make the backup key, once, at install; then keep a copy of it offline."""
    path = key_path()
    identity = create_key(path)
    click.echo(f"Made the backup key {path} (public key {identity.to_public()}).")
    click.echo("Keep a copy of this file offline now (the agency's safe or password manager): without it no backup"
               " or replica can be restored, and it must never be kept in the bucket.")


@backup_key_cli.command("show")
@with_appcontext
def backup_key_show():
    """Say where the backup key is and print its public key (what copies are encrypted to)."""
    identity = load_identity()
    click.echo(f"{key_path()}: public key {identity.to_public()}")


@click.command("decrypt-backup")
@click.argument("backup", type=click.Path(dir_okay=False))
@click.argument("target", type=click.Path(dir_okay=False))
@with_appcontext
def decrypt_backup_command(backup, target):
    """Decrypt a backup file into TARGET, a new file, with the backup key (for a restore)."""
    decrypt_backup(backup, target, load_identity())
    click.echo(f"Decrypted {backup} into {target} (integrity check: ok).")


def init_app(app):
    """The backup key's setting and commands."""
    app.cli.add_command(backup_key_cli)
    app.cli.add_command(decrypt_backup_command)
