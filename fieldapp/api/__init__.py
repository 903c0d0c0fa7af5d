"""The JSON API for CAD, version 1, under /api/v1/: keys, requests, and its OpenAPI document.

`keys` owns the `api_keys` table and the `api-keys` command; `routes` holds the
thin routes; `openapi` the OpenAPI 3.1 document the tests hold the routes to.
Bearer keys are the only way in: cookies never authorise the API, so CSRF does
not apply to it.
"""
from flask import Blueprint

from ..web.security import csrf

bp = Blueprint("api", __name__, url_prefix="/api/v1")

from . import routes  # noqa: E402,F401  (registers the routes on bp)
from .keys import api_keys_cli  # noqa: E402


def init_app(app):
    """The blueprint, CSRF exemption and the `api-keys` command."""
    app.register_blueprint(bp)
    csrf.exempt(bp)
    app.cli.add_command(api_keys_cli)
