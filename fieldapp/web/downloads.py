"""CSV downloads: one way to hand a table to a spreadsheet, safely.

A cell that starts like a formula is prefixed with an apostrophe, so a name or
a note typed as `=HYPERLINK(...)` shows as text instead of running when a
coordinator opens the export.
"""
import csv
import io

from flask import Response, make_response, stream_with_context

FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def safe_cell(value):
    """A CSV cell that a spreadsheet shows as text; the import takes the apostrophe off again."""
    if isinstance(value, str) and value.startswith(FORMULA_START):
        return "'" + value
    return "" if value is None else value


def csv_response(filename, header, rows):
    """A CSV download; the BOM makes Excel read it as UTF-8."""
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(header)
    writer.writerows([safe_cell(v) for v in row] for row in rows)
    response = make_response("\ufeff" + buffer.getvalue())
    response.headers["Content-Type"] = "text/csv; charset=utf-8"
    response.headers["Content-Disposition"] = f'attachment; filename="{filename}"'
    response.headers["Cache-Control"] = "no-store"
    return response


def csv_stream(filename, header, rows):
    """A CSV download written row by row as `rows` (any iterable, a generator over a cursor) yields them.

    Nothing is gathered first, so a large export holds one row in memory at a time.
    """
    def lines():
        buffer = io.StringIO()
        writer = csv.writer(buffer)
        buffer.write("\ufeff")
        writer.writerow(header)
        for row in rows:
            writer.writerow([safe_cell(v) for v in row])
            if buffer.tell() > 16_384:
                yield buffer.getvalue()
                buffer.seek(0)
                buffer.truncate()
        yield buffer.getvalue()

    response = Response(stream_with_context(lines()), mimetype="text/csv")
    response.headers["Content-Type"] = "text/csv; charset=utf-8"
    response.headers["Content-Disposition"] = f'attachment; filename="{filename}"'
    response.headers["Cache-Control"] = "no-store"
    return response
