"""The backup channel: Apprise (SMS, e-mail, chat) when Web Push may not have reached anyone.

Web Push can fail quietly: a phone in a dead zone, an expired subscription.
There are two backup channels, one idea:

- the agency's: whatever Apprise URLs it lists in APPRISE_URLS, which the
  worker tells when an escalation step passes or every alert of a request
  failed (`send_to_agency`);
- a person's own: one Apprise URL per specialist (SMS gateway, ntfy,
  Pushover, e-mail), set by them or by a coordinator (owns `fallback_channels`).
  When none of a specialist's devices confirms an alert within
  RECEIPT_TIMEOUT_S, requests/backup_channel.py queues a short generic text
  and the link, and the worker sends it here (`send_to_person`). The URL often
  holds a key or a password, so it is validated by Apprise when saved and only
  ever shown masked.

Messages carry no names, notes or addresses, only the request number and what
is wrong. A send never raises: a backup channel must never take the worker down.
"""
import logging

import apprise
from flask import current_app

from ..audit import log as audit
from ..clock import now
from ..identity.accounts import user_by_id
from ..logs import WORKER as log
from ..store.db import connect, one, write_transaction

MAX_URL = 500


# ---- The agency's channel ----

def _record_agency_send(ok, title):
    """Keep one agency backup-channel send and whether it was taken (owns `backup_channel_sends`; /metrics counts them)."""
    db = connect(current_app.config["DATABASE"])
    try:
        db.execute("INSERT INTO backup_channel_sends (at, title, ok) VALUES (?, ?, ?)", [now(), title, int(bool(ok))])
    finally:
        db.close()


def send_to_agency(title, body):
    """Send to every Apprise URL in APPRISE_URLS; True when at least one took it."""
    urls = current_app.config.get("APPRISE_URLS") or []
    if isinstance(urls, str):
        urls = [u for u in urls.split() if u]
    if not urls:
        return False
    sender = apprise.Apprise()
    for url in urls:
        if not sender.add(url):
            current_app.logger.error("APPRISE_URLS has an address Apprise does not understand")
    try:
        ok = sender.notify(title=title, body=body)
    except Exception:  # a backup channel must never take the worker down
        current_app.logger.exception("backup alert failed")
        ok = False
    _record_agency_send(ok, title)
    log.log(logging.INFO if ok else logging.WARNING, "backup channel send", extra={
        "event": "backup_channel", "ok": bool(ok), "title": title})
    return bool(ok)


# ---- A person's own channel ----

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


def change_channel(db, user_id, url, set_by):
    """Set or remove a person's backup channel, as the Duty page or a coordinator does, and audit it.

    Returns the URL saved, or None when it was removed; ChannelRefused if invalid.
    """
    url = set_channel(db, user_id, url, set_by)
    with write_transaction(db):
        # The URL is a secret: the audit log says only that it changed, and what kind it is.
        audit.record(db, "backup_channel_set" if url else "backup_channel_removed", user_by_id(db, user_id)["username"],
                     masked(url) or "")
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


def send_to_person(url, title, body):
    """Send one message to one person's channel; True when it took it. Never raises."""
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
