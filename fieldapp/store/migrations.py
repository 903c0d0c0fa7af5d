"""The database's schema: the append-only migrations m001 onwards.

A schema change is a new function at the bottom of this list, never an edit to an
old one: a deployed database has run the old ones already. `db.migrate()` applies
what is pending; `migrate --create` makes a new database. A migration reads
nothing from the live code: what it creates (role lists, trigger text, table
lists) is frozen here, so a new install and an upgraded one end the same.
"""
import re

from sqlite_utils.migrations import Migrations

migrations = Migrations("fieldapp")

# The roles the users table's CHECK accepts, frozen. m018 rebuilds an older table with them;
# since then m001 creates it with them, so a new install needs no rebuild. A new role is a new
# migration that rebuilds the table with a frozen list of its own, as m024 does, never an edit here.
_ROLES = ("officer", "dispatcher", "cit", "supervisor", "coordinator")
# m024's list: the clinical partner, who opens only the content review pages, comes first (least
# trusted first; SSO picks the most trusted of several mapped groups). The domain's list is
# identity.accounts.ROLES, and a test holds it equal to the newest frozen list.
_ROLES_M024 = ("clinical_partner", "officer", "dispatcher", "cit", "supervisor", "coordinator")


@migrations()
def m001_accounts(db):
    db.executescript(
        f"""
        CREATE TABLE users (
            id INTEGER PRIMARY KEY,
            username TEXT NOT NULL UNIQUE COLLATE NOCASE,
            display_name TEXT NOT NULL,
            role TEXT NOT NULL CHECK (role IN ({", ".join(repr(r) for r in _ROLES)})),
            password_hash TEXT NOT NULL,
            unit TEXT NOT NULL DEFAULT '',
            phone TEXT NOT NULL DEFAULT '',
            disabled INTEGER NOT NULL DEFAULT 0,
            created_at REAL NOT NULL,
            failed_logins INTEGER NOT NULL DEFAULT 0,
            locked_until REAL
        );
        """
    )


@migrations()
def m002_duty(db):
    db.executescript(
        """
        CREATE TABLE districts (
            name TEXT PRIMARY KEY,
            lat REAL NOT NULL,
            lon REAL NOT NULL
        );
        -- One row per specialist: whether they are on duty and their last known position.
        CREATE TABLE duty (
            user_id INTEGER PRIMARY KEY REFERENCES users(id) ON DELETE CASCADE,
            on_duty INTEGER NOT NULL DEFAULT 0,
            district TEXT REFERENCES districts(name),
            since REAL,
            lat REAL,
            lon REAL,
            accuracy_m REAL,
            position_at REAL,
            position_source TEXT
        );
        CREATE INDEX duty_on_duty ON duty(on_duty, lat, lon);
        CREATE TABLE push_subscriptions (
            id INTEGER PRIMARY KEY,
            user_id INTEGER NOT NULL REFERENCES users(id) ON DELETE CASCADE,
            endpoint TEXT NOT NULL UNIQUE,
            p256dh TEXT NOT NULL,
            auth TEXT NOT NULL,
            created_at REAL NOT NULL,
            last_success_at REAL
        );
        CREATE INDEX push_subscriptions_user ON push_subscriptions(user_id);
        -- Bearer tokens for a department's vehicle-location (AVL/MDT) feed, stored hashed.
        CREATE TABLE device_tokens (
            id INTEGER PRIMARY KEY,
            user_id INTEGER NOT NULL REFERENCES users(id) ON DELETE CASCADE,
            token_hash TEXT NOT NULL UNIQUE,
            label TEXT NOT NULL DEFAULT '',
            created_at REAL NOT NULL
        );
        """
    )


