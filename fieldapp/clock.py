"""The app's idea of the current time, replaceable in tests.

Escalation deadlines and ages are computed from `now()`, never from
`time.time()` directly, so tests can move time forward without sleeping.
"""
import time

from flask import current_app


def now():
    """Seconds since the epoch, from the app's configured CLOCK."""
    return current_app.config.get("CLOCK", time.time)()
