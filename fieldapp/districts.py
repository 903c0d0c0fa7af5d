"""Districts: an agency's district polygons (or centre points), and which district a point lies in.

This module owns the `districts` table. Each district has a name, a centre
(lat, lon: the point given, or the polygon's centroid) and, when the agency
gave one, a polygon or multipolygon as GeoJSON text in `geometry`.

`district_at()` is the one answer to "which district is this point in?":
the district whose polygon covers the point; on a border shared by several,
the first in name order (SQLite's binary order), so the answer never depends
on the order of rows or files; outside every polygon, the district with the
nearest centre (ties again by name).

Polygons are parsed and prepared once per process with shapely (GEOS) and
kept until the table changes: triggers on `districts` write a new random
stamp into `districts_revision`, so an import by the command line in another
process, or a hand edit with sqlite3, is seen on the next lookup.
"""
import json
import math
import threading
from pathlib import Path

import click
import shapely
from flask import current_app
from flask.cli import AppGroup
from shapely.errors import GEOSException
from shapely.geometry import shape

from . import events
from .audit import log as audit
from .store.db import connect, one, write_transaction
from .geo import distance_m

MAX_NAME_LENGTH = 80
KINDS = {"Polygon": "polygon", "MultiPolygon": "polygon", "Point": "centre"}


def all_districts(db):
    """Every district, by name."""
    return list(db.query("SELECT * FROM districts ORDER BY name"))


def district_named(db, name):
    """The name of the district called `name`, as the agency wrote it (case does not matter), or None."""
    row = one(db, "SELECT name FROM districts WHERE name = ? COLLATE NOCASE", [name])
    return row["name"] if row else None


def save_centre(db, name, lat, lon):
    """Create or move a district given only by its centre point (the demo's, and a Point feature's)."""
    db.execute(
        "INSERT INTO districts (name, lat, lon, geometry) VALUES (?, ?, ?, NULL)"
        " ON CONFLICT(name) DO UPDATE SET lat = excluded.lat, lon = excluded.lon, geometry = NULL",
        [name, lat, lon],
    )


# ---- Which district a point lies in ----

class DistrictMap:
    """The districts as prepared geometries, for many fast lookups."""

    def __init__(self, rows):
        self.centres = [(r["name"], r["lat"], r["lon"]) for r in rows]
        shaped = [(r["name"], shapely.from_geojson(r["geometry"])) for r in rows if r["geometry"]]
        self.polygon_names = [name for name, _ in shaped]
        self.polygons = [geometry for _, geometry in shaped]
        if self.polygons:
            # Prepared geometries index their edges: "covers" then skips the walk around every ring.
            shapely.prepare(self.polygons)
        self.tree = shapely.STRtree(self.polygons)
        # GEOS builds a prepared polygon's point index on its first use and shapely releases
        # the GIL meanwhile: two threads of one web process must not build it at once.
        self._lock = threading.Lock()

    def at(self, lat, lon):
        """The district (lat, lon) lies in, else the one with the nearest centre; None with no districts."""
        point = shapely.Point(lon, lat)
        # Candidates whose bounding box holds the point, in name order: the first that covers it wins.
        with self._lock:
            for i in sorted(self.tree.query(point)):
                if self.polygons[i].covers(point):
                    return self.polygon_names[i]
        if not self.centres:
            return None
        return min(self.centres, key=lambda c: (distance_m(lat, lon, c[1], c[2]), c[0]))[0]


_cached = {"stamp": None, "map": None}
_cache_lock = threading.Lock()


def district_map(db):
    """This process's DistrictMap, rebuilt only when the districts have changed since it was made."""
    stamp = one(db, "SELECT stamp FROM districts_revision")["stamp"]
    with _cache_lock:
        if _cached["stamp"] != stamp:
            _cached["map"], _cached["stamp"] = DistrictMap(all_districts(db)), stamp
        return _cached["map"]


def district_at(db, lat, lon):
    """The name of the district (lat, lon) lies in, else of the nearest centre; None with no districts."""
    return district_map(db).at(lat, lon)


# ---- Import from GeoJSON ----

class DistrictFileError(ValueError):
    """A district file that cannot be imported; the message is one line saying where and why."""


