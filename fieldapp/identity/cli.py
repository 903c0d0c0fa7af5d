"""The `users` commands: create, list, disable and enable accounts, and set a password, from the command line.

For a server's administrator: the first coordinator's account, say, or the
last coordinator's lost password. Coordinators manage accounts on the
program's pages.
"""
import click
from flask import current_app
from flask.cli import AppGroup

from . import accounts
from ..audit import log as audit
from .accounts import ROLES, set_disabled, set_password
from .lockout import unlock
from ..store.db import connect, write_transaction


@click.group("users", cls=AppGroup)
def users_cli():
    """Manage accounts."""


@users_cli.command("create")
@click.argument("username")
@click.option("--role", type=click.Choice(ROLES), required=True, help="What the person does.")
@click.option("--name", "display_name", help="The name shown to others, e.g. 'Ofc. Dana Reyes'.")
@click.option("--unit", default="", help="Unit or call sign.")
@click.option("--phone", default="", help="A phone number others may call on a scene.")
@click.option("--password-file", type=click.File("r"), help="Read the password from this file instead of prompting.")
@click.option("--own-password", is_flag=True, help="The account's owner chose the password: no change at first sign-in.")
def users_create(username, role, display_name, unit, phone, password_file, own_password):
    """Create an account; the password is prompted for unless --password-file is given.

    Its owner must change it at first sign-in, unless they chose it themself (--own-password).
    """
    if password_file:
        password = password_file.read().strip()
    else:
        password = click.prompt("Password", hide_input=True, confirmation_prompt=True)
    db = connect(current_app.config["DATABASE"])
    try:
        accounts.create_user(db, username, password, role, display_name, unit, phone, must_change=not own_password)
    except ValueError as e:
        raise click.ClickException(str(e))
    audit.record(db, "user_created", username, f"role {role} (command line)", actor=(None, "cli"))
    click.echo(f"Created {username} ({role}).")


@users_cli.command("list")
def users_list():
    """List every account with its role and whether it is disabled."""
    db = connect(current_app.config["DATABASE"])
    for row in accounts.every_user(db):
        flag = "  (disabled)" if row["disabled"] else ""
        click.echo(f"{row['username']:<20} {row['role']:<12} {row['display_name']}{flag}")


def _cli_account(username):
    """The database and the id of the account `username`, or a command-line error."""
    db = connect(current_app.config["DATABASE"])
    row = accounts.user_by_username(db, username)
    if row is None:
        raise click.ClickException(f"No account named {username!r}.")
    return db, row["id"]


def _cli_set_disabled(username, disabled, done, unchanged):
    """Disable or enable `username`, and say which happened."""
    db, user_id = _cli_account(username)
    with write_transaction(db):
        changed = set_disabled(db, user_id, disabled)
        if changed:
            audit.record(db, "user_disabled" if disabled else "user_enabled", username, "command line", actor=(None, "cli"))
    click.echo(done if changed else unchanged)


@users_cli.command("disable")
@click.argument("username")
def users_disable(username):
    """Disable an account: it can no longer sign in and is never alerted."""
    _cli_set_disabled(username, True, f"Disabled {username}: signed out everywhere and off duty.",
                      f"{username} was already disabled.")


@users_cli.command("enable")
@click.argument("username")
def users_enable(username):
    """Let a disabled account sign in again."""
    _cli_set_disabled(username, False, f"Enabled {username}.", f"{username} was not disabled.")


@users_cli.command("password")
@click.argument("username")
@click.option("--password-file", type=click.File("r"), help="Read the new password from this file instead of asking.")
@click.option("--own-password", is_flag=True, help="The account's owner chose the password: no change at first sign-in.")
def users_password(username, password_file, own_password):
    """Set a new password for an account, e.g. for the last coordinator; signs it out everywhere.

    Its owner must change it at first sign-in, unless they chose it themself (--own-password).
    """
    db, user_id = _cli_account(username)
    if password_file:
        password = password_file.read().strip()
    else:
        password = click.prompt("New password", hide_input=True, confirmation_prompt=True)
    problems = accounts.check_new_password(password, password, username)
    if problems:
        raise click.ClickException(" ".join(problems))
    with write_transaction(db):
        set_password(db, user_id, accounts.hash_password(password), must_change=not own_password)
        audit.record(db, "password_reset", username, "command line", actor=(None, "cli"))
    click.echo(f"Set a new password for {username}; any session of theirs is signed out.")


@users_cli.command("unlock")
@click.argument("username")
def users_unlock(username):
    """Let an account locked after wrong passwords or codes sign in again, and forget its failures."""
    db, user_id = _cli_account(username)
    with write_transaction(db):
        unlock(db, accounts.user_by_id(db, user_id))
        audit.record(db, "account_unlocked", username, "command line", actor=(None, "cli"))
    click.echo(f"Unlocked {username}: they can sign in again.")


def init_app(app):
    """Add the `users` commands to the app's command line."""
    app.cli.add_command(users_cli)
