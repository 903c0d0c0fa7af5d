"""What the benchmarks share: an app on a temporary database, bulk-seeded people,
the stand-in push service in its own process, and a clock on every push sent.

Seeding writes rows with direct SQL because creating 100,000 accounts through
`create_user` would spend minutes hashing passwords nobody types. Only the
accounts a benchmark signs in with get a real password.
"""
import dataclasses
import json
import math
import multiprocessing
import os
import platform
import re
import socket
import sqlite3
import subprocess
import sys
import threading
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

PASSWORD = "bench password 1"
# The sign-in form's (and every form's) CSRF token, for benchmarks that post like a browser.
CSRF_RE = re.compile(r'name="csrf_token"[^>]*value="([^"]+)"')
# Memphis, where CIT began; the same centre as the demo districts.
CENTRE = (35.1495, -90.0490)
KM_PER_DEG_LAT = 111.195


# ---- the machine -------------------------------------------------------------------


def machine():
    """Date, cores, CPU, memory, Python and SQLite: what every figure is quoted with."""
    cpu = "unknown"
    with open("/proc/cpuinfo") as f:
        for line in f:
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    with open("/proc/meminfo") as f:
        mem_kb = int(next(line for line in f if line.startswith("MemTotal")).split()[1])
    return {
        "date": time.strftime("%Y-%m-%d %H:%M:%S %Z"),
        "nproc": os.cpu_count(),
        "cpu": cpu,
        "memory_gib": round(mem_kb / 1024 / 1024, 1),
        "python": platform.python_version(),
        "sqlite": sqlite3.sqlite_version,
        "loadavg_at_start": os.getloadavg(),
    }


def print_machine(info):
    print(f"# {info['date']} · {info['nproc']} cores · {info['cpu']} · {info['memory_gib']} GiB ·"
          f" Python {info['python']} · SQLite {info['sqlite']} · load {', '.join(f'{x:.2f}' for x in info['loadavg_at_start'])}")


def percentile(values, p):
    """Nearest-rank percentile (p in 0..100) of a non-empty list."""
    ordered = sorted(values)
    rank = max(1, math.ceil(p / 100 * len(ordered)))
    return ordered[rank - 1]


