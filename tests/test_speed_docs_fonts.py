"""What makes the font work cheaper changes no byte: the subset built from the glyphs a face keeps
is the one built from a face that keeps nothing, whatever was subset before (composite glyphs
renumbered afresh each time); the TJ adjustments kept per face and text are the ones worked out
anew; the ToUnicode CMap and /W are unchanged in form."""

from __future__ import annotations

import io
import random
import re

import pytest
from fontTools.ttLib import TTFont

from pages import sfnt
from pages.fonts import cjk_face
from pdf import fonts as pdf_fonts
from pdf.fonts import EmbeddedFont, to_unicode_cmap, widths_array, widths_text


@pytest.fixture(scope="module")
def face():
    return cjk_face()


def fresh(source: sfnt.SourceFont) -> sfnt.SourceFont:
    """The same source with no glyph kept."""
    return sfnt.SourceFont(glyf=source.glyf, loca=source.loca, metrics=source.metrics, head=source.head,
                           hhea=source.hhea, maxp=source.maxp, os2=source.os2, name=source.name, post=source.post)


def composites(face, count: int) -> list[int]:
    source = face._source
    return [cp for cp, gid in sorted(face._cmap.items())
            if sfnt._is_composite(sfnt._glyph_data(source, gid))][:count]


def test_kept_glyphs_give_the_same_subset_as_none_kept(face):
    rng = random.Random(38540)
    codepoints = sorted(face._cmap)
    mixed = composites(face, 40)
    assert mixed, "the face has composite glyphs to renumber"
    kept = fresh(face._source)
    for _ in range(40):
        chosen = rng.sample(codepoints, rng.choice([1, 30, 200])) + rng.sample(mixed, 5)
        mapping = {cp: face._cmap[cp] for cp in chosen}
        assert sfnt.subset(kept, mapping) == sfnt.subset(fresh(face._source), mapping)
    assert kept.glyphs


def test_a_composite_is_renumbered_for_each_subset(face):
    kept = fresh(face._source)
    composite = composites(face, 1)[0]
    small = {composite: face._cmap[composite]}
    large = {cp: face._cmap[cp] for cp in [*sorted(face._cmap)[:300], composite]}
    first = sfnt.subset(kept, small)
    sfnt.subset(kept, large)  # another numbering of the same components
    assert sfnt.subset(kept, small) == first
    font = TTFont(io.BytesIO(first))
    glyph = font["glyf"][font.getBestCmap()[composite]]
    assert glyph.isComposite()
    assert all(font.getGlyphID(c.glyphName) < len(font.getGlyphOrder()) for c in glyph.components)


def test_the_file_checksum_balances(face):
    data = face.subset("营业执照（副本）" + chr(composites(face, 1)[0]))
    assert sfnt._checksum(data) == 0xB1B0AFBA


def _breaks_anew(font: EmbeddedFont, text: str) -> str:
    pdf_fonts._BREAKS.clear()
    return font.show(text)


def test_kept_adjustments_are_the_ones_worked_out_anew():
    rng = random.Random(7)
    pool = "营业执照统一社会信用代码名称类型住所法定代表人 ABCDEFGHIJ0123456789（）：,.-"
    texts = ["".join(rng.choice(pool) for _ in range(rng.randint(1, 40))) for _ in range(60)]
    one, other = EmbeddedFont(pool), EmbeddedFont(pool[::3] + pool)  # other CIDs for the same text
    for text in texts:
        for font in (one, other):
            kept = font.show(text)
            assert kept == font.show(text) == _breaks_anew(font, text)
            codes = "".join(re.findall(r"<([0-9a-f]+)>", kept))
            assert codes == font.encode(text).hex()
    assert any(" TJ" in one.show(text) for text in texts)


def test_cmap_and_widths_keep_their_form():
    mapping = {1: "A", 2: "中", 0x30: "\U00020000"}
    assert b"<0001> <0041>\n<0002> <4E2D>\n<0030> <D840DC00>\n" in to_unicode_cmap(mapping)
    assert widths_text({5: 1000, 1: 500, 2: 600}) == b"[ 1 [ 500 600 ] 5 [ 1000 ] ]"
    assert widths_array({5: 1000}).unparse() == b"[ 5 [ 1000 ] ]"
