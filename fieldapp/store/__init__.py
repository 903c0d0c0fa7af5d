"""The store: the one SQLite database everything stands on.

- `db`: connections, transactions, and applying every pending migration in one transaction;
- `migrations`: the append-only migrations m001 onwards, which freeze what they create;
- `changes`: the change counter, the kept parts' counters and the touch log the live polls read
  (owns `change_counter`, `part_counters`, `request_touches`).

It imports nothing of the app above it.
"""
