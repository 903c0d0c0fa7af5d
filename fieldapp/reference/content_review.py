"""Content review: two sign-offs of each card version, and nothing claimed without both.

This area owns the `content_signoffs` table (m009, m024) and `card_versions`
(m024). A card is "Reviewed" only when the text the app serves now carries two
sign-offs: one by the agency's CIT coordinator and one by its clinical partner,
each given from that person's own account, the role taken from the account and
never typed. A version is the card's hash, the sha256 of the file the app
serves (ours or the agency's override); any edit makes a new version with no
sign-offs, so the card drops back to draft by itself, and the review says
which parts changed since the last sign-off (from each version's part hashes).

Sign-off is refused while the card is `unfilled`, still holds an agency_law
placeholder ("[Your agency: ...]"), or fails `content check`: a sign-off must
never make a blank or unfinished card look fit for a scene. A sign-off from
before m024 (one name a coordinator typed) stays in the log and counts for
neither role.

Who may do what: coordinators and clinical partners see the review pages, sign
off as their own role and export the log; the clinical partner sees nothing else.
"""
import dataclasses
import datetime
import json
import sqlite3

from flask import Blueprint, abort, current_app, flash, redirect, render_template, request, url_for
from flask_login import current_user
from jinja2_fragments.flask import render_block
from markupsafe import Markup

from ..audit import log as audit
from ..clock import now
from ..content import KINDS, SECTION_LABELS, budget_problems, get_library
from ..identity.access import role_required
from ..store.db import get_db, one, write_transaction
from ..web.downloads import csv_response

bp = Blueprint("content_review", __name__, url_prefix="/program")

# The two sign-offs a card version needs, in the order the footer names them.
REVIEWERS = {"coordinator": "CIT coordinator", "clinical_partner": "clinical partner"}
REVIEWED, DRAFT, CHANGED = "reviewed", "draft", "changed since sign-off"
CSV_COLUMNS = ("signed_off_on", "card", "title", "kind", "version", "card_hash", "reviewer", "reviewer_role",
               "counts_as", "recorded_by", "applies_to_current_text")
LEGACY = "neither: a typed name from before each reviewer signed from their own account"


class SignOffRefused(Exception):
    """A sign-off that cannot be recorded; `status` is the HTTP status to answer with."""

    def __init__(self, message, status=409):
        super().__init__(message)
        self.status = status


@dataclasses.dataclass(frozen=True)
class Review:
    """What a card's footer and its review row say about its current text."""

    status: str
    # The sign-offs of the current text: ((role, name, date), ...) in REVIEWERS order.
    signers: tuple = ()
    # Changed since sign-off: the day of the last sign-off of an earlier text, and the parts changed since.
    last_signed_on: str = ""
    changed_parts: tuple = ()

    @property
    def signed_on(self):
        """The day the second sign-off made the card reviewed."""
        return max(date for _, _, date in self.signers) if self.signers else ""

    @property
    def signed_roles(self):
        """The reviewer roles' labels that signed the current text."""
        return [REVIEWERS[role] for role, _, _ in self.signers]

    @property
    def missing(self):
        """The reviewer roles' labels whose sign-off the current text still lacks."""
        have = {role for role, _, _ in self.signers}
        return [label for role, label in REVIEWERS.items() if role not in have]

    def names(self):
        """"Name (CIT coordinator) and Name (clinical partner)", for the footer."""
        return " and ".join(f"{name} ({REVIEWERS[role]})" for role, name, _ in self.signers)


def signing_refusal(topic):
    """Why this card cannot be signed off as it stands, in one sentence, or None."""
    if topic.unfilled:
        return (f"“{topic.title}” is not filled in: your agency writes its own version"
                " (FIELDAPP_CONTENT_DIRS) and that version is signed off, never the blank one.")
    placeholders = topic.placeholders()
    if placeholders:
        more = f" and {len(placeholders) - 1} more" if len(placeholders) > 1 else ""
        return (f"“{topic.title}” still holds an agency line to fill in: {placeholders[0]}{more}."
                " Your agency fills these in by overriding the card, then signs off that version.")
    problems = budget_problems(topic)
    if problems:
        return f"“{topic.title}” fails content check: {problems[0]}. Fix the card, then sign off its new version."
    return None


