"""Content review: a card reads "Reviewed" only when its current text carries both sign-offs, each from its signer's own account."""
import csv
import gzip
import io
import re
import sqlite3
from pathlib import Path

import pytest

from fieldapp import create_app
from fieldapp.content import get_library
from tests.helpers import PASSWORD, add_user, signed_in

FIXTURES = Path(__file__).parent / "content_fixtures"
DRAFT = "Draft: not yet reviewed by your agency's CIT coordinator and clinical partner."
REVIEWED = "Reviewed 2026-05-28 by Sgt. B. Okafor (CIT coordinator) and Dr. A. Rivera (clinical partner)."


@pytest.fixture
def coordinator(make_user, login):
    make_user("coord.ruiz", "coordinator", display_name="Sgt. B. Okafor")
    return login("coord.ruiz")


@pytest.fixture
def partner(make_user, login):
    """The agency's clinical partner, signed in on their own account."""
    make_user("dr.rivera", "clinical_partner", display_name="Dr. A. Rivera")
    return login("dr.rivera")


def card_hash(app, slug):
    with app.app_context():
        return get_library().get(slug).digest


def sign(client, app, slug="calm-voice", **form):
    return client.post(f"/program/content-review/{slug}", data={"content_hash": card_hash(app, slug), **form})


def row_status(html, slug):
    return re.search(rf'id="card-{slug}" data-slug="{slug}" data-status="([^"]+)"', html).group(1)


def footer(client, slug="calm-voice"):
    html = client.get(f"/reference/{slug}").get_data(as_text=True)
    return re.search(r"<p data-review[^>]*>(.*?)</p>", html, re.S).group(1).split()


def says(words, sentence):
    return " ".join(words).find(sentence) >= 0


def signoff_count(db):
    return db.execute("SELECT COUNT(*) FROM content_signoffs").fetchone()[0]


def restarted(app_config, username):
    """The app started again on the same database (content is read at start-up, as after a deploy), signed in as `username`."""
    app = create_app(app_config)
    return app, signed_in(app, username)


def test_on_a_new_install_every_card_is_a_draft_at_version_1(app, coordinator, officer, client):
    page = coordinator.get("/program/content-review").get_data(as_text=True)
    with app.app_context():
        topics = list(get_library().topics.values())
    for topic in topics:
        assert row_status(page, topic.slug) == "draft"
        assert topic.digest[:12] not in page  # a version number and a date, never a hash
        card = client.get(f"/reference/{topic.slug}").get_data(as_text=True)
        assert DRAFT in card and "Reviewed" not in card
    assert page.count("version 1, first served 2026-05-28") == len(topics)


def test_the_program_tabs_lead_coordinators_to_content_review(coordinator):
    html = coordinator.get("/program/roster").get_data(as_text=True)
    assert 'href="/program/content-review"' in html


def test_a_clinical_partner_lands_on_content_review_and_opens_nothing_else(partner):
    home = partner.get("/")
    assert home.status_code == 302 and home.headers["Location"] == "/program/content-review"
    page = partner.get("/program/content-review").get_data(as_text=True)
    assert "You sign as the <strong>clinical partner</strong>" in page
    assert 'href="/reference"' not in page and 'href="/program/roster"' not in page
    for path in ("/reference", "/reference/calm-voice", "/reference/search?q=voice", "/program/reports", "/audit"):
        assert partner.get(path).status_code == 403, path
    assert partner.get("/precache.json").get_json()["urls"] == []  # nothing of the reference kept on their device


def test_the_review_page_shows_the_card_as_officers_see_it(app, partner):
    page = partner.get("/program/content-review/psychosis").get_data(as_text=True)
    assert '<article class="topic kind-checklist" data-topic="psychosis"' in page
    assert '<details class="more-signs"><summary>More signs</summary>' in page
    assert "Sign off version 1 as the clinical partner" in page
    assert 'href="/program/content-review/suicide-risk"' in page  # related cards open in the review, not the reference


