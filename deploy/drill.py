"""`make drill`: lose the machine's database and bring the service back from Litestream.

A disaster-recovery rehearsal on loopback, with the real parts and the files
in deploy/ as an administrator installs them:

1. starts a moto S3 server (the object store), Litestream v0.3.13 with
   deploy/litestream.yml, the web app under gunicorn and the worker;
2. makes accounts through the command line, puts specialists on duty with push
   subscriptions, and makes CIT requests over HTTP, each left with a pending
   escalation; measures how long each write takes to reach the store;
3. kill -9s the web app, the worker and Litestream, deletes the database, its
   WAL and shared-memory files and Litestream's shadow folder, and restores
   with deploy/restore-from-replica (which also runs `flask restored`);
4. starts everything again and compares every table's row count, and the
   pending escalation's deadline, with what was there before the kill.

It installs what it needs into this checkout: the `drill` extra (gunicorn and
moto) into .venv, and Litestream from npm into .drill/npm. Everything it makes
is under .drill/ (git-ignored). It ends with `drill: N rows checked, M lost`
and exits non-zero if a row or the deadline was lost.
"""
import base64
import datetime as dt
import json
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
WORK = ROOT / ".drill"
RUN = WORK / "run"
VENV_BIN = Path(sys.executable).parent
# The version docs/DEPLOY.md is written and tested for: the npm package 1.0.1 ships Litestream v0.3.13.
LITESTREAM_PACKAGE = "@flydotio/litestream-linux-x64@1.0.1"
LITESTREAM_VERSION = "v0.3.13"
LITESTREAM = WORK / "npm" / "node_modules" / "@flydotio" / "litestream-linux-x64" / "litestream"
BUCKET = "fieldapp-drill"
PASSWORD = "drill-password-long-enough"
SCENE = (35.1495, -90.0490)
REQUESTS = 6  # one per officer: an officer with an open request is shown it, not given a second


def say(text):
    print(f"drill: {text}", flush=True)


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def install():
    """The drill's own tools, installed here through pip and npm."""
    try:
        import gunicorn  # noqa: F401
        import moto  # noqa: F401
    except ImportError:
        say("installing the drill extra (gunicorn, moto[server]) into .venv")
        subprocess.run([sys.executable, "-m", "pip", "install", "--quiet", "-e", f"{ROOT}[drill]"], check=True)
    if not LITESTREAM.exists():
        say(f"installing Litestream from npm ({LITESTREAM_PACKAGE}) into .drill/npm")
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


