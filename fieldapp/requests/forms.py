"""The one check of a new CIT request's input, from the officer's button, the dispatch console or the CAD API.

Each surface passes what it received and says which it is; back come the
request's clean fields, or RequestRefused with the message to show and the
HTTP status. The limits and the messages are written once, here, so the three
can never disagree. What differs by surface is said here too:

- the place: an officer's device sends its position, or the officer types
  where they are; dispatch gives coordinates, or an address with its district
  (no device stands at the scene, so the district says whom to alert);
- only dispatch has a CAD incident number and a district; only the button sends
  the device's accuracy, its checklist marks and "a different scene";
- a form sends text and checkboxes; the API's JSON must use JSON's types;
- the officer's page answers a malformed value 400 and a missing place 422,
  and a device's own fields (its request id, who tapped, the marks) as a plain
  error rather than on the form; the console and the API answer every refusal 422.
"""
import json
import re

from ..content import get_library
from ..districts import district_named
from ..geo import parse_coordinates

SOURCES = ("officer", "dispatch", "api")
CLIENT_ID_RE = re.compile(r"^[A-Za-z0-9-]{8,64}$")
CAD_INCIDENT_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._:/-]{0,39}$")
MAX_NOTE = 280
MAX_LOCATION_TEXT = 200
MAX_DISTRICT = 100
MAX_OBSERVATIONS = 60
FLAGS = ("weapon", "medical", "juvenile")
CAD_INCIDENT_WANTED = "Give the CAD incident number: up to 40 letters, digits and . _ : / -"
# Each text field, with its limit and what to say when it is longer.
TEXTS = {
    "cad_incident": (40, CAD_INCIDENT_WANTED),
    "location_text": (MAX_LOCATION_TEXT, f"Keep the location under {MAX_LOCATION_TEXT} characters."),
    "note": (MAX_NOTE, f"Keep the note to one line, under {MAX_NOTE} characters."),
    "district": (MAX_DISTRICT, f"Keep the district under {MAX_DISTRICT} characters."),
}


class RequestRefused(ValueError):
    """Input no request can be made from: the message says why, `status` is the HTTP status.

    `on_form` is False for what a device sent that no one typed (the officer's
    page answers it as a plain error, not on the request form).
    """

    def __init__(self, message, status=422, on_form=True):
        super().__init__(message)
        self.status = status
        self.on_form = on_form


def check_new_request(db, data, source, requester_id=None):
    """The clean fields of a new request from `data` (a form or a JSON object), or RequestRefused.

    `source` is "officer" (the request button, tapped by the account
    `requester_id`), "dispatch" (the console's form) or "api" (CAD's JSON).
    The fields are lat, lon, location_text, note and the flags, and also:
    for the officer accuracy, observations, client_id and different_scene; for
    dispatch and the API cad_incident and district; for the console client_id.
    """
    if source not in SOURCES:
        raise ValueError(f"source must be one of {SOURCES}")
    is_form, officer = source != "api", source == "officer"

    def refuse(message, status=400, on_form=True):
        # The console and the API answer every refusal 422, on the form or as a problem.
        return RequestRefused(message, status, on_form) if officer else RequestRefused(message, 422)

    def text(name):
        value = data.get(name)
        if value is None:
            return ""
        if not isinstance(value, str):
            raise refuse(f"{name} must be text.")
        value = value.strip()
        limit, too_long = TEXTS[name]
        if len(value) > limit:
            raise refuse(too_long)
        return value

    fields = {}
    if is_form:
        fields["client_id"] = data.get("client_id") or None
        if fields["client_id"] and not CLIENT_ID_RE.match(fields["client_id"]):
            raise refuse("The request id from this device is malformed.", on_form=False)
    if officer:
        # The page the button was on names who tapped it. On a shared car computer a
        # request queued under one officer must never go out under the next one's name.
        made_by = data.get("requester_id")
        if made_by and made_by != str(requester_id):
            raise refuse("That CIT request was made on this device by another officer, so it was not sent under your"
                         " name.", 403, on_form=False)
    else:
        fields["cad_incident"] = text("cad_incident")
        if not CAD_INCIDENT_RE.match(fields["cad_incident"]):
            raise refuse(CAD_INCIDENT_WANTED)
    fields["location_text"] = text("location_text")
    fields["note"] = text("note")
    if not officer:
        fields["district"] = text("district") or None
        if fields["district"] is not None:
            named = district_named(db, fields["district"])
            if named is None:
                raise refuse(f"There is no district called {fields['district']!r}.")
            fields["district"] = named
    lat = lon = accuracy = None
    if data.get("lat") not in (None, "") or data.get("lon") not in (None, ""):
        if not is_form and not all(_is_number(data.get(name)) for name in ("lat", "lon")):
            raise refuse("Latitude and longitude must be numbers.")
        try:
            # Only the officer's device knows how far to trust its position.
            lat, lon, accuracy = parse_coordinates(data.get("lat"), data.get("lon"),
                                                   data.get("accuracy") if officer else None)
        except ValueError as e:
            raise refuse(str(e)) from None
    elif officer and not fields["location_text"]:
        raise refuse("Your location is not available. Type where you are, then send the request.", 422)
    elif not officer and not (fields["location_text"] and fields["district"]):
        raise refuse("Give the place: coordinates, or the address together with its district.")
    fields.update(lat=lat, lon=lon, **({"accuracy": accuracy} if officer else {}))
    for name in FLAGS:
        fields[name] = bool(data.get(name)) if is_form else data.get(name, False)  # a checkbox is sent or not
        if not isinstance(fields[name], bool):
            raise refuse(f"{name} must be true or false.")
    if officer:
        fields["observations"] = _observations(data.get("observations"), refuse)
        fields["different_scene"] = data.get("different_scene") == "1"
    return fields


def _is_number(value):
    """A JSON number: an int or a float, and not true or false (which Python counts as ints)."""
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _observations(raw, refuse):
    """Turn the device's checklist marks into [{topic, item, sign}] texts; unknown marks are dropped.

    `sign` is "protective" for an item the card marks protective (a reason to
    live, support nearby) and "risk" otherwise, so the specialist can weigh them apart.
    """
    if not raw:
        return []
    try:
        marks = json.loads(raw)
    except ValueError:
        raise refuse("The attached checklist marks are not valid.", on_form=False) from None
    if not isinstance(marks, dict):
        raise refuse("The attached checklist marks are not valid.", on_form=False)
    library = get_library()
    found = []
    for slug, entry in marks.items():
        topic = library.get(slug) if isinstance(slug, str) else None
        ids = entry.get("ids") if isinstance(entry, dict) else entry
        if topic is None or not isinstance(ids, list):
            continue
        for item_id in ids:
            item = topic.item(item_id) if isinstance(item_id, str) else None
            if item:
                sign = "protective" if item.get("protective") else "risk"
                found.append({"topic": topic.title, "item": item["text"], "sign": sign})
    return found[:MAX_OBSERVATIONS]
