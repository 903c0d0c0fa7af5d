"""Every setting fieldapp reads, once: its name, default, type and what it means.

create_app applies these defaults first; `instance/config.py` (or a test's
config) and then `FIELDAPP_*` environment variables override them. Flask
parses an environment value as JSON when it can (`FIELDAPP_ALERT_K=5` is the
number 5, `FIELDAPP_MFA_REQUIRED_ROLES='["cit"]'` a list) and keeps it as text
when it cannot (`FIELDAPP_DATABASE=/var/lib/fieldapp/fieldapp.db`). At start-up
every setting whose type is a number must be a number of 0 or more
(ops/startup.py). The README's table of settings is written from this list:
`flask --app fieldapp settings` (or `python -m fieldapp.settings`), and a test
fails when the two differ.

A new setting is a line here, read with `current_app.config["NAME"]` where it
is used; no module sets defaults of its own.
"""
import copy
import json
import os
import re
import sys
import time
from pathlib import Path
from collections.abc import Callable
from typing import Any, NamedTuple

import click

README = Path(__file__).resolve().parents[1] / "README.md"
START = "<!-- settings: written by `flask --app fieldapp settings` from fieldapp/settings.py; do not edit -->"
END = "<!-- settings: end -->"


class FromApp(NamedTuple):
    """A default worked out from the app (its instance folder, its code's folder)."""

    make: Callable[[Any], Any]
    shown: str


class Setting(NamedTuple):
    """One setting: its name in config, its default, the type(s) it may hold, and what it means."""

    name: str
    default: Any
    type: type | tuple
    meaning: str
    # The default as the README shows it, where the value itself would be long or mislead.
    shown: str | None = None

    def types(self):
        """The types the setting may hold, as a tuple."""
        return self.type if isinstance(self.type, tuple) else (self.type,)

    def is_number(self):
        """True for a setting that must be a number (checked at start-up)."""
        return set(self.types()) - {type(None)} <= {int, float}


NUMBER = (int, float)
LIST = (list, tuple)

