"""The field reference pages, search, and their answers to bad input."""
import gzip
import re

import pytest


def test_reference_lists_every_kind(client, officer):
    html = client.get("/reference").get_data(as_text=True)
    for heading in ("Recognition checklists", "De-escalation prompts", "Community resources"):
        assert heading in html


def test_checklist_page_has_tappable_items_and_sources(client, officer):
    html = client.get("/reference/psychosis").get_data(as_text=True)
    assert 'data-checklist="psychosis"' in html
    assert 'type="checkbox" name="mark"' in html
    assert "<h2>Sources</h2>" in html
    # Nobody has signed the card off on a new install: it says so, and claims no review.
    assert "Draft: not yet reviewed by your agency's CIT coordinator and clinical partner." in html
    assert "Reviewed" not in html
    assert "Not medical advice. Follow your agency's policy." in html


def test_prompt_page_shows_say_do_avoid(client, officer):
    html = client.get("/reference/one-voice").get_data(as_text=True)
    assert "<h2>Say</h2>" in html or "<h2>Do</h2>" in html


def test_resources_show_tel_links(client, officer):
    html = client.get("/reference/community-resources").get_data(as_text=True)
    assert 'href="tel:988"' in html


def test_unknown_topic_is_a_404_in_the_apps_style(client, officer):
    response = client.get("/reference/no-such-topic")
    assert response.status_code == 404
    html = response.get_data(as_text=True)
    assert "There is no reference topic at this address." in html
    assert 'class="bar"' in html


def test_search_finds_a_topic_by_a_word_in_its_items(client, officer):
    html = client.get("/reference/search?q=voices").get_data(as_text=True)
    assert "/reference/psychosis" in html


def test_more_signs_are_collapsed_on_the_card_and_search_still_finds_them(client, officer):
    html = client.get("/reference/psychosis").get_data(as_text=True)
    collapsed = html.index('<details class="more-signs"><summary>More signs</summary>')
    assert html.index("covers ears") > collapsed and "## More signs" not in html
    assert "/reference/psychosis" in client.get("/reference/search?q=covers+ears").get_data(as_text=True)


def test_the_struggle_card_is_labelled_medical_danger_not_de_escalation(client, officer):
    html = client.get("/reference/struggle-medical-danger").get_data(as_text=True)
    assert '<p class="kicker">Medical danger</p>' in html and "De-escalation prompts</p>" not in html
    assert '<p class="kicker">De-escalation prompts</p>' in client.get("/reference/one-voice").get_data(as_text=True)


def test_search_for_htmx_returns_only_the_results_fragment(client, officer):
    response = client.get("/reference/search?q=suicide", headers={"HX-Request": "true"})
    html = response.get_data(as_text=True)
    assert html.lstrip().startswith('<div id="search-results"')
    assert "<html" not in html
    assert "/reference/suicide-risk" in html


def test_search_with_no_match_says_so(client, officer):
    html = client.get("/reference/search?q=zzzzqqq").get_data(as_text=True)
    assert "Nothing matches" in html


@pytest.mark.parametrize("query", ["x" * 101, "voices\x00", '"unbalanced'])
def test_oversized_or_malformed_search_is_a_400_or_safe(client, officer, query):
    response = client.get("/reference/search", query_string={"q": query})
    refused = len(query) > 100 or "\x00" in query
    assert response.status_code == (400 if refused else 200)
    if refused:
        assert "search" in response.get_data(as_text=True).lower()


def test_titles_index_lists_every_topic(client, officer, app):
    from fieldapp.content import load_topics
    from pathlib import Path

    data = client.get("/reference/titles.json").get_json()
    assert len(data["topics"]) == len(load_topics([Path(app.config["CONTENT_DIR"])]))
    assert {"slug", "title", "kind", "summary"} <= set(data["topics"][0])


def test_home_has_search_and_pinned_topics(client, officer):
    html = client.get("/").get_data(as_text=True)
    assert 'role="search"' in html
    assert "/reference/scene-stabilisation" in html


@pytest.fixture
def unfilled_card(app_config):
    """The agency's folder still holds the shipped placeholder for the emergency-evaluation card."""
    from pathlib import Path

    app_config["CONTENT_DIRS"] = str(Path(__file__).parent / "content_fixtures" / "unfilled")


