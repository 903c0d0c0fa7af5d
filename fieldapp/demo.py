"""Demo data for `make run`: districts and one account per role."""
import secrets
from pathlib import Path

import click
from flask.cli import with_appcontext
from flask import current_app

from .auth import create_user
from .db import connect, one

# A fictional department's districts; the coordinates are Memphis, where CIT began.
DEMO_DISTRICTS = [
    ("North", 35.2000, -90.0300),
    ("Central", 35.1495, -90.0490),
    ("South", 35.0700, -90.0200),
]
DEMO_ACCOUNTS = [
    ("officer", "officer", "Ofc. Sam Patel", "2-Adam-14", "555-0140"),
    ("cit", "cit", "Ofc. Jordan Reyes (CIT)", "2-CIT-3", "555-0130"),
    ("cit2", "cit", "Ofc. Alex Morgan (CIT)", "3-CIT-7", "555-0137"),
    ("supervisor", "supervisor", "Sgt. Robin Okafor", "2-Sgt-1", "555-0110"),
    ("coordinator", "coordinator", "Lt. Casey Brennan", "CIT Coordinator", "555-0100"),
]


def seed_demo(db, passwords_file):
    """Create the demo districts and accounts once; return {username: password}."""
    for name, lat, lon in DEMO_DISTRICTS:
        db["districts"].insert({"name": name, "lat": lat, "lon": lon}, pk="name", replace=True)
    saved = {}
    if passwords_file.exists():
        for line in passwords_file.read_text().splitlines():
            user, _, password = line.partition(" ")
            saved[user] = password
    for username, role, name, unit, phone in DEMO_ACCOUNTS:
        if one(db, "SELECT id FROM users WHERE username = ?", [username]):
            continue
        saved[username] = secrets.token_urlsafe(9)
        create_user(db, username, saved[username], role, name, unit, phone)
    passwords_file.write_text("".join(f"{u} {p}\n" for u, p in saved.items()))
    passwords_file.chmod(0o600)
    return saved


@click.command("seed-demo")
@with_appcontext
def seed_demo_command():
    """Create demo districts and one account per role, and print their passwords."""
    db = connect(current_app.config["DATABASE"])
    passwords = seed_demo(db, Path(current_app.instance_path) / "demo-accounts.txt")
    click.echo("Demo accounts (username / password):")
    for username, role, *_ in DEMO_ACCOUNTS:
        click.echo(f"  {username:<12} {passwords.get(username, '(set before this run)'):<16} {role}")


def init_app(app):
    """Register the `seed-demo` command."""
    app.cli.add_command(seed_demo_command)
