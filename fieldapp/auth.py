"""Signing in and out: sessions, roles, sign-in throttling, the sign-in and password pages, and the `users` commands.

The `sessions` table is this module's; the accounts themselves (`users`) are accounts.py's.
"""
import functools
import hashlib
import re
import secrets
from urllib.parse import urlsplit

import click
from flask.cli import AppGroup
from flask import Blueprint, abort, current_app, flash, redirect, render_template, request, session, url_for
from flask_limiter import Limiter
from flask_login import LoginManager, UserMixin, current_user, login_required, login_user, logout_user
from werkzeug.exceptions import Forbidden
from werkzeug.security import check_password_hash, generate_password_hash

from . import accounts
from .audit import log as audit
from .clock import now
from .db import ROLES, connect, get_db, one, write_transaction
from .errors import handle_http_error
from .htmx import htmx_response

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
    """The user of this cookie, if its session is still on record.

    The cookie is signed, not secret from whoever holds it: what makes it
    worth anything is the record in `sessions`, which sign-out, a password
    change and a disabled account delete. A cookie with no record (copied
    before sign-out, or from before records were kept) signs no one in.
    """
    # A bare id is a session from before versions existed: version 0.
    user_id, _, version = str(session_id).partition(":")
    version = version or "0"
    token = session.get("sid")
    if not (re.fullmatch(r"[0-9]{1,18}", user_id) and re.fullmatch(r"[0-9]{1,18}", version) and isinstance(token, str)):
        return None
    row = one(
        get_db(),
        "SELECT users.*, sessions.created_at AS session_started_at, sessions.last_seen_at AS session_seen_at"
        " FROM users JOIN sessions ON sessions.user_id = users.id"
        " WHERE users.id = ? AND users.session_version = ? AND sessions.token_hash = ?",
        [int(user_id), int(version), _token_hash(token)],
    )
    return User(row) if row else None


def _token_hash(token):
    return hashlib.sha256(token.encode()).hexdigest()


def start_session(db, row):
    """Sign the person of `row` in on this browser: a fresh cookie session and its record."""
    session.clear()  # no session id or CSRF token from before sign-in carries over
    token = secrets.token_urlsafe(32)
    t = now()
    # Records of browsers closed without signing out go once they could no longer be used.
    db.execute("DELETE FROM sessions WHERE created_at <= ?", [t - current_app.config["SESSION_MAX_HOURS"] * 3600])
    db.execute(
        "INSERT INTO sessions (token_hash, user_id, created_at, last_seen_at, user_agent, ip) VALUES (?, ?, ?, ?, ?, ?)",
        [_token_hash(token), row["id"], t, t, request.user_agent.string[:200], request.remote_addr or ""],
    )
    login_user(User(row), remember=False)
    session["sid"] = token
    session["seen"] = t  # the idle lock counts from sign-in, even if no page follows


def end_session(db):
    """Sign this browser out: its record goes, so a copy of its cookie is worth nothing."""
    token = session.get("sid")
    if isinstance(token, str):
        db.execute("DELETE FROM sessions WHERE token_hash = ?", [_token_hash(token)])
    logout_user()
    session.clear()  # a new session and CSRF token from the next sign-in on


def end_every_session(db, user_id):
    """Sign an account out on every browser (a new password, a disabled account)."""
    db.execute("DELETE FROM sessions WHERE user_id = ?", [user_id])


def session_over(user):
    """Why `user`'s session must end now ("idle" or "lifetime"), or None.

    Both follow the CJIS Security Policy: a session lock after at most 30
    minutes of inactivity (5.5.5, AC-11), and session termination on a
    condition the agency sets (AC-12): here, no sign-in outlives a shift.
    """
    t = now()
    if t - user.row["session_started_at"] >= current_app.config["SESSION_MAX_HOURS"] * 3600:
        return "lifetime"
    seen = session.get("seen")
    if seen is not None and t - seen > current_app.config["SESSION_IDLE_MINUTES"] * 60:
        return "idle"
    return None


def note_activity(db, user):
    """Someone is at work in this session: keep it from the idle lock, and record when it was last seen."""
    t = now()
    session["seen"] = t
    # At most one write a minute per session: the record is for people reading it, not the lock.
    if t - user.row["session_seen_at"] >= 60:
        db.execute("UPDATE sessions SET last_seen_at = ? WHERE token_hash = ?", [t, _token_hash(session["sid"])])


@login_manager.unauthorized_handler
def unauthorized():
    """Someone not signed in: a page goes to the sign-in form and comes back after it.

    A POST cannot be replayed after signing in, and an htmx swap must not put the
    sign-in form inside a fragment, so both get a 401 instead: the sign-in form
    saying nothing was done, with HX-Redirect for htmx. The offline queue treats
    a 401 to a CIT request as "keep it and send it after sign-in".
    """
    if request.method == "GET" and not request.htmx:
        flash(login_manager.login_message)
        return redirect(url_for("auth.login", next=request.full_path.rstrip("?")))
    page = _safe_next(urlsplit(request.htmx.current_url or "").path) or url_for("home.index")
    return htmx_response(render_template(
        "auth/login.html", next_url=page, error=None,
        notice="You were signed out, so that was not done. Sign in, then try again.",
    ), 401, redirect=url_for("auth.login", next=page) if request.htmx else None)


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


