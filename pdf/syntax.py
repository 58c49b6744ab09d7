"""Reading PDF object syntax (ISO 32000-1 §7.2–7.3) from raw bytes, keeping where each value stood.

A signature verifier cannot take a PDF library's word for where things are: the /ByteRange gap
must be exactly the /Contents string of the signature dictionary *at the offset the
cross-reference section gives*, and an xref table must be read as written, not as repaired.
qpdf repairs silently; this reader never does. It parses one value at a time at a given offset
and records, for every dictionary entry, the span of bytes its value occupies
(:attr:`PdfDict.spans`), and which keys occur twice (:attr:`PdfDict.duplicates` — readers
disagree about which one wins, so a verifier treats that as suspicious).

Values: ``int``, ``float``, ``bool``, ``None``, :class:`Name`, :class:`Ref`,
:class:`PdfString` (``bytes`` with ``.hex``), ``list``, :class:`PdfDict`. Anything else — an
unknown keyword, an unterminated string, nesting deeper than :data:`MAX_DEPTH` — raises
:class:`~pdf.errors.PdfFormatError` naming the offset.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from .errors import PdfFormatError
from .incremental import Name, Ref

WHITESPACE = b"\x00\t\n\x0c\r "
DELIMITERS = b"()<>[]{}/%"
MAX_DEPTH = 64
_REGULAR = re.compile(rb"[^\x00\t\n\x0c\r ()<>\[\]{}/%]+")
_SPACE = re.compile(rb"(?:[\x00\t\n\x0c\r ]|%[^\r\n]*)*")
_NUMBER = re.compile(rb"[+-]?(?:\d+\.?\d*|\.\d+)\Z")
_INTEGER = re.compile(rb"[+-]?\d+\Z")
_NAME_ESCAPE = re.compile(rb"#([0-9A-Fa-f]{2})")
_HEX_BODY = re.compile(rb"[0-9A-Fa-f\x00\t\n\x0c\r ]*")
_ESCAPES = {ord("n"): b"\n", ord("r"): b"\r", ord("t"): b"\t", ord("b"): b"\b", ord("f"): b"\f",
            ord("("): b"(", ord(")"): b")", ord("\\"): b"\\"}
__all__ = ["Name", "ObjectAt", "PdfDict", "PdfString", "Ref", "Scanner", "read_object_at"]


class PdfString(bytes):
    """A string's bytes; ``hex`` says it was written ``<…>`` rather than ``(…)``."""

    hex: bool = False

    @classmethod
    def of(cls, value: bytes, *, hex: bool) -> PdfString:
        out = cls(value)
        out.hex = hex
        return out


class PdfDict(dict):
    """A dictionary (keys are names without the slash) with the byte span of each value."""

    def __init__(self) -> None:
        super().__init__()
        self.spans: dict[str, tuple[int, int]] = {}
        self.duplicates: list[str] = []


@dataclass(frozen=True)
class ObjectAt:
    """An indirect object as it stands at an offset: ``number generation obj … endobj``."""

    number: int
    generation: int
    value: object
    start: int                       # offset of the object number
    end: int                         # offset just past ``endobj``
    stream: tuple[int, int] | None = None  # [start, end) of the stream data, if a stream


