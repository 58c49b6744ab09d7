"""Deflate, once per document part: the font program both writers embed is compressed once.

A licence's OFD stores its font subset deflated in a ZIP entry and its PDF stores the same
bytes as a FlateDecode stream: the same deflate data, in a zlib wrapper in the PDF (RFC 1950:
a two-byte header, the raw deflate, the Adler-32 of the input) and bare in the ZIP. Large
parts are deflated at level 1 (binary data — outlines, pictures — hardly gains from more) and
the last few results are kept by their input's bytes, so the second writer pays nothing.
"""

from __future__ import annotations

import functools
import zlib

#: Parts at least this large are deflated at level 1 and kept for the other writer.
LARGE = 16 * 1024
#: The level of smaller parts (XML, content streams): zlib's default.
SMALL_LEVEL = 6
_ZLIB_HEADERS = {1: b"\x78\x01", 6: b"\x78\x9c"}


def level_for(data: bytes) -> int:
    return 1 if len(data) >= LARGE else SMALL_LEVEL


def raw_deflate(data: bytes) -> bytes:
    """The raw deflate stream (RFC 1951) of ``data`` at :func:`level_for`'s level."""
    data = bytes(data)
    if len(data) >= LARGE:
        return _kept(data)
    return _deflate(data, SMALL_LEVEL)


def zlib_stream(data: bytes) -> bytes:
    """``data`` as a zlib stream (what a PDF FlateDecode filter reads), from :func:`raw_deflate`:
    byte for byte what ``zlib.compress(data, level_for(data))`` gives."""
    data = bytes(data)
    return _ZLIB_HEADERS[level_for(data)] + raw_deflate(data) + zlib.adler32(data).to_bytes(4, "big")


def _deflate(data: bytes, level: int) -> bytes:
    compressor = zlib.compressobj(level, zlib.DEFLATED, -15)
    return compressor.compress(data) + compressor.flush()


@functools.lru_cache(maxsize=8)
def _kept(data: bytes) -> bytes:
    return _deflate(data, 1)
