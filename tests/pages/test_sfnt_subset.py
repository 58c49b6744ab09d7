"""The TrueType subset written directly (pages.sfnt): a well-formed font file that fontTools,
FreeType and the checksums agree on, with the source's outlines, metrics and mapping."""

from __future__ import annotations

import io
import struct
from array import array

import pytest
from fontTools.ttLib import TTFont
from PIL import ImageFont

from pages import sfnt
from pages.fonts import FontError, cjk_face, cjk_font_path


@pytest.fixture(scope="module")
def face():
    return cjk_face()


@pytest.fixture(scope="module")
def source():
    return TTFont(cjk_font_path(), fontNumber=0, lazy=True)


def _tables(data: bytes) -> dict[bytes, tuple[int, int, int]]:
    count = struct.unpack_from(">H", data, 4)[0]
    return {tag: (checksum, offset, length) for tag, checksum, offset, length in
            (struct.unpack_from(">4sIII", data, 12 + 16 * i) for i in range(count))}


def test_directory_and_checksums_follow_the_specification(face):
    data = face.subset("营业执照 统一社会信用代码 ABC123")
    assert data[:4] == b"\x00\x01\x00\x00"
    tables = _tables(data)
    assert list(tables) == sorted(tables)  # the directory is sorted by tag
    count = len(tables)
    search, selector, shift = struct.unpack_from(">HHH", data, 6)
    assert search == 16 * 2 ** (count.bit_length() - 1) and selector == count.bit_length() - 1
    assert shift == 16 * count - search
    for tag, (checksum, offset, length) in tables.items():
        assert offset % 4 == 0, tag
        body = bytearray(data[offset:offset + length])
        if tag == b"head":
            body[8:12] = b"\0\0\0\0"
        assert sfnt._checksum(bytes(body)) == checksum, tag
    assert sfnt._checksum(data) == 0xB1B0AFBA  # checkSumAdjustment balances the whole file


def test_every_glyph_keeps_its_advance_and_bearing(face, source):
    chars = "中华人民共和国营业执照，。：（）ABCxyz0189"
    font = TTFont(io.BytesIO(face.subset(chars)))
    cmap, full_cmap = font.getBestCmap(), source.getBestCmap()
    for ch in chars:
        assert font["hmtx"][cmap[ord(ch)]] == source["hmtx"][full_cmap[ord(ch)]], ch
    assert font["hhea"].numberOfHMetrics <= font["maxp"].numGlyphs
    # what PIL/FreeType measures through the subset is what the full face says
    part = ImageFont.truetype(io.BytesIO(face.subset(chars)), 100)
    full = ImageFont.truetype(str(cjk_font_path()), 100, index=0)
    for ch in chars:
        assert part.getlength(ch) == pytest.approx(full.getlength(ch)), ch


def test_a_large_subset_uses_the_long_loca_and_still_maps_every_character(face, source):
    full_cmap = source.getBestCmap()
    chars = "".join(chr(cp) for cp in sorted(full_cmap) if 0x4E00 <= cp < 0x9FA6)[:3000]
    data = face.subset(chars)
    font = TTFont(io.BytesIO(data))
    assert font["head"].indexToLocFormat == 1  # over 128 kB of outlines
    cmap = font.getBestCmap()
    assert set(cmap) == {ord(c) for c in chars}
    order = font.getGlyphOrder()
    names = {ch: order.index(cmap[ord(ch)]) for ch in chars[::97]}
    for ch, gid in names.items():
        assert font["glyf"][order[gid]].numberOfContours == source["glyf"][full_cmap[ord(ch)]].numberOfContours


def test_format_4_segments_cover_runs_and_end_with_the_terminator():
    mapping = {0x20: 3, 0x21: 4, 0x22: 5, 0x41: 9, 0x4E2D: 10, 0x4E2E: 11, 0x4E30: 12}
    table = sfnt._format_4(mapping)
    fmt, length, _language, seg_x2 = struct.unpack_from(">4H", table)
    assert fmt == 4 and length == len(table)
    count = seg_x2 // 2
    ends = struct.unpack_from(f">{count}H", table, 14)
    starts = struct.unpack_from(f">{count}H", table, 16 + 2 * count)
    assert list(zip(starts, ends, strict=True)) == [(0x20, 0x22), (0x41, 0x41), (0x4E2D, 0x4E2E), (0x4E30, 0x4E30),
                                                    (0xFFFF, 0xFFFF)]


def test_a_broken_source_glyph_is_a_font_error_not_a_crash(face, monkeypatch):
    # .notdef claims to be a composite whose component list runs off the end of its data
    broken = sfnt.SourceFont(glyf=b"\xff\xff" + b"\0" * 8 + b"\x00\x20\xff\xff", loca=array("I", [0, 14, 14]),
                             metrics=[(500, 0), (500, 0)],
                             head=face._source.head, hhea=face._source.hhea, maxp=face._source.maxp,
                             os2=face._source.os2, name=face._source.name, post=face._source.post)
    monkeypatch.setattr(face, "_source", broken)
    monkeypatch.setattr(face, "_cmap", {ord("A"): 1})
    with pytest.raises(FontError, match="cannot build a subset"):
        face._build_subset("A")
