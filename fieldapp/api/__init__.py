"""The JSON API for CAD, version 1, under /api/v1/: keys, requests, and its OpenAPI document.

`keys` owns the `api_keys` table and the `api-keys` command; `routes` holds the
thin routes; `openapi` the OpenAPI 3.1 document the tests hold the routes to.
Bearer keys are the only way in: cookies never authorise the API, so CSRF does
not apply to it.
"""
from flask import Blueprint, request

from ..web.security import csrf

bp = Blueprint("api", __name__, url_prefix="/api/v1")

from . import routes  # noqa: E402,F401  (registers the routes on bp)
from . import limits  # noqa: E402
from .keys import api_keys_cli  # noqa: E402


def _never_stored(response):
    """Every answer under /api/v1/ holds requests' places and states: no cache keeps it (ASVS 8.2.1).

    Only the OpenAPI document, the same for everyone, may be cached. Set for
    every answer under the prefix, errors and unknown paths included.
    """
    if request.path.startswith(bp.url_prefix + "/") and request.endpoint != "api.openapi":
        response.headers["Cache-Control"] = "no-store"
    return response


def init_app(app):
    """The blueprint, CSRF exemption, the answers' caching, the limits and the `api-keys` command."""
    app.register_blueprint(bp)
    csrf.exempt(bp)
    limits.init_app(app)
    app.after_request(_never_stored)
    app.cli.add_command(api_keys_cli)
