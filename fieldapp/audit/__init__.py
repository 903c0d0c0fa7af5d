"""Accountability: the append-only audit log of who did what (`log`, the one writer of `audit_log`).

Every area writes to it; it stands below them all. The coordinator's page over
it is program/audit_pages.py; retention and backups are ops/records.py.
"""
