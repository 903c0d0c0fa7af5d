"""The program's fidelity figure: of the closed requests, the share a CIT officer reached.

A CIT officer reached the scene when the request's timeline holds an
`on_scene` event. Only closed requests (resolved or cancelled) count: an open
one may still be reached. The figure is given by district, by shift (the shift
the request was made in, from SHIFT_STARTS) and by month. It is counted in one
pass over the database cursor, so memory stays the size of the groups, not
of the requests.
"""
import datetime
from collections import Counter

from flask import current_app

from ..audit import log as audit
from ..districts import all_districts
from .coverage import current_shift
# The report's own helpers, so both count the same days and months.
from .reports import _local_midnight, _months, district_of
from .roster import SHIFTS

CLOSED = ("resolved", "cancelled")
FIDELITY_CSV_COLUMNS = ["grouping", "group", "closed_requests", "cit_on_scene", "cit_on_scene_pct"]


def reached_rows(db, start_day, end_day):
    """Closed requests made from `start_day` to `end_day` inclusive: (created_at, lat, lon, reached), one at a time."""
    # A plain cursor, not db.query: tuples, read as they come, no dict per row.
    return db.execute(
        "SELECT r.created_at, r.lat, r.lon,"
        " EXISTS (SELECT 1 FROM request_events e WHERE e.request_id = r.id AND e.event = 'on_scene') AS reached"
        # Drills (issue 13) are training: never counted in the program's figures.
        f" FROM cit_requests r WHERE r.created_at >= ? AND r.created_at < ? AND r.drill = 0"
        f" AND r.state IN ({', '.join('?' * len(CLOSED))})",
        [_local_midnight(start_day), _local_midnight(end_day + datetime.timedelta(days=1)), *CLOSED],
    )


def _group(labels, closed, reached):
    return [(label, closed[label], reached[label], reached[label] / closed[label] if closed[label] else None)
            for label in labels]


def fidelity(db, start_day, end_day):
    """The share of closed requests a CIT officer reached, by district, shift, month, and district × shift.

    Each breakdown is [(label, closed, reached, share)] with every label listed
    even when empty (share None); `total` is one such tuple.
    """
    centres = all_districts(db)
    starts = current_app.config["SHIFT_STARTS"]
    shift_of_hour = [current_shift(hour, starts) for hour in range(24)]
    closed, reached = Counter(), Counter()
    districts = [d["name"] for d in centres]
    for created_at, lat, lon, was_reached in reached_rows(db, start_day, end_day):
        moment = datetime.datetime.fromtimestamp(created_at)
        district = district_of(db, lat, lon)
        shift = shift_of_hour[moment.hour]
        if district not in districts:
            districts.append(district)  # "No coordinates" comes after the real districts
        keys = (("district", district), ("shift", shift), ("month", f"{moment.year:04d}-{moment.month:02d}"),
                ("district_shift", (district, shift)), ("total", "All"))
        for key in keys:
            closed[key] += 1
        if was_reached:
            for key in keys:
                reached[key] += 1

    def breakdown(kind, labels):
        return _group(labels, {label: closed[(kind, label)] for label in labels},
                      {label: reached[(kind, label)] for label in labels})

    return {
        "by_district": breakdown("district", districts),
        "by_shift": breakdown("shift", list(SHIFTS)),
        "by_month": breakdown("month", _months(start_day, end_day)),
        "by_district_shift": breakdown("district_shift", [(d, s) for d in districts for s in SHIFTS]),
        "total": breakdown("total", ["All"])[0],
    }


def export_fidelity(db, start_day, end_day):
    """The fidelity figures' CSV rows for the range, with the export recorded in the audit log."""
    figures = fidelity(db, start_day, end_day)
    audit.record(db, "report_exported", "fidelity", f"{start_day.isoformat()} to {end_day.isoformat()}")
    return fidelity_csv_rows(figures)


def fidelity_csv_rows(figures):
    """The fidelity figures as CSV rows in FIDELITY_CSV_COLUMNS order, one breakdown after another."""
    for grouping, key in (("district", "by_district"), ("shift", "by_shift"), ("month", "by_month"),
                          ("district_shift", "by_district_shift")):
        for label, closed, reached, share in figures[key]:
            name = " · ".join(label) if isinstance(label, tuple) else label
            yield [grouping, name, closed, reached, "" if share is None else round(share * 100, 1)]
    label, closed, reached, share = figures["total"]
    yield ["all", label, closed, reached, "" if share is None else round(share * 100, 1)]
