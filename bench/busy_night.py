"""A busy night: 50 CIT requests a minute for 10 minutes, served as in production.

    .venv/bin/python bench/busy_night.py                # the full 10 minutes
    .venv/bin/python bench/busy_night.py --minutes 1    # a quick look

The app runs as in production: gunicorn (2 gthread workers) and the worker as
its own process (`flask --app fieldapp worker`), on a temporary database, with
the stand-in push service (50 ms per POST) in a third process. On the real
clock, everyone works through HTTP with CSRF on, as their phones would:

- officers tap "Request CIT officer" 50 times a minute and poll their request's
  status every 4 s (with the ETag, as the browser revalidates) until it closes;
- 200 specialists on duty report their position every 60 s; the nearest one
  alerted opens the request and accepts it 5-75 s after it was made (so about
  a fifth of requests take the 60 s escalation step) and resolves it 1-4 min later;
- 5 supervisors poll the board every 5 s.

Reported: the time from each request's POST to its first push at the push
service (decrypted there, plus the service's 50 ms before it answers 201), and
the resident memory of the gunicorn and worker processes, sampled every 30 s.
Every loop is bounded by the run's length and stops by itself.
"""
import argparse
import concurrent.futures
import heapq
import itertools
import json
import os
import random
import shutil
import signal
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from pathlib import Path

import requests

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.seed import (  # noqa: E402
    CSRF_RE, PASSWORD, REPO, StandIn, add_account, add_specialists, bench_config, free_port, git_revision,
    go_on_duty_now, machine, make_bench_app, percentile, positions, print_machine, rss_mib, save_json, wait_until_up,
)

SECRET = "bench-busy-night-secret"
N_OFFICERS = 25
N_SUPERVISORS = 5


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--minutes", type=float, default=10.0, help="how long requests keep coming (default 10)")
    p.add_argument("--per-minute", type=float, default=50.0, help="CIT requests a minute (default 50)")
    p.add_argument("--specialists", type=int, default=200, help="specialists on duty (default 200)")
    p.add_argument("--delay", type=float, default=0.05, help="seconds the push service adds to each POST")
    p.add_argument("--workers", type=int, default=2, help="gunicorn workers (default 2)")
    args = p.parse_args(argv)
    if not 0 < args.minutes <= 30 or not 0 < args.per_minute <= 600:
        p.error("keep the run bounded: at most 30 minutes and 600 requests a minute")
    return args


# ---- setup -----------------------------------------------------------------------------


def seed(folder, stand_in, n_specialists, rng):
    """Districts, officers, supervisors and on-duty specialists, all able to sign in."""
    from werkzeug.security import generate_password_hash

    from fieldapp.identity.accounts import store_password
    from fieldapp.duty.devices import save_subscription
    from fieldapp.duty.status import go_on_duty
    from fieldapp.store.db import connect
    from fieldapp.demo.seed import DEMO_DISTRICTS
    from fieldapp.districts import save_centre
    from fieldapp.delivery.push import load_or_create_vapid

    app = make_bench_app(bench_config(folder, SECRET_KEY=SECRET))
    load_or_create_vapid(app.instance_path)  # before two processes race to make it
    db = connect(app.config["DATABASE"])
    for name, lat, lon in DEMO_DISTRICTS:
        save_centre(db, name, lat, lon)
    officers = [f"ofc.{n}" for n in range(N_OFFICERS)]
    for n, username in enumerate(officers):
        add_account(app, db, username, "officer", f"Ofc. Night {n}", unit=f"{n}-Adam")
    supervisors = [f"sgt.{n}" for n in range(N_SUPERVISORS)]
    for n, username in enumerate(supervisors):
        user_id = add_account(app, db, username, "supervisor", f"Sgt. Night {n}", unit=f"{n}-Sgt")
        go_on_duty_now(app, db, user_id)
    # Supervisors' phones get the escalation pushes too.
    offset = 10_000_000
    points = positions(rng, n_specialists, 40.0)
    ids = add_specialists(app, db, points, lambda i, uid: stand_in.endpoint(i, uid), stand_in.key)
    sup_ids = [r[0] for r in db.execute("SELECT id FROM users WHERE role = 'supervisor'").fetchall()]
    with app.app_context():
        for j, uid in enumerate(sup_ids):
            p256dh, auth = stand_in.key(offset + j)
            save_subscription(db, uid, stand_in.endpoint(offset + j, uid), p256dh, auth)
    with db.conn, app.app_context():
        # One real hash shared by the bulk accounts: each still signs in through scrypt.
        password_hash = generate_password_hash(PASSWORD)
        for uid in ids:
            store_password(db, uid, password_hash)
        names = {n: (lat, lon) for n, lat, lon in DEMO_DISTRICTS}
        for uid, (lat, lon) in zip(ids, points):
            go_on_duty(db, uid, min(names, key=lambda n: (names[n][0] - lat) ** 2 + (names[n][1] - lon) ** 2))
    specialists = {uid: (f"cit{uid}", lat, lon) for uid, (lat, lon) in zip(ids, points)}
    db.close()
    return app.config["DATABASE"], app.instance_path, officers, supervisors, specialists