def rss_mib(pid=None):
    """Resident set size of a process, in MiB."""
    with open(f"/proc/{pid or 'self'}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return float("nan")


def free_port():
    """A TCP port on 127.0.0.1 that nothing listens on now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def save_json(name, data):
    """Keep a run's figures in bench/out/ (ignored by git)."""
    out = REPO / "bench" / "out"
    out.mkdir(exist_ok=True)
    path = out / f"{name}-{time.strftime('%Y%m%d-%H%M%S')}.json"
    path.write_text(json.dumps(data, indent=2, default=str))
    return path


# ---- the app -------------------------------------------------------------------------


def bench_config(tmpdir, **overrides):
    """A config like production's, on a temporary database and instance folder."""
    config = {
        "SECRET_KEY": "bench-secret",
        "DATABASE": str(Path(tmpdir) / "bench.db"),
        "INSTANCE_PATH": str(Path(tmpdir) / "instance"),
        "PUSH_INSECURE_HOSTS": ["127.0.0.1"],
        "CLOCK": time.time,
        # A bench's officers tap far more often than any officer would: no per-officer limit.
        "REQUEST_RATE_MAX": 10**9,
        # The benches sign in with a password alone; a second factor is a step a bench does not measure.
        "MFA_REQUIRED_ROLES": [],
    }
    config.update(overrides)
    return config


def make_bench_app(config):
    """create_app on `config`, with the schema migrated."""
    from fieldapp import create_app
    from fieldapp.store.db import connect, migrate

    Path(config["INSTANCE_PATH"]).mkdir(mode=0o700, parents=True, exist_ok=True)
    conn = connect(config["DATABASE"])
    migrate(conn)
    conn.close()
    return create_app(config)


def add_account(app, db, username, role, display_name=None, unit=""):
    """One account with a real password (PASSWORD), for signing in."""
    from fieldapp.identity.accounts import create_user

    with app.app_context():
        return create_user(db, username, PASSWORD, role, display_name or username, unit=unit)


def go_on_duty_now(app, db, user_id):
    """A supervisor (or anyone) on duty with no position."""
    from fieldapp.duty.status import go_on_duty

    with app.app_context():
        go_on_duty(db, user_id)


def positions(rng, n, side_km, centre=CENTRE):
    """n points spread evenly at random over a square `side_km` wide around `centre`."""
    coslat = math.cos(math.radians(centre[0]))
    half = side_km / 2
    out = []
    for _ in range(n):
        north, east = rng.uniform(-half, half), rng.uniform(-half, half)
        out.append((centre[0] + north / KM_PER_DEG_LAT, centre[1] + east / (KM_PER_DEG_LAT * coslat)))
    return out


def add_specialists(app, db, points, endpoint_for, keys, prefix="cit"):
    """On-duty CIT specialists at `points`, each with one push subscription; returns their ids.

    `endpoint_for(i, user_id)` names the device's endpoint; `keys(i)` gives its
    (p256dh, auth). One transaction: 100,000 take a few seconds.
    """
    from fieldapp.identity.accounts import create_user

    t = time.time()
    conn = db.conn
    base = (conn.execute("SELECT COALESCE(MAX(id), 0) FROM users").fetchone()[0]) + 1
    conn.execute("BEGIN IMMEDIATE")
    try:
        # No one signs in as these ("!" is no hash); busy_night gives them a real one.
        with app.app_context():
            ids = [create_user(db, f"{prefix}{uid}", None, "cit", f"Ofc. Bench {uid} (CIT)", f"CIT-{uid}", password_hash="!")
                   for uid in range(base, base + len(points))]
        # duty.go_on_duty() and record_position() are the owners' way in, one specialist at a time;
        # a bench seeding 100,000 writes the same columns in one batch instead.
        conn.executemany(
            "INSERT INTO duty (user_id, on_duty, since, lat, lon, accuracy_m, position_at, position_source)"
            " VALUES (?, 1, ?, ?, ?, 10, ?, 'bench')",
            ((uid, t, lat, lon, t) for uid, (lat, lon) in zip(ids, points)),
        )

        def subs():
            for i, uid in enumerate(ids):
                p256dh, auth = keys(i)
                yield uid, endpoint_for(i, uid), p256dh, auth, t

        # duty.save_subscription() is the owner's way in, one device and one transaction at a time;
        # a bench seeding 100,000 devices writes them in one batch instead, with the same columns.
        conn.executemany(
            "INSERT INTO push_subscriptions (user_id, endpoint, p256dh, auth, created_at) VALUES (?, ?, ?, ?, ?)",
            subs(),
        )
        conn.execute("COMMIT")
    except BaseException:
        conn.execute("ROLLBACK")
        raise
    return ids


# ---- the stand-in push service, in its own process -------------------------------------


class PooledReceivers(dict):
    """Receiver keys by endpoint, where endpoints named /push/p<i>-<anything> share pool key i.

    Making 100,000 P-256 key pairs would take longer than the benchmark, and a
    push service decrypting with the same key for many endpoints proves just as
    much: every message is still encrypted for, and decrypted by, its receiver key.
    """

    def __init__(self, origin, pool):
        super().__init__()
        self.origin = origin
        self.pool = pool

    def __missing__(self, endpoint):
        name = endpoint[len(self.origin) + len("/push/"):]
        if not name.startswith("p") or "-" not in name:
            raise KeyError(endpoint)
        try:
            return self.pool[int(name[1:].split("-", 1)[0])]
        except (ValueError, IndexError):
            raise KeyError(endpoint) from None


def _stand_in_main(conn, pool_size, delay_s, like_a_push_service):
    """The child process: serve the stand-in until told to stop, answering questions on `conn`."""
    from tests.push_service import StandInPushService

    service = StandInPushService()
    service.delay_s = delay_s
    if like_a_push_service:
        # socketserver listens with a backlog of 5: sixteen senders connecting at
        # once overflow it, a SYN is dropped and that push waits 1 s for the
        # retransmit. Real push services keep connections alive and have deep
        # backlogs, so the benchmark's stand-in does too (Linux lets a listening
        # socket's backlog be raised by calling listen again).
        service.server.socket.listen(128)
        service.server.RequestHandlerClass.protocol_version = "HTTP/1.1"
    subs = [service.new_subscription() for _ in range(pool_size)]
    pool = [service.receivers[s["endpoint"]] for s in subs]
    service.receivers = PooledReceivers(service.origin, pool)
    conn.send({"origin": service.origin, "keys": [(s["keys"]["p256dh"], s["keys"]["auth"]) for s in subs], "pid": os.getpid()})
    while True:
        what = conn.recv()
        if what == "deliveries":
            with service._lock:
                taken = [(d.payload.get("request_id"), d.payload.get("kind"), d.received_at) for d in service.deliveries]
                service.deliveries.clear()
            conn.send(taken)
        elif what == "stats":
            with service._lock:
                conn.send({"requests_seen": service.requests_seen, "rejections": list(service.rejections[:5]),
                           "rejected": len(service.rejections)})
        else:
            service.close()
            conn.send("closed")
            return


class StandIn:
    """The stand-in push service (tests/push_service.py) running in a child process.

    A real push service is another machine; running it in-process would make
    its decryption compete with the app for the same interpreter lock.
    `like_a_push_service=False` keeps the test suite's socket defaults.
    """

    def __init__(self, pool_size=64, delay_s=0.05, like_a_push_service=True):
        ctx = multiprocessing.get_context("spawn")
        self._conn, child = ctx.Pipe()
        self.process = ctx.Process(target=_stand_in_main, args=(child, pool_size, delay_s, like_a_push_service), daemon=True)
        self.process.start()
        if not self._conn.poll(60):
            raise RuntimeError("the stand-in push service did not start")
        hello = self._conn.recv()
        self.origin, self.keys, self.pid = hello["origin"], hello["keys"], hello["pid"]
        self._lock = threading.Lock()

    def endpoint(self, i, user_id):
        """The endpoint of specialist number i: pool key i mod pool size."""
        return f"{self.origin}/push/p{i % len(self.keys)}-{user_id}"

    def key(self, i):
        return self.keys[i % len(self.keys)]

    def _ask(self, what):
        with self._lock:
            self._conn.send(what)
            return self._conn.recv()

    def take_deliveries(self):
        """[(request_id, kind, received_at)] decrypted since the last call."""
        return self._ask("deliveries")

    def stats(self):
        return self._ask("stats")

    def close(self):
        try:
            self._ask("stop")
        finally:
            self.process.join(10)


# ---- a clock on every push the worker sends ---------------------------------------------


@dataclasses.dataclass
class Sent:
    request_id: int
    kind: str
    started: float  # time.monotonic() when the worker began this push
    done: float  # time.monotonic() when the push service's answer was back
    status: int | None


class PushClock:
    """Wraps the app's PushSender so each send is timed where the worker sees it.

    `done` is when the push service's 201 reached the worker: the push was
    accepted, one full round trip included.
    """

    def __init__(self, app):
        from fieldapp.delivery.push import get_sender

        with app.app_context():
            self.sender = get_sender()
        self.sent = []
        self._cond = threading.Condition()
        self._by_request = {}
        plain_send = self.sender.send

        def timed_send(subscription, payload, topic, **kw):
            started = time.monotonic()
            outcome = plain_send(subscription, payload, topic, **kw)
            done = time.monotonic()
            body = json.loads(payload)
            record = Sent(body.get("request_id"), body.get("kind"), started, done, outcome.status)
            with self._cond:
                self.sent.append(record)
                self._by_request.setdefault(record.request_id, []).append(record)
                self._cond.notify_all()
            return outcome

        self.sender.send = timed_send

    def wait_for(self, request_id, count, timeout):
        """The first `count` sends of a request, once they are back; raises on timeout."""
        deadline = time.monotonic() + timeout
        with self._cond:
            while len(self._by_request.get(request_id, ())) < count:
                left = deadline - time.monotonic()
                if left <= 0:
                    got = len(self._by_request.get(request_id, ()))
                    raise TimeoutError(f"request {request_id}: {got} of {count} pushes after {timeout} s")
                self._cond.wait(left)
            return list(self._by_request[request_id][:count])

    def of(self, request_id):
        with self._cond:
            return list(self._by_request.get(request_id, ()))

    def count(self):
        with self._cond:
            return len(self.sent)


def serve(app):
    """Serve `app` on a free loopback port from a background thread (werkzeug, threaded); returns (server, base URL)."""
    from werkzeug.serving import make_server

    server = make_server("127.0.0.1", 0, app, threaded=True)
    # A short poll so shutdown() returns at once (the default waits up to 0.5 s).
    threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True).start()
    return server, f"http://127.0.0.1:{server.server_port}"


def wait_until_up(base, timeout=30):
    """Poll `base`/login until the served app answers 200, or raise after `timeout` seconds."""
    import requests

    deadline = time.monotonic() + timeout
    while True:
        try:
            if requests.get(base + "/login", timeout=2).status_code == 200:
                return
        except requests.RequestException:
            pass
        if time.monotonic() > deadline:
            raise RuntimeError("gunicorn did not start")
        time.sleep(0.2)


def stop_process(proc):
    """SIGTERM, then SIGKILL the process group if it has not exited within 20 s."""
    import signal

    proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(20)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(5)


def git_revision():
    """The commit the benchmark ran on, with '+dirty' when the tree has changes."""
    try:
        rev = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=REPO, capture_output=True, text=True).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "fieldapp"], cwd=REPO, capture_output=True, text=True).stdout.strip()
        return rev + ("+dirty(fieldapp)" if dirty else "")
    except OSError:
        return "unknown"
