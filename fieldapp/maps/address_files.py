"""Reading an agency's own address points: NENA NG9-1-1 Site/Structure Address Points as GeoJSON
(NENA-STA-006, the GIS Data Model), and OpenAddresses CSV. Each yields (address, lat, lon)."""
import csv
import json
import math

# NENA's address number and street name parts, in the order they are written.
NENA_NUMBER = ("AddNum_Pre", "Add_Number", "AddNum_Suf")
NENA_STREET = ("St_PreMod", "St_PreDir", "St_PreTyp", "St_PreSep", "St_Name", "St_PosTyp", "St_PosDir", "St_PosMod")
NENA_UNIT = ("Building", "Floor", "Unit", "Room", "Seat")
OPENADDRESSES_COLUMNS = {"LON", "LAT", "NUMBER", "STREET"}


def read_points(path, kind=None):
    """Yield (address, lat, lon) from an address file; `kind` is 'nena' or 'openaddresses', or found from the name.
    Raises ValueError with what is wrong with the file."""
    kind = kind or ("openaddresses" if path.suffix.lower() == ".csv" else "nena")
    if kind == "openaddresses":
        return _openaddresses(path)
    if kind == "nena":
        return _nena(path)
    raise ValueError(f"unknown address file kind {kind!r}")


def _checked(lat, lon, where):
    try:
        lat, lon = float(lat), float(lon)
    except (TypeError, ValueError):
        raise ValueError(f"{where}: the coordinates are not numbers") from None
    if not (math.isfinite(lat) and math.isfinite(lon) and -90 <= lat <= 90 and -180 <= lon <= 180):
        raise ValueError(f"{where}: ({lat}, {lon}) is not a longitude and latitude; "
                         "export the points in WGS 84 (EPSG:4326), as GeoJSON requires")
    return lat, lon


def _joined(fields, names):
    return " ".join(str(fields[n]).strip() for n in names if fields.get(n) not in (None, "") and str(fields[n]).strip())


def _nena(path):
    try:
        with open(path, encoding="utf-8-sig") as f:
            data = json.load(f)
    except (UnicodeDecodeError, json.JSONDecodeError) as error:
        raise ValueError(f"not GeoJSON ({error})") from None
    if not isinstance(data, dict) or data.get("type") != "FeatureCollection":
        raise ValueError("not a GeoJSON FeatureCollection")
    for number, feature in enumerate(data.get("features") or [], 1):
        geometry = (feature or {}).get("geometry") or {}
        # Field names vary in case between exports: match them without it.
        props = {k.lower(): v for k, v in ((feature or {}).get("properties") or {}).items()}
        fields = {name: props.get(name.lower()) for name in (*NENA_NUMBER, *NENA_STREET, *NENA_UNIT,
                                                             "Post_Comm", "Inc_Muni", "Post_Code")}
        housenumber = _joined(fields, NENA_NUMBER)
        if str(fields["AddNum_Suf"] or "").strip().isalpha() and len(str(fields["AddNum_Suf"]).strip()) == 1:
            housenumber = housenumber[:-2] + housenumber[-1]  # "20 B" is written "20B"
        street = _joined(fields, NENA_STREET)
        if not housenumber or not street:
            continue  # a landmark or mile post without a number and street: not an address point here
        coordinates = geometry.get("coordinates")
        if geometry.get("type") == "MultiPoint" and coordinates:
            coordinates = coordinates[0]
        if geometry.get("type") not in ("Point", "MultiPoint") or not coordinates or len(coordinates) < 2:
            raise ValueError(f"feature {number} is not a point")
        lat, lon = _checked(coordinates[1], coordinates[0], f"feature {number}")
        yield {
            "housenumber": housenumber, "street": street, "unit": _joined(fields, NENA_UNIT),
            "city": str(fields["Post_Comm"] or fields["Inc_Muni"] or "").strip(),
            "postcode": str(fields["Post_Code"] or "").strip(),
        }, lat, lon


def _openaddresses(path):
    try:
        with open(path, newline="", encoding="utf-8-sig") as f:
            reader = csv.DictReader(f)
            columns = {c.upper() for c in (reader.fieldnames or [])}
            if not OPENADDRESSES_COLUMNS <= columns:
                raise ValueError(f"not an OpenAddresses CSV: it needs the columns {', '.join(sorted(OPENADDRESSES_COLUMNS))}")
            for line, row in enumerate(reader, 2):
                row = {(k or "").upper(): (v or "").strip() for k, v in row.items()}
                if not row["NUMBER"] or not row["STREET"]:
                    continue
                lat, lon = _checked(row["LAT"], row["LON"], f"line {line}")
                yield {"housenumber": row["NUMBER"], "street": row["STREET"], "unit": row.get("UNIT", ""),
                       "city": row.get("CITY", ""), "postcode": row.get("POSTCODE", "")}, lat, lon
    except UnicodeDecodeError as error:
        raise ValueError(f"not UTF-8 text ({error})") from None
    except csv.Error as error:
        raise ValueError(f"not a readable CSV ({error})") from None
