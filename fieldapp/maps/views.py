"""The map's routes: the map page with address search, the tiles, and the list a device keeps offline."""
from flask import abort, current_app, request, url_for

from ..geo import parse_coordinates
from ..identity.access import role_required
from ..identity.accounts import AT_WORK
from ..web.htmx import page_or_block
from ..web.assets import asset_url
from . import bp
from .basemap import ATTRIBUTION_HTML
from .live import current_basemap
from .places import describe_place, search_addresses

MAX_QUERY = 100
# The map's own files, kept offline with its tiles.
MAP_ASSETS = ("vendor/leaflet-1.9.4.css", "vendor/leaflet-1.9.4.min.js", "vendor/protomaps-leaflet-5.1.0.min.js",
              "js/map.js")


def tiles_url(basemap):
    """The tile URL template of this basemap; its version is in the path, so each tile is cached for good."""
    return url_for("maps.tile", version=basemap.version, z=0, x=0, y=0).replace("/0/0/0.mvt", "/{z}/{x}/{y}.mvt")


def map_frame(lat=None, lon=None, you=None, zoom=16, label=""):
    """What the `maps/_map.html` partial needs to draw the map at (lat, lon), with the viewer at `you`
    ((lat, lon) or None); None when no map has been imported."""
    basemap = current_basemap()
    if basemap is None:
        return None
    south, west, north, east = basemap.bounds
    return {
        "tiles": tiles_url(basemap), "area": url_for("maps.area"), "attribution": ATTRIBUTION_HTML,
        "south": south, "west": west, "north": north, "east": east,
        # Data zoom z is drawn at display zoom z + 1 (512-pixel tiles); past the last, the last is drawn larger.
        "min_zoom": basemap.header["min_zoom"] + 1, "max_zoom": 19, "max_data_zoom": basemap.header["max_zoom"],
        "lat": lat, "lon": lon, "you": you, "zoom": zoom, "label": label,
    }


def _point_from(text):
    try:
        lat, _, lon = (text or "").partition(",")
        return parse_coordinates(lat.strip(), lon.strip())[:2]
    except ValueError:
        abort(400, description="A point is written as 'lat,lon', e.g. 60.16861,24.94300.")


@bp.route("/")
@role_required(*AT_WORK)
def index():
    """The map of the agency's area: find an address, or see a point (?at=lat,lon) and its street address."""
    query = request.args.get("q", "")
    if len(query) > MAX_QUERY or "\x00" in query:
        abort(400, description=f"An address search is at most {MAX_QUERY} characters.")
    results = search_addresses(query, 10) if query.strip() else []
    lat = lon = None
    if request.args.get("at"):
        lat, lon = _point_from(request.args["at"])
    place = describe_place(lat, lon) if lat is not None else None
    return page_or_block("maps/index.html", "results", query=query, results=results, lat=lat, lon=lon,
                         place=place, frame=map_frame(lat, lon, label=place or ""))


@bp.route("/tiles/<version>/<int:z>/<int:x>/<int:y>.mvt")
@role_required(*AT_WORK)
def tile(version, z, x, y):
    """One vector tile of the live basemap; 404 for another version's tile, 204 where the map has none."""
    basemap = current_basemap()
    if basemap is None or version != basemap.version:
        response = current_app.response_class("This map has been replaced; reload the page.", 404,
                                              mimetype="text/plain")
        response.headers["Cache-Control"] = "no-store"
        return response
    data = basemap.tile(z, x, y)
    response = current_app.response_class(data or b"", 200 if data else 204,
                                          mimetype="application/vnd.mapbox-vector-tile")
    if data:
        # Stored gzipped by tippecanoe: sent as they are, and the browser unzips them.
        response.headers["Content-Encoding"] = "gzip"
    # The version is in the URL: a tile never changes, so the browser and the worker keep it.
    response.headers["Cache-Control"] = "private, max-age=31536000, immutable"
    return response


@bp.route("/area.json")
@role_required(*AT_WORK)
def area():
    """The tiles (lowest zooms first, within MAP_OFFLINE_MB) and files a device keeps to draw the map offline."""
    basemap = current_basemap()
    if basemap is None:
        return {"version": None, "tiles": [], "assets": []}
    budget = float(current_app.config["MAP_OFFLINE_MB"]) * 1024 * 1024
    kept, total = [], 0
    for z, x, y, size in basemap.by_zoom:
        if total + size > budget:
            break
        kept.append([z, x, y])
        total += size
    return {"version": basemap.version, "template": tiles_url(basemap), "tiles": kept, "bytes": total,
            "all": len(kept) == basemap.header["addressed_tiles_count"],
            "assets": [asset_url(name) for name in MAP_ASSETS]}
