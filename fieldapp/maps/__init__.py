"""The maps area: the agency's own basemap and address index, and what other areas ask of them.

Owns the files in MAP_DIR (instance/map by default), never tables in fieldapp.db:
  basemap.pmtiles  vector tiles of roads, buildings, water, land use, place names and
                   house numbers, written by `map import` (basemap.py, osm.py);
  addresses.db     the address index: address points, named streets and their
                   crossings, with an R*Tree and FTS5 (addresses.py), from `map import`
                   and `map import-addresses` (address_files.py).
Both are built beside the live file and swapped in atomically (files.py, imports.py).

Other areas call: nearest_address, describe_place, search_addresses, resolve_location
(places.py); navigate_link and eta_estimate (navigation.py); map_frame for a page's map
(views.py); scene_view, all of these for one scene (scene.py). The routes serve the map page, the tiles and the offline list (views.py);
the commands are `map ...` and `addresses ...` (cli.py). docs/MAPS.md tells an agency how.
"""
from flask import Blueprint

bp = Blueprint("maps", __name__, url_prefix="/map")

from . import cli, views  # noqa: E402  (views: the routes register on bp)
from .navigation import eta_estimate, navigate_link  # noqa: E402
from .places import LocationNotFound, describe_place, nearest_address, resolve_location, search_addresses  # noqa: E402
from .scene import scene_view  # noqa: E402
from .views import map_frame  # noqa: E402

__all__ = ["bp", "init_app", "nearest_address", "describe_place", "search_addresses", "resolve_location",
           "LocationNotFound", "navigate_link", "eta_estimate", "map_frame", "scene_view"]


def init_app(app):
    """The `map` and `addresses` commands (the maps' settings are in fieldapp/settings.py)."""
    app.cli.add_command(cli.map_group)
    app.cli.add_command(cli.addresses_group)
