"""The sea: OpenStreetMap draws coastlines as lines with the land on their left, so the water polygons the
basemap needs are made here from the coastline inside the extract's box."""
import shapely
from shapely.geometry import LineString, Point, box
from shapely.ops import nearest_points, polygonize, unary_union

# How far beside a coastline segment to look for which face is land and which is water (degrees, ~10 cm).
SIDE_STEP = 1e-6


def located_runs(way):
    """A coastline way's stretches of nodes that have locations: an extract cuts ways at its edge."""
    run = []
    for node in way.nodes:
        if node.location.valid():
            run.append((node.lon, node.lat))
            continue
        if len(run) > 1:
            yield run
        run = []
    if len(run) > 1:
        yield run


def sea_polygons(pieces, bounds):
    """Water polygons from coastline pieces [[(lon, lat), ...], ...] inside bounds (south, west, north, east);
    [] when they do not close into faces (then the sea is drawn as land, as before)."""
    south, west, north, east = bounds
    area = box(west, south, east, north)
    edge = area.exterior
    lines = []
    for piece in pieces:
        coords = list(piece)
        if coords[0] != coords[-1]:
            # A piece cut by the extract's edge ends short of the box: carry it on to the box's edge.
            coords = ([nearest_points(edge, Point(coords[0]))[0].coords[0]] + coords
                      + [nearest_points(edge, Point(coords[-1]))[0].coords[0]])
        lines.append(LineString(coords).intersection(area))
    faces = list(polygonize(unary_union(lines + [edge])))
    water, land = set(), set()
    for piece in pieces:
        for (x1, y1), (x2, y2) in zip(piece, piece[1:]):
            length = ((x2 - x1) ** 2 + (y2 - y1) ** 2) ** 0.5
            if not length:
                continue
            mx, my, nx, ny = (x1 + x2) / 2, (y1 + y2) / 2, (y2 - y1) / length * SIDE_STEP, (x1 - x2) / length * SIDE_STEP
            right, left = Point(mx + nx, my + ny), Point(mx - nx, my - ny)
            for i, face in enumerate(faces):
                if face.contains(right):
                    water.add(i)
                if face.contains(left):
                    land.add(i)
    return [faces[i] for i in sorted(water - land)]


def sea_features(pieces, bounds, write):
    """Write the sea's polygons to the basemap's water layer through `write`; returns how many."""
    if not pieces or not bounds:
        return 0
    try:
        polygons = sea_polygons(pieces, bounds)
    except (shapely.errors.GEOSException, ValueError):
        return 0
    for polygon in polygons:
        write("water", 10, {"kind": "water"}, shapely.to_geojson(polygon))
    return len(polygons)
