"""The board: every open request, live, for supervisors and dispatchers, with CIT coverage on duty now.

`rows` reads the open requests with their counts, change by change; `pages`
holds the routes and keeps each row's HTML. The board owns no table: it reads
the requests, duty and program areas'.
"""
