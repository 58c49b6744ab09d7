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
needed glyphs (and the components of composite glyphs) are copied, and the layout,
vertical and bitmap tables are left out because both writers position every glyph
themselves. The font file is written by :mod:`pages.sfnt` without fontTools' table
compilers (which took 3–6 ms a licence). Timestamps in the result are the source font's, so
the same characters always give the same bytes.
"""

from __future__ import annotations

import functools
import os
import struct
from array import array
from pathlib import Path

from fontTools.ttLib import TTFont, TTLibError

from . import sfnt
from .sfnt import SourceFont

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
        # The characters as one set: "does the face cover this text" is a single C-level
        # superset test (every text field is checked when validated, laid out and subset).
        self._chars: frozenset[str] = frozenset(map(chr, self._cmap))
        #: Each character's advance in font units, filled as text meets them (at most the
        #: face's characters): every line is measured by the layout and both writers.
        self._unit_of: dict[str, int] = {}
        metrics = font["hmtx"].metrics
        self._metrics: list[tuple[int, int]] = [metrics[_name(i)] for i in range(num_glyphs)]
        loca = array("I", font["loca"].locations)
        glyf: bytes = font.reader["glyf"]
        if len(loca) != num_glyphs + 1 or loca[-1] > len(glyf):
            raise FontError(f"{where}: loca does not fit glyf")
        raw = {tag: font.reader[tag] for tag in ("head", "hhea", "maxp", "OS/2", "name", "post")}
        sizes = {"head": 54, "hhea": 36, "maxp": 6, "OS/2": 68, "post": 32}
        short = [tag for tag, size in sizes.items() if len(raw[tag]) < size]
        if short:
            raise FontError(f"{where}: table(s) {', '.join(short)} too short")
        self._source = SourceFont(glyf=glyf, loca=loca, metrics=self._metrics, head=raw["head"][:54],
                                  hhea=raw["hhea"][:36], maxp=raw["maxp"], os2=raw["OS/2"], name=raw["name"],
                                  post=raw["post"][:32])
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
        return self._chars.issuperset(text)

    def missing(self, text: str) -> str:
        """The characters of ``text`` without a glyph, each once, in order of appearance."""
        if self._chars.issuperset(text):
            return ""
        return "".join(c for c in dict.fromkeys(text) if ord(c) not in self._cmap)

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

    def unit_advances(self, text: str) -> list[int]:
        """The advance of each character of ``text`` in font units (of ``units_per_em``); one
        MissingGlyphs names all the characters the face lacks."""
        table = self._unit_of
        try:
            return list(map(table.__getitem__, text))
        except KeyError:
            self.require(text)
            for c in text:
                if c not in table:
                    table[c] = self._metrics[self._cmap[ord(c)]][0]
            return list(map(table.__getitem__, text))

    def advances(self, text: str, size: float) -> list[float]:
        """The advance of each character of ``text``, in mm; one error names all missing ones."""
        scale = size / self.units_per_em
        return [u * scale for u in self.unit_advances(text)]

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

    def _build_subset(self, chars: str) -> bytes:
        try:
            return sfnt.subset(self._source, {ord(c): self._cmap[ord(c)] for c in chars})
        except (ValueError, IndexError, struct.error) as exc:
            raise FontError(f"cannot build a subset of {self.family_name} for {len(chars)} characters: "
                            f"{exc}") from exc


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