@migrations()
def m003_requests(db):
    db.executescript(
        """
        CREATE TABLE cit_requests (
            id INTEGER PRIMARY KEY,
            client_id TEXT UNIQUE,
            requester_id INTEGER NOT NULL REFERENCES users(id),
            state TEXT NOT NULL,
            created_at REAL NOT NULL,
            lat REAL,
            lon REAL,
            accuracy_m REAL,
            location_text TEXT NOT NULL DEFAULT '',
            note TEXT NOT NULL DEFAULT '',
            weapon INTEGER NOT NULL DEFAULT 0,
            medical INTEGER NOT NULL DEFAULT 0,
            juvenile INTEGER NOT NULL DEFAULT 0,
            observations TEXT NOT NULL DEFAULT '[]',
            policy TEXT NOT NULL,
            escalation_step INTEGER NOT NULL DEFAULT 0,
            next_escalation_at REAL,
            unanswered INTEGER NOT NULL DEFAULT 0,
            assigned_id INTEGER REFERENCES users(id),
            accepted_at REAL,
            on_scene_at REAL,
            stabilised_at REAL,
            closed_at REAL,
            disposition TEXT,
            cancel_reason TEXT,
            updated_at REAL NOT NULL
        );
        CREATE INDEX cit_requests_open ON cit_requests(state, next_escalation_at);
        CREATE INDEX cit_requests_requester ON cit_requests(requester_id, created_at);
        -- Append-only: who moved a request, to what, when.
        CREATE TABLE request_events (
            id INTEGER PRIMARY KEY,
            request_id INTEGER NOT NULL REFERENCES cit_requests(id),
            at REAL NOT NULL,
            actor_id INTEGER REFERENCES users(id),
            event TEXT NOT NULL,
            detail TEXT NOT NULL DEFAULT ''
        );
        CREATE INDEX request_events_request ON request_events(request_id, id);
        CREATE TRIGGER request_events_append_only_update BEFORE UPDATE ON request_events
        BEGIN SELECT RAISE(ABORT, 'request_events is append-only'); END;
        CREATE TRIGGER request_events_append_only_delete BEFORE DELETE ON request_events
        BEGIN SELECT RAISE(ABORT, 'request_events is append-only'); END;
        -- Who was alerted for a request, at which escalation step, and what they said.
        CREATE TABLE alerts (
            id INTEGER PRIMARY KEY,
            request_id INTEGER NOT NULL REFERENCES cit_requests(id),
            user_id INTEGER NOT NULL REFERENCES users(id),
            step INTEGER NOT NULL,
            distance_m REAL,
            at REAL NOT NULL,
            declined_at REAL,
            decline_reason TEXT,
            UNIQUE (request_id, user_id)
        );
        -- Push messages waiting to be sent; the worker leases rows so two workers never send the same one.
        CREATE TABLE outbox (
            id INTEGER PRIMARY KEY,
            request_id INTEGER REFERENCES cit_requests(id),
            user_id INTEGER NOT NULL REFERENCES users(id),
            subscription_id INTEGER REFERENCES push_subscriptions(id) ON DELETE SET NULL,
            payload TEXT NOT NULL,
            topic TEXT NOT NULL,
            state TEXT NOT NULL DEFAULT 'pending',
            attempts INTEGER NOT NULL DEFAULT 0,
            next_attempt_at REAL NOT NULL,
            lease_owner TEXT,
            lease_until REAL,
            created_at REAL NOT NULL,
            sent_at REAL,
            last_status INTEGER
        );
        CREATE INDEX outbox_due ON outbox(state, next_attempt_at);
        CREATE TABLE push_attempts (
            id INTEGER PRIMARY KEY,
            outbox_id INTEGER NOT NULL REFERENCES outbox(id),
            at REAL NOT NULL,
            status INTEGER,
            error TEXT NOT NULL DEFAULT '',
            duration_ms REAL
        );
        """
    )


@migrations()
def m004_program(db):
    db.executescript(
        """
        -- The CIT roster: what the program knows of each specialist beyond their account.
        CREATE TABLE roster (
            user_id INTEGER PRIMARY KEY REFERENCES users(id) ON DELETE CASCADE,
            volunteered_on TEXT,
            supervisor_recommendation TEXT NOT NULL DEFAULT '',
            interview_notes TEXT NOT NULL DEFAULT '',
            course_completed_on TEXT,
            districts TEXT NOT NULL DEFAULT '',
            shifts TEXT NOT NULL DEFAULT '',
            active INTEGER NOT NULL DEFAULT 1,
            updated_at REAL
        );
        CREATE TABLE inservice_training (
            id INTEGER PRIMARY KEY,
            user_id INTEGER NOT NULL REFERENCES users(id) ON DELETE CASCADE,
            completed_on TEXT NOT NULL,
            title TEXT NOT NULL DEFAULT ''
        );
        CREATE INDEX inservice_training_user ON inservice_training(user_id, completed_on);
        -- Entered at resolve time for the program's evaluation.
        ALTER TABLE cit_requests ADD COLUMN force_used INTEGER;
        ALTER TABLE cit_requests ADD COLUMN officer_injured INTEGER;
        ALTER TABLE cit_requests ADD COLUMN person_injured INTEGER;
        ALTER TABLE cit_requests ADD COLUMN referral TEXT NOT NULL DEFAULT '';
        """
    )


@migrations()
def m005_audit_log(db):
    db.executescript(
        """
        -- Append-only record of who did what: logins, role changes, request changes, exports.
        CREATE TABLE audit_log (
            id INTEGER PRIMARY KEY,
            at REAL NOT NULL,
            actor_id INTEGER REFERENCES users(id),
            actor_name TEXT NOT NULL DEFAULT '',
            action TEXT NOT NULL,
            subject TEXT NOT NULL DEFAULT '',
            detail TEXT NOT NULL DEFAULT '',
            ip TEXT NOT NULL DEFAULT ''
        );
        CREATE INDEX audit_log_at ON audit_log(at);
        CREATE TRIGGER audit_log_append_only_update BEFORE UPDATE ON audit_log
        BEGIN SELECT RAISE(ABORT, 'audit_log is append-only'); END;
        CREATE TRIGGER audit_log_append_only_delete BEFORE DELETE ON audit_log
        BEGIN SELECT RAISE(ABORT, 'audit_log is append-only'); END;
        """
    )