# ---- Card versions ----


def note_versions(db, library):
    """Give each loaded card's text a version number the first time the app serves it.

    A text that is not the card's latest version gets the next number, with the
    time and its parts' hashes, in one write transaction, so processes starting
    together never give two texts one number.
    """
    latest = {r["slug"]: r["content_hash"] for r in db.query(
        "SELECT slug, content_hash FROM card_versions v WHERE version = (SELECT MAX(version) FROM card_versions"
        " WHERE slug = v.slug)")}
    if all(latest.get(t.slug) == t.digest for t in library.topics.values()):
        return
    with write_transaction(db):
        for topic in library.topics.values():
            row = one(db, "SELECT content_hash, version FROM card_versions WHERE slug = ? ORDER BY version DESC LIMIT 1",
                      [topic.slug])
            if row and row["content_hash"] == topic.digest:
                continue
            db.execute(
                "INSERT INTO card_versions (slug, version, content_hash, sections, seen_at) VALUES (?, ?, ?, ?, ?)",
                [topic.slug, (row["version"] if row else 0) + 1, topic.digest, json.dumps(topic.sections), now()],
            )


@bp.before_app_request
def _note_versions_once():
    """Once a process (and again after a reload), number the texts it serves: "version 3, changed <date>"."""
    if request.blueprint == "health" or request.endpoint == "static":
        return  # answered even while the database is missing or behind (ops/startup.py)
    library = get_library()
    if current_app.extensions.get("fieldapp.card_versions_noted") == library.version:
        return
    try:
        note_versions(get_db(), library)
    except sqlite3.OperationalError as e:  # a busy database: try again on the next request
        current_app.logger.warning("Card versions not noted yet: %s", e)
        return
    current_app.extensions["fieldapp.card_versions_noted"] = library.version


def _versions_by_slug(db):
    """{slug: {content_hash: version row}} for every card version on record."""
    versions = {}
    for row in db.query("SELECT * FROM card_versions ORDER BY version"):
        versions.setdefault(row["slug"], {})[row["content_hash"]] = row  # a text served twice keeps its last number
    return versions


def _day(timestamp):
    return datetime.date.fromtimestamp(timestamp).isoformat()


# ---- Review status ----


SIGNOFFS_SQL = (
    "SELECT s.*, v.sections AS signed_sections FROM content_signoffs s"
    " LEFT JOIN card_versions v ON v.slug = s.slug AND v.version = s.version"
)


def review_of(topic, signoffs):
    """The Review of a card's current text, from its sign-off rows (newest first; typed-name rows count for none)."""
    counted = [s for s in signoffs if s["signer_role"] in REVIEWERS]
    current = {}
    for s in counted:
        if s["content_hash"] == topic.digest:
            current.setdefault(s["signer_role"], s)
    signers = tuple((role, current[role]["reviewer_name"], current[role]["signed_on"]) for role in REVIEWERS if role in current)
    if len(signers) == len(REVIEWERS) and signing_refusal(topic) is None:
        return Review(REVIEWED, signers)
    earlier = next((s for s in counted if s["content_hash"] != topic.digest), None)
    if earlier is None or signers:
        return Review(DRAFT, signers)
    return Review(CHANGED, (), earlier["signed_on"], changed_parts(earlier["signed_sections"], topic.sections))


def changed_parts(signed_sections, sections):
    """The labels of the parts whose hash differs between a signed version and the current one."""
    if not signed_sections:
        return ()
    before = json.loads(signed_sections)
    changed = tuple(label for name, label in SECTION_LABELS.items() if before.get(name) != sections.get(name))
    return changed or ("layout only (spacing or comments)",)


def card_review(db, topic):
    """The Review of one card, for its footer."""
    rows = list(db.query(f"{SIGNOFFS_SQL} WHERE s.slug = ? ORDER BY s.id DESC", [topic.slug]))
    return review_of(topic, rows)