class Drill:
    """The processes, the environment they share, and the figures."""

    def __init__(self):
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
                    "PATH": f"{VENV_BIN}:{os.environ.get('PATH', '')}"}
        for line in self.env_file.read_text().split():
            key, _, value = line.partition("=")
            self.env[key] = value

    def cli(self, *args, check=True, **kwargs):
        """deploy/fieldapp, the command line as an administrator runs it."""
        return subprocess.run([str(ROOT / "deploy" / "fieldapp"), *args], env=self.env, check=check,
                              capture_output=True, text=True, **kwargs)

    def create_database(self):
        help_text = self.cli("migrate", "--help").stdout
        self.cli("migrate", *(["--create"] if "--create" in help_text else []))
        password_file = RUN / "password"
        password_file.write_text(PASSWORD)
        accounts = [("coordinator", "coordinator"), ("supervisor", "supervisor")]
        accounts += [(f"officer{i}", "officer") for i in range(REQUESTS)] + [(f"cit{i}", "cit") for i in range(4)]
        for username, role in accounts:
            self.cli("users", "create", username, "--role", role, "--name", f"Drill {username}",
                     "--password-file", str(password_file), "--own-password")
        password_file.unlink()
        return accounts

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
        """Litestream, gunicorn and the worker, as the systemd units start them."""
        self.start("litestream", [str(LITESTREAM), "replicate", "-config", self.env["LITESTREAM_CONFIG"]])
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
    def session(self, username):
        import requests

        s = requests.Session()
        page = s.get(f"http://127.0.0.1:{self.web_port}/login", timeout=10).text
        token = re.search(r'name="csrf_token" value="([^"]+)"', page).group(1)
        r = s.post(f"http://127.0.0.1:{self.web_port}/login", data={"username": username, "password": PASSWORD,
                                                                     "csrf_token": token}, timeout=10, allow_redirects=False)
        assert r.status_code == 302, f"{username} could not sign in: {r.status_code}"
        home = s.get(f"http://127.0.0.1:{self.web_port}/", timeout=10).text
        s.headers["X-CSRFToken"] = re.search(r'name="csrf_token" value="([^"]+)"', home).group(1)
        return s

    def make_work(self):
        """Specialists on duty with phones, then CIT requests; returns replication lags (s)."""
        base = f"http://127.0.0.1:{self.web_port}"
        for i in range(4):
            s = self.session(f"cit{i}")
            s.post(f"{base}/duty/on", timeout=10).raise_for_status()
            s.post(f"{base}/duty/location", json={"lat": SCENE[0] + 0.01 * (i + 1), "lon": SCENE[1], "accuracy": 10},
                   timeout=10).raise_for_status()
            assert s.post(f"{base}/push/subscriptions", json=self.push.subscription(i), timeout=10).status_code == 201
        lags = []
        officers = [self.session(f"officer{i}") for i in range(REQUESTS)]
        for n in range(REQUESTS):
            # Earlier writes (the worker sending the last request's pushes) must be in the
            # store already, so the next new object is this request's.
            before = self.quiet_store()
            r = officers[n].post(f"{base}/requests", data={"lat": SCENE[0], "lon": SCENE[1], "accuracy": 12},
                                     timeout=10, allow_redirects=False)
            assert r.status_code == 303, f"request {n}: {r.status_code}"
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
    started = time.monotonic()
    version = install()
    drill = Drill()
    drill.prepare()
    try:
        drill.start_store()
        accounts = drill.create_database()
        say(f"Litestream {version}, moto S3 on 127.0.0.1:{drill.s3_port}, {len(accounts)} accounts made with `users create`")
        empty = subprocess.run([str(ROOT / "deploy" / "check-replica")], env=drill.env, capture_output=True, text=True)
        if empty.returncode == 0:
            sys.exit("drill: check-replica passed before anything was replicated")
        first_up = drill.start_service()
        say(f"service up in {first_up:.2f} s (gunicorn, worker, litestream)")
        lags = drill.make_work()
        drill.settle()
        time.sleep(2.0)  # the last write is two seconds old when the machine dies, as in the drill
        check = subprocess.run([str(ROOT / "deploy" / "check-replica")], env=drill.env, capture_output=True, text=True)
        if check.returncode != 0:
            sys.exit(f"drill: check-replica failed with a running replica:\n{check.stdout}{check.stderr}")
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
    say(f"restore: litestream restore {litestream_s:.2f} s; the whole script"
        f" (with the integrity check and `flask restored`) {restore_s:.2f} s")
    say(f"service back after restore: {back_s:.2f} s; kill to service back (RTO less detection): {rto_s:.2f} s")
    say(f"pending escalation of request #{pending_before[0]}: deadline {pending_before[3]:.3f} before,"
        f" {pending_after[3]:.3f} after, {'kept' if deadline_kept else 'NOT KEPT'}")
    say(f"replica after restart: {'a generation exists' if second.returncode == 0 else 'MISSING'}")
    for table in sorted(before):
        if before[table] or after.get(table):
            print(f"  {table:<24} {before[table]:>5} -> {after.get(table, 0):>5}")
    say(f"whole drill {time.monotonic() - started:.1f} s; logs in {drill.logs}")
    print(f"drill: {checked} rows checked, {sum(lost.values())} lost")
    if lost or not deadline_kept or second.returncode != 0:
        sys.exit(1)


if __name__ == "__main__":
    main()