def _name(feature, number, name_property):
    properties = feature.get("properties") or {}
    if not isinstance(properties, dict):
        raise DistrictFileError(f"feature {number}: its properties are not an object.")
    name = properties.get(name_property)
    if isinstance(name, int) and not isinstance(name, bool):
        name = str(name)  # district numbers are names too
    if not isinstance(name, str) or not name.strip():
        raise DistrictFileError(f"feature {number}: no {name_property!r} property to name the district.")
    name = " ".join(name.split())
    if len(name) > MAX_NAME_LENGTH:
        raise DistrictFileError(f"feature {number}: the name {name[:20]!r}… is longer than {MAX_NAME_LENGTH} characters.")
    if ";" in name:  # the roster keeps a specialist's districts as a ;-separated list
        raise DistrictFileError(f"feature {number} ({name}): a district name may not contain ';'.")
    return name


def _geometry(feature, number, name):
    raw = feature.get("geometry")
    kind = raw.get("type") if isinstance(raw, dict) else None
    if kind not in KINDS:
        raise DistrictFileError(f"feature {number} ({name}): the geometry must be a Polygon, MultiPolygon or Point, not {kind or 'missing'}.")
    try:
        geometry = shape(raw)
    except (ValueError, TypeError, KeyError, IndexError, AttributeError, GEOSException) as e:
        raise DistrictFileError(f"feature {number} ({name}): its coordinates are not a {kind}: {' '.join(str(e).split()) or type(e).__name__}.") from None
    if geometry.is_empty:
        raise DistrictFileError(f"feature {number} ({name}): the {kind} has no coordinates.")
    min_lon, min_lat, max_lon, max_lat = geometry.bounds
    if not all(math.isfinite(v) for v in geometry.bounds) or min_lon < -180 or max_lon > 180 or min_lat < -90 or max_lat > 90:
        raise DistrictFileError(f"feature {number} ({name}): coordinates must be longitude, latitude in degrees (WGS 84), as GeoJSON requires.")
    if not geometry.is_valid:
        raise DistrictFileError(f"feature {number} ({name}): the {kind} is not valid: {shapely.is_valid_reason(geometry)}.")
    return geometry


def read_district_file(text, name_property="name"):
    """Check a GeoJSON FeatureCollection of districts: [{name, lat, lon, geometry}], or DistrictFileError.

    Every feature needs a name and a Polygon, MultiPolygon or Point (the
    district's centre, as before polygons). Names must differ, ignoring case.
    """
    try:
        data = json.loads(text)
    except json.JSONDecodeError as e:
        raise DistrictFileError(f"not valid JSON (line {e.lineno}, column {e.colno}: {e.msg}).") from None
    except RecursionError:
        raise DistrictFileError("not valid GeoJSON: nested too deeply.") from None
    if not isinstance(data, dict) or data.get("type") != "FeatureCollection" or not isinstance(data.get("features"), list):
        raise DistrictFileError("not a GeoJSON FeatureCollection with a list of features.")
    if not data["features"]:
        raise DistrictFileError("the FeatureCollection has no features.")
    districts, seen = [], {}
    for number, feature in enumerate(data["features"], start=1):
        if not isinstance(feature, dict) or feature.get("type") != "Feature":
            raise DistrictFileError(f"feature {number}: not a GeoJSON Feature.")
        name = _name(feature, number, name_property)
        if name.lower() in seen:
            raise DistrictFileError(f"feature {number}: the name {name!r} is also used by feature {seen[name.lower()]}.")
        seen[name.lower()] = number
        geometry = _geometry(feature, number, name)
        centre = geometry if geometry.geom_type == "Point" else geometry.centroid
        districts.append({
            "name": name, "lat": centre.y, "lon": centre.x,
            "geometry": None if geometry.geom_type == "Point" else shapely.to_geojson(geometry),
        })
    return districts


