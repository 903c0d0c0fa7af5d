"""Coverage: certified, active specialists on the roster for each district and shift, and who is on duty now.

The board shows it too.
"""
import datetime

from flask import current_app

from ..clock import now
from ..duty.status import coverage as on_duty_coverage
from .roster import SHIFTS, district_names, read_roster


def current_shift(hour, starts):
    """The shift in progress at `hour` (0–23), given the hour each shift starts."""
    ordered = sorted(starts.items(), key=lambda pair: pair[1])
    shift = ordered[-1][0]  # before the first start of the day, the last shift (across midnight) is still on
    for name, start in ordered:
        if hour >= start:
            shift = name
    return shift


def roster_coverage(db):
    """Certified, active specialists on the roster for each district and shift, and who is on duty now."""
    ready = [s for s in read_roster(db, last_delivery=False) if s["certified"] and s["active"] and not s["disabled"]]
    on_duty = on_duty_coverage(db)
    on_duty_by_district = dict(on_duty["districts"])
    rows = []
    for name in district_names(db):
        counts = {shift: sum(1 for s in ready if name in s["districts"] and shift in s["shifts"]) for shift in SHIFTS}
        rows.append({"district": name, "roster": counts, "on_duty": on_duty_by_district.get(name, 0)})
    hour = datetime.datetime.fromtimestamp(now()).hour
    return {
        "shifts": SHIFTS,
        "shift_now": current_shift(hour, current_app.config["SHIFT_STARTS"]),
        "starts": current_app.config["SHIFT_STARTS"],
        "rows": rows,
        "gaps": [(r["district"], shift) for r in rows for shift in SHIFTS if r["roster"][shift] == 0],
        "on_duty_total": on_duty["total"],
        "on_duty_no_district": on_duty["total"] - sum(on_duty_by_district.values()),
    }