@migrations()
def m006_position_index(db):
    # An R*Tree over on-duty specialists' positions, kept by triggers, so
    # choosing the nearest never scans every specialist.
    db.executescript(
        """
        CREATE VIRTUAL TABLE duty_positions USING rtree(user_id, min_lat, max_lat, min_lon, max_lon);
        CREATE TRIGGER duty_positions_insert AFTER INSERT ON duty
        WHEN NEW.on_duty = 1 AND NEW.lat IS NOT NULL
        BEGIN
            INSERT OR REPLACE INTO duty_positions VALUES (NEW.user_id, NEW.lat, NEW.lat, NEW.lon, NEW.lon);
        END;
        CREATE TRIGGER duty_positions_update AFTER UPDATE OF on_duty, lat, lon ON duty
        BEGIN
            DELETE FROM duty_positions WHERE user_id = OLD.user_id;
            INSERT INTO duty_positions SELECT NEW.user_id, NEW.lat, NEW.lat, NEW.lon, NEW.lon
            WHERE NEW.on_duty = 1 AND NEW.lat IS NOT NULL;
        END;
        CREATE TRIGGER duty_positions_delete AFTER DELETE ON duty
        BEGIN
            DELETE FROM duty_positions WHERE user_id = OLD.user_id;
        END;
        INSERT INTO duty_positions SELECT user_id, lat, lat, lon, lon FROM duty WHERE on_duty = 1 AND lat IS NOT NULL;
        """
    )


@migrations()
def m007_lookup_indexes(db):
    db.executescript(
        """
        -- Stale positions stand in as their district's centre: find them by district.
        CREATE INDEX duty_district ON duty(district);
        -- The board counts each open request's failed alerts on every poll.
        CREATE INDEX outbox_request ON outbox(request_id, state);
        """
    )


@migrations()
def m008_session_version(db):
    # Part of every session's user id: raising it signs the account out everywhere,
    # as after a lost phone, a password change or a disabled account.
    db["users"].add_column("session_version", int, not_null_default=0)


@migrations()
def m009_content_signoff(db):
    # Who vouched for which text of a card (program/content_review.py). A sign-off names
    # the card's hash, so a changed card is no longer signed off; the log is
    # evidence for the steering committee, so it is append-only like the audit log.
    db.executescript(
        """
        CREATE TABLE content_signoffs (
            id INTEGER PRIMARY KEY,
            slug TEXT NOT NULL,
            title TEXT NOT NULL,
            kind TEXT NOT NULL,
            content_hash TEXT NOT NULL,
            reviewer_name TEXT NOT NULL,
            reviewer_role TEXT NOT NULL,
            signed_on TEXT NOT NULL,
            recorded_at REAL NOT NULL,
            recorded_by INTEGER REFERENCES users(id)
        );
        CREATE INDEX content_signoffs_slug ON content_signoffs(slug, content_hash);
        CREATE TRIGGER content_signoffs_append_only_update BEFORE UPDATE ON content_signoffs
        BEGIN SELECT RAISE(ABORT, 'content_signoffs is append-only'); END;
        CREATE TRIGGER content_signoffs_append_only_delete BEFORE DELETE ON content_signoffs
        BEGIN SELECT RAISE(ABORT, 'content_signoffs is append-only'); END;
        """
    )


@migrations()
def m010_push_failures(db):
    db.executescript(
        """
        -- Consecutive sends this device itself made fail; it is retired at PUSH_RETIRE_AFTER.
        ALTER TABLE push_subscriptions ADD COLUMN failures INTEGER NOT NULL DEFAULT 0;
        -- Devices taken off alerts, kept until their owner subscribes again so the Duty page can say so.
        CREATE TABLE retired_devices (
            id INTEGER PRIMARY KEY,
            user_id INTEGER NOT NULL REFERENCES users(id) ON DELETE CASCADE,
            at REAL NOT NULL,
            reason TEXT NOT NULL
        );
        CREATE INDEX retired_devices_user ON retired_devices(user_id);
        -- Vehicle-location feed tokens expire. Older ones get the default 90 days from this
        -- upgrade, so no car's feed stops the moment it is deployed.
        ALTER TABLE device_tokens ADD COLUMN expires_at REAL;
        UPDATE device_tokens SET expires_at = CAST(strftime('%s', 'now') AS REAL) + 90 * 86400;
        -- A disabled account's feed tokens are revoked, so enabling it again needs a new token.
        CREATE TRIGGER device_tokens_revoked_on_disable AFTER UPDATE OF disabled ON users
        WHEN NEW.disabled = 1
        BEGIN
            DELETE FROM device_tokens WHERE user_id = NEW.id;
        END;
        """
    )


@migrations()
def m011_sessions(db):
    db.executescript(
        """
        -- One row per signed-in browser: sign-out, a password change or a disabled
        -- account deletes it, so a copied cookie dies with it. Only a hash of the
        -- session's secret is kept, so a copy of the database signs no one in.
        CREATE TABLE sessions (
            id INTEGER PRIMARY KEY,
            token_hash TEXT NOT NULL UNIQUE,
            user_id INTEGER NOT NULL REFERENCES users(id) ON DELETE CASCADE,
            created_at REAL NOT NULL,
            last_seen_at REAL NOT NULL,
            user_agent TEXT NOT NULL DEFAULT '',
            ip TEXT NOT NULL DEFAULT ''
        );
        CREATE INDEX sessions_user ON sessions(user_id);
        -- Set when someone else chose the password (a coordinator's reset, a new
        -- account): the owner must choose their own at first sign-in (ASVS 2.3.1).
        ALTER TABLE users ADD COLUMN must_change_password INTEGER NOT NULL DEFAULT 0;
        """
    )


