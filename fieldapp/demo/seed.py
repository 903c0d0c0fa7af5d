"""Demo data for `make run`: districts, one account per role, and the demo specialists' roster records."""
import secrets
from pathlib import Path

import click
from flask.cli import with_appcontext
from flask import current_app

from ..identity.accounts import create_user, user_by_username
from ..store.db import connect
from .history import seed_history
from ..requests.history import demo_request_count
from ..districts import save_centre
from ..maps.demo_map import install_demo_map
from ..program.roster import add_record_once

# A fictional department's districts, on the demo map's real streets (central Helsinki, fieldapp/maps/demo).
DEMO_DISTRICTS = [
    ("North", 60.1738, 24.9476),
    ("Central", 60.1688, 24.9420),
    ("South", 60.1652, 24.9465),
]
DEMO_ACCOUNTS = [
    ("officer", "officer", "Ofc. Sam Patel", "2-Adam-14", "555-0140"),
    ("cit", "cit", "Ofc. Jordan Reyes (CIT)", "2-CIT-3", "555-0130"),
    ("cit2", "cit", "Ofc. Alex Morgan (CIT)", "3-CIT-7", "555-0137"),
    ("supervisor", "supervisor", "Sgt. Robin Okafor", "2-Sgt-1", "555-0110"),
    ("coordinator", "coordinator", "Lt. Casey Brennan", "CIT Coordinator", "555-0100"),
    ("clinical", "clinical_partner", "Dr. Ana Rivera", "Clinical partner", "555-0190"),
]
# The demo specialists' roster records: volunteered, 40-hour course, in-service dates, districts, shifts.
DEMO_ROSTER = {
    "cit": ("2023-01-16", "2023-03-17", "2025-03-10", "Central;North", "day;evening"),
    "cit2": ("2024-08-12", "2024-09-20", "", "South;Central", "evening;night"),
}


def seed_demo(db, passwords_file, history=True):
    """Create the demo districts and accounts once, and a year of invented requests unless told not to;
    return {username: password}."""
    for name, lat, lon in DEMO_DISTRICTS:
        save_centre(db, name, lat, lon)
    saved = {}
    if passwords_file.exists():
        for line in passwords_file.read_text().splitlines():
            user, _, password = line.partition(" ")
            saved[user] = password
    for username, role, name, unit, phone in DEMO_ACCOUNTS:
        if user_by_username(db, username):
            continue
        saved[username] = secrets.token_urlsafe(12)  # 16 characters
        create_user(db, username, saved[username], role, name, unit, phone)
    for username, (volunteered, course, inservice, districts, shifts) in DEMO_ROSTER.items():
        add_record_once(db, user_by_username(db, username)["id"], {
            "volunteered_on": volunteered, "supervisor_recommendation": "Recommended by Sgt. Robin Okafor",
            "course_completed_on": course, "inservice_dates": [inservice] if inservice else [],
            "districts": districts.split(";"), "shifts": shifts.split(";"),
        }, inservice_title="De-escalation refresher")
    passwords_file.write_text("".join(f"{u} {p}\n" for u, p in saved.items()))
    passwords_file.chmod(0o600)
    if history:
        seed_history(db, demo_people(db))
    return saved


def demo_people(db):
    """Who the invented history names: the demo officer, supervisor, and a specialist for each district."""
    ids = {username: user_by_username(db, username)["id"] for username, *_ in DEMO_ACCOUNTS}
    specialists = {}
    for username, (*_, districts, _shifts) in DEMO_ROSTER.items():
        for district in districts.split(";"):
            specialists.setdefault(district, ids[username])
    return {"officer": ids["officer"], "supervisor": ids["supervisor"], "specialists": specialists}


@click.command("seed-demo")
@click.option("--no-history", is_flag=True, help="Skip the year of invented requests behind the demo's reports.")
@with_appcontext
def seed_demo_command(no_history):
    """Create demo districts, one account per role and a year of invented requests; print the passwords."""
    db = connect(current_app.config["DATABASE"])
    # The map first, so each invented request stands at a real address on it.
    click.echo(f"Map: {install_demo_map()}.")
    passwords = seed_demo(db, Path(current_app.instance_path) / "demo-accounts.txt", history=not no_history)
    click.echo("Demo accounts (username / password):")
    for username, role, *_ in DEMO_ACCOUNTS:
        click.echo(f"  {username:<12} {passwords.get(username, '(set before this run)'):<16} {role}")
    if not no_history:
        click.echo(f"Invented demo requests (a year, for the reports): {demo_request_count(db)}.")
    required = current_app.config["MFA_REQUIRED_ROLES"]
    click.echo(f"Second factor required for: {', '.join(required) if required else 'no role (the demo sets MFA_REQUIRED_ROLES to none; production requires every role)'}.")


def init_app(app):
    """Register the `seed-demo` command."""
    app.cli.add_command(seed_demo_command)
