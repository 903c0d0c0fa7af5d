"""The home screen each role lands on after signing in."""
from flask import Blueprint, render_template
from flask_login import login_required

from flask_login import current_user

from .cit_requests import STATE_LABELS
from .content import get_library
from .db import get_db
from .request_pages import open_request_of

bp = Blueprint("home", __name__)


@bp.route("/")
@login_required
def index():
    """The officer's home: the request button, pinned topics, recent topics and search."""
    return render_template(
        "home.html",
        pinned=get_library().pinned(),
        open_request=open_request_of(get_db(), current_user.id),
        request_labels=STATE_LABELS,
    )