def set_password(db, user_id, password_hash, must_change=False):
    """Store a new password hash, clear any lock-out, and sign the account out everywhere.

    `must_change` when someone other than the owner chose it (a coordinator's
    reset): the owner must then choose their own at first sign-in (ASVS 2.3.1).
    """
    accounts.store_password(db, user_id, password_hash, must_change)
    end_every_session(db, user_id)


def set_disabled(db, user_id, disabled):
    """Disable an account or enable it again; True if it changed.

    Disabling signs it out everywhere, takes it off duty and forgets its push
    subscriptions, so a lost phone stops receiving alerts even if the account
    comes back.
    """
    # Imported here: duty imports role_required from this module.
    from .duty import stand_down_everywhere

    changed = accounts.mark_disabled(db, user_id, disabled)
    if disabled and changed:
        end_every_session(db, user_id)
        stand_down_everywhere(db, user_id)
    return changed


def _safe_next(target):
    """Only same-site relative paths may be redirected to after sign-in."""
    # A control character cannot go into a Location header, and a backslash is a slash to some browsers.
    if not target or re.search(r"[\x00-\x1f\x7f\\]", target):
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
    row = accounts.user_by_username(db, username)
    if row is None or row["disabled"] or (row["locked_until"] and row["locked_until"] > now()):
        # One hash on every path, of the same cost: how long a refusal takes
        # must not tell a missing, disabled or locked account from a wrong password.
        check_password_hash(_dummy_hash(), password)
        return None
    if not check_password_hash(row["password_hash"], password):
        _count_failure(db, row)
        return None
    # The count starts again only once signing in is finished (finish_sign_in): a right password
    # followed by wrong second-factor codes must not wipe the count before each new guess.
    return row


def _count_failure(db, row):
    """Add one failed sign-in to the account, locking it at LOGIN_MAX_FAILURES."""
    with write_transaction(db):
        failures = accounts.count_failed_sign_in(db, row["id"])
        if failures >= current_app.config["LOGIN_MAX_FAILURES"]:
            accounts.lock_until(db, row["id"], now() + current_app.config["LOGIN_LOCK_SECONDS"])
            current_app.logger.warning("Account %s locked after %d failed sign-ins", row["username"], failures)
            audit.record(db, "account_locked", row["username"], f"after {failures} failed sign-ins", actor=(None, ""))


_DUMMY_HASHES = {}


def _dummy_hash():
    """A hash made the way real ones are now, so checking it costs what checking a real one does."""
    method = current_app.config.get("PASSWORD_HASH_METHOD", "scrypt")
    if method not in _DUMMY_HASHES:
        _DUMMY_HASHES[method] = generate_password_hash(secrets.token_urlsafe(16), method=method)
    return _DUMMY_HASHES[method]


def _address():
    """Where a sign-in comes from, as throttling sees it (the real client behind PROXY_FIX)."""
    return request.remote_addr or "unknown"


def _address_and_account():
    return f"{_address()}|{request.form.get('username', '')[:64].strip().lower()}"


def _failed(response):
    return response.status_code == 401


# Per-address limits on failed sign-ins, checked before any password is hashed.
# The limit for one account from one address sits below LOGIN_MAX_FAILURES, so
# one address can slow guessing at an account but never lock it: locking an
# officer out takes failures from several addresses (docs/SECURITY.md).
limiter = Limiter(_address)
THROTTLED = "Too many failed sign-ins from this network. Wait a few minutes, then try again, or ask your supervisor."


@limiter.request_filter
def _reads_are_never_limited():
    """Every limit here is on a POST (sign-in, passkey options): a page read skips the limiter's lookup of its route."""
    return request.method in ("GET", "HEAD", "OPTIONS")


def _sign_in_limit(setting, key_func):
    """A limit on failed sign-ins per `key_func`, read from the config `setting` when one arrives."""
    return limiter.limit(lambda: current_app.config[setting], key_func=key_func, methods=["POST"],
                         deduct_when=_failed, error_message=THROTTLED)


@bp.route("/login", methods=["GET", "POST"])
@_sign_in_limit("LOGIN_LIMIT_PER_ADDRESS", _address)
@_sign_in_limit("LOGIN_LIMIT_PER_ACCOUNT_AND_ADDRESS", _address_and_account)
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
            # The password is one factor: someone with (or who must have) a second goes on to it.
            from .second_factors import second_step

            return second_step(db, row, next_url) or finish_sign_in(row, "password", next_url)
        audit.record(db, "login_failed", username, actor=(None, ""))
        error = "Sign-in failed. Check your username and password, or ask your supervisor."
        status = 401
    return render_template("auth/login.html", error=error, next_url=next_url), status


