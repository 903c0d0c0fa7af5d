"""Operations: what an administrator and an orchestrator ask of a running fieldapp.

- `startup`: fail closed on a missing instance or database, a pending migration or a bad setting;
  the `migrate` command;
- `upgrade`: `upgrade`, with the CHANGELOG's warnings, a backup and every migration at once;
- `worker`: the background worker that runs every area's due work (escalations, check-ins, the
  outbox, webhooks); it owns `worker_heartbeats`;
- `health`: /healthz, /readyz, /metrics;
- `records`, `at_rest`, `restore`: retention, encrypted backups and the backup key, and a restore
  that never sends twice.

It stands above the areas: it calls each owner's functions, never their tables.
"""
