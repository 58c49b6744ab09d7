"""pages.deflate: one engine for every part we deflate, its output read by plain zlib."""

from __future__ import annotations

import os
import zlib

import pytest

from pages import deflate
from pages.deflate import LARGE, raw_deflate, zlib_stream

PARTS = {
    "empty": b"",
    "xml": b"<ofd:TextObject ID='12' Boundary='10 20 30 40'/>" * 60,
    "binary": os.urandom(LARGE + 1000),
    "font-like": os.urandom(4000) + b"\x00\x01glyf" * (LARGE // 3),
}


def test_isal_is_the_engine_where_installed():
    # It is a dependency (pyproject.toml): a fresh install must not fall back to zlib silently.
    pytest.importorskip("isal")
    assert deflate.ENGINE == "isal"


@pytest.mark.parametrize("name", PARTS)
def test_every_part_inflates_with_zlib(name):
    data = PARTS[name]
    assert zlib.decompress(raw_deflate(data), -15) == data
    stream = zlib_stream(data)
    assert zlib.decompress(stream) == data  # header check bits and Adler-32 are right
    assert int.from_bytes(stream[:2], "big") % 31 == 0


def test_a_large_part_is_deflated_once_for_both_writers():
    data = PARTS["font-like"]
    first = raw_deflate(data)
    assert raw_deflate(bytes(data)) is first  # the ZIP entry and the PDF stream share it
    assert zlib_stream(data)[2:-4] == first


def test_compressible_parts_shrink():
    for name in ("xml", "font-like"):
        assert len(raw_deflate(PARTS[name])) < len(PARTS[name]) / 3
