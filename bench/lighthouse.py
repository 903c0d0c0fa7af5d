"""Lighthouse on the officer's home and a checklist, signed in, under mobile emulation.

    .venv/bin/python bench/lighthouse.py
    LIGHTHOUSE_DIR=/tmp/lh .venv/bin/python bench/lighthouse.py   # reuse an install

Lighthouse is the npm package, installed with `npm install --no-save` into a
folder outside the repository (default /tmp/fieldapp-lighthouse), and drives
Debian's Chromium (CHROME_PATH=/usr/bin/chromium). The app is served by
gunicorn on 127.0.0.1 from a temporary database; the script signs in through
the form and hands Lighthouse the session cookie with --extra-headers.
Lighthouse's default is a mobile device (Moto G Power-sized screen, 4x CPU
slowdown, simulated slow 4G), which is what is wanted here.

Targets: performance >= 95, accessibility 100, best practices >= 95. For a
score under target, every audit that cost points is printed with its details.
"""
import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import requests

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.seed import (  # noqa: E402
    CSRF_RE, PASSWORD, REPO, add_account, bench_config, free_port, git_revision, machine, make_bench_app,
    print_machine, save_json, stop_process, wait_until_up,
)

SECRET = "bench-lighthouse-secret"
CHROME_FLAGS = [
    "--headless=new", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
]
PAGES = [("officer's home", "/"), ("checklist: psychosis", "/reference/psychosis")]
TARGETS = {"performance": 95, "accessibility": 100, "best-practices": 95}


def lighthouse_bin(folder, version):
    """The lighthouse CLI, installed into `folder` (outside the repo) on first use."""
    cli = Path(folder) / "node_modules" / ".bin" / "lighthouse"
    if not cli.exists():
        Path(folder).mkdir(parents=True, exist_ok=True)
        print(f"# npm install --no-save lighthouse@{version} into {folder}")
        subprocess.run(["npm", "install", "--no-save", "--no-audit", "--no-fund", "--prefix", str(folder),
                        f"lighthouse@{version}"], check=True, timeout=600)
    return cli


def sign_in(base, username):
    """The session cookie of `username`, signed in through the real form."""
    http = requests.Session()
    token = CSRF_RE.search(http.get(base + "/login", timeout=10).text).group(1)
    r = http.post(base + "/login", data={"username": username, "password": PASSWORD, "csrf_token": token},
                  allow_redirects=False, timeout=30)
    if r.status_code != 302:
        raise RuntimeError(f"sign-in failed: {r.status_code}")
    return http.cookies["session"]


def failed_audits(report, category):
    """Audits in `category` that cost points: (id, title, score, weight, display value, details)."""
    out = []
    for ref in report["categories"][category]["auditRefs"]:
        audit = report["audits"][ref["id"]]
        if audit.get("score") is None or audit["score"] >= 1 or audit.get("scoreDisplayMode") in ("notApplicable", "manual", "informative"):
            continue
        if ref.get("weight", 0) == 0 and category != "performance":
            continue
        items = (audit.get("details") or {}).get("items") or []
        detail = []
        for item in items[:5]:
            node = item.get("node") or {}
            detail.append(node.get("snippet") or node.get("selector") or item.get("url") or item.get("description")
                          or json.dumps(item)[:200])
        out.append({"id": ref["id"], "title": audit["title"], "score": audit["score"], "weight": ref.get("weight", 0),
                    "display": audit.get("displayValue", ""), "details": detail})
    return out


def run_lighthouse(cli, url, cookie, out_json):
    cmd = [
        str(cli), url, "--output=json", f"--output-path={out_json}", "--quiet",
        "--only-categories=performance,accessibility,best-practices",
        f"--chrome-flags={' '.join(CHROME_FLAGS)}",
        f"--extra-headers={json.dumps({'Cookie': f'session={cookie}'})}",
    ]
    env = {**os.environ, "CHROME_PATH": "/usr/bin/chromium"}
    subprocess.run(cmd, check=True, env=env, timeout=300)
    return json.loads(Path(out_json).read_text())


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--lighthouse-dir", default=os.environ.get("LIGHTHOUSE_DIR", "/tmp/fieldapp-lighthouse"),
                   help="where lighthouse is installed (outside the repo)")
    # Lighthouse 13 needs Node 22.19 or newer; Debian 12's Node is 20, so 12 is the newest that runs.
    p.add_argument("--version", default="12", help="lighthouse major version to install (default 12)")
    p.add_argument("--runs", type=int, default=1, help="runs per page; the median performance score is kept")
    return p.parse_args(argv)


