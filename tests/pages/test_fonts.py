"""The CJK face: metrics, coverage and the subsets documents embed."""

from __future__ import annotations

import io

import pytest
from fontTools.pens.recordingPen import DecomposingRecordingPen
from fontTools.ttLib import TTFont
from PIL import Image, ImageDraw, ImageFont, ImageOps

from pages.fonts import (
    FONT_ENV,
    FontError,
    FontFace,
    FontNotFound,
    MissingGlyphs,
    cjk_face,
    cjk_font_path,
)

LICENCE_TEXT = "中华人民共和国营业执照 统一社会信用代码 91110000MA01ABCD2X，法定代表人：张三（签章）"


@pytest.fixture(scope="module")
def face() -> FontFace:
    return cjk_face()


@pytest.fixture(scope="module")
def source() -> TTFont:
    """The full face read independently of pages.fonts, to compare against."""
    return TTFont(cjk_font_path(), fontNumber=0, lazy=True)


def _outline(font: TTFont, ch: str) -> list:
    glyph_set = font.getGlyphSet()
    pen = DecomposingRecordingPen(glyph_set)
    glyph_set[font.getBestCmap()[ord(ch)]].draw(pen)
    return pen.value


def _composite_chars(source: TTFont, limit: int) -> str:
    glyf, found = source["glyf"], []
    for cp, name in sorted(source.getBestCmap().items()):
        if glyf[name].isComposite():
            found.append(chr(cp))
            if len(found) == limit:
                break
    return "".join(found)


def test_face_is_parsed_once_per_process(face):
    assert cjk_face() is face
    assert FontFace.load(cjk_font_path()) is face
    assert face.family_name == "WenQuanYi Zen Hei"


def test_advances_are_the_fonts_metrics_in_mm(face, source):
    upem = source["head"].unitsPerEm
    cmap, hmtx = source.getBestCmap(), source["hmtx"]
    for ch in "中A1，i ":
        expected = hmtx[cmap[ord(ch)]][0] / upem * 7.5
        assert face.advance(ch, 7.5) == pytest.approx(expected)
    assert face.text_width("中A1", 7.5) == pytest.approx(sum(face.advance(c, 7.5) for c in "中A1"))
    assert face.advances("ab", 2.0) == [face.advance("a", 2.0), face.advance("b", 2.0)]
    assert face.ascent(10) > 0 and face.descent(10) > 0


def test_coverage_names_each_missing_character_once(face):
    assert face.covers(LICENCE_TEXT)
    assert face.missing(LICENCE_TEXT) == ""
    text = "证😀照😀\U0010fffd"
    assert not face.covers(text)
    assert face.missing(text) == "😀\U0010fffd"
    with pytest.raises(MissingGlyphs) as caught:
        face.text_width(text, 5)
    assert caught.value.characters == "😀\U0010fffd"
    assert "U+1F600" in str(caught.value) and "U+10FFFD" in str(caught.value)
    assert "WenQuanYi Zen Hei" in str(caught.value)
    with pytest.raises(MissingGlyphs):
        face.advance("😀", 5)
    with pytest.raises(MissingGlyphs):
        face.subset("证😀")


def test_subset_has_exactly_the_characters_asked_for(face):
    data = face.subset(LICENCE_TEXT)
    font = TTFont(io.BytesIO(data))
    for tag in font.keys():  # every table decodes
        font[tag]
    assert font.sfntVersion == "\x00\x01\x00\x00"
    needed = {"glyf", "loca", "cmap", "hmtx", "hhea", "head", "maxp", "OS/2", "name", "post"}
    assert needed <= set(font.keys())
    assert not {"GSUB", "GPOS", "vmtx", "BDF "} & set(font.keys())
    cmap = font.getBestCmap()
    assert set(cmap) == {ord(c) for c in LICENCE_TEXT}
    assert font.getGlyphOrder()[0] == ".notdef"
    assert font["maxp"].numGlyphs == len(set(cmap.values())) + 1  # no composites among these
    assert font["name"].getDebugName(1) == "WenQuanYi Zen Hei"
    assert len(data) * 200 < cjk_font_path().stat().st_size


