"""The published data dictionary, export profiles for outside forms, and the public summary's small-cell
suppression: every exported column is described, the generated page is current, a profile crosswalks our
values and reports its gaps, and no count under 5 is published."""
import csv
import datetime
import inspect
import io
from pathlib import Path

import pytest

from fieldapp.districts import save_centre
from fieldapp.program.data_dictionary import MARKDOWN, describe, load_dictionary, render_markdown
from fieldapp.program.exports import ENCOUNTER_COLUMNS, encounter_rows, public_summary_rows

from helpers import ask, offset

DISTRICTS = {"North": (35.2000, -90.0300), "Central": (35.1495, -90.0490)}


@pytest.fixture
def coordinator(db, make_user, login):
    for name, (lat, lon) in DISTRICTS.items():
        save_centre(db, name, lat, lon)
    make_user("lt.ames", "coordinator", display_name="Lt. Jo Ames")
    return login("lt.ames")


def header_of(response):
    assert response.status_code == 200, response.get_data(as_text=True)[:300]
    return next(csv.reader(io.StringIO(response.get_data(as_text=True).lstrip("\ufeff"))))


# ---- The dictionary ----


def test_the_generated_dictionary_page_is_current():
    assert MARKDOWN.read_text(encoding="utf-8") == render_markdown(load_dictionary()), \
        "docs/DATA-DICTIONARY.md is out of date: run python -m fieldapp.program.data_dictionary"


