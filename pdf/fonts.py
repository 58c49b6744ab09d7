"""The PDF font objects for the page model's one CJK face.

:class:`EmbeddedFont` is what every document gets: a Type0 font with /Encoding /Identity-H
over a CIDFontType2 whose /FontFile2 is the subset :meth:`pages.fonts.FontFace.subset` builds
(2-4 ms for a licence's 150 characters, where fontTools.subset takes ~200 ms on this face;
bench/pdf_speed.py measures both). Every reader then draws the same glyphs at the same
places, and PDF/A forbids anything else.

* CIDs are the subset's glyph IDs (/CIDToGIDMap /Identity), read from the subset's own cmap
  so they are right whatever order the subsetter chose. When two characters share a glyph
  (some faces map compatibility ideographs onto their unified twins; WenQuanYi Zen Hei does
  not), the second one gets a CID of its own past the last glyph and a /CIDToGIDMap stream,
  so /ToUnicode can still give back exactly the character that was written.
* /W carries the subset's hmtx advances in 1/1000 em, rounded to whole units: pdfium keeps
  CID widths as integers (it truncates 299.805 to 299), so fractional widths would put glyphs
  in different places in different readers. :meth:`EmbeddedFont.show` puts the rounding back
  with ``TJ`` adjustments whenever it adds up to 0.05/1000 em, so every glyph lands where
  :func:`pages.model.set_text` (and the OFD writer) puts it, to within 1/20,000 em in every
  reader, and PDF/A's check that /W agrees with the font program (to one unit) holds.
* /ToUnicode maps every CID back to its character (UTF-16BE), so copy and paste, pdftotext
  and pdfium extract the model's text, CJK and ASCII alike.

:class:`StandardCidFont` references Adobe's STSong-Light without embedding anything. It is not
PDF/A and the writer never picks it on its own: it is the baseline ``bench/pdf_speed.py``
measures embedding against.
"""

from __future__ import annotations

import hashlib
import struct
import zlib
from typing import Protocol

import pikepdf

from pages.deflate import zlib_stream
from pages.fonts import FontError, FontFace, cjk_face

from .incremental import Name, ObjectSink, PikepdfObjects, Raw, Stream

__all__ = ["EmbeddedFont", "PdfFont", "StandardCidFont", "subset_tag", "to_unicode_cmap", "widths_array",
           "widths_text"]

#: The font program is deflated by pages.deflate (level 1: glyph outlines hardly compress;
#: level 6 took 0.6 ms more per licence for 5 % fewer bytes), once for both writers: the OFD
#: written just before holds the same subset.
_BFCHAR_LIMIT = 100  # entries per beginbfchar block (the CMap format's limit)
#: A TJ adjustment is written once the rounding of /W has moved a line this far (1/1000 em).
DRIFT_LIMIT = 0.05


class PdfFont(Protocol):
    """A font the writer can set text with: the text-showing operation and the font resource."""

    def show(self, text: str) -> str:
        """The operation drawing ``text`` from the current text position (``<...> Tj`` or
        ``[...] TJ``), each glyph advancing by the face's own advance."""
        ...

    def objects(self, sink: ObjectSink) -> object:
        """The font dictionary and what it refers to, put into ``sink``; the font's reference."""
        ...


# -- reading the few sfnt fields a FontDescriptor needs -----------------------------------------

