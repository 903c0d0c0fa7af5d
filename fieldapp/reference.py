"""The field reference: recognition checklists, de-escalation prompts, resources."""
from flask import Blueprint, abort, render_template, request
from flask_login import login_required

from .content import KINDS, get_library
from .program.content_review import card_review
from .db import get_db
from .htmx import page_or_block

bp = Blueprint("reference", __name__, url_prefix="/reference")

MAX_QUERY = 100

# A topic whose fields are tokens: _card_link.html rendered with it is the card link's
# markup for the service worker and app.js to fill in, so that markup exists once.
CARD_LINK_TOKENS = {"slug": "__slug__", "title": "__title__", "summary": "__summary__", "kind": "__kind__"}


def card_link_template():
    """The card link's markup with a token (`__title__`…) in place of each of a topic's fields."""
    return render_template("reference/_card_link.html", t=CARD_LINK_TOKENS)


@bp.before_request
@login_required
def _signed_in_only():
    """Every reference page needs a signed-in user."""


@bp.route("")
def index():
    """Every topic, grouped by kind."""
    return render_template("reference/index.html", groups=get_library().by_kind())


@bp.route("/search")
def search():
    """Full-text search over titles, summaries and card text."""
    query = request.args.get("q", "")
    if len(query) > MAX_QUERY:
        abort(400, description=f"A search is at most {MAX_QUERY} characters.")
    if "\x00" in query:
        abort(400, description="The search contains a character that cannot be searched.")
    results = get_library().search(query) if query.strip() else []
    return page_or_block("reference/search.html", "results", query=query, results=results, kinds=KINDS)


@bp.route("/titles.json")
def titles():
    """Every topic's title and URL: the service worker searches this offline."""
    return {
        "topics": [
            {"slug": t.slug, "title": t.title, "kind": KINDS[t.kind], "kind_key": t.kind, "summary": t.summary}
            for _, _, members in get_library().by_kind()
            for t in members
        ]
    }


@bp.route("/<slug>")
def topic(slug):
    """One topic's page."""
    found = get_library().get(slug)
    if found is None:
        abort(404, description="There is no reference topic at this address.")
    related = [get_library().get(s) for s in found.related]
    review_status, signoff = card_review(get_db(), found)
    return render_template(
        "reference/topic.html", topic=found, related=related, kinds=KINDS, review_status=review_status, signoff=signoff,
    )
