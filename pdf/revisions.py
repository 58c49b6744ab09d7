"""The revisions of a PDF, read from its raw bytes: what each incremental update (re)defines.

A PDF is an original file plus any number of incremental updates (ISO 32000-1 §7.5.6), each
ending with its own cross-reference section, trailer, ``startxref`` and ``%%EOF``. A
signature covers a prefix of the file that ends at one of those ``%%EOF`` markers; whatever
later updates change is not covered and has to be judged (:mod:`pdf.modifications`).

This module walks the chain from the final ``startxref`` through each trailer's ``/Prev``
(and a hybrid file's ``/XRefStm``) without repairing anything — qpdf repairs a broken file
silently, and a repaired file is not the file that was signed. It raises
:class:`~pdf.errors.PdfFormatError` when there is no chain to walk (no header, no
``startxref``, an offset that lands on neither an xref table nor an xref stream, a ``/Prev``
loop, an update placed inside the revision it updates). Flaws a reader survives but a
verifier must not ignore are kept, per revision, in :attr:`Revision.problems`:

* an xref entry whose offset does not hold the object it claims (``N G obj``);
* an update that re-points an object number to bytes inside an earlier revision, or into an
  object stream it did not write — the "xref-only" update of the hide-and-replace shadow
  attack, which changes what an object is without a single new object body;
* a hybrid file whose table and /XRefStm disagree about an object (readers that know xref
  streams and readers that do not would show different documents);
* a ``startxref`` that does not name its own section, entries past /Size.

A linearized original has two sections (first-page and main) that together are revision 1.
To see the objects *as of* revision k, :func:`open_revision` opens ``data[:end_k]``.
"""

from __future__ import annotations

import io
import re
import zlib
from collections.abc import Mapping
from dataclasses import dataclass, field, replace

from .errors import PdfFormatError
from .syntax import ObjectAt, PdfDict, Ref, Scanner, object_header_at, read_object_at

MAX_REVISIONS = 256
MAX_XREF_ENTRIES = 8_000_000
MAX_XREF_STREAM = 64 * 1024 * 1024
_HEADER = re.compile(rb"%PDF-(\d)\.(\d)")
_STARTXREF = re.compile(rb"startxref[\x00\t\n\x0c\r ]+(\d+)[\x00\t\n\x0c\r ]+%%EOF(\r\n|\r|\n)?")
_TABLE_ENTRY = re.compile(rb"[\x00\t\n\x0c\r ]*(\d{1,10})[ ]+(\d{1,5})[ ]+([nf])")
_EOF = re.compile(rb"%%EOF")

FREE, IN_USE, COMPRESSED = "free", "in-use", "compressed"


@dataclass(frozen=True)
class XrefEntry:
    """One cross-reference entry: where object ``number`` is, as this section says."""

    number: int
    generation: int
    kind: str  # FREE, IN_USE or COMPRESSED
    offset: int = 0  # IN_USE: byte offset of ``N G obj``
    stream: int = 0  # COMPRESSED: the object stream's number …
    index: int = 0  # … and the object's index in it
    section: int = 0  # offset of the section that gave the entry

    def describe(self) -> str:
        if self.kind == IN_USE:
            return f"at offset {self.offset}"
        if self.kind == COMPRESSED:
            return f"in object stream {self.stream} (index {self.index})"
        return "free"


@dataclass(frozen=True)
class Revision:
    """Revision ``number`` (1 = the original file) occupies ``data[start:end]``.

    ``end`` is just past its ``%%EOF`` and the end of line after it, if any; a signature that
    covers this revision exactly covers ``data[:end]``. ``entries`` are the objects this
    revision's cross-reference section(s) (re)define or free — not the whole table.
    """

    number: int
    start: int
    end: int
    sections: tuple[int, ...]  # offsets of its xref sections, newest first
    kind: str  # "table", "stream" or "hybrid"
    trailer: PdfDict
    entries: Mapping[int, XrefEntry]
    problems: tuple[str, ...] = ()

    @property
    def defined(self) -> frozenset[int]:
        """Object numbers this revision writes (in use or compressed)."""
        return frozenset(n for n, e in self.entries.items() if e.kind != FREE)

    @property
    def freed(self) -> frozenset[int]:
        return frozenset(n for n, e in self.entries.items() if e.kind == FREE and n != 0)


@dataclass
class _Section:
    offset: int
    kind: str
    trailer: PdfDict
    entries: dict[int, XrefEntry] = field(default_factory=dict)
    end: int = 0  # just past the section (trailer dict or endobj)
    problems: list[str] = field(default_factory=list)