class Person:
    """One phone: a signed-in session, its CSRF token, and one thing at a time."""

    def __init__(self, base, username):
        self.base, self.username = base, username
        self.http = requests.Session()
        self.lock = threading.Lock()
        self.etags = {}
        self.csrf = None

    def sign_in(self):
        form = self.http.get(self.base + "/login", timeout=10).text
        token = CSRF_RE.search(form).group(1)
        r = self.http.post(self.base + "/login", data={"username": self.username, "password": PASSWORD, "csrf_token": token},
                           timeout=30, allow_redirects=False)
        if r.status_code != 302:
            raise RuntimeError(f"{self.username} could not sign in: {r.status_code}")
        self.csrf = CSRF_RE.search(self.http.get(self.base + "/", timeout=10).text).group(1)

    def poll(self, path):
        """GET a live fragment as htmx would, revalidating with the last ETag."""
        headers = {"HX-Request": "true", "Accept-Encoding": "gzip"}
        if path in self.etags:
            headers["If-None-Match"] = self.etags[path]
        r = self.http.get(self.base + path, headers=headers, timeout=10)
        if r.status_code == 200 and r.headers.get("ETag"):
            self.etags[path] = r.headers["ETag"]
        return r

    def post(self, path, data=None, json_body=None):
        return self.http.post(self.base + path, data=None if data is None else {**data, "csrf_token": self.csrf},
                              json=json_body, headers={"X-CSRFToken": self.csrf}, timeout=10, allow_redirects=False)


# ---- the night -------------------------------------------------------------------------


