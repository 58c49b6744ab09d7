"""Writing an incremental update (ISO 32000-1 §7.5.6): objects appended after the file as it is.

A signature must leave every byte it does not own alone — earlier signatures cover them — so
the original is kept whole as the prefix and the update adds, after it, the new and changed
objects, a cross-reference section naming only those, and a trailer whose /Prev points at the
original's last cross-reference section. qpdf (and so pikepdf) rewrites whole files and cannot
do this, so the section is assembled here. Where the original's sections and trailer are comes
from :mod:`pdf.revisions` (raw bytes, never repaired); the values a changed object keeps are
serialized as pikepdf reads them (:meth:`pikepdf.Object.unparse`).

The update's cross-reference section has the form the original's last one has: a table after a
table or a hybrid, a stream after a stream (a reader limited to PDF 1.4 tables must keep
reading a file that was one, and a file already using streams gains nothing from a table).
Objects are always written plainly, never into object streams, so every offset is simple and
a verifier can read each object where the section says it is.

Values are written from plain Python: ``int``/``float``/``Decimal``/``bool``/``None``,
``str`` (a text string: PDFDocEncoding-safe ASCII as a literal, anything else UTF-16BE with
its byte-order mark), ``bytes`` (a hex string), :class:`Name`, :class:`Ref`, ``list``,
``dict`` (keys are names without the slash), :class:`Stream`, :class:`Raw` (bytes already in
PDF syntax), and :class:`pikepdf.Object` (written as pikepdf serializes it).
"""

from __future__ import annotations

import functools
import hashlib
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import TYPE_CHECKING, Protocol

import pikepdf

from hsm.sm3 import sm3
from pages.deflate import zlib_stream

from .errors import PdfFormatError

if TYPE_CHECKING:  # revisions reads with pdf.syntax, which takes Name and Ref from here
    from .revisions import Revision

_REGULAR_NAME = re.compile(r"[!-~]+")
_NAME_ESCAPES = frozenset("()<>[]{}/%#")
_LITERAL_SAFE = re.compile(r"[ -~]*")


class Name(str):
    """A PDF name, written with its slash: ``Name("Sig")`` is ``/Sig``."""


@dataclass(frozen=True, order=True)
class Ref:
    """An indirect reference ``n g R``."""

    number: int
    generation: int = 0


@dataclass(frozen=True)
class Raw:
    """Bytes already in PDF syntax, written as they are."""

    pdf: bytes


@dataclass(frozen=True)
class Stream:
    """A stream object: its dictionary (``/Length`` is added) and its data as stored."""

    dictionary: Mapping[str, object]
    data: bytes


@functools.lru_cache(maxsize=4096)
def name_bytes(name: str) -> bytes:
    """``/name`` with the characters a name may not hold as they are written ``#xx``. Names are
    UTF-8; bytes that are not (pikepdf hands them over surrogate-escaped) are kept as they were.
    Kept for the last few thousand names: a file's dictionaries repeat a few dozen."""
    if _REGULAR_NAME.fullmatch(name) and not _NAME_ESCAPES.intersection(name):
        return b"/" + name.encode("ascii")
    return b"/" + "".join(f"#{b:02X}" if not 0x21 <= b <= 0x7E or chr(b) in _NAME_ESCAPES else chr(b)
                          for b in name.encode("utf-8", "surrogateescape")).encode("ascii")


def text_string(text: str) -> bytes:
    """A PDF text string: printable ASCII as a literal, anything else as UTF-16BE with BOM."""
    if _LITERAL_SAFE.fullmatch(text):
        escaped = text.replace("\\", "\\\\").replace("(", "\\(").replace(")", "\\)")
        return b"(" + escaped.encode("ascii") + b")"
    return b"<FEFF" + text.encode("utf-16-be").hex().upper().encode("ascii") + b">"


def number_bytes(value: float | Decimal) -> bytes:
    """A real without exponent and without needless digits (PDF has no 1e-5 syntax)."""
    text = format(Decimal(value) if isinstance(value, Decimal) else round(float(value), 4), "f")
    if "." in text:
        text = text.rstrip("0").rstrip(".")
    return (text if text not in ("-0", "") else "0").encode("ascii")


def serialize(value: object) -> bytes:
    """The PDF syntax of ``value`` (see the module docstring for the types accepted)."""
    write = _WRITERS.get(type(value))  # the common types at once; subclasses by isinstance
    if write is not None:
        return write(value)
    if isinstance(value, Raw):
        return value.pdf
    if isinstance(value, pikepdf.Object):
        return value.unparse()
    if value is None:
        return b"null"
    if isinstance(value, bool):
        return b"true" if value else b"false"
    if isinstance(value, int):
        return str(value).encode("ascii")
    if isinstance(value, (float, Decimal)):
        return number_bytes(value)
    if isinstance(value, Name):
        return name_bytes(value)
    if isinstance(value, str):
        return text_string(value)
    if isinstance(value, (bytes, bytearray)):
        return b"<" + bytes(value).hex().upper().encode("ascii") + b">"
    if isinstance(value, Ref):
        return b"%d %d R" % (value.number, value.generation)
    if isinstance(value, (list, tuple)):
        return _array(value)
    if isinstance(value, Mapping):
        return _dictionary(value)
    raise TypeError(f"cannot write a {type(value).__name__} as a PDF object")


