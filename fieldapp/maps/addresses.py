"""The address index: address points, named streets and their crossings, in a SQLite file of its own.

Why a file of its own (instance/map/addresses.db) and not tables in fieldapp.db:
it is rebuilt whole by each import and swapped in with one rename, so a
half-built index is never read and no migration is needed; the app opens it
read-only and `immutable`, so lookups take no lock and never wait on the busy
main database; it can be made again from its sources at any time, so the
backups and Litestream replica of fieldapp.db stay small and hold no copy of it.

Tables: `addresses` (one row per address point: house number, street, unit,
city, postcode, where, and the source it came from) with an R*Tree of boxes
(`address_boxes`) and an FTS5 word index (`address_words`); `streets` (pieces
of named streets, up to 8 points each) with `street_boxes`; `intersections`
(where two differently named streets share a node) with `intersection_boxes`;
and `meta` (what was imported, when, and how addresses are written).
"""
import datetime
import json
import math
import re
import sqlite3
import threading
import unicodedata

from ..geo import bounding_box, distance_m

OSM_SOURCE = "openstreetmap"
DEFAULT_ADDRESS_FORMAT = "{housenumber} {street}"
# Words written either way in addresses (USPS Publication 28's common suffixes and directions):
# each address is indexed under both, so "12 Main St" finds "12 Main Street" and back.
ABBREVIATIONS = {
    "street": "st", "avenue": "ave", "road": "rd", "boulevard": "blvd", "drive": "dr", "lane": "ln",
    "court": "ct", "place": "pl", "terrace": "ter", "highway": "hwy", "parkway": "pkwy", "circle": "cir",
    "square": "sq", "trail": "trl", "expressway": "expy", "freeway": "fwy", "plaza": "plz", "point": "pt",
    "north": "n", "south": "s", "east": "e", "west": "w",
    "northeast": "ne", "northwest": "nw", "southeast": "se", "southwest": "sw",
    "apartment": "apt", "suite": "ste", "building": "bldg", "floor": "fl", "room": "rm", "mount": "mt",
    "saint": "st", "fort": "ft",
}
EXPANSIONS = {short: long for long, short in ABBREVIATIONS.items() if long != "saint"}

SCHEMA = """
CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE addresses (
    id INTEGER PRIMARY KEY, housenumber TEXT NOT NULL, street TEXT NOT NULL, unit TEXT NOT NULL DEFAULT '',
    city TEXT NOT NULL DEFAULT '', postcode TEXT NOT NULL DEFAULT '', lat REAL NOT NULL, lon REAL NOT NULL,
    street_key TEXT NOT NULL, source TEXT NOT NULL
);
CREATE TABLE streets (id INTEGER PRIMARY KEY, name TEXT NOT NULL, points TEXT NOT NULL);
CREATE TABLE intersections (
    id INTEGER PRIMARY KEY, street_a TEXT NOT NULL, street_b TEXT NOT NULL,
    key_a TEXT NOT NULL, key_b TEXT NOT NULL, lat REAL NOT NULL, lon REAL NOT NULL
);
CREATE TEMP TABLE street_nodes (node_id INTEGER NOT NULL, name TEXT NOT NULL, key TEXT NOT NULL,
                                lat REAL NOT NULL, lon REAL NOT NULL);
"""
INDEXES = """
CREATE INDEX addresses_by_street ON addresses (street_key, housenumber);
CREATE INDEX intersections_by_a ON intersections (key_a);
CREATE INDEX intersections_by_b ON intersections (key_b);
CREATE VIRTUAL TABLE address_boxes USING rtree(id, min_lat, max_lat, min_lon, max_lon);
CREATE VIRTUAL TABLE street_boxes USING rtree(id, min_lat, max_lat, min_lon, max_lon);
CREATE VIRTUAL TABLE intersection_boxes USING rtree(id, min_lat, max_lat, min_lon, max_lon);
-- Contentless and without column sizes (nothing is ranked): the words are only for finding rows; what is
-- shown comes from `addresses`. Prefix indexes make the shortest "as you type" queries ("12", "oak") quick.
CREATE VIRTUAL TABLE address_words USING fts5(words, content='', columnsize=0, prefix='2 3');
"""
BATCH = 5000
# The word starts the FTS5 index keeps (prefix='2 3'): a longer start ("memph"*) merges every word it begins.
PREFIX_INDEXED = 3


WORD = re.compile(r"[a-z0-9]+")