def import_districts(db, districts, *, replace=False, source=""):
    """Create or update `districts` by name in one transaction; with `replace`, remove the others.

    Refuses (DistrictFileError, nothing changed) a name that differs from a
    district's only in case, and removing a district that a specialist or a
    roster record still names. Returns {'added', 'updated', 'removed'} names.
    """
    with write_transaction(db):
        existing = {d["name"] for d in all_districts(db)}
        by_lower = {name.lower(): name for name in existing}
        for d in districts:
            other = by_lower.get(d["name"].lower())
            if other is not None and other != d["name"]:
                raise DistrictFileError(f"{d['name']!r} differs from the existing district {other!r} only in case; use the same spelling.")
        names = {d["name"] for d in districts}
        removed = sorted(existing - names) if replace else []
        # Whoever names districts (the duty page, the roster) answers which names they still use.
        names_in_use = {name for answer in events.emit(events.district_names_in_use, db) for name in answer}
        in_use = sorted(names_in_use & set(removed))
        if in_use:
            raise DistrictFileError(
                f"--replace would remove {', '.join(in_use)}, still chosen on the duty page or named on the roster;"
                " keep it in the file or change those first."
            )
        for d in districts:
            db.execute(
                "INSERT INTO districts (name, lat, lon, geometry) VALUES (?, ?, ?, ?)"
                " ON CONFLICT(name) DO UPDATE SET lat = excluded.lat, lon = excluded.lon, geometry = excluded.geometry",
                [d["name"], d["lat"], d["lon"], d["geometry"]],
            )
        for name in removed:
            db.execute("DELETE FROM districts WHERE name = ?", [name])
        outcome = {"added": sorted(names - existing), "updated": sorted(names & existing), "removed": removed}
        polygons = sum(1 for d in districts if d["geometry"])
        audit.record(
            db, "districts_imported", source,
            f"{len(outcome['added'])} added, {len(outcome['updated'])} updated, {len(removed)} removed;"
            f" {polygons} polygon(s), {len(districts) - polygons} centre(s)",
            actor=(None, "cli"),
        )
    return outcome


# ---- What the coordinator sees ----

def describe(row):
    """A district for listing: name, kind (polygon or centre), centre, vertex count and approximate area."""
    entry = {"name": row["name"], "lat": row["lat"], "lon": row["lon"], "kind": "centre", "points": 1, "area_km2": None}
    if row["geometry"]:
        geometry = shapely.from_geojson(row["geometry"])
        # Degrees to km at the centre's latitude: within about 1% for a district a few tens of km across.
        km_per_deg_lon = 111.320 * math.cos(math.radians(row["lat"]))
        entry.update(kind="polygon", points=shapely.get_num_coordinates(geometry),
                     area_km2=geometry.area * km_per_deg_lon * 110.574)
    return entry


def district_list(db):
    """Every district described for the coordinator's page and `districts list`, by name."""
    return [describe(row) for row in all_districts(db)]


# ---- Commands ----

@click.group("districts", cls=AppGroup)
def districts_cli():
    """The agency's districts: import polygons from GeoJSON, list them."""


@districts_cli.command("import")
@click.argument("path", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--name-property", default="name", show_default=True, help="The feature property that holds the district's name.")
@click.option("--replace", is_flag=True, help="Also remove districts the file does not name (refused while one is in use).")
def districts_import(path, name_property, replace):
    """Create or update districts from a GeoJSON FeatureCollection (WGS 84 longitude, latitude).

    Each feature needs a name and a Polygon or MultiPolygon (or a Point: a
    centre only). Districts are matched by name; all or nothing: on any
    error nothing changes.
    """
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError:
        raise click.ClickException(f"{path}: not UTF-8 text; GeoJSON files are UTF-8.") from None
    except OSError as e:
        raise click.ClickException(f"{path}: {e.strerror}.") from None
    db = connect(current_app.config["DATABASE"])
    try:
        outcome = import_districts(db, read_district_file(text, name_property), replace=replace, source=path.name)
    except DistrictFileError as e:
        raise click.ClickException(f"{path}: {e} Nothing was changed.") from None
    click.echo(f"Districts from {path.name}: {len(outcome['added'])} added, {len(outcome['updated'])} updated,"
               f" {len(outcome['removed'])} removed.")


@districts_cli.command("list")
def districts_list():
    """Print every district: name, kind, vertices, approximate area and centre."""
    rows = district_list(connect(current_app.config["DATABASE"]))
    if not rows:
        click.echo("No districts. Import them with: flask --app fieldapp districts import FILE.geojson")
    for d in rows:
        area = f"{d['area_km2']:.1f} km²" if d["area_km2"] is not None else "-"
        click.echo(f"{d['name']}\t{d['kind']}\t{d['points']} point(s)\t{area}\tcentre {d['lat']:.5f}, {d['lon']:.5f}")


def init_app(app):
    """Register the `districts` commands."""
    app.cli.add_command(districts_cli)