def _array(value: Sequence[object]) -> bytes:
    return b"[" + b" ".join(serialize(v) for v in value) + b"]"


def _dictionary(value: Mapping[str, object]) -> bytes:
    return b"<< " + b"".join(name_bytes(str(k).removeprefix("/")) + b" " + serialize(v) + b" "
                             for k, v in value.items()) + b">>"


_WRITERS = {
    Raw: lambda value: value.pdf,
    bool: lambda value: b"true" if value else b"false",
    int: lambda value: b"%d" % value,
    float: number_bytes,
    Name: name_bytes,
    str: text_string,
    bytes: lambda value: b"<" + value.hex().upper().encode("ascii") + b">",
    Ref: lambda value: b"%d %d R" % (value.number, value.generation),
    list: _array,
    tuple: _array,
    dict: _dictionary,
}


def _object_body(value: object) -> bytes:
    if isinstance(value, Stream):
        dictionary = {**value.dictionary, "Length": len(value.data)}
        return serialize(dictionary) + b"\nstream\n" + value.data + b"\nendstream"
    return serialize(value)


class ObjectSink(Protocol):
    """Where the writers' object builders (fonts, images, the PDF/A parts) put indirect objects:
    :class:`FileObjects` for a file written here, :class:`PikepdfObjects` for a pikepdf
    document. A builder nests what :meth:`indirect` returns inside its other values."""

    def indirect(self, value: object) -> object:
        """``value`` (any value :func:`serialize` writes, a :class:`Stream` included) as an
        indirect object; what refers to it."""
        ...


class FileObjects:
    """The objects of a whole new file, numbered from 1 in the order they are made."""

    def __init__(self) -> None:
        self.values: list[object] = []

    def reserve(self) -> Ref:
        """A number for an object whose value comes later (:meth:`set`)."""
        self.values.append(None)
        return Ref(len(self.values))

    def set(self, ref: Ref, value: object) -> None:
        self.values[ref.number - 1] = value

    def indirect(self, value: object) -> Ref:
        self.values.append(value)
        return Ref(len(self.values))

    def write(self, header: bytes, trailer: Mapping[str, object], *, file_id: bytes | None = None) -> bytes:
        """``header``, every object, a classic cross-reference table and ``trailer`` (with
        /Size added): the plainest form of a PDF file, which every reader and an incremental
        update after it read. With ``file_id`` the trailer's /ID is that and, as its changing
        half, a digest of everything before the cross-reference table: the same objects always
        give the same bytes."""
        out = bytearray(header)
        offsets = []
        for number, value in enumerate(self.values, start=1):
            offsets.append(len(out))
            out += b"%d 0 obj\n" % number
            out += _object_body(value) + b"\nendobj\n"
        xref = len(out)
        trailer = {"Size": len(offsets) + 1, **trailer}
        if file_id is not None:
            trailer["ID"] = [file_id, hashlib.sha256(out).digest()[:16]]
        out += b"xref\n0 %d\n0000000000 65535 f\r\n" % (len(offsets) + 1)
        out += b"".join(b"%010d 00000 n\r\n" % offset for offset in offsets)
        out += b"trailer\n" + serialize(trailer)
        out += b"\nstartxref\n%d\n%%%%EOF\n" % xref
        return bytes(out)


class PikepdfObjects:
    """The same builders' objects made in a pikepdf document (what tests and callers holding a
    :class:`pikepdf.Pdf` use)."""

    def __init__(self, pdf: pikepdf.Pdf) -> None:
        self.pdf = pdf

    def indirect(self, value: object) -> pikepdf.Object:
        made = self.convert(value)
        return made if isinstance(made, pikepdf.Stream) else self.pdf.make_indirect(made)

    def convert(self, value: object) -> object:
        """``value`` as a pikepdf object (a :class:`Stream` becomes an indirect stream)."""
        if value is None or isinstance(value, (pikepdf.Object, bool, int, float, Decimal)):
            return value
        if isinstance(value, Stream):
            return self.pdf.make_stream(value.data, pikepdf.Dictionary(self._entries(value.dictionary)))
        if isinstance(value, Name):
            return pikepdf.Name("/" + value)
        if isinstance(value, (str, bytes)):
            return pikepdf.String(value)
        if isinstance(value, Raw):
            return pikepdf.Object.parse(value.pdf)
        if isinstance(value, (list, tuple)):
            return pikepdf.Array([self.convert(v) for v in value])
        if isinstance(value, Mapping):
            return pikepdf.Dictionary(self._entries(value))
        raise TypeError(f"cannot make a {type(value).__name__} a pikepdf object")

    def _entries(self, mapping: Mapping[str, object]) -> dict[str, object]:
        return {"/" + str(k).removeprefix("/"): self.convert(v) for k, v in mapping.items()}


