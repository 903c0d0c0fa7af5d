"""Handing the scene to the device's own navigation app, and how long the drive is likely to take.

Which link works depends on the device, and a link the device cannot open is
a dead primary button (the UX review of 7 Dec 2026 found `geo:` doing nothing
on iPhones and Windows MDTs). So the link is chosen from the User-Agent.
"""
from urllib.parse import quote

from flask import current_app

from ..geo import distance_m

# Agencies without their own choice: a web map's directions, which opens on any device with a browser.
DEFAULT_NAVIGATE_URL = "https://www.google.com/maps/dir/?api=1&destination={lat},{lon}"


def platform_of(user_agent):
    """'apple', 'android', 'windows' or 'other', from a User-Agent header."""
    ua = user_agent or ""
    if "Android" in ua:
        return "android"
    # iPadOS Safari says "Macintosh" by default; Apple Maps opens on a Mac too.
    if any(word in ua for word in ("iPhone", "iPad", "iPod", "Macintosh")):
        return "apple"
    if "Windows NT" in ua or "Windows Phone" in ua:
        return "windows"
    return "other"


def navigate_link(user_agent, lat, lon, label=""):
    """The Navigate button for this device: {'href', 'app', 'other': [{'href', 'app'}...]}.

    Apple Maps on iPhone, iPad and Mac; Google Maps' turn-by-turn (`google.navigation:`) on Android, with
    `geo:` for any other map app; the Windows Maps app (`bingmaps:`) on Windows; the agency's own map
    URL (MAP_NAVIGATE_URL) elsewhere. The agency's URL is always offered among the others.
    """
    point = f"{lat:.6f},{lon:.6f}"
    template = current_app.config["MAP_NAVIGATE_URL"] or DEFAULT_NAVIGATE_URL
    web = {"href": template.format(lat=f"{lat:.6f}", lon=f"{lon:.6f}", label=quote(label or "")), "app": "Web map"}
    platform = platform_of(user_agent)
    if platform == "apple":
        first = {"href": f"https://maps.apple.com/?daddr={point}&dirflg=d", "app": "Apple Maps"}
    elif platform == "android":
        first = {"href": f"google.navigation:q={point}&mode=d", "app": "Google Maps"}
        geo = f"geo:{point}?q={point}" + (f"({quote(label)})" if label else "")
        return dict(first, other=[{"href": geo, "app": "Other map app"}, web])
    elif platform == "windows":
        first = {"href": f"bingmaps:?rtp=~pos.{lat:.6f}_{lon:.6f}&mode=d", "app": "Windows Maps"}
    else:
        return dict(web, other=[])
    return dict(first, other=[web])


def eta_estimate(from_lat, from_lon, to_lat, to_lon):
    """How far by road and how long, estimated: {'metres', 'minutes', 'text', 'how'}.

    Straight line times MAP_DETOUR_FACTOR at MAP_SPEED_KMH. Routing on the imported roads would be
    closer, but a shortest path over a county's roads costs tens of milliseconds in Python on every
    page view; the estimate is instant and says it is one.
    """
    factor = float(current_app.config["MAP_DETOUR_FACTOR"])
    speed = float(current_app.config["MAP_SPEED_KMH"])
    metres = distance_m(from_lat, from_lon, to_lat, to_lon) * factor
    minutes = metres / (speed * 1000 / 60)
    shown = "under 1 min" if minutes < 1 else f"about {round(minutes):.0f} min"
    distance = f"{metres:.0f} m" if metres < 1000 else f"{metres / 1000:.1f} km"
    return {"metres": metres, "minutes": minutes, "text": f"{shown} ({distance} by road, estimated)",
            "how": f"straight line × {factor:g} at {speed:g} km/h"}
