"""The map at county size: import time and peak memory, then nearest-address and address-search tails.

    .venv/bin/python bench/maps.py                    # 500,000 addresses on a 30 x 30 km grid county
    .venv/bin/python bench/maps.py --addresses 50000  # a quick look

Writes a synthetic OpenStreetMap extract (pyosmium's writer): a grid of named
streets every 100 m, crossing at shared nodes, with houses along the
east-west streets numbered by block as US addresses are; half are address
nodes, half addressed buildings (four-cornered ways). No real county is
reachable from here, so this stands in for one: real extracts carry more
kinds of features (land use, water, footpaths) and fewer addresses per km of
street, so the tile half of a real import takes longer and the address half
less. Then runs `map import` on it in a child process, for its wall time and
its peak memory (the Python process and tippecanoe, each from getrusage), and
times on the index it built, in this process: `nearest_address` at random
points and `search` with what an officer types (a number and part of a
street, a street alone, a number, a street and a town). Every figure comes
from the same run; JSON in bench/out/maps.json. Targets: nearest p99 < 1 ms,
search p99 < 20 ms at 500,000 addresses. Figures: docs/PERFORMANCE.md.
"""
import argparse
import json
import math
import os
import random
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import osmium  # noqa: E402

from fieldapp.maps.addresses import AddressIndex  # noqa: E402

CENTRE = (35.15, -90.05)
NAMES = ("Oak Maple Cedar Pine Elm Walnut Cherry Willow Poplar Magnolia Cypress Hickory Birch Aspen Dogwood Holly "
         "Laurel Juniper Spruce Sycamore Chestnut Beech Alder Linden Hawthorn Madison Jefferson Washington Lincoln "
         "Jackson Monroe Adams Union Central Park Lake River Hill Valley Summit Forest Meadow Spring Highland "
         "Prospect Ridge Church Mill School Market Bridge Railroad Cleveland Poplar Lamar Summer Winchester").split()
SUFFIXES = ("Street", "Avenue", "Road", "Drive", "Lane", "Boulevard", "Place", "Court")
TOWNS = ("Memphis", "Bartlett", "Germantown", "Collierville", "Millington", "Arlington", "Lakeland")


def street_name(i):
    return f"{NAMES[i % len(NAMES)]} {SUFFIXES[(i // len(NAMES)) % len(SUFFIXES)]}" + \
        (f" {['', 'North', 'South', 'East', 'West'][(i // (len(NAMES) * len(SUFFIXES))) % 5]}".rstrip())