def main(args):
    if Path(args.lighthouse_dir).resolve().is_relative_to(REPO):
        sys.exit("install lighthouse outside the repository")
    info = machine()
    print_machine(info)
    cli = lighthouse_bin(args.lighthouse_dir, args.version)
    lh_version = subprocess.run([str(cli), "--version"], capture_output=True, text=True).stdout.strip()
    chromium = subprocess.run(["/usr/bin/chromium", "--version"], capture_output=True, text=True).stdout.strip()
    print(f"# lighthouse {lh_version}; {chromium}")
    folder = tempfile.mkdtemp(prefix="fieldapp-lighthouse-")
    result = {"bench": "lighthouse", "machine": info, "revision": git_revision(), "lighthouse": lh_version,
              "chromium": chromium, "pages": {}}
    server = None
    try:
        app = make_bench_app(bench_config(folder, SECRET_KEY=SECRET))
        from fieldapp.store.db import connect

        db = connect(app.config["DATABASE"])
        add_account(app, db, "ofc.lighthouse", "officer", "Ofc. Lighthouse", unit="1-Adam-7")
        db.close()
        port = free_port()
        base = f"http://127.0.0.1:{port}"
        env = {**os.environ, "FIELDAPP_DATABASE": app.config["DATABASE"], "FIELDAPP_INSTANCE_PATH": app.instance_path,
               "FIELDAPP_SECRET_KEY": SECRET, "FIELDAPP_MFA_REQUIRED_ROLES": "[]"}
        server = subprocess.Popen(
            [str(REPO / ".venv" / "bin" / "gunicorn"), "--workers", "2", "--worker-class", "gthread", "--threads", "4",
             "--bind", f"127.0.0.1:{port}", "--log-level", "warning", "fieldapp:create_app()"],
            cwd=REPO, env=env, start_new_session=True)
        wait_until_up(base)
        cookie = sign_in(base, "ofc.lighthouse")
        for name, path in PAGES:
            reports = []
            for n in range(args.runs):
                out = Path(folder) / f"report-{len(result['pages'])}-{n}.json"
                reports.append(run_lighthouse(cli, base + path, cookie, out))
            reports.sort(key=lambda r: r["categories"]["performance"]["score"] or 0)
            report = reports[len(reports) // 2]
            if report["finalDisplayedUrl"].rstrip("/") != (base + path).rstrip("/"):
                raise RuntimeError(f"{path} ended at {report['finalDisplayedUrl']}: not signed in?")
            scores = {c: round((report["categories"][c]["score"] or 0) * 100) for c in TARGETS}
            page = {"path": path, "scores": scores, "all_performance_scores": [
                round((r["categories"]["performance"]["score"] or 0) * 100) for r in reports]}
            page["metrics"] = {m: report["audits"][m].get("displayValue", "") for m in (
                "first-contentful-paint", "largest-contentful-paint", "total-blocking-time", "cumulative-layout-shift",
                "speed-index") if m in report["audits"]}
            page["failed"] = {c: failed_audits(report, c) for c in TARGETS if scores[c] < 100}
            result["pages"][name] = page
            keep = save_json(f"lighthouse-report-{path.strip('/').replace('/', '-') or 'home'}", report)
            print(f"\n{name} ({path}): " + ", ".join(
                f"{c} {scores[c]} [target {'100' if t == 100 else f'>= {t}'}: {'met' if scores[c] >= t else 'MISSED'}]"
                for c, t in TARGETS.items()))
            print("  " + ", ".join(f"{m} {v}" for m, v in page["metrics"].items()) + f"; full report {keep.relative_to(REPO)}")
            for category, audits in page["failed"].items():
                for a in audits:
                    print(f"  {category}: {a['id']} (score {a['score']}, weight {a['weight']}) {a['title']} {a['display']}")
                    for d in a["details"]:
                        print(f"      {d[:240]}")
    finally:
        if server is not None:
            stop_process(server)
        shutil.rmtree(folder, ignore_errors=True)
    path = save_json("lighthouse", result)
    print(f"figures saved to {path.relative_to(REPO)}")
    return result


if __name__ == "__main__":
    main(parse_args())