class _Sfnt:
    """The tables of a TrueType file by tag, read with struct (no fontTools parse: ~1.5 ms)."""

    def __init__(self, data: bytes) -> None:
        try:
            (count,) = struct.unpack_from(">H", data, 4)
            self.tables = {}
            for index in range(count):
                tag, _, offset, length = struct.unpack_from(">4sIII", data, 12 + 16 * index)
                if offset + length > len(data):
                    raise FontError(f"the font subset's {tag!r} table runs past its end")
                self.tables[tag.decode("latin-1")] = memoryview(data)[offset:offset + length]
        except struct.error as exc:
            raise FontError(f"the font subset's table directory is truncated: {exc}") from exc
        missing = {"head", "hhea", "hmtx", "maxp", "cmap"} - set(self.tables)
        if missing:
            raise FontError(f"the font subset lacks the tables {sorted(missing)}")

    def unpack(self, tag: str, fmt: str, offset: int) -> tuple:
        try:
            return struct.unpack_from(fmt, self.tables[tag], offset)
        except struct.error as exc:
            raise FontError(f"the font subset's {tag} table is truncated") from exc

    def cmap(self) -> dict[int, int]:
        """Code point -> glyph ID from the Windows Unicode subtable (format 12, else 4)."""
        table = self.tables["cmap"]
        (count,) = self.unpack("cmap", ">H", 2)
        found = {}
        for index in range(count):
            platform, encoding, offset = self.unpack("cmap", ">HHI", 4 + 8 * index)
            if platform == 3 and encoding in (1, 10):
                found[encoding] = offset
        if 10 in found:
            return self._format12(table, found[10])
        if 1 in found:
            return self._format4(table, found[1])
        raise FontError("the font subset has no Windows Unicode cmap")

    @staticmethod
    def _format4(table: memoryview, at: int) -> dict[int, int]:
        try:
            fmt, _, _, seg_x2 = struct.unpack_from(">HHHH", table, at)
            if fmt != 4:
                raise FontError(f"the font subset's (3, 1) cmap is format {fmt}, not 4")
            segments = seg_x2 // 2
            ends = struct.unpack_from(f">{segments}H", table, at + 14)
            starts = struct.unpack_from(f">{segments}H", table, at + 16 + seg_x2)
            deltas = struct.unpack_from(f">{segments}h", table, at + 16 + 2 * seg_x2)
            range_at = at + 16 + 3 * seg_x2
            ranges = struct.unpack_from(f">{segments}H", table, range_at)
            mapping = {}
            for seg, (start, end, delta, rng) in enumerate(zip(starts, ends, deltas, ranges, strict=True)):
                for cp in range(start, end + 1):
                    if cp == 0xFFFF:
                        continue
                    if rng == 0:
                        gid = (cp + delta) & 0xFFFF
                    else:
                        (gid,) = struct.unpack_from(">H", table, range_at + 2 * seg + rng + 2 * (cp - start))
                        gid = (gid + delta) & 0xFFFF if gid else 0
                    if gid:
                        mapping[cp] = gid
            return mapping
        except struct.error as exc:
            raise FontError("the font subset's format 4 cmap is truncated") from exc

    @staticmethod
    def _format12(table: memoryview, at: int) -> dict[int, int]:
        try:
            (groups,) = struct.unpack_from(">I", table, at + 12)
            mapping = {}
            for index in range(groups):
                start, end, first = struct.unpack_from(">III", table, at + 16 + 12 * index)
                for cp in range(start, end + 1):
                    mapping[cp] = first + cp - start
            return mapping
        except struct.error as exc:
            raise FontError("the font subset's format 12 cmap is truncated") from exc


def subset_tag(font_program: bytes) -> str:
    """Six capital letters naming this subset (ISO 32000 §9.6.4), derived from its bytes:
    different subsets get different tags, the same subset always the same one."""
    digest = hashlib.sha256(font_program).digest()
    return "".join(chr(ord("A") + b % 26) for b in digest[:6])


def to_unicode_cmap(text_of: dict[int, str]) -> bytes:
    """A /ToUnicode CMap for 2-byte codes: each code -> its text, UTF-16BE."""
    lines = [b"/CIDInit /ProcSet findresource begin", b"12 dict begin", b"begincmap",
             b"/CIDSystemInfo << /Registry (Adobe) /Ordering (UCS) /Supplement 0 >> def",
             b"/CMapName /Adobe-Identity-UCS def", b"/CMapType 2 def",
             b"1 begincodespacerange", b"<0000> <FFFF>", b"endcodespacerange"]
    codes = sorted(text_of)
    for start in range(0, len(codes), _BFCHAR_LIMIT):
        block = codes[start:start + _BFCHAR_LIMIT]
        lines.append(b"%d beginbfchar" % len(block))
        lines.extend(b"<%04X> <%s>" % (code, _utf16(text_of[code])) for code in block)
        lines.append(b"endbfchar")
    lines += [b"endcmap", b"CMapName currentdict /CMap defineresource pop", b"end", b"end"]
    return b"\n".join(lines) + b"\n"