# ---- reading one section --------------------------------------------------------------------
def _read_table(data: bytes, offset: int) -> _Section:
    scanner = Scanner(data, offset)
    scanner.expect(b"xref")
    entries: dict[int, XrefEntry] = {}
    total = 0
    while True:
        if scanner.peek_token() == b"trailer":
            scanner.token()
            break
        first, count = scanner.read_int(), scanner.read_int()
        total += count
        if first < 0 or count < 0 or total > MAX_XREF_ENTRIES or count * 18 > len(data) - scanner.pos:
            raise scanner.fail(f"xref subsection '{first} {count}' is impossible for this file")
        for number in range(first, first + count):
            match = _TABLE_ENTRY.match(data, scanner.pos)
            if match is None:
                raise scanner.fail(f"malformed xref table entry for object {number}")
            scanner.pos = match.end()
            value, generation, kind = int(match.group(1)), int(match.group(2)), match.group(3)
            entries[number] = (
                XrefEntry(number, generation, IN_USE, offset=value, section=offset)
                if kind == b"n"
                else XrefEntry(number, generation, FREE, section=offset)
            )
    trailer = scanner.read_value()
    if not isinstance(trailer, PdfDict):
        raise scanner.fail("the trailer is not a dictionary")
    return _Section(offset, "table", trailer, entries, scanner.pos)


def _decode_stream(data: bytes, obj: ObjectAt) -> bytes:
    """The decoded data of an xref (or object) stream: FlateDecode and PNG predictors only."""
    dictionary = obj.value
    raw = data[obj.stream[0] : obj.stream[1]]
    filters = dictionary.get("Filter")
    filters = [] if filters is None else filters if isinstance(filters, list) else [filters]
    parms = dictionary.get("DecodeParms")
    parms = parms[0] if isinstance(parms, list) and parms else parms
    for name in filters:
        if name not in ("FlateDecode", "Fl"):
            raise PdfFormatError(f"object {obj.number} {obj.generation}: filter /{name} on an xref stream")
        inflater = zlib.decompressobj()
        try:
            raw = inflater.decompress(raw, MAX_XREF_STREAM)
        except zlib.error as exc:
            raise PdfFormatError(
                f"object {obj.number} {obj.generation}: corrupt FlateDecode data: {exc}"
            ) from exc
        if inflater.unconsumed_tail:
            raise PdfFormatError(f"object {obj.number}: decompresses beyond {MAX_XREF_STREAM} bytes")
    if isinstance(parms, PdfDict) and isinstance(parms.get("Predictor"), int) and parms["Predictor"] >= 10:
        values = [
            parms.get(key, default)
            for key, default in (("Columns", 1), ("Colors", 1), ("BitsPerComponent", 8))
        ]
        columns, colors, bits = values
        if not (
            all(isinstance(v, int) and not isinstance(v, bool) for v in values)
            and 1 <= columns <= 64
            and 1 <= colors <= 4
            and bits in (1, 2, 4, 8, 16)
        ):
            raise PdfFormatError(
                f"object {obj.number} {obj.generation}: xref stream predictor parameters "
                f"{values} are not those of an xref stream (a few bytes per row)"
            )
        raw = _unpredict(raw, columns, colors, bits)
    return raw