def review_rows(db, library):
    """Every loaded card with its Review, version, history and why it cannot be signed, in the reference's order."""
    grouped = {}
    for row in db.query(f"{SIGNOFFS_SQL} ORDER BY s.id DESC"):
        grouped.setdefault(row["slug"], []).append(row)
    versions = _versions_by_slug(db)
    rows = []
    for _, _, members in library.by_kind():
        for topic in members:
            signoffs = grouped.get(topic.slug, [])
            rows.append({
                "topic": topic, "review": review_of(topic, signoffs), "refusal": signing_refusal(topic),
                "version": versions.get(topic.slug, {}).get(topic.digest), "signoffs": signoffs,
            })
    return rows


def state_version(db):
    """Changes whenever a sign-off is recorded: part of the service worker's version,
    so cached cards are fetched again and their footers stay true."""
    return str(one(db, "SELECT COALESCE(MAX(id), 0) AS n FROM content_signoffs")["n"])


# ---- Signing off ----


def sign_off(db, library, slug, content_hash, signer):
    """Record that `signer` (their row of `users`) read the card's text with hash `content_hash`, today.

    The sign-off counts for the signer's own role. Refused (SignOffRefused,
    nothing written) for an unknown card, a signer who is not a coordinator or
    clinical partner, a hash that is not the card's current text, a card that
    cannot be signed off (signing_refusal), a role that signed this text
    already, and one person signing for both roles. Returns the new row's id.
    """
    topic = library.get(slug)
    if topic is None:
        raise SignOffRefused("There is no card with that name to sign off.", 404)
    role, signer_id, name = signer["role"], signer["id"], signer["display_name"]
    if role not in REVIEWERS:
        raise SignOffRefused("Only the CIT coordinator and the clinical partner sign cards off.", 403)
    if content_hash != topic.digest:
        raise SignOffRefused(
            f"“{topic.title}” changed since this page was opened. Read the card again, then sign off its current text."
        )
    refusal = signing_refusal(topic)
    if refusal:
        raise SignOffRefused(refusal)
    note_versions(db, library)
    version = one(db, "SELECT version FROM card_versions WHERE slug = ? AND content_hash = ? ORDER BY version DESC"
                      " LIMIT 1", [slug, topic.digest])["version"]
    signed_on = _day(now())
    with write_transaction(db):
        for s in db.query("SELECT * FROM content_signoffs WHERE slug = ? AND content_hash = ? AND signer_role IS NOT NULL",
                          [slug, topic.digest]):
            if s["signer_role"] == role:
                raise SignOffRefused(f"This version of “{topic.title}” already has the {REVIEWERS[role]}'s sign-off"
                                     f" ({s['reviewer_name']}, {s['signed_on']}).")
            if s["signer_id"] == signer_id:
                raise SignOffRefused(f"You signed this version as the {REVIEWERS[s['signer_role']]}: one person"
                                     " cannot give both sign-offs.")
        try:
            cursor = db.execute(
                "INSERT INTO content_signoffs (slug, title, kind, content_hash, reviewer_name, reviewer_role, signed_on,"
                " recorded_at, recorded_by, signer_id, signer_role, version) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                [slug, topic.title, topic.kind, topic.digest, name, REVIEWERS[role], signed_on, now(), signer_id,
                 signer_id, role, version],
            )
        except sqlite3.IntegrityError:  # the same role signed from another tab a moment ago
            raise SignOffRefused(f"This version of “{topic.title}” already has the {REVIEWERS[role]}'s sign-off.")
        audit.record(db, "content_signed_off", slug,
                     f"version {version} as {REVIEWERS[role]} by {name}; card hash {topic.digest[:12]}",
                     actor=(signer_id, signer["username"]))
    return cursor.lastrowid


def history(db, library, slug):
    """Every sign-off of one card, newest first, each with what it counts as and whether it holds for the text now."""
    topic = library.get(slug)
    rows = []
    for s in db.query(f"{SIGNOFFS_SQL} WHERE s.slug = ? ORDER BY s.id DESC", [slug]):
        rows.append({**s, "counts_as": REVIEWERS.get(s["signer_role"]) or LEGACY,
                     "current": topic is not None and topic.digest == s["content_hash"]})
    return rows


