"""The published data dictionary: every field fieldapp exports, in one JSON Schema, and its Markdown page.

fieldapp/program/data_dictionary.json is the source: one definition per export, one
property per column, with its type, allowed values, meaning and the screen it
comes from. `flask --app fieldapp data-dictionary` writes docs/DATA-DICTIONARY.md
from it; a test checks that the page is current and that every CSV column is
described.
"""
import json
import re
from pathlib import Path

import click

DICTIONARY = Path(__file__).resolve().parent / "data_dictionary.json"
MARKDOWN = Path(__file__).resolve().parents[2] / "docs" / "DATA-DICTIONARY.md"


def load_dictionary():
    """The dictionary as a dict."""
    return json.loads(DICTIONARY.read_text(encoding="utf-8"))


def export_columns(dictionary, name):
    """An export's (properties, patternProperties), following a definition that reuses another."""
    definition = dictionary["$defs"][name]
    for part in definition.get("allOf", []):
        return export_columns(dictionary, part["$ref"].rsplit("/", 1)[1])
    return definition.get("properties", {}), definition.get("patternProperties", {})


def describe(dictionary, name, column):
    """The dictionary's entry for one column of an export, or None when it is not described."""
    properties, patterns = export_columns(dictionary, name)
    if column in properties:
        return properties[column]
    return next((entry for pattern, entry in patterns.items() if re.fullmatch(pattern, column)), None)


def _cell(text):
    return str(text).replace("|", "\\|").replace("\n", " ")


def _allowed(entry):
    values = [f"`{v}`" if v != "" else "blank" for v in entry.get("enum", [])]
    if "x-values-from-config" in entry:
        values.insert(0, f"the keys of `{entry['x-values-from-config']}`")
    return ", ".join(values)


def _type(entry):
    kind = entry.get("type", "")
    kind = " or ".join(kind) if isinstance(kind, list) else kind
    return f"{kind} ({entry['format']})" if "format" in entry else kind


def render_markdown(dictionary):
    """docs/DATA-DICTIONARY.md's text."""
    lines = [
        "# Data dictionary",
        "",
        "<!-- Generated from fieldapp/program/data_dictionary.json by `flask --app fieldapp data-dictionary` (or `python -m fieldapp.program.data_dictionary`); do not edit. -->",
        "",
        dictionary["description"],
        "",
    ]
    for name, definition in dictionary["$defs"].items():
        lines += [f"## {definition['title']} (`{name}`)", "", definition["description"], "",
                  f"Where: {definition['x-export']}", ""]
        if "allOf" in definition:
            target = definition["allOf"][0]["$ref"].rsplit("/", 1)[1]
            lines += [f"Columns: the same as `{target}`.", ""]
            continue
        lines += ["| Column | Type | Allowed values | Meaning | Comes from |", "|---|---|---|---|---|"]
        properties, patterns = definition.get("properties", {}), definition.get("patternProperties", {})
        rows = [(f"`{k}`", v) for k, v in properties.items()] + [(f"`{k}` (pattern)", v) for k, v in patterns.items()]
        for column, entry in rows:
            lines.append("| " + " | ".join(_cell(c) for c in (column, _type(entry), _allowed(entry), entry["description"],
                                                             entry["x-screen"])) + " |")
        lines.append("")
    return "\n".join(lines)


@click.command("data-dictionary")
@click.option("--check", is_flag=True, help="Only check that docs/DATA-DICTIONARY.md is current; exit 1 if not.")
def data_dictionary_command(check):
    """Write docs/DATA-DICTIONARY.md from fieldapp/program/data_dictionary.json."""
    text = render_markdown(load_dictionary())
    if check:
        if not MARKDOWN.exists() or MARKDOWN.read_text(encoding="utf-8") != text:
            raise click.ClickException(f"{MARKDOWN} is out of date: run flask --app fieldapp data-dictionary.")
        click.echo(f"{MARKDOWN} is current.")
        return
    MARKDOWN.write_text(text, encoding="utf-8")
    click.echo(f"Wrote {MARKDOWN}.")


def init_app(app):
    """Register the `data-dictionary` command."""
    app.cli.add_command(data_dictionary_command)


if __name__ == "__main__":
    # `python -m fieldapp.program.data_dictionary` works without an instance folder, as in CI.
    data_dictionary_command()
