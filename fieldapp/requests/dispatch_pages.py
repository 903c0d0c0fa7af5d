"""The dispatcher's console: ask for CIT from the 911 call, and attach the patrol officer later.

Thin routes: the call is checked by `requests.forms` (as the officer's button
and the API are) and sent by `requests.dispatch`; the attach
goes through the state machine like every other action.
"""
from flask import Blueprint, redirect, render_template, request, url_for
from flask_login import current_user

from ..identity.access import role_required
from ..store.db import get_db
from .dispatch import create_dispatch_request, districts
from .forms import RequestRefused, check_new_request

bp = Blueprint("dispatch", __name__, url_prefix="/dispatch")


def _page(status=200, **more):
    return render_template("dispatch/index.html", districts=districts(get_db()), **more), status


@bp.get("")
@role_required("dispatcher")
def index():
    """The Dispatch page: the form for a CIT request from a 911 call."""
    return _page()


@bp.post("")
@role_required("dispatcher")
def create():
    """Send the call out; the dispatcher lands on the request's live page."""
    db = get_db()
    try:
        call = check_new_request(db, request.form, "dispatch")
    except RequestRefused as e:
        return _page(e.status, error=str(e), form=request.form)
    # The form's one-time id makes a double click one request.
    request_id, _ = create_dispatch_request(db, current_user.id, call, call["client_id"])
    return redirect(url_for("requests.page", request_id=request_id), 303)
