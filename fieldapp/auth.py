"""Accounts: signing in and out, roles, and the `users` commands."""
import functools
import re
from urllib.parse import urlsplit

import click
from flask.cli import AppGroup
from flask import Blueprint, abort, current_app, flash, redirect, render_template, request, session, url_for
from flask_login import LoginManager, UserMixin, current_user, login_required, login_user, logout_user
from werkzeug.security import check_password_hash, generate_password_hash

from . import audit
from .clock import now
from .db import ROLES, connect, get_db, one, write_transaction

bp = Blueprint("auth", __name__)
login_manager = LoginManager()
login_manager.login_view = "auth.login"
login_manager.login_message = "Please sign in to continue."


class User(UserMixin):
    """A signed-in person, built from a row of `users`."""

    def __init__(self, row):
        self.row = row
        self.id = row["id"]
        self.username = row["username"]
        self.display_name = row["display_name"]
        self.role = row["role"]
        self.unit = row["unit"]
        self.phone = row["phone"]

    @property
    def is_active(self):
        return not self.row["disabled"]

    def get_id(self):
        # The session holds the version too, so raising it ends every session at once.
        return f"{self.id}:{self.row['session_version']}"

    def has_role(self, *roles):
        """True when this user holds one of `roles`."""
        return self.role in roles


@login_manager.user_loader
def load_user(session_id):
    # A bare id is a session from before versions existed: version 0, so it stays
    # signed in through the upgrade and ends at the account's first change.
    user_id, _, version = str(session_id).partition(":")
    version = version or "0"
    if not (re.fullmatch(r"[0-9]{1,18}", user_id) and re.fullmatch(r"[0-9]{1,18}", version)):
        return None
    row = one(get_db(), "SELECT * FROM users WHERE id = ? AND session_version = ?", [int(user_id), int(version)])
    return User(row) if row else None


@login_manager.unauthorized_handler
def unauthorized():
    """Someone not signed in: a page goes to the sign-in form and comes back after it.

    A POST cannot be replayed after signing in, and an htmx swap must not put the
    sign-in form inside a fragment, so both get a 401 instead: the sign-in form
    saying nothing was done, with HX-Redirect for htmx. The offline queue treats
    a 401 to a CIT request as "keep it and send it after sign-in".
    """
    if request.method == "GET" and not request.headers.get("HX-Request"):
        flash(login_manager.login_message)
        return redirect(url_for("auth.login", next=request.full_path.rstrip("?")))
    page = _safe_next(urlsplit(request.headers.get("HX-Current-URL", "")).path) or url_for("home.index")
    response = current_app.make_response((render_template(
        "auth/login.html", next_url=page, error=None,
        notice="You were signed out, so that was not done. Sign in, then try again.",
    ), 401))
    if request.headers.get("HX-Request"):
        response.headers["HX-Redirect"] = url_for("auth.login", next=page)
    return response


def role_required(*roles):
    """Allow a view only to signed-in users holding one of `roles`; others get 403."""

    def decorator(view):
        @functools.wraps(view)
        @login_required
        def wrapped(*args, **kwargs):
            if not current_user.has_role(*roles):
                abort(403, description="Your role does not give access to this page.")
            return view(*args, **kwargs)

        return wrapped

    return decorator


def check_username(username):
    """The username trimmed, or ValueError saying what a username may be."""
    username = (username or "").strip()
    if not username or len(username) > 64 or not username.replace(".", "").replace("-", "").replace("_", "").isalnum():
        raise ValueError("A username is 1 to 64 letters, digits, dots, hyphens or underscores.")
    return username


def hash_password(password):
    """Hash with the configured method (werkzeug's scrypt unless a test asks for faster)."""
    return generate_password_hash(password, method=current_app.config.get("PASSWORD_HASH_METHOD", "scrypt"))


def create_user(db, username, password, role, display_name=None, unit="", phone="", password_hash=None):
    """Create an account and return its id; raises ValueError on bad input.

    `password_hash` replaces `password` when the caller hashed it already:
    a bulk import hashes before taking the write lock, because each hash
    takes about a tenth of a second.
    """
    username = check_username(username)
    if role not in ROLES:
        raise ValueError(f"Role must be one of: {', '.join(ROLES)}.")
    if password_hash is None:
        problems = check_new_password(password or "", password or "", username)
        if problems:
            raise ValueError(" ".join(problems))
    if one(db, "SELECT id FROM users WHERE username = ?", [username]):
        raise ValueError(f"The username {username!r} is taken.")
    cursor = db.execute(
        "INSERT INTO users (username, display_name, role, password_hash, unit, phone, created_at)"
        " VALUES (?, ?, ?, ?, ?, ?, ?)",
        [username, display_name or username, role, password_hash or hash_password(password), unit, phone, now()],
    )
    return cursor.lastrowid