def write_county(path, addresses, side_km):
    """A synthetic county extract with about `addresses` address points; returns (streets, addresses)."""
    blocks = int(side_km * 10)  # a street every 100 m
    lat0, lon0 = CENTRE[0] - side_km / 2 / 111.195, CENTRE[1] - side_km / 2 / (111.195 * math.cos(math.radians(CENTRE[0])))
    dlat, dlon = 0.1 / 111.195, 0.1 / (111.195 * math.cos(math.radians(CENTRE[0])))
    per_block = max(1, round(addresses / (blocks * blocks * 2)))  # houses per side of each 100 m block
    grid = lambda i, j: 1 + i * (blocks + 1) + j  # noqa: E731  (the node at row i, column j)
    next_id = grid(blocks, blocks) + 1
    written = 0
    with osmium.SimpleWriter(str(path)) as w:
        for i in range(blocks + 1):
            for j in range(blocks + 1):
                w.add_node(osmium.osm.mutable.Node(id=grid(i, j), location=(lon0 + j * dlon, lat0 + i * dlat)))
        houses, ways = [], []
        for i in range(blocks):
            name = street_name(i)
            town = TOWNS[(i * len(TOWNS)) // blocks]
            for j in range(blocks):
                for side in (0, 1):
                    for k in range(per_block):
                        number = 100 * (j + 1) + 2 * k + side
                        lat = lat0 + i * dlat + (0.00012 if side else -0.00012)
                        lon = lon0 + (j + (k + 0.5) / per_block) * dlon
                        tags = {"addr:housenumber": str(number), "addr:street": name, "addr:city": town}
                        if written % 2:
                            corners = []
                            for a, b in ((0, 0), (1, 0), (1, 1), (0, 1)):
                                corners.append(next_id)
                                w.add_node(osmium.osm.mutable.Node(
                                    id=next_id, location=(lon + (b - 0.5) * 0.0001, lat + (a - 0.5) * 0.00008)))
                                next_id += 1
                            ways.append((corners + corners[:1], dict(tags, building="house")))
                        else:
                            houses.append((next_id, lon, lat, tags))
                            next_id += 1
                        written += 1
        for node_id, lon, lat, tags in houses:
            w.add_node(osmium.osm.mutable.Node(id=node_id, location=(lon, lat), tags=tags))
        way_id = 1
        for i in range(blocks + 1):  # east-west streets
            w.add_way(osmium.osm.mutable.Way(id=way_id, nodes=[grid(i, j) for j in range(blocks + 1)],
                                             tags={"highway": "residential" if i % 10 else "secondary",
                                                   "name": street_name(i)}))
            way_id += 1
        for j in range(blocks + 1):  # north-south avenues
            w.add_way(osmium.osm.mutable.Way(id=way_id, nodes=[grid(i, j) for i in range(blocks + 1)],
                                             tags={"highway": "residential" if j % 10 else "primary",
                                                   "name": f"{j + 1}{'th' if 10 <= (j + 1) % 100 <= 20 else {1: 'st', 2: 'nd', 3: 'rd'}.get((j + 1) % 10, 'th')} Avenue"}))
            way_id += 1
        for nodes, tags in ways:
            w.add_way(osmium.osm.mutable.Way(id=way_id, nodes=nodes, tags=tags))
            way_id += 1
    return 2 * (blocks + 1), written


IMPORT = """
import json, resource, sys, time
from pathlib import Path
from fieldapp.maps.imports import import_extract
start = time.perf_counter()
done = import_extract(Path(sys.argv[1]), Path(sys.argv[2]), echo=lambda *_: None)
done["wall_s"] = time.perf_counter() - start
done["python_peak_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
done["tippecanoe_peak_mb"] = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
print(json.dumps(done))
"""


def percentiles(samples):
    samples = sorted(samples)
    pick = lambda q: samples[min(len(samples) - 1, int(q * len(samples)))] * 1000  # noqa: E731  (ms)
    return {"p50_ms": pick(0.50), "p99_ms": pick(0.99), "max_ms": samples[-1] * 1000, "n": len(samples)}


def timed(call, args_list):
    """(wall, cpu) seconds of each call. On a shared machine the wall tail holds the time another process had
    the core; the CPU time is this call's own work."""
    wall, cpu = [], []
    for args in args_list:
        start, start_cpu = time.perf_counter(), time.process_time()
        call(*args)
        wall.append(time.perf_counter() - start)
        cpu.append(time.process_time() - start_cpu)
    return wall, cpu


def build(extract, folder, args):
    """Write the synthetic extract and import it in a child process; returns the import's figures."""
    start = time.perf_counter()
    streets, written = write_county(extract, args.addresses, args.side_km)
    print(f"wrote {extract.stat().st_size / 1e6:.1f} MB extract: {written:,} addresses, {streets} streets, "
          f"{args.side_km:g} x {args.side_km:g} km, in {time.perf_counter() - start:.0f} s")
    child = subprocess.run([sys.executable, "-c", IMPORT, str(folder), str(extract)], capture_output=True,
                           text=True, cwd=Path(__file__).resolve().parents[1])
    if child.returncode:
        sys.exit(child.stderr)
    imported = json.loads(child.stdout.strip().splitlines()[-1])
    imported["loadavg"] = os.getloadavg()[0]
    print(f"import: {imported['wall_s']:.0f} s (load average {imported['loadavg']:.1f}); peak memory: python "
          f"{imported['python_peak_mb']:.0f} MB, tippecanoe {imported['tippecanoe_peak_mb']:.0f} MB; "
          f"basemap {imported['tiles_bytes'] / 1e6:.1f} MB, address index {imported['index_bytes'] / 1e6:.0f} MB")
    return imported


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--addresses", type=int, default=500_000)
    parser.add_argument("--side-km", type=float, default=30.0)
    parser.add_argument("--lookups", type=int, default=20_000)
    parser.add_argument("--keep", type=Path, help="build in this folder and keep it; a second run with the same "
                                                  "folder times the lookups again without importing")
    args = parser.parse_args()
    print(f"load average at start: {os.getloadavg()[0]:.1f}")
    with tempfile.TemporaryDirectory(prefix="bench-maps-") as tmp:
        tmp = args.keep or Path(tmp)
        tmp.mkdir(parents=True, exist_ok=True)
        extract, folder = tmp / "county.osm.pbf", tmp / "map"
        if (tmp / "import.json").exists():
            imported = json.loads((tmp / "import.json").read_text())
            print("lookups only, on the index built before in", tmp)
        else:
            imported = build(extract, folder, args)
            (tmp / "import.json").write_text(json.dumps(imported))
        index = AddressIndex(folder / "addresses.db")
        rng = random.Random(27)
        half = args.side_km / 2
        points = [(CENTRE[0] + rng.uniform(-half, half) / 111.195,
                   CENTRE[1] + rng.uniform(-half, half) / (111.195 * math.cos(math.radians(CENTRE[0]))))
                  for _ in range(args.lookups)]
        blocks = int(args.side_km * 10)
        typed = []
        for _ in range(args.lookups // 4):
            name = street_name(rng.randrange(blocks))
            number = str(100 * rng.randrange(1, blocks) + rng.randrange(10))
            typed.append(rng.choice([f"{number} {name[:rng.randrange(3, len(name))]}", name.split()[0],
                                     f"{number} {name}", number[:2], f"{number} {name.split()[0]} {TOWNS[0]}"]))
        for lat, lon in points[:200]:  # warm the page cache
            index.nearest_address(lat, lon)
        wall, cpu = timed(lambda a, b: index.nearest_address(a, b, 50), points)
        nearest, nearest_cpu = percentiles(wall), percentiles(cpu)
        found = sum(1 for lat, lon in points[:2000] if index.nearest_address(lat, lon, 50))
        wall, cpu = timed(lambda text: index.search(text, 10), [(t,) for t in typed])
        search, search_cpu = percentiles(wall), percentiles(cpu)
        results = {"addresses": index.count(), "import": imported,
                   "nearest": nearest, "nearest_cpu": nearest_cpu, "nearest_hit_share": found / 2000,
                   "search": search, "search_cpu": search_cpu, "loadavg": os.getloadavg()[0]}
    print(f"nearest_address at {results['addresses']:,} addresses: p50 {nearest['p50_ms']:.3f} ms, "
          f"p99 {nearest['p99_ms']:.3f} ms wall, {nearest_cpu['p99_ms']:.3f} ms CPU (target < 1 ms); "
          f"{results['nearest_hit_share']:.0%} found one within 50 m")
    print(f"search: p50 {search['p50_ms']:.2f} ms, p99 {search['p99_ms']:.2f} ms wall, "
          f"{search_cpu['p99_ms']:.2f} ms CPU (target < 20 ms)")
    print(f"load average at the end: {results['loadavg']:.1f}")
    out = Path(__file__).resolve().parent / "out"
    out.mkdir(exist_ok=True)
    (out / "maps.json").write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
