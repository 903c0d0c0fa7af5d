"""Requests: ask, alert, accept, track — from one tap to a resolved scene.

- `forms`: the one check of a new request's input, from the officer's button,
  the dispatch console and the CAD API alike;
- `domain`: the state machine and what the request page shows;
- `escalation`: asking and widening the ask;
- `selection`: who is alerted (owns `alerts`);
- `backup_channel`: a specialist's own backup channel when no phone confirmed;
- `updates`: the requester's pushes and the boards' refreshes;
- `timeline`: the request's history (owns `request_events`);
- `dispatch`: requests from dispatch and CAD; `encounter`: the encounter record
  at resolve; `history`: closed requests written in bulk;
- `pages`, `dispatch_pages`, `home`: the routes (this blueprint's, the "dispatch"
  one's and the "home" one's).

The package, not one module, owns the `cit_requests` table. Three of its
modules write a request's row, each its own part of it: `escalation` creates
it and keeps its escalation steps (`escalation_step`, `next_escalation_at`,
`unanswered`: bookkeeping, not state changes), `domain` makes every state
change through `move()` and clears what a closed request held, and `history`
writes closed requests in bulk (the demo's year). Routing escalation's
bookkeeping through `domain` would move its SQL, not give the row one writer;
no module outside this package writes it.
"""
from flask import Blueprint

from ..geo import human_distance

bp = Blueprint("requests", __name__, url_prefix="/requests")
# The request page writes distances ("1.2 km") in the template.
bp.add_app_template_global(human_distance)



@bp.record_once
def _check_encounter_settings(state):
    encounter.init_app(state.app)


from . import encounter, pages  # noqa: E402,F401  (pages registers the routes on bp)
