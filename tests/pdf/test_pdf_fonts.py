"""The PDF font objects: CIDs, widths, TJ corrections, ToUnicode, CIDSet, CIDToGIDMap for shared
glyphs, and the non-embedded baseline font the benchmark compares against."""

from __future__ import annotations

import io
import re
import zlib
from datetime import datetime

import pikepdf
import pytest
from fontTools.fontBuilder import FontBuilder
from fontTools.pens.ttGlyphPen import TTGlyphPen
from fontTools.ttLib import TTFont

from pages.fonts import FontError, FontFace, MissingGlyphs, cjk_face
from pages.model import Document, Page, Text
from pdf.fonts import (
    DRIFT_LIMIT,
    EmbeddedFont,
    StandardCidFont,
    _Sfnt,
    subset_tag,
    to_unicode_cmap,
    widths_array,
)
from pdf.writer import write_pdf

MIXED = "营业执照 No.91110000MA01ABCD2X (副本) <>\\"


def _cmap_pairs(data: bytes) -> dict[int, str]:
    pairs = {}
    for block in re.findall(rb"beginbfchar\n(.*?)endbfchar", data, re.S):
        for code, text in re.findall(rb"<([0-9A-F]{4})> <([0-9A-F]+)>", block):
            pairs[int(code, 16)] = bytes.fromhex(text.decode()).decode("utf-16-be")
    return pairs


@pytest.fixture(scope="module")
def mixed() -> EmbeddedFont:
    return EmbeddedFont(MIXED)


def test_cids_are_the_subsets_glyph_ids(mixed):
    program = TTFont(io.BytesIO(mixed.program))
    order = program.getGlyphOrder()
    assert mixed.cid_of == {chr(cp): order.index(name) for cp, name in program.getBestCmap().items()}
    assert mixed.identity and mixed.glyph_count == program["maxp"].numGlyphs == len(set(MIXED)) + 1
    assert mixed.text_of == {cid: ch for ch, cid in mixed.cid_of.items()}
    assert mixed.units_per_em == program["head"].unitsPerEm
    assert re.fullmatch(r"[A-Z]{6}\+WenQuanYiZenHei", mixed.base_font)


def test_widths_round_the_exact_advances(mixed):
    face = cjk_face()
    for ch, cid in mixed.cid_of.items():
        assert mixed.advances[cid] == pytest.approx(face.advance(ch, 1) * 1000, abs=1e-9)
        assert mixed.widths[cid] == round(mixed.advances[cid]) and isinstance(mixed.widths[cid], int)


def _positions(font: EmbeddedFont, operation: str) -> list[float]:
    """Each glyph's start, in 1/1000 em, as a reader computes it from /W and TJ."""
    x, out = 0.0, []
    for token in re.findall(r"<[0-9a-f]+>|-?[\d.]+", operation):
        if token.startswith("<"):
            codes = bytes.fromhex(token[1:-1])
            for i in range(0, len(codes), 2):
                out.append(x)
                x += font.widths[int.from_bytes(codes[i:i + 2], "big")]
        else:
            x -= float(token)
    return out


def test_show_puts_every_glyph_at_its_exact_advance(mixed):
    operation = mixed.show(MIXED)
    assert operation.startswith("[") and operation.endswith("] TJ")
    assert not re.search(r"-?[\d.]+\] TJ$", operation)  # no adjustment after the last glyph
    exact, expected = 0.0, []
    for ch in MIXED:
        expected.append(exact)
        exact += mixed.advances[mixed.cid_of[ch]]
    positions = _positions(mixed, operation)
    assert len(positions) == len(MIXED)
    for got, want in zip(positions, expected, strict=True):
        assert abs(got - want) < DRIFT_LIMIT + 1e-3
    codes = b"".join(bytes.fromhex(t[1:-1]) for t in re.findall(r"<[0-9a-f]+>", operation))
    assert codes == mixed.encode(MIXED)


