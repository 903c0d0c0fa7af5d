"""Safety: the on-scene check-in timer (issue 30, part 1).

When the CIT officer marks "On scene" a countdown starts; "I'm OK" restarts
it; a heads-up push goes to the officer's phones shortly before the deadline;
a missed deadline turns the request red on the supervisors' board and alarms
the supervisors, the requesting officer, the agency's backup channel and CAD
(webhook `responder.check_in_missed`), again every few minutes until a
supervisor records "Contact made" or the officer checks in late.

- `timer`: the deadlines and every step (owns `check_in_timers`);
- `pages`: the request page's check-in routes (thin).

It stands on requests (the request, its timeline) and delivery (the outbox,
the backup channel); the board reads `missed_check_ins()`.
"""
from flask import Blueprint

bp = Blueprint("safety", __name__, url_prefix="/requests")

from . import pages  # noqa: E402,F401  (the routes register on bp)
