"""The CAD API: POST /api/v1/requests with 1,000 on-duty specialists, and the time to the `requested` webhook.

    .venv/bin/python bench/api.py                  # 1,000 specialists, 300 requests
    .venv/bin/python bench/api.py --specialists 10000

Builds the app with `create_app` on a temporary database, with N on-duty
specialists spread over a 40 km square (no devices: this times the API and the
webhook, bench/tap_to_push.py times pushes), one API key and one webhook
endpoint on a loopback receiver, and the in-process worker. For each request,
one after another, it times:

- POST /api/v1/requests through the real Flask app (test client), with an
  Idempotency-Key and a key check, alert selection (K=3) and the audit entry;
- from the start of the POST until the receiver has the signed `requested`
  webhook (the worker leases it, signs it with standardwebhooks and posts it).

Target: API p99 under 50 ms. Figures: docs/PERFORMANCE.md.
"""
import argparse
import json
import random
import sys
import tempfile
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.seed import (  # noqa: E402
    bench_config, machine, make_bench_app, percentile, positions, print_machine, save_json,
)


class Receiver:
    """A loopback webhook endpoint noting when each request's `requested` event arrived."""

    def __init__(self):
        arrived, cond = {}, threading.Condition()

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args):
                pass

            def do_POST(self):
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                at = time.perf_counter()
                self.send_response(204)
                self.send_header("Content-Length", "0")
                self.end_headers()
                if body["type"] == "request.requested":
                    with cond:
                        arrived[body["data"]["id"]] = at
                        cond.notify_all()

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True).start()
        self.url = f"http://127.0.0.1:{self.server.server_port}/hooks"
        self.arrived, self.cond = arrived, cond

    def wait_for(self, request_id, timeout):
        with self.cond:
            self.cond.wait_for(lambda: request_id in self.arrived, timeout)
        return self.arrived.get(request_id)


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--specialists", type=int, default=1000)
    p.add_argument("--requests", type=int, default=300)
    args = p.parse_args(argv)
    info = machine()
    print_machine(info)
    from fieldapp.api.keys import create_key
    from fieldapp.store.db import connect
    from fieldapp.duty.positions import record_position
    from fieldapp.delivery.webhook_endpoints import add_endpoint

    receiver = Receiver()
    with tempfile.TemporaryDirectory() as tmp:
        config = bench_config(tmp, WORKER_IN_PROCESS=True, WEBHOOK_INSECURE_HOSTS=("127.0.0.1",), ALERT_K=3)
        app = make_bench_app(config)
        db = connect(config["DATABASE"])
        rng = random.Random(16)
        points = positions(rng, args.specialists, 40.0)
        from fieldapp.identity.accounts import create_user
        from fieldapp.duty.status import go_on_duty

        with app.app_context():
            db.conn.execute("BEGIN IMMEDIATE")
            for i, (lat, lon) in enumerate(points):
                # No one signs in as these ("!" is no hash).
                user_id = create_user(db, f"cit{i}", None, "cit", unit=f"CIT-{i}", password_hash="!")
                go_on_duty(db, user_id)
                record_position(db, user_id, lat, lon, 10.0, "device")
            db.conn.execute("COMMIT")
            key = create_key(db, "bench-cad", ["requests:read", "requests:write"])
            add_endpoint(db, receiver.url, ["requested"])
            db.conn.commit()
        client = app.test_client()
        headers = {"Authorization": f"Bearer {key}"}
        api_ms, webhook_ms = [], []
        for i in range(args.requests):
            lat, lon = points[rng.randrange(len(points))]
            body = {"cad_incident": f"B-{i}", "lat": lat + 0.01, "lon": lon, "note": "bench", "medical": True}
            t0 = time.perf_counter()
            response = client.post("/api/v1/requests", json=body, headers={**headers, "Idempotency-Key": f"bench-{i}"})
            api_ms.append((time.perf_counter() - t0) * 1000)
            assert response.status_code == 201, response.get_data(as_text=True)
            arrived = receiver.wait_for(response.json["id"], 10)
            assert arrived is not None, "the requested webhook did not arrive in 10 s"
            webhook_ms.append((arrived - t0) * 1000)
        app.extensions["fieldapp.worker_stop"].set()
        app.extensions["fieldapp.worker_wake"].set()
    result = {"machine": info, "specialists": args.specialists, "requests": args.requests,
              "api_ms": {"p50": percentile(api_ms, 50), "p99": percentile(api_ms, 99), "max": max(api_ms)},
              "to_webhook_ms": {"p50": percentile(webhook_ms, 50), "p99": percentile(webhook_ms, 99), "max": max(webhook_ms)}}
    print(f"POST /api/v1/requests, {args.specialists} on duty, {args.requests} requests:"
          f" p50 {result['api_ms']['p50']:.1f} ms, p99 {result['api_ms']['p99']:.1f} ms, max {result['api_ms']['max']:.1f} ms")
    print(f"to the `requested` webhook at the receiver: p50 {result['to_webhook_ms']['p50']:.1f} ms,"
          f" p99 {result['to_webhook_ms']['p99']:.1f} ms, max {result['to_webhook_ms']['max']:.1f} ms")
    print(f"saved {save_json('api', result)}")


if __name__ == "__main__":
    main()
