"""District lookups: which district a point lies in, with many detailed polygons.

    .venv/bin/python bench/districts.py                  # 100 districts of 400 vertices
    .venv/bin/python bench/districts.py --grid 20 --vertices 2000

Builds a grid of square districts (each side cut into vertices/4 segments, as
a GIS export's boundaries are), imports it as GeoJSON through
`read_district_file` and `import_districts` on a temporary migrated database,
then times per point: `district_at` (the stamp query and the cached, prepared
polygons), `DistrictMap.at` alone, the same points against unprepared
polygons in a plain loop, a point outside every polygon (the nearest-centre
fallback), and the rebuild that a change to the table causes. Figures:
docs/PERFORMANCE.md.
"""
import argparse
import json
import os
import random
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import shapely  # noqa: E402
from flask import Flask  # noqa: E402

from fieldapp.store.db import connect, migrate  # noqa: E402
from fieldapp.districts import DistrictMap, all_districts, district_at, import_districts, read_district_file  # noqa: E402

WEST, SOUTH, CELL = -90.5, 34.8, 0.1


def grid_file(n, vertices):
    """A FeatureCollection of n x n square districts, each ring with `vertices` points."""
    side = max(1, vertices // 4)
    features = []
    for i in range(n):
        for j in range(n):
            w, s = WEST + i * CELL, SOUTH + j * CELL
            corners = [(w, s), (w + CELL, s), (w + CELL, s + CELL), (w, s + CELL), (w, s)]
            ring = [[x0 + (x1 - x0) * k / side, y0 + (y1 - y0) * k / side]
                    for (x0, y0), (x1, y1) in zip(corners, corners[1:]) for k in range(side)]
            ring.append(ring[0])
            features.append({"type": "Feature", "properties": {"name": f"D{i:02d}-{j:02d}"},
                             "geometry": {"type": "Polygon", "coordinates": [ring]}})
    return json.dumps({"type": "FeatureCollection", "features": features})


def per_call_us(lookup, points, rounds=3):
    """The best of `rounds` mean times per call, in microseconds."""
    best = float("inf")
    for _ in range(rounds):
        start = time.perf_counter()
        for lat, lon in points:
            lookup(lat, lon)
        best = min(best, (time.perf_counter() - start) / len(points) * 1e6)
    return best


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--grid", type=int, default=10, help="districts per side (default 10: 100 districts)")
    p.add_argument("--vertices", type=int, default=400, help="vertices per district (default 400)")
    p.add_argument("--points", type=int, default=5000)
    args = p.parse_args(argv)
    print(f"load average {os.getloadavg()[0]:.1f}; {args.grid ** 2} districts of {args.vertices} vertices")
    with tempfile.TemporaryDirectory() as folder:
        db = connect(str(Path(folder) / "bench.db"))
        migrate(db)
        text = grid_file(args.grid, args.vertices)
        start = time.perf_counter()
        districts = read_district_file(text)
        checked = time.perf_counter() - start
        with Flask("bench").app_context():  # the audit entry reads the clock from the app
            import_districts(db, districts, source="bench")
        print(f"file {len(text) / 1e6:.1f} MB; checked in {checked * 1000:.0f} ms, imported in"
              f" {(time.perf_counter() - start - checked) * 1000:.0f} ms")
        rows = all_districts(db)
        start = time.perf_counter()
        district_map = DistrictMap(rows)
        print(f"rebuild after a change (parse, prepare, index): {(time.perf_counter() - start) * 1000:.1f} ms")
        random.seed(17)
        east, north = WEST + args.grid * CELL, SOUTH + args.grid * CELL
        inside = [(random.uniform(SOUTH, north), random.uniform(WEST, east)) for _ in range(args.points)]
        outside = [(random.uniform(north + 0.2, north + 0.7), random.uniform(WEST, east)) for _ in range(args.points // 5)]
        district_at(db, *inside[0])  # the first call builds this process's map
        plain = [shapely.from_geojson(r["geometry"]) for r in rows]

        def unprepared(lat, lon):
            point = shapely.Point(lon, lat)
            return next((i for i, g in enumerate(plain) if g.covers(point)), None)

        print(f"district_at, inside a polygon: {per_call_us(lambda a, b: district_at(db, a, b), inside):.1f} us")
        print(f"DistrictMap.at alone, inside: {per_call_us(district_map.at, inside):.1f} us")
        print(f"unprepared polygons in a loop, inside: {per_call_us(unprepared, inside):.1f} us")
        print(f"DistrictMap.at, outside every polygon (nearest centre): {per_call_us(district_map.at, outside):.1f} us")


if __name__ == "__main__":
    main()
