"""Does the profile export stream? Peak Python memory while writing a year of requests, at two sizes.

Seeds N resolved requests (with their timelines) over a year by direct SQL,
then runs the same code `flask export --profile` runs into a file, under
tracemalloc. If rows streamed from the cursor, the peak stays flat as N grows
ten times; if the export built a list first, it grows with N.

    .venv/bin/python bench/export_stream.py [--sizes 2000 20000]
"""
import argparse
import datetime
import json
import random
import sys
import tempfile
import time
import tracemalloc
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.seed import bench_config, make_bench_app, machine, print_machine  # noqa: E402

YEAR_START = datetime.datetime(2025, 6, 1).timestamp()


def seed(app, db, n, rng):
    """N resolved requests over a year, each with requested, accepted, on_scene and resolved events.

    In SQL, in one batch: the state machine resolves one request at a time at the clock's now, and
    requests.history (the demo's year) writes no encounter record, which the export crosswalks.
    """
    from fieldapp.identity.accounts import create_user

    with app.app_context():
        requester = create_user(db, "bench.ofc", None, "officer", "Bench Officer", password_hash="!")
    levels = ["none", "presence", "verbal", "hands_on", "less_lethal"]
    with db.conn:
        for i in range(n):
            t = YEAR_START + rng.random() * 365 * 86400
            request_id = db.conn.execute(
                "INSERT INTO cit_requests (requester_id, state, created_at, updated_at, policy, lat, lon, disposition,"
                " force_level, transport, closed_at) VALUES (?, 'resolved', ?, ?, '{}', 35.15, -90.05, 'other', ?, 'none', ?)",
                [requester, t, t, rng.choice(levels), t + 2400]).lastrowid
            db.conn.executemany("INSERT INTO request_events (request_id, at, event) VALUES (?, ?, ?)",
                                [(request_id, t, "requested"), (request_id, t + 60, "accepted"),
                                 (request_id, t + 600, "on_scene"), (request_id, t + 2400, "resolved")])


def measure(n):
    from fieldapp.program.data_dictionary import load_dictionary
    from fieldapp.store.db import connect
    from fieldapp.program.exports import load_profile, profile_path, write_profile_export

    with tempfile.TemporaryDirectory() as tmp:
        app = make_bench_app(bench_config(tmp))
        db = connect(app.config["DATABASE"])
        seed(app, db, n, random.Random(18))
        with app.app_context():
            profile = load_profile(profile_path("example-state-cit"), load_dictionary())
            out = Path(tmp) / "form.csv"
            tracemalloc.start()
            started = time.perf_counter()
            with out.open("w", newline="") as f:
                rows = write_profile_export(db, profile, datetime.date(2025, 6, 1), datetime.date(2026, 6, 1), f)
            seconds = time.perf_counter() - started
            _, peak = tracemalloc.get_traced_memory()
            tracemalloc.stop()
        db.close()
        return {"requests": n, "rows": rows, "seconds": round(seconds, 3), "peak_kib": round(peak / 1024)}


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[2000, 20000])
    args = parser.parse_args()
    print_machine(machine())
    for n in args.sizes:
        print(json.dumps(measure(n)))


if __name__ == "__main__":
    main()