@migrations(transactional=False)
def m012_request_limits(db):
    # A device's offline-queue id is unique per requester, not across the agency:
    # another officer's device choosing the same id must not have its request
    # silently taken for a repeat. SQLite cannot drop a column's UNIQUE, so the
    # table is rebuilt (sqlite-utils' transform, less that one constraint). The
    # rebuild needs foreign keys off, which SQLite ignores inside a transaction:
    # hence its own transaction here, checked before it commits.
    sqls = [sql.replace('"client_id" TEXT UNIQUE', '"client_id" TEXT') for sql in db["cit_requests"].transform_sql()]
    db.execute("PRAGMA foreign_keys = OFF")
    try:
        with db.atomic():
            for sql in sqls:
                db.execute(sql)
            db.execute("CREATE UNIQUE INDEX IF NOT EXISTS cit_requests_client ON cit_requests(requester_id, client_id)")
            broken = db.execute("PRAGMA foreign_key_check").fetchall()
            if broken:
                raise RuntimeError(f"m012_request_limits would break references: {broken[:5]}")
    finally:
        db.execute("PRAGMA foreign_keys = ON")


@migrations()
def m013_second_factors(db):
    db.executescript(
        """
        -- Passkeys and security keys (WebAuthn): a public key per credential, never a secret.
        CREATE TABLE passkeys (
            id INTEGER PRIMARY KEY,
            user_id INTEGER NOT NULL REFERENCES users(id) ON DELETE CASCADE,
            credential_id TEXT NOT NULL UNIQUE,
            public_key BLOB NOT NULL,
            -- The authenticator's signature counter: one that goes backwards is a possible clone.
            sign_count INTEGER NOT NULL DEFAULT 0,
            user_handle TEXT NOT NULL,
            name TEXT NOT NULL,
            transports TEXT NOT NULL DEFAULT '',
            created_at REAL NOT NULL,
            last_used_at REAL
        );
        CREATE INDEX passkeys_user ON passkeys(user_id);
        -- An authenticator app's secret, encrypted with a key kept in instance/. It counts
        -- once confirmed; last_step refuses a code a second time (RFC 6238, 5.2).
        CREATE TABLE totp_secrets (
            user_id INTEGER PRIMARY KEY REFERENCES users(id) ON DELETE CASCADE,
            secret TEXT NOT NULL,
            confirmed_at REAL,
            last_step INTEGER NOT NULL DEFAULT 0
        );
        -- Ten single-use codes, hashed like passwords; a used one stays to say so.
        CREATE TABLE recovery_codes (
            id INTEGER PRIMARY KEY,
            user_id INTEGER NOT NULL REFERENCES users(id) ON DELETE CASCADE,
            code_hash TEXT NOT NULL,
            used_at REAL
        );
        CREATE INDEX recovery_codes_user ON recovery_codes(user_id);
        -- Each WebAuthn challenge is kept until used once or expired, so an answer cannot be replayed.
        CREATE TABLE webauthn_challenges (
            challenge_hash TEXT PRIMARY KEY,
            purpose TEXT NOT NULL,
            user_id INTEGER REFERENCES users(id) ON DELETE CASCADE,
            expires_at REAL NOT NULL
        );
        """
    )


@migrations()
def m014_single_sign_on(db):
    db.executescript(
        """
        -- An e-mail address a coordinator may set, so a single sign-on can find the account by it.
        ALTER TABLE users ADD COLUMN email TEXT;
        CREATE UNIQUE INDEX users_email ON users(email COLLATE NOCASE) WHERE email IS NOT NULL;
        -- Which person at the identity provider (issuer and subject) an account is, from its first
        -- single sign-on on: a later change of name or e-mail there cannot move them to another account.
        CREATE TABLE sso_links (
            issuer TEXT NOT NULL,
            subject TEXT NOT NULL,
            user_id INTEGER NOT NULL REFERENCES users(id) ON DELETE CASCADE,
            created_at REAL NOT NULL,
            PRIMARY KEY (issuer, subject),
            UNIQUE (issuer, user_id)
        );
        """
    )


@migrations()
def m015_health(db):
    db.executescript(
        """
        -- Each worker's last pass, for readiness and metrics (health.py).
        CREATE TABLE worker_heartbeats (
            worker TEXT PRIMARY KEY,
            at REAL NOT NULL
        );
        -- Every backup-channel (Apprise) send and whether a channel took it, for metrics.
        CREATE TABLE backup_channel_sends (
            id INTEGER PRIMARY KEY,
            at REAL NOT NULL,
            title TEXT NOT NULL DEFAULT '',
            ok INTEGER NOT NULL
        );
        -- Metrics count sign-in failures and lock-outs by action at every scrape.
        CREATE INDEX audit_log_action ON audit_log(action);
        """
    )


