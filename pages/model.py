"""The page model: what a document shows, independent of OFD or PDF.

Units are millimetres and the origin is the top-left corner of the page, y growing down:
OFD's convention (the PDF writer flips). Everything is a frozen dataclass validated when it is
made, so a writer never meets a negative size, an image that is not one, or text the
embedded font cannot show: the error comes where the bad value entered, naming it.

There is one font, the CJK face of :mod:`pages.fonts`; :func:`set_text` places a
:class:`Text` with it, and both writers draw exactly what it returns, so a licence is laid out
the same in OFD and PDF.
"""

from __future__ import annotations

import functools
import io
import math
import re
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from types import MappingProxyType
from typing import Literal

from .fonts import FontFace, MissingGlyphs, cjk_face

Color = tuple[int, int, int]
"""RGB, 0-255 each."""

BLACK: Color = (0, 0, 0)
A4_MM = (210.0, 297.0)
MAX_PAGE_MM = 5080.0  # 200 in: the largest page PDF allows, so both writers can take any page
MAX_QR_BYTES = 2331   # byte-mode capacity of the largest QR code (version 40) at level M
MAX_IMAGE_PIXELS = 50_000_000

IMAGE_MAGIC = {"png": b"\x89PNG\r\n\x1a\n", "jpeg": b"\xff\xd8\xff"}


class PageModelError(ValueError):
    """A document, page or item that cannot be written; the message names the value."""


def _number(value: object, what: str, *, positive: bool = False) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise PageModelError(f"{what} must be a finite number, not {value!r}")
    if positive and value <= 0:
        raise PageModelError(f"{what} must be positive, not {value!r}")
    return float(value)


def _color(value: object, what: str) -> None:
    if (not isinstance(value, tuple) or len(value) != 3
            or not all(isinstance(c, int) and not isinstance(c, bool) and 0 <= c <= 255 for c in value)):
        raise PageModelError(f"{what} must be an (r, g, b) tuple of integers 0-255, not {value!r}")


def _forbidden(ch: str) -> bool:
    """Characters neither XML 1.0 nor a PDF text string can carry, or that mean layout."""
    cp = ord(ch)
    return cp < 0x20 or 0x7F <= cp < 0xA0 or 0xD800 <= cp < 0xE000 or cp in (0xFFFE, 0xFFFF)


#: The characters :func:`_forbidden` refuses, as one class: a string is searched in one pass
#: of the regex engine instead of a Python call per character (every line of every licence is
#: checked; the characters are only listed, by ``_forbidden``, for the error message).
_FORBIDDEN = re.compile("[\x00-\x1f\x7f-\x9f\ud800-\udfff\ufffe\uffff]")


def _string(value: object, what: str, *, empty: bool = True) -> str:
    if not isinstance(value, str):
        raise PageModelError(f"{what} must be a string, not {type(value).__name__}")
    if not empty and not value.strip():
        raise PageModelError(f"{what} must not be empty")
    if _FORBIDDEN.search(value):
        bad = "".join(dict.fromkeys(c for c in value if _forbidden(c)))
        codes = ", ".join(f"U+{ord(c):04X}" for c in bad)
        raise PageModelError(f"{what} holds control or non-character code points ({codes})")
    return value


# -- items -----------------------------------------------------------------------------------

@dataclass(frozen=True)
class Text:
    """One line of text. ``(x, y)`` is on the baseline; ``align`` says whether x is where the
    line starts, its centre or its end. ``size_mm`` is the font size (the em square) in mm.
    With ``max_width`` a line that would be wider is set smaller until it fits, so a long
    name stays inside its field on a licence."""

    x: float
    y: float
    text: str
    size_mm: float
    color: Color = BLACK
    bold: bool = False
    align: Literal["left", "center", "right"] = "left"
    max_width: float | None = None

    def __post_init__(self) -> None:
        _number(self.x, "Text.x")
        _number(self.y, "Text.y")
        _string(self.text, "Text.text", empty=False)
        _number(self.size_mm, "Text.size_mm", positive=True)
        _color(self.color, "Text.color")
        if not isinstance(self.bold, bool):
            raise PageModelError(f"Text.bold must be True or False, not {self.bold!r}")
        if self.align not in ("left", "center", "right"):
            raise PageModelError(f"Text.align must be 'left', 'center' or 'right', not {self.align!r}")
        if self.max_width is not None:
            _number(self.max_width, "Text.max_width", positive=True)


