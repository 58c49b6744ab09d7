"""Seal pictures: the official look, generated; and the pictures real seals carry, read.

Generated seals follow Chinese practice for the face of a seal (sizes in mm):

=====================================  ===========  =============================================
seal                                   size         face
=====================================  ===========  =============================================
round official seal (公章), no purpose   ⌀ 42        1.2 ring, name on the upper arc, 14 mm star
round special seal (…专用章)            ⌀ 40        1.0 ring, name, 13.3 mm star, purpose below
oval (财务专用章-like)                   45 × 30     1.0 ring, name on the upper arc, purpose in
                                                    the middle
rectangle, name seal (≤ 6 characters,  22 × 22     1.0 border, the name in two columns read
no purpose: 法定代表人名章)                            right to left (2 × 2 for four characters)
rectangle, with a purpose or a longer  50 × 20     1.0 border, the name and the purpose in rows
name (条形章)
=====================================  ===========  =============================================

The seal code, when given, runs small along the bottom inner rim of round and oval seals
(rectangles have no rim to carry it and omit it). Long names are spread over at most 240° of
the upper arc and compressed sideways, as a carver does, so 25 characters still fit.

Seal pictures found in real seals are sniffed by their bytes, because the declared type is
sometimes wrong (DianJu declares "bmp" for GIF data), and decoded with a pixel bound so a
small file cannot expand into gigabytes. An OFD picture (the tax bureau's seals) is a ZIP
package that only ofd/ can render; this module recognises it and says so.
"""

from __future__ import annotations

import enum
import functools
import io
import math
from collections.abc import Callable
from dataclasses import dataclass
from struct import error as struct_error

from PIL import Image, UnidentifiedImageError

from pages.fonts import FONT_ENV, cjk_face

from .errors import SealError
from .picture_draw import DIGIT_REFERENCE, InkMask

#: Seal red: a pure red with a little less than full intensity, as stamp-pad ink prints.
SEAL_RED = (230, 0, 0)
MIN_DPI, MAX_DPI = 72, 1200
#: A seal's picture is embedded in every document it stamps — three times in a licence (the
#: OFD's Seal.esl and seal signature, the PDF's appearance) — so its size is paid for in every
#: licence's hashing, writing and storage. 300 dpi is print quality for a 4 cm seal (496 px
#: across; ofdrw's seals are 400 px for 40 mm, 254 dpi) at under half the bytes of 600 dpi.
DEFAULT_DPI = 300
MAX_NAME, MAX_PURPOSE, MAX_CODE = 40, 16, 24
MAX_NAME_SEAL = 6
BAR_ROW = 12


class SealPictureError(SealError):
    """A seal picture cannot be made or read: empty text, bad resolution, corrupt or huge image."""


class SealShape(enum.StrEnum):
    ROUND = "round"
    OVAL = "oval"
    RECTANGLE = "rectangle"


@dataclass(frozen=True)
class SealImage:
    """A generated seal face: RGBA PNG (transparent background, DPI in pHYs) and its size in mm."""

    png: bytes
    width_mm: int
    height_mm: int
    shape: SealShape


@dataclass(frozen=True)
class PictureFacts:
    """What a seal's picture really is, next to what its seal says it is."""

    declared_type: str
    actual_type: str  # png | jpeg | gif | bmp | ofd | unknown
    width_px: int | None
    height_px: int | None
    type_matches: bool


# --------------------------------------------------------------------------- generating


