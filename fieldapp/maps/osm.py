"""Reading an OpenStreetMap extract (.osm.pbf) into the basemap's features and the address index's rows.

One pass with pyosmium (libosmium): node locations are kept in memory so ways
get their geometry, and closed ways and multipolygon relations are assembled
into areas. What is kept, and from which zoom it shows, is decided here, in
the tables below; the tile writer (basemap.py) and the address index
(addresses.py) know nothing of OSM's tags.
"""
import json

import osmium

from .coast import located_runs, sea_features

# Roads by OSM highway=*: the kind our style draws, and the first zoom of the *data* tiles that carry it.
ROAD_KINDS = {
    "motorway": ("major", 10), "motorway_link": ("major", 11), "trunk": ("major", 10), "trunk_link": ("major", 11),
    "primary": ("major", 10), "primary_link": ("major", 11),
    "secondary": ("medium", 10), "secondary_link": ("medium", 12), "tertiary": ("medium", 11),
    "tertiary_link": ("medium", 12),
    "residential": ("minor", 12), "unclassified": ("minor", 12), "living_street": ("minor", 12), "road": ("minor", 12),
    "pedestrian": ("pedestrian", 13), "service": ("service", 14),
    "footway": ("path", 14), "path": ("path", 14), "cycleway": ("path", 14), "steps": ("path", 14),
    "track": ("path", 13), "bridleway": ("path", 14),
}
RAIL_KINDS = {"rail": 11, "light_rail": 12, "subway": 12, "tram": 13}
# Streets a place is described by ("near Main St and 3rd Ave") and CAD locations are matched to.
NAMED_STREET_KINDS = {"major", "medium", "minor", "pedestrian", "service"}
PLACE_ZOOMS = {"city": 10, "town": 10, "suburb": 11, "village": 11, "quarter": 13, "neighbourhood": 13, "hamlet": 13}
LANDUSE_KINDS = {
    ("leisure", "park"): "park", ("leisure", "garden"): "park", ("leisure", "playground"): "park",
    ("leisure", "recreation_ground"): "park", ("landuse", "grass"): "park", ("landuse", "recreation_ground"): "park",
    ("landuse", "village_green"): "park", ("natural", "grassland"): "park", ("natural", "scrub"): "park",
    ("landuse", "forest"): "wood", ("natural", "wood"): "wood",
    ("landuse", "residential"): "residential", ("landuse", "commercial"): "commercial",
    ("landuse", "retail"): "commercial", ("landuse", "industrial"): "industrial", ("landuse", "railway"): "industrial",
    ("landuse", "cemetery"): "cemetery", ("amenity", "grave_yard"): "cemetery",
    ("amenity", "hospital"): "hospital", ("amenity", "school"): "school", ("amenity", "college"): "school",
    ("amenity", "university"): "school", ("leisure", "pitch"): "pitch", ("leisure", "sports_centre"): "pitch",
}
WATER_AREAS = {("natural", "water"), ("waterway", "riverbank"), ("landuse", "reservoir"), ("landuse", "basin")}
WATERWAY_LINES = {"river": 10, "canal": 10, "stream": 13, "ditch": 14, "drain": 14}
BUILDING_ZOOM = 14
ADDRESS_LABEL_ZOOM = 15
# A street's points go to the index in pieces of this many, each with its own box.
STREET_PIECE = 8


class ExtractSummary:
    """What one pass found: counts for the import's report, and the extract's bounds."""

    def __init__(self):
        self.features = 0
        self.addresses = 0
        self.roads = 0
        self.coastline = []
        self.sea = 0
        self.bounds = None


def address_of(tags):
    """The address fields of an OSM object's tags, or None when it has no house number and street."""
    number = tags.get("addr:housenumber")
    street = tags.get("addr:street") or tags.get("addr:place")
    if not number or not street:
        return None
    return {
        "housenumber": number.strip(), "street": street.strip(),
        "unit": (tags.get("addr:unit") or tags.get("addr:flats") or tags.get("addr:door") or "").strip(),
        "city": (tags.get("addr:city") or "").strip(), "postcode": (tags.get("addr:postcode") or "").strip(),
    }


# The tags anything here reads: objects without any of them are never handed to Python (a county has
# millions of untagged nodes; their locations are still kept for the ways).
USED_KEYS = ("addr:housenumber", "highway", "railway", "waterway", "natural", "building", "landuse", "leisure",
             "amenity", "place")


def _feature(layer, minzoom, properties, geometry):
    """One GeoJSON line; `geometry` is already JSON (from osmium), so it is joined in, not parsed again."""
    # tippecanoe reads the layer and the first zoom from each feature's own "tippecanoe" member.
    return (f'{{"type":"Feature","tippecanoe":{{"layer":"{layer}","minzoom":{minzoom}}},'
            f'"properties":{json.dumps(properties, separators=(",", ":"))},"geometry":{geometry}}}')


def _landuse_kind(tags):
    for key in ("leisure", "landuse", "natural", "amenity"):
        kind = LANDUSE_KINDS.get((key, tags.get(key)))
        if kind:
            return kind
    return None