def _unpredict(raw: bytes, columns: int, colors: int, bits: int) -> bytes:
    """Undo PNG row predictors (RFC 2083 §6), as xref streams written by qpdf use them."""
    bpp = max(1, colors * bits // 8)
    width = (columns * colors * bits + 7) // 8
    if width <= 0 or len(raw) % (width + 1):
        raise PdfFormatError("xref stream data does not divide into predictor rows")
    out, previous = bytearray(), bytearray(width)
    for i in range(0, len(raw), width + 1):
        kind, row = raw[i], bytearray(raw[i + 1 : i + 1 + width])
        for x in range(width):
            left = row[x - bpp] if x >= bpp else 0
            up, corner = previous[x], previous[x - bpp] if x >= bpp else 0
            if kind == 1:
                row[x] = (row[x] + left) & 0xFF
            elif kind == 2:
                row[x] = (row[x] + up) & 0xFF
            elif kind == 3:
                row[x] = (row[x] + (left + up) // 2) & 0xFF
            elif kind == 4:
                p = left + up - corner
                pa, pb, pc = abs(p - left), abs(p - up), abs(p - corner)
                row[x] = (row[x] + (left if pa <= pb and pa <= pc else up if pb <= pc else corner)) & 0xFF
            elif kind != 0:
                raise PdfFormatError(f"unknown PNG predictor {kind} in an xref stream")
        out += row
        previous = row
    return bytes(out)


def _read_xref_stream(data: bytes, offset: int) -> _Section:
    obj = read_object_at(data, offset)
    d = obj.value
    if not isinstance(d, PdfDict) or d.get("Type") != "XRef" or obj.stream is None:
        raise PdfFormatError(f"offset {offset}: object {obj.number} {obj.generation} is not an xref stream")
    widths, size = d.get("W"), d.get("Size")
    if (
        not isinstance(widths, list)
        or len(widths) != 3
        or not all(isinstance(w, int) and 0 <= w <= 8 for w in widths)
        or not isinstance(size, int)
        or not 0 <= size <= MAX_XREF_ENTRIES
    ):
        raise PdfFormatError(f"offset {offset}: xref stream with bad /W or /Size")
    index = d.get("Index", [0, size])
    if (
        not isinstance(index, list)
        or len(index) % 2
        or not all(isinstance(i, int) and i >= 0 for i in index)
        or sum(index[1::2]) > MAX_XREF_ENTRIES
    ):
        raise PdfFormatError(f"offset {offset}: xref stream with a bad /Index")
    # A compressed stream can announce millions of entries in a few bytes; a real file has at most
    # one object per few bytes of itself ("1 0 obj<<>>endobj" is 17 bytes): bound the work by that.
    if sum(index[1::2]) > max(1024, len(data) // 8):
        raise PdfFormatError(
            f"offset {offset}: the xref stream announces {sum(index[1::2])} entries, more "
            f"than a {len(data)}-byte file can hold"
        )
    rows = _decode_stream(data, obj)
    row = sum(widths)
    if row == 0 or len(rows) < row * sum(index[1::2]):
        raise PdfFormatError(f"offset {offset}: the xref stream holds fewer entries than its /Index says")
    entries: dict[int, XrefEntry] = {}
    pos = 0
    for first, count in zip(index[::2], index[1::2], strict=True):
        for number in range(first, first + count):
            fields, p = [], pos
            for w in widths:
                fields.append(int.from_bytes(rows[p : p + w], "big"))
                p += w
            pos = p
            kind = fields[0] if widths[0] else 1
            if kind == 0:
                entries[number] = XrefEntry(number, fields[2], FREE, section=offset)
            elif kind == 1:
                entries[number] = XrefEntry(number, fields[2], IN_USE, offset=fields[1], section=offset)
            elif kind == 2:
                entries[number] = XrefEntry(
                    number, 0, COMPRESSED, stream=fields[1], index=fields[2], section=offset
                )
            # other types are "null references" (ISO 32000-1 table 18): ignored by readers
    return _Section(offset, "stream", d, entries, obj.end)


def _read_section(data: bytes, offset: int) -> _Section:
    if not 0 <= offset < len(data):
        raise PdfFormatError(f"xref offset {offset} lies outside the {len(data)}-byte file")
    if data.startswith(b"xref", offset):
        section = _read_table(data, offset)
        stm = section.trailer.get("XRefStm")
        if isinstance(stm, int) and not isinstance(stm, bool):
            _merge_hybrid(data, section, stm)
        return section
    if object_header_at(data, offset) is None:
        raise PdfFormatError(f"xref offset {offset} points at neither 'xref' nor an xref stream object")
    return _read_xref_stream(data, offset)


def _merge_hybrid(data: bytes, section: _Section, stm: int) -> None:
    """A hybrid-reference section: the table's in-use entries win, the stream fills the rest."""
    try:
        extra = _read_xref_stream(data, stm)
    except PdfFormatError as exc:
        section.problems.append(f"/XRefStm {stm} of the xref table at {section.offset} is unreadable: {exc}")
        return
    section.kind = "hybrid"
    for number, entry in extra.entries.items():
        mine = section.entries.get(number)
        if mine is not None and entry.kind != FREE and mine != entry:
            section.problems.append(
                f"object {number}: the xref table says {mine.describe()}, its /XRefStm "
                f"says {entry.describe()} (readers would disagree)"
            )
        if mine is None or mine.kind == FREE:
            section.entries[number] = entry


# ---- the chain --------------------------------------------------------------------------------
def _header(data: bytes) -> None:
    match = _HEADER.search(data, 0, 1024)
    if match is None:
        raise PdfFormatError("not a PDF: no '%PDF-x.y' header in the first 1024 bytes")


def _final_startxref(data: bytes) -> int:
    at = data.rfind(b"startxref")
    match = _STARTXREF.match(data, at) if at >= 0 else None
    if match is None:
        raise PdfFormatError("no 'startxref … %%EOF' at the end: the file is truncated or not a PDF")
    return int(match.group(1))


def _chain(data: bytes, start: int) -> list[_Section]:
    sections: list[_Section] = []
    seen: set[int] = set()
    offset: int | None = start
    while offset is not None:
        if offset in seen:
            raise PdfFormatError(f"the /Prev chain loops back to the xref section at offset {offset}")
        if len(sections) >= MAX_REVISIONS:
            raise PdfFormatError(f"more than {MAX_REVISIONS} xref sections")
        seen.add(offset)
        section = _read_section(data, offset)
        sections.append(section)
        prev = section.trailer.get("Prev")
        if prev is not None and (not isinstance(prev, int) or isinstance(prev, bool)):
            raise PdfFormatError(f"the trailer at {offset} has a /Prev that is not an offset: {prev!r}")
        offset = prev
    return sections


def _section_end(data: bytes, section: _Section, expect: int) -> tuple[int, list[str]]:
    """Just past the ``startxref … %%EOF`` (and its end of line) that follows ``section``."""
    scanner = Scanner(data, section.end)
    scanner.skip_space()
    match = _STARTXREF.match(data, scanner.pos)
    if match is None:
        found = _EOF.search(data, section.end)
        if found is None:
            raise PdfFormatError(f"no %%EOF after the xref section at offset {section.offset}")
        return found.end(), [
            f"the xref section at offset {section.offset} is not followed by 'startxref … %%EOF'"
        ]
    problems = []
    if int(match.group(1)) != expect:
        problems.append(
            f"the startxref after the xref section at {section.offset} says "
            f"{int(match.group(1))}, not {expect}"
        )
    return match.end(), problems


def _group(data: bytes, sections: list[_Section]) -> list[list[_Section]]:
    """Oldest first; a linearized original's two sections make one revision."""
    oldest_first = sections[::-1]
    groups = [[oldest_first[0]]]
    for section in oldest_first[1:]:
        if section.offset < groups[-1][0].offset:
            if len(groups) == 1 and len(groups[0]) == 1 and _linearized(data):
                groups[0].append(section)
                continue
            raise PdfFormatError(
                f"the xref section at offset {section.offset} comes before the section at "
                f"{groups[-1][0].offset} it updates: not an incremental update"
            )
        groups.append([section])
    return groups


def _linearized(data: bytes) -> bool:
    scanner = Scanner(data, _HEADER.search(data, 0, 1024).end())
    scanner.skip_space()
    try:
        first = read_object_at(data, scanner.pos)
    except PdfFormatError:
        return False
    return isinstance(first.value, PdfDict) and "Linearized" in first.value


def read_revisions(data: bytes) -> tuple[Revision, ...]:
    """Every revision, oldest first; :class:`PdfFormatError` if the xref chain cannot be walked
    (whatever in the bytes makes the walk fail: a hostile file never escapes as another error)."""
    if not isinstance(data, (bytes, bytearray, memoryview)):
        raise PdfFormatError(f"expected the PDF's bytes, got {type(data).__name__}")
    try:
        return _read_revisions(bytes(data))
    except PdfFormatError:
        raise
    except (ValueError, TypeError, KeyError, IndexError, OverflowError, MemoryError, RecursionError) as exc:
        raise PdfFormatError(
            f"the cross-reference data cannot be read: {exc.__class__.__name__}: {exc}"
        ) from None


def _read_revisions(data: bytes) -> tuple[Revision, ...]:
    _header(data)
    sections = _chain(data, _final_startxref(data))
    revisions: list[Revision] = []
    start = 0
    for number, group in enumerate(_group(data, sections), 1):
        newest, last_in_file = group[-1], max(group, key=lambda s: s.offset)
        end, problems = _section_end(data, last_in_file, newest.offset)
        entries: dict[int, XrefEntry] = {}
        for section in group:  # older first: the newer section's entries win
            entries.update(section.entries)
            problems += section.problems
        if any(s.offset < start for s in group) or end <= start:
            raise PdfFormatError(f"revision {number}'s xref section lies inside revision {number - 1}")
        kinds = {s.kind for s in group}
        revision = Revision(
            number,
            start,
            end,
            tuple(s.offset for s in reversed(group)),
            kinds.pop() if len(kinds) == 1 else "hybrid",
            newest.trailer,
            entries,
        )
        problems += _entry_problems(data, revision, revisions)
        revisions.append(replace(revision, problems=tuple(problems)))
        start = end
    return tuple(revisions)


MAX_PROBLEMS = 100


def _entry_problems(data: bytes, revision: Revision, earlier: list[Revision]) -> list[str]:
    problems = _BoundedList(MAX_PROBLEMS)
    size = revision.trailer.get("Size")
    for number, entry in sorted(revision.entries.items()):
        if isinstance(size, int) and number >= size and entry.kind != FREE:
            problems.append(f"object {number} is past the trailer's /Size {size}")
        if entry.kind == IN_USE:
            header = object_header_at(data, entry.offset)
            if header is None or header[:2] != (number, entry.generation):
                found = f"'{header[0]} {header[1]} obj'" if header else "no object"
                problems.append(
                    f"object {number} {entry.generation}: its xref entry points at offset "
                    f"{entry.offset}, where {found} begins"
                )
            elif entry.offset < revision.start:
                problems.append(
                    f"object {number} {entry.generation} is re-pointed to offset {entry.offset}, "
                    f"inside revision {_revision_at(earlier, entry.offset)} "
                    "(an update that redefines an object without writing it)"
                )
            elif entry.offset >= revision.end:
                problems.append(
                    f"object {number} {entry.generation} is placed at {entry.offset}, after the "
                    "revision's end"
                )
        elif entry.kind == COMPRESSED:
            holder = revision.entries.get(entry.stream)
            if revision.number > 1 and (holder is None or holder.kind != IN_USE):
                problems.append(
                    f"object {number} is re-pointed into object stream {entry.stream}, which "
                    f"revision {revision.number} does not write"
                )
    return problems


class _BoundedList(list):
    """Problems beyond the first hundred add nothing a reader needs (and cost memory)."""

    def __init__(self, limit: int):
        super().__init__()
        self.limit, self.dropped = limit, 0

    def append(self, item: str) -> None:
        if len(self) < self.limit:
            super().append(item)
        elif not self.dropped:
            self.dropped = 1
            super().append("… and more problems of the same kind")


def _revision_at(revisions: list[Revision], offset: int) -> int:
    return next((r.number for r in revisions if r.start <= offset < r.end), 0)


# ---- helpers for verifiers -------------------------------------------------------------------
def revision_ending_at(revisions: tuple[Revision, ...], offset: int) -> Revision | None:
    """The revision whose bytes end exactly at ``offset`` (a signature's covered end), if any."""
    return next((r for r in revisions if r.end == offset), None)


def entry_as_of(
    revisions: tuple[Revision, ...], number: int, revision: int
) -> tuple[Revision, XrefEntry] | None:
    """Where object ``number`` is as of revision ``revision``: the newest entry at or before it."""
    for rev in reversed(revisions[:revision]):
        entry = rev.entries.get(number)
        if entry is not None:
            return (rev, entry) if entry.kind != FREE else None
    return None


def object_as_of(
    data: bytes, revisions: tuple[Revision, ...], ref: Ref, revision: int
) -> tuple[Revision, ObjectAt]:
    """The raw object ``ref`` as revision ``revision`` defines it; PdfFormatError if it cannot be read
    from its own bytes (free, compressed into an object stream, or not at its offset)."""
    found = entry_as_of(revisions, ref.number, revision)
    if found is None:
        raise PdfFormatError(f"object {ref.number} {ref.generation} is not defined in revision {revision}")
    rev, entry = found
    if entry.kind != IN_USE:
        raise PdfFormatError(
            f"object {ref.number} {ref.generation} is {entry.describe()}, not written plainly"
        )
    if entry.generation != ref.generation:
        raise PdfFormatError(f"object {ref.number} has generation {entry.generation}, not {ref.generation}")
    obj = read_object_at(data, entry.offset)
    if (obj.number, obj.generation) != (ref.number, ref.generation):
        raise PdfFormatError(
            f"the xref entry of object {ref.number} {ref.generation} points at object "
            f"{obj.number} {obj.generation}"
        )
    return rev, obj


def open_revision(data: bytes, revision: Revision):
    """pikepdf's view of the document as of ``revision``: ``data[:revision.end]`` as a whole file."""
    import pikepdf

    return pikepdf.open(io.BytesIO(data[: revision.end]))