class Night:
    """A scheduler of timed events run on a thread pool, and what they measured."""

    def __init__(self, base, database, people, specialists, args, rng):
        self.base, self.args, self.rng = base, args, rng
        self.people = people
        self.specialists = specialists
        self.database = database
        self.events = []
        self.seq = itertools.count()
        self.lock = threading.Lock()
        self.pool = concurrent.futures.ThreadPoolExecutor(max_workers=24, thread_name_prefix="phone")
        self.requests = {}  # id -> {"posted": time.time(), "answered_ms": ..., "closed": bool}
        self.http = {}  # kind -> [ms]
        self.failures = {}  # kind -> count of unexpected answers
        self.not_modified = {}  # kind -> count of 304 answers
        self.start = None
        self.end_requests = None

    def at(self, when, fn, *args):
        with self.lock:
            heapq.heappush(self.events, (when, next(self.seq), fn, args))

    def timed(self, kind, call, ok=(200, 204, 302, 303, 304)):
        t0 = time.monotonic()
        try:
            r = call()
            status = r.status_code
        except requests.RequestException as e:
            r, status = None, f"no answer ({type(e).__name__})"
        ms = (time.monotonic() - t0) * 1000
        with self.lock:
            self.http.setdefault(kind, []).append(ms)
            if status == 304:
                self.not_modified[kind] = self.not_modified.get(kind, 0) + 1
            if status not in ok:
                what = f"{kind} -> {status}"
                self.failures[what] = self.failures.get(what, 0) + 1
        return r

    # Each event re-schedules its next occurrence only while the night lasts.
    def new_request(self, n):
        officer = self.people[f"ofc.{n % N_OFFICERS}"]
        lat, lon = positions(self.rng, 1, 30.0)[0]
        posted = time.time()
        with officer.lock:
            r = self.timed("POST /requests", lambda: officer.post(
                "/requests", {"lat": f"{lat:.6f}", "lon": f"{lon:.6f}", "accuracy": "12", "client_id": uuid.uuid4().hex,
                               "different_scene": "1"}))
        if r is None or r.status_code != 303:
            return
        request_id = int(r.headers["Location"].rstrip("/").rsplit("/", 1)[1])
        with self.lock:
            self.requests[request_id] = {"posted": posted, "answered_ms": (time.time() - posted) * 1000, "closed": False}
        now = time.monotonic()
        self.at(now + 4, self.requester_poll, officer, request_id)
        self.at(now + self.rng.uniform(5, 75), self.accept, request_id)

    def requester_poll(self, officer, request_id):
        if self.requests[request_id]["closed"] or time.monotonic() > self.end_requests:
            return
        with officer.lock:
            self.timed("poll /requests/<id>/live", lambda: officer.poll(f"/requests/{request_id}/live"))
        self.at(time.monotonic() + 4, self.requester_poll, officer, request_id)

    def accept(self, request_id):
        if time.monotonic() > self.end_requests:
            return
        with sqlite3.connect(f"file:{self.database}?mode=ro", uri=True, timeout=10) as db:
            row = db.execute("SELECT user_id FROM alerts WHERE request_id = ? AND declined_at IS NULL"
                             " ORDER BY distance_m LIMIT 1", [request_id]).fetchone()
        if row is None:
            return
        specialist = self.people[self.specialists[row[0]][0]]
        with specialist.lock:
            self.timed("GET /requests/<id>", lambda: specialist.http.get(f"{self.base}/requests/{request_id}", timeout=10))
            r = self.timed("POST accept", lambda: specialist.post(f"/requests/{request_id}/accept", {}), ok=(303, 409))
        if r is not None and r.status_code == 303:
            self.at(time.monotonic() + self.rng.uniform(60, 240), self.resolve, specialist, request_id)

    def resolve(self, specialist, request_id):
        if time.monotonic() > self.end_requests:
            return
        with specialist.lock:
            r = self.timed("POST resolve", lambda: specialist.post(
                f"/requests/{request_id}/resolve", {"disposition": "resolved_on_scene", "force_used": "no"}), ok=(303,))
        if r is not None and r.status_code == 303:
            self.requests[request_id]["closed"] = True

    def board_poll(self, supervisor):
        if time.monotonic() > self.end_requests:
            return
        with supervisor.lock:
            self.timed("poll /board/live", lambda: supervisor.poll("/board/live"))
        self.at(time.monotonic() + 5, self.board_poll, supervisor)

    def location(self, specialist, lat, lon):
        if time.monotonic() > self.end_requests:
            return
        lat += self.rng.uniform(-0.002, 0.002)
        lon += self.rng.uniform(-0.002, 0.002)
        with specialist.lock:
            self.timed("POST /duty/location", lambda: specialist.post("/duty/location", json_body={"lat": lat, "lon": lon, "accuracy": 15}))
        self.at(time.monotonic() + 60, self.location, specialist, lat, lon)

    def run(self, on_tick):
        """Schedule the night, run it to its end, and stop by itself."""
        self.start = time.monotonic()
        length = self.args.minutes * 60
        self.end_requests = self.start + length
        gap = 60.0 / self.args.per_minute
        for n in range(int(length / gap)):
            self.at(self.start + n * gap, self.new_request, n)
        for j in range(N_SUPERVISORS):
            self.at(self.start + j, self.board_poll, self.people[f"sgt.{j}"])
        for k, (uid, (username, lat, lon)) in enumerate(self.specialists.items()):
            self.at(self.start + 60 * k / len(self.specialists), self.location, self.people[username], lat, lon)
        next_tick = self.start
        while True:
            now = time.monotonic()
            if now >= next_tick:
                on_tick(now - self.start)
                next_tick += 30
            with self.lock:
                due = self.events and self.events[0][0] <= now
                if due:
                    _, _, fn, args = heapq.heappop(self.events)
                elif now > self.end_requests:
                    break
            if due:
                self.pool.submit(fn, *args)
            else:
                time.sleep(0.01)
        self.pool.shutdown(wait=True)
        if time.monotonic() - (next_tick - 30) > 1:
            on_tick(time.monotonic() - self.start)


