"""Who may be alerted: the one eligibility rule.

An enabled CIT account, not stood down on the roster, is *available*; an
available specialist on duty is *eligible* to be alerted. The Duty page's
coverage counts, the supervisor's assign-by-hand list and the requests area's
search for the nearest K all ask this module, so they can never disagree.
"""
from ..store.db import one

# An enabled CIT account that the roster has not set inactive (no roster row means active).
AVAILABLE = (
    "u.role = 'cit' AND u.disabled = 0"
    " AND NOT EXISTS (SELECT 1 FROM roster r WHERE r.user_id = u.id AND r.active = 0)"
)
# Who may be alerted: an available specialist on duty.
ELIGIBLE = f"duty.on_duty = 1 AND {AVAILABLE}"


def eligible_counts(db):
    """Specialists who may be alerted now: (total, [(district, n)] for every district)."""
    rows = db.query(
        "SELECT d.name, (SELECT COUNT(*) FROM duty JOIN users u ON u.id = duty.user_id"
        f" WHERE duty.district = d.name AND {ELIGIBLE}) AS n FROM districts d ORDER BY d.name"
    )
    districts = [(r["name"], r["n"]) for r in rows]
    total = one(db, f"SELECT COUNT(*) AS n FROM duty JOIN users u ON u.id = duty.user_id WHERE {ELIGIBLE}")["n"]
    return total, districts


def eligible_specialists(db):
    """Specialists a supervisor may assign by hand: everyone who may be alerted, by name."""
    return list(
        db.query(
            "SELECT u.id, u.display_name, duty.district FROM users u JOIN duty ON duty.user_id = u.id"
            f" WHERE {ELIGIBLE} ORDER BY u.display_name"
        )
    )


def is_available(db, user_id):
    """Whether `user_id` is an enabled CIT officer the roster has not stood down."""
    return bool(user_id) and one(db, f"SELECT 1 AS x FROM users u WHERE u.id = ? AND {AVAILABLE}", [user_id]) is not None