def words(text):
    """Lower-case words without accents: 'Pohjoisesplanadi 11 B' -> ['pohjoisesplanadi', '11', 'b']."""
    text = text or ""
    if not text.isascii():
        text = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode()
    return WORD.findall(text.lower())


def street_key(name):
    """A street's name as a key that ignores case, accents and how its suffix is written: 'Main Street' -> 'main st'."""
    return " ".join(ABBREVIATIONS.get(w, w) for w in words(name))


def index_words(row):
    """Every word an address is found by, abbreviations and their long forms included."""
    found = []
    # "12 B" is found as "12B" and "12B" as "12 B": the number joined, and its digits alone.
    number = words(row["housenumber"])
    if len(number) > 1:
        found.append("".join(number))
    digits = re.match(r"\d+", "".join(number))
    if digits and digits.group() != "".join(number):
        found.append(digits.group())
    for field in ("housenumber", "street", "unit", "city", "postcode"):
        for word in words(row[field]):
            found.append(word)
            other = ABBREVIATIONS.get(word) or EXPANSIONS.get(word)
            if other:
                found.append(other)
    return " ".join(found)


def label_of(row, address_format=DEFAULT_ADDRESS_FORMAT):
    """How an address reads on screen: '12 Main St, Apt 4' (or 'Mannerheimintie 12' where the number follows)."""
    text = address_format.format(housenumber=row["housenumber"], street=row["street"]).strip()
    if row["unit"]:
        unit = row["unit"]
        text += f", {unit}" if not unit[:1].isdigit() and len(unit) > 2 else f", Unit {unit}"
    return text


def _row_dict(row, address_format, lat=None, lon=None):
    found = {k: row[k] for k in ("housenumber", "street", "unit", "city", "postcode", "lat", "lon", "source")}
    found["label"] = label_of(row, address_format)
    found["place"] = " ".join(p for p in (row["postcode"], row["city"]) if p)
    if lat is not None:
        found["distance_m"] = distance_m(lat, lon, row["lat"], row["lon"])
    return found