SETTINGS = (
    # ---- Where things are ----
    Setting("INSTANCE_PATH", FromApp(lambda app: app.instance_path, "`instance/` beside the code"), str,
            "the instance folder: database, secrets, `config.py`; set it as the environment variable"
            " `FIELDAPP_INSTANCE_PATH` (it says where `config.py` is)"),
    Setting("DATABASE", FromApp(lambda app: os.path.join(app.instance_path, "fieldapp.db"), "`instance/fieldapp.db`"),
            str, "the SQLite database file"),
    Setting("CONTENT_DIR", FromApp(lambda app: str(Path(app.root_path).parent / "content"), "`content/` beside the code"),
            str, "our field cards"),
    Setting("CONTENT_DIRS", "", str,
            "the agency's own content folders (`:`-separated), which add to or override ours"),
    Setting("SECRET_KEY", None, (str, type(None)),
            "signs the session cookie; when unset, generated into `instance/secret_key` on first run"),
    Setting("CLOCK", time.time, Callable, "the clock the app reads (tests move it)", shown="`time.time`"),

    # ---- The web app: request size, cookies, sessions, proxies ----
    Setting("MAX_CONTENT_LENGTH", 64 * 1024, int, "largest request body accepted, in bytes"),
    Setting("SESSION_COOKIE_HTTPONLY", True, bool, "scripts cannot read the session cookie"),
    Setting("SESSION_COOKIE_SAMESITE", "Lax", str, "the session cookie is not sent with other sites' posts"),
    Setting("SESSION_IDLE_MINUTES", 30, NUMBER, "idle sign-out (CJIS session lock)"),
    # Absolute lifetime: a sign-in lasts a shift at most, however busy.
    Setting("SESSION_MAX_HOURS", 12, NUMBER, "a sign-in lasts one shift at most, however busy"),
    # A token lives as long as its session, which sign-in, sign-out and the idle
    # timeout all clear; Flask-WTF's default of one hour would fail a form on a
    # board left open and polled for longer than that.
    Setting("WTF_CSRF_TIME_LIMIT", None, (int, float, type(None)),
            "seconds a form's CSRF token lives; none: as long as its session"),
    Setting("PROXY_FIX", 0, int,
            "number of trusted reverse proxies in front (client IPs, scheme; the `Secure` cookie follows the host name)"),

    # ---- Signing in ----
    # NIST SP 800-63B rev. 4: at least 15 characters for a password that is the only factor.
    Setting("PASSWORD_MIN_LENGTH", 15, int, "shortest password accepted (NIST SP 800-63B rev. 4, single factor)"),
    Setting("PASSWORD_HASH_METHOD", "scrypt", str, "how passwords are hashed (werkzeug; tests use a faster method)"),
    Setting("LOGIN_MAX_FAILURES", 5, int, "failed sign-ins in a row that lock an account"),
    Setting("LOGIN_LOCK_SECONDS", 15 * 60, NUMBER, "how long a locked account stays locked"),
    Setting("LOGIN_LIMIT_PER_ACCOUNT_AND_ADDRESS", "4 per 15 minutes", str,
            "failed sign-ins to one account from one address before a 429 (below the 5 that lock an account)"),
    Setting("LOGIN_LIMIT_PER_ADDRESS", "30 per 15 minutes", str,
            "failed sign-ins from one address, all accounts together"),
    # A lock after each LOGIN_MAX_FAILURES more failures in a row, each longer than the last (seconds; null: until
    # a coordinator lets the account in); none: LOGIN_LOCK_SECONDS, an hour, then a coordinator.
    Setting("LOGIN_LOCK_SCHEDULE", None, (list, tuple, type(None)),
            "each lock after `LOGIN_MAX_FAILURES` more failures in a row; none: `LOGIN_LOCK_SECONDS`, an hour, then"
            " until a coordinator lets the account in"),
    Setting("LOGIN_ALERT_FAILURES", 10, int, "failures in a row at which coordinators are told"),
    # NIST SP 800-63B 5.2.2: no more than 100 consecutive failed attempts on one account.
    Setting("LOGIN_HARD_LIMIT", 100, int,
            "failures in a row after which the account waits for a coordinator, whatever the schedule (at most 100)"),
    Setting("STEP_UP_MINUTES", 5, NUMBER,
            "how long the password and second factor, once given, allow changes to how an account signs in"),
    Setting("NOTICE_DAYS", 14, NUMBER,
            "how long a change to an account's factors is shown again at each sign-in, and offered for removal at a"
            " password change"),
    Setting("PASSKEY_OPTIONS_LIMIT", "30 per minute", str,
            "passkey sign-in challenges one address may ask for (each is kept two minutes)"),
    Setting("RATELIMIT_STORAGE_URI", "memory://", str,
            "where the sign-in limits count: one process; with several gunicorn workers, a shared store"
            " (docs/DEPLOY.md)"),
    Setting("RATELIMIT_HEADERS_ENABLED", True, bool, "a 429 says when to try again"),
    # Every role, least to most trusted (identity.accounts.ROLES; a test holds them equal).
    Setting("MFA_REQUIRED_ROLES", ["clinical_partner", "officer", "dispatcher", "cit", "supervisor", "coordinator"], LIST,
            "roles that must have a second factor (the demo sets none; never in production)", shown="every role"),
    Setting("WEBAUTHN_RP_ID", "localhost", str,
            "the name passkeys are bound to: the host officers type, without scheme or port"),
    Setting("WEBAUTHN_ORIGIN", "http://localhost:5000", str, "exactly what the browser's address bar shows"),
    Setting("WEBAUTHN_RP_NAME", "fieldapp", str, "the name a phone or key shows when it asks"),

    # ---- Single sign-on (OpenID Connect; docs/DEPLOY.md) ----
    Setting("SSO_ISSUER", "", str, "the agency's OpenID Connect provider; empty: single sign-on is off"),
    # Only when discovery is not at the issuer (Entra ID's v1.0 tokens).
    Setting("SSO_METADATA_URL", "", str, "the provider's discovery document, when it is not at the issuer"),
    Setting("SSO_CLIENT_ID", "", str, "fieldapp's client id at the provider"),
    Setting("SSO_CLIENT_SECRET", "", str,
            "fieldapp's client secret: in `instance/config.py` or the environment, never in the repository"),
    Setting("SSO_NAME", "your agency account", str, "the button says \"Sign in with …\""),
    Setting("SSO_SCOPES", "openid profile email", str, "the scopes asked for"),
    Setting("SSO_USERNAME_CLAIM", "preferred_username", str, "the claim matched against fieldapp usernames"),
    Setting("SSO_ROLE_CLAIM", "groups", str, "the claim whose values `SSO_ROLE_MAP` maps to roles"),
    # Claim value -> role; empty: roles stay as coordinators set them.
    Setting("SSO_ROLE_MAP", {}, dict,
            "which claim values give which role; empty: roles stay as coordinators set them"),
    Setting("SSO_CREATE_ACCOUNTS", False, bool,
            "make an account at first sign-in for someone the provider knows and fieldapp does not"),
    Setting("SSO_MFA_FROM_IDP", False, bool, "count the provider's own MFA as the second factor, when the ID token says so"),
    Setting("SSO_MFA_AMR", ["mfa"], LIST, "`amr` values that count as the provider's MFA"),
    Setting("SSO_MFA_ACR", [], LIST, "`acr` values that count as the provider's MFA"),
    Setting("SSO_LINK_BY", {}, dict,
            "claims the agency vouches for as stable and verified, each mapped to `username` or `email`, that may"
            " link a first sign-in (docs/SSO.md); empty: only a coordinator's mapping or the owner links"),
    Setting("SSO_APPROVAL_ROLES", ["supervisor", "coordinator"], LIST,
            "roles whose first link waits for a coordinator's approval"),
    Setting("SSO_TENANT_ID", "", str, "Entra ID: the `tid` every ID token must carry; empty: not checked"),
    Setting("SSO_TIMEOUT", 10.0, NUMBER, "seconds to wait for the provider"),

    # ---- Requests and escalation: the policy each request keeps a copy of when it is made ----
    Setting("ALERT_K", 3, int, "specialists alerted at each step"),
    Setting("ALERT_RADIUS_KM", 15.0, NUMBER, "how far the first step looks"),
    Setting("ESCALATE_AFTER_S", 60, NUMBER, "no accept by then: next K and the supervisors"),
    Setting("ALL_HANDS_AFTER_S", 180, NUMBER, "no accept by then: every on-duty specialist; flagged unanswered"),
    Setting("POSITION_MAX_AGE_S", 15 * 60, NUMBER, "older positions give way to the district's centre"),
    Setting("CHECK_IN_MINUTES", 10, NUMBER, "on scene, a CIT officer checks in this often (fractions allowed); they may pick 5, 10, 20 or 30"),
    Setting("CHECK_IN_REPEAT_MINUTES", 5, NUMBER, "a missed check-in alarms again this often until contact is made"),
    # Per officer: more CIT requests than this in the window are refused, and supervisors told.
    Setting("REQUEST_RATE_MAX", 5, int,
            "CIT requests one officer may make per `REQUEST_RATE_WINDOW_S`; past it they are refused and the"
            " supervisors told"),
    Setting("REQUEST_RATE_WINDOW_S", 15 * 60, NUMBER, "the window for `REQUEST_RATE_MAX`"),
    Setting("STABILISATION_TOPIC", "scene-stabilisation", str,
            "the card the request page shows while the officer waits"),
    Setting("DISPATCH_PHONE", "911", str, "the number \"Call dispatch instead\" dials when a request is queued offline"),

    # ---- The encounter record at resolve (requests/encounter.py checks them at start-up) ----
    # The scale, lowest first.
    Setting("ENCOUNTER_FORCE_LEVELS", {
        "none": "None",
        "presence": "Officer presence",
        "verbal": "Verbal direction",
        "hands_on": "Hands-on",
        "less_lethal": "Less-lethal weapon",
        "firearm_pointed": "Firearm pointed",
        "firearm_discharged": "Firearm discharged",
    }, dict, "the scale for \"highest level of force\" at resolve, lowest first (`{\"key\": \"Label\", …}`)",
        shown="none … firearm discharged"),
    # Presence and verbal direction are levels of the scale, not force used: the yes/no
    # "force used" figure counts from this level up.
    Setting("ENCOUNTER_FORCE_USED_FROM", "hands_on", str, "the level from which the yes/no \"force used\" figure counts"),
    Setting("ENCOUNTER_TRANSPORT", {
        "none": "None",
        "crisis_centre": "Crisis receiving centre",
        "emergency_department": "Emergency department",
        "jail": "Jail",
        "home_family": "Home or family",
        "other": "Other",
    }, dict, "transport destinations (facilities) offered at resolve",
        shown="none, crisis receiving centre, emergency department, jail, home or family, other"),
    Setting("ENCOUNTER_AGE_BANDS", {
        "under_18": "Under 18",
        "18_24": "18–24",
        "25_34": "25–34",
        "35_44": "35–44",
        "45_54": "45–54",
        "55_64": "55–64",
        "65_plus": "65 or older",
    }, dict, "the age bands offered when `age_band` is on", shown="under 18 … 65 or older"),
    Setting("ENCOUNTER_REQUIRED", (), LIST,
            "encounter fields without a \"Not recorded\" answer: any of `force_level`, `transport`, `mh_evaluation`,"
            " `follow_up`"),
    # Off unless the agency turns them on.
    Setting("ENCOUNTER_DEMOGRAPHICS", (), LIST,
            "optional demographics asked at resolve: `age_band`, `veteran`; never required, never in pushes",
            shown="`[]` (off)"),

    # ---- Push, receipts and the backup channels ----
    Setting("VAPID_SUBJECT", "mailto:cit-coordinator@example.org", str,
            "contact the push services see (a `mailto:` or `https:` URL)"),
    Setting("PUSH_TTL", 300, NUMBER,
            "seconds an alert is worth delivering: the worker retries, and the push service holds it, that long"),
    Setting("PUSH_TIMEOUT", 5.0, NUMBER, "seconds one send to a push service may take"),
    Setting("PUSH_SERVICE_HOSTS", (), LIST,
            "push service hosts (and their subdomains) a device may subscribe through; empty: the browsers' own"
            " (Google, Mozilla, Apple, Microsoft)", shown="— (the browsers' own)"),
    Setting("PUSH_INSECURE_HOSTS", (), LIST,
            "hosts pushes may reach over http (tests only; keep empty)"),
    # Enough for a phone, a tablet and a car computer, with room for a replacement.
    Setting("PUSH_MAX_DEVICES", 5, int, "devices one account may get alerts on"),
    # Sends in a row that this device's subscription made fail before it is retired.
    Setting("PUSH_RETIRE_AFTER", 3, int, "sends in a row a device's own subscription made fail before it is removed"),
    # Delivery receipts: the board flags a request no phone confirmed within this many seconds,
    # and the specialist's backup channel is sent; the roster flags a silent specialist.
    Setting("RECEIPT_TIMEOUT_S", 20, NUMBER,
            "no phone of an alerted specialist confirmed delivery by then: the board flags the request and that"
            " specialist's own backup channel (set on the Duty page) is sent once"),
    Setting("RECEIPT_STALE_DAYS", 7, NUMBER,
            "the roster flags a specialist none of whose devices confirmed an alert (real or test) for this long"),
    Setting("APPRISE_URLS", [], LIST,
            "backup channel for escalations (SMS, e-mail, chat URLs understood by Apprise)"),
    Setting("AVL_TOKEN_DAYS", 90, NUMBER, "lifetime of a vehicle-location feed token (`units token NAME --days N`)"),

    # ---- Webhooks to the CAD ----
    Setting("WEBHOOK_INSECURE_HOSTS", (), LIST,
            "hosts webhooks may reach over http and on private addresses (tests only; keep empty)"),
    Setting("WEBHOOK_SECRET_OVERLAP_HOURS", 24, NUMBER, "after a rotation, how long the old webhook secret signs too"),
    Setting("API_READ_LIMIT", "120 per minute", str, "reads one API key may make; past them a 429 with `Retry-After`"),
    Setting("API_WRITE_LIMIT", "30 per minute", str, "writes one API key may make; past them a 429 with `Retry-After`"),
    Setting("API_BAD_KEY_LIMIT", "20 per minute", str, "calls with a wrong key one address may make before a 429"),
    Setting("WEBHOOK_TIMEOUT", 5.0, NUMBER, "seconds one webhook delivery may take"),

    # ---- The worker ----
    Setting("WORKER_IN_PROCESS", False, bool, "run the push worker inside the web process", shown="false (`make run` sets it)"),
    Setting("WORKER_BATCH", 50, int, "messages the worker takes at a time"),
    Setting("WORKER_LEASE_S", 30.0, NUMBER, "seconds a taken message is the worker's before another may retry it"),
    # A separate worker process cannot be woken, so it looks often; a look is one indexed read.
    Setting("WORKER_POLL_S", 0.1, NUMBER, "seconds between the worker's looks for work"),

    # ---- The program ----
    # CIT International: in-service at least every two years.
    Setting("INSERVICE_INTERVAL_DAYS", 730, NUMBER, "next in-service is due this long after a specialist's latest training"),
    Setting("SHIFT_STARTS", {"day": 7, "evening": 15, "night": 23}, dict,
            "the hour each shift starts, for coverage by shift"),
    # The coverage forecast's target per district and watch: NAMI Chicago asks for at least two;
    # Chicago's own policy says only "a sufficient number". A program choice, not a law.
    Setting("MIN_CIT_PER_SHIFT", 2, int,
            "the coverage forecast warns from the first day a district's watch has fewer certified specialists"
            " (a program target, not a law; NAMI Chicago asks for two)"),

    # ---- Operations: health, logs, records ----
    Setting("METRICS_TOKEN", "", str,
            "bearer token that lets a scraper off this machine read `/metrics` (loopback needs none)"),
    Setting("WORKER_STALE_S", 60, NUMBER, "`/readyz` fails when no worker has reported for longer"),
    Setting("OUTBOX_STALE_S", 60, NUMBER, "`/readyz` fails when a push has waited longer"),
    Setting("ESCALATION_LATE_S", 30, NUMBER, "`/readyz` fails when an escalation is this far past its deadline"),
    Setting("LOG_FORMAT", "json", str, "`json` (one object a line, for a SIEM) or `text`"),
    Setting("LOG_LEVEL", "INFO", str, "the app's and the worker's log level"),
    # ---- The map (fieldapp/maps, docs/MAPS.md) ----
    Setting("MAP_DIR", None, (str, type(None)), "where the imported basemap and address index live; none: `instance/map`"),
    Setting("MAP_NAVIGATE_URL", "https://www.google.com/maps/dir/?api=1&destination={lat},{lon}", str,
            "the Navigate link on a device that is not an iPhone, iPad, Android phone or Windows computer"
            " (`{lat}`, `{lon}` are filled in)"),
    # Straight-line distance times this is about the road distance in a city: the route factor of US urban
    # trips is 1.2–1.4 (Giacomin & Levinson 2015, "Road network circuity in metropolitan areas"); 1.3 is mid-range.
    Setting("MAP_DETOUR_FACTOR", 1.3, NUMBER, "road distance as a multiple of the straight line, for the estimated drive"),
    # An average urban driving speed without lights and siren (a CIT response is rarely code 3).
    Setting("MAP_SPEED_KMH", 40.0, NUMBER, "average driving speed for the estimated drive"),
    # At most the whole map of a county of a few thousand square kilometres (docs/MAPS.md has the sizes);
    # past this a device keeps the lower zooms first.
    Setting("MAP_OFFLINE_MB", 150, NUMBER, "megabytes of the basemap each device keeps for use without signal"),

    Setting("RETENTION", "180d", str, "how old a closed request must be before `purge` strips it (`purge --older-than`)"),
    Setting("BACKUP_KEY_FILE", "", str,
            "the age key that encrypts backups and Litestream's replica (`backup-key create`); empty:"
            " `instance/backup.key`; keep a copy offline"),
    Setting("BACKUP_DIR", FromApp(lambda app: os.path.join(os.path.dirname(app.instance_path.rstrip("/")), "backups"),
                                  "the instance folder's sibling `backups/`"),
            str, "where `upgrade` puts the backup it takes first"),
)