def test_one_sign_off_leaves_the_card_a_draft(agency_dir, app, coordinator, officer, client, db):
    assert sign(coordinator, app).status_code == 303
    words = footer(client)
    assert says(words, DRAFT) and says(words, "Signed off so far by the CIT coordinator only.")
    assert "Reviewed" not in words
    assert row_status(coordinator.get("/program/content-review").get_data(as_text=True), "calm-voice") == "draft"
    [row] = db.execute("SELECT reviewer_name, reviewer_role, signer_role, version, signed_on FROM content_signoffs").fetchall()
    assert row == ("Sgt. B. Okafor", "CIT coordinator", "coordinator", 1, "2026-05-28")


def test_both_sign_offs_make_the_card_reviewed_and_name_both(agency_dir, app, coordinator, partner, officer, client):
    sign(partner, app)
    assert "Reviewed" not in footer(client)
    sign(coordinator, app)
    assert says(footer(client), REVIEWED)
    assert row_status(partner.get("/program/content-review").get_data(as_text=True), "calm-voice") == "reviewed"
    with app.app_context():
        other = next(slug for slug in get_library().topics if slug != "calm-voice")
    assert says(footer(client, other), DRAFT)  # only the card that was signed off says so


def test_the_name_and_role_come_from_the_account_never_from_the_form(agency_dir, app, partner, db):
    sign(partner, app, reviewer_name="Dr. Somebody Else", reviewer_role="CIT coordinator")
    assert db.execute("SELECT reviewer_name, signer_role FROM content_signoffs").fetchall() == [("Dr. A. Rivera", "clinical_partner")]


def test_a_card_read_before_its_sign_offs_shows_each_at_once(agency_dir, app, coordinator, partner, officer, client):
    # The card is rendered once and kept: the officer's first read fills the keep.
    assert says(footer(client), DRAFT)
    sign(coordinator, app)
    assert says(footer(client), "Signed off so far by the CIT coordinator only.")
    sign(partner, app)
    card = client.get("/reference/calm-voice", headers={"Accept-Encoding": "gzip"})
    assert REVIEWED in " ".join(gzip.decompress(card.data).decode().split())


def test_an_edit_drops_the_card_to_draft_and_says_which_parts_changed(agency_dir, app, app_config, coordinator, partner, clock, db):
    sign(coordinator, app)
    sign(partner, app)
    card = agency_dir / "calm-voice.md"
    card.write_text(card.read_text().replace("I am here to help.", "I am here to listen."))
    clock.advance(3 * 86400)
    app, coordinator_again = restarted(app_config, "coord.ruiz")
    page = coordinator_again.get("/program/content-review").get_data(as_text=True)
    assert row_status(page, "calm-voice") == "changed since sign-off"
    assert "version 2, changed 2026-05-31" in page and "changed: items." in page
    words = footer(signed_in(app, "coord.ruiz"))
    assert "Reviewed" not in words
    assert says(words, "This text changed after its sign-off of 2026-05-28 (changed: items).")
    # The old sign-offs are kept; both people sign the new text again.
    assert sign(coordinator_again, app).status_code == 303
    assert row_status(coordinator_again.get("/program/content-review").get_data(as_text=True), "calm-voice") == "draft"
    assert sign(signed_in(app, "dr.rivera"), app).status_code == 303
    assert signoff_count(db) == 4
    assert db.execute("SELECT DISTINCT version FROM content_signoffs ORDER BY version").fetchall() == [(1,), (2,)]
    assert row_status(coordinator_again.get("/program/content-review").get_data(as_text=True), "calm-voice") == "reviewed"


def test_the_card_page_keeps_who_signed_which_version_and_when(agency_dir, app, app_config, coordinator, partner, clock):
    sign(coordinator, app)
    card = agency_dir / "calm-voice.md"
    card.write_text(card.read_text().replace("first: \"Anyone hurt?", "first: \"Anyone injured?"))
    clock.advance(86400)
    app, partner_again = restarted(app_config, "dr.rivera")
    sign(partner_again, app)
    page = " ".join(partner_again.get("/program/content-review/calm-voice").get_data(as_text=True).split())
    assert "2026-05-29: Dr. A. Rivera signed version 2 as the clinical partner." in page
    assert "2026-05-28: Sgt. B. Okafor signed version 1 as the CIT coordinator." in page
    assert "Version 2, changed 2026-05-29: changed first step (served now)." in page
    assert "Version 1, first served 2026-05-28." in page


