"""Accept to the requester's open page: with the push handed to the service worker, and with polling alone.

    .venv/bin/python bench/live_push.py               # 40 accepts each way
    .venv/bin/python bench/live_push.py --rounds 100

Serves the app (werkzeug, threaded, with the in-process worker) on a temporary
database, with the test stand-in push service (tests/push_service.py) and
Debian's Chromium under Playwright, the push subscription stubbed as in the
browser tests (tests/push_stub.js). For each accept:

- push: the officer's page has its own polls stopped (an htmx:beforeRequest guard
  lets through only a refresh the service worker asks for); the specialist accepts
  (`move()`, as the accept route does); the stand-in push service receives and
  decrypts the requester's push, which is handed to the service worker through
  CDP `ServiceWorker.deliverPushMessage`; the clock stops when the page shows the
  specialist's name. The push service's own delivery to the phone is not in it:
  on a real network add its latency.
- polling: the same page with its 4 s poll and no push.

Figures: docs/PERFORMANCE.md.
"""
import argparse
import json
import re
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.seed import (  # noqa: E402
    bench_config, git_revision, machine, make_bench_app, percentile, print_machine, save_json, serve,
)

STUB = (Path(__file__).resolve().parents[1] / "tests" / "push_stub.js").read_text()
NO_POLLING = """() => {
  document.body.addEventListener("htmx:beforeRequest", (e) => {
    const cause = e.detail.requestConfig && e.detail.requestConfig.triggeringEvent;
    if (!cause || cause.type !== "refresh") e.preventDefault();
  });
}"""


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--rounds", type=int, default=40, help="accepts timed each way (default 40)")
    args = p.parse_args(argv)
    if not 1 <= args.rounds <= 500:
        p.error("keep the run bounded: 1-500 rounds")
    return args


def main(args):
    from playwright.sync_api import sync_playwright

    from fieldapp.identity.accounts import create_user, user_by_username
    from fieldapp.store.db import connect
    from fieldapp.duty.positions import record_position
    from fieldapp.duty.status import go_on_duty
    from fieldapp.requests.domain import move
    from fieldapp.requests.escalation import create_request
    from fieldapp.identity.sessions import User
    from tests.conftest import CHROMIUM, CHROMIUM_ARGS
    from tests.helpers import PASSWORD, SCENE, deliver_push, offset, sign_in, wait_for_offline_copy, wait_until
    from tests.push_service import StandInPushService

    info = machine()
    print_machine(info)
    folder = tempfile.mkdtemp(prefix="fieldapp-live-push-")
    app = make_bench_app(bench_config(folder, WORKER_IN_PROCESS=True, WORKER_POLL_S=0.1, WTF_CSRF_ENABLED=True))
    server, base = serve(app)
    push_service = StandInPushService()
    app.config["PUSH_INSECURE_HOSTS"] = ["127.0.0.1"]
    db = connect(app.config["DATABASE"])
    with app.app_context():
        create_user(db, "ofc.lee", PASSWORD, "officer", "Ofc. Kim Lee")
        create_user(db, "cit.reyes", PASSWORD, "cit", "Ofc. Jordan Reyes (CIT)")
        cit = User(user_by_username(db, "cit.reyes"))
        officer_id = user_by_username(db, "ofc.lee")["id"]
        go_on_duty(db, cit.id)
        near = offset(1400)
        record_position(db, cit.id, near[0], near[1], 10.0, "device")
    times = {"push": [], "polling": []}
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
        context = browser.new_context(viewport={"width": 360, "height": 640}, permissions=["geolocation", "notifications"],
                                      geolocation={"latitude": SCENE[0], "longitude": SCENE[1]})
        context.add_init_script(STUB.replace("__PUSH_ORIGIN__", push_service.origin))
        page = context.new_page()
        sign_in(page, base, "ofc.lee")
        wait_for_offline_copy(page, "/")
        wait_until(page, "() => navigator.serviceWorker.controller !== null")
        endpoint = None
        for n in range(args.rounds * 2):
            mode = "push" if n % 2 == 0 else "polling"
            with app.app_context():
                request_id, _ = create_request(db, officer_id, lat=SCENE[0], lon=SCENE[1], accuracy=10.0,
                                               location_text="", note="", different_scene=True)
            page.goto(f"{base}/requests/{request_id}")
            if endpoint is None:
                page.get_by_role("button", name="Notify me on this phone").click()
                wait_until(page, "() => document.querySelector('[data-alerts-status]').textContent.includes('Alerts are on')")
                saved = json.loads(page.evaluate("localStorage.getItem('__testPush')"))
                push_service.register_browser_key(saved["endpoint"], saved["jwk"], saved["keys"]["auth"])
                endpoint = saved["endpoint"]
            if mode == "push":
                page.evaluate(NO_POLLING)
            else:
                # The requester's push still goes out; it is not handed to the page.
                page.wait_for_timeout(int(1000 * (n % 8) / 2))  # accepts fall anywhere in the 4 s poll cycle
            seen = len(push_service.deliveries)
            started = time.monotonic()
            with app.app_context():
                move(db, request_id, "accept", cit)
            if mode == "push":
                deadline = time.monotonic() + 10
                while not [d for d in push_service.deliveries[seen:] if d.endpoint == endpoint]:
                    if time.monotonic() > deadline:
                        raise RuntimeError("the requester's push never reached the push service")
                    time.sleep(0.005)
                [news] = [d for d in push_service.deliveries[seen:] if d.endpoint == endpoint]
                deliver_push(context, page, base, news.payload)
            page.locator("#live", has_text="Ofc. Jordan Reyes (CIT)").wait_for(timeout=15_000)
            times[mode].append(time.monotonic() - started)
            with app.app_context():
                move(db, request_id, "resolve", cit, {"disposition": "mobile_crisis_referral", "force_used": "no"})
        browser.close()
    server.shutdown()
    push_service.close()
    result = {"bench": "live_push", "machine": info, "revision": git_revision(), "args": vars(args), "summary": {}}
    print(f"\n{'accept -> requester page shows it':<36}{'p50 ms':>9}{'p90 ms':>9}{'p99 ms':>9}{'max ms':>9}")
    for mode, values in times.items():
        ms = sorted(v * 1000 for v in values)
        row = {"n": len(ms), "p50_ms": percentile(ms, 50), "p90_ms": percentile(ms, 90), "p99_ms": percentile(ms, 99), "max_ms": ms[-1]}
        result["summary"][mode] = row
        print(f"{mode:<36}{row['p50_ms']:9.0f}{row['p90_ms']:9.0f}{row['p99_ms']:9.0f}{row['max_ms']:9.0f}")
    p99 = result["summary"]["push"]["p99_ms"]
    print(f"\npush: p99 {p99:.0f} ms  [target < 1000 ms: {'met' if p99 < 1000 else 'MISSED'}]")
    path = save_json("live-push", result)
    print(f"figures saved to {path}")
    return result


if __name__ == "__main__":
    main(parse_args())