def _is_water(tags):
    return ("natural", tags.get("natural")) in WATER_AREAS or ("waterway", tags.get("waterway")) in WATER_AREAS \
        or ("landuse", tags.get("landuse")) in WATER_AREAS


def read_extract(path, features, index):
    """Read the extract at `path`: basemap features go to `features` (one GeoJSON per line), addresses and
    streets to `index` (an addresses.IndexBuilder). Returns an ExtractSummary; RuntimeError on a bad file."""
    json_of = osmium.geom.GeoJSONFactory()
    summary = ExtractSummary()
    reader = (osmium.FileProcessor(str(path)).with_locations()
              .with_areas(osmium.filter.KeyFilter(*USED_KEYS)).with_filter(osmium.filter.KeyFilter(*USED_KEYS)))
    box = reader.header.box()
    if box.valid():
        summary.bounds = (box.bottom_left.lat, box.bottom_left.lon, box.top_right.lat, box.top_right.lon)

    def write(layer, minzoom, properties, geometry):
        features.write(_feature(layer, minzoom, properties, geometry) + "\n")
        summary.features += 1

    for obj in reader:
        tags = {tag.k: tag.v for tag in obj.tags}  # one copy: a Python dict answers far quicker than osmium's
        try:
            if obj.is_node():
                _node(obj, tags, write, index, summary)
            elif obj.is_way():
                _way(obj, tags, write, index, summary, json_of)
            elif obj.is_area():
                _area(obj, tags, write, index, summary, json_of)
        except (osmium.InvalidLocationError, RuntimeError, ZeroDivisionError):
            # A way or area cut by the extract's edge has nodes it cannot place: it is left out.
            continue
    summary.sea = sea_features(summary.coastline, summary.bounds, write)
    return summary


def _node(node, tags, write, index, summary):
    location = node.location
    if not location.valid():
        return
    address = address_of(tags)
    if address:
        index.add_address(address, location.lat, location.lon)
        summary.addresses += 1
        write("addresses", ADDRESS_LABEL_ZOOM, {"n": address["housenumber"]}, _point(location.lon, location.lat))
    place = tags.get("place")
    if place in PLACE_ZOOMS and tags.get("name"):
        write("places", PLACE_ZOOMS[place], {"kind": place, "name": tags["name"]}, _point(location.lon, location.lat))


def _way(way, tags, write, index, summary, json_of):
    highway = tags.get("highway")
    if highway in ROAD_KINDS and tags.get("area") != "yes":
        kind, minzoom = ROAD_KINDS[highway]
        name = tags.get("name", "")
        properties = {"kind": kind}
        if name:
            properties["name"] = name
        if tags.get("ref"):
            properties["ref"] = tags["ref"]
        write("roads", minzoom, properties, json_of.create_linestring(way))
        summary.roads += 1
        if name and kind in NAMED_STREET_KINDS:
            points = [(n.lat, n.lon) for n in way.nodes]
            for start in range(0, max(len(points) - 1, 1), STREET_PIECE - 1):
                index.add_street_piece(name, points[start:start + STREET_PIECE])
            for node, (lat, lon) in zip(way.nodes, points):
                index.add_street_node(node.ref, name, lat, lon)
        return
    if tags.get("railway") in RAIL_KINDS and tags.get("tunnel") in (None, "no"):
        write("roads", RAIL_KINDS[tags["railway"]], {"kind": "rail"}, json_of.create_linestring(way))
        return
    if tags.get("waterway") in WATERWAY_LINES:
        write("water", WATERWAY_LINES[tags["waterway"]], {"kind": "waterway"}, json_of.create_linestring(way))
        return
    if tags.get("natural") == "coastline":
        summary.coastline.extend(located_runs(way))


def _point(lon, lat):
    return f'{{"type":"Point","coordinates":[{lon},{lat}]}}'


def _area(area, tags, write, index, summary, json_of):
    address = address_of(tags)
    is_building = tags.get("building", "no") != "no"
    landuse = _landuse_kind(tags)
    water = _is_water(tags)
    if not (address or is_building or landuse or water):
        return
    geometry = json_of.create_multipolygon(area)
    if address:
        # An addressed building's point: the middle of its outline's corners (inside any building that is not
        # strongly L- or U-shaped, and never far from it); a tenth of the cost of a true point on its surface.
        ring = next(iter(area.outer_rings()))
        corners = [(n.lat, n.lon) for n in ring][:-1] or [(n.lat, n.lon) for n in ring]
        lat = sum(c[0] for c in corners) / len(corners)
        lon = sum(c[1] for c in corners) / len(corners)
        index.add_address(address, lat, lon)
        summary.addresses += 1
        write("addresses", ADDRESS_LABEL_ZOOM, {"n": address["housenumber"]}, _point(lon, lat))
    if is_building:
        write("buildings", BUILDING_ZOOM, {}, geometry)
    elif water:
        write("water", 10, {"kind": "water"}, geometry)
    elif landuse:
        write("landuse", 10, {"kind": landuse}, geometry)