@dataclass(frozen=True)
class Image:
    """A PNG or JPEG image filling the box whose top-left corner is ``(x, y)``."""

    x: float
    y: float
    w: float
    h: float
    data: bytes
    format: Literal["png", "jpeg"]

    def __post_init__(self) -> None:
        _number(self.x, "Image.x")
        _number(self.y, "Image.y")
        _number(self.w, "Image.w", positive=True)
        _number(self.h, "Image.h", positive=True)
        if self.format not in IMAGE_MAGIC:
            raise PageModelError(f"Image.format must be 'png' or 'jpeg', not {self.format!r}")
        if not isinstance(self.data, bytes) or not self.data.startswith(IMAGE_MAGIC[self.format]):
            raise PageModelError(f"Image.data is not a {self.format.upper()} file (wrong magic bytes)")
        _check_decodes(self.data, self.format)


def _check_decodes(data: bytes, fmt: str) -> None:
    """Refuse a damaged or oversized image now, not in a citizen's reader."""
    from PIL import Image as PILImage
    from PIL import UnidentifiedImageError

    try:
        with PILImage.open(io.BytesIO(data)) as probe:
            pixels = probe.width * probe.height
            if pixels > MAX_IMAGE_PIXELS:
                raise PageModelError(f"Image.data is {probe.width}x{probe.height} pixels, "
                                     f"more than {MAX_IMAGE_PIXELS:,}")
            probe.load()
    except PageModelError:
        raise
    except (OSError, SyntaxError, ValueError, UnidentifiedImageError, PILImage.DecompressionBombError) as exc:
        raise PageModelError(f"Image.data is not a readable {fmt.upper()} image: {exc}") from exc


@dataclass(frozen=True)
class Line:
    """A straight stroke from ``(x1, y1)`` to ``(x2, y2)``, ``width`` mm thick."""

    x1: float
    y1: float
    x2: float
    y2: float
    width: float = 0.25
    color: Color = BLACK

    def __post_init__(self) -> None:
        for name in ("x1", "y1", "x2", "y2"):
            _number(getattr(self, name), f"Line.{name}")
        _number(self.width, "Line.width", positive=True)
        _color(self.color, "Line.color")


@dataclass(frozen=True)
class Rect:
    """A rectangle with top-left ``(x, y)``; outlined with ``stroke``, filled with ``fill``."""

    x: float
    y: float
    w: float
    h: float
    stroke: Color | None = BLACK
    fill: Color | None = None
    line_width: float = 0.25

    def __post_init__(self) -> None:
        _number(self.x, "Rect.x")
        _number(self.y, "Rect.y")
        _number(self.w, "Rect.w", positive=True)
        _number(self.h, "Rect.h", positive=True)
        if self.stroke is None and self.fill is None:
            raise PageModelError("Rect has neither stroke nor fill: it would draw nothing")
        if self.stroke is not None:
            _color(self.stroke, "Rect.stroke")
        if self.fill is not None:
            _color(self.fill, "Rect.fill")
        _number(self.line_width, "Rect.line_width", positive=True)


