"""The ZIP archive of an OFD package, written directly: deflate done once, where it is shared.

:func:`ofd.package.write_package` used :mod:`zipfile`, which deflates each entry itself; the
font subset a licence embeds (~50 kB) is then deflated twice, once here and once for the PDF.
This writer takes each entry's data already compressed (:func:`pages.deflate.raw_deflate`,
which keeps the font's result for the PDF) and lays out exactly what ``zipfile`` writes for
the same entries — local headers without extra fields, version 2.0, bit 11 for UTF-8 names,
the central directory (files rw------- for Unix, as zipfile marks them) and the end record
(no ZIP64: an OFD is far below 4 GiB) — as tests/ofd/test_zip_writer.py checks byte for byte.
"""

from __future__ import annotations

import struct
import zlib
from collections.abc import Iterable
from dataclasses import dataclass

STORED, DEFLATED = 0, 8
_VERSION = 20
_UTF8_NAME = 0x800
_LIMIT = 0xFFFFFFFF
#: Unix mode rw------- in the high half, as zipfile's writestr leaves every entry.
_EXTERNAL = 0o600 << 16


@dataclass(frozen=True)
class Entry:
    name: str
    data: bytes              # the entry's content
    method: int              # STORED or DEFLATED
    compressed: bytes        # what is written: ``data`` itself when stored


def _dos(stamp: tuple[int, int, int, int, int, int]) -> tuple[int, int]:
    year, month, day, hour, minute, second = stamp
    return hour << 11 | minute << 5 | second // 2, (year - 1980) << 9 | month << 5 | day


def write_zip(entries: Iterable[Entry], stamp: tuple[int, int, int, int, int, int]) -> bytes:
    """The archive of ``entries`` in order, every entry dated ``stamp`` (local wall clock)."""
    dostime, dosdate = _dos(stamp)
    out, directory, count = bytearray(), bytearray(), 0
    for entry in entries:
        if entry.method not in (STORED, DEFLATED):
            raise ValueError(f"unknown compression method {entry.method}")
        try:
            name, flags = entry.name.encode("ascii"), 0
        except UnicodeEncodeError:
            name, flags = entry.name.encode("utf-8"), _UTF8_NAME
        if len(entry.data) * 1.05 > _LIMIT or len(entry.compressed) > _LIMIT or len(out) > _LIMIT:
            raise ValueError(f"entry {entry.name!r} needs ZIP64, which OFD packages never do")
        crc = zlib.crc32(entry.data)
        sizes = (len(entry.compressed), len(entry.data))
        fields = (flags, entry.method, dostime, dosdate, crc, *sizes, len(name))
        directory += struct.pack("<4s4B4HL2L5H2L", b"PK\x01\x02", _VERSION, 0, _VERSION, 0, *fields, 0, 0, 0,
                                 0, _EXTERNAL, len(out)) + name
        out += struct.pack("<4s2B4HL2L2H", b"PK\x03\x04", _VERSION, 0, *fields, 0) + name
        out += entry.compressed
        count += 1
    start = len(out)
    out += directory
    out += struct.pack("<4s4H2LH", b"PK\x05\x06", 0, 0, count, count, len(directory), start, 0)
    return bytes(out)
