"""Throughput under gunicorn: requests/s and p99 for real pages, against a "hello" floor.

    .venv/bin/python bench/throughput.py                 # 2 gthread workers, 5 rounds of 6 s per page
    .venv/bin/python bench/throughput.py --workers 4 --worker-class sync

Seeds a temporary database (the officer who is measured, a supervisor, 200 open
requests from other officers, 200 specialists on duty), serves the app with
gunicorn on 127.0.0.1, signs in through the real /login form (CSRF on: the
token is read from the form), then loads each page with wrk:

- floor: GET /bench/hello, a route this script adds to its own app object (never
  to fieldapp); it runs the app's whole before/after-request stack and no view work;
- a reference page: /reference/psychosis;
- the officer's home: /;
- the board's polled fragment with 200 open requests, as htmx asks for it
  (HX-Request), and the same poll revalidated with its ETag (answered 304).
  The data does not move during the run, so the 200 is a render from kept
  coverage, kept rows and kept row HTML: what a supervisor's screen pays for a
  board the process has already read (a first visit, a reload). A poll that
  finds one request changed is `bench/poll_cost.py`'s "1 row changed".

Each target is run `--rounds` times in turn, and each page's ratio is taken
against the floor of the same round, so drift on this shared machine shows up
as a spread rather than as a bias against one page. The load average is kept
with every run.
"""
import argparse
import http.cookiejar
import os
import random
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.seed import (  # noqa: E402
    PASSWORD, REPO, add_account, add_specialists, bench_config, free_port, git_revision, go_on_duty_now, machine,
    make_bench_app, positions, print_machine, save_json, stop_process, wait_until_up,
)

BENCH_DIR_ENV = "FIELDAPP_BENCH_DIR"
SECRET = "bench-throughput-secret"  # every gunicorn worker must sign sessions with the same key
# htmx sends HX-Request on its polls; the board's fragment is what supervisors' screens fetch every 5 s.
POLL = {"HX-Request": "true"}
TARGETS = [
    ("floor (hello)", "/bench/hello", "officer", {}),
    ("reference page", "/reference/psychosis", "officer", {}),
    ("officer's home", "/", "officer", {}),
    ("board poll, 200 open", "/board/live", "supervisor", POLL),
    # The same poll revalidated with the ETag it was given: the browser's usual case.
    ("board poll, unchanged", "/board/live", "supervisor", dict(POLL, **{"If-None-Match": None})),
]


def make_app():
    """The gunicorn factory: fieldapp on the seeded database, plus the floor route."""
    from flask import Response

    from fieldapp import create_app

    folder = Path(os.environ[BENCH_DIR_ENV])
    app = create_app(bench_config(folder, SECRET_KEY=SECRET))

    @app.route("/bench/hello")
    def bench_hello():
        """The floor: the same app and middleware, no view work."""
        return Response("hello\n", mimetype="text/plain")

    return app