class IndexBuilder:
    """Builds a new address index file: rows are added while an extract or an address file is read,
    then finish() makes the boxes, the word index and the crossings, and closes the file."""

    def __init__(self, path):
        self.path = path
        self.conn = sqlite3.connect(path)
        self.conn.row_factory = sqlite3.Row
        # A file being built is thrown away on any failure, so nothing here needs to survive a crash.
        self.conn.executescript("PRAGMA journal_mode = OFF; PRAGMA synchronous = OFF; PRAGMA temp_store = FILE;")
        self.conn.executescript(SCHEMA)
        self._addresses, self._pieces, self._nodes = [], [], []

    def add_address(self, address, lat, lon, source=OSM_SOURCE):
        """Add one address point (housenumber, street, unit, city, postcode)."""
        self._addresses.append((address["housenumber"], address["street"], address.get("unit", ""),
                                address.get("city", ""), address.get("postcode", ""), lat, lon,
                                street_key(address["street"]), source))
        if len(self._addresses) >= BATCH:
            self._flush()

    def add_street_piece(self, name, points):
        """Add a piece of a named street: [(lat, lon), ...]."""
        self._pieces.append((name, json.dumps([[round(a, 7), round(b, 7)] for a, b in points])))
        if len(self._pieces) >= BATCH:
            self._flush()

    def add_street_node(self, node_id, name, lat, lon):
        """Note that the street `name` passes through OSM node `node_id` (crossings are where names meet)."""
        self._nodes.append((node_id, name, street_key(name), lat, lon))
        if len(self._nodes) >= BATCH:
            self._flush()

    def _flush(self):
        self.conn.executemany(
            "INSERT INTO addresses (housenumber, street, unit, city, postcode, lat, lon, street_key, source)"
            " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)", self._addresses)
        self.conn.executemany("INSERT INTO streets (name, points) VALUES (?, ?)", self._pieces)
        self.conn.executemany("INSERT INTO street_nodes VALUES (?, ?, ?, ?, ?)", self._nodes)
        self._addresses, self._pieces, self._nodes = [], [], []

    def keep_from(self, old_path, streets=True, except_source=None):
        """Copy from the live index what this import does not replace: its streets and crossings (unless this
        import brings its own) and every address whose source is not `except_source`."""
        self._flush()
        self.conn.execute("ATTACH DATABASE ? AS old", [f"file:{old_path}?mode=ro"])
        try:
            if streets:
                self.conn.execute("INSERT INTO streets (name, points) SELECT name, points FROM old.streets")
                self.conn.execute("INSERT INTO intersections (street_a, street_b, key_a, key_b, lat, lon)"
                                  " SELECT street_a, street_b, key_a, key_b, lat, lon FROM old.intersections")
            self.conn.execute(
                "INSERT INTO addresses (housenumber, street, unit, city, postcode, lat, lon, street_key, source)"
                " SELECT housenumber, street, unit, city, postcode, lat, lon, street_key, source"
                " FROM old.addresses WHERE source != ?", [except_source or ""])
            kept = dict(self.conn.execute("SELECT key, value FROM old.meta").fetchall())
        finally:
            self.conn.commit()
            self.conn.execute("DETACH DATABASE old")
        return kept

    def drop_osm_duplicates(self, within_m=150):
        """Remove OpenStreetMap addresses an agency's own file also has (same number, street and unit, nearby):
        the agency's points are the ones dispatch uses."""
        self._flush()
        pairs = self.conn.execute(
            "SELECT o.id, o.lat, o.lon, f.lat, f.lon FROM addresses o JOIN addresses f"
            " ON f.street_key = o.street_key AND lower(f.housenumber) = lower(o.housenumber)"
            " AND lower(f.unit) = lower(o.unit) AND f.source != ? WHERE o.source = ?", [OSM_SOURCE, OSM_SOURCE])
        doomed = {p[0] for p in pairs if distance_m(p[1], p[2], p[3], p[4]) <= within_m}
        self.conn.executemany("DELETE FROM addresses WHERE id = ?", [(i,) for i in doomed])
        return len(doomed)

    def finish(self, meta):
        """Make the boxes, word index and crossings, write `meta`, compact the file and close it; returns counts."""
        self._flush()
        c = self.conn
        c.execute("CREATE INDEX temp.street_nodes_by_node ON street_nodes (node_id)")
        c.execute(
            "INSERT INTO intersections (street_a, street_b, key_a, key_b, lat, lon)"
            " SELECT a.name, b.name, a.key, b.key, a.lat, a.lon FROM street_nodes a JOIN street_nodes b"
            " ON a.node_id = b.node_id AND a.key < b.key GROUP BY a.node_id, a.key, b.key")
        c.execute("DROP TABLE street_nodes")
        c.executescript(INDEXES)
        c.execute("INSERT INTO address_boxes SELECT id, lat, lat, lon, lon FROM addresses")
        c.execute("INSERT INTO intersection_boxes SELECT id, lat, lat, lon, lon FROM intersections")
        boxes = []
        for piece_id, points in c.execute("SELECT id, points FROM streets"):
            pts = json.loads(points)
            lats, lons = [p[0] for p in pts], [p[1] for p in pts]
            boxes.append((piece_id, min(lats), max(lats), min(lons), max(lons)))
        c.executemany("INSERT INTO street_boxes VALUES (?, ?, ?, ?, ?)", boxes)
        c.executemany("INSERT INTO address_words (rowid, words) VALUES (?, ?)",
                      ((row["id"], index_words(row)) for row in c.execute("SELECT * FROM addresses")))
        c.execute("INSERT INTO address_words (address_words) VALUES ('optimize')")
        counts = {
            "addresses": c.execute("SELECT COUNT(*) FROM addresses").fetchone()[0],
            "streets": c.execute("SELECT COUNT(DISTINCT name) FROM streets").fetchone()[0],
            "intersections": c.execute("SELECT COUNT(*) FROM intersections").fetchone()[0],
        }
        sources = [r[0] for r in c.execute("SELECT DISTINCT source FROM addresses ORDER BY source")]
        meta = dict(meta, built_at=datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
                    sources=json.dumps(sources), **{f"{k}_count": str(v) for k, v in counts.items()})
        c.executemany("INSERT OR REPLACE INTO meta VALUES (?, ?)", [(k, str(v)) for k, v in meta.items()])
        c.commit()
        c.execute("ANALYZE")
        c.execute("VACUUM")
        c.close()
        return counts

    def abandon(self):
        """Close the half-built file (the caller removes it)."""
        self.conn.close()


