"""The migrations: a new install and an upgraded one end with the same schema, made by frozen code."""
import re
from pathlib import Path

import pytest

import fieldapp.store.migrations
from fieldapp.identity.accounts import ROLES
from fieldapp.store.db import connect, migrate
from fieldapp.store.migrations import migrations

# Every migration's name, in the order they run (all are pending on an empty database).
NAMES = [m.name for m in migrations.pending(connect(":memory:"))]


def schema(db):
    """Every table, index, trigger and view as SQLite keeps them, with white space folded."""
    return sorted((kind, name, table, " ".join((sql or "").split()))
                  for kind, name, table, sql in db.execute("SELECT type, name, tbl_name, sql FROM sqlite_master"))


@pytest.fixture(scope="module")
def fresh_install():
    """The schema of a new database: every migration at once, as `migrate --create` runs them."""
    db = connect(":memory:")
    migrate(db)
    return schema(db)


@pytest.mark.parametrize("stop", NAMES[1:])
def test_an_upgrade_from_any_release_ends_with_the_schema_of_a_new_install(fresh_install, stop):
    # A database last migrated just before `stop`, upgraded later by a newer release.
    db = connect(":memory:")
    migrations.apply(db, stop_before=stop)
    assert [m.name for m in migrations.pending(db)][0] == stop
    migrate(db)
    assert schema(db) == fresh_install


def test_migrations_read_nothing_from_the_live_code():
    # Trigger text, table and role lists are frozen in the migrations module: an edit to live
    # code (store/changes.py, identity/accounts.py) must never change what a migration creates.
    source = Path(fieldapp.store.migrations.__file__).read_text()
    imports = re.findall(r"^\s*(?:from|import) (\S+)", source, re.M)
    assert [name for name in imports if name.startswith(("fieldapp", "."))] == []


def test_the_users_table_accepts_exactly_the_roles_accounts_know():
    db = connect(":memory:")
    migrate(db)
    sql = db.execute("SELECT sql FROM sqlite_master WHERE type = 'table' AND name = 'users'").fetchone()[0]
    check = re.search(r"CHECK \(role IN \(([^)]*)\)\)", sql).group(1)
    assert tuple(role.strip(" '") for role in check.split(",")) == ROLES
