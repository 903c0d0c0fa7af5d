"""The program's pages with a year of history: Reports, Coverage and Summary render times, and the CSV exports' memory.

    .venv/bin/python bench/reports.py                  # the demo's year: 3 districts, 2,000 requests
    .venv/bin/python bench/reports.py --requests 20000 --rounds 10

Seeds a temporary database the way `make run` does (`seed-demo`: the demo
districts, accounts and a year of invented requests, timed apart; --requests
changes how many), signs a coordinator in through /login, and loads each page in-process
with Flask's test client `--rounds` times after one warm-up load: the time is
the whole request, routing, queries, charts and templates, without a network.
Target: under 300 ms each (issue 18).

The exports: each CSV is read through to its last byte with tracemalloc on, and
the peak Python memory is kept with whether Flask streamed the response.
"""
import argparse
import statistics
import sys
import tempfile
import time
import tracemalloc
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.seed import PASSWORD, add_account, bench_config, machine, make_bench_app, percentile, print_machine, save_json  # noqa: E402

PAGES = {
    "reports (12 months, by district)": "/program/reports",
    "reports (12 months, by month)": "/program/reports?by=month",
    "coverage (with the 90-day forecast)": "/program/coverage",
    "summary (last month)": "/program/reports/summary",
}
EXPORTS = {
    "reports.csv (by month)": "/program/reports.csv?by=month",
    "fidelity.csv": "/program/reports/fidelity.csv",
}
TARGET_MS = 300


def seed(app, db, folder, requests):
    """The demo, as `make run` seeds it, with `requests` invented requests over the year."""
    from fieldapp.demo.seed import demo_people, seed_demo
    from fieldapp.demo.history import seed_history

    with app.app_context():
        started = time.perf_counter()
        seed_demo(db, Path(folder) / "demo-accounts.txt", history=False)
        accounts_s = time.perf_counter() - started
        started = time.perf_counter()
        seed_history(db, demo_people(db), count=requests)
        history_s = time.perf_counter() - started
    return accounts_s, history_s


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--requests", type=int, default=2000, help="invented requests over the year (default 2000)")
    parser.add_argument("--rounds", type=int, default=30, help="loads of each page after the warm-up (default 30)")
    args = parser.parse_args()
    info = machine()
    print_machine(info)
    from fieldapp.store.db import connect

    with tempfile.TemporaryDirectory() as folder:
        app = make_bench_app(bench_config(folder, WTF_CSRF_ENABLED=False))
        db = connect(app.config["DATABASE"])
        accounts_s, seed_s = seed(app, db, folder, args.requests)
        count = db.execute("SELECT COUNT(*) FROM cit_requests").fetchone()[0]
        events = db.execute("SELECT COUNT(*) FROM request_events").fetchone()[0]
        print(f"seed-demo: accounts in {accounts_s * 1000:.0f} ms (password hashing);"
              f" {count} requests, {events} timeline events in {seed_s * 1000:.0f} ms")
        add_account(app, db, "bench.coordinator", "coordinator")
        client = app.test_client()
        assert client.post("/login", data={"username": "bench.coordinator", "password": PASSWORD}).status_code == 302
        result = {"machine": info, "requests": count, "events": events, "seed_ms": seed_s * 1000, "pages": {},
                  "exports": {}}
        print(f"{'page':<40} {'p50 ms':>8} {'p99 ms':>8} {'max ms':>8}  under {TARGET_MS} ms")
        for name, url in PAGES.items():
            assert client.get(url).status_code == 200, url  # warm-up: templates compiled, caches filled
            times = []
            for _ in range(args.rounds):
                started = time.perf_counter()
                response = client.get(url)
                response.get_data()
                times.append((time.perf_counter() - started) * 1000)
                assert response.status_code == 200, url
            p50, p99 = statistics.median(times), percentile(times, 99)
            result["pages"][name] = {"p50_ms": p50, "p99_ms": p99, "max_ms": max(times), "rounds": args.rounds}
            print(f"{name:<40} {p50:>8.1f} {p99:>8.1f} {max(times):>8.1f}  {'yes' if p99 < TARGET_MS else 'NO'}")
        print(f"{'export':<40} {'streamed':>8} {'peak MiB':>9} {'bytes':>9}")
        for name, url in EXPORTS.items():
            tracemalloc.start()
            response = client.get(url)
            size = sum(len(chunk) for chunk in response.response)
            _, peak = tracemalloc.get_traced_memory()
            tracemalloc.stop()
            # The test client wraps every body in an iterator; a streamed one has no length up front.
            streamed = "Content-Length" not in response.headers
            result["exports"][name] = {"streamed": streamed, "peak_mib": peak / 2**20, "bytes": size}
            print(f"{name:<40} {str(streamed):>8} {peak / 2**20:>9.2f} {size:>9}")
        db.close()
    print(f"saved {save_json('reports', result)}")


if __name__ == "__main__":
    main()
