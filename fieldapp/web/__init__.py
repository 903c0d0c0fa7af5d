"""The web machinery every page stands on: security headers and CSRF, offline copies and safe
redirects, hashed static URLs, the one door to htmx, error pages, template filters and CSV downloads.

Owns no table and imports no area.
"""