@pytest.mark.parametrize(
    "slug, who, form, status, message",
    [
        ("no-such-card", "partner", {}, 404, "There is no card with that name to sign off."),
        ("psychosis", "partner", {"content_hash": "0" * 64}, 409, "changed since this page was opened"),
        ("psychosis", "partner", {"content_hash": None}, 409, "changed since this page was opened"),
        ("emergency-evaluation", "partner", {}, 409, "is not filled in: your agency writes its own version"),
        ("who-to-call", "coordinator", {}, 409, "still holds an agency line to fill in: [Your agency: the on-call clinician&#39;s number]"),
        ("thirteen-things", "coordinator", {}, 409, "fails content check: 13 checklist items is over the budget of 12"),
        ("psychosis", "officer", {}, 403, "Your role does not give access to this page."),
    ],
)
def test_a_sign_off_that_cannot_be_given_is_refused_plainly_and_changes_nothing(
        app_config, make_user, db, slug, who, form, status, message):
    app_config["CONTENT_DIRS"] = ":".join(str(FIXTURES / case) for case in ("unfilled", "placeholder_left", "too_many_items"))
    app = create_app(app_config)
    make_user("someone", {"partner": "clinical_partner"}.get(who, who))
    client = signed_in(app, "someone")
    data = {"content_hash": card_hash(app, slug) if slug != "no-such-card" else "x", **form}
    response = client.post(f"/program/content-review/{slug}", data={k: v for k, v in data.items() if v is not None})
    assert response.status_code == status
    assert message in response.get_data(as_text=True)
    assert signoff_count(db) == 0
    assert db.execute("SELECT COUNT(*) FROM audit_log WHERE action = 'content_signed_off'").fetchone()[0] == 0


def test_a_card_that_cannot_be_signed_says_why_on_its_review_page_and_shows_no_form(app_config, make_user):
    app_config["CONTENT_DIRS"] = str(FIXTURES / "unfilled")
    app = create_app(app_config)
    make_user("coord.ruiz", "coordinator")
    client = signed_in(app, "coord.ruiz")
    page = client.get("/program/content-review/emergency-evaluation").get_data(as_text=True)
    assert "data-refusal" in page and "is not filled in" in page and 'name="content_hash"' not in page
    assert "Cannot be signed off" in client.get("/program/content-review").get_data(as_text=True)


def test_each_role_signs_a_version_once_and_one_person_never_signs_for_both(agency_dir, app, coordinator, partner, db, make_user):
    sign(coordinator, app)
    make_user("coord.two", "coordinator")
    second = sign(signed_in(app, "coord.two"), app)
    assert second.status_code == 409
    assert "already has the CIT coordinator&#39;s sign-off (Sgt. B. Okafor, 2026-05-28)" in second.get_data(as_text=True)
    # The coordinator's account made a clinical partner's cannot give the second sign-off.
    db.execute("UPDATE users SET role = 'clinical_partner' WHERE username = 'coord.ruiz'")
    refused = sign(signed_in(app, "coord.ruiz"), app)
    assert refused.status_code == 409 and "one person cannot give both sign-offs" in refused.get_data(as_text=True)
    assert signoff_count(db) == 1


def test_sign_offs_are_audited_and_exported_for_the_steering_committee(agency_dir, app, coordinator, partner, db):
    sign(partner, app)
    [(actor, subject, detail)] = db.execute(
        "SELECT actor_name, subject, detail FROM audit_log WHERE action = 'content_signed_off'").fetchall()
    assert (actor, subject) == ("dr.rivera", "calm-voice")
    assert detail.startswith("version 1 as clinical partner by Dr. A. Rivera; card hash ")
    response = partner.get("/program/content-review.csv")
    assert response.status_code == 200 and response.mimetype == "text/csv"
    rows = list(csv.reader(io.StringIO(response.get_data(as_text=True).lstrip("\ufeff"))))
    assert rows[0] == ["signed_off_on", "card", "title", "kind", "version", "card_hash", "reviewer", "reviewer_role",
                       "counts_as", "recorded_by", "applies_to_current_text"]
    assert rows[1] == ["2026-05-28", "calm-voice", "Calm voice", "prompt", "1", card_hash(app, "calm-voice"),
                       "Dr. A. Rivera", "clinical partner", "clinical partner", "dr.rivera", "yes"]
    assert db.execute("SELECT COUNT(*) FROM audit_log WHERE action = 'content_review_exported'").fetchone()[0] == 1


