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

A *changed* board poll is timed as the board meets it: before each call, and
outside the clock, one open request is written (its location text, through a
connection of its own), so every poll is a 200 that finds one row changed. The
unchanged poll asks for its ETag again at the start of each of its rounds,
since those writes move the change counter. "every row new" empties the kept
row HTML before each call: the cost of a first poll, or of a board whose every
row changed at once.
"""
import argparse
import itertools
import os
import random
import re
import sqlite3
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench import throughput  # noqa: E402
from bench.seed import PASSWORD, git_revision, machine, print_machine, save_json  # noqa: E402

POLL = {"HX-Request": "true", "Accept-Encoding": "gzip"}
TARGETS = [  # name, who, path, headers, before each call, share of the floor wanted (issue 14)
    ("floor (hello)", "officer", "/bench/hello", {"Accept-Encoding": "gzip"}, None, None),
    ("reference page", "officer", "/reference/psychosis", {"Accept-Encoding": "gzip"}, None, 0.8),
    ("board poll, unchanged", "supervisor", "/board/live", dict(POLL, **{"If-None-Match": None}), None, 0.8),
    ("board poll, 1 row changed", "supervisor", "/board/live", POLL, "change_one_row", 0.3),
    ("board poll, every row new", "supervisor", "/board/live", POLL, "forget_rows", None),
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
    writer = sqlite3.connect(os.path.join(folder, "bench.db"), isolation_level=None)
    open_ids = [r[0] for r in writer.execute("SELECT id FROM cit_requests WHERE state != 'resolved' ORDER BY id")]
    edits = itertools.count()

    def change_one_row():
        # A write straight to the table, as no page makes it: the cost measured is the poll's, not the write's.
        n = next(edits)
        writer.execute("UPDATE cit_requests SET location_text = ? WHERE id = ?", [f"{n} Changed Rd", open_ids[n % len(open_ids)]])

    def forget_rows():
        app.extensions.pop("fieldapp.board_rows", None)  # the rows' HTML
        app.extensions.pop("fieldapp.board_data", None)  # and their values

    before_call = {None: None, "change_one_row": change_one_row, "forget_rows": forget_rows}
    calls = []
    for name, who, path, headers, before, _ in TARGETS:
        calls.append((name, clients[who], path, headers, before_call[before]))
    cpu = {name: [] for name, *_ in calls}
    for round_ in range(args.rounds):
        for name, client, path, headers, before in calls:
            if "If-None-Match" in headers:  # the ETag as of now: other targets' writes moved the counter
                headers = dict(headers, **{"If-None-Match": client.get(path, headers=POLL).headers["ETag"]})
            if round_ == 0:
                print(f"# {name}: GET {path} -> {client.get(path, headers=headers).status_code}")
            spent = 0.0
            for _ in range(args.calls):
                if before:
                    before()
                started = time.process_time()
                client.get(path, headers=headers)
                spent += time.process_time() - started
            cpu[name].append(spent / args.calls * 1000)
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

        [(client, path, headers, before)] = [(c, p, h, b) for n, c, p, h, b in calls if n == args.profile]
        if "If-None-Match" in headers:
            headers = dict(headers, **{"If-None-Match": client.get(path, headers=POLL).headers["ETag"]})
        profile = cProfile.Profile()
        for _ in range(min(args.calls, 50)):
            if before:
                before()
            profile.enable()
            client.get(path, headers=headers)
            profile.disable()
        pstats.Stats(profile).sort_stats(os.environ.get("PROFILE_SORT", "tottime")).print_stats(25)
    return result


if __name__ == "__main__":
    main(parse_args())