def test_show_is_a_plain_tj_when_widths_are_whole():
    font = EmbeddedFont("营业执照")
    assert all(w == a for w, a in zip(font.widths.values(), font.advances.values(), strict=True))
    assert re.fullmatch(r"<[0-9a-f]{16}> Tj", font.show("营业执照"))


def test_characters_outside_the_subset_or_face_are_named():
    font = EmbeddedFont("营业")
    with pytest.raises(FontError, match="'执' is not in this document's font subset"):
        font.show("营业执照")
    with pytest.raises(MissingGlyphs, match=r"U\+E000"):
        EmbeddedFont("营\ue000")


def test_dictionary_objects(mixed):
    pdf = pikepdf.new()
    font = mixed.dictionary(pdf)
    assert font.is_indirect and font.Subtype == "/Type0" and font.Encoding == "/Identity-H"
    descendant = font.DescendantFonts[0]
    assert descendant.DW == 1000 and descendant.CIDToGIDMap == "/Identity"
    assert [int(v) if not isinstance(v, pikepdf.Array) else [int(w) for w in v] for v in descendant.W] == (
        [int(v) if not isinstance(v, pikepdf.Array) else [int(w) for w in v]
         for v in widths_array(mixed.widths)])
    descriptor = descendant.FontDescriptor
    assert descriptor.FontFile2.read_bytes() == mixed.program
    assert str(descriptor.FontName) == "/" + mixed.base_font
    assert [int(v) for v in descriptor.FontBBox] == [round(v * 1000 / mixed.units_per_em) for v in mixed.bbox]
    assert int(descriptor.Ascent) > 0 > int(descriptor.Descent)
    bits = descriptor.CIDSet.read_bytes()
    present = [cid for cid in range(len(bits) * 8) if bits[cid // 8] & (0x80 >> cid % 8)]
    assert present == list(range(mixed.glyph_count))
    assert _cmap_pairs(font.ToUnicode.read_bytes()) == mixed.text_of


def test_widths_array_is_compact():
    assert widths_array({}).unparse() == b"[ ]"
    array = widths_array({5: 1000, 1: 500, 2: 600, 9: 250})
    assert array.unparse() == b"[ 1 [ 500 600 ] 5 [ 1000 ] 9 [ 250 ] ]"


def test_to_unicode_blocks_and_surrogates():
    mapping = {cid: chr(0x4E00 + cid) for cid in range(1, 251)}
    mapping[300] = "\U00020000"
    data = to_unicode_cmap(mapping)
    assert data.count(b"beginbfchar") == 3 and b"100 beginbfchar" in data and b"51 beginbfchar" in data
    assert b"<012C> <D840DC00>" in data
    assert _cmap_pairs(data) == mapping
    assert b"/CMapName /Adobe-Identity-UCS def" in data and b"<0000> <FFFF>" in data


def test_subset_tag():
    tag = subset_tag(b"font one")
    assert re.fullmatch(r"[A-Z]{6}", tag) and tag == subset_tag(b"font one")
    assert tag != subset_tag(b"font two")


@pytest.mark.parametrize("data", [b"", b"\x00\x01\x00\x00\x00\x05" + bytes(6),
                                  bytes(12) + b"cmap" + bytes(12)])
def test_broken_font_programs_are_font_errors(data):
    with pytest.raises(FontError):
        _Sfnt(data)


# -- two characters, one glyph --------------------------------------------------------------

def _shared_glyph_font(path) -> None:
    """A tiny TrueType face where 'A' and U+0391 (Greek Alpha) share one glyph."""
    builder = FontBuilder(1000, isTTF=True)
    builder.setupGlyphOrder([".notdef", "box", "bar"])
    builder.setupCharacterMap({0x41: "box", 0x391: "box", 0x42: "bar"})
    glyphs = {}
    for name, (x0, x1) in {".notdef": (50, 450), "box": (50, 550), "bar": (100, 200)}.items():
        pen = TTGlyphPen(None)
        pen.moveTo((x0, 0))
        pen.lineTo((x0, 700))
        pen.lineTo((x1, 700))
        pen.lineTo((x1, 0))
        pen.closePath()
        glyphs[name] = pen.glyph()
    builder.setupGlyf(glyphs)
    builder.setupHorizontalMetrics({".notdef": (500, 50), "box": (600, 50), "bar": (333, 100)})
    builder.setupHorizontalHeader(ascent=800, descent=-200)
    builder.setupNameTable({"familyName": "Shared Test", "styleName": "Regular", "psName": "SharedTest"})
    builder.setupOS2(sTypoAscender=800, sTypoDescender=-200, usWinAscent=800, usWinDescent=200)
    builder.setupPost()
    builder.save(str(path))


@pytest.fixture
def shared_face(tmp_path, monkeypatch) -> FontFace:
    path = tmp_path / "shared.ttf"
    _shared_glyph_font(path)
    monkeypatch.setenv("ZHENGYIN_CJK_FONT", str(path))
    return cjk_face()


def test_characters_sharing_a_glyph_get_codes_of_their_own(shared_face):
    font = EmbeddedFont("AΑB", shared_face)
    assert shared_face.glyph_id("A") == shared_face.glyph_id("Α")
    assert len({font.cid_of[c] for c in "AΑB"}) == 3 and not font.identity
    assert font.cid_of["Α"] == font.glyph_count  # the first code past the last glyph
    assert font.gid_of_cid[font.cid_of["Α"]] == font.gid_of_cid[font.cid_of["A"]]
    pdf = pikepdf.new()
    dictionary = font.dictionary(pdf)
    table = dictionary.DescendantFonts[0].CIDToGIDMap.read_bytes()
    gids = [int.from_bytes(table[i:i + 2], "big") for i in range(0, len(table), 2)]
    assert gids == [font.gid_of_cid.get(cid, cid) for cid in range(font.glyph_count + 1)]
    assert _cmap_pairs(dictionary.ToUnicode.read_bytes()) == {font.cid_of[c]: c for c in "AΑB"}
    bits = dictionary.DescendantFonts[0].FontDescriptor.CIDSet.read_bytes()
    assert bits == bytes([0xF0])  # CIDs 0-3: three glyphs and the extra code


@pytest.mark.interop
def test_shared_glyph_text_is_extracted_exactly(shared_face):
    pdfium = pytest.importorskip("pypdfium2")
    document = Document((Page.a4([Text(20, 30, "AΑBA", 10)]),), created=datetime(2026, 5, 20))
    written = write_pdf(document)
    text = pdfium.PdfDocument(written)[0].get_textpage().get_text_range()
    assert text == "AΑBA"


# -- the non-embedded baseline ---------------------------------------------------------------

def test_standard_cid_font_references_stsong_without_embedding():
    font = StandardCidFont("营业执照 ABC")
    assert font.show("营业 A") == f"<{'营业 A'.encode('utf-16-be').hex()}> Tj"
    pdf = pikepdf.new()
    dictionary = font.dictionary(pdf)
    assert dictionary.BaseFont == "/STSong-Light" and dictionary.Encoding == "/UniGB-UCS2-H"
    descriptor = dictionary.DescendantFonts[0].FontDescriptor
    assert not any(key in descriptor for key in ("/FontFile", "/FontFile2", "/FontFile3"))
    with pytest.raises(FontError, match="beyond the BMP"):
        StandardCidFont("营\U00020000")


@pytest.mark.interop
def test_the_baseline_pdf_carries_the_same_text():
    pdfium = pytest.importorskip("pypdfium2")
    document = Document((Page.a4([Text(20, 30, "营业执照 ABC", 8)]),), created=datetime(2026, 5, 20))
    written = write_pdf(document, font=StandardCidFont)
    pdf = pikepdf.open(io.BytesIO(written))
    assert pdf.pages[0].Resources.Font.F1.BaseFont == "/STSong-Light"
    assert pdfium.PdfDocument(written)[0].get_textpage().get_text_range() == "营业执照 ABC"
    embedded = write_pdf(document)
    assert len(written) < len(embedded)
    assert zlib.decompress(pdf.pages[0].Contents.read_raw_bytes()).count(b" Tj") == 1
