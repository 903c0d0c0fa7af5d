"""The coverage forecast: certified specialists per district and shift over the coming days, as in-service lapses.

A specialist stops counting the day after their next in-service is due
(roster.next_inservice_due), exactly as today's coverage counts them, so day 0
of the forecast is today's coverage. A watch is warned about from the first day
it holds fewer than MIN_CIT_PER_SHIFT specialists: a target the program sets,
not a legal standard (see the Coverage page for where "two" comes from).
"""
import datetime

from flask import current_app

from .roster import SHIFTS, district_names, read_roster, today

FORECAST_DAYS = 90


def certified_on(specialist, day):
    """Whether a specialist on the roster still counts as certified on `day` (the 40-hour course, in-service not past due)."""
    return bool(specialist["course_completed_on"]) and specialist["next_due"] is not None and specialist["next_due"] >= day


def coverage_forecast(db, days=FORECAST_DAYS, minimum=None):
    """For each district and shift, certified active specialists on each of the next `days` days (today first).

    Returns {"start", "days", "minimum", "rows": [{district, shift, counts,
    first_below, lapses}]}, where `first_below` is the first day the count
    is under `minimum` (None if never in the window) and `lapses` is
    [(first day not certified, name)] inside the window.
    """
    minimum = int(current_app.config["MIN_CIT_PER_SHIFT"] if minimum is None else minimum)
    start = today()
    dates = [start + datetime.timedelta(days=n) for n in range(days)]
    ready = [s for s in read_roster(db) if s["active"] and not s["disabled"] and s["course_completed_on"]]
    rows = []
    for district in district_names(db):
        for shift in SHIFTS:
            members = [s for s in ready if district in s["districts"] and shift in s["shifts"]]
            counts = [sum(1 for s in members if certified_on(s, day)) for day in dates]
            first_below = next((day for day, n in zip(dates, counts) if n < minimum), None)
            lapses = sorted((s["next_due"] + datetime.timedelta(days=1), s["display_name"] or s["username"])
                            for s in members if certified_on(s, start) and not certified_on(s, dates[-1]))
            rows.append({"district": district, "shift": shift, "counts": counts, "first_below": first_below,
                         "lapses": lapses})
    return {"start": start, "days": days, "minimum": minimum, "rows": rows}


def forecast_warnings(forecast):
    """The watches that drop, or already are, below the minimum: [(date, district, shift, already)], soonest first."""
    start = forecast["start"]
    return sorted((r["first_below"], r["district"], r["shift"], r["first_below"] == start)
                  for r in forecast["rows"] if r["first_below"] is not None)
