"""The coordinator's view of the audit log, and its CSV export."""
import datetime

from flask import Blueprint, render_template

from ..identity.access import role_required
from ..store.db import get_db
from ..web.downloads import csv_response
from ..audit.log import entries, export_entries

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
    rows = (
        [r["id"], datetime.datetime.fromtimestamp(r["at"], datetime.timezone.utc).isoformat(timespec="seconds"),
         r["actor_name"], r["action"], r["subject"], r["detail"], r["ip"]]
        for r in export_entries(get_db())
    )
    return csv_response("fieldapp-audit.csv", ["id", "at_utc", "actor", "action", "subject", "detail", "ip"], rows)