def test_subset_keeps_outlines_and_metrics(face, source):
    chars = LICENCE_TEXT + _composite_chars(source, 5) + "".join(
        chr(cp) for cp in sorted(source.getBestCmap()) if cp > 0xFFFF)[:3]
    font = TTFont(io.BytesIO(face.subset(chars)))
    cmap = font.getBestCmap()
    assert set(cmap) == {ord(c) for c in chars}
    assert any(s.format == 12 and s.platEncID == 10 for s in font["cmap"].tables)
    for ch in set(chars):
        assert _outline(font, ch) == _outline(source, ch), ch
        assert font["hmtx"][cmap[ord(ch)]][0] == source["hmtx"][source.getBestCmap()[ord(ch)]][0]
    # composite glyphs bring their components along, renumbered
    assert font["maxp"].numGlyphs > len(set(cmap.values())) + 1
    boxes = [font["glyf"][n] for n in font.getGlyphOrder() if font["glyf"][n].numberOfContours]
    assert font["head"].xMin == min(g.xMin for g in boxes)
    assert font["head"].yMax == max(g.yMax for g in boxes)


def test_freetype_draws_the_subset_like_the_full_face(face):
    """FreeType (through Pillow) reads the subset; glyphs land where the full face puts them.
    Not pixel-identical: FreeType's auto-hinter tunes itself on the characters a face holds."""
    chars = "中华人民共和国，。A1"
    full = ImageFont.truetype(str(cjk_font_path()), 48, index=0)
    part = ImageFont.truetype(io.BytesIO(face.subset(chars)), 48)
    for ch in chars:
        drawn = []
        for font in (full, part):
            image = Image.new("L", (64, 64), 255)
            ImageDraw.Draw(image).text((8, 4), ch, font=font, fill=0)
            drawn.append(image)
        ink = [sum(1 for v in im.tobytes() if v < 128) for im in drawn]
        assert ink[1] > 20, ch
        assert abs(ink[0] - ink[1]) <= 0.05 * ink[0], ch
        boxes = [ImageOps.invert(im).getbbox() for im in drawn]
        assert all(abs(a - b) <= 1 for a, b in zip(*boxes, strict=True)), ch


def test_subset_bytes_depend_only_on_the_character_set(face):
    assert face.subset("营业执照") == face.subset("照执业营照")
    assert face.subset("营业执照") != face.subset("营业执")


def test_empty_subset_still_is_a_font(face):
    font = TTFont(io.BytesIO(face.subset("")))
    assert font.getGlyphOrder() == [".notdef"]


@pytest.mark.interop
def test_reportlab_embeds_the_subset(face):
    """reportlab's own TrueType parser (a PDF embedder) accepts the subset and measures it alike."""
    from reportlab.pdfbase.ttfonts import TTFont as ReportlabFont

    font = ReportlabFont("zhengyin-subset", io.BytesIO(face.subset(LICENCE_TEXT)))
    width_pt = font.stringWidth("中华人民", 10)
    assert width_pt == pytest.approx(face.text_width("中华人民", 10), rel=1e-3)


def test_unreadable_font_is_a_font_error(tmp_path, face):
    empty = tmp_path / "empty.ttf"
    empty.write_bytes(b"\x00\x01\x00\x00" + b"\x00" * 64)
    with pytest.raises(FontError, match=r"empty\.ttf .*no TrueType \(glyf\) outlines"):
        FontFace(empty)
    truncated = tmp_path / "truncated.ttf"
    truncated.write_bytes(face.subset("营业执照")[:600])
    with pytest.raises(FontError, match=r"truncated\.ttf \(font 0\)"):
        FontFace(truncated)
    with pytest.raises(FontError, match="not a readable TrueType font"):
        FontFace(tmp_path / "absent.ttf")


def test_configured_font_must_exist(monkeypatch, tmp_path):
    monkeypatch.setenv(FONT_ENV, str(tmp_path / "absent.ttc"))
    with pytest.raises(FontNotFound, match=FONT_ENV):
        cjk_font_path()
