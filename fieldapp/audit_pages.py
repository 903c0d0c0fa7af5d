"""The coordinator's view of the audit log, and its CSV export."""
import csv
import datetime
import io

from flask import Blueprint, Response, render_template

from .audit import entries, record
from .auth import role_required
from .db import get_db

bp = Blueprint("audit", __name__, url_prefix="/audit")


@bp.route("")
@role_required("coordinator")
def index():
    """The newest 500 entries for the coordinator."""
    return render_template("audit/index.html", rows=entries(get_db()))


@bp.route("/export.csv")
@role_required("coordinator")
def export():
    """Every entry as CSV; the export itself is recorded first."""
    db = get_db()
    record(db, "audit_export", "audit log")
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(["id", "at_utc", "actor", "action", "subject", "detail", "ip"])
    for row in reversed(entries(db, limit=1_000_000)):
        at = datetime.datetime.fromtimestamp(row["at"], datetime.timezone.utc).isoformat(timespec="seconds")
        writer.writerow([row["id"], at, row["actor_name"], row["action"], row["subject"], row["detail"], row["ip"]])
    return Response(
        out.getvalue(),
        mimetype="text/csv",
        headers={"Content-Disposition": "attachment; filename=fieldapp-audit.csv"},
    )
