"""The demo's map: central Helsinki from OpenStreetMap (fieldapp/maps/demo/, ODbL), imported by `seed-demo`
so `make run` shows a real map with real addresses and needs no internet."""
from pathlib import Path

from . import files, imports
from .live import current_index
from .places import nearest_address

DEMO_EXTRACT = Path(__file__).parent / "demo" / "helsinki.osm.pbf"
# Finnish addresses put the number after the street: "Mikonkatu 4".
DEMO_ADDRESS_FORMAT = "{street} {housenumber}"


def install_demo_map():
    """Import the demo extract unless a map is already there (an agency's own map is never replaced);
    returns what the map in use is, in a few words."""
    folder = files.map_dir()
    if not (folder / files.BASEMAP).exists():
        imports.import_extract(folder, DEMO_EXTRACT, DEMO_ADDRESS_FORMAT, echo=lambda *_: None)
    index = current_index()
    extract = index.meta.get("extract", "?") if index else "?"
    shown = "central Helsinki, the demo's" if extract == DEMO_EXTRACT.name else extract
    return f"{shown} ({index.count() if index else 0:,} addresses), © OpenStreetMap contributors"


def at_an_address(lat, lon):
    """The nearest real address point to an invented point (within 600 m), so a demo request has a street
    address; the point itself when there is no map or no address near."""
    for within in (60, 200, 600):
        found = nearest_address(lat, lon, within_m=within)
        if found:
            return found["lat"], found["lon"]
    return lat, lon
