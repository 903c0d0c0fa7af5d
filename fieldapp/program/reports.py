"""Outcome statistics: whether the program works, from requests and their timelines.

Figures per district or per month: requests, times to the first accept and to
on scene (median and 90th percentile), dispositions, diversion and arrest.
"""
import datetime
import statistics
from collections import Counter

from flask import current_app

from ..audit import log as audit
from ..requests.domain import DISPOSITIONS, OPEN_STATES
from ..districts import all_districts, district_at
from .roster import parse_day, today

# Diverted to crisis services, as the program counts it (emergency evaluation is reported on its own).
DIVERTED = ("resolved_on_scene", "voluntary_transport", "mobile_crisis_referral")
NO_COORDINATES = "No coordinates"
NO_DISTRICTS = "No districts set up"
MAX_REPORT_DAYS = 3660


def _local_midnight(day):
    return datetime.datetime.combine(day, datetime.time.min).timestamp()


def request_facts(db, start_day, end_day):
    """Each request created from `start_day` to `end_day` inclusive (local time), with first accept and arrival."""
    return list(
        db.query(
            "SELECT r.id, r.created_at, r.lat, r.lon, r.state, r.unanswered, r.disposition,"
            " r.weapon, r.medical, r.juvenile, r.force_used, r.officer_injured, r.person_injured, r.cad_incident,"
            " r.force_level, r.transport, r.mh_evaluation, r.follow_up, r.not_mental_health,"
            # From the timeline, not the columns: a reassignment overwrites accepted_at.
            " (SELECT MIN(e.at) FROM request_events e WHERE e.request_id = r.id AND e.event IN ('accepted', 'assigned'))"
            " AS first_accept_at,"
            " (SELECT MIN(e.at) FROM request_events e WHERE e.request_id = r.id AND e.event = 'on_scene') AS on_scene_at"
            # Drills run the whole loop but are never counted in the program's figures.
            " FROM cit_requests r WHERE r.created_at >= ? AND r.created_at < ? AND r.drill = 0 ORDER BY r.created_at",
            [_local_midnight(start_day), _local_midnight(end_day + datetime.timedelta(days=1))],
        )
    )


def district_of(db, lat, lon):
    """The district (lat, lon) lies in (see districts.district_at); NO_COORDINATES for a typed location."""
    if lat is None or lon is None:
        return NO_COORDINATES
    return district_at(db, lat, lon) or NO_DISTRICTS


def month_of(epoch):
    """'2026-04' for a timestamp, in the server's local time."""
    return datetime.datetime.fromtimestamp(epoch).strftime("%Y-%m")


def p90(values):
    """The 90th percentile, interpolating between closest ranks (Excel's PERCENTILE.INC); None when empty."""
    if not values:
        return None
    if len(values) == 1:
        return float(values[0])
    return statistics.quantiles(values, n=10, method="inclusive")[-1]


def _share(part, whole):
    return None if not whole else part / whole


def summarise(facts):
    """The report's figures for a set of requests."""
    accept = [f["first_accept_at"] - f["created_at"] for f in facts if f["first_accept_at"] is not None]
    on_scene = [f["on_scene_at"] - f["created_at"] for f in facts if f["on_scene_at"] is not None]
    resolved = [f for f in facts if f["state"] == "resolved" and f["disposition"]]
    dispositions = Counter(f["disposition"] for f in resolved)
    diverted = sum(dispositions[d] for d in DIVERTED)
    return {
        "requests": len(facts),
        "open": sum(1 for f in facts if f["state"] in OPEN_STATES),
        "resolved": len(resolved),
        "cancelled": sum(1 for f in facts if f["state"] == "cancelled"),
        "unanswered": sum(1 for f in facts if f["unanswered"]),
        "accepted": len(accept),
        "accept_median": statistics.median(accept) if accept else None,
        "accept_p90": p90(accept),
        "on_scene": len(on_scene),
        "on_scene_median": statistics.median(on_scene) if on_scene else None,
        "on_scene_p90": p90(on_scene),
        "dispositions": {key: dispositions[key] for key in DISPOSITIONS},
        "diverted": diverted,
        "diverted_share": _share(diverted, len(resolved)),
        "arrested": dispositions["arrest"],
        "arrested_share": _share(dispositions["arrest"], len(resolved)),
        "weapon": sum(1 for f in facts if f["weapon"]),
        "medical": sum(1 for f in facts if f["medical"]),
        "juvenile": sum(1 for f in facts if f["juvenile"]),
        "from_dispatch": sum(1 for f in facts if f["cad_incident"]),
        "force_used": sum(1 for f in facts if f["force_used"]),
        "officer_injured": sum(1 for f in facts if f["officer_injured"]),
        "person_injured": sum(1 for f in facts if f["person_injured"]),
        **encounter_figures(facts),
    }


