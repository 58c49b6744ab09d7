"""The CJK font: where it comes from, its metrics, and the subsets documents embed.

Every document we write embeds its glyphs, so a licence looks the same in every reader and
seal images look the same on every machine. The font must allow embedding: WenQuanYi Zen Hei
(GPLv2 with the font-embedding exception, TrueType outlines, so it works as a PDF
CIDFontType2 and as an OFD embedded font). The project's set-up installs it from Debian
(``fonts-wqy-zenhei``); ``ZHENGYIN_CJK_FONT`` points elsewhere (a .ttf or .ttc with
TrueType outlines).

The full face is 11 MB; a document embeds only the glyphs it uses. ``fontTools.subset``
takes ~200 ms on this face (it decodes the 45,000 PostScript glyph names and every layout
table on each call), too slow for issuing licences in bulk, so :meth:`FontFace.subset`
builds the subset directly from the raw ``glyf`` data parsed once per process: only the
needed glyphs (and the components of composite glyphs) are decoded, and the layout,
vertical and bitmap tables are left out because both writers position every glyph
themselves. Timestamps in the result are the source font's, so the same characters always
give the same bytes.
"""

from __future__ import annotations

import functools
import io
import os
import struct
from array import array
from pathlib import Path

from fontTools.misc import sstruct
from fontTools.ttLib import TTFont, TTLibError, newTable
from fontTools.ttLib.tables import _p_o_s_t
from fontTools.ttLib.tables._c_m_a_p import CmapSubtable
from fontTools.ttLib.tables._g_l_y_f import Glyph

FONT_ENV = "ZHENGYIN_CJK_FONT"

#: Looked for in this order when ZHENGYIN_CJK_FONT is not set.
CANDIDATES = (
    Path("/usr/share/fonts/truetype/wqy/wqy-zenhei.ttc"),
    Path("/usr/share/fonts/wqy-zenhei/wqy-zenhei.ttc"),
)


class FontNotFound(RuntimeError):
    """No usable CJK font: say how to get one."""


class FontError(Exception):
    """The font cannot do what a document needs (unreadable file, characters it lacks)."""


class MissingGlyphs(FontError, ValueError):
    """The text uses characters the font has no glyph for; ``characters`` lists them once each."""

    def __init__(self, characters: str, font_name: str) -> None:
        self.characters = characters
        self.font_name = font_name
        shown = ", ".join(f"{c!r} (U+{ord(c):04X})" for c in characters)
        super().__init__(f"the font {font_name} has no glyph for {shown}")


def cjk_font_path() -> Path:
    """The CJK font file to embed; raises FontNotFound with the remedy when there is none."""
    configured = os.environ.get(FONT_ENV)
    if configured:
        path = Path(configured)
        if not path.is_file():
            raise FontNotFound(f"{FONT_ENV}={configured} is not a file")
        return path
    for path in CANDIDATES:
        if path.is_file():
            return path
    raise FontNotFound("no CJK font found: install Debian's fonts-wqy-zenhei "
                       f"(`make install` does) or set {FONT_ENV} to a .ttf/.ttc file")


def _name(gid: int) -> str:
    return ".notdef" if gid == 0 else f"g{gid}"


class _GlyphNames:
    """Stands in for the source glyf table when decoding composites: component IDs -> names."""

    extended = False  # 16-bit component glyph IDs, as in every font with under 65,536 glyphs

    @staticmethod
    def getGlyphName(gid: int) -> str:  # noqa: N802 - fontTools' name
        return _name(gid)


# Tables a TrueType reader needs, copied from the source and adjusted by the compiler.
_COPIED_TABLES = ("head", "hhea", "maxp", "OS/2", "name")


