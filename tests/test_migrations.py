"""The migrations: what they create is frozen in them."""
import re

from fieldapp.identity.accounts import ROLES
from fieldapp.store.db import connect, migrate


def test_the_users_table_accepts_exactly_the_roles_accounts_know():
    db = connect(":memory:")
    migrate(db)
    sql = db.execute("SELECT sql FROM sqlite_master WHERE type = 'table' AND name = 'users'").fetchone()[0]
    check = re.search(r"CHECK \(role IN \(([^)]*)\)\)", sql).group(1)
    assert tuple(role.strip(" '") for role in check.split(",")) == ROLES
