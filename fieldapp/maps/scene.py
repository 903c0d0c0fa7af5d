"""What a page about a scene shows from the map: its street address, the map, the way there and how long."""
from flask import request

from .navigation import eta_estimate, navigate_link
from .places import describe_place
from .views import map_frame


def scene_view(lat, lon, you=None, label=""):
    """For a scene at (lat, lon) seen by someone at `you` ((lat, lon) or None): {'place', 'navigate', 'eta',
    'frame'}, each None when not known; {} when the scene has no point yet."""
    if lat is None or lon is None:
        return {}
    if you and (you[0] is None or you[1] is None):
        you = None
    place = describe_place(lat, lon)
    frame = map_frame(lat, lon, you=you, label=place or label)
    return {
        "place": place,
        "navigate": navigate_link(request.headers.get("User-Agent", ""), lat, lon, place or label),
        "eta": eta_estimate(you[0], you[1], lat, lon) if you else None,
        # Small, so the address and Navigate stay on a phone's first screen.
        "frame": dict(frame, small=True) if frame else None,
    }
