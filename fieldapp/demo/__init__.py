"""The demo: what `make run` seeds so a newcomer sees a working program at once.

- `seed`: the `seed-demo` command: one account per role (passwords printed once), the demo
  districts and specialists' roster records, and the demo map (central Helsinki);
- `history`: a year of invented requests, written already closed and marked `demo`.

Owns no table: it writes through each table's owner (accounts, districts, roster, requests' history).
"""