def seed(folder, rng):
    """The database the served app reads: people, specialists and 200 open requests."""
    from fieldapp.requests import domain as flow
    from fieldapp.requests.escalation import create_request
    from fieldapp.store.db import connect, one
    from fieldapp.demo.seed import DEMO_DISTRICTS
    from fieldapp.districts import save_centre
    from fieldapp.identity.sessions import User

    app = make_bench_app(bench_config(folder, SECRET_KEY=SECRET, CLOCK=time.time))
    db = connect(app.config["DATABASE"])
    for name, lat, lon in DEMO_DISTRICTS:
        save_centre(db, name, lat, lon)
    add_account(app, db, "ofc.home", "officer", "Ofc. Home Bench", unit="1-Adam-1")
    supervisor = add_account(app, db, "sgt.board", "supervisor", "Sgt. Board Bench", unit="1-Sgt-1")
    go_on_duty_now(app, db, supervisor)
    # Devices on an address nothing listens on: no worker runs, so nothing is sent.
    add_specialists(app, db, positions(rng, 200, 40.0), lambda i, uid: f"http://127.0.0.1:9/push/p0-{uid}",
                    lambda i: ("B" + "A" * 86, "A" * 22))
    requesters = [add_account(app, db, f"ofc.{n}", "officer", f"Ofc. Requester {n}", unit=f"{n}-Adam") for n in range(20)]
    states = ["requested"] * 110 + ["accepted"] * 50 + ["on_scene"] * 25 + ["stabilised"] * 15
    with app.app_context():
        for n, (state, (lat, lon)) in enumerate(zip(states, positions(rng, len(states), 30.0))):
            request_id, _ = create_request(
                db, requesters[n % len(requesters)], lat=lat, lon=lon, accuracy=15, location_text=f"{100 + n} Bench St",
                note="bench", weapon=n % 7 == 0, medical=n % 5 == 0, juvenile=n % 11 == 0, different_scene=True,
            )
            nearest = one(db, "SELECT user_id FROM alerts WHERE request_id = ? ORDER BY distance_m LIMIT 1", [request_id])
            if state == "requested" or nearest is None:
                continue
            cit = User(one(db, "SELECT * FROM users WHERE id = ?", [nearest["user_id"]]))
            flow.move(db, request_id, "accept", cit)
            if state in ("on_scene", "stabilised"):
                flow.move(db, request_id, "arrive", cit)
            if state == "stabilised":
                flow.move(db, request_id, "stabilise", cit)
    counts = {r["state"]: r["n"] for r in db.query("SELECT state, COUNT(*) AS n FROM cit_requests GROUP BY state")}
    db.close()
    return counts


def sign_in(base, username):
    """Sign in through the real form, CSRF token and all; returns the session cookie's value."""
    jar = http.cookiejar.CookieJar()
    opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(jar))
    with opener.open(base + "/login", timeout=10) as r:
        form = r.read().decode()
    token = re.search(r'name="csrf_token"[^>]*value="([^"]+)"', form) or re.search(r'value="([^"]+)"[^>]*name="csrf_token"', form)
    if not token:
        raise RuntimeError("no csrf_token in the login form")
    data = urllib.parse.urlencode({"username": username, "password": PASSWORD, "csrf_token": token.group(1)}).encode()
    with opener.open(base + "/login", data=data, timeout=10) as r:
        if r.url.rstrip("/") != base:
            raise RuntimeError(f"sign-in as {username} did not land on the home page ({r.url})")
    return next(c.value for c in jar if c.name == "session")


def check(base, path, cookie, headers):
    """The page answers 200 for this session (not a redirect to the sign-in form); also its ETag."""
    headers = {k: v for k, v in headers.items() if v is not None}
    request = urllib.request.Request(base + path, headers={"Cookie": f"session={cookie}", "Accept-Encoding": "gzip", **headers})
    opener = urllib.request.build_opener(NoRedirect)
    try:
        with opener.open(request, timeout=10) as r:
            body = r.read()
            return r.status, len(body), r.headers.get("Content-Encoding"), r.headers.get("ETag")
    except urllib.error.HTTPError as e:  # urllib raises on 304 and on redirects it was told not to follow
        return e.code, len(e.read()), e.headers.get("Content-Encoding"), e.headers.get("ETag")


class NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args, **kwargs):
        return None


def parse_wrk(text):
    """Requests/s, latency percentiles (ms) and error counts from `wrk --latency` output."""
    def ms(value):
        number, unit = re.match(r"([\d.]+)(us|ms|s)", value).groups()
        return float(number) * {"us": 0.001, "ms": 1.0, "s": 1000.0}[unit]

    out = {"rps": float(re.search(r"Requests/sec:\s+([\d.]+)", text).group(1))}
    for pct in ("50", "90", "99"):
        m = re.search(rf"^\s+{pct}(?:\.000)?%\s+(\S+)", text, re.M)
        out[f"p{pct}_ms"] = ms(m.group(1)) if m else None
    out["requests"] = int(re.search(r"(\d+) requests in", text).group(1))
    non2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", text)
    out["non_2xx"] = int(non2xx.group(1)) if non2xx else 0
    errors = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", text)
    out["socket_errors"] = sum(int(x) for x in errors.groups()) if errors else 0
    return out


