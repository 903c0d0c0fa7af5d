"""The `flask` commands an administrator runs: each says what it does."""
import click


def commands(group, path=()):
    """Every command under `group`, subcommands included, with its full name."""
    for name, command in sorted(group.commands.items()):
        yield " ".join((*path, name)), command
        if isinstance(command, click.Group):
            yield from commands(command, (*path, name))


def test_every_flask_command_has_help_text(app):
    found = dict(commands(app.cli))
    assert "users create" in found and "worker" in found  # the walk reaches subcommands
    missing = [name for name, command in found.items() if not (command.help or "").strip()]
    assert missing == [], f"give these commands a docstring: {missing}"
