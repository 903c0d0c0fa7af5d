"""The coordinators' webhook pages: the endpoints, adding one (its secret shown once), and disabling one.

Thin routes over webhook_endpoints.py.
"""
from flask import Blueprint, redirect, render_template, request, url_for

from ..identity.access import role_required
from ..store.db import get_db
from .webhook_endpoints import EVENT_NAMES, deliveries, disable_endpoint, endpoint, endpoints, register_endpoint

bp = Blueprint("webhooks", __name__, url_prefix="/webhooks")


@bp.route("")
@role_required("coordinator")
def index():
    """The endpoints, and the form to add one."""
    return render_template("webhooks/index.html", endpoints=endpoints(get_db()), events=EVENT_NAMES)


@bp.route("", methods=["POST"])
@role_required("coordinator")
def create():
    """Register an endpoint and show its signing secret, once."""
    db = get_db()
    form = request.form
    try:
        endpoint_id, secret = register_endpoint(db, form.get("url", "").strip(), form.getlist("events"),
                                                bool(form.get("include_notes")))
    except ValueError as e:
        return render_template("webhooks/index.html", endpoints=endpoints(db), events=EVENT_NAMES, error=str(e),
                               form=form), 400
    return render_template("webhooks/endpoint.html", endpoint=endpoint(db, endpoint_id),
                           deliveries=[], secret=secret), 201


@bp.route("/<int:endpoint_id>")
@role_required("coordinator")
def page(endpoint_id):
    """One endpoint and its latest deliveries."""
    db = get_db()
    return render_template("webhooks/endpoint.html", endpoint=endpoint(db, endpoint_id),
                           deliveries=deliveries(db, endpoint_id))


@bp.route("/<int:endpoint_id>/disable", methods=["POST"])
@role_required("coordinator")
def disable(endpoint_id):
    """Stop sending to an endpoint; its history stays."""
    disable_endpoint(get_db(), endpoint_id)
    return redirect(url_for("webhooks.page", endpoint_id=endpoint_id), 303)
