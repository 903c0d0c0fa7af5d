"""Content review: no card claims a review that did not happen, and a sign-off holds only for the text it vouched for."""
import csv
import gzip
import io
import re
import sqlite3
from pathlib import Path

import pytest

from fieldapp import create_app
from fieldapp.content import get_library

FIXTURES = Path(__file__).parent / "content_fixtures"
DRAFT = "Draft: not yet reviewed by your agency's CIT coordinator and clinical partner."


@pytest.fixture
def agency_dir(tmp_path, app_config):
    """An agency content folder holding its own version of `calm-voice`, which the test may rewrite."""
    folder = tmp_path / "agency"
    folder.mkdir()
    (folder / "calm-voice.md").write_text((FIXTURES / "good" / "calm-voice.md").read_text())
    app_config["CONTENT_DIRS"] = str(folder)
    return folder


@pytest.fixture
def coordinator(make_user, login):
    make_user("coord.ruiz", "coordinator")
    return login("coord.ruiz")


def card_hash(app, slug):
    with app.app_context():
        return get_library().get(slug).digest


def sign(client, slug, content_hash, name="Dr. A. Rivera", role="clinical partner"):
    return client.post(f"/program/content-review/{slug}",
                       data={"content_hash": content_hash, "reviewer_name": name, "reviewer_role": role})


def row_status(html, slug):
    return re.search(rf'id="card-{slug}" data-slug="{slug}" data-status="([^"]+)"', html).group(1)


def signoff_count(db):
    return db.execute("SELECT COUNT(*) FROM content_signoffs").fetchone()[0]


def test_on_a_new_install_every_card_is_a_draft_and_says_so(app, coordinator, officer, client):
    page = coordinator.get("/program/content-review").get_data(as_text=True)
    with app.app_context():
        topics = list(get_library().topics.values())
    for topic in topics:
        assert row_status(page, topic.slug) == "draft"
        assert f'<code title="{topic.digest}">{topic.digest[:12]}</code>' in page
        card = client.get(f"/reference/{topic.slug}").get_data(as_text=True)
        assert DRAFT in card and "Reviewed" not in card


def test_the_program_tabs_lead_coordinators_to_content_review(coordinator):
    html = coordinator.get("/program/roster").get_data(as_text=True)
    assert 'href="/program/content-review"' in html


def test_a_sign_off_records_who_and_the_hash_and_the_card_says_reviewed(agency_dir, app, app_config, coordinator, officer, client, db, clock):
    digest = card_hash(app, "calm-voice")
    response = sign(coordinator, "calm-voice", digest)
    assert response.status_code == 303
    [row] = db.execute("SELECT slug, content_hash, reviewer_name, reviewer_role, signed_on FROM content_signoffs").fetchall()
    assert row == ("calm-voice", digest, "Dr. A. Rivera", "clinical partner", "2026-05-28")
    assert row_status(coordinator.get("/program/content-review").get_data(as_text=True), "calm-voice") == "signed off"
    card = client.get("/reference/calm-voice").get_data(as_text=True)
    assert "Reviewed 2026-05-28 by Dr. A. Rivera, clinical partner." in card
    assert DRAFT not in card
    # Only the card that was signed off says so.
    with app.app_context():
        other = next(slug for slug in get_library().topics if slug != "calm-voice")
    assert DRAFT in client.get(f"/reference/{other}").get_data(as_text=True)



def test_a_card_read_before_its_sign_off_shows_each_new_sign_off_at_once(agency_dir, app, coordinator, officer, client):
    # The card is rendered once and kept: the officer's first read fills the keep.
    assert DRAFT in client.get("/reference/calm-voice").get_data(as_text=True)
    sign(coordinator, "calm-voice", card_hash(app, "calm-voice"))
    card = client.get("/reference/calm-voice").get_data(as_text=True)
    assert "Reviewed 2026-05-28 by Dr. A. Rivera, clinical partner." in card and DRAFT not in card
    # A later sign-off of the same text names its own reviewer, though the status stays "signed off".
    sign(coordinator, "calm-voice", card_hash(app, "calm-voice"), name="Sgt. B. Okafor", role="CIT coordinator")
    card = client.get("/reference/calm-voice", headers={"Accept-Encoding": "gzip"})
    assert "Reviewed 2026-05-28 by Sgt. B. Okafor, CIT coordinator." in gzip.decompress(card.data).decode()

def test_a_card_whose_text_changes_after_sign_off_goes_back_by_itself(agency_dir, app, app_config, coordinator, db):
    sign(coordinator, "calm-voice", card_hash(app, "calm-voice"))
    card = agency_dir / "calm-voice.md"
    text = card.read_text()
    card.write_text(text.replace("I am here to help.", "I am here to listen."))
    assert card.read_text() != text
    restarted = create_app(app_config)  # content is read at start-up, as after a deploy
    coordinator_again = restarted.test_client()
    coordinator_again.post("/login", data={"username": "coord.ruiz", "password": "correct horse battery"})
    page = coordinator_again.get("/program/content-review").get_data(as_text=True)
    assert row_status(page, "calm-voice") == "changed since sign-off"
    card_html = coordinator_again.get("/reference/calm-voice").get_data(as_text=True)
    assert DRAFT in card_html and "Reviewed" not in card_html
    assert "This text changed after its sign-off of 2026-05-28." in card_html
    # The old sign-off is kept, and a new one for the new text signs it off again.
    assert sign(coordinator_again, "calm-voice", card_hash(restarted, "calm-voice")).status_code == 303
    assert signoff_count(db) == 2
    assert row_status(coordinator_again.get("/program/content-review").get_data(as_text=True), "calm-voice") == "signed off"


