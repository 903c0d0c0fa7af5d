"""Content review: the agency's sign-off of each card, and nothing claimed without one.

This area owns the `content_signoffs` table (schema.m009_content_signoff). A
coordinator records that a named reviewer (the CIT coordinator, the clinical
partner) read a card; the sign-off names the card's hash, the sha256 of the
file the app serves (ours or the agency's override). Status is never stored:
it is worked out by comparing that hash with the card as loaded now, so a card
whose text changes after its sign-off goes back to "changed since sign-off" by
itself, and its footer to "Draft".

Who may do what: only coordinators see the review page, sign off and export the log.
"""
import datetime

from flask import Blueprint, abort, flash, redirect, render_template, request, url_for
from flask_login import current_user

from ..audit import log as audit
from ..identity.access import role_required
from ..clock import now
from ..content import KINDS, get_library
from ..store.db import get_db, one, write_transaction
from ..web.downloads import csv_response

bp = Blueprint("content_review", __name__, url_prefix="/program")

DRAFT, SIGNED_OFF, CHANGED = "draft", "signed off", "changed since sign-off"
MAX_NAME = 100
MAX_ROLE = 100
CSV_COLUMNS = ("signed_off_on", "card", "title", "kind", "card_hash", "reviewer", "reviewer_role",
               "recorded_by", "applies_to_current_text")


class SignOffRefused(Exception):
    """A sign-off that cannot be recorded; `status` is the HTTP status to answer with."""

    def __init__(self, message, status=400):
        super().__init__(message)
        self.status = status


def _signoffs_by_slug(db):
    """Every sign-off, newest first, grouped by card."""
    grouped = {}
    for row in db.query("SELECT * FROM content_signoffs ORDER BY id DESC"):
        grouped.setdefault(row["slug"], []).append(row)
    return grouped


def review_of(topic, signoffs):
    """(status, sign-off): the newest sign-off of the card's current text, else its newest one, else None."""
    current = next((s for s in signoffs if s["content_hash"] == topic.digest), None)
    if current:
        return SIGNED_OFF, current
    if signoffs:
        return CHANGED, signoffs[0]
    return DRAFT, None


def card_review(db, topic):
    """(status, sign-off) of one card, for its footer."""
    rows = list(db.query("SELECT * FROM content_signoffs WHERE slug = ? ORDER BY id DESC", [topic.slug]))
    return review_of(topic, rows)


def review_rows(db, library):
    """Every loaded card with its kind, hash and review status, in the reference's order."""
    grouped = _signoffs_by_slug(db)
    rows = []
    for _, _, members in library.by_kind():
        for topic in members:
            status, signoff = review_of(topic, grouped.get(topic.slug, []))
            rows.append({"topic": topic, "status": status, "signoff": signoff})
    return rows


def state_version(db):
    """Changes whenever a sign-off is recorded: part of the service worker's version,
    so cached cards are fetched again and their footers stay true."""
    return str(one(db, "SELECT COALESCE(MAX(id), 0) AS n FROM content_signoffs")["n"])


def _clean(value, label, limit):
    text = " ".join((value or "").split())
    if not text:
        raise SignOffRefused(f"Give the reviewer's {label}.")
    if len(text) > limit:
        raise SignOffRefused(f"Keep the reviewer's {label} to {limit} characters or fewer.")
    if any(ord(c) < 32 or ord(c) == 127 for c in text):
        raise SignOffRefused(f"The reviewer's {label} contains a character that cannot be recorded.")
    return text


def sign_off(db, library, slug, content_hash, reviewer_name, reviewer_role):
    """Record that the reviewer read the card's text with hash `content_hash`, today; the new row's id.

    Refused (SignOffRefused, nothing written) for an unknown card, a blank or
    overlong name or role, or a hash that is not the card's current text: the
    reviewer must have read what the app serves now.
    """
    topic = library.get(slug)
    if topic is None:
        raise SignOffRefused("There is no card with that name to sign off.", 404)
    name = _clean(reviewer_name, "name", MAX_NAME)
    role = _clean(reviewer_role, "role", MAX_ROLE)
    if content_hash != topic.digest:
        raise SignOffRefused(
            f"“{topic.title}” changed since this page was opened. Read the card again, then sign off its current text.", 409
        )
    signed_on = datetime.date.fromtimestamp(now()).isoformat()
    with write_transaction(db):
        cursor = db.execute(
            "INSERT INTO content_signoffs (slug, title, kind, content_hash, reviewer_name, reviewer_role, signed_on,"
            " recorded_at, recorded_by) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
            [slug, topic.title, topic.kind, topic.digest, name, role, signed_on, now(),
             current_user.id if current_user and current_user.is_authenticated else None],
        )
        audit.record(db, "content_signed_off", slug, f"{name}, {role}; card hash {topic.digest[:12]}")
    return cursor.lastrowid


def signoff_csv_rows(db, library):
    """The whole sign-off log, oldest first, with whether each still applies to the card as served."""
    rows = db.query(
        "SELECT s.*, COALESCE(u.username, '') AS recorded_by_name FROM content_signoffs s"
        " LEFT JOIN users u ON u.id = s.recorded_by ORDER BY s.id"
    )
    for r in rows:
        topic = library.get(r["slug"])
        applies = "card removed" if topic is None else ("yes" if topic.digest == r["content_hash"] else "no: card changed")
        yield [r["signed_on"], r["slug"], r["title"], r["kind"], r["content_hash"], r["reviewer_name"],
               r["reviewer_role"], r["recorded_by_name"], applies]


def export_signoffs(db, library):
    """The sign-off log's CSV rows, with the export recorded in the audit log."""
    rows = list(signoff_csv_rows(db, library))
    audit.record(db, "content_review_exported", "content", f"{len(rows)} rows")
    return rows


# ---- Routes ----


def _page(message=None, status=200, form=None):
    return render_template(
        "program/content_review.html", rows=review_rows(get_db(), get_library()), kinds=KINDS,
        error=message, form=form or {}, max_name=MAX_NAME, max_role=MAX_ROLE,
    ), status


@bp.route("/content-review")
@role_required("coordinator")
def index():
    """Every card with its kind, hash and review status, and a sign-off form for each."""
    return _page()


@bp.route("/content-review/<slug>", methods=["POST"])
@role_required("coordinator")
def sign_off_card(slug):
    """Record a reviewer's sign-off of one card's current text."""
    form = request.form
    try:
        sign_off(get_db(), get_library(), slug, form.get("content_hash", ""), form.get("reviewer_name"),
                 form.get("reviewer_role"))
    except SignOffRefused as e:
        if e.status == 404:
            abort(404, description=str(e))
        return _page(str(e), e.status, form={"slug": slug, **form})
    flash(f"Signed off: {get_library().get(slug).title}.")
    return redirect(url_for("content_review.index") + f"#card-{slug}", 303)


@bp.route("/content-review.csv")
@role_required("coordinator")
def export():
    """The sign-off log as CSV, for the steering committee."""
    rows = export_signoffs(get_db(), get_library())
    today = datetime.date.fromtimestamp(now()).isoformat()
    return csv_response(f"content-signoffs-{today}.csv", CSV_COLUMNS, rows)
