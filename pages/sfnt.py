"""Writing a TrueType subset directly: the font program a licence embeds, in ~0.5 ms.

Every licence has text of its own, so every licence embeds a font subset of its own, and
building it through fontTools' table compilers cost 3–6 ms a licence — decompiling and
recompiling the head, hhea, maxp, OS/2 and name tables, the cmap and the glyf table each time.
None of that is needed: glyph outlines are copied byte for byte from the source ``glyf`` (a
composite glyph's component IDs rewritten to the subset's numbering), and the other tables
are the source's with the few fields a subset changes patched in place:

* ``head``: the glyphs' bounding box, ``indexToLocFormat``, ``checkSumAdjustment``;
* ``hhea``: ``advanceWidthMax``, the side-bearing extremes, ``xMaxExtent``, ``numberOfHMetrics``;
* ``maxp``: ``numGlyphs`` (the source's maxima stay valid upper bounds, as fontTools leaves
  them without ``recalcBBoxes``);
* ``OS/2``: ``usFirstCharIndex`` and ``usLastCharIndex``;
* ``post``: format 3 (no glyph names: readers map characters through ``cmap``);
* ``cmap``: Windows Unicode format 4 for the BMP, plus format 12 for all when beyond it;
* ``name`` as it is.

The layout follows the OpenType specification (table directory sorted by tag, tables 4-byte
aligned with zero padding, checksums, short ``loca`` when every offset allows it); the
tests read the result with fontTools, FreeType (Pillow) and reportlab, and compare outlines
and metrics with the full face.
"""

from __future__ import annotations

import struct
from array import array
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from itertools import accumulate, chain

_ARG_WORDS, _SCALE, _MORE, _XY_SCALE, _TWO_BY_TWO = 0x0001, 0x0008, 0x0020, 0x0040, 0x0080


@dataclass(frozen=True)
class SourceFont:
    """The parts of a TrueType face a subset is built from, read once."""

    glyf: bytes
    loca: array                      # len(glyphs) + 1 offsets into glyf
    metrics: Sequence[tuple[int, int]]  # (advance width, left side bearing) per glyph
    head: bytes
    hhea: bytes
    maxp: bytes
    os2: bytes
    name: bytes
    post: bytes                      # the 32-byte post header
    #: What a subset needs of each glyph used so far (see :func:`_glyph`), kept: every licence
    #: embeds mostly the same few hundred characters.
    glyphs: dict[int, _Glyph] = field(default_factory=dict, compare=False, repr=False)


#: Glyphs kept per source font at most (each a few hundred bytes; the CJK face has ~30,000).
GLYPHS_KEPT = 20_000


@dataclass(frozen=True)
class _Glyph:
    """One source glyph as a subset copies it: its outline padded to 4 bytes, that block's
    checksum (the glyf table's is the sum of its blocks'), its bounding box (None for an empty
    glyph) and, for a composite, where its component glyph IDs are."""

    data: bytes
    checksum: int
    box: tuple[int, int, int, int] | None
    components: tuple[tuple[int, int], ...]
    #: For a glyph with a box, what hhea's extremes take of it with its metrics: left side
    #: bearing, right side bearing, x extent (worked out once, not on every subset).
    sides: tuple[int, int, int] | None = None


def _glyph_data(source: SourceFont, gid: int) -> bytes:
    return source.glyf[source.loca[gid]:source.loca[gid + 1]]


def _glyph(source: SourceFont, gid: int) -> _Glyph:
    found = source.glyphs.get(gid)
    if found is None:
        data = _glyph_data(source, gid)
        components = tuple(_components(data)) if _is_composite(data) else ()
        box = struct.unpack_from(">hhhh", data, 2) if len(data) >= 10 else None
        sides = None
        if box is not None:
            advance, lsb = source.metrics[gid]
            width = box[2] - box[0]
            sides = (lsb, advance - lsb - width, lsb + width)
        data += b"\0" * (-len(data) % 4)
        found = _Glyph(data, _checksum(data), box, components, sides)
        if len(source.glyphs) < GLYPHS_KEPT:
            source.glyphs[gid] = found
    return found