def check_index(path):
    """Open a built index and check it whole; raises ValueError with what is wrong."""
    try:
        conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
        try:
            if conn.execute("PRAGMA quick_check").fetchone()[0] != "ok":
                raise ValueError("the address index failed SQLite's check")
            conn.execute("SELECT COUNT(*) FROM address_boxes").fetchone()
            conn.execute("SELECT rowid FROM address_words WHERE address_words MATCH 'a*' LIMIT 1").fetchall()
        finally:
            conn.close()
    except sqlite3.DatabaseError as error:
        raise ValueError(f"the address index is not readable: {error}") from None


class AddressIndex:
    """Lookups on one address index file, opened read-only; one per thread (sqlite3 connections are not shared)."""

    def __init__(self, path):
        self.conn = sqlite3.connect(f"file:{path}?immutable=1", uri=True, check_same_thread=False)
        self.conn.row_factory = sqlite3.Row
        self.meta = dict(self.conn.execute("SELECT key, value FROM meta").fetchall())
        self.address_format = self.meta.get("address_format", DEFAULT_ADDRESS_FORMAT)

    def close(self):
        """Close the file."""
        self.conn.close()

    def count(self):
        """How many address points the index holds."""
        return int(self.meta.get("addresses_count") or 0)

    def nearest_address(self, lat, lon, within_m=50):
        """The address point nearest (lat, lon) within `within_m` metres, as a dict, or None."""
        min_lat, max_lat, min_lon, max_lon = bounding_box(lat, lon, within_m)
        best, best_key = None, None
        for row in self.conn.execute(
                "SELECT a.* FROM address_boxes b JOIN addresses a ON a.id = b.id"
                " WHERE b.min_lat <= ? AND b.max_lat >= ? AND b.min_lon <= ? AND b.max_lon >= ?",
                [max_lat, min_lat, max_lon, min_lon]):
            metres = distance_m(lat, lon, row["lat"], row["lon"])
            # At one point (a block of flats), the building's own address before its units.
            key = (round(metres, 1), row["unit"] != "", row["id"])
            if metres <= within_m and (best_key is None or key < best_key):
                best, best_key = row, key
        return _row_dict(best, self.address_format, lat, lon) if best is not None else None

    def search(self, text, limit=10):
        """Addresses with every word typed (the last one may be half typed), best first: the typed house
        number first, whole words before word starts, then by street and number."""
        tokens = words(text)[:8]
        if not tokens or limit < 1:
            return []
        rows = self._match(tokens, limit)
        if not rows and len(tokens) > 1 and len(tokens[-1]) == 1:
            rows = self._match(tokens[:-1], limit)  # a lone letter being typed: look without it
        numbers = {t for t in tokens if t[:1].isdigit()}
        rows.sort(key=lambda r: ((words(r[1]["housenumber"]) or [""])[0] not in numbers, r[0],
                                 r[1]["street"], _number_order(r[1]["housenumber"]), r[1]["unit"]))
        found = []
        for _, row in rows:
            address = _row_dict(row, self.address_format)
            # An address mapped twice (its door and its building) is shown once.
            if not any(f["label"] == address["label"] and distance_m(f["lat"], f["lon"], address["lat"], address["lon"])
                       < 100 for f in found):
                found.append(address)
        return found[:limit]

    def _match(self, tokens, limit):
        """[(tier, row)], in tiers tried in turn: 0 every word whole; 1 the last word's start (being typed), to
        fill up to `limit` (when that start is in the prefix index, else only when nothing matched yet); 2 every
        street word's start ("pohjoisespl 11"), only when nothing matched yet.

        No ranking by bm25: every word must match anyway, and ranking would read every match of a short
        query ("12", "oak") before the first could be returned; unranked, SQLite stops at the limit. The word
        starts of common words ("road", "st") are long lists, so they are read only when nothing else matched.
        """
        whole = [f'"{t}"' for t in tokens]
        typing = whole[:-1] + ([f'"{tokens[-1]}"*'] if len(tokens[-1]) >= 2 else whole[-1:])
        starts = [f'"{t}"*' if len(t) >= 3 and not t[:1].isdigit() else q for t, q in zip(tokens[:-1], whole)]
        starts += typing[-1:]
        found = {}
        for tier, terms in enumerate((whole, typing, starts)):
            if tier > 0 and (found and (tier == 2 or len(found) >= limit or len(tokens[-1]) > PREFIX_INDEXED)
                             or terms == (whole, typing)[tier - 1]):
                continue
            for row in self._words_match(" ".join(terms), limit * 4):
                found.setdefault(row["id"], (tier, row))
        return list(found.values())

    def _words_match(self, query, limit):
        return self.conn.execute(
            "SELECT a.* FROM address_words w JOIN addresses a ON a.id = w.rowid WHERE address_words MATCH ? LIMIT ?",
            [query, limit]).fetchall()

    def on_street(self, street, housenumber=None, unit=None):
        """Address points on the street named `street` (any spelling of its suffix), optionally one number."""
        key = street_key(street)
        if housenumber is None:
            rows = self.conn.execute("SELECT * FROM addresses WHERE street_key = ?", [key]).fetchall()
        else:
            rows = self.conn.execute("SELECT * FROM addresses WHERE street_key = ? AND housenumber = ? COLLATE NOCASE",
                                     [key, housenumber]).fetchall()
        if unit is not None:
            rows = [r for r in rows if words(r["unit"]) == words(unit)]
        return [_row_dict(r, self.address_format) for r in rows]

    def nearest_street(self, lat, lon, within_m=150):
        """(name, metres) of the named street nearest (lat, lon) within `within_m`, or None."""
        min_lat, max_lat, min_lon, max_lon = bounding_box(lat, lon, within_m)
        best = None
        for name, points in self.conn.execute(
                "SELECT s.name, s.points FROM street_boxes b JOIN streets s ON s.id = b.id"
                " WHERE b.min_lat <= ? AND b.max_lat >= ? AND b.min_lon <= ? AND b.max_lon >= ?",
                [max_lat, min_lat, max_lon, min_lon]):
            metres = _distance_to_line(lat, lon, json.loads(points))
            if metres <= within_m and (best is None or metres < best[1]):
                best = (name, metres)
        return best

    def nearest_crossing(self, street, lat, lon, within_m=600):
        """The other street crossing `street` nearest (lat, lon): (name, lat, lon), or None."""
        key = street_key(street)
        min_lat, max_lat, min_lon, max_lon = bounding_box(lat, lon, within_m)
        best = None
        for row in self.conn.execute(
                "SELECT i.* FROM intersection_boxes b JOIN intersections i ON i.id = b.id"
                " WHERE b.min_lat <= ? AND b.max_lat >= ? AND b.min_lon <= ? AND b.max_lon >= ?"
                " AND (i.key_a = ? OR i.key_b = ?)", [max_lat, min_lat, max_lon, min_lon, key, key]):
            metres = distance_m(lat, lon, row["lat"], row["lon"])
            other = row["street_b"] if row["key_a"] == key else row["street_a"]
            if metres <= within_m and (best is None or metres < best[0]):
                best = (metres, other, row["lat"], row["lon"])
        return best[1:] if best else None

    def crossings_of(self, street_a, street_b):
        """Where the two named streets meet: [(lat, lon), ...]."""
        a, b = sorted((street_key(street_a), street_key(street_b)))
        return [(r["lat"], r["lon"]) for r in self.conn.execute(
            "SELECT lat, lon FROM intersections WHERE key_a = ? AND key_b = ?", [a, b])]