def seal_image(department: str, purpose: str = "", *, shape: SealShape = SealShape.ROUND,
               code: str | None = None, dpi: int = DEFAULT_DPI) -> SealImage:
    """The red face of a seal for ``department`` as a transparent PNG at ``dpi``.

    ``purpose`` is the seal's use ("电子证照专用章", "合同专用章"); without it a round seal is the
    department's official seal. ``code`` (the seal code) is lettered along the bottom rim.
    Same inputs, same bytes.
    """
    department = _text("department name", department, MAX_NAME)
    purpose = _text("purpose", purpose, MAX_PURPOSE)
    code = _text("seal code", code, MAX_CODE) if code is not None else ""
    if not department:
        raise SealPictureError("a seal needs a department name")
    try:
        shape = SealShape(shape)
    except ValueError:
        raise SealPictureError(f"unknown seal shape {shape!r}: use one of "
                               f"{', '.join(s.value for s in SealShape)}") from None
    if isinstance(dpi, bool) or not isinstance(dpi, int) or not MIN_DPI <= dpi <= MAX_DPI:
        raise SealPictureError(f"dpi must be an integer from {MIN_DPI} to {MAX_DPI}, not {dpi!r}")
    if shape is SealShape.ROUND:
        width, height = (42, 42) if not purpose else (40, 40)
    elif shape is SealShape.OVAL:
        width, height = 45, 30
    elif not purpose and len(department) <= MAX_NAME_SEAL:
        width, height = 22, 22
    else:
        width, height = 50, 20
    supersample = min(16, max(2, math.ceil(1200 / dpi)))
    ink = InkMask(_px(width, dpi), _px(height, dpi), width, height, supersample)
    if shape is SealShape.ROUND:
        _round(ink, width, department, purpose, code)
    elif shape is SealShape.OVAL:
        _oval(ink, width, height, department, purpose, code)
    elif (width, height) == (22, 22):
        _name_seal(ink, width, department)
    else:
        _bar_seal(ink, width, height, department, purpose)
    return SealImage(ink.png(dpi, SEAL_RED), width, height, shape)


def _text(what: str, value: object, most: int) -> str:
    """The text as it is lettered: no spaces (a seal has none), every character in the font."""
    if not isinstance(value, str):
        raise SealPictureError(f"the {what} must be text, not {type(value).__name__}")
    text = "".join(value.split())
    if len(text) > most:
        raise SealPictureError(f"the {what} has {len(text)} characters; a seal holds at most {most}")
    if any(not char.isprintable() for char in text):
        raise SealPictureError(f"the {what} contains control characters")
    missing = cjk_face().missing(text)
    if missing:
        raise SealPictureError(f"the seal font has no glyph for {missing!r} in the {what}: "
                               f"set {FONT_ENV} to a font that has them")
    return text


def _px(mm: float, dpi: int) -> int:
    return round(mm * dpi / 25.4)


@dataclass(frozen=True)
class _ArcName:
    height: float     # character height, mm
    inset: float      # from the ring's inner edge to the characters' centre line, mm
    length: float     # arc length the name covers, mm


def _arc_name(count: int, height: float, gap: float, radius_at: Callable[[float], float],
              most_degrees: float) -> _ArcName:
    """How a name of ``count`` characters sits on the upper arc.

    Its natural width, spread out when short, at most ``most_degrees`` of arc. A long name is
    first compressed sideways; below 55 % width it is made up to a quarter shorter instead, which
    also moves it outwards onto a longer arc (``radius_at(inset)`` gives the arc's radius).
    """
    for scale in (1.0, 0.95, 0.9, 0.85, 0.8, 0.75):
        h = height * scale
        inset = gap + h / 2
        radius = radius_at(inset)
        natural = count * h * 0.95
        spread = min(natural * 1.5, math.radians(180) * radius)
        length = min(max(natural, spread), math.radians(most_degrees) * radius)
        if length / count * 0.9 >= 0.55 * h:
            break
    return _ArcName(h, inset, length)


def _round(ink: InkMask, diameter: int, name: str, purpose: str, code: str) -> None:
    # Proportions of a 42 mm official seal; a 40 mm special seal is the same face scaled.
    k = diameter / 42
    c = r = diameter / 2
    ring = 1.2 if not purpose else 1.0
    edge = r - 0.15
    ink.ellipse_ring(c, c, edge, edge, ring)
    arc = _arc_name(len(name), 6.6 * k, 0.9 * k, lambda inset: edge - ring - inset, 240)
    name_r = edge - ring - arc.inset
    ink.along_ellipse(name, c, c, name_r, name_r, height=arc.height, length=arc.length)
    ink.star(c, c - 0.4 * k if purpose else c, 7.0 * k)
    if purpose:
        ink.line(purpose, c, c + 10.6 * k, 4.4 * k, 21.0 * k)
    if code:
        code_h = 2.1 * k
        code_r = edge - ring - 0.5 * k - code_h / 2
        ink.along_ellipse(code, c, c, code_r, code_r, height=code_h, aspect=0.62, upper=False,
                          length=min(len(code) * code_h * 0.78, math.radians(100) * code_r),
                          reference=DIGIT_REFERENCE)


