"""Importing a map: an OpenStreetMap extract into the basemap and the address index, or an agency's address file
into the address index. Each builds beside the live files, checks what it built, then swaps it in."""
import os
import tempfile
import time
from pathlib import Path

from . import address_files, addresses, basemap, files, osm
from .files import MapImportError


def _check_readable(path, what):
    path = Path(path)
    if not path.is_file():
        raise MapImportError(f"{path} is not a file.")
    if path.stat().st_size == 0:
        raise MapImportError(f"{path} is empty: it is not {what}. The map in use is unchanged.")
    return path


def _live_format(live_index):
    if live_index.exists():
        try:
            return addresses.AddressIndex(live_index).address_format
        except Exception:
            return None
    return None


def import_extract(folder, extract, address_format=None, echo=print):
    """Build the basemap and the address index from an OSM extract, and swap them in; returns a summary dict."""
    extract = _check_readable(extract, "an OpenStreetMap extract (.osm.pbf)")
    started = time.monotonic()
    with files.one_import_at_a_time(folder):
        live_tiles, live_index = folder / files.BASEMAP, folder / files.ADDRESSES
        new_tiles, new_index = files.building_path(live_tiles), files.building_path(live_index)
        for stale in (new_tiles, new_index):
            files.discard(stale)
        address_format = address_format or _live_format(live_index) or addresses.DEFAULT_ADDRESS_FORMAT
        builder, tiles = addresses.IndexBuilder(new_index), None
        try:
            with tempfile.TemporaryDirectory(prefix=".build-", dir=folder) as work:
                work = Path(work)
                features_path = work / "features.geojsonl"
                echo(f"Reading {extract.name}…")
                try:
                    with open(features_path, "w") as features:
                        summary = osm.read_extract(extract, features, builder)
                except RuntimeError as error:
                    raise MapImportError(f"{extract} is not a readable OpenStreetMap extract ({error}). "
                                         "The map in use is unchanged.") from None
                if summary.roads == 0 and summary.addresses == 0:
                    raise MapImportError(f"{extract} has no roads and no addresses: nothing to draw or look up. "
                                         "The map in use is unchanged.")
                echo(f"Found {summary.roads:,} roads, {summary.addresses:,} addresses, {summary.features:,} features. "
                     "Writing tiles and the address index…")
                tiles = basemap.start_tiles(features_path, new_tiles, work, name=extract.name.split(".")[0])
                if live_index.exists():
                    builder.keep_from(live_index, streets=False, except_source=addresses.OSM_SOURCE)
                builder.drop_osm_duplicates()
                counts = builder.finish({"address_format": address_format, "extract": extract.name})
                builder = None
                try:
                    basemap.finish_tiles(tiles, work)
                    tiles = None
                    basemap.check_basemap(new_tiles)
                    addresses.check_index(new_index)
                except ValueError as error:
                    raise MapImportError(f"{error}. The map in use is unchanged.") from None
            files.swap_in(new_tiles, live_tiles)
            files.swap_in(new_index, live_index)
        except BaseException:
            if tiles is not None:
                tiles.kill()
                tiles.wait()
            if builder is not None:
                builder.abandon()
            files.discard(new_tiles)
            files.discard(new_index)
            raise
    return dict(counts, seconds=time.monotonic() - started, roads=summary.roads, tiles_bytes=live_tiles.stat().st_size,
                index_bytes=live_index.stat().st_size)


def import_address_file(folder, path, kind=None, echo=print):
    """Add an agency's address points (NENA GeoJSON or OpenAddresses CSV) to the index, replacing any earlier
    import of the same file name; returns a summary dict."""
    path = _check_readable(path, "an address file")
    source = path.name
    with files.one_import_at_a_time(folder):
        live_index = folder / files.ADDRESSES
        new_index = files.building_path(live_index)
        files.discard(new_index)
        builder = addresses.IndexBuilder(new_index)
        try:
            meta = {"address_format": addresses.DEFAULT_ADDRESS_FORMAT}
            if live_index.exists():
                kept = builder.keep_from(live_index, streets=True, except_source=source)
                meta.update({k: v for k, v in kept.items() if k in ("address_format", "extract")})
            try:
                points = address_files.read_points(path, kind)
                added = 0
                for address, lat, lon in points:
                    builder.add_address(address, lat, lon, source=source)
                    added += 1
            except ValueError as error:
                raise MapImportError(f"{path}: {error}. The address index in use is unchanged.") from None
            if added == 0:
                raise MapImportError(f"{path} has no address points. The address index in use is unchanged.")
            echo(f"Read {added:,} address points from {path.name}.")
            replaced = builder.drop_osm_duplicates()
            counts = builder.finish(meta)
            builder = None
            addresses.check_index(new_index)
            files.swap_in(new_index, live_index)
        except BaseException:
            if builder is not None:
                builder.abandon()
            files.discard(new_index)
            raise
    return dict(counts, added=added, replaced_osm=replaced, index_bytes=os.path.getsize(live_index))