@migrations()
def m016_delivery_receipts(db):
    db.executescript(
        """
        -- One row per alert per device (or per test alert): the service worker reports delivery
        -- and "seen" with the token the push carried. Only a hash of the token is kept, and the
        -- lookup is one probe of the unique index, so forged receipts cost little.
        CREATE TABLE alert_receipts (
            id INTEGER PRIMARY KEY,
            token_hash TEXT NOT NULL UNIQUE,
            kind TEXT NOT NULL,
            request_id INTEGER REFERENCES cit_requests(id),
            user_id INTEGER NOT NULL REFERENCES users(id) ON DELETE CASCADE,
            subscription_id INTEGER REFERENCES push_subscriptions(id) ON DELETE SET NULL,
            created_at REAL NOT NULL,
            expires_at REAL NOT NULL,
            delivered_at REAL,
            seen_at REAL
        );
        CREATE INDEX alert_receipts_request ON alert_receipts(request_id, user_id);
        CREATE INDEX alert_receipts_user ON alert_receipts(user_id, delivered_at);
        -- How a row leaves the server: a Web Push, or a specialist's own backup channel (Apprise).
        ALTER TABLE outbox ADD COLUMN channel TEXT NOT NULL DEFAULT 'push';
        -- When this specialist's backup channel was sent for this alert: at most once.
        ALTER TABLE alerts ADD COLUMN fallback_at REAL;
        -- A specialist's personal backup channel, an Apprise URL (a secret: shown masked).
        CREATE TABLE fallback_channels (
            user_id INTEGER PRIMARY KEY REFERENCES users(id) ON DELETE CASCADE,
            url TEXT NOT NULL,
            set_by INTEGER REFERENCES users(id),
            set_at REAL NOT NULL
        );
        -- A drill runs the whole loop, is marked DRILL everywhere, and is never counted in reports.
        ALTER TABLE cit_requests ADD COLUMN drill INTEGER NOT NULL DEFAULT 0;
        """
    )


# ---- Frozen helpers: the trigger text m017, m022 and m023 create ----
# Copied here from changes.py when it stopped making triggers, and never to be
# edited: a migration that called live code would give a new install other
# triggers than an upgraded one got. Different triggers are a new migration
# with a helper of its own.


def _counter_triggers(tables, update_columns=None, part=None):
    """The SQL that creates the counter's three triggers on each of `tables`.

    `update_columns` ({table: columns}) limits a table's update trigger to those
    columns. With `part`, the triggers move that part's counter in `part_counters`.
    """
    update_columns = update_columns or {}
    name, bump = (f"part_counter_{part}", f"UPDATE part_counters SET n = n + 1 WHERE part = '{part}'") if part else (
        "change_counter", "UPDATE change_counter SET n = n + 1 WHERE id = 1")

    def event(op, table):
        columns = update_columns.get(table) if op == "UPDATE" else None
        return f"UPDATE OF {', '.join(columns)}" if columns else op

    return "\n".join(
        f"CREATE TRIGGER {name}_{table}_{op.lower()} AFTER {event(op, table)} ON {table} BEGIN {bump}; END;"
        for table in tables
        for op in ("INSERT", "UPDATE", "DELETE")
    )


def _touch_triggers(tables):
    """The SQL that logs, in `request_touches`, the request each write to `tables` touched.

    `tables` is {table: (request column, columns whose update counts, or None for all)}.
    """
    def trigger(table, op, column, columns):
        event = f"UPDATE OF {', '.join(columns)}" if op == "UPDATE" and columns else op
        # Not every outbox row or receipt belongs to a request (board pushes, test pushes);
        # an update that moved a row to another request touches both.
        rows = {"INSERT": ["NEW"], "DELETE": ["OLD"], "UPDATE": ["NEW", "OLD"]}[op]
        body = " ".join(
            f"INSERT INTO request_touches (request_id) SELECT {row}.{column} WHERE {row}.{column} IS NOT NULL"
            + (f" AND OLD.{column} IS NOT NEW.{column};" if row == "OLD" and op == "UPDATE" else ";")
            for row in rows)
        return f"CREATE TRIGGER request_touch_{table}_{op.lower()} AFTER {event} ON {table} BEGIN {body} END;"

    return "\n".join(trigger(table, op, column, columns)
                     for table, (column, columns) in tables.items() for op in ("INSERT", "UPDATE", "DELETE"))


# The tables the board's and the request page's live parts read, frozen as of m017
# (m022 adds two); a table read later gets its triggers in a migration of its own.
# tests/test_live.py reads these lists: a live part reading a table none of them
# names fails there.
M017_COUNTED_TABLES = ("alerts", "cit_requests", "districts", "duty", "inservice_training", "outbox",
                       "request_events", "roster", "users")
# A position report changes no live part but the viewer's own (its key holds that position).
M017_UPDATE_COLUMNS = {"duty": ("user_id", "on_duty", "district")}


@migrations()
def m017_change_counter(db):
    # The live polls' change counter (changes.py): bumped by triggers on every table
    # the board and the request page read.
    db.executescript(
        "CREATE TABLE change_counter (id INTEGER PRIMARY KEY CHECK (id = 1), n INTEGER NOT NULL);"
        " INSERT INTO change_counter (id, n) VALUES (1, 0);\n"
        + _counter_triggers(M017_COUNTED_TABLES, M017_UPDATE_COLUMNS)
    )
    # A supervisor's device that asked, on the board, for a silent push at each change (requests/updates.py).
    db["push_subscriptions"].add_column("board_alerts", int, not_null_default=0)


@migrations(transactional=False)
def m018_dispatch(db):
    # The dispatcher role: SQLite cannot alter a CHECK, so the users table is
    # rebuilt as m012 rebuilt cit_requests, in its own transaction with foreign
    # keys off (SQLite ignores that pragma inside one), checked before it commits.
    old_check = "'officer', 'cit', 'supervisor', 'coordinator'"
    rebuild = []
    if old_check in db["users"].schema:
        rebuild = [sql.replace(old_check, ", ".join(repr(r) for r in _ROLES)) for sql in db["users"].transform_sql()]
    db.execute("PRAGMA foreign_keys = OFF")
    try:
        with db.atomic():
            for sql in rebuild + [s.strip() for s in M018_SCHEMA.split(";") if s.strip()]:
                db.execute(sql)
            broken = db.execute("PRAGMA foreign_key_check").fetchall()
            if broken:
                raise RuntimeError(f"m018_dispatch would break references: {broken[:5]}")
    finally:
        db.execute("PRAGMA foreign_keys = ON")


