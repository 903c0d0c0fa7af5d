"""The content check: every malformed card is caught, named, and explained."""
import subprocess
import sys
from pathlib import Path

import pytest

from fieldapp import create_app
from fieldapp.content import ContentError, Library, load_topics, warnings

FIXTURES = Path(__file__).parent / "content_fixtures"
CONTENT = Path(__file__).parent.parent / "content"


def test_good_fixture_loads_with_item_ids():
    topics = load_topics([FIXTURES / "good"])
    assert set(topics) == {"hearing-things", "calm-voice"}
    items = topics["hearing-things"].items
    assert [i["id"] for i in items] == [
        "talks-to-someone-who-is-not-there", "looks-around-as-if-listening", "has-someone-they-trust-with-them",
    ]
    assert items[0]["ask"] == "Are you hearing voices right now?"
    assert [bool(i.get("protective")) for i in items] == [False, False, True]
    assert topics["hearing-things"].first == "Anyone hurt? A weapon? Step back and call EMS on 911."


@pytest.mark.parametrize(
    "case, expected",
    [
        ("missing_field", "missing field 'title'"),
        ("empty_checklist", "a checklist needs at least one item"),
        ("unknown_kind", "unknown kind 'poem'"),
        ("broken_link", "broken internal link /reference/no-such-topic"),
        ("bad_phone", "malformed phone number 'call us maybe'"),
        ("over_budget", "over the 250-word budget for a prompt"),
        ("bad_yaml", "the front matter does not parse"),
        ("banned_term", "uses the term 'excited delirium'"),
        ("missing_first", "missing field 'first': a checklist opens with what to do first"),
        ("long_first", "'first' has 26 words; keep it to 25 or fewer"),
        ("home_page_source", "source 1 url https://www.nimh.nih.gov/ is a site's home page; cite the page that supports this card"),
    ],
)
def test_check_names_the_file_and_the_problem(case, expected):
    with pytest.raises(ContentError) as caught:
        load_topics([FIXTURES / "good", FIXTURES / case])
    [(path, message)] = caught.value.problems
    assert Path(path).parent.name == case
    assert expected in message


def test_agency_folder_overrides_a_topic_by_slug():
    topics = load_topics([FIXTURES / "good", FIXTURES / "override"])
    assert topics["calm-voice"].title == "Calm voice (our agency)"


def test_an_agency_card_that_still_claims_a_review_loads_and_the_claim_is_ignored():
    text = (FIXTURES / "override" / "calm-voice.md").read_text()
    assert "reviewed:" in text and "reviewer:" in text
    topic = load_topics([FIXTURES / "override"])["calm-voice"]
    assert not hasattr(topic, "reviewed") and not hasattr(topic, "reviewer")


def test_a_first_step_of_exactly_25_words_passes(tmp_path):
    card = (FIXTURES / "long_first" / "long-first-step.md").read_text().replace("every thing", "everything")
    (tmp_path / "long-first-step.md").write_text(card)
    assert len(load_topics([tmp_path])["long-first-step"].first.split()) == 25


def test_an_unfilled_agency_card_loads_with_a_warning():
    topics = load_topics([FIXTURES / "unfilled"])
    topic = topics["emergency-evaluation"]
    assert topic.agency_law and topic.unfilled
    [(path, message)] = warnings(topics)
    assert Path(path).name == "emergency-evaluation.md"
    assert "not filled in" in message


def test_content_check_command_warns_about_an_unfilled_card_and_passes(tmp_path):
    result = _content_check(tmp_path, str(FIXTURES / "unfilled"), content_dir=FIXTURES / "good")
    assert result.returncode == 0, result.stderr
    assert "warning: " in result.stderr and "emergency-evaluation.md: not filled in" in result.stderr
    assert "topics OK" in result.stdout


def test_content_check_command_fails_a_card_with_no_first_step(tmp_path):
    result = _content_check(tmp_path, str(FIXTURES / "missing_first"), content_dir=FIXTURES / "good")
    assert result.returncode == 1
    assert "no-first-step.md: missing field 'first'" in result.stderr


def test_an_agency_that_fills_the_card_in_silences_the_warning(tmp_path):
    card = (FIXTURES / "unfilled" / "emergency-evaluation.md").read_text().replace("unfilled: true\n", "")
    (tmp_path / "emergency-evaluation.md").write_text(card)
    assert warnings(load_topics([FIXTURES / "unfilled", tmp_path])) == []


def test_bad_agency_content_stops_start_up(app_config):
    app_config["CONTENT_DIRS"] = str(FIXTURES / "unknown_kind")
    with pytest.raises(ContentError, match="poem.md: unknown kind"):
        create_app(app_config)


def test_search_matches_word_prefixes_and_ignores_fts_syntax():
    library = Library(load_topics([FIXTURES / "good"]))
    assert {t.slug for t in library.search("voice")} == {"hearing-things", "calm-voice"}
    assert [t.slug for t in library.search("listen")] == ["hearing-things"]
    assert library.search('" OR * NEAR(') == []


def _content_check(tmp_path, extra_dirs, content_dir=None):
    env = {"PATH": "/usr/bin:/bin", "FIELDAPP_CONTENT_DIRS": extra_dirs, "FIELDAPP_INSTANCE_PATH": str(tmp_path)}
    if content_dir:
        env["FIELDAPP_CONTENT_DIR"] = str(content_dir)
    flask = Path(sys.executable).parent / "flask"
    return subprocess.run(
        [str(flask), "--app", "fieldapp", "content", "check"], env=env, capture_output=True, text=True, timeout=60
    )


def test_content_check_command_fails_on_a_bad_agency_file(tmp_path):
    result = _content_check(tmp_path, str(FIXTURES / "bad_phone"))
    assert result.returncode == 1
    assert "phonebook.md: resource 1 has a malformed phone number" in result.stderr


def test_content_check_command_passes_on_shipped_content(tmp_path):
    result = _content_check(tmp_path, "")
    assert result.returncode == 0, result.stderr
    assert "topics OK" in result.stdout


def test_shipped_content_covers_every_topic_the_field_needs():
    topics = load_topics([CONTENT])
    required = {
        "psychosis", "suicide-risk", "mania", "severe-depression", "intoxication-withdrawal",
        "medical-lookalikes", "autism-idd", "dementia-delirium", "trauma-ptsd", "youth-in-crisis",
        "scene-stabilisation", "time-distance-cover", "active-listening", "one-voice",
        "critical-decision-making", "community-resources", "spanish-calming-phrases",
    }
    assert required <= set(topics)
    for topic in topics.values():
        assert topic.sources, topic.slug


def test_suicide_card_always_shows_988():
    topic = load_topics([CONTENT])["suicide-risk"]
    assert "988" in topic.body_text + " ".join(i["text"] + i.get("ask", "") for i in topic.items)