class FontFace:
    """One TrueType face, parsed once: metrics in millimetres and subsets to embed.

    Use :func:`cjk_face` (or :meth:`load`) rather than the constructor: they cache the parsed
    face for the life of the process. Instances are immutable after construction and safe to
    share between threads.
    """

    def __init__(self, path: Path, font_number: int = 0) -> None:
        self.path = path
        self.font_number = font_number
        try:
            with TTFont(path, fontNumber=font_number, lazy=True, recalcTimestamp=False) as font:
                self._read(font)
        except FontError:
            raise
        except (OSError, TTLibError, struct.error, KeyError, IndexError, ValueError, AssertionError) as exc:
            raise FontError(f"{path} (font {font_number}) is not a readable TrueType font: "
                            f"{type(exc).__name__}: {exc}") from exc
        self._subset = functools.lru_cache(maxsize=64)(self._build_subset)

    def _read(self, font: TTFont) -> None:
        where = f"{self.path} (font {self.font_number})"
        if "glyf" not in font.reader or "loca" not in font.reader:
            raise FontError(f"{where} has no TrueType (glyf) outlines")
        num_glyphs = font["maxp"].numGlyphs
        # Names by glyph ID: avoids decoding the 45,000 names of the post table.
        font.setGlyphOrder([_name(i) for i in range(num_glyphs)])
        self.units_per_em: int = font["head"].unitsPerEm
        self._cmap: dict[int, int] = {cp: int(n[1:]) if n != ".notdef" else 0
                                      for cp, n in (font.getBestCmap() or {}).items()}
        if not self._cmap:
            raise FontError(f"{where} has no Unicode cmap")
        metrics = font["hmtx"].metrics
        self._metrics: list[tuple[int, int]] = [metrics[_name(i)] for i in range(num_glyphs)]
        self._loca = array("I", font["loca"].locations)
        self._glyf: bytes = font.reader["glyf"]
        if len(self._loca) != num_glyphs + 1 or self._loca[-1] > len(self._glyf):
            raise FontError(f"{where}: loca does not fit glyf")
        self._tables = {tag: font.reader[tag] for tag in _COPIED_TABLES}
        self._post = font.reader["post"][:_p_o_s_t.postFormatSize]
        name = font["name"]
        self.family_name: str = str(name.getDebugName(1) or self.path.stem)
        self.postscript_name: str = str(name.getDebugName(6) or self.family_name.replace(" ", ""))
        hhea = font["hhea"]
        self._ascent: int = hhea.ascent
        self._descent: int = hhea.descent

    @classmethod
    def load(cls, path: Path, font_number: int = 0) -> FontFace:
        """The face at ``path``, parsed on first use and cached for the process."""
        return _load(Path(path).resolve(), font_number)

    # -- metrics -------------------------------------------------------------------------------

    def covers(self, text: str) -> bool:
        """True when every character of ``text`` has a glyph."""
        return all(ord(c) in self._cmap for c in text)

    def missing(self, text: str) -> str:
        """The characters of ``text`` without a glyph, each once, in order of appearance."""
        return "".join(dict.fromkeys(c for c in text if ord(c) not in self._cmap))

    def require(self, text: str) -> None:
        """Raise MissingGlyphs naming every character of ``text`` the font lacks."""
        absent = self.missing(text)
        if absent:
            raise MissingGlyphs(absent, self.family_name)

    def glyph_id(self, ch: str) -> int:
        """The glyph ID of ``ch`` in the full face (raises MissingGlyphs)."""
        try:
            return self._cmap[ord(ch)]
        except KeyError:
            raise MissingGlyphs(ch, self.family_name) from None

    def advance(self, ch: str, size: float) -> float:
        """Horizontal advance of ``ch`` in mm at font size ``size`` mm (the em square)."""
        return self._metrics[self.glyph_id(ch)][0] * size / self.units_per_em

    def advances(self, text: str, size: float) -> list[float]:
        """The advance of each character of ``text``, in mm; one error names all missing ones."""
        self.require(text)
        scale = size / self.units_per_em
        return [self._metrics[self._cmap[ord(c)]][0] * scale for c in text]

    def text_width(self, text: str, size: float) -> float:
        """Width of ``text`` set on one line without kerning, in mm."""
        return sum(self.advances(text, size))

    def ascent(self, size: float) -> float:
        """Distance from the baseline up to the top of the line box, in mm (positive)."""
        return self._ascent * size / self.units_per_em

    def descent(self, size: float) -> float:
        """Distance from the baseline down to the bottom of the line box, in mm (positive)."""
        return -self._descent * size / self.units_per_em

    # -- subsets -------------------------------------------------------------------------------

    def subset(self, chars: str) -> bytes:
        """A TrueType font holding exactly the glyphs of ``chars`` (+ .notdef), to embed.

        It has glyf/loca, cmap (Windows Unicode; format 4, plus 12 beyond the BMP), hmtx,
        hhea, head, maxp, OS/2, name and post (format 3): what an OFD reader and a PDF
        FontFile2 need. Glyphs keep the order of the full face, so the subset's glyph IDs
        rise with the originals. Raises MissingGlyphs when the face lacks any of them.
        """
        self.require(chars)
        return self._subset("".join(sorted(set(chars))))

    def _glyph(self, gid: int) -> Glyph:
        glyph = Glyph(self._glyf[self._loca[gid]:self._loca[gid + 1]])
        if glyph.isComposite():
            glyph.expand(_GlyphNames)  # components by name, so the compiler renumbers them
        return glyph

    def _bounds(self, gid: int) -> tuple[int, int, int, int] | None:
        """The glyph's bounding box from its header, as the font states it (None when empty)."""
        start, end = self._loca[gid], self._loca[gid + 1]
        if end - start < 10:
            return None
        return struct.unpack_from(">hhhh", self._glyf, start + 2)

    def _build_subset(self, chars: str) -> bytes:
        codepoints = {ord(c): self._cmap[ord(c)] for c in chars}
        glyphs: dict[int, Glyph] = {}
        pending = [0, *codepoints.values()]
        while pending:
            gid = pending.pop()
            if gid in glyphs:
                continue
            glyph = glyphs[gid] = self._glyph(gid)
            if glyph.isComposite():
                pending.extend(int(c.glyphName[1:]) for c in glyph.components)
        order = sorted(glyphs)
        names = [_name(g) for g in order]

        # Outlines go through byte for byte; the compiler only renumbers composite components.
        font = TTFont(recalcBBoxes=False, recalcTimestamp=False)
        font.setGlyphOrder(names)
        for tag, data in self._tables.items():
            table = font[tag] = newTable(tag)
            table.decompile(data, font)

        glyf = font["glyf"] = newTable("glyf")
        glyf.glyphOrder = names
        glyf.glyphs = {_name(g): glyphs[g] for g in order}
        font["loca"] = newTable("loca")
        hmtx = font["hmtx"] = newTable("hmtx")
        hmtx.metrics = {_name(g): self._metrics[g] for g in order}
        self._fill_bounds(font, order)

        os2 = font["OS/2"]
        os2.usFirstCharIndex = min(min(codepoints, default=0), 0xFFFF)
        os2.usLastCharIndex = min(max(codepoints, default=0), 0xFFFF)
        font["cmap"] = _unicode_cmap({cp: _name(g) for cp, g in codepoints.items()})
        post = font["post"] = newTable("post")
        sstruct.unpack(_p_o_s_t.postFormat, self._post, post)
        post.formatType = 3.0  # no glyph names: readers map characters through cmap

        out = io.BytesIO()
        font.save(out)
        return out.getvalue()

    def _fill_bounds(self, font: TTFont, order: list[int]) -> None:
        """head's box and hhea's extremes for the glyphs kept (what recalcBBoxes would do)."""
        hhea, head = font["hhea"], font["head"]
        hhea.advanceWidthMax = max(self._metrics[g][0] for g in order)
        boxes = [(g, b) for g in order if (b := self._bounds(g)) is not None]
        if not boxes:
            return
        head.xMin = min(b[0] for _, b in boxes)
        head.yMin = min(b[1] for _, b in boxes)
        head.xMax = max(b[2] for _, b in boxes)
        head.yMax = max(b[3] for _, b in boxes)
        hhea.minLeftSideBearing = min(self._metrics[g][1] for g, _ in boxes)
        hhea.minRightSideBearing = min(self._metrics[g][0] - self._metrics[g][1] - (b[2] - b[0])
                                       for g, b in boxes)
        hhea.xMaxExtent = max(self._metrics[g][1] + (b[2] - b[0]) for g, b in boxes)


