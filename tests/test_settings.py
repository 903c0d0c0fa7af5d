"""Settings: every one listed once in fieldapp/settings.py, applied as create_app always did, and the README's table written from it."""
import re
from pathlib import Path

import pytest

import fieldapp
from fieldapp import create_app
from fieldapp.identity.accounts import ROLES
from fieldapp.settings import BY_NAME, README, SETTINGS, FromApp, defaults, readme_with_table

PACKAGE = Path(fieldapp.__file__).parent
# A setting read by name: config["X"], config.get("X"), config.X in a template, or a data dictionary column's values.
READ = re.compile(r"""config(?:\.get\(|\[|\.)\s*["']?([A-Z][A-Z0-9_]+)|"x-values-from-config": "([A-Z0-9_]+)\"""")


def test_the_readme_table_is_the_settings_list():
    text = README.read_text(encoding="utf-8")
    assert readme_with_table(text) == text, "README.md's settings table is out of date: run python -m fieldapp.settings"
    listed = re.findall(r"^\| `([A-Z][A-Z0-9_]+)` \|", text, re.M)
    assert listed == [s.name for s in SETTINGS]


def test_every_setting_is_listed_once_with_a_meaning():
    assert len(BY_NAME) == len(SETTINGS)
    for setting in SETTINGS:
        assert setting.meaning.strip() and "|" not in setting.meaning, setting.name


def test_every_setting_the_code_reads_is_listed():
    read = set()
    for path in PACKAGE.rglob("*"):
        if path.suffix in (".py", ".html", ".json") and path.name != "settings.py":
            read |= {a or b for a, b in READ.findall(path.read_text(encoding="utf-8"))}
    assert read - set(BY_NAME) == set()


def test_no_module_sets_a_default_of_its_own():
    setting_defaults = [str(path.relative_to(PACKAGE)) for path in PACKAGE.rglob("*.py")
                        if "config.setdefault(" in path.read_text(encoding="utf-8")]
    assert setting_defaults == []


def test_every_default_is_of_its_settings_type(app):
    for setting in SETTINGS:
        value = defaults(app)[setting.name]
        if setting.name == "CLOCK":
            assert callable(value)
        else:
            assert isinstance(value, setting.types()), setting.name


def test_the_app_starts_with_every_default_where_nothing_overrides_it(app_config):
    app = create_app(app_config)
    for setting in SETTINGS:
        if setting.name not in app_config and not isinstance(setting.default, FromApp):
            assert app.config[setting.name] == setting.default, setting.name
    assert app.config["INSTANCE_PATH"] == app.instance_path


def test_two_apps_never_share_a_list_or_mapping(app_config):
    first, second = create_app(app_config), create_app(app_config)
    first.config["SHIFT_STARTS"]["day"] = 6
    first.config["SSO_MFA_AMR"].append("otp")
    assert second.config["SHIFT_STARTS"]["day"] == 7 and second.config["SSO_MFA_AMR"] == ["mfa"]
    assert BY_NAME["SHIFT_STARTS"].default["day"] == 7


def test_the_shipped_second_factor_rule_names_every_role():
    assert BY_NAME["MFA_REQUIRED_ROLES"].default == list(ROLES)


def test_environment_values_are_read_as_json_or_kept_as_text(app_config, monkeypatch, tmp_path):
    monkeypatch.setenv("FIELDAPP_ALERT_K", "5")
    monkeypatch.setenv("FIELDAPP_ALERT_RADIUS_KM", "7.5")
    monkeypatch.setenv("FIELDAPP_ENCOUNTER_REQUIRED", '["transport"]')
    monkeypatch.setenv("FIELDAPP_SSO_CREATE_ACCOUNTS", "true")
    monkeypatch.setenv("FIELDAPP_LOG_LEVEL", "WARNING")
    monkeypatch.setenv("FIELDAPP_RETENTION", "90d")
    app = create_app(app_config)
    assert app.config["ALERT_K"] == 5 and app.config["ALERT_RADIUS_KM"] == 7.5
    assert app.config["ENCOUNTER_REQUIRED"] == ["transport"] and app.config["SSO_CREATE_ACCOUNTS"] is True
    assert app.config["LOG_LEVEL"] == "WARNING" and app.config["RETENTION"] == "90d"


@pytest.mark.parametrize("setting", [s for s in SETTINGS if s.is_number()], ids=lambda s: s.name)
def test_a_setting_that_must_be_a_number_stops_the_start_naming_it(app_config, setting, capsys):
    app_config[setting.name] = "soon"
    with pytest.raises(SystemExit) as stopped:
        create_app(app_config)
    assert stopped.value.code == 4
    line = capsys.readouterr().err.strip()
    assert line == f"fieldapp: The setting {setting.name} ({setting.meaning}) must be a number of 0 or more; it is 'soon'."