def run_wrk(url, cookie, headers, args, duration=None):
    duration = duration or args.duration
    extra = [arg for name, value in headers.items() for arg in ("-H", f"{name}: {value}")]
    cmd = [
        "wrk", f"-t{args.wrk_threads}", f"-c{args.connections}", f"-d{duration}s", "--timeout", "5s", "--latency",
        "-H", f"Cookie: session={cookie}", "-H", "Accept-Encoding: gzip", *extra, url,
    ]
    # wrk stops itself after --duration; the timeout is a second guard.
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=duration + 30)
    if done.returncode != 0:
        raise RuntimeError(f"wrk failed: {done.stderr}")
    return parse_wrk(done.stdout)


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--workers", type=int, default=2, help="gunicorn workers (2-4; default 2, one per core)")
    p.add_argument("--worker-class", default="gthread", choices=("sync", "gthread"),
                   help="gunicorn worker class (default gthread: keeps connections alive)")
    p.add_argument("--threads", type=int, default=4, help="threads per gthread worker (default 4)")
    p.add_argument("--keep-alive", type=int, default=0,
                   help="gunicorn --keep-alive seconds (default 0: one request per connection, as nginx sends"
                        " upstream by default; kept-alive wrk connections pile onto one worker at random)")
    p.add_argument("--duration", type=int, default=6, help="seconds per wrk run (default 6)")
    p.add_argument("--rounds", type=int, default=5, help="times each target is run, in turn (default 5)")
    p.add_argument("--connections", type=int, default=16, help="wrk connections (default 16)")
    p.add_argument("--wrk-threads", type=int, default=2, help="wrk threads (default 2)")
    args = p.parse_args(argv)
    if not 1 <= args.workers <= 8 or not 1 <= args.duration <= 60 or not 1 <= args.rounds <= 5:
        p.error("keep runs bounded: 1-8 workers, 1-60 s per run, 1-5 rounds")
    return args