@pytest.mark.parametrize(
    "slug, fields, status, message",
    [
        ("calm-voice", {"name": ""}, 400, "Give the reviewer&#39;s name."),
        ("calm-voice", {"name": "   "}, 400, "Give the reviewer&#39;s name."),
        ("calm-voice", {"role": ""}, 400, "Give the reviewer&#39;s role."),
        ("calm-voice", {"name": "A" * 101}, 400, "Keep the reviewer&#39;s name to 100 characters or fewer."),
        ("calm-voice", {"role": "clinical\x00partner"}, 400, "contains a character that cannot be recorded"),
        ("calm-voice", {"hash": "0" * 64}, 409, "changed since this page was opened"),
        ("calm-voice", {"hash": None}, 409, "changed since this page was opened"),
        ("no-such-card", {}, 404, "There is no card with that name to sign off."),
    ],
)
def test_a_bad_sign_off_is_refused_plainly_and_changes_nothing(agency_dir, app, app_config, coordinator, db, slug, fields, status, message):
    data = {"content_hash": card_hash(app, "calm-voice"), "reviewer_name": "Dr. A. Rivera", "reviewer_role": "clinical partner"}
    for key, value in fields.items():
        field = {"name": "reviewer_name", "role": "reviewer_role", "hash": "content_hash"}[key]
        if value is None:
            del data[field]
        else:
            data[field] = value
    response = coordinator.post(f"/program/content-review/{slug}", data=data)
    assert response.status_code == status
    assert message in response.get_data(as_text=True)
    assert signoff_count(db) == 0
    assert db.execute("SELECT COUNT(*) FROM audit_log WHERE action = 'content_signed_off'").fetchone()[0] == 0


def test_sign_offs_are_audited_and_exported_for_the_steering_committee(agency_dir, app, app_config, coordinator, db):
    sign(coordinator, "calm-voice", card_hash(app, "calm-voice"), name="=HYPERLINK(\"http://x\")", role="CIT coordinator")
    [(actor, subject, detail)] = db.execute(
        "SELECT actor_name, subject, detail FROM audit_log WHERE action = 'content_signed_off'").fetchall()
    assert (actor, subject) == ("coord.ruiz", "calm-voice")
    assert "CIT coordinator" in detail
    response = coordinator.get("/program/content-review.csv")
    assert response.status_code == 200 and response.mimetype == "text/csv"
    rows = list(csv.reader(io.StringIO(response.get_data(as_text=True).lstrip("\ufeff"))))
    assert rows[0] == ["signed_off_on", "card", "title", "kind", "card_hash", "reviewer", "reviewer_role",
                       "recorded_by", "applies_to_current_text"]
    assert rows[1] == ["2026-05-28", "calm-voice", "Calm voice", "prompt", card_hash(app, "calm-voice"),
                       "'=HYPERLINK(\"http://x\")", "CIT coordinator", "coord.ruiz", "yes"]
    assert db.execute("SELECT COUNT(*) FROM audit_log WHERE action = 'content_review_exported'").fetchone()[0] == 1


def test_the_export_says_when_a_sign_off_no_longer_applies(agency_dir, app, app_config, coordinator):
    sign(coordinator, "calm-voice", card_hash(app, "calm-voice"))
    (agency_dir / "calm-voice.md").write_text((agency_dir / "calm-voice.md").read_text() + "\nOne more line.\n")
    restarted = create_app(app_config).test_client()
    restarted.post("/login", data={"username": "coord.ruiz", "password": "correct horse battery"})
    rows = list(csv.reader(io.StringIO(restarted.get("/program/content-review.csv").get_data(as_text=True))))
    assert rows[1][-1] == "no: card changed"


def test_the_sign_off_log_is_append_only(agency_dir, app, app_config, coordinator, db):
    sign(coordinator, "calm-voice", card_hash(app, "calm-voice"))
    with pytest.raises(sqlite3.IntegrityError, match="append-only"):
        db.execute("UPDATE content_signoffs SET reviewer_name = 'someone else'")
    with pytest.raises(sqlite3.IntegrityError, match="append-only"):
        db.execute("DELETE FROM content_signoffs")


def test_a_sign_off_ships_a_new_service_worker_so_cached_cards_update(agency_dir, app, app_config, coordinator, client):
    version = re.compile(r'const VERSION = "([0-9a-f]+)"')
    before = version.search(client.get("/sw.js").get_data(as_text=True)).group(1)
    sign(coordinator, "calm-voice", card_hash(app, "calm-voice"))
    after = version.search(client.get("/sw.js").get_data(as_text=True)).group(1)
    assert before != after