def _number_order(housenumber):
    """'12B' -> (12, '12b'): house numbers in numeric order."""
    digits = re.match(r"\d+", housenumber)
    return (int(digits.group()) if digits else math.inf, housenumber.lower())


def _distance_to_line(lat, lon, points):
    """Metres from (lat, lon) to the polyline [[lat, lon], ...], on a local flat projection (fine within a km)."""
    if len(points) == 1:
        return distance_m(lat, lon, *points[0])
    kx = 111_320.0 * math.cos(math.radians(lat))
    ky = 110_574.0
    best = math.inf
    for (a_lat, a_lon), (b_lat, b_lon) in zip(points, points[1:]):
        ax, ay = (a_lon - lon) * kx, (a_lat - lat) * ky
        bx, by = (b_lon - lon) * kx, (b_lat - lat) * ky
        dx, dy = bx - ax, by - ay
        length = dx * dx + dy * dy
        t = 0.0 if length == 0 else max(0.0, min(1.0, -(ax * dx + ay * dy) / length))
        best = min(best, math.hypot(ax + t * dx, ay + t * dy))
    return best


_local = threading.local()


def open_index(path, key):
    """This thread's AddressIndex on `path`, opened again when the file changed (`key` from files.file_key)."""
    kept = getattr(_local, "indexes", None)
    if kept is None:
        kept = _local.indexes = {}
    held = kept.get(str(path))
    if held and held[0] == key:
        return held[1]
    if held:
        held[1].close()
    index = AddressIndex(path)
    kept[str(path)] = (key, index)
    return index