def signoff_csv_rows(db, library):
    """The whole sign-off log, oldest first, with what each counts as and whether it still applies."""
    rows = db.query(
        "SELECT s.*, COALESCE(u.username, '') AS recorded_by_name FROM content_signoffs s"
        " LEFT JOIN users u ON u.id = s.recorded_by ORDER BY s.id"
    )
    for r in rows:
        topic = library.get(r["slug"])
        applies = "card removed" if topic is None else ("yes" if topic.digest == r["content_hash"] else "no: card changed")
        yield [r["signed_on"], r["slug"], r["title"], r["kind"], r["version"] or "", r["content_hash"],
               r["reviewer_name"], r["reviewer_role"], REVIEWERS.get(r["signer_role"]) or LEGACY,
               r["recorded_by_name"], applies]


def export_signoffs(db, library):
    """The sign-off log's CSV rows, with the export recorded in the audit log."""
    rows = list(signoff_csv_rows(db, library))
    audit.record(db, "content_review_exported", "content", f"{len(rows)} rows")
    return rows


def card_versions(db, slug):
    """Every version of a card, newest first, each with the parts it changed since the one before."""
    versions = list(db.query("SELECT * FROM card_versions WHERE slug = ? ORDER BY version DESC", [slug]))
    for older, newer in zip(versions[1:], versions):
        newer["changed"] = changed_parts(older["sections"], json.loads(newer["sections"]))
    return versions


# ---- Routes ----


def _card_page(topic, message=None, status=200):
    """One card as officers see it, with its versions, its sign-offs and the signer's form."""
    db = get_db()
    library = get_library()
    note_versions(db, library)
    review = card_review(db, topic)
    card = Markup(render_block(
        "reference/topic.html", "card", topic=topic, related=[], kinds=KINDS, review=review,
    ))
    versions = card_versions(db, topic.slug)
    signoffs = history(db, library, topic.slug)
    # This signer's sign-off is given already: their role signed this text, or they did in another role.
    given = next((s for s in signoffs if s["current"] and s["signer_role"]
                  and (s["signer_role"] == current_user.role or s["signer_id"] == current_user.id)), None)
    return render_template(
        "program/content_review_card.html", topic=topic, card=card, review=review, error=message,
        refusal=signing_refusal(topic), history=signoffs, versions=versions,
        version=next((v for v in versions if v["content_hash"] == topic.digest), None),
        reviewers=REVIEWERS, my_role=REVIEWERS.get(current_user.role), given=given, day=_day,
        related=[library.get(s) for s in topic.related if library.get(s)],
    ), status


@bp.route("/content-review")
@role_required(*REVIEWERS)
def index():
    """Every card with its version, its review status and what it still needs."""
    db = get_db()
    library = get_library()
    note_versions(db, library)
    return render_template("program/content_review.html", rows=review_rows(db, library), kinds=KINDS,
                           reviewers=REVIEWERS, my_role=REVIEWERS.get(current_user.role), day=_day)


@bp.route("/content-review/<slug>")
@role_required(*REVIEWERS)
def card(slug):
    """One card to read and sign off, with its versions and its sign-off history."""
    topic = get_library().get(slug)
    if topic is None:
        abort(404, description="There is no card with that name.")
    return _card_page(topic)


@bp.route("/content-review/<slug>", methods=["POST"])
@role_required(*REVIEWERS)
def sign_off_card(slug):
    """Sign off one card's current text as the signed-in coordinator or clinical partner."""
    library = get_library()
    try:
        sign_off(get_db(), library, slug, request.form.get("content_hash", ""), current_user.row)
    except SignOffRefused as e:
        if e.status == 404:
            abort(404, description=str(e))
        return _card_page(library.get(slug), str(e), e.status)
    flash(f"Signed off as the {REVIEWERS[current_user.role]}: {library.get(slug).title}.")
    return redirect(url_for("content_review.card", slug=slug), 303)


@bp.route("/content-review.csv")
@role_required(*REVIEWERS)
def export():
    """The sign-off log as CSV, for the steering committee."""
    rows = export_signoffs(get_db(), get_library())
    today = datetime.date.fromtimestamp(now()).isoformat()
    return csv_response(f"content-signoffs-{today}.csv", CSV_COLUMNS, rows)