@dataclass(frozen=True)
class QrCode:
    """A QR code (level M, 4-module quiet zone, black on white) in the square of side
    ``size`` mm with top-left ``(x, y)``; the quiet zone is inside the square."""

    x: float
    y: float
    size: float
    payload: str

    def __post_init__(self) -> None:
        _number(self.x, "QrCode.x")
        _number(self.y, "QrCode.y")
        _number(self.size, "QrCode.size", positive=True)
        if not isinstance(self.payload, str) or not self.payload:
            raise PageModelError("QrCode.payload must be a non-empty string")
        try:
            length = len(self.payload.encode("utf-8"))
        except UnicodeEncodeError as exc:
            raise PageModelError(f"QrCode.payload holds a lone surrogate at index {exc.start}") from None
        if length > MAX_QR_BYTES:
            raise PageModelError(f"QrCode.payload is {length} bytes; a QR code at level M holds "
                                 f"at most {MAX_QR_BYTES}")


Item = Text | Image | Line | Rect | QrCode
ITEM_TYPES = (Text, Image, Line, Rect, QrCode)


# -- text setting ------------------------------------------------------------------------------

@dataclass(frozen=True)
class TextRun:
    """A :class:`Text` placed: where its first glyph starts, the size it is set at, and each
    glyph's advance. Writers draw exactly this, so no reader's font metrics matter."""

    x: float
    y: float
    size: float
    advances: tuple[float, ...]
    ascent: float
    descent: float

    @property
    def width(self) -> float:
        return sum(self.advances)


def set_text(item: Text, face: FontFace | None = None) -> TextRun:
    """Place ``item`` with ``face`` (default: the CJK face); raises PageModelError naming any
    character the face lacks.

    The layout, the OFD writer and the PDF writer each place every line of a licence: the
    last few hundred placements are kept (items and runs are immutable)."""
    return _placed(item, face or cjk_face())


@functools.lru_cache(maxsize=512)
def _placed(item: Text, face: FontFace) -> TextRun:
    try:
        advances = face.advances(item.text, item.size_mm)
    except MissingGlyphs as exc:
        raise PageModelError(f"Text {_excerpt(item.text)}: {exc}") from exc
    size = item.size_mm
    width = sum(advances)
    if item.max_width is not None and width > item.max_width:
        scale = item.max_width / width
        size *= scale
        advances = [a * scale for a in advances]
        width = item.max_width
    shift = {"left": 0.0, "center": width / 2, "right": width}[item.align]
    return TextRun(item.x - shift, item.y, size, tuple(advances), face.ascent(size), face.descent(size))


def _excerpt(text: str) -> str:
    return repr(text if len(text) <= 20 else text[:20] + "…")


# -- pages and documents -----------------------------------------------------------------------

def extent(item: Item, face: FontFace | None = None) -> tuple[float, float, float, float]:
    """The box ``(left, top, right, bottom)`` in mm that ``item`` marks on the page."""
    if isinstance(item, Text):
        run = set_text(item, face)
        return run.x, run.y - run.ascent, run.x + run.width, run.y + run.descent
    if isinstance(item, Line):
        half = item.width / 2
        return (min(item.x1, item.x2) - half, min(item.y1, item.y2) - half,
                max(item.x1, item.x2) + half, max(item.y1, item.y2) + half)
    if isinstance(item, Rect):
        half = item.line_width / 2 if item.stroke is not None else 0.0
        return item.x - half, item.y - half, item.x + item.w + half, item.y + item.h + half
    if isinstance(item, QrCode):
        return item.x, item.y, item.x + item.size, item.y + item.size
    return item.x, item.y, item.x + item.w, item.y + item.h


_TOLERANCE = 1e-6