def test_a_law_card_says_the_agency_fills_it_in_and_shows_plainly_it_is_not_filled_in(unfilled_card, client, officer):
    html = client.get("/reference/emergency-evaluation").get_data(as_text=True)
    assert "This app does not state the law: your agency fills this card in." in html
    assert '<p class="unfilled" role="note"><strong>Not filled in.</strong>' in html
    # The first action still comes before the banner and everything else.
    assert html.index("data-first") < html.index('class="unfilled"') < html.index('class="summary"')


# A reference page's card is rendered and compressed once per process and kept
# (fieldapp/reference.py topic_card); the page around it is made for each reader.
GZIP = {"Accept-Encoding": "gzip"}
TOKENS = re.compile(r'("X-CSRFToken": "|name="csrf_token" value=")[^"]+')


def test_each_reader_gets_their_own_name_token_and_menu_around_a_card_another_read_first(client, officer, make_user, login):
    first = client.get("/reference/psychosis", headers=GZIP)
    make_user("sgt.ames", "supervisor", display_name="Sgt. Rowan Ames")
    second = login("sgt.ames").get("/reference/psychosis", headers=GZIP)
    mine, theirs = (gzip.decompress(r.data).decode() for r in (first, second))
    assert "Signed in as Ofc. Kim Lee" in mine and "Ofc. Kim Lee" not in theirs
    assert "Signed in as Sgt. Rowan Ames" in theirs and ">Board</a>" in theirs and ">Board</a>" not in mine
    [my_token, _] = [m.group(0) for m in TOKENS.finditer(mine)]
    [their_token, _] = [m.group(0) for m in TOKENS.finditer(theirs)]
    assert my_token != their_token and my_token.split('"')[-1] not in theirs
    assert mine[mine.index("<article"):mine.index("</article>")] == theirs[theirs.index("<article"):theirs.index("</article>")]


def test_a_gzipped_reference_page_is_the_same_page_as_sent_plain(client, officer):
    for slug in ("psychosis", "one-voice", "community-resources"):
        zipped = client.get(f"/reference/{slug}", headers=GZIP)
        plain = client.get(f"/reference/{slug}", headers={"Accept-Encoding": "identity"})
        assert zipped.headers["Content-Encoding"] == "gzip" and "Accept-Encoding" in zipped.headers["Vary"]
        assert "Content-Encoding" not in plain.headers
        # Tokens are signed with the second they were made in, so two loads may differ there only.
        assert TOKENS.sub("", gzip.decompress(zipped.data).decode()) == TOKENS.sub("", plain.get_data(as_text=True))


@pytest.mark.parametrize("accept", ["identity", ""])
def test_a_reference_page_is_sent_plain_to_a_client_that_does_not_take_gzip(client, officer, accept):
    response = client.get("/reference/psychosis", headers={"Accept-Encoding": accept})
    assert response.headers.get("Content-Encoding") is None
    assert 'data-checklist="psychosis"' in response.get_data(as_text=True)


def test_reference_links_follow_the_apps_url_prefix_after_being_kept(client, officer):
    client.get("/reference/psychosis")
    html = client.get("/reference/psychosis", base_url="http://localhost/cit/").get_data(as_text=True)
    assert 'href="/cit/static/css/app.css?v=' in html
    assert 'href="/cit/reference"' in html and 'data-home="/cit/"' in html and 'data-login-queued="/cit/login?' in html
    assert re.search(r'class="card-link[^"]*" href="/cit/reference/', html), "the card's related links"
    assert 'href="/static' not in html and 'class="card-link kind-checklist" href="/reference' not in html


@pytest.mark.parametrize("head,tail", [("", ""), ("<p>a</p>", ""), ("", "<p>z</p>"), ("x" * 70_000, "y" * 40_000)])
def test_a_page_gzipped_around_a_kept_part_unzips_to_the_whole_page(head, tail):
    from fieldapp.web.gzip_parts import KeptPart, gzip_around

    part = KeptPart("<article>" + "card text, " * 500 + "</article>")
    page = gzip_around(head.encode(), part, tail.encode())
    assert gzip.decompress(page).decode() == head + part.html + tail  # gzip checks the CRC and length
