"""CPU per request, in process: the throughput targets measured where other work on the machine cannot move them.

    .venv/bin/python bench/poll_cost.py
    .venv/bin/python bench/poll_cost.py --profile "board poll, 200 open"

On a shared 2-core machine wrk's requests/s move with everyone else's load
(bench/throughput.py gives the spread). This script seeds the same database as
bench/throughput.py (200 open requests, 200 specialists on duty), builds the
same app (with its "hello" floor) and calls it through Flask's test client in
one thread, timing each target with the process's own CPU clock
(`time.process_time`), so time spent waiting for other processes does not count.
Each target runs `--rounds` times in turn; the least CPU per request of the rounds is kept,
and each share is the floor's CPU per request over the target's. The test client
skips gunicorn and the socket, which the floor skips too.
"""
import argparse
import os
import random
import re
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench import throughput  # noqa: E402
from bench.seed import PASSWORD, git_revision, machine, print_machine, save_json  # noqa: E402

POLL = {"HX-Request": "true", "Accept-Encoding": "gzip"}
TARGETS = [  # name, who, path, headers, share of the floor wanted (issue 14)
    ("floor (hello)", "officer", "/bench/hello", {"Accept-Encoding": "gzip"}, None),
    ("reference page", "officer", "/reference/psychosis", {"Accept-Encoding": "gzip"}, 0.8),
    ("board poll, unchanged", "supervisor", "/board/live", dict(POLL, **{"If-None-Match": None}), 0.8),
    ("board poll, 200 open", "supervisor", "/board/live", POLL, 0.3),
]


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--rounds", type=int, default=5, help="times each target is run, in turn (default 5)")
    p.add_argument("--calls", type=int, default=200, help="requests per target per round (default 200)")
    p.add_argument("--profile", help="after the run, profile this target with cProfile")
    args = p.parse_args(argv)
    if not 1 <= args.rounds <= 20 or not 1 <= args.calls <= 5000:
        p.error("keep the run bounded: 1-20 rounds, 1-5,000 calls")
    return args


def signed_in(app, username):
    client = app.test_client()
    form = client.get("/login").get_data(as_text=True)
    token = re.search(r'name="csrf_token"[^>]*value="([^"]+)"', form) or re.search(r'value="([^"]+)"[^>]*name="csrf_token"', form)
    client.post("/login", data={"username": username, "password": PASSWORD, "csrf_token": token.group(1)})
    return client


def main(args):
    info = machine()
    print_machine(info)
    folder = tempfile.mkdtemp(prefix="fieldapp-poll-cost-")
    os.environ[throughput.BENCH_DIR_ENV] = folder
    throughput.seed(folder, random.Random(3))
    app = throughput.make_app()
    clients = {"officer": signed_in(app, "ofc.home"), "supervisor": signed_in(app, "sgt.board")}
    calls = []
    for name, who, path, headers, _ in TARGETS:
        if "If-None-Match" in headers:
            etag = clients[who].get(path, headers=POLL).headers["ETag"]
            headers = dict(headers, **{"If-None-Match": etag})
        status = clients[who].get(path, headers=headers).status_code
        print(f"# {name}: GET {path} -> {status}")
        calls.append((name, clients[who], path, headers))
    cpu = {name: [] for name, *_ in calls}
    for _ in range(args.rounds):
        for name, client, path, headers in calls:
            started = time.process_time()
            for _ in range(args.calls):
                client.get(path, headers=headers)
            cpu[name].append((time.process_time() - started) / args.calls * 1000)
    floor = min(cpu[TARGETS[0][0]])
    result = {"bench": "poll_cost", "machine": info, "revision": git_revision(), "args": vars(args), "summary": {}}
    print(f"\n{'target':<24}{'CPU ms/request (least)':>24}{'share of floor':>16}")
    for name, *_, wanted in TARGETS:
        least = min(cpu[name])
        result["summary"][name] = {"cpu_ms": least, "share": floor / least, "rounds_ms": cpu[name]}
        verdict = "" if wanted is None else f"  [target >= {wanted:.0%}: {'met' if floor / least >= wanted else 'MISSED'}]"
        print(f"{name:<24}{least:24.2f}{floor / least:15.0%}{verdict}")
    path = save_json("poll-cost", result)
    print(f"figures saved to {path}")
    if args.profile:
        import cProfile
        import pstats

        [(client, path, headers)] = [(c, p, h) for n, c, p, h in calls if n == args.profile]
        profile = cProfile.Profile()
        profile.enable()
        for _ in range(min(args.calls, 50)):
            client.get(path, headers=headers)
        profile.disable()
        pstats.Stats(profile).sort_stats("tottime").print_stats(25)
    return result


if __name__ == "__main__":
    main(parse_args())