def _oval(ink: InkMask, width: int, height: int, name: str, purpose: str, code: str) -> None:
    cx, cy = width / 2, height / 2
    a, b, ring = cx - 0.15, cy - 0.15, 1.0
    ink.ellipse_ring(cx, cy, a, b, ring)

    def mean_radius(inset: float) -> float:
        return math.sqrt(((a - ring - inset) ** 2 + (b - ring - inset) ** 2) / 2)

    arc = _arc_name(len(name), 4.6, 0.7, mean_radius, 200)
    na, nb = a - ring - arc.inset, b - ring - arc.inset
    ink.along_ellipse(name, cx, cy, na, nb, height=arc.height, length=arc.length)
    if purpose:
        ink.line(purpose, cx, cy + 2.2, 4.2, 2 * na - 2 * arc.height)
    if code:
        code_h = 1.9
        inset = ring + 0.5 + code_h / 2
        ink.along_ellipse(code, cx, cy, a - inset, b - inset, height=code_h, aspect=0.62, upper=False,
                          length=min(len(code) * code_h * 0.78, 0.5 * math.pi * (a - inset)),
                          reference=DIGIT_REFERENCE)


def _name_seal(ink: InkMask, side: int, name: str) -> None:
    """A personal name seal: columns read right to left, each top to bottom, filling the square."""
    border, gap = 1.0, 0.9
    ink.rectangle_border(0.15, border)
    inner = side - 2 * (0.15 + border + gap)
    origin = 0.15 + border + gap
    # The right column holds the surname side: with three characters the surname alone, full height.
    columns = [name] if len(name) == 1 else [name[: len(name) // 2], name[len(name) // 2:]]
    col_w = inner / len(columns)
    for index, column in enumerate(columns):
        x = origin + inner - col_w * (index + 0.5)
        cell_h = inner / len(column)
        for row, char in enumerate(column):
            ink.glyph(char, x, origin + cell_h * (row + 0.5), col_w * 0.92, cell_h * 0.92)


def _bar_seal(ink: InkMask, width: int, height: int, name: str, purpose: str) -> None:
    """A bar stamp: the name over the purpose; a long name alone is broken over two rows."""
    border, gap = 1.0, 1.0
    ink.rectangle_border(0.15, border)
    if purpose:
        rows = [name, purpose]
    elif len(name) > BAR_ROW:
        rows = [name[: (len(name) + 1) // 2], name[(len(name) + 1) // 2:]]
    else:
        rows = [name]
    inner_w = width - 2 * (0.15 + border + gap)
    inner_h = height - 2 * (0.15 + border + gap)
    row_h = inner_h / len(rows)
    for index, text in enumerate(rows):
        letter_h = min(7.0, row_h * 0.8, inner_w / len(text) / 0.5)   # keep letters at least half as wide
        ink.line(text, width / 2, 0.15 + border + gap + row_h * (index + 0.5), letter_h, inner_w)


# --------------------------------------------------------------------------- reading

_MAGIC = (
    (b"\x89PNG\r\n\x1a\n", "png"),
    (b"\xff\xd8\xff", "jpeg"),
    (b"GIF87a", "gif"),
    (b"GIF89a", "gif"),
    (b"BM", "bmp"),
    (b"PK\x03\x04", "ofd"),
)
_DECLARED = {"png": "png", "jpg": "jpeg", "jpeg": "jpeg", "jpe": "jpeg", "jfif": "jpeg", "gif": "gif",
             "bmp": "bmp", "dib": "bmp", "ofd": "ofd"}
_PILLOW_FORMAT = {"png": "PNG", "jpeg": "JPEG", "gif": "GIF", "bmp": "BMP"}


def _sniff(data: bytes) -> str:
    for magic, kind in _MAGIC:
        if data.startswith(magic):
            return kind
    return "unknown"


def _declared(declared_type: str) -> str:
    label = declared_type.strip().lower().removeprefix("image/").removeprefix(".")
    return _DECLARED.get(label, label)


def _decode(kind: str, data: bytes, max_pixels: int) -> Image.Image:
    """The first frame, fully decoded, after the header's size was checked against ``max_pixels``.

    ``verify()`` checks what only it checks (PNG chunk CRCs); ``load()`` then decodes, which is
    where truncated GIF and JPEG data shows. Pillow's own bomb limit stays as a second fence.
    """
    if isinstance(max_pixels, bool) or not isinstance(max_pixels, int) or max_pixels < 1:
        raise SealPictureError(f"max_pixels must be a positive integer, not {max_pixels!r}")
    formats = [_PILLOW_FORMAT[kind]]
    try:
        with Image.open(io.BytesIO(data), formats=formats) as probe:
            width, height = probe.size
            if width * height > max_pixels:
                raise SealPictureError(f"the {kind} picture claims {width}×{height} pixels, "
                                       f"more than the {max_pixels} allowed")
            probe.verify()
        image = Image.open(io.BytesIO(data), formats=formats)
        image.load()
    except SealPictureError:
        raise
    except Image.DecompressionBombError:
        raise SealPictureError(f"the {kind} picture claims more pixels than the {max_pixels} allowed "
                               "(a decompression bomb)") from None
    except UnidentifiedImageError:
        raise SealPictureError(f"the picture starts like {kind.upper()} but its header cannot be read "
                               "(corrupt or not an image)") from None
    except (OSError, SyntaxError, ValueError, EOFError, IndexError, struct_error) as exc:
        raise SealPictureError(f"the {kind} picture is corrupt: {exc}") from exc
    return image


def inspect_picture(declared_type: str, data: bytes) -> PictureFacts:
    """What the picture is by its bytes, its pixel size, and whether the declared type says so.

    Raster pictures are decoded in full, so a corrupt or oversized one raises SealPictureError
    here already; an OFD picture is only recognised (its size is None); unknown bytes give
    ``actual_type="unknown"``.
    """
    if not isinstance(data, bytes | bytearray | memoryview):
        raise SealPictureError(f"picture data must be bytes, not {type(data).__name__}")
    data = bytes(data)
    kind = _sniff(data)
    width = height = None
    if kind in _PILLOW_FORMAT:
        image = _decode(kind, data, 40_000_000)
        width, height = image.size
    matches = kind != "unknown" and _declared(str(declared_type)) == kind
    return PictureFacts(str(declared_type), kind, width, height, matches)


def picture_png(declared_type: str, data: bytes, *, max_pixels: int = 40_000_000) -> bytes:
    """The raster picture as an RGBA PNG, for a stamp appearance; decoded by its bytes, not its label.

    Old BMP seals keep their white background. OFD pictures are refused: ofd/ renders them.
    Every licence a seal stamps asks for the same picture, and decoding and compressing a
    print-resolution seal face costs tens of milliseconds, so results are kept, keyed by the
    picture's own bytes (a different picture can never get another's PNG).
    """
    if not isinstance(data, bytes | bytearray | memoryview):
        raise SealPictureError(f"picture data must be bytes, not {type(data).__name__}")
    return _picture_png(str(declared_type), bytes(data), max_pixels)


@functools.lru_cache(maxsize=32)
def _picture_png(declared_type: str, data: bytes, max_pixels: int) -> bytes:
    kind = _sniff(data)
    if kind == "ofd":
        raise SealPictureError("an OFD picture is rendered by ofd/")
    if kind == "unknown":
        raise SealPictureError(f"the picture declared {declared_type!r} is not PNG, JPEG, GIF, BMP or OFD "
                               f"(starts with {data[:8].hex() or 'nothing'})")
    image = _decode(kind, data, max_pixels)
    try:
        rgba = image.convert("RGBA")
    except (ValueError, OSError) as exc:
        raise SealPictureError(f"the {kind} picture's colour mode {image.mode} cannot be converted: "
                               f"{exc}") from exc
    out = io.BytesIO()
    rgba.save(out, "PNG")
    return out.getvalue()
