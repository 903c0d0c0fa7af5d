"""Distances and directions on the Earth's surface, and coordinate checks."""
import math

EARTH_RADIUS_M = 6_371_008.8  # mean radius (IUGG)
COMPASS = ("N", "NE", "E", "SE", "S", "SW", "W", "NW")


def distance_m(lat1, lon1, lat2, lon2):
    """Great-circle (haversine) distance in metres."""
    p1, p2 = math.radians(lat1), math.radians(lat2)
    dp, dl = p2 - p1, math.radians(lon2 - lon1)
    a = math.sin(dp / 2) ** 2 + math.cos(p1) * math.cos(p2) * math.sin(dl / 2) ** 2
    return 2 * EARTH_RADIUS_M * math.asin(min(1.0, math.sqrt(a)))


def bearing_deg(lat1, lon1, lat2, lon2):
    """Initial bearing from the first point to the second, 0–360 degrees."""
    p1, p2 = math.radians(lat1), math.radians(lat2)
    dl = math.radians(lon2 - lon1)
    x = math.sin(dl) * math.cos(p2)
    y = math.cos(p1) * math.sin(p2) - math.sin(p1) * math.cos(p2) * math.cos(dl)
    return (math.degrees(math.atan2(x, y)) + 360) % 360


def compass(bearing):
    """'NE' for 45 degrees, and so on."""
    return COMPASS[int((bearing + 22.5) // 45) % 8]


def bounding_box(lat, lon, radius_m):
    """(min_lat, max_lat, min_lon, max_lon) that contains the circle; a cheap index filter."""
    dlat = math.degrees(radius_m / EARTH_RADIUS_M)
    coslat = max(math.cos(math.radians(lat)), 1e-6)
    dlon = min(180.0, math.degrees(radius_m / (EARTH_RADIUS_M * coslat)))
    return lat - dlat, lat + dlat, lon - dlon, lon + dlon


def human_distance(metres):
    """'350 m' or '1.2 km'."""
    if metres is None:
        return "distance unknown"
    return f"{metres:.0f} m" if metres < 1000 else f"{metres / 1000:.1f} km"


def parse_coordinates(lat, lon, accuracy=None):
    """Validate raw latitude, longitude and accuracy; returns floats or raises ValueError."""
    try:
        lat, lon = float(lat), float(lon)
    # OverflowError: a JSON integer of hundreds of digits is too large for a float.
    except (TypeError, ValueError, OverflowError):
        raise ValueError("Latitude and longitude must be numbers.")
    if not (math.isfinite(lat) and -90 <= lat <= 90):
        raise ValueError("Latitude must be between -90 and 90.")
    if not (math.isfinite(lon) and -180 <= lon <= 180):
        raise ValueError("Longitude must be between -180 and 180.")
    if accuracy in (None, ""):
        return lat, lon, None
    try:
        accuracy = float(accuracy)
    except (TypeError, ValueError, OverflowError):
        raise ValueError("Accuracy must be a number of metres.")
    if not (math.isfinite(accuracy) and 0 <= accuracy <= 100_000):
        raise ValueError("Accuracy must be between 0 and 100000 metres.")
    return lat, lon, accuracy