BY_NAME = {setting.name: setting for setting in SETTINGS}


def in_cli():
    """True while the `flask` command line is loading the app or running a command."""
    return click.get_current_context(silent=True) is not None


def refuse(message):
    """Stop with one line: a click error under the CLI, else a line on stderr and exit status 4.

    4 is gunicorn's "App failed to load": its arbiter then halts instead of
    restarting the worker forever.
    """
    if in_cli():
        raise click.ClickException(message)
    print(f"fieldapp: {message}", file=sys.stderr, flush=True)
    raise SystemExit(4)


def defaults(app):
    """Every setting's default for `app`, as a mapping for `app.config.from_mapping`.

    Each app gets its own copy of a list or mapping, so one app (or test) that
    changes its config never changes another's.
    """
    return {s.name: s.default.make(app) if isinstance(s.default, FromApp) else copy.deepcopy(s.default)
            for s in SETTINGS}


# ---- The README's table ----

_TYPE_NAMES = {int: "integer", float: "number", str: "text", bool: "true/false", list: "list", tuple: "list",
               dict: "mapping", type(None): "none"}


def type_name(setting):
    """The setting's type in words, e.g. "integer", "number" (an integer or not) or "number or none"."""
    types = setting.types()
    names = ["number" if t is int and float in types else _TYPE_NAMES.get(t, "function") for t in types]
    return " or ".join(dict.fromkeys(names))