def check_new_password(password, repeat, username):
    """What is wrong with a new password, as a list of messages (empty when it will do)."""
    minimum = current_app.config["PASSWORD_MIN_LENGTH"]
    problems = []
    if len(password) < minimum:
        problems.append(f"A password has at least {minimum} characters; a few plain words in a row is fine.")
    if len(password) > 256:
        problems.append("A password has at most 256 characters.")
    if password.strip().lower() == username.lower():
        problems.append("A password cannot be the username.")
    if password != repeat:
        problems.append("The two new passwords are not the same.")
    return problems


def set_password(db, user_id, password_hash):
    """Store a new password hash, clear any lock-out, and sign the account out everywhere."""
    db.execute(
        "UPDATE users SET password_hash = ?, failed_logins = 0, locked_until = NULL,"
        " session_version = session_version + 1 WHERE id = ?",
        [password_hash, user_id],
    )


def set_disabled(db, user_id, disabled):
    """Disable an account or enable it again; True if it changed.

    Disabling signs it out everywhere, takes it off duty and forgets its push
    subscriptions, so a lost phone stops receiving alerts even if the account
    comes back.
    """
    cursor = db.execute(
        "UPDATE users SET disabled = ?, session_version = session_version + ? WHERE id = ? AND disabled != ?",
        [int(disabled), int(disabled), user_id, int(disabled)],
    )
    if disabled and cursor.rowcount:
        db.execute("UPDATE duty SET on_duty = 0 WHERE user_id = ?", [user_id])
        db.execute("DELETE FROM push_subscriptions WHERE user_id = ?", [user_id])
    return cursor.rowcount > 0


def _safe_next(target):
    """Only same-site relative paths may be redirected to after sign-in."""
    if not target:
        return None
    parts = urlsplit(target)
    if parts.scheme or parts.netloc or not target.startswith("/") or target.startswith("//"):
        return None
    return target


def check_login(db, username, password):
    """Return the user row when the credentials are good, else None.

    Failures count towards a lock-out; the caller's message stays generic
    so it never tells which half was wrong.
    """
    row = one(db, "SELECT * FROM users WHERE username = ?", [username])
    t = now()
    if row is None or row["disabled"]:
        # Hash anyway so a missing account takes as long as a wrong password.
        check_password_hash(_DUMMY_HASH, password)
        return None
    if row["locked_until"] and row["locked_until"] > t:
        return None
    if not check_password_hash(row["password_hash"], password):
        failures = row["failed_logins"] + 1
        locked_until = None
        if failures >= current_app.config["LOGIN_MAX_FAILURES"]:
            locked_until = t + current_app.config["LOGIN_LOCK_SECONDS"]
            current_app.logger.warning("Account %s locked after %d failed sign-ins", username, failures)
            failures = 0
        db.execute(
            "UPDATE users SET failed_logins = ?, locked_until = ? WHERE id = ?",
            [failures, locked_until, row["id"]],
        )
        return None
    db.execute("UPDATE users SET failed_logins = 0, locked_until = NULL WHERE id = ?", [row["id"]])
    return row


_DUMMY_HASH = generate_password_hash("not-a-real-password")


@bp.route("/login", methods=["GET", "POST"])
def login():
    """The sign-in form."""
    next_url = _safe_next(request.values.get("next"))
    if current_user.is_authenticated:
        return redirect(next_url or url_for("home.index"))
    error = None
    status = 200
    if request.method == "POST":
        username = request.form.get("username", "")[:64].strip()
        password = request.form.get("password", "")[:256]
        db = get_db()
        row = check_login(db, username, password) if username and password else None
        if row:
            session.clear()  # no session id or CSRF token from before sign-in carries over
            login_user(User(row), remember=False)
            audit.record(db, "login", username, actor=(row["id"], row["username"]))
            return redirect(next_url or url_for("home.index"))
        audit.record(db, "login_failed", username, actor=(None, ""))
        error = "Sign-in failed. Check your username and password, or ask your supervisor."
        status = 401
    return render_template("auth/login.html", error=error, next_url=next_url), status