@dataclass(frozen=True)
class Page:
    """A page of ``width_mm`` x ``height_mm`` and what is drawn on it, in drawing order.
    Every item must lie on the page (a stroke's half-width included)."""

    width_mm: float
    height_mm: float
    items: tuple[Item, ...] = ()

    def __post_init__(self) -> None:
        for name in ("width_mm", "height_mm"):
            value = _number(getattr(self, name), f"Page.{name}", positive=True)
            if value > MAX_PAGE_MM:
                raise PageModelError(f"Page.{name} is {value:g} mm; pages are at most {MAX_PAGE_MM:g} mm")
        if isinstance(self.items, list):
            object.__setattr__(self, "items", tuple(self.items))
        if not isinstance(self.items, tuple):
            raise PageModelError("Page.items must be a tuple of items")
        face: FontFace | None = None  # found once per page, not per line: that reads the environment
        for index, item in enumerate(self.items):
            if not isinstance(item, ITEM_TYPES):
                raise PageModelError(f"Page.items[{index}] is a {type(item).__name__}, not a page item")
            if face is None and isinstance(item, Text):
                face = cjk_face()
            left, top, right, bottom = extent(item, face)
            if (left < -_TOLERANCE or top < -_TOLERANCE or right > self.width_mm + _TOLERANCE
                    or bottom > self.height_mm + _TOLERANCE):
                raise PageModelError(
                    f"Page.items[{index}] ({_describe(item)}) spans {left:.2f},{top:.2f} to "
                    f"{right:.2f},{bottom:.2f} mm, off the {self.width_mm:g} x {self.height_mm:g} mm page")

    @classmethod
    def a4(cls, items: tuple[Item, ...] | list[Item] = ()) -> Page:
        """A portrait A4 page (210 x 297 mm)."""
        return cls(A4_MM[0], A4_MM[1], tuple(items))


def _describe(item: Item) -> str:
    if isinstance(item, Text):
        return f"Text {_excerpt(item.text)}"
    return type(item).__name__


def _check_doc_id(doc_id: object) -> None:
    if doc_id is None:
        return
    _string(doc_id, "Document.doc_id", empty=False)
    if len(doc_id) > 128 or any(c.isspace() for c in doc_id):
        raise PageModelError(f"Document.doc_id must be 1-128 characters without spaces, not {doc_id!r}")


@dataclass(frozen=True)
class Document:
    """Pages and the metadata a reader shows (title, author) or a registry looks up (custom).

    ``doc_id`` and ``created`` are chosen by the writer when absent (a fresh uuid4, now);
    fix both to get the same bytes from the same document."""

    pages: tuple[Page, ...]
    title: str = ""
    author: str = ""
    creator: str = "zhengyin"
    doc_id: str | None = None
    created: datetime | None = None
    keywords: tuple[str, ...] = ()
    custom: Mapping[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        for name in ("pages", "keywords"):
            if isinstance(getattr(self, name), list):
                object.__setattr__(self, name, tuple(getattr(self, name)))
        if not isinstance(self.pages, tuple) or not self.pages:
            raise PageModelError("a Document needs at least one page")
        for index, page in enumerate(self.pages):
            if not isinstance(page, Page):
                raise PageModelError(f"Document.pages[{index}] is a {type(page).__name__}, not a Page")
        for name in ("title", "author", "creator"):
            _string(getattr(self, name), f"Document.{name}")
        _check_doc_id(self.doc_id)
        if self.created is not None and not isinstance(self.created, datetime):
            raise PageModelError(f"Document.created must be a datetime, not {self.created!r}")
        if not isinstance(self.keywords, tuple):
            raise PageModelError("Document.keywords must be a tuple of strings")
        for index, keyword in enumerate(self.keywords):
            _string(keyword, f"Document.keywords[{index}]", empty=False)
        if not isinstance(self.custom, Mapping):
            raise PageModelError("Document.custom must be a mapping of names to strings")
        for name, value in self.custom.items():
            _string(name, "a Document.custom name", empty=False)
            _string(value, f"Document.custom[{name!r}]")
        object.__setattr__(self, "custom", MappingProxyType(dict(self.custom)))

    def resolved_id(self) -> str:
        """``doc_id``, or a new uuid4 as 32 hex digits (each call without doc_id differs)."""
        return self.doc_id or uuid.uuid4().hex
