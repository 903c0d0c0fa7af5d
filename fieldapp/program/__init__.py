"""The CIT program: the coordinator's roster, coverage by district and shift, and outcome reports.

- `roster`: who volunteered, was trained and covers which districts and shifts,
  and the coordinator's changes to an officer's record (owns the `roster` and
  `inservice_training` tables; the accounts are identity's, through identity/admin.py);
- `roster_csv`: the roster's CSV export and checked import;
- `coverage`: certified specialists per district and shift, and who is on duty;
- `forecast`: the same counts over the next 90 days, as in-service lapses;
- `fidelity`: the share of requests a CIT officer reached;
- `reports`: outcome statistics from requests and their timelines;
- `charts`: the reports' SVG charts;
- `exports`: one row per encounter, export profiles for outside forms, the public summary;
- `data_dictionary`: the published data dictionary of the exports;
- `views`: the pages (this blueprint's routes), thin over the modules above.

Every export of the program's data is recorded in the audit log by the function that makes it.
"""
from flask import Blueprint

bp = Blueprint("program", __name__, url_prefix="/program")


@bp.record_once
def _commands(state):
    state.app.cli.add_command(export_command)


from . import views  # noqa: E402,F401  the routes attach themselves to bp
from .exports import export_command  # noqa: E402