class IncrementalUpdate:
    """New and changed objects for one update of ``original``, written by :meth:`write`.

    ``revisions`` are the original's, as :func:`pdf.revisions.read_revisions` reads them from
    its bytes (the same reader the verifier uses, so a file it cannot walk is never extended):
    /Prev is the newest revision's cross-reference section, /Root, /Info and /ID come from its
    trailer, and new object numbers start past /Size and past every number any revision uses.
    """

    def __init__(self, original: bytes, revisions: Sequence[Revision]):
        if not revisions:
            raise PdfFormatError("the PDF has no revision to update")
        self.original = original
        newest = revisions[-1]
        self.prev = newest.sections[0]
        self.xref_stream = newest.kind == "stream"
        trailer = newest.trailer
        root = trailer.get("Root")
        if not isinstance(root, Ref):
            raise PdfFormatError("the trailer has no /Root reference to the catalogue")
        self.root = root
        info = trailer.get("Info")
        self._info = info if isinstance(info, Ref) else None
        file_id = trailer.get("ID")
        self._id = list(file_id) if isinstance(file_id, list) and len(file_id) == 2 and all(
            isinstance(part, bytes) for part in file_id) else None
        size = trailer.get("Size")
        highest = max((n for revision in revisions for n in revision.entries), default=0)
        self._next = max(size if isinstance(size, int) and not isinstance(size, bool) else 0, highest + 1)
        self._objects: dict[Ref, object] = {}

    def new_ref(self) -> Ref:
        """A number no object of the original or of this update has."""
        ref = Ref(self._next)
        self._next += 1
        return ref

    def put(self, ref: Ref, value: object) -> None:
        """Write ``value`` as object ``ref``: a new one, or the new state of an existing one."""
        self._objects[ref] = value

    def indirect(self, value: object) -> Ref:
        """``value`` as a new object of the update (what makes this an :class:`ObjectSink`)."""
        ref = self.new_ref()
        self.put(ref, value)
        return ref

    def write(self) -> tuple[bytes, dict[Ref, int]]:
        """The original followed by the update, and the offset of each object written.
        Call it once: an xref stream takes the next object number."""
        out = bytearray(self.original)
        if not out.endswith((b"\n", b"\r")):
            out += b"\n"
        offsets: dict[Ref, int] = {}
        for ref in sorted(self._objects):
            offsets[ref] = len(out)
            out += b"%d %d obj\n" % (ref.number, ref.generation)
            out += _object_body(self._objects[ref]) + b"\nendobj\n"
        trailer: dict[str, object] = {"Size": self._next, "Root": self.root}
        if self._info is not None:
            trailer["Info"] = self._info
        trailer["ID"] = [bytes(part) for part in self._id] if self._id is not None else _new_id(self.original)
        trailer["Prev"] = self.prev
        if self.xref_stream:
            xref_offset = self._xref_stream(out, offsets, trailer)
        else:
            xref_offset = len(out)
            out += b"xref\n" + _xref_table(offsets) + b"trailer\n" + serialize(trailer) + b"\n"
        out += b"startxref\n%d\n%%%%EOF\n" % xref_offset
        return bytes(out), offsets

    def _xref_stream(self, out: bytearray, offsets: dict[Ref, int], trailer: dict[str, object]) -> int:
        ref = self.new_ref()
        trailer["Size"] = self._next
        xref_offset = len(out)
        entries = {**offsets, ref: xref_offset}
        width = max(1, (max(entries.values()).bit_length() + 7) // 8)
        rows = b"".join(b"\x01" + offset.to_bytes(width, "big") + r.generation.to_bytes(2, "big")
                        for r, offset in sorted(entries.items()))
        dictionary = {"Type": Name("XRef"), **trailer, "W": [1, width, 2], "Index": _runs(sorted(entries)),
                      "Filter": Name("FlateDecode")}
        out += b"%d 0 obj\n" % ref.number
        out += _object_body(Stream(dictionary, zlib_stream(rows))) + b"\nendobj\n"
        return xref_offset


def _runs(refs: list[Ref]) -> list[int]:
    """[first count first count …] over the sorted object numbers: the subsections."""
    runs: list[list[int]] = []
    for ref in refs:
        if runs and runs[-1][0] + runs[-1][1] == ref.number:
            runs[-1][1] += 1
        else:
            runs.append([ref.number, 1])
    return [n for run in runs for n in run]


def _xref_table(offsets: dict[Ref, int]) -> bytes:
    refs = sorted(offsets)
    runs = _runs(refs)
    out, i = bytearray(), 0
    for first, count in zip(runs[::2], runs[1::2], strict=True):
        out += b"%d %d\n" % (first, count)
        for ref in refs[i:i + count]:
            out += b"%010d %05d n\r\n" % (offsets[ref], ref.generation)
        i += count
    return bytes(out)


def _new_id(original: bytes) -> list[bytes]:
    """An /ID for a file that had none (PDF/A and signatures want one): derived from its bytes."""
    first = sm3(original)[:16]
    return [first, first]
