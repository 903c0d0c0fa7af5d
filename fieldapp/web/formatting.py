"""Template filters for times, ages, durations and shares, shared by every page."""
import datetime

from ..clock import now


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


def ago_days(epoch):
    """'3 days', '5 h' or '12 min' since `epoch`: for things measured in days, like a phone last reached."""
    seconds = max(0, now() - epoch)
    if seconds >= 2 * 86400:
        return f"{int(seconds // 86400)} days"
    if seconds >= 2 * 3600:
        return f"{int(seconds // 3600)} h"
    return ago(epoch)


def duration(seconds):
    """'4 min 24 s' for a number of seconds; '—' for none."""
    if seconds is None:
        return "—"
    seconds = round(seconds)
    return f"{seconds // 60} min {seconds % 60:02d} s" if seconds >= 60 else f"{seconds} s"


def percent(share):
    """'37.5%' for a share of one; '—' for none."""
    return "—" if share is None else f"{share * 100:.1f}%"


def plural(noun, count):
    """`noun` as it reads after `count`: "officer" for 1, "officers" otherwise (every noun we count takes an s)."""
    return noun if count == 1 else f"{noun}s"


def init_app(app):
    """Register the filters."""
    app.add_template_filter(clock)
    app.add_template_filter(when)
    app.add_template_filter(ago)
    app.add_template_filter(ago_days)
    app.add_template_filter(duration)
    app.add_template_filter(percent)
    app.add_template_filter(plural)