M018_SCHEMA = """
        -- A request from dispatch or CAD: the CAD incident number, the district
        -- typed with an address, the patrol officer attached later, and the
        -- hash of the API body its idempotency key was first used with.
        ALTER TABLE cit_requests ADD COLUMN cad_incident TEXT;
        ALTER TABLE cit_requests ADD COLUMN district TEXT;
        ALTER TABLE cit_requests ADD COLUMN patrol_officer_id INTEGER REFERENCES users(id);
        ALTER TABLE cit_requests ADD COLUMN client_body_hash TEXT;
        CREATE INDEX cit_requests_patrol ON cit_requests(patrol_officer_id);
        -- One key per CAD integration, kept as a SHA-256 only.
        CREATE TABLE api_keys (
            id INTEGER PRIMARY KEY,
            name TEXT NOT NULL UNIQUE COLLATE NOCASE,
            key_hash TEXT NOT NULL UNIQUE,
            scopes TEXT NOT NULL,
            user_id INTEGER NOT NULL REFERENCES users(id),
            created_at REAL NOT NULL,
            last_used_at REAL,
            revoked_at REAL
        );
        -- Coordinators' webhook endpoints and each event's delivery (an outbox of its own).
        CREATE TABLE webhook_endpoints (
            id INTEGER PRIMARY KEY,
            url TEXT NOT NULL,
            events TEXT NOT NULL,
            secret TEXT NOT NULL,
            include_notes INTEGER NOT NULL DEFAULT 0,
            created_at REAL NOT NULL,
            disabled_at REAL
        );
        CREATE TABLE webhook_deliveries (
            id INTEGER PRIMARY KEY,
            endpoint_id INTEGER NOT NULL REFERENCES webhook_endpoints(id),
            request_id INTEGER REFERENCES cit_requests(id),
            event TEXT NOT NULL,
            message_id TEXT NOT NULL UNIQUE,
            payload TEXT NOT NULL,
            state TEXT NOT NULL DEFAULT 'pending',
            attempts INTEGER NOT NULL DEFAULT 0,
            next_attempt_at REAL NOT NULL,
            lease_owner TEXT,
            lease_until REAL,
            created_at REAL NOT NULL,
            sent_at REAL,
            last_status INTEGER,
            last_error TEXT NOT NULL DEFAULT ''
        );
        CREATE INDEX webhook_deliveries_due ON webhook_deliveries(state, next_attempt_at);
        CREATE INDEX webhook_deliveries_endpoint ON webhook_deliveries(endpoint_id, id);
        """


@migrations()
def m019_encounter_record(db):
    db.executescript(
        """
        -- The encounter record at resolve (requests/encounter.py); NULL is "not recorded".
        ALTER TABLE cit_requests ADD COLUMN force_level TEXT;
        ALTER TABLE cit_requests ADD COLUMN transport TEXT;
        ALTER TABLE cit_requests ADD COLUMN mh_evaluation TEXT;
        ALTER TABLE cit_requests ADD COLUMN follow_up TEXT;
        -- Optional demographics, only where the agency turns them on; never in pushes or webhooks.
        ALTER TABLE cit_requests ADD COLUMN age_band TEXT;
        ALTER TABLE cit_requests ADD COLUMN veteran TEXT;
        -- The specialist's re-code: not a mental-health call after all (reports count these apart).
        ALTER TABLE cit_requests ADD COLUMN not_mental_health INTEGER NOT NULL DEFAULT 0;
        -- Exports and reports select requests by the day they were made.
        CREATE INDEX IF NOT EXISTS cit_requests_created ON cit_requests(created_at);
        """
    )


@migrations()
def m020_demo_history(db):
    db.executescript(
        """
        -- Invented requests from `seed-demo` (a year of history): 1 marks them, so they can
        -- always be told apart from live ones and counted or removed on their own.
        ALTER TABLE cit_requests ADD COLUMN demo INTEGER NOT NULL DEFAULT 0;
        -- Reports and the forecast read requests by when they were made.
        CREATE INDEX IF NOT EXISTS cit_requests_created ON cit_requests(created_at);
        """
    )


@migrations()
def m021_district_polygons(db):
    db.executescript(
        """
        -- An agency's district polygon (GeoJSON Polygon or MultiPolygon, WGS 84); NULL for a centre only.
        -- lat and lon stay the centre: the point given, or the polygon's centroid.
        ALTER TABLE districts ADD COLUMN geometry TEXT;
        -- A new random stamp on every change to districts, so each process knows when to
        -- rebuild its prepared polygons (districts.py), whoever made the change.
        CREATE TABLE districts_revision (stamp TEXT NOT NULL);
        INSERT INTO districts_revision (stamp) VALUES (lower(hex(randomblob(8))));
        CREATE TRIGGER districts_inserted AFTER INSERT ON districts
            BEGIN UPDATE districts_revision SET stamp = lower(hex(randomblob(8))); END;
        CREATE TRIGGER districts_updated AFTER UPDATE ON districts
            BEGIN UPDATE districts_revision SET stamp = lower(hex(randomblob(8))); END;
        CREATE TRIGGER districts_deleted AFTER DELETE ON districts
            BEGIN UPDATE districts_revision SET stamp = lower(hex(randomblob(8))); END;
        """
    )


