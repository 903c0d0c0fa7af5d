"""The field reference: recognition checklists, de-escalation prompts, resources."""
from flask import Blueprint, abort, current_app, render_template, request
from flask_login import current_user, login_required
from jinja2_fragments.flask import render_block
from markupsafe import Markup

from ..content import KINDS, get_library
from ..identity.accounts import AT_WORK
from .content_review import card_review
from ..store.db import get_db
from ..web.gzip_parts import KeptPart, page_response
from ..web.htmx import page_or_block

bp = Blueprint("reference", __name__, url_prefix="/reference")

MAX_QUERY = 100
# Who reads the reference: everyone at work. A clinical partner reads cards only on the
# content review pages (reference/content_review.py), and a new role reads none until it is added here.
READERS = AT_WORK  # the clinical partner reads cards on the content review pages only

# A topic whose fields are tokens: _card_link.html rendered with it is the card link's
# markup for the service worker and app.js to fill in, so that markup exists once.
CARD_LINK_TOKENS = {"slug": "__slug__", "title": "__title__", "summary": "__summary__", "kind": "__kind__"}


def card_link_template():
    """The card link's markup with a token (`__title__`…) in place of each of a topic's fields."""
    return render_template("reference/_card_link.html", t=CARD_LINK_TOKENS)


@bp.before_request
@login_required
def _signed_in_only():
    """Every reference page needs a signed-in user whose role reads the reference."""
    if not current_user.has_role(*READERS):
        abort(403, description="Your role does not give access to this page.")


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
    card = topic_card(found, card_review(get_db(), found))
    return page_response(render_template("reference/topic.html", topic=found, card=card.html), card)


def topic_card(topic, review):
    """The topic's card (the page's main part) as a KeptPart, rendered and compressed once per process for what it shows.

    The card is the same for every reader, and rendering and compressing it on
    each load was most of a reference page's CPU. It is kept per slug with its
    key, everything the card shows that can move while the process runs: the
    review footer (the Review: status, signers' names and dates, parts changed;
    never a sign-off's id) and the URL prefix its links are built under. So a
    sign-off shows on the next load. The content is loaded once per process; its
    version in the key guards a reload.
    """
    library = get_library()
    key = (library.version, review, request.script_root)
    store = current_app.extensions.setdefault("fieldapp.topic_cards", {})
    hit = store.get(topic.slug)
    if hit is None or hit[0] != key:
        related = [library.get(s) for s in topic.related]
        html = Markup(render_block(
            "reference/topic.html", "card", topic=topic, related=related, kinds=KINDS,
            review=review,
        ))
        hit = store[topic.slug] = (key, KeptPart(html))
    return hit[1]