_UTF16: dict[str, bytes] = {}


def _utf16(text: str) -> bytes:
    """``text`` in UTF-16BE as upper-case hex digits, kept per character (a few thousand)."""
    found = _UTF16.get(text)
    if found is None:
        found = text.encode("utf-16-be").hex().upper().encode()
        if len(_UTF16) < 65536:
            _UTF16[text] = found
    return found


def _number(value: float) -> str:
    text = f"{value:.3f}".rstrip("0").rstrip(".")
    return "0" if text in ("-0", "") else text


def widths_text(width_of: dict[int, int]) -> bytes:
    """/W in its compact form, ``c [w1 w2 ...]`` for each run of consecutive CIDs, as PDF syntax."""
    runs: list[list[str]] = []
    previous = None
    for cid in sorted(width_of):
        if previous is None or cid != previous + 1:
            runs.append([str(cid), "["])
        runs[-1].append(str(width_of[cid]))
        previous = cid
    body = " ".join(" ".join(run) + " ]" for run in runs)
    return f"[ {body} ]".encode()


def widths_array(width_of: dict[int, int]) -> pikepdf.Object:
    """:func:`widths_text` as a pikepdf array."""
    return pikepdf.Object.parse(widths_text(width_of))


class EmbeddedFont:
    """The subset of ``face`` (default the CJK face) holding exactly ``chars``, as a Type0
    font; raises pages.fonts.MissingGlyphs naming any character the face lacks."""

    def __init__(self, chars: str, face: FontFace | None = None) -> None:
        self.face = face or cjk_face()
        self.program = self.face.subset(chars)
        sfnt = _Sfnt(self.program)
        self.units_per_em: int = sfnt.unpack("head", ">H", 18)[0]
        self.bbox: tuple[int, int, int, int] = sfnt.unpack("head", ">hhhh", 36)
        self.ascent, self.descent = sfnt.unpack("hhea", ">hh", 4)
        (metric_count,) = sfnt.unpack("hhea", ">H", 34)
        (self.glyph_count,) = sfnt.unpack("maxp", ">H", 4)
        self.cap_height = self.ascent
        if "OS/2" in sfnt.tables and len(sfnt.tables["OS/2"]) >= 90 and sfnt.unpack("OS/2", ">H", 0)[0] >= 2:
            self.cap_height = sfnt.unpack("OS/2", ">h", 88)[0] or self.ascent
        advances = sfnt.unpack("hmtx", f">{metric_count * 2}H", 0)[0::2]
        gid_of = sfnt.cmap()

        self.tag = subset_tag(self.program)
        self.base_font = f"{self.tag}+{self.face.postscript_name}"
        self.cid_of: dict[str, int] = {}
        self.text_of: dict[int, str] = {}
        self.gid_of_cid: dict[int, int] = {}
        extra = self.glyph_count
        for ch in sorted(set(chars)):
            gid = gid_of.get(ord(ch))
            if gid is None or gid >= self.glyph_count:
                raise FontError(f"the subset of {self.face.family_name} does not map {ch!r} "
                                f"(U+{ord(ch):04X}) to a glyph")
            cid = gid
            if gid in self.text_of:  # a glyph already showing another character
                cid, extra = extra, extra + 1
            if cid > 0xFFFF:
                raise FontError("more than 65,536 distinct codes in one document's font")
            self.cid_of[ch] = cid
            self.text_of[cid] = ch
            self.gid_of_cid[cid] = gid
        scale = 1000 / self.units_per_em
        #: Each CID's advance in 1/1000 em, exactly, and as /W gives it (rounded).
        self.advances: dict[int, float] = {
            cid: advances[min(gid, metric_count - 1)] * scale for cid, gid in self.gid_of_cid.items()}
        self.widths: dict[int, int] = {cid: round(w) for cid, w in self.advances.items()}
        self.identity = all(cid == gid for cid, gid in self.gid_of_cid.items())
        self._glyphs = {ch: (cid.to_bytes(2, "big"), self.widths[cid] - self.advances[cid])
                        for ch, cid in self.cid_of.items()}
        self._hex = {ch: f"{cid:04x}" for ch, cid in self.cid_of.items()}

    def encode(self, text: str) -> bytes:
        """Two bytes (big-endian CID) per character."""
        return b"".join(self._glyph(c)[0] for c in text)

    def _glyph(self, ch: str) -> tuple[bytes, float]:
        try:
            return self._glyphs[ch]
        except KeyError:
            raise FontError(f"{ch!r} is not in this document's font subset") from None

    def show(self, text: str) -> str:
        """``<codes> Tj``, or ``[<codes> adjustment <codes> ...] TJ`` where the rounded /W
        would move the line by :data:`DRIFT_LIMIT` or more: the adjustment (in 1/1000 em,
        positive = back) returns each following glyph to its exact place."""
        try:
            codes = "".join(map(self._hex.__getitem__, text))
        except KeyError:
            for ch in text:
                self._glyph(ch)  # names the character
            raise
        breaks = self._breaks(text)
        if not breaks:
            return f"<{codes}> Tj"
        parts, start = [], 0
        for end, adjustment in breaks:
            parts += [f"<{codes[4 * start:4 * end]}>", adjustment]
            start = end
        if start < len(text):
            parts.append(f"<{codes[4 * start:]}>")
        else:
            parts.pop()  # an adjustment after the last glyph moves nothing visible
        if len(parts) == 1:
            return f"{parts[0]} Tj"
        return f"[{' '.join(parts)}] TJ"

    def _breaks(self, text: str) -> tuple[tuple[int, str], ...]:
        """Where :meth:`show` puts an adjustment in ``text`` (after how many glyphs) and its
        value. It depends on the glyphs' advances alone — the face's, whatever the subset — so
        it is kept per face and text: a licence type's labels recur on every licence."""
        key = (self.face, text)
        found = _BREAKS.get(key)
        if found is None:
            breaks = []
            drift = 0.0  # how far ahead of the exact position the reader now is, in 1/1000 em
            for index, ch in enumerate(text, start=1):
                drift += self._glyphs[ch][1]
                if abs(drift) >= DRIFT_LIMIT:
                    adjustment = round(drift, 3)
                    breaks.append((index, _number(adjustment)))
                    drift -= adjustment
            found = tuple(breaks)
            if len(_BREAKS) >= _BREAKS_KEPT:
                _BREAKS.clear()
            _BREAKS[key] = found
        return found

    def _scaled(self, value: int) -> int:
        return round(value * 1000 / self.units_per_em)

    def dictionary(self, pdf: pikepdf.Pdf) -> pikepdf.Object:
        """The font dictionary, made indirect in ``pdf`` (:meth:`objects` through pikepdf)."""
        return self.objects(PikepdfObjects(pdf))

    def objects(self, sink: ObjectSink) -> object:
        """The Type0 font, its CIDFontType2, descriptor, program, /CIDSet and /ToUnicode."""
        program = sink.indirect(Stream({"Filter": Name("FlateDecode"), "Length1": len(self.program)},
                                       zlib_stream(self.program)))
        # Every CID up to the last maps to a glyph of the program (the subset's own, then the
        # extra codes of shared glyphs): /CIDSet says so, as PDF/A wants when it is present.
        last_cid = max(self.glyph_count - 1, *self.gid_of_cid)
        whole, rest = divmod(last_cid + 1, 8)
        cid_set = b"\xff" * whole + (bytes([(0xFF00 >> rest) & 0xFF]) if rest else b"")
        base_font = Name(self.base_font)
        descriptor = {
            "Type": Name("FontDescriptor"), "FontName": base_font, "Flags": 4,
            "FontBBox": [self._scaled(v) for v in self.bbox], "ItalicAngle": 0,
            "Ascent": self._scaled(self.ascent), "Descent": self._scaled(self.descent),
            "CapHeight": self._scaled(self.cap_height), "StemV": 80, "FontFile2": program,
            "CIDSet": sink.indirect(Stream({"Filter": Name("FlateDecode")}, zlib.compress(cid_set)))}
        if self.identity:
            cid_to_gid: object = Name("Identity")
        else:
            table = struct.pack(f">{last_cid + 1}H", *(self.gid_of_cid.get(cid, cid)
                                                       for cid in range(last_cid + 1)))
            cid_to_gid = sink.indirect(Stream({"Filter": Name("FlateDecode")}, zlib.compress(table)))
        descendant = {
            "Type": Name("Font"), "Subtype": Name("CIDFontType2"), "BaseFont": base_font,
            "CIDSystemInfo": {"Registry": "Adobe", "Ordering": "Identity", "Supplement": 0},
            "FontDescriptor": sink.indirect(descriptor), "DW": 1000, "W": Raw(widths_text(self.widths)),
            "CIDToGIDMap": cid_to_gid}
        to_unicode = sink.indirect(Stream({"Filter": Name("FlateDecode")},
                                          zlib.compress(to_unicode_cmap(self.text_of))))
        return sink.indirect({
            "Type": Name("Font"), "Subtype": Name("Type0"), "BaseFont": base_font,
            "Encoding": Name("Identity-H"), "DescendantFonts": [sink.indirect(descendant)],
            "ToUnicode": to_unicode})


