"""Events: a writer says what happened, and whoever cares listens, so no writer imports its listeners.

Flask's own signals are built the same way, on blinker. A writer sends inside
its transaction, so a listener's writes (a webhook delivery, an audit line)
commit or roll back with the change that caused them. Listeners are plain
module-level functions connected once in `create_app` (connecting the same
function again is a no-op, so several apps in one process never double up).

| event | sent by | with | heard by |
|---|---|---|---|
| `request_moved` | requests/timeline.py, for every line a request's timeline gains | `request_id`, `event`, `actor_id`, `actor_name`, `detail` | the audit log (a person's actions), webhooks (state changes), safety's check-in timer (starts on scene, stops at stabilised, resolved, cancelled) |
| `account_disabled` | identity/accounts.py | `user_id` | duty (off duty, devices forgotten) |
| `district_names_in_use` | districts.py, before removing districts | — | duty (districts chosen), the roster (districts named); each answers names |
"""
from blinker import Namespace

_events = Namespace()

request_moved = _events.signal("request-moved", doc="A request's timeline gained a line (a state change or a note of what happened).")
account_disabled = _events.signal("account-disabled", doc="An account was disabled: it must stop receiving alerts.")
district_names_in_use = _events.signal("district-names-in-use", doc="Which district names are still in use? Each listener answers an iterable of names.")


def emit(signal, db, /, **data):
    """Tell `signal`'s listeners, inside the caller's transaction on `db`; returns their answers."""
    return [answer for _, answer in signal.send(db, **data)]