def _unicode_cmap(mapping: dict[int, str]):
    """Windows Unicode cmap: format 4 for the BMP, plus format 12 when beyond it."""
    cmap = newTable("cmap")
    cmap.tableVersion = 0
    bmp = CmapSubtable.newSubtable(4)
    bmp.platformID, bmp.platEncID, bmp.language = 3, 1, 0
    bmp.cmap = {cp: n for cp, n in mapping.items() if cp <= 0xFFFF}
    cmap.tables = [bmp]
    if any(cp > 0xFFFF for cp in mapping):
        full = CmapSubtable.newSubtable(12)
        full.platformID, full.platEncID, full.language = 3, 10, 0
        full.cmap = dict(mapping)
        cmap.tables.append(full)
    return cmap


@functools.lru_cache(maxsize=8)
def _load(path: Path, font_number: int) -> FontFace:
    return FontFace(path, font_number)


_FACES: dict[str | None, FontFace] = {}


def cjk_face() -> FontFace:
    """The CJK face every document uses (font number 0 of :func:`cjk_font_path`), cached.

    Layout asks for it for every line of text: finding and resolving the file each time cost a
    tenth of writing a licence, so the face is kept per value of ``ZHENGYIN_CJK_FONT`` (a new
    value finds its own file; the file itself was read whole when the face was parsed)."""
    key = os.environ.get(FONT_ENV) or None
    face = _FACES.get(key)
    if face is None:
        face = _FACES[key] = FontFace.load(cjk_font_path(), 0)
    return face
