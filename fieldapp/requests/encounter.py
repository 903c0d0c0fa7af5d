"""The encounter record a CIT specialist taps in at resolve, and the times computed from the timeline.

What the program's evaluation, state forms and researchers ask of each call:
the highest level of force, where the person was taken, whether an emergency
mental-health evaluation was started, a referral and whether a follow-up is
wanted, optional demographics an agency turns on, and the re-code "not a
mental-health call after all". The scales come from config so an agency can
use its own; each field may be left "not recorded" unless config requires it.
Times on the call are computed from the timeline, never typed.

This module owns the encounter columns of `cit_requests` (m019); the state
machine in `domain` calls `encounter_columns()` when a request is resolved.
"""
from flask import current_app
from werkzeug.exceptions import Conflict

from ..settings import refuse

NOT_RECORDED = "not_recorded"
YES_NO = {"yes": "Yes", "no": "No"}

# Fields config may require (no "not recorded" option); demographics never can be.
REQUIRABLE = ("force_level", "transport", "mh_evaluation", "follow_up")
DEMOGRAPHICS = ("age_band", "veteran")


def init_app(app):
    """Refuse to start on encounter settings that cannot work (their defaults are in fieldapp/settings.py)."""
    trouble = config_problem(app.config)
    if trouble:
        refuse(trouble)


def config_problem(config):
    """What is wrong with the encounter settings, as one sentence, or None: caught at start-up, not at a resolve."""
    for name in ("ENCOUNTER_FORCE_LEVELS", "ENCOUNTER_TRANSPORT", "ENCOUNTER_AGE_BANDS"):
        choices = config[name]
        if not isinstance(choices, dict) or not choices or NOT_RECORDED in choices:
            return f"The setting {name} must be a non-empty mapping of key to label, without {NOT_RECORDED!r}."
    if config["ENCOUNTER_FORCE_USED_FROM"] not in config["ENCOUNTER_FORCE_LEVELS"]:
        return "The setting ENCOUNTER_FORCE_USED_FROM must be one of the keys of ENCOUNTER_FORCE_LEVELS."
    wrong = set(config["ENCOUNTER_REQUIRED"]) - set(REQUIRABLE)
    if wrong:
        return (f"The setting ENCOUNTER_REQUIRED may name only {', '.join(REQUIRABLE)}"
                " (demographics are never required).")
    if set(config["ENCOUNTER_DEMOGRAPHICS"]) - set(DEMOGRAPHICS):
        return f"The setting ENCOUNTER_DEMOGRAPHICS may name only {', '.join(DEMOGRAPHICS)}."
    return None


def encounter_fields(config=None):
    """The encounter form's fields, in order: name -> (label, choices, required)."""
    config = config or current_app.config
    required = set(config["ENCOUNTER_REQUIRED"])
    fields = {
        "force_level": ("Highest level of force", dict(config["ENCOUNTER_FORCE_LEVELS"])),
        "transport": ("Transported to", dict(config["ENCOUNTER_TRANSPORT"])),
        "mh_evaluation": ("Emergency mental-health evaluation started?", YES_NO),
        "follow_up": ("Follow-up wanted?", YES_NO),
    }
    out = {name: (label, choices, name in required) for name, (label, choices) in fields.items()}
    turned_on = set(config["ENCOUNTER_DEMOGRAPHICS"])
    if "age_band" in turned_on:
        out["age_band"] = ("Age band (optional)", dict(config["ENCOUNTER_AGE_BANDS"]), False)
    if "veteran" in turned_on:
        out["veteran"] = ("Veteran (optional)", YES_NO, False)
    return out


def force_used(level, config=None):
    """1 when `level` is at or above the scale's force-used level, 0 below it, None when not recorded."""
    if level is None:
        return None
    levels = list((config or current_app.config)["ENCOUNTER_FORCE_LEVELS"])
    threshold = (config or current_app.config)["ENCOUNTER_FORCE_USED_FROM"]
    return int(levels.index(level) >= levels.index(threshold))


def encounter_columns(form):
    """The encounter columns from the resolve form; Conflict (nothing written) for a value off the lists.

    A field left out of the form, or answered "not recorded", is stored as NULL.
    """
    columns = {}
    for name, (label, choices, required) in encounter_fields().items():
        value = form.get(name) or NOT_RECORDED
        if value == NOT_RECORDED:
            if required:
                raise Conflict(f"Your program requires this at resolve: {label.lower().rstrip('?')}.")
            value = None
        elif value not in choices:
            raise Conflict(f"Choose one of the listed answers for: {label.lower().rstrip('?')}.")
        columns[name] = value
    recode = form.get("not_mental_health") or ""
    if recode not in ("", "1"):
        raise Conflict("Tick the box, or leave it, for 'not a mental-health call after all'.")
    columns["not_mental_health"] = int(recode == "1")
    columns["force_used"] = force_used(columns["force_level"])
    return columns


# The encounter's computed times, as SQL over a request row `r` and its timeline: one place, so the
# report, the exports and the data dictionary agree. From the timeline, not the columns: a
# reassignment overwrites accepted_at, and a request stabilised by the requester has no arrival.
FIRST_ACCEPT_SQL = ("(SELECT MIN(e.at) FROM request_events e WHERE e.request_id = r.id"
                    " AND e.event IN ('accepted', 'assigned'))")
FIRST_ON_SCENE_SQL = "(SELECT MIN(e.at) FROM request_events e WHERE e.request_id = r.id AND e.event = 'on_scene')"
COMPUTED_SQL = (
    f"CASE WHEN r.state = 'resolved' THEN r.closed_at - {FIRST_ON_SCENE_SQL} END AS time_on_scene_s,"
    f" CASE WHEN r.state = 'resolved' THEN r.closed_at - {FIRST_ACCEPT_SQL} END AS cit_time_on_call_s,"
    f" {FIRST_ON_SCENE_SQL} IS NOT NULL AS cit_reached_scene"
)