# Delivery receipts (m016) show on the board and the request page ("delivered 2 · seen 1"),
# and the request page names a request's district (m021's stamp says when districts changed):
# the live polls' counter moves with them too.
M022_COUNTED_TABLES = ("alert_receipts", "districts_revision")


@migrations()
def m022_change_counter_receipts(db):
    db.executescript(_counter_triggers(M022_COUNTED_TABLES))


# What lets a changed board poll do little (changes.py), frozen here as of m023.
# The parts the polls keep per process (`changes.cached`), each with the tables it
# reads and, where not every column's update counts, the columns that do: a
# request written does not make every board recompute coverage. tests/test_live.py
# reads these lists against what each part really reads.
M023_PARTS = {
    "coverage": (("districts", "duty", "inservice_training", "roster", "users"),
                 {"duty": ("user_id", "on_duty", "district")}),
    # The names and units the board's rows show: a rename redraws every row.
    "people": (("users",), {"users": ("id", "display_name", "unit")}),
}
# The tables a board row is drawn from: the column that names the row's request,
# and the columns whose update changes what the row shows (None: every column).
# A write to one of them logs its request in `request_touches`, so the board
# reads again only those rows.
M023_TOUCHED_TABLES = {
    "cit_requests": ("id", None),
    "alerts": ("request_id", None),
    "outbox": ("request_id", ("request_id", "user_id", "channel", "state")),
    "alert_receipts": ("request_id", ("request_id", "user_id", "kind", "delivered_at", "seen_at")),
}


@migrations()
def m023_board_counters(db):
    db.executescript(
        "CREATE TABLE part_counters (part TEXT PRIMARY KEY, n INTEGER NOT NULL);"
        " INSERT INTO part_counters (part, n) VALUES ('coverage', 0), ('people', 0);\n"
        + "".join(_counter_triggers(tables, columns, part=part) + "\n" for part, (tables, columns) in M023_PARTS.items())
        # AUTOINCREMENT: n never goes back, even when the oldest touches are dropped.
        + "CREATE TABLE request_touches (n INTEGER PRIMARY KEY AUTOINCREMENT, request_id INTEGER NOT NULL);\n"
        "CREATE TRIGGER request_touches_kept AFTER INSERT ON request_touches WHEN NEW.n % 1000 = 0"
        " BEGIN DELETE FROM request_touches WHERE n <= NEW.n - 1000; END;\n"
        + _touch_triggers(M023_TOUCHED_TABLES)
    )


@migrations(transactional=False)
def m024_content_review_by_two(db):
    # Two sign-offs per card version, each from the signer's own account
    # (reference/content_review.py). The clinical partner's role: SQLite cannot
    # alter a CHECK, so the users table is rebuilt from its own CREATE statement
    # (which keeps every column's collation) with its indexes and triggers, in its
    # own transaction with foreign keys off, as m018 did. A sign-off gains its
    # signer, the role it counts for and the card version; a sign-off from before
    # (a name a coordinator typed) keeps signer_role NULL and counts for neither
    # role, since nobody can tell now who read the card. card_versions numbers
    # each text of a card the app has served, with a hash of each part, so the
    # review can say "version 3, changed 2026-12-09" and which parts changed.
    rebuild = _users_rebuild_for_roles(db, _ROLES_M024)
    db.execute("PRAGMA foreign_keys = OFF")
    try:
        with db.atomic():
            for sql in rebuild:
                db.execute(sql)
            for sql in [s.strip() for s in M024_SCHEMA.split(";") if s.strip()]:
                db.execute(sql)
            broken = db.execute("PRAGMA foreign_key_check").fetchall()
            if broken:
                raise RuntimeError(f"m024_content_review_by_two would break references: {broken[:5]}")
    finally:
        db.execute("PRAGMA foreign_keys = ON")


ROLE_CHECK_RE = re.compile(r"CHECK \(role IN \(([^)]*)\)\)")


def _users_rebuild_for_roles(db, roles):
    """The statements that rebuild `users` with a CHECK naming every role in `roles`; none if it already does."""
    table_sql = db.execute("SELECT sql FROM sqlite_master WHERE type = 'table' AND name = 'users'").fetchone()[0]
    check = ROLE_CHECK_RE.search(table_sql)
    if check is None or set(re.findall(r"'([a-z_]+)'", check.group(1))) == set(roles):
        return []
    new_sql = table_sql[:check.start(1)] + ", ".join(repr(r) for r in roles) + table_sql[check.end(1):]
    new_sql = re.sub(r'^CREATE TABLE\s+"?users"?', "CREATE TABLE users_m024", new_sql, count=1)
    attached = [row[0] for row in db.execute(
        "SELECT sql FROM sqlite_master WHERE tbl_name = 'users' AND type IN ('index', 'trigger') AND sql IS NOT NULL")]
    columns = ", ".join(f'"{c.name}"' for c in db["users"].columns)
    return [
        new_sql,
        f"INSERT INTO users_m024 ({columns}) SELECT {columns} FROM users",
        "DROP TABLE users",
        # Legacy mode: the rename must not rewrite other tables' REFERENCES users.
        "PRAGMA legacy_alter_table = ON",
        "ALTER TABLE users_m024 RENAME TO users",
        "PRAGMA legacy_alter_table = OFF",
        *attached,
    ]