def test_the_export_says_when_a_sign_off_no_longer_applies(agency_dir, app, app_config, coordinator):
    sign(coordinator, app)
    (agency_dir / "calm-voice.md").write_text((agency_dir / "calm-voice.md").read_text() + "\nOne more line.\n")
    _, coordinator_again = restarted(app_config, "coord.ruiz")
    rows = list(csv.reader(io.StringIO(coordinator_again.get("/program/content-review.csv").get_data(as_text=True))))
    assert rows[1][-1] == "no: card changed"


def test_the_sign_off_log_is_append_only(agency_dir, app, coordinator, db):
    sign(coordinator, app)
    with pytest.raises(sqlite3.IntegrityError, match="append-only"):
        db.execute("UPDATE content_signoffs SET reviewer_name = 'someone else'")
    with pytest.raises(sqlite3.IntegrityError, match="append-only"):
        db.execute("DELETE FROM content_signoffs")


def test_a_sign_off_ships_a_new_service_worker_so_cached_cards_update(agency_dir, app, coordinator, client):
    version = re.compile(r'const VERSION = "([0-9a-f]+)"')
    before = version.search(client.get("/sw.js").get_data(as_text=True)).group(1)
    sign(coordinator, app)
    after = version.search(client.get("/sw.js").get_data(as_text=True)).group(1)
    assert before != after


def test_a_typed_name_sign_off_from_before_the_upgrade_counts_as_neither(tmp_path, app_config):
    """An older database's sign-offs (one name a coordinator typed) stay in the history and sign nothing off."""
    from fieldapp.content import load_topics
    from fieldapp.store.db import connect, migrate
    from fieldapp.store.migrations import migrations

    digest = load_topics([Path(__file__).parent.parent / "content"])["psychosis"].digest
    old = connect(tmp_path / "old.db")
    migrations.apply(old, stop_before=["m024_content_review_by_two"])  # the migrations freeze their own role lists
    for name, role in (("Sgt. B. Okafor", "CIT coordinator"), ("Dr. A. Rivera", "clinical partner")):
        old.execute("INSERT INTO content_signoffs (slug, title, kind, content_hash, reviewer_name, reviewer_role,"
                    " signed_on, recorded_at) VALUES ('psychosis', 'Psychosis', 'checklist', ?, ?, ?, '2026-01-05', 0)",
                    [digest, name, role])
    old.conn.commit()
    with pytest.raises(sqlite3.IntegrityError, match="CHECK"):
        old.execute("INSERT INTO users (username, password_hash, role, display_name, created_at)"
                    " VALUES ('dr.rivera', 'x', 'clinical_partner', 'D', 0)")
    migrate(old)
    app = create_app(dict(app_config, DATABASE=str(tmp_path / "old.db")))
    add_user(app, old, "dr.rivera", "clinical_partner")  # the upgraded users table takes the new role
    add_user(app, old, "ofc.kim", "officer")
    assert old.execute("SELECT COUNT(*) FROM users WHERE username = 'DR.RIVERA'").fetchone() == (1,)  # still NOCASE
    words = footer(signed_in(app, "ofc.kim"), "psychosis")
    assert "Reviewed" not in words and says(words, DRAFT)
    page = " ".join(signed_in(app, "dr.rivera").get("/program/content-review/psychosis").get_data(as_text=True).split())
    assert page.count("counts as neither sign-off") == 2
    assert "2026-01-05: Dr. A. Rivera signed this text." in page
    assert "Sign off version 1 as the clinical partner" in page
    old.close()


def test_users_create_makes_a_clinical_partner(app, db):
    password = Path(app.instance_path) / "pw.txt"
    password.write_text(PASSWORD)
    result = app.test_cli_runner().invoke(
        args=["users", "create", "dr.rivera", "--role", "clinical_partner", "--name", "Dr. A. Rivera",
              "--password-file", str(password)])
    assert result.exit_code == 0, result.output
    assert "Created dr.rivera (clinical_partner)." in result.output
    assert db.execute("SELECT role FROM users WHERE username = 'dr.rivera'").fetchone() == ("clinical_partner",)
