"""The backup channel: escalations also go out through Apprise (SMS, email, chat).

Web Push can fail quietly — a phone in a dead zone, an expired subscription.
The agency lists whatever Apprise URLs it uses in APPRISE_URLS; messages carry
no names, notes or addresses, only the request number and what is wrong.
"""
import logging

import apprise
from flask import current_app

from ..ops import health
from ..logs import WORKER as log


def send(title, body):
    """Send to every configured Apprise URL; True when at least one took it."""
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
    health.record_backup_send(ok, title)
    log.log(logging.INFO if ok else logging.WARNING, "backup channel send", extra={
        "event": "backup_channel", "ok": bool(ok), "title": title})
    return bool(ok)
