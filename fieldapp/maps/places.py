"""Turning a point into words and words into a point: the street address or nearest crossing of a point,
and the point of an address, a crossing, a CAD location string or typed coordinates."""
import re

from ..geo import parse_coordinates
from .addresses import words
from .live import current_index

NO_MATCH = "No address matches; type a street and number, or 'lat, lon'"
COORDINATES = re.compile(r"^\s*\(?\s*(-?\d{1,3}(?:\.\d+)?)\s*[,;\s]\s*(-?\d{1,3}(?:\.\d+)?)\s*\)?\s*$")
# How CAD systems write a unit, a crossing and a hundred block.
UNIT = re.compile(r"(?:\b(?:apt|apartment|unit|ste|suite|rm|room|fl|floor|bldg|building|lot|spc|space)\b\.?|#)\s*([\w-]+)\s*$",
                  re.IGNORECASE)
CROSSING = re.compile(r"\s*(?:/|&|@|\band\b|\bat\b)\s*", re.IGNORECASE)
BLOCK = re.compile(r"^\s*(\d+)\s*(?:-?blk|block(?:\s+of)?)\b\.?\s*(.+)$", re.IGNORECASE)
NUMBER_FIRST = re.compile(r"^\s*(\d+[a-z]?(?:-\d+)?)\s+(.+)$", re.IGNORECASE)
NUMBER_LAST = re.compile(r"^\s*(.+?)\s+(\d+[a-z]?(?:-\d+)?)\s*$", re.IGNORECASE)


class LocationNotFound(ValueError):
    """Words that name no point: the message says what to type instead."""


def nearest_address(lat, lon, within_m=50):
    """The address point nearest (lat, lon) within `within_m` metres (a dict with its `label`), or None."""
    index = current_index()
    return index.nearest_address(lat, lon, within_m) if index else None


def search_addresses(text, limit=10):
    """Addresses matching what was typed so far, best first."""
    index = current_index()
    return index.search(text, limit) if index else []


def describe_place(lat, lon):
    """'Mikonkatu 4' when an address is within 50 m, else 'near Mikonkatu and Aleksanterinkatu', else None."""
    index = current_index()
    if index is None or lat is None:
        return None
    address = index.nearest_address(lat, lon, 50)
    if address:
        return address["label"]
    street = index.nearest_street(lat, lon, 150)
    if not street:
        return None
    crossing = index.nearest_crossing(street[0], lat, lon, 600)
    return f"near {street[0]} and {crossing[0]}" if crossing else f"near {street[0]}"


def resolve_location(text):
    """The point `text` names: {'lat', 'lon', 'label', 'matched'}; LocationNotFound when it names none.

    `matched` says how: 'coordinates' ("35.15, -90.05"), 'address' (a street and number, a unit if
    there is one), 'building' (the unit was not found, the building was), 'block' ("1200 BLK MAIN ST",
    a CAD hundred block), or 'intersection' ("MAIN ST / 3RD AVE").
    """
    text = (text or "").strip()
    if not text:
        raise LocationNotFound(NO_MATCH)
    coordinates = COORDINATES.match(text)
    if coordinates:
        try:
            lat, lon, _ = parse_coordinates(*coordinates.groups())
        except ValueError as error:
            raise LocationNotFound(str(error)) from None
        return {"lat": lat, "lon": lon, "label": f"{lat:.5f}, {lon:.5f}", "matched": "coordinates"}
    index = current_index()
    if index is None:
        raise LocationNotFound(NO_MATCH)
    # CAD writes "123 MAIN ST APT 4, SPRINGFIELD": the part after the first comma is the town.
    for candidate in dict.fromkeys([text, text.split(",")[0].strip()]):
        found = _resolve_words(index, candidate)
        if found:
            return found
    raise LocationNotFound(NO_MATCH)


def _point(address, matched):
    return {"lat": address["lat"], "lon": address["lon"], "label": address["label"], "matched": matched}


def _resolve_words(index, text):
    block = BLOCK.match(text)
    if block:
        return _hundred_block(index, int(block.group(1)), block.group(2))
    parts = [p.strip() for p in CROSSING.split(text) if p.strip()]
    if len(parts) == 2:
        crossings = index.crossings_of(parts[0], parts[1])
        if crossings:
            lat, lon = crossings[0]
            return {"lat": lat, "lon": lon, "label": f"{parts[0]} and {parts[1]}", "matched": "intersection"}
    unit = UNIT.search(text)
    building_text = text[:unit.start()].strip(" ,") if unit else text
    number_first = NUMBER_FIRST.match(building_text)
    number_last = NUMBER_LAST.match(building_text)
    if number_first:
        number, street = number_first.groups()
    elif number_last:
        street, number = number_last.groups()
    else:
        return None
    candidates = index.on_street(street, number)
    if not candidates:
        # "12 B" in the index and "12B" typed, or the other way round.
        wanted = "".join(words(number))
        candidates = [a for a in index.on_street(street) if "".join(words(a["housenumber"])) == wanted]
    if not candidates:
        return None
    if unit:
        exact = [a for a in candidates if words(a["unit"]) == words(unit.group(1))]
        if exact:
            return _point(exact[0], "address")
    # The building's own point before any of its units'.
    plain = [a for a in candidates if not a["unit"]] or candidates
    return _point(plain[0], "building" if unit else "address")


def _hundred_block(index, hundred, street):
    """The middle of the addresses numbered `hundred`..`hundred`+99 on `street`."""
    on_block = []
    for address in index.on_street(street):
        digits = re.match(r"\d+", address["housenumber"])
        if digits and hundred <= int(digits.group()) < hundred + 100:
            on_block.append(address)
    if not on_block:
        return None
    lat = sum(a["lat"] for a in on_block) / len(on_block)
    lon = sum(a["lon"] for a in on_block) / len(on_block)
    return {"lat": lat, "lon": lon, "label": f"{hundred} block of {on_block[0]['street']}", "matched": "block"}