#: ``EmbeddedFont._breaks`` per (face, text); cleared when this many are kept.
_BREAKS_KEPT = 8192
_BREAKS: dict[tuple[FontFace, str], tuple[tuple[int, str], ...]] = {}


class StandardCidFont:
    """Adobe's STSong-Light through the UniGB-UCS2-H CMap, not embedded: readers substitute a
    local font, so glyphs and widths vary by reader. Not PDF/A; a measuring baseline only.
    Widths are the default 1000 (the font program's real widths are the reader's), so text is
    not placed exactly where :func:`pages.model.set_text` puts it."""

    def __init__(self, chars: str) -> None:
        wide = sorted({c for c in chars if ord(c) > 0xFFFF})
        if wide:
            raise FontError(f"UCS-2 cannot encode {', '.join(repr(c) for c in wide)} (beyond the BMP)")

    def show(self, text: str) -> str:
        return f"<{text.encode('utf-16-be').hex()}> Tj"

    def dictionary(self, pdf: pikepdf.Pdf) -> pikepdf.Object:
        """The font dictionary, made indirect in ``pdf`` (:meth:`objects` through pikepdf)."""
        return self.objects(PikepdfObjects(pdf))

    def objects(self, sink: ObjectSink) -> object:
        """The Type0 font over STSong-Light and its descendant, nothing embedded."""
        descriptor = {"Type": Name("FontDescriptor"), "FontName": Name("STSong-Light"), "Flags": 6,
                      "FontBBox": [-25, -254, 1000, 880], "ItalicAngle": 0, "Ascent": 880,
                      "Descent": -120, "CapHeight": 880, "StemV": 93}
        descendant = {
            "Type": Name("Font"), "Subtype": Name("CIDFontType0"), "BaseFont": Name("STSong-Light"),
            "CIDSystemInfo": {"Registry": "Adobe", "Ordering": "GB1", "Supplement": 4},
            "FontDescriptor": sink.indirect(descriptor), "DW": 1000}
        return sink.indirect({
            "Type": Name("Font"), "Subtype": Name("Type0"), "BaseFont": Name("STSong-Light"),
            "Encoding": Name("UniGB-UCS2-H"), "DescendantFonts": [sink.indirect(descendant)]})
