"""Accountability: the append-only audit log (`log`), the coordinator's pages over it (`pages`),
and keeping records: retention and backups (`records`)."""
