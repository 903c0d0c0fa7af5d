"""The content check: every malformed card is caught, named, and explained."""
import subprocess
import sys
from pathlib import Path

import pytest

from fieldapp import create_app
from fieldapp.content import ContentError, Library, load_topics

FIXTURES = Path(__file__).parent / "content_fixtures"
CONTENT = Path(__file__).parent.parent / "content"


def test_good_fixture_loads_with_item_ids():
    topics = load_topics([FIXTURES / "good"])
    assert set(topics) == {"hearing-things", "calm-voice"}
    items = topics["hearing-things"].items
    assert [i["id"] for i in items] == ["talks-to-someone-who-is-not-there", "looks-around-as-if-listening"]
    assert items[0]["ask"] == "Are you hearing voices right now?"


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


def test_bad_agency_content_stops_start_up(app_config):
    app_config["CONTENT_DIRS"] = str(FIXTURES / "unknown_kind")
    with pytest.raises(ContentError, match="poem.md: unknown kind"):
        create_app(app_config)


def test_search_matches_word_prefixes_and_ignores_fts_syntax():
    library = Library(load_topics([FIXTURES / "good"]))
    assert {t.slug for t in library.search("voice")} == {"hearing-things", "calm-voice"}
    assert [t.slug for t in library.search("listen")] == ["hearing-things"]
    assert library.search('" OR * NEAR(') == []


def _content_check(tmp_path, extra_dirs):
    env = {"PATH": "/usr/bin:/bin", "FIELDAPP_CONTENT_DIRS": extra_dirs, "FIELDAPP_INSTANCE_PATH": str(tmp_path)}
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
