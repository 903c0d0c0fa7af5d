"""Requests: ask, alert, accept, track — from one tap to a resolved scene.

`domain` holds the state machine and what the request page shows, `escalation`
asking and widening the ask, `selection` who is alerted, `receipts` whether
the alert reached each phone, `backup_channel` a specialist's own backup channel
when none confirmed, `timeline` the request's history, and `pages` the routes.
"""
from flask import Blueprint

from ..geo import human_distance

bp = Blueprint("requests", __name__, url_prefix="/requests")
# The request page writes distances ("1.2 km") in the template.
bp.add_app_template_global(human_distance)



@bp.record_once
def _config_defaults(state):
    from .encounter import init_app

    init_app(state.app)


from . import pages  # noqa: E402,F401  (registers the routes on bp)
