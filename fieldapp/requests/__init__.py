"""Requests: ask, alert, accept, track — from one tap to a resolved scene.

- `forms`: the one check of a new request's input, from the officer's button,
  the dispatch console and the CAD API alike;
- `domain`: the state machine and what the request page shows;
- `escalation`: asking and widening the ask;
- `selection`: who is alerted (owns `alerts`);
- `receipts`: whether the alert reached each phone (owns `alert_receipts`);
- `backup_channel`: a specialist's own backup channel when no phone confirmed;
- `updates`: the requester's pushes and the boards' refreshes;
- `timeline`: the request's history (owns `request_events`);
- `dispatch`: requests from dispatch and CAD; `encounter`: the encounter record
  at resolve; `history`: closed requests written in bulk;
- `pages`, `dispatch_pages`, `home`: the routes (this blueprint's, the "dispatch"
  one's and the "home" one's).

The package, not one module, owns `cit_requests`: escalation.py creates a
request and records its escalation steps, domain.py moves it, history.py
writes closed ones in bulk.
"""
from flask import Blueprint

from ..geo import human_distance

bp = Blueprint("requests", __name__, url_prefix="/requests")
# The request page writes distances ("1.2 km") in the template.
bp.add_app_template_global(human_distance)



@bp.record_once
def _config_defaults(state):
    from .encounter import init_app

    init_app(state.app)


from . import pages  # noqa: E402,F401  (registers the routes on bp)