@bp.route("/logout", methods=["POST"])
def logout():
    """Sign out and go back to the sign-in form."""
    if current_user.is_authenticated:
        audit.record(get_db(), "logout", current_user.username)
    logout_user()
    session.clear()
    flash("You are signed out.")
    response = redirect(url_for("auth.login", signed_out=1))
    # Shared car computers: the browser's HTTP cache goes with the officer. Not "storage":
    # Chromium would unregister the service worker with it, and the offline cards and queue.
    response.headers["Clear-Site-Data"] = '"cache"'
    return response


@bp.route("/account/password", methods=["GET", "POST"])
@login_required
def change_password():
    """Change your own password; every other session of yours is signed out."""
    if request.method == "GET":
        return render_template("auth/password.html", errors=[])
    current = request.form.get("current_password", "")[:256]
    new = request.form.get("new_password", "")
    repeat = request.form.get("repeat_password", "")
    db = get_db()
    errors = check_new_password(new, repeat, current_user.username)
    if current and new == current:
        errors.append("The new password must differ from the current one.")
    # Checked like a sign-in, so guesses here count towards the lock-out too.
    if not errors and not check_login(db, current_user.username, current):
        audit.record(db, "password_change_failed", current_user.username)
        locked = one(db, "SELECT locked_until FROM users WHERE id = ?", [current_user.id])["locked_until"]
        minutes = current_app.config["LOGIN_LOCK_SECONDS"] // 60
        errors.append(f"Too many wrong passwords: try again in {minutes} minutes, or ask a coordinator."
                      if locked and locked > now() else "Your current password is not right.")
    if errors:
        return render_template("auth/password.html", errors=errors), 422
    with write_transaction(db):
        set_password(db, current_user.id, hash_password(new))
        audit.record(db, "password_changed", current_user.username)
        # Read inside the transaction: a change made at once on another device
        # must not leave this one holding a version that is no longer current.
        row = one(db, "SELECT * FROM users WHERE id = ?", [current_user.id])
    # This device stays signed in, in a new session under the new version.
    session.clear()
    login_user(User(row), remember=False)
    flash("Password changed. Any other device signed in as you has been signed out.")
    return redirect(url_for("home.index"), 303)


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
def users_create(username, role, display_name, unit, phone, password_file):
    """Create an account; the password is prompted for unless --password-file is given."""
    if password_file:
        password = password_file.read().strip()
    else:
        password = click.prompt("Password", hide_input=True, confirmation_prompt=True)
    db = connect(current_app.config["DATABASE"])
    try:
        create_user(db, username, password, role, display_name, unit, phone)
    except ValueError as e:
        raise click.ClickException(str(e))
    audit.record(db, "user_created", username, f"role {role} (command line)", actor=(None, "cli"))
    click.echo(f"Created {username} ({role}).")


@users_cli.command("list")
def users_list():
    """List every account with its role and whether it is disabled."""
    db = connect(current_app.config["DATABASE"])
    for row in db.query("SELECT username, role, display_name, disabled FROM users ORDER BY username"):
        flag = "  (disabled)" if row["disabled"] else ""
        click.echo(f"{row['username']:<20} {row['role']:<12} {row['display_name']}{flag}")


def _cli_account(username):
    """The database and the id of the account `username`, or a command-line error."""
    db = connect(current_app.config["DATABASE"])
    row = one(db, "SELECT id FROM users WHERE username = ?", [username])
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
def users_password(username, password_file):
    """Set a new password for an account, e.g. for the last coordinator; signs it out everywhere."""
    db, user_id = _cli_account(username)
    if password_file:
        password = password_file.read().strip()
    else:
        password = click.prompt("New password", hide_input=True, confirmation_prompt=True)
    problems = check_new_password(password, password, username)
    if problems:
        raise click.ClickException(" ".join(problems))
    with write_transaction(db):
        set_password(db, user_id, hash_password(password))
        audit.record(db, "password_reset", username, "command line", actor=(None, "cli"))
    click.echo(f"Set a new password for {username}; any session of theirs is signed out.")


def init_app(app):
    """Wire flask-login and the `users` commands into the app."""
    login_manager.init_app(app)
    app.cli.add_command(users_cli)