def finish_sign_in(user, method, next_url=None, mfa=False):
    """Sign `user` (a `users` row or a User) in on this browser, by `method`, and return where to go next.

    Every way in ends here once its factors are checked: a password alone,
    a password and a second factor, a passkey, single sign-on. `method` is
    written to the audit log ("password", "password+totp", "passkey", "sso", ...).
    `mfa` says the identity provider's own MFA was counted (sso.py).
    Whoever was signed in on this browser before is signed out first, so on
    a shared car computer one officer never carries on in another's session.
    """
    row = user.row if isinstance(user, User) else user
    db = get_db()
    next_url = _safe_next(next_url)
    if current_user.is_authenticated or session.get("sid"):
        end_session(db)
    accounts.clear_failed_sign_ins(db, row["id"])
    start_session(db, row)
    session["sign_in_method"] = method.split("+")[0]
    audit.record(db, "login", row["username"], f"via {method}{', mfa' if mfa else ''}",
                 actor=(row["id"], row["username"]))
    if row["must_change_password"]:
        return redirect(url_for("auth.change_password"))
    return redirect(next_url or url_for("home.index"))


@bp.route("/logout", methods=["POST"])
def logout():
    """Sign out and go back to the sign-in form.

    It needs no CSRF token (security.py exempts it): a page cached before its
    session ended holds a dead token, and a sign-out that fails leaves the next
    officer at the car computer signed in as this one. A forged sign-out could
    only sign someone out, and cannot even do that from another site: the
    cookie is SameSite=Lax, so a cross-site POST arrives without it.
    """
    from . import sso  # imported here: sso builds on this module

    db = get_db()
    if current_user.is_authenticated:
        audit.record(db, "logout", current_user.username)
    provider_logout = sso.logout_url()  # before the session, which holds the ID token, is cleared
    end_session(db)
    flash("You are signed out.")
    response = redirect(provider_logout or url_for("auth.login", signed_out=1))
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
    errors = accounts.check_new_password(new, repeat, current_user.username)
    if current and new == current:
        errors.append("The new password must differ from the current one.")
    # Checked like a sign-in, so guesses here count towards the lock-out too.
    if not errors and not check_login(db, current_user.username, current):
        audit.record(db, "password_change_failed", current_user.username)
        locked = accounts.user_by_id(db, current_user.id)["locked_until"]
        minutes = current_app.config["LOGIN_LOCK_SECONDS"] // 60
        errors.append(f"Too many wrong passwords: try again in {minutes} minutes, or ask a coordinator."
                      if locked and locked > now() else "Your current password is not right.")
    if errors:
        return render_template("auth/password.html", errors=errors), 422
    with write_transaction(db):
        set_password(db, current_user.id, accounts.hash_password(new))
        audit.record(db, "password_changed", current_user.username)
        # Read inside the transaction: a change made at once on another device
        # must not leave this one holding a version that is no longer current.
        row = accounts.user_by_id(db, current_user.id)
    # This device stays signed in, in a new session under the new version.
    start_session(db, row)
    flash("Password changed. Any other device signed in as you has been signed out.")
    return redirect(url_for("home.index"), 303)


# While a password someone else chose stands, only changing it, signing out and the public files are open.
OPEN_UNTIL_PASSWORD_CHANGED = {"auth.change_password", "auth.logout", "auth.login", "static"}


def require_own_password():
    """Lead someone whose password a coordinator set to change it; nothing else opens until then (ASVS 2.3.1)."""
    if request.endpoint in OPEN_UNTIL_PASSWORD_CHANGED or request.blueprint == "pwa":
        return None
    if not (current_user.is_authenticated and current_user.row["must_change_password"]):
        return None
    if session.get("sign_in_method") == "sso":
        return None  # the password is not what this person signs in with
    if request.method == "GET" and not request.htmx:
        return redirect(url_for("auth.change_password"))
    return htmx_response(handle_http_error(Forbidden(
        "A coordinator set your password: choose your own first. Nothing was done.")),
        redirect=url_for("auth.change_password"))


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


def init_app(app):
    """Wire flask-login, sign-in throttling, the forced password change and the `users` commands into the app."""
    login_manager.init_app(app)
    app.config.setdefault("RATELIMIT_STORAGE_URI", "memory://")  # one process; see docs/DEPLOY.md for several
    app.config.setdefault("RATELIMIT_HEADERS_ENABLED", True)
    app.config.setdefault("LOGIN_LIMIT_PER_ACCOUNT_AND_ADDRESS", "4 per 15 minutes")
    app.config.setdefault("LOGIN_LIMIT_PER_ADDRESS", "30 per 15 minutes")
    limiter.init_app(app)
    app.before_request(require_own_password)
    app.cli.add_command(users_cli)