class Scanner:
    """A cursor over ``data``; each ``read_*`` method starts after skipping white space."""

    def __init__(self, data: bytes, pos: int = 0):
        self.data = data
        self.pos = pos

    def fail(self, what: str, at: int | None = None) -> PdfFormatError:
        return PdfFormatError(f"offset {self.pos if at is None else at}: {what}")

    def skip_space(self) -> None:
        self.pos = _SPACE.match(self.data, self.pos).end()

    def token(self) -> bytes:
        """The next regular token (a number, keyword, …), or b"" at a delimiter or the end."""
        self.skip_space()
        match = _REGULAR.match(self.data, self.pos)
        if match is None:
            return b""
        self.pos = match.end()
        return match.group()

    def peek_token(self) -> bytes:
        saved = self.pos
        try:
            return self.token()
        finally:
            self.pos = saved

    def expect(self, keyword: bytes) -> None:
        at = self.pos
        if self.token() != keyword:
            raise self.fail(f"expected {keyword.decode()!r}", at)

    def read_int(self) -> int:
        at = self.pos
        tok = self.token()
        if not _INTEGER.match(tok):
            raise self.fail(f"expected an integer, found {tok[:20]!r}", at)
        return int(tok)

    # ---- values ---------------------------------------------------------------------------
    def read_value(self, depth: int = 0) -> object:
        if depth > MAX_DEPTH:
            raise self.fail(f"objects nested deeper than {MAX_DEPTH} levels")
        self.skip_space()
        data, pos = self.data, self.pos
        if pos >= len(data):
            raise self.fail("unexpected end of data")
        c = data[pos]
        if data.startswith(b"<<", pos):
            return self._read_dict(depth)
        if c == 0x3C:  # <
            return self._read_hex()
        if c == 0x28:  # (
            return self._read_literal()
        if c == 0x2F:  # /
            return self._read_name()
        if c == 0x5B:  # [
            self.pos += 1
            items = []
            while True:
                self.skip_space()
                if self.data.startswith(b"]", self.pos):
                    self.pos += 1
                    return items
                items.append(self.read_value(depth + 1))
        tok = self.token()
        if not tok:
            raise self.fail(f"unexpected {bytes([c])!r}")
        if tok == b"true":
            return True
        if tok == b"false":
            return False
        if tok == b"null":
            return None
        if _INTEGER.match(tok):
            return self._maybe_reference(int(tok))
        if _NUMBER.match(tok):
            return float(tok)
        raise self.fail(f"unexpected keyword {tok[:20]!r}", pos)

    def _maybe_reference(self, number: int) -> object:
        saved = self.pos
        generation = self.token()
        if _INTEGER.match(generation) and self.token() == b"R" and number >= 0 and int(generation) >= 0:
            return Ref(number, int(generation))
        self.pos = saved
        return number

    def _read_dict(self, depth: int) -> PdfDict:
        self.pos += 2
        out = PdfDict()
        while True:
            self.skip_space()
            if self.data.startswith(b">>", self.pos):
                self.pos += 2
                return out
            if not self.data.startswith(b"/", self.pos):
                raise self.fail("a dictionary key must be a name")
            key = self._read_name()
            self.skip_space()
            start = self.pos
            value = self.read_value(depth + 1)
            if key in out:
                out.duplicates.append(key)
            out[key] = value
            out.spans[key] = (start, self.pos)

    def _read_name(self) -> Name:
        self.pos += 1
        match = _REGULAR.match(self.data, self.pos)
        raw = match.group() if match else b""
        self.pos += len(raw)
        decoded = _NAME_ESCAPE.sub(lambda m: bytes([int(m.group(1), 16)]), raw)
        return Name(decoded.decode("utf-8", "surrogateescape"))

    def _read_hex(self) -> PdfString:
        start = self.pos
        end = self.data.find(b">", start + 1)
        if end < 0:
            raise self.fail("unterminated hex string")
        body = self.data[start + 1:end]
        if not _HEX_BODY.fullmatch(body):
            raise self.fail("a hex string holds a character that is neither a hex digit nor white space",
                            start)
        digits = bytes(b for b in body if b not in WHITESPACE)
        if len(digits) % 2:
            digits += b"0"
        self.pos = end + 1
        return PdfString.of(bytes.fromhex(digits.decode("ascii")), hex=True)

    def _read_literal(self) -> PdfString:
        data, i, depth = self.data, self.pos + 1, 1
        out = bytearray()
        while i < len(data):
            c = data[i]
            if c == 0x5C:  # backslash
                i += 1
                if i >= len(data):
                    break
                e = data[i]
                if e in _ESCAPES:
                    out += _ESCAPES[e]
                elif 0x30 <= e <= 0x37:
                    octal = re.match(rb"[0-7]{1,3}", data[i:i + 3]).group()
                    out.append(int(octal, 8) & 0xFF)
                    i += len(octal) - 1
                elif e == 0x0D:
                    if data.startswith(b"\n", i + 1):
                        i += 1
                elif e != 0x0A:
                    out.append(e)
            elif c == 0x28:
                depth += 1
                out.append(c)
            elif c == 0x29:
                depth -= 1
                if depth == 0:
                    self.pos = i + 1
                    return PdfString.of(bytes(out), hex=False)
                out.append(c)
            else:
                out.append(c)
            i += 1
        raise self.fail("unterminated literal string", self.pos)


_OBJ_HEADER = re.compile(rb"(\d+)[\x00\t\n\x0c\r ]+(\d+)[\x00\t\n\x0c\r ]+obj"
                         rb"(?![^\x00\t\n\x0c\r ()<>\[\]{}/%])")


def object_header_at(data: bytes, offset: int) -> tuple[int, int, int] | None:
    """(number, generation, end of the header) if ``N G obj`` begins exactly at ``offset``."""
    if not 0 <= offset < len(data):
        return None
    match = _OBJ_HEADER.match(data, offset)
    if match is None:
        return None
    return int(match.group(1)), int(match.group(2)), match.end()


def read_object_at(data: bytes, offset: int, *, length: int | None = None) -> ObjectAt:
    """The indirect object that begins exactly at ``offset``.

    A stream's data is taken as ``/Length`` bytes when that is a direct integer (or
    ``length``, when the caller resolved an indirect one); otherwise up to ``endstream``.
    """
    header = object_header_at(data, offset)
    if header is None:
        raise PdfFormatError(f"offset {offset}: no 'N G obj' begins here")
    number, generation, pos = header
    scanner = Scanner(data, pos)
    value = scanner.read_value()
    stream = None
    if isinstance(value, PdfDict) and scanner.peek_token() == b"stream":
        scanner.token()
        pos = scanner.pos
        if data.startswith(b"\r\n", pos):
            pos += 2
        elif data.startswith(b"\n", pos):
            pos += 1
        else:
            raise scanner.fail("the 'stream' keyword is not followed by an end of line")
        size = value.get("Length") if length is None else length
        if isinstance(size, int) and not isinstance(size, bool) and 0 <= size <= len(data) - pos:
            end = pos + size
            scanner.pos = end
            if scanner.peek_token() != b"endstream":
                raise scanner.fail(f"object {number} {generation}: /Length {size} does not end at "
                                   "'endstream'")
        else:
            end = data.find(b"endstream", pos)
            if end < 0:
                raise scanner.fail(f"object {number} {generation}: the stream has no 'endstream'")
            scanner.pos = end
        stream = (pos, end)
        scanner.expect(b"endstream")
    scanner.expect(b"endobj")
    return ObjectAt(number, generation, value, offset, scanner.pos, stream)