def _components(data: bytes) -> list[tuple[int, int]]:
    """(offset of the glyph index, glyph index) of each component of a composite glyph."""
    found, pos = [], 10
    while True:
        flags, index = struct.unpack_from(">HH", data, pos)
        found.append((pos + 2, index))
        pos += 4 + (4 if flags & _ARG_WORDS else 2)
        if flags & _SCALE:
            pos += 2
        elif flags & _XY_SCALE:
            pos += 4
        elif flags & _TWO_BY_TWO:
            pos += 8
        if not flags & _MORE:
            return found


def _is_composite(data: bytes) -> bool:
    return len(data) >= 10 and struct.unpack_from(">h", data)[0] < 0


def _checksum(data: bytes) -> int:
    words = array("I", data + b"\0" * (-len(data) % 4))
    if words.itemsize != 4:  # pragma: no cover - every platform we run on has 32-bit unsigned int
        return sum(struct.unpack(f">{len(words) * words.itemsize // 4}I", words.tobytes())) & 0xFFFFFFFF
    if struct.pack("=I", 1) != struct.pack(">I", 1):
        words.byteswap()
    return sum(words) & 0xFFFFFFFF


def _binary_search_fields(count: int, unit: int) -> tuple[int, int, int]:
    """searchRange, entrySelector, rangeShift for ``count`` entries of ``unit`` bytes."""
    selector = max(count.bit_length() - 1, 0)
    search = (1 << selector) * unit
    return search, selector, count * unit - search


def _format_4(mapping: Mapping[int, int]) -> bytes:
    """A cmap format 4 subtable: one segment per run of consecutive characters whose glyph IDs
    are consecutive too (idDelta, no glyph index array), then the 0xFFFF terminator."""
    segments: list[list[int]] = []  # [start, end, delta]
    for cp in sorted(c for c in mapping if c < 0xFFFF):
        gid = mapping[cp]
        if segments and segments[-1][1] == cp - 1 and (segments[-1][2] + cp) & 0xFFFF == gid:
            segments[-1][1] = cp
        else:
            segments.append([cp, cp, (gid - cp) & 0xFFFF])
    segments.append([0xFFFF, 0xFFFF, 1])
    count = len(segments)
    search, selector, shift = _binary_search_fields(count, 2)
    ends = struct.pack(f">{count}H", *(s[1] for s in segments))
    starts = struct.pack(f">{count}H", *(s[0] for s in segments))
    deltas = struct.pack(f">{count}H", *(s[2] for s in segments))
    body = ends + b"\0\0" + starts + deltas + b"\0\0" * count
    return struct.pack(">7H", 4, 14 + len(body), 0, 2 * count, search, selector, shift) + body


def _format_12(mapping: Mapping[int, int]) -> bytes:
    groups: list[list[int]] = []  # [start, end, start glyph]
    for cp in sorted(mapping):
        gid = mapping[cp]
        if groups and groups[-1][1] == cp - 1 and groups[-1][2] + cp - groups[-1][0] == gid:
            groups[-1][1] = cp
        else:
            groups.append([cp, cp, gid])
    body = b"".join(struct.pack(">3I", *g) for g in groups)
    return struct.pack(">HHIII", 12, 0, 16 + len(body), 0, len(groups)) + body


def _cmap(mapping: Mapping[int, int]) -> bytes:
    subtables = [(3, 1, _format_4(mapping))]
    if any(cp > 0xFFFF for cp in mapping):
        subtables.append((3, 10, _format_12(mapping)))
    offset = 4 + 8 * len(subtables)
    records, bodies = b"", b""
    for platform, encoding, body in subtables:
        records += struct.pack(">HHI", platform, encoding, offset + len(bodies))
        bodies += body
    return struct.pack(">HH", 0, len(subtables)) + records + bodies