def shown_default(setting):
    """The default as the README shows it."""
    if setting.shown is not None:
        return setting.shown
    value = setting.default
    if isinstance(value, FromApp):
        return value.shown
    if value is None or value == "":
        return "—"
    if isinstance(value, str):
        return f"`{value}`"
    return f"`{json.dumps(list(value) if isinstance(value, tuple) else value)}`"


def render_table():
    """The README's settings table, between its markers."""
    rows = [START, "", "| Setting | Default | Type | Meaning |", "|---|---|---|---|"]
    rows += [f"| `{s.name}` | {shown_default(s)} | {type_name(s)} | {s.meaning} |" for s in SETTINGS]
    return "\n".join(rows + ["", END])


def readme_with_table(text):
    """The README's text with its settings table replaced by the current one."""
    pattern = re.compile(re.escape(START) + ".*?" + re.escape(END), re.S)
    if not pattern.search(text):
        raise click.ClickException(f"README.md has no settings table between its markers ({START}).")
    return pattern.sub(lambda _: render_table(), text)


@click.command("settings")
def settings_command():
    """Write the table of settings in README.md from fieldapp/settings.py (a test fails while they differ)."""
    README.write_text(readme_with_table(README.read_text(encoding="utf-8")), encoding="utf-8")
    click.echo(f"Wrote the settings table in {README} ({len(SETTINGS)} settings).")


def init_app(app):
    """Register the `settings` command."""
    app.cli.add_command(settings_command)


if __name__ == "__main__":
    # `python -m fieldapp.settings` works without an instance folder, as in CI.
    settings_command()