M024_SCHEMA = """
        ALTER TABLE content_signoffs ADD COLUMN signer_id INTEGER REFERENCES users(id);
        ALTER TABLE content_signoffs ADD COLUMN signer_role TEXT;
        ALTER TABLE content_signoffs ADD COLUMN version INTEGER;
        -- One signature per role per card text: a second one is refused, even from two tabs at once.
        CREATE UNIQUE INDEX content_signoffs_one_per_role ON content_signoffs(slug, content_hash, signer_role)
            WHERE signer_role IS NOT NULL;
        CREATE TABLE card_versions (
            id INTEGER PRIMARY KEY,
            slug TEXT NOT NULL,
            version INTEGER NOT NULL,
            content_hash TEXT NOT NULL,
            sections TEXT NOT NULL,
            seen_at REAL NOT NULL,
            UNIQUE (slug, version)
        );
        CREATE INDEX card_versions_hash ON card_versions(slug, content_hash);
        """


@migrations()
def m025_sign_in_attempts_and_notices(db):
    db.executescript(
        """
        -- Each sign-in attempt from an address, written before its password is checked
        -- (throttle.py), so a burst sent at once counts in full; one that succeeds is taken off.
        CREATE TABLE sign_in_attempts (
            id INTEGER PRIMARY KEY,
            address TEXT NOT NULL,
            account TEXT NOT NULL,
            at REAL NOT NULL
        );
        CREATE INDEX sign_in_attempts_address ON sign_in_attempts(address, at);
        CREATE INDEX sign_in_attempts_account ON sign_in_attempts(address, account, at);
        -- What an account's owner (or a coordinator) is told at their next page on every device:
        -- a factor added or removed, an account locked for a coordinator (identity/notices.py).
        CREATE TABLE account_notices (
            id INTEGER PRIMARY KEY,
            user_id INTEGER NOT NULL REFERENCES users(id) ON DELETE CASCADE,
            at REAL NOT NULL,
            text TEXT NOT NULL
        );
        CREATE INDEX account_notices_user ON account_notices(user_id, id);
        -- The newest notice's id, read with the account on every page, so a page
        -- with nothing new to tell costs no query.
        ALTER TABLE users ADD COLUMN notice_id INTEGER NOT NULL DEFAULT 0;
        """
    )


@migrations()
def m026_sso_link_rules(db):
    db.executescript(
        """
        -- How each link to the identity provider was made: a coordinator's mapping, a
        -- claim the agency names as stable and verified, the owner, an approval
        -- (identity/sso_links.py). Links made before these rules say so.
        ALTER TABLE sso_links ADD COLUMN how TEXT NOT NULL DEFAULT 'a first sign-in, before the link rules';
        -- A person at the provider fieldapp could not link on its own: no mapping and no
        -- claim it may trust, or a first link to a supervisor or coordinator, which waits
        -- for a coordinator's approval. One row per person; `claims` is what the
        -- provider said, shown to the coordinator as unverified.
        CREATE TABLE sso_link_requests (
            id INTEGER PRIMARY KEY,
            issuer TEXT NOT NULL,
            subject TEXT NOT NULL,
            user_id INTEGER REFERENCES users(id) ON DELETE CASCADE,
            role TEXT,
            why TEXT NOT NULL,
            claims TEXT NOT NULL,
            created_at REAL NOT NULL,
            UNIQUE (issuer, subject)
        );
        """
    )


@migrations()
def m027_webhook_secret_rotation(db):
    db.executescript(
        """
        -- A rotated signing secret keeps signing beside the new one until the overlap ends,
        -- so the receiving system can change over without losing a delivery (webhook_secrets.py).
        ALTER TABLE webhook_endpoints ADD COLUMN previous_secret TEXT;
        ALTER TABLE webhook_endpoints ADD COLUMN previous_secret_until REAL;
        """
    )


# The check-in timer's table (safety/timer.py), watched by the live polls' counter and the
# board's touch log like the tables m017 and m023 froze; tests/test_live.py reads this list.
M028_COUNTED_TABLES = ("check_in_timers",)


@migrations()
def m028_check_in_timers(db):
    # One row per request whose CIT officer went on scene: the next check-in deadline, the
    # heads-up push, the missed alarm and its repeats. Stored, so a restarted worker loses none.
    db.executescript(
        """
        CREATE TABLE check_in_timers (
            request_id INTEGER PRIMARY KEY REFERENCES cit_requests(id) ON DELETE CASCADE,
            specialist_id INTEGER NOT NULL REFERENCES users(id),
            interval_s REAL NOT NULL,
            started_at REAL NOT NULL,
            checked_in_at REAL NOT NULL,
            deadline_at REAL NOT NULL,
            warn_at REAL,
            missed_at REAL,
            next_alarm_at REAL,
            alarms INTEGER NOT NULL DEFAULT 0,
            contact_note TEXT,
            stopped_at REAL
        );
        CREATE INDEX check_in_timers_running ON check_in_timers(stopped_at, deadline_at);
        """
        + _counter_triggers(M028_COUNTED_TABLES) + "\n"
        + _touch_triggers({"check_in_timers": ("request_id", None)})
    )
