"""The home screen each role lands on after signing in."""
from flask import Blueprint, redirect, render_template, request, url_for
from flask_login import current_user, login_required

from .domain import STATE_LABELS, open_request_of
from ..content import get_library
from ..store.db import get_db
from ..reference.pages import CARD_LINK_TOKENS

bp = Blueprint("home", __name__)


def render_home(**extra):
    """The home page for the signed-in user; `extra` carries a form error and what was typed."""
    return render_template(
        "home.html",
        pinned=get_library().pinned(),
        open_request=open_request_of(get_db(), current_user.id),
        request_labels=STATE_LABELS,
        card_link_tokens=CARD_LINK_TOKENS,
        **extra,
    )


@bp.route("/")
@login_required
def index():
    """The officer's home: the request button, pinned topics, recent topics and search."""
    if current_user.role == "dispatcher":
        return redirect(url_for("dispatch.index"))  # a dispatcher asks for CIT for a call, not for themself
    if current_user.role == "clinical_partner":
        return redirect(url_for("content_review.index"))  # they review the cards, and open nothing else
    if request.args.get("after_queue"):
        # Back online from a saved copy of a page: the service worker may have sent the queued
        # request already (Background Sync), so the officer goes straight to it.
        waiting = open_request_of(get_db(), current_user.id)
        if waiting:
            return redirect(url_for("requests.page", request_id=waiting["id"]))
    return render_home()
