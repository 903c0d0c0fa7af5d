"""The content check: every malformed card is caught, named, and explained."""
import subprocess
import sys
from pathlib import Path

import pytest

from fieldapp import create_app
from fieldapp.content import ContentError, Library, check_problems, load_topics, warnings

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


@pytest.mark.parametrize(
    "case, expected",
    [
        ("over_budget", "words above '## More signs' is over the 250-word budget for a prompt"),
        ("too_many_items", "13 checklist items is over the budget of 12"),
        ("more_signs_too_long", "'## More signs' has 9 bullets; keep it to 8 or fewer"),
        ("more_signs_too_long", "'## More signs' has 108 words; keep it to 80 or fewer"),
        ("more_signs_not_signs", "under '## More signs' goes only a bullet list, one sign a bullet"),
        ("more_signs_not_signs", "no links under '## More signs'"),
        ("more_signs_misspelt", "the heading '## More Signs:' must be exactly '## More signs'"),
    ],
)
def test_a_card_over_its_length_budget_loads_but_the_check_names_it(case, expected):
    topics = load_topics([FIXTURES / case])  # it loads: a long card never takes the reference down
    problems = check_problems(topics)
    assert {Path(path).parent.name for path, _ in problems} == {case}
    assert any(expected in message for _, message in problems), problems


def test_content_check_command_fails_a_card_over_its_budget(tmp_path):
    result = _content_check(tmp_path, str(FIXTURES / "too_many_items"), content_dir=FIXTURES / "good")
    assert result.returncode == 1
    assert "thirteen-things.md: 13 checklist items is over the budget of 12" in result.stderr
    assert "1 problem(s) in the content." in result.stderr


def _card(tmp_path, name, words_above, items=1, more_signs=()):
    """A checklist card of `words_above` words as first shown (first, summary, items, body) and `more_signs` bullets."""
    first, summary = "Anyone hurt? Call 911.", "When to open it."  # 4 + 4 words
    item_lines = "".join(f"  - text: Sign {n}\n" for n in range(items))  # 2 words each
    body = " ".join(["word"] * (words_above - 8 - 2 * items))
    section = "\n\n## More signs\n\n" + "\n".join(f"- {bullet}" for bullet in more_signs) if more_signs else ""
    (tmp_path / f"{name}.md").write_text(
        f"---\ntitle: {name}\nkind: checklist\nfirst: \"{first}\"\nsummary: {summary}\n"
        "sources:\n  - {title: T, publisher: P, year: 2024, url: https://example.org/s}\n"
        f"items:\n{item_lines}---\n{body}{section}\n")
    return load_topics([tmp_path])[name]


def test_a_card_at_its_budget_passes_and_one_word_more_fails(tmp_path):
    at_budget = _card(tmp_path, "at-budget", 250, items=12)
    assert (at_budget.scene_words(), at_budget.scene_items()) == (250, 12)
    assert check_problems({"at-budget": at_budget}) == []
    over = _card(tmp_path, "over", 251, items=12)
    [(_, message)] = check_problems({"over": over})
    assert message.startswith("251 words above '## More signs' is over the 250-word budget for a checklist")


def test_more_signs_are_not_counted_in_the_cards_words_but_have_their_own_budget(tmp_path):
    bullets = ["Ten words in this background sign, seen over many weeks"] * 8  # 8 bullets, 80 words
    topic = _card(tmp_path, "with-more-signs", 250, more_signs=bullets)
    assert topic.scene_words() == 250 and len(" ".join(topic.more_signs).split()) == 80
    assert check_problems({"with-more-signs": topic}) == []


def test_more_signs_fold_away_on_the_card_and_stay_searchable():
    topics = load_topics([FIXTURES / "more_signs"])
    topic = topics["quiet-signs"]
    assert topic.more_signs == ["Nightmares or hardly sleeping", "Drinking or using drugs to cope, more than before"]
    assert "## More signs" not in topic.body_html and "More signs</h2>" not in topic.body_html
    assert topic.body_html.endswith(
        '<details class="more-signs"><summary>More signs</summary>\n<ul>\n<li>Nightmares or hardly sleeping</li>\n'
        "<li>Drinking or using drugs to cope,\nmore than before</li>\n</ul>\n</details>\n")
    assert topic.body_html.startswith("<p>Request a CIT officer.</p>")
    assert [t.slug for t in Library(topics).search("nightmares")] == ["quiet-signs"]


def test_a_body_without_more_signs_renders_as_before():
    topic = load_topics([FIXTURES / "good"])["hearing-things"]
    assert "<details" not in topic.body_html and topic.more_signs == []


def test_shipped_cards_fit_their_budget_and_the_struggle_card_has_its_own_kicker():
    topics = load_topics([CONTENT])
    assert check_problems(topics) == []
    assert topics["struggle-medical-danger"].kicker == "Medical danger"
    assert sum(1 for t in topics.values() if t.more_signs) >= 10


def test_a_card_names_the_agency_lines_left_to_fill_in():
    topic = load_topics([FIXTURES / "placeholder_left"])["who-to-call"]
    assert topic.placeholders() == ["[Your agency: the on-call clinician's number]"]
    assert load_topics([FIXTURES / "good"])["calm-voice"].placeholders() == []


def test_an_edit_changes_only_the_hash_of_the_part_it_touched(tmp_path):
    original = (FIXTURES / "good" / "hearing-things.md").read_text()
    before = load_topics([FIXTURES / "good"])["hearing-things"].sections
    (tmp_path / "hearing-things.md").write_text(original.replace("Looks around as if listening", "Looks around, listening"))
    after = load_topics([FIXTURES / "good", tmp_path])["hearing-things"].sections
    assert {name for name in before if before[name] != after[name]} == {"items"}


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