def subset(source: SourceFont, codepoints: Mapping[int, int]) -> bytes:
    """The TrueType font of ``codepoints`` (character -> glyph ID in ``source``) and .notdef."""
    kept = source.glyphs
    glyphs: dict[int, _Glyph] = {}
    for gid in (0, *codepoints.values()):
        if gid not in glyphs:
            glyphs[gid] = kept.get(gid) or _glyph(source, gid)
    # Composites bring their components (and theirs): few glyphs of a CJK face are composite.
    pending = [index for glyph in glyphs.values() for _, index in glyph.components]
    while pending:
        gid = pending.pop()
        if gid in glyphs:
            continue
        glyph = glyphs[gid] = _glyph(source, gid)
        pending.extend(index for _, index in glyph.components)
    order = sorted(glyphs)
    number = {gid: new for new, gid in enumerate(order)}
    chosen = [glyphs[gid] for gid in order]

    blocks = [glyph.data for glyph in chosen]
    glyf_sum = 0
    for at, glyph in enumerate(chosen):
        if glyph.components:
            data = bytearray(glyph.data)
            for offset, index in glyph.components:
                struct.pack_into(">H", data, offset, number[index])
            blocks[at] = bytes(data)
            glyf_sum += _checksum(blocks[at])
        else:
            glyf_sum += glyph.checksum
    offsets = [0, *accumulate(map(len, blocks))]
    short = offsets[-1] < 0x20000
    loca = struct.pack(f">{len(offsets)}H", *(o >> 1 for o in offsets)) if short else \
        struct.pack(f">{len(offsets)}I", *offsets)

    metrics = [source.metrics[gid] for gid in order]
    long_metrics = len(metrics)  # trailing glyphs of the last advance store their bearing only
    while long_metrics > 1 and metrics[long_metrics - 2][0] == metrics[-1][0]:
        long_metrics -= 1
    hmtx = struct.pack(">" + "Hh" * long_metrics, *chain.from_iterable(metrics[:long_metrics])) + \
        struct.pack(f">{len(metrics) - long_metrics}h", *(lsb for _, lsb in metrics[long_metrics:]))
    head, hhea = bytearray(source.head), bytearray(source.hhea)
    struct.pack_into(">I", head, 8, 0)
    struct.pack_into(">h", head, 50, 0 if short else 1)
    struct.pack_into(">H", hhea, 10, max(advance for advance, _ in metrics))
    struct.pack_into(">H", hhea, 34, long_metrics)
    boxed = [glyph for glyph in chosen if glyph.box is not None]
    if boxed:  # head's box and hhea's extremes for the glyphs kept (what recalcBBoxes would do)
        x_min, y_min, x_max, y_max = zip(*(glyph.box for glyph in boxed), strict=True)
        struct.pack_into(">4h", head, 36, min(x_min), min(y_min), max(x_max), max(y_max))
        lsbs, rsbs, extents = zip(*(glyph.sides for glyph in boxed), strict=True)
        struct.pack_into(">3h", hhea, 12, min(lsbs), min(rsbs), max(extents))
    maxp = bytearray(source.maxp)
    struct.pack_into(">H", maxp, 4, len(order))
    os2 = bytearray(source.os2)
    struct.pack_into(">HH", os2, 64, min(min(codepoints, default=0), 0xFFFF),
                     min(max(codepoints, default=0), 0xFFFF))
    post = b"\x00\x03\x00\x00" + source.post[4:32]

    tables = {b"OS/2": bytes(os2), b"cmap": _cmap({cp: number[g] for cp, g in codepoints.items()}),
              b"glyf": b"".join(blocks), b"head": bytes(head), b"hhea": bytes(hhea), b"hmtx": hmtx,
              b"loca": loca, b"maxp": bytes(maxp), b"name": source.name, b"post": post}
    return _sfnt(tables, {b"glyf": glyf_sum & 0xFFFFFFFF})


def _sfnt(tables: dict[bytes, bytes], checksums: Mapping[bytes, int] | None = None) -> bytes:
    """The font file: offset table, directory sorted by tag, tables 4-byte aligned; then
    head.checkSumAdjustment makes the whole file sum to 0xB1B0AFBA. ``checksums`` gives the
    checksums of tables already known (the glyf table's, summed from its glyphs'); the file's
    own is the directory's plus the tables', every part being 4-byte aligned."""
    checksums = checksums or {}
    tags = sorted(tables)
    search, selector, shift = _binary_search_fields(len(tags), 16)
    directory = struct.pack(">IHHHH", 0x00010000, len(tags), search, selector, shift)
    offset = 12 + 16 * len(tags)
    body, head_at, total = [], 0, 0
    for tag in tags:
        data = tables[tag]
        if tag == b"head":
            head_at = offset
        checksum = checksums[tag] if tag in checksums else _checksum(data)
        total += checksum
        directory += struct.pack(">4sIII", tag, checksum, offset, len(data))
        body.append(data + b"\0" * (-len(data) % 4))
        offset += len(body[-1])
    font = bytearray(directory + b"".join(body))
    total += _checksum(directory)
    struct.pack_into(">I", font, head_at + 8, (0xB1B0AFBA - total) & 0xFFFFFFFF)
    return bytes(font)
