"""A specialist's own backup channel: an Apprise URL (SMS gateway, ntfy, Pushover, e-mail).

Owns `fallback_channels`. When none of a specialist's devices confirms an
alert within RECEIPT_TIMEOUT_S, the worker sends this channel a short generic
text and the link (requests/fallback.py). The URL often holds a key or a
password, so it is validated by Apprise when saved and only ever shown masked.
"""
import logging

import apprise

from ..clock import now
from ..store.db import one, write_transaction
from ..logs import WORKER as log

MAX_URL = 500


class ChannelRefused(ValueError):
    """A backup channel that cannot be saved; the message says why."""


def validate(url):
    """The URL cleaned, or ChannelRefused when Apprise does not understand it."""
    url = (url or "").strip()
    if not url:
        raise ChannelRefused("Enter the address of your backup channel.")
    if len(url) > MAX_URL or not url.isprintable():
        raise ChannelRefused(f"A backup channel address is one line, under {MAX_URL} characters.")
    if not apprise.Apprise().add(url):
        raise ChannelRefused("That is not a channel address Apprise understands (for example ntfys://…, pover://…, mailto://…).")
    return url


def set_channel(db, user_id, url, set_by):
    """Save (or, with an empty `url`, remove) this user's backup channel; ChannelRefused if invalid."""
    with write_transaction(db):
        if not (url or "").strip():
            db.execute("DELETE FROM fallback_channels WHERE user_id = ?", [user_id])
            return None
        url = validate(url)
        db.execute(
            "INSERT INTO fallback_channels (user_id, url, set_by, set_at) VALUES (?, ?, ?, ?)"
            " ON CONFLICT (user_id) DO UPDATE SET url = excluded.url, set_by = excluded.set_by, set_at = excluded.set_at",
            [user_id, url, set_by, now()],
        )
    return url


def url_of(db, user_id):
    """This user's backup channel URL, or None; for the worker only, never for a page."""
    row = one(db, "SELECT url FROM fallback_channels WHERE user_id = ?", [user_id])
    return row["url"] if row else None


def masked(url):
    """What a page may show of a channel: its kind and a hint of where, never a key."""
    if not url:
        return None
    scheme, _, rest = url.partition("://")
    host = rest.split("@")[-1].split("/")[0].split("?")[0]
    return f"{scheme}://{host[:3]}…" if host else f"{scheme}://…"


def masked_of(db, user_id):
    """This user's backup channel, masked for display, or None."""
    return masked(url_of(db, user_id))


def send(url, title, body):
    """Send one message to one channel; True when it took it. Never raises."""
    sender = apprise.Apprise()
    if not sender.add(url):
        return False
    try:
        ok = bool(sender.notify(title=title, body=body))
    except Exception:  # a backup channel must never take the worker down
        log.exception("personal backup channel failed", extra={"event": "fallback_channel"})
        ok = False
    log.log(logging.INFO if ok else logging.WARNING, "personal backup channel send",
            extra={"event": "fallback_channel", "ok": ok})
    return ok
