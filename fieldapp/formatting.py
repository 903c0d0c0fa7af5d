"""Template filters for times and ages, shared by every page."""
import datetime

from .clock import now


def clock(epoch):
    """'03:12:09' in the server's local time, for timelines."""
    return datetime.datetime.fromtimestamp(epoch).strftime("%H:%M:%S") if epoch else ""


def when(epoch):
    """'2026-11-26 03:12' in the server's local time, for logs and lists."""
    return datetime.datetime.fromtimestamp(epoch).strftime("%Y-%m-%d %H:%M") if epoch else ""


def ago(epoch):
    """'4 min' since `epoch`, rounded down to the minute so polls stay cacheable."""
    if not epoch:
        return ""
    minutes = int(max(0, now() - epoch) // 60)
    return "under 1 min" if minutes == 0 else f"{minutes} min"


def init_app(app):
    """Register the filters."""
    app.add_template_filter(clock)
    app.add_template_filter(when)
    app.add_template_filter(ago)