# ---- processes and memory -------------------------------------------------------------------


def children(pid):
    try:
        return [int(c) for c in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]
    except OSError:
        return []


def memory(gunicorn, worker):
    """RSS in MiB of the gunicorn master, each gunicorn worker and the push worker."""
    return {
        "gunicorn_master": rss_mib(gunicorn.pid),
        "gunicorn_workers": [rss_mib(c) for c in children(gunicorn.pid)],
        "push_worker": rss_mib(worker.pid),
    }


def stop(process, name):
    if process is None or process.poll() is not None:
        return
    process.send_signal(signal.SIGTERM if name == "gunicorn" else signal.SIGINT)
    try:
        process.wait(20)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait(5)


def main(args):
    info = machine()
    print_machine(info)
    rng = random.Random(10)
    folder = tempfile.mkdtemp(prefix="fieldapp-busy-night-")
    result = {"bench": "busy_night", "machine": info, "revision": git_revision(), "args": vars(args)}
    stand_in = StandIn(pool_size=64, delay_s=args.delay)
    gunicorn = worker = None
    try:
        database, instance, officers, supervisors, specialists = seed(folder, stand_in, args.specialists, rng)
        env = {
            **os.environ,
            "FIELDAPP_DATABASE": database, "FIELDAPP_INSTANCE_PATH": instance, "FIELDAPP_SECRET_KEY": SECRET,
            "FIELDAPP_PUSH_INSECURE_HOSTS": json.dumps(["127.0.0.1"]),
            "FIELDAPP_REQUEST_RATE_MAX": str(10**9), "FIELDAPP_MFA_REQUIRED_ROLES": "[]",
        }
        port = free_port()
        base = f"http://127.0.0.1:{port}"
        bin_dir = REPO / ".venv" / "bin"
        log = open(Path(folder) / "processes.log", "w")
        gunicorn = subprocess.Popen(
            [str(bin_dir / "gunicorn"), "--workers", str(args.workers), "--worker-class", "gthread", "--threads", "4",
             "--bind", f"127.0.0.1:{port}", "--log-level", "warning", "fieldapp:create_app()"],
            cwd=REPO, env=env, stdout=log, stderr=log, start_new_session=True)
        worker = subprocess.Popen([str(bin_dir / "flask"), "--app", "fieldapp", "worker"], cwd=REPO, env=env,
                                  stdout=log, stderr=log, start_new_session=True)
        print(f"# gunicorn -w {args.workers} -k gthread --threads 4 'fieldapp:create_app()' (pid {gunicorn.pid});"
              f" flask --app fieldapp worker (pid {worker.pid}); stand-in push service (pid {stand_in.pid})")
        wait_until_up(base)

        people = {u: Person(base, u) for u in officers + supervisors + [s[0] for s in specialists.values()]}
        t0 = time.monotonic()
        with concurrent.futures.ThreadPoolExecutor(4) as pool:
            list(pool.map(lambda p: p.sign_in(), people.values()))
        print(f"# {len(people)} people signed in through the form in {time.monotonic() - t0:.1f} s;"
              f" {args.per_minute:g} requests/min for {args.minutes:g} min; {args.specialists} specialists on duty")

        samples = []

        def tick(elapsed):
            sample = {"t_s": round(elapsed), **memory(gunicorn, worker)}
            samples.append(sample)
            print(f"  t={sample['t_s']:4d}s  RSS MiB: gunicorn master {sample['gunicorn_master']:.1f},"
                  f" workers {', '.join(f'{x:.1f}' for x in sample['gunicorn_workers'])}, push worker {sample['push_worker']:.1f};"
                  f" requests so far {len(night.requests)}", flush=True)

        night = Night(base, database, people, specialists, args, rng)
        night.run(tick)
        time.sleep(3)  # the last requests' pushes
        # Stop sending before counting, so the outbox and the push service agree:
        # escalations of requests still open would otherwise go on in between.
        stop(worker, "worker")
        deliveries = stand_in.take_deliveries()
        stats = stand_in.stats()
    finally:
        stop(worker, "worker")
        stop(gunicorn, "gunicorn")
        stand_in.close()
    # Errors the app or the worker logged (gunicorn logs at warning level and above).
    logged = (Path(folder) / "processes.log").read_text(errors="replace")
    result["process_log_errors"] = logged.count("Traceback")
    if "Traceback" in logged or "ERROR" in logged:
        print("the app or the worker logged errors; the last of them:")
        print(logged[-3000:])

    first = {}
    for request_id, kind, received_at in deliveries:
        if kind == "alert":
            first[request_id] = min(first.get(request_id, received_at), received_at)
    waits = []
    no_push = []
    for request_id, r in night.requests.items():
        if request_id in first:
            waits.append((first[request_id] + args.delay - r["posted"]) * 1000)
        else:
            no_push.append(request_id)
    result["requests"] = len(night.requests)
    result["first_push"] = {"n": len(waits), "p50_ms": percentile(waits, 50), "p99_ms": percentile(waits, 99),
                            "max_ms": max(waits), "over_1s": sum(w > 1000 for w in waits), "no_alert_push": len(no_push)}
    result["http"] = {k: {"n": len(v), "p50_ms": percentile(v, 50), "p99_ms": percentile(v, 99), "max_ms": max(v),
                          "n_304": night.not_modified.get(k, 0)}
                      for k, v in sorted(night.http.items())}
    result["failures"] = night.failures
    result["memory"] = samples
    result["stand_in"] = {"pushes_decrypted": len(deliveries), **stats}
    with sqlite3.connect(database) as db:
        result["outbox"] = dict(db.execute("SELECT state, COUNT(*) FROM outbox GROUP BY state").fetchall())
        result["request_states"] = dict(db.execute("SELECT state, COUNT(*) FROM cit_requests GROUP BY state").fetchall())
        result["escalated"] = db.execute("SELECT COUNT(*) FROM cit_requests WHERE escalation_step > 0").fetchone()[0]
    shutil.rmtree(folder, ignore_errors=True)

    fp = result["first_push"]
    print(f"\n{result['requests']} requests in {args.minutes:g} min; {result['escalated']} took the 60 s escalation step;"
          f" request states at the end {result['request_states']}")
    print(f"time to first push: p50 {fp['p50_ms']:.0f} ms, p99 {fp['p99_ms']:.0f} ms, max {fp['max_ms']:.0f} ms;"
          f" {fp['over_1s']} over 1 s; {fp['no_alert_push']} without an alert push"
          f"  [target none over 1 s: {'met' if fp['over_1s'] == 0 and fp['no_alert_push'] == 0 else 'MISSED'}]")
    print(f"push service: {len(deliveries)} pushes decrypted, {stats['rejected']} rejected; outbox {result['outbox']}")
    print(f"{'HTTP':<28}{'n':>7}{'p50 ms':>9}{'p99 ms':>9}{'max ms':>9}{'304s':>7}")
    for kind, h in result["http"].items():
        print(f"{kind:<28}{h['n']:7d}{h['p50_ms']:9.1f}{h['p99_ms']:9.1f}{h['max_ms']:9.1f}{h['n_304'] / h['n']:7.0%}")
    print(f"unexpected answers: {night.failures or 'none'}")
    first_mem, last_mem = samples[0], samples[-1]

    def total(s):
        return s["gunicorn_master"] + sum(s["gunicorn_workers"]) + s["push_worker"]

    print(f"RSS at start {total(first_mem):.1f} MiB, at end {total(last_mem):.1f} MiB, max {max(map(total, samples)):.1f} MiB"
          f" (gunicorn master + workers + push worker)")
    path = save_json("busy_night", result)
    print(f"figures saved to {path.relative_to(REPO)}")
    return result


if __name__ == "__main__":
    main(parse_args())
