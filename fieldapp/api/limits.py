"""How often one API key may call, and how often one address may present a wrong key.

Each key has its own moving window: API_READ_LIMIT for reads, API_WRITE_LIMIT
for creating and cancelling requests (each new request alerts specialists,
and API requests skip the officer's button limit). Past it, a 429 with
Retry-After, and the coordinators are told once a window. An address that
presents wrong keys is refused with a 429 after API_BAD_KEY_LIMIT of them,
before any key is looked up. The windows live in RATELIMIT_STORAGE_URI
(each process's memory by default, as for the passkey options).
"""
import time

from flask import current_app
from limits import parse, storage, strategies

from ..audit import log as audit
from ..identity import notices
from ..store.db import write_transaction


class ApiLimits:
    """The app's windows: one per key and kind of call, one per address for wrong keys."""

    def __init__(self, app):
        self.windows = strategies.MovingWindowRateLimiter(storage.storage_from_string(app.config["RATELIMIT_STORAGE_URI"]))
        self.told = {}  # (key name, limit) -> until when its coordinators were told

    def take(self, setting, *identity):
        """Count one call against `setting`'s limit for `identity`; None when allowed, else seconds to wait."""
        item = parse(current_app.config[setting])
        if self.windows.hit(item, setting, *identity):
            return None
        return self.wait(item, setting, *identity)

    def over(self, setting, *identity):
        """Seconds to wait when `identity` is already at `setting`'s limit (nothing is counted), else None."""
        item = parse(current_app.config[setting])
        return None if self.windows.test(item, setting, *identity) else self.wait(item, setting, *identity)

    def wait(self, item, *identity):
        reset = self.windows.get_window_stats(item, *identity).reset_time
        return max(1, int(reset - time.time()) + 1)

    def first_refusal(self, name, setting, wait):
        """True the first time a key is refused by `setting`'s limit in a window: the moment to tell someone."""
        t = time.time()
        if self.told.get((name, setting), 0) > t:
            return False
        self.told[(name, setting)] = t + wait
        return True


def api_limits():
    """This app's ApiLimits."""
    return current_app.extensions["api_limits"]


def init_app(app):
    """The API's limits and their windows."""
    app.extensions["api_limits"] = ApiLimits(app)


def tell_of_a_limit(db, key, limit, wait):
    """The first refusal in a window is audited, and coordinators told: a leaked key or a CAD in a loop."""
    if not api_limits().first_refusal(key["name"], limit, wait):
        return
    with write_transaction(db):
        audit.record(db, "api_rate_limited", f"api key {key['name']}", f"over {current_app.config[limit]}",
                     actor=(None, f"api:{key['name']}"))
        notices.tell_coordinators(db, f"The API key {key['name']} went over its limit of"
                                      f" {current_app.config[limit]}: its calls are refused until it slows down."
                                      " Check the integration; revoke the key if it leaked (api-keys revoke).")