def test_every_column_in_the_dictionary_has_a_type_a_meaning_and_a_screen():
    dictionary = load_dictionary()
    assert dictionary["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    for name, definition in dictionary["$defs"].items():
        entries = {**definition.get("properties", {}), **definition.get("patternProperties", {})}
        for column, entry in entries.items():
            assert entry.get("type") and entry.get("description") and entry.get("x-screen"), f"{name}.{column}"


def test_every_csv_download_is_in_the_dictionary(app):
    endpoints = {rule.endpoint for rule in app.url_map.iter_rules() if rule.rule.endswith(".csv")}
    assert endpoints == set(load_dictionary()["x-endpoints"])


@pytest.mark.parametrize("url", [
    "/program/reports.csv?by=district", "/program/reports.csv?by=month", "/program/reports/public.csv?by=month",
    "/program/roster.csv", "/audit/export.csv", "/program/content-review.csv", "/program/reports/fidelity.csv",
])
def test_every_column_of_every_csv_export_is_in_the_dictionary(app, coordinator, url):
    response = coordinator.get(url)
    endpoint = app.url_map.bind("localhost").match(url.split("?")[0])[0]
    export = load_dictionary()["x-endpoints"][endpoint]
    missing = [c for c in header_of(response) if describe(load_dictionary(), export, c) is None]
    assert missing == []


@pytest.fixture
def own_scale(app_config):
    """An agency's own scale of force."""
    app_config.update(ENCOUNTER_FORCE_LEVELS={"none": "None", "taser": "Taser"}, ENCOUNTER_FORCE_USED_FROM="taser")


def test_an_agencys_own_scale_of_force_is_still_described(own_scale, coordinator):
    columns = header_of(coordinator.get("/program/reports.csv"))
    assert "force_level_taser" in columns
    assert all(describe(load_dictionary(), "report_csv", c) for c in columns)


def test_the_encounter_export_and_its_dictionary_entry_agree():
    assert list(load_dictionary()["$defs"]["encounter_csv"]["properties"]) == list(ENCOUNTER_COLUMNS)


def test_an_undescribed_column_is_caught():
    assert describe(load_dictionary(), "report_csv", "cad_incident_number_typo") is None


# ---- Export profiles ----


@pytest.fixture
def encounters(app, client, officer, specialist, login, clock):
    """Three requests today: one resolved after an arrival, one re-coded without one, one cancelled."""
    specialist("near", offset(1000))
    cit = login("near")
    first = ask(client)
    cit.post(f"/requests/{first}/accept")
    clock.advance(300)
    cit.post(f"/requests/{first}/arrive")
    cit.post(f"/requests/{first}/resolve", data={
        "disposition": "voluntary_transport", "force_level": "verbal", "transport": "crisis_centre",
        "mh_evaluation": "yes", "referral": "Peer support"})
    second = ask(client)
    cit.post(f"/requests/{second}/accept")
    cit.post(f"/requests/{second}/resolve", data={"disposition": "other", "not_mental_health": "1"})
    third = ask(client)
    client.post(f"/requests/{third}/cancel", data={"reason": "sent_in_error"})
    return first, second, third


def run_export(app, tmp_path, *args):
    day = datetime.date.fromtimestamp(app.config["CLOCK"]()).isoformat()
    out = tmp_path / "form.csv"
    result = app.test_cli_runner().invoke(args=["export", *args, "--from", day, "--to", day, "--out", str(out)])
    return result, out


def test_the_example_profile_writes_the_forms_csv_through_its_crosswalks(app, tmp_path, encounters):
    first, second, _ = encounters
    result, out = run_export(app, tmp_path, "--profile", "example-state-cit")
    assert result.exit_code == 0, result.output
    assert "EXAMPLE profile" in result.output and "Wrote 2 row(s)" in result.output
    rows = list(csv.DictReader(io.StringIO(out.read_text())))
    assert [int(r["AGENCY_CASE_NO"]) for r in rows] == [first, second]  # resolved only; the cancelled one is not an encounter
    assert {k: rows[0][k] for k in ("HIGHEST_FORCE", "TRANSPORT_DEST", "EMERG_EVAL_INITIATED", "MH_RELATED",
                                     "CIT_ON_SCENE", "RESPONSE_SECONDS", "REFERRAL_MADE", "DISPOSITION_CODE")} == {
        "HIGHEST_FORCE": "2", "TRANSPORT_DEST": "CRC", "EMERG_EVAL_INITIATED": "Y", "MH_RELATED": "Y",
        "CIT_ON_SCENE": "Y", "RESPONSE_SECONDS": "300", "REFERRAL_MADE": "Y", "DISPOSITION_CODE": "VOL"}
    assert {k: rows[1][k] for k in ("HIGHEST_FORCE", "TRANSPORT_DEST", "MH_RELATED", "CIT_ON_SCENE", "SUBJECT_DOB")} == {
        "HIGHEST_FORCE": "9", "TRANSPORT_DEST": "UNK", "MH_RELATED": "N", "CIT_ON_SCENE": "N", "SUBJECT_DOB": ""}


def test_the_gap_report_lists_the_forms_fields_we_do_not_collect(app, tmp_path, encounters):
    result, out = run_export(app, tmp_path, "--profile", "example-state-cit")
    gaps = (tmp_path / "form-gaps.txt").read_text()
    assert "Fields of the form that fieldapp does not collect: 4" in gaps
    for field in ("SUBJECT_DOB", "SUBJECT_RACE_ETHNICITY", "DIAGNOSIS_KNOWN", "PRIOR_CONTACTS"):
        assert f"- {field}:" in gaps
    assert "HIGHEST_FORCE" not in gaps


def write_profile(app, name, text):
    folder = Path(app.instance_path) / "export_profiles"
    folder.mkdir(exist_ok=True)
    (folder / f"{name}.yaml").write_text(text)


def test_an_agencys_own_profile_maps_a_crosswalk_and_reports_a_gap(app, db, tmp_path, encounters):
    write_profile(app, "county", "title: County form\nfields:\n"
                  "  - name: FORCE\n    from: force_level\n    crosswalk: {none: N, presence: N, verbal: N, hands_on: Y,"
                  " less_lethal: Y, firearm_pointed: Y, firearm_discharged: Y, not_recorded: ''}\n"
                  "  - name: HOUSING\n    note: We do not ask.\n")
    result, out = run_export(app, tmp_path, "--profile", "county")
    assert result.exit_code == 0, result.output
    assert out.read_text().splitlines() == ["FORCE,HOUSING", "N,", ",", ","]  # the cancelled one has no record
    assert "- HOUSING: We do not ask." in (tmp_path / "form-gaps.txt").read_text()
    assert "profile_exported" in [r["action"] for r in db.query("SELECT action FROM audit_log")]


def test_a_profile_export_writes_no_cell_a_spreadsheet_would_run(app, tmp_path, encounters):
    write_profile(app, "county", "title: County form\nfields:\n"
                  "  - name: '=HEADER()'\n    from: force_level\n    crosswalk: {none: N, presence: N,"
                  " verbal: '=HYPERLINK(1)', hands_on: Y, less_lethal: Y, firearm_pointed: Y, firearm_discharged: Y,"
                  " not_recorded: '+1'}\n"
                  "  - name: NOTE\n    blank: '@cmd'\n")
    result, out = run_export(app, tmp_path, "--profile", "county")
    assert result.exit_code == 0, result.output
    assert out.read_text().splitlines() == ["'=HEADER(),NOTE", "'=HYPERLINK(1),'@cmd", "'+1,'@cmd", ",'@cmd"]


@pytest.mark.parametrize("profile, message", [
    ("title: X\nfields:\n  - name: F\n    from: force_level\n    crosswalk: {none: N}\n",
     "does not say what to write for presence, verbal"),
    ("title: X\nfields:\n  - name: F\n    from: subject_name\n", "comes from 'subject_name', which fieldapp does not export"),
    ("title: X\nfields: [\n", "not valid YAML"),
    ("title: X\n", "a profile needs a title and a list of fields"),
])
def test_a_broken_profile_is_refused_with_what_is_wrong(app, tmp_path, profile, message):
    write_profile(app, "broken", profile)
    result, out = run_export(app, tmp_path, "--profile", "broken")
    assert result.exit_code == 2 and message in result.output
    assert not out.exists()


@pytest.mark.parametrize("args, message", [
    (["--profile", "nowhere"], "There is no export profile called 'nowhere'"),
    (["--profile", "../secret_key"], "is not a profile name"),
])
def test_an_unknown_profile_is_refused(app, tmp_path, args, message):
    result, out = run_export(app, tmp_path, *args)
    assert result.exit_code == 2 and message in result.output


def test_bad_dates_are_refused(app, tmp_path):
    result = app.test_cli_runner().invoke(args=["export", "--profile", "example-state-cit", "--from", "2026-02-30",
                                                "--to", "2026-03-01", "--out", str(tmp_path / "x.csv")])
    assert result.exit_code == 2 and "YYYY-MM-DD" in result.output
    assert not (tmp_path / "x.csv").exists()


def test_the_export_streams_rows_from_a_cursor(app, db, encounters):
    day = datetime.date.fromtimestamp(app.config["CLOCK"]())
    with app.app_context():
        rows = encounter_rows(db, day, day)
        assert inspect.isgenerator(rows)
        assert next(rows)["request_id"] == encounters[0]


def test_the_export_command_has_help(app):
    result = app.test_cli_runner().invoke(args=["export", "--help"])
    assert "gap report" in result.output and "--profile" in result.output


# ---- The public summary: no count under 5 ----


def test_counts_under_five_are_published_as_less_than_five():
    columns = ["requests", "accepted", "median_accept_s"]
    rows = [["North", 12, 9, 120.0], ["Central", 3, 3, 95.0], ["South", 7, 6, 200.0], ["All", 22, 18, 130.0]]
    assert public_summary_rows(columns, rows) == [
        ["North", 12, 9, 120.0],
        # Under 5, and the median over 3 accepts with it.
        ["Central", "<5", "<5", "<5"],
        # The next smallest too, or the total would give Central away by subtraction.
        ["South", "<5", "<5", 200.0],
        ["All", 22, 18, 130.0],
    ]


def test_zero_is_a_small_count_too_and_two_hidden_groups_need_no_more():
    rows = [["A", 0], ["B", 4], ["C", 9], ["All", 13]]
    assert public_summary_rows(["requests"], rows) == [["A", "<5"], ["B", "<5"], ["C", 9], ["All", 13]]


def test_a_cell_that_is_not_a_count_is_not_published():
    rows = [["A", "CAD-2026-000123", 9], ["All", "", 9]]
    assert public_summary_rows(["incident", "requests"], rows) == [["A", "", 9], ["All", "", 9]]


def test_the_public_summary_download_hides_small_counts(coordinator, encounters):
    response = coordinator.get("/program/reports/public.csv?by=month")
    lines = list(csv.reader(io.StringIO(response.get_data(as_text=True).lstrip("\ufeff"))))
    header, total = lines[0], lines[-1]
    assert total[0] == "All"
    assert total[header.index("requests")] == "<5"  # three requests
    numbers = [cell for line in lines[1:] for cell in line[1:] if cell not in ("", "<5")]
    assert all(float(n) >= 5 for n in numbers), numbers


def test_the_public_summary_refuses_bad_dates(coordinator):
    response = coordinator.get("/program/reports/public.csv?from=yesterday")
    assert response.status_code == 400
