"""The `map` and `addresses` commands: import the agency's map and addresses, and look at what the app would show."""
import json
from pathlib import Path

import click
from flask.cli import with_appcontext

from . import files, imports
from .basemap import Basemap
from .files import MapImportError
from .live import current_index
from .places import LocationNotFound, describe_place, resolve_location

# "addresses near 35.15 -90.05": a negative longitude is a number, not an option.
NUMBERS_MAY_BE_NEGATIVE = {"ignore_unknown_options": True}


def _megabytes(size):
    return f"{size / 1024 / 1024:.1f} MB"


@click.group("map")
def map_group():
    """Import and inspect the agency's map: the basemap tiles and the address index (docs/MAPS.md)."""


@map_group.command("import")
@click.argument("extract", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--address-format", default=None,
              help="How an address reads: '{housenumber} {street}' (the default, US) or '{street} {housenumber}'.")
@with_appcontext
def import_command(extract, address_format):
    """Build the basemap and the address index from an OpenStreetMap extract (.osm.pbf) and swap them in."""
    if address_format is not None and ("{housenumber}" not in address_format or "{street}" not in address_format):
        raise click.BadParameter("it must contain {housenumber} and {street}.", param_hint="--address-format")
    try:
        done = imports.import_extract(files.map_dir(), extract, address_format, echo=click.echo)
    except MapImportError as error:
        raise click.ClickException(str(error)) from None
    click.echo(f"Imported {extract.name} in {done['seconds']:.1f} s: basemap {_megabytes(done['tiles_bytes'])}, "
               f"{done['addresses']:,} addresses, {done['streets']:,} named streets, "
               f"{done['intersections']:,} crossings (index {_megabytes(done['index_bytes'])}).")


@map_group.command("import-addresses")
@click.argument("path", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--kind", type=click.Choice(["nena", "openaddresses"]), default=None,
              help="The file's kind; by default a .csv is OpenAddresses and anything else NENA GeoJSON.")
@with_appcontext
def import_addresses_command(path, kind):
    """Add an agency's address points (NENA Site/Structure Address Points as GeoJSON, or an OpenAddresses CSV)."""
    try:
        done = imports.import_address_file(files.map_dir(), path, kind, echo=click.echo)
    except MapImportError as error:
        raise click.ClickException(str(error)) from None
    click.echo(f"Imported {done['added']:,} address points from {path.name}; {done['replaced_osm']:,} OpenStreetMap "
               f"duplicates dropped; {done['addresses']:,} addresses in all (index {_megabytes(done['index_bytes'])}).")


@map_group.command("info")
@with_appcontext
def info_command():
    """Print the live map's bounds, zooms, tile count, size and address count."""
    folder = files.map_dir()
    path = folder / files.BASEMAP
    if not path.exists():
        raise click.ClickException(f"No map in {folder}. Import one with `flask --app fieldapp map import EXTRACT.osm.pbf`.")
    basemap = Basemap(path)
    info = basemap.info()
    basemap.close()
    south, west, north, east = info["bounds"]
    click.echo(f"Basemap      {path} ({_megabytes(info['bytes'])}), version {info['version']}")
    click.echo(f"Bounds       south {south:.5f}, west {west:.5f}, north {north:.5f}, east {east:.5f}")
    click.echo(f"Zooms        {info['min_zoom']}–{info['max_zoom']} (drawn at {info['min_zoom'] + 1}–19)")
    click.echo(f"Tiles        {info['tiles']:,}; layers {', '.join(info['layers'])}")
    click.echo("Attribution  © OpenStreetMap contributors (shown on every map)")
    index = current_index()
    if index is None:
        click.echo("Addresses    none imported")
        return
    meta = index.meta
    click.echo(f"Addresses    {index.count():,} ({_megabytes((folder / files.ADDRESSES).stat().st_size)}), from "
               f"{', '.join(json.loads(meta.get('sources', '[]')))}; "
               f"{int(meta.get('streets_count', 0)):,} named streets, {int(meta.get('intersections_count', 0)):,} crossings")
    click.echo(f"Built        {meta.get('built_at', '?')} from {meta.get('extract', '?')}")


@click.group("addresses")
def addresses_group():
    """Look up the imported addresses as the app would show them."""


@addresses_group.command("near", context_settings=NUMBERS_MAY_BE_NEGATIVE)
@click.argument("lat", type=float)
@click.argument("lon", type=float)
@click.option("--within", default=50.0, show_default=True, help="How far to look, in metres.")
@with_appcontext
def near_command(lat, lon, within):
    """Print the address nearest LAT LON, and how the app describes the place."""
    if not (-90 <= lat <= 90 and -180 <= lon <= 180):
        raise click.BadParameter("LAT is -90 to 90 and LON -180 to 180.")
    index = current_index()
    if index is None:
        raise click.ClickException("No addresses have been imported (`flask --app fieldapp map import`).")
    found = index.nearest_address(lat, lon, within)
    if found:
        click.echo(f"{found['label']}{', ' + found['place'] if found['place'] else ''} "
                   f"({found['distance_m']:.0f} m away; {found['lat']:.6f}, {found['lon']:.6f}; from {found['source']})")
    else:
        click.echo(f"No address within {within:g} m.")
    click.echo(f"Shown as: {describe_place(lat, lon) or f'{lat:.5f}, {lon:.5f}'}")


@addresses_group.command("search")
@click.argument("text", nargs=-1, required=True)
@click.option("--limit", default=10, show_default=True, type=click.IntRange(1, 100), help="How many to print.")
@with_appcontext
def search_command(text, limit):
    """Print the addresses that match TEXT, best first, as the search box would list them."""
    index = current_index()
    if index is None:
        raise click.ClickException("No addresses have been imported (`flask --app fieldapp map import`).")
    found = index.search(" ".join(text), limit)
    if not found:
        click.echo("No address matches.")
    for address in found:
        click.echo(f"{address['label']}{', ' + address['place'] if address['place'] else ''}"
                   f"  ({address['lat']:.6f}, {address['lon']:.6f})")


@addresses_group.command("resolve", context_settings=NUMBERS_MAY_BE_NEGATIVE)
@click.argument("text", nargs=-1, required=True)
@with_appcontext
def resolve_command(text):
    """Print the point a typed or CAD location names (an address, 'MAIN ST / 3RD AVE', '1200 BLK MAIN ST', 'lat, lon')."""
    try:
        found = resolve_location(" ".join(text))
    except LocationNotFound as error:
        raise click.ClickException(str(error)) from None
    click.echo(f"{found['label']} ({found['lat']:.6f}, {found['lon']:.6f}), matched as {found['matched']}")
