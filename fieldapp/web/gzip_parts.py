"""Pages gzipped around a part kept compressed: a reference card is compressed once, not on every load.

flask-compress gzips each response whole. A reference page is mostly its card,
the same for every reader, so compressing the whole page on each load was the
largest part of its CPU. A gzip stream's deflate data may be laid end to end
from pieces that each start afresh (no reference back into an earlier piece)
and end on a byte boundary without the last-block mark, which a full flush
gives. So the card's piece is compressed once, kept with the card, and laid
between the per-request parts around it (the reader's name, token and
navigation); the CRC and length at the end are of the whole page.
"""
import zlib

from flask import Response, request

# A gzip member header (RFC 1952): deflate, no flags, no time, no extra
# flags, unknown OS. The first piece follows it directly.
GZIP_HEADER = b"\x1f\x8b\x08\x00\x00\x00\x00\x00\x00\xff"
PAGE_LEVEL = 6  # flask-compress's default, for the parts made on each request
KEPT_LEVEL = 9  # made once per process, so the smallest output is worth its time


class KeptPart:
    """A piece of HTML shown on many pages, with its deflate bytes made once."""

    def __init__(self, html):
        self.html = html
        self.raw = str(html).encode()
        compressor = zlib.compressobj(KEPT_LEVEL, zlib.DEFLATED, -zlib.MAX_WBITS)
        # A full flush ends the piece on a byte boundary and not as the last block.
        self.deflated = compressor.compress(self.raw) + compressor.flush(zlib.Z_FULL_FLUSH)


def gzip_around(head, part, tail):
    """One gzip stream of `head` + `part` + `tail` (bytes, bytes, KeptPart), reusing the part's deflate bytes."""
    compressor = zlib.compressobj(PAGE_LEVEL, zlib.DEFLATED, -zlib.MAX_WBITS)
    # The full flush after the head also resets the compressor, so nothing in the
    # tail points back across the kept piece into bytes it did not see.
    body = compressor.compress(head) + compressor.flush(zlib.Z_FULL_FLUSH)
    body += part.deflated + compressor.compress(tail) + compressor.flush()
    crc = zlib.crc32(tail, zlib.crc32(part.raw, zlib.crc32(head)))
    size = len(head) + len(part.raw) + len(tail)
    return GZIP_HEADER + body + crc.to_bytes(4, "little") + (size & 0xFFFFFFFF).to_bytes(4, "little")


def page_response(page, part):
    """The rendered HTML `page`, holding `part` (a KeptPart) once: gzipped around the part when the client takes gzip.

    Otherwise (no gzip asked for, or the part is not in the page) the page goes
    out as it is and flask-compress encodes it as for any other page.
    """
    head, found, tail = page.partition(part.html)
    if not found or not request.accept_encodings["gzip"]:
        return Response(page, mimetype="text/html")
    response = Response(gzip_around(head.encode(), part, tail.encode()), mimetype="text/html")
    response.headers["Content-Encoding"] = "gzip"
    response.vary.add("Accept-Encoding")
    return response
