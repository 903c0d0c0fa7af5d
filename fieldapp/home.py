"""The home screen each role lands on after signing in."""
from flask import Blueprint, render_template
from flask_login import login_required

from .content import get_library

bp = Blueprint("home", __name__)


@bp.route("/")
@login_required
def index():
    """The officer's home: the request button, pinned topics, recent topics and search."""
    return render_template("home.html", pinned=get_library().pinned())
