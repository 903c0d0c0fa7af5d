"""Push to receipt: from a push handed to the service worker to its receipt stored, in real Chromium.

    .venv/bin/python bench/receipts.py               # 200 pushes
    .venv/bin/python bench/receipts.py --pushes 1000

Serves the app (create_app on a temporary database, the real clock) on
127.0.0.1 in a thread, opens it once in Debian's Chromium so the service
worker installs, then closes the page: the worker is alone, as on a phone in a
pocket. For each push, a receipt token is issued as for a real alert, the
payload is handed to the worker with CDP `ServiceWorker.deliverPushMessage`,
and the time is taken from just before that call to the `delivered_at` the
server stored (both on the same clock). The worker shows the notification and
posts the receipt, as it does for a real alert. Figures: docs/PERFORMANCE.md.
"""
import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.seed import (  # noqa: E402
    add_account, bench_config, git_revision, machine, make_bench_app, percentile, print_machine, save_json, serve,
)

CHROMIUM = "/usr/bin/chromium"
ARGS = ["--headless=new", "--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-background-networking",
        "--disable-component-update", "--disable-sync"]


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--pushes", type=int, default=200, help="pushes handed to the worker, one after another (default 200)")
    p.add_argument("--timeout", type=float, default=10.0, help="seconds to wait for one receipt")
    args = p.parse_args(argv)
    if not 1 <= args.pushes <= 5000:
        p.error("keep the run bounded: 1 to 5,000 pushes")
    return args


def worker_registration(context, page, base):
    cdp = context.new_cdp_session(page)
    found = []
    cdp.on("ServiceWorker.workerRegistrationUpdated", lambda e: found.extend(e["registrations"]))
    cdp.send("ServiceWorker.enable")
    for _ in range(300):
        ours = [r["registrationId"] for r in found if r["scopeURL"] == base + "/" and not r["isDeleted"]]
        if ours:
            return cdp, ours[0]
        page.wait_for_timeout(100)
    raise SystemExit("the service worker never registered")


def main(argv=None):
    args = parse_args(argv)
    from playwright.sync_api import sync_playwright

    from fieldapp.store.db import connect, one, write_transaction
    from fieldapp.delivery import receipts

    info = machine()
    print_machine(info)
    with tempfile.TemporaryDirectory() as tmp:
        app = make_bench_app(bench_config(tmp, PUSH_TTL=3600))
        db = connect(app.config["DATABASE"])
        user_id = add_account(app, db, "cit.bench", "cit")
        server, base = serve(app)
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path=CHROMIUM, args=ARGS, headless=True)
            context = browser.new_context(permissions=["notifications"])
            page = context.new_page()
            page.goto(base + "/login")
            page.evaluate("() => navigator.serviceWorker.ready.then(() => true)")
            cdp, registration_id = worker_registration(context, page, base)
            page.goto("about:blank")  # every page of the app closed: the worker is alone
            times = []
            for i in range(args.pushes):
                with app.app_context(), write_transaction(db):
                    token = receipts.issue(db, "test", user_id, None)
                payload = {"kind": "test", "title": "Bench", "body": "", "url": "/duty", "topic": "bench", "receipt": token}
                started = time.time()
                cdp.send("ServiceWorker.deliverPushMessage",
                         {"origin": base, "registrationId": registration_id, "data": json.dumps(payload)})
                deadline = time.monotonic() + args.timeout
                while True:
                    row = one(db, "SELECT delivered_at FROM alert_receipts WHERE id = (SELECT MAX(id) FROM alert_receipts)")
                    if row["delivered_at"]:
                        times.append((row["delivered_at"] - started) * 1000)
                        break
                    if time.monotonic() > deadline:
                        raise SystemExit(f"push {i}: no receipt within {args.timeout} s")
                    time.sleep(0.002)
            browser.close()
        server.shutdown()
    p50, p99 = percentile(times, 50), percentile(times, 99)
    print(f"push handed to the service worker -> receipt stored, {len(times)} pushes:"
          f" p50 {p50:.1f} ms, p99 {p99:.1f} ms, max {max(times):.1f} ms (target p99 < 500 ms)")
    path = save_json("receipts", {"machine": info, "revision": git_revision(), "pushes": len(times),
                                  "p50_ms": p50, "p99_ms": p99, "max_ms": max(times)})
    print(f"figures kept in {path}")


if __name__ == "__main__":
    main()