def main(args):
    if shutil.which("wrk") is None:
        sys.exit("wrk is not installed: apt-get install -y wrk")
    info = machine()
    print_machine(info)
    folder = tempfile.mkdtemp(prefix="fieldapp-throughput-")
    result = {"bench": "throughput", "machine": info, "revision": git_revision(), "args": vars(args)}
    server = None
    try:
        result["seeded"] = seed(folder, random.Random(3))
        print(f"# seeded open requests by state: {result['seeded']}")
        port = free_port()
        base = f"http://127.0.0.1:{port}"
        cmd = [
            str(REPO / ".venv" / "bin" / "gunicorn"), "--workers", str(args.workers), "--bind", f"127.0.0.1:{port}",
            "--worker-class", args.worker_class, "--threads", str(args.threads), "--log-level", "warning",
            "--keep-alive", str(args.keep_alive),
            "bench.throughput:make_app()",
        ]
        print(f"# {' '.join(cmd[1:])}")
        server = subprocess.Popen(cmd, cwd=REPO, env={**os.environ, BENCH_DIR_ENV: folder}, start_new_session=True)
        wait_until_up(base)
        cookies = {"officer": sign_in(base, "ofc.home"), "supervisor": sign_in(base, "sgt.board")}
        headers = {}
        for name, path, who, extra in TARGETS:
            status, size, encoding, etag = check(base, path, cookies[who], extra)
            headers[name] = {k: (etag if v is None else v) for k, v in extra.items()}
            print(f"# {name}: GET {path} as {who} {headers[name] or ''} -> {status}, {size} bytes of body"
                  f" ({encoding or 'identity'})")
            if status != 200:
                raise RuntimeError(f"{path} answered {status}")
            if "If-None-Match" in headers[name]:
                again = check(base, path, cookies[who], headers[name])
                print(f"#   and again with that ETag -> {again[0]}, {again[1]} bytes of body")
        # Warm-up, not counted: every worker compiles its templates and fills its caches.
        for name, path, who, _ in TARGETS:
            run_wrk(base + path, cookies[who], headers[name], args, duration=2)
        print(f"# wrk -t{args.wrk_threads} -c{args.connections} -d{args.duration}s --latency,"
              f" Accept-Encoding: gzip, {args.rounds} round(s)")
        runs = {name: [] for name, *_ in TARGETS}
        for round_no in range(args.rounds):
            for name, path, who, extra in TARGETS:
                if "If-None-Match" in extra:
                    # The ETag as of now: time alone changes the board (a waiting request's alert
                    # goes unconfirmed after RECEIPT_TIMEOUT_S), and then every poll is a 200.
                    etag = check(base, path, cookies[who], {k: v for k, v in extra.items() if v is not None})[3]
                    headers[name] = dict(headers[name], **{"If-None-Match": etag})
                    if check(base, path, cookies[who], headers[name])[0] != 304:
                        raise RuntimeError(f"{name}: not answered 304 with its own ETag")
                figures = run_wrk(base + path, cookies[who], headers[name], args)
                figures["loadavg"] = os.getloadavg()[0]
                runs[name].append(figures)
                print(f"  round {round_no + 1} {name:<22} {figures['rps']:8.1f} req/s  p50 {figures['p50_ms']:7.2f} ms"
                      f"  p99 {figures['p99_ms']:7.2f} ms  non-2xx {figures['non_2xx']}  socket errors {figures['socket_errors']}  load {figures['loadavg']:.2f}")
        # Each page is compared with the floor measured in the same round, then the median is
        # taken: other work on this shared machine moves both, and shows as a spread.
        floor_name = TARGETS[0][0]
        print(f"\n{'target':<24}{'req/s (median)':>16}{'p99 ms (median)':>17}{'of floor (median, range)':>28}")
        summary = {}
        for name, path, *_ in TARGETS:
            ratios = [r["rps"] / f["rps"] for r, f in zip(runs[name], runs[floor_name])]
            summary[name] = {
                "path": path, "rps_median": statistics.median(r["rps"] for r in runs[name]),
                "p99_ms_median": statistics.median(r["p99_ms"] for r in runs[name]),
                "p99_ms_worst": max(r["p99_ms"] for r in runs[name]),
                "ratio_median": statistics.median(ratios), "ratio_min": min(ratios), "ratio_max": max(ratios),
                "rps_runs": [r["rps"] for r in runs[name]], "loadavg_runs": [r["loadavg"] for r in runs[name]],
            }
            t = summary[name]
            print(f"{name:<24}{t['rps_median']:16.1f}{t['p99_ms_median']:17.2f}"
                  f"{t['ratio_median']:14.0%} ({t['ratio_min']:.0%}-{t['ratio_max']:.0%})")
        # Issue 14's targets, each a share of the floor measured in the same round.
        for name, target in (("board poll, unchanged", 0.8), ("board poll, 200 open", 0.3), ("reference page", 0.8)):
            ratio = summary[name]["ratio_median"]
            print(f"{name} at {ratio:.0%} of the floor (median of {args.rounds} rounds)"
                  f"  [target >= {target:.0%}: {'met' if ratio >= target else 'MISSED'}]")
        result["runs"], result["summary"] = runs, summary
    finally:
        if server is not None:
            stop_process(server)
        shutil.rmtree(folder, ignore_errors=True)
    keep = f"-ka{args.keep_alive}"
    path = save_json(f"throughput-{args.worker_class}-{args.workers}w{keep}", result)
    print(f"figures saved to {path.relative_to(REPO)}")
    return result


if __name__ == "__main__":
    main(parse_args())