def encounter_figures(facts):
    """The encounter record's counts: force levels and transport over resolved mental-health calls.

    A request the specialist re-coded "not a mental-health call after all" is
    counted apart, in `not_mental_health`, and left out of the force and
    transport counts; "not recorded" is a bucket of its own.
    """
    config = current_app.config
    resolved = [f for f in facts if f["state"] == "resolved"]
    mental_health = [f for f in resolved if not f["not_mental_health"]]
    return {
        "not_mental_health": len(resolved) - len(mental_health),
        "force_levels": _tally(mental_health, "force_level", config["ENCOUNTER_FORCE_LEVELS"]),
        "transports": _tally(mental_health, "transport", config["ENCOUNTER_TRANSPORT"]),
        "mh_evaluation": sum(1 for f in mental_health if f["mh_evaluation"] == "yes"),
        "follow_up": sum(1 for f in mental_health if f["follow_up"] == "yes"),
    }


def _tally(facts, column, choices):
    counts = Counter(f[column] or "not_recorded" for f in facts)
    return {key: counts[key] for key in [*choices, "not_recorded"]}


def _months(start_day, end_day):
    months, year, month = [], start_day.year, start_day.month
    while (year, month) <= (end_day.year, end_day.month):
        months.append(f"{year:04d}-{month:02d}")
        year, month = (year + 1, 1) if month == 12 else (year, month + 1)
    return months


def report(db, start_day, end_day, by):
    """Figures per district or per month over the range, every group listed even when empty, and the total."""
    facts = request_facts(db, start_day, end_day)
    if by == "month":
        labels = _months(start_day, end_day)
        key = lambda f: month_of(f["created_at"])  # noqa: E731
    else:
        centres = all_districts(db)
        labels = [d["name"] for d in centres]
        key = lambda f: district_of(db, f["lat"], f["lon"])  # noqa: E731
    groups = {label: [] for label in labels}
    for f in facts:
        groups.setdefault(key(f), []).append(f)
    return {"rows": [(label, summarise(members)) for label, members in groups.items()], "total": summarise(facts)}


REPORT_CSV_COLUMNS = (
    ["requests", "open", "resolved", "cancelled", "unanswered", "accepted", "median_accept_s", "p90_accept_s",
     "on_scene", "median_on_scene_s", "p90_on_scene_s"]
    + [f"disposition_{key}" for key in DISPOSITIONS]
    + ["diverted", "diverted_pct", "arrested", "arrested_pct", "weapon", "medical", "juvenile",
       "force_used", "officer_injured", "person_injured", "from_dispatch"]
)


def report_csv_columns():
    """The report CSV's columns after the group's label: REPORT_CSV_COLUMNS, then the encounter counts from config."""
    config = current_app.config
    return (
        REPORT_CSV_COLUMNS
        + [f"force_level_{key}" for key in [*config["ENCOUNTER_FORCE_LEVELS"], "not_recorded"]]
        + [f"transport_{key}" for key in [*config["ENCOUNTER_TRANSPORT"], "not_recorded"]]
        + ["mh_evaluation_started", "follow_up_wanted", "not_mental_health"]
    )


def _round(value, places=1):
    return "" if value is None else round(value, places)


def _pct(share):
    return "" if share is None else round(share * 100, 1)


def report_csv_row(label, f):
    """One report row in report_csv_columns() order, after the group's label."""
    return (
        [label, f["requests"], f["open"], f["resolved"], f["cancelled"], f["unanswered"], f["accepted"],
         _round(f["accept_median"]), _round(f["accept_p90"]), f["on_scene"], _round(f["on_scene_median"]),
         _round(f["on_scene_p90"])]
        + [f["dispositions"][key] for key in DISPOSITIONS]
        + [f["diverted"], _pct(f["diverted_share"]), f["arrested"], _pct(f["arrested_share"]),
           f["weapon"], f["medical"], f["juvenile"],
           f["force_used"], f["officer_injured"], f["person_injured"], f["from_dispatch"]]
        + list(f["force_levels"].values()) + list(f["transports"].values())
        + [f["mh_evaluation"], f["follow_up"], f["not_mental_health"]]
    )


def report_csv_rows(data):
    """The report's CSV rows: each group, then the total as "All"."""
    return [report_csv_row(label, f) for label, f in data["rows"]] + [report_csv_row("All", data["total"])]


def export_report(db, start_day, end_day, by):
    """The report's CSV rows for the range, grouped `by`, with the export recorded in the audit log."""
    data = report(db, start_day, end_day, by)
    audit.record(db, "report_exported", f"by {by}", f"{start_day.isoformat()} to {end_day.isoformat()}")
    return report_csv_rows(data)


def report_params(args):
    """The report's range and grouping from query arguments: (start, end, by); ValueError says what is wrong."""
    on = today()
    # By default the last twelve months, this one included.
    year, month = (on.year, on.month - 11) if on.month == 12 else (on.year - 1, on.month + 1)
    start = parse_day(args.get("from")) if args.get("from") else datetime.date(year, month, 1)
    end = parse_day(args.get("to")) if args.get("to") else on
    if start is None or end is None:
        raise ValueError("Give the dates as YYYY-MM-DD, for example 2026-01-31.")
    if end < start:
        raise ValueError("The end date is before the start date.")
    if (end - start).days > MAX_REPORT_DAYS:
        raise ValueError("Choose a range of at most ten years.")
    by = args.get("by") or "district"
    if by not in ("district", "month"):
        raise ValueError("Group the report by district or by month.")
    return start, end, by
