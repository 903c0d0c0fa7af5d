"""Our one door to htmx and htmx-flask.

htmx-flask 0.1.0 is frozen: it gives `request.htmx`, and its
`make_response(reswap=...)` rejects valid values (a missing comma joins two of
them), so response headers are set here by hand instead.
"""
from flask import render_template, request
from htmx_flask import Htmx
from jinja2_fragments.flask import render_block

htmx = Htmx()
HTMX_FILE = "vendor/htmx-2.0.11.min.js"


def is_htmx():
    """True for a request htmx made to swap part of a page (not a boosted navigation)."""
    return bool(getattr(request, "htmx", False)) and not request.htmx.boosted


def page_or_block(template, block, **context):
    """Render the whole page, or only `block` of it when htmx asks for a fragment."""
    if is_htmx():
        return render_block(template, block, **context)
    return render_template(template, **context)


def reswap(response, how):
    """Tell htmx how to swap this response (sets HX-Reswap directly)."""
    response.headers["HX-Reswap"] = how
    return response


def init_app(app):
    """Install htmx-flask's request class."""
    htmx.init_app(app)
