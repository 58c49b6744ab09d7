"""Write a page-model Document as a PDF (ISO 32000-1, PDF 1.7) that keeps PDF/A-2b's rules.

Each page of the model becomes a page of its size (mm -> pt), with the model's top-left origin
flipped to PDF's bottom-left. Items are drawn in order, each inside its own ``q ... Q`` so no
state leaks from one to the next:

* Text -> ``BT /F1 size Tf ... Tj ET`` with the document's one font (:mod:`pdf.fonts`: the
  CJK face's subset, embedded), starting where :func:`pages.model.set_text` puts the line,
  each glyph advancing by the advance set_text used (``TJ`` corrections where whole-unit /W
  would drift), so it lands where the OFD writer puts it.
  Bold is the OFD writer's: text render mode 2 (fill, then stroke an outline 1/30 of the size
  in the text colour), because the face has no bold cut.
* Image -> an image XObject: JPEG passes through as /DCTDecode (CMYK is converted to RGB: PDF/A
  with an sRGB output intent admits no DeviceCMYK); PNG is decoded and Flate-compressed, its
  alpha channel becoming an /SMask (allowed in PDF/A-2), and the page then gets a transparency
  group in DeviceRGB so every reader blends alike.
* QrCode -> a white square, then the dark modules painted black through a 1-bit stencil mask
  (/ImageMask) with one pixel per module, from :func:`pages.qr.qr_symbol`. A stencil, because
  poppler smooths any upscaled *image* by less than 4x whatever its /Interpolate says (a QR
  code at 100 dpi came out half grey), while masks are scaled by pixel replication in poppler
  and pdfium alike: module edges stay sharp at every resolution.
* Line, Rect -> paths, stroked and/or filled.

Identical pictures (same bytes, same QR payload) are stored once, and their encoding is cached
for the process, so a template's emblem costs nothing after the first licence.

The file is written here (:class:`pdf.incremental.FileObjects`), objects numbered in the
order they are made, with a classic cross-reference table and no object streams: the plainest
form, which the incremental updates of signing extend and every validator reads. It used to be
written through pikepdf (qpdf), a third of a licence's PDF in building pikepdf objects and
saving them. The fonts', images' and PDF/A parts' builders put their objects into a
:class:`pdf.incremental.ObjectSink`, which is a pikepdf document for callers holding one
(:func:`image_xobject`); the objects in the file are those pikepdf makes from the same builders
(tests/test_speed_docs_pdf.py compares them). With ``doc_id`` and ``created`` fixed the
bytes are the same on every run: the first /ID element comes from ``doc_id``, the second is a
digest of the content.
"""

from __future__ import annotations

import functools
import hashlib
import io
import re
import zlib
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from importlib import metadata

import pikepdf

from pages.deflate import zlib_stream
from pages.fonts import FontFace, cjk_face
from pages.model import (
    MAX_IMAGE_PIXELS,
    Document,
    Image,
    Line,
    Page,
    PageModelError,
    QrCode,
    Rect,
    Text,
    set_text,
)
from pages.qr import qr_symbol

from .fonts import EmbeddedFont, PdfFont
from .incremental import FileObjects, Name, ObjectSink, PikepdfObjects, Raw, Ref, Stream
from .pdfa import Metadata, pdfa_objects

__all__ = ["PT_PER_MM", "Raster", "image_stream", "image_xobject", "qr_xobject", "raster", "write_pdf"]

PT_PER_MM = 72 / 25.4
BOLD_STROKE = 1 / 30  # outline width for bold, as a fraction of the font size (as ofd/content.py)
CHINA_STANDARD_TIME = timezone(timedelta(hours=8), "CST")
LANGUAGE = "zh-CN"
FONT_RESOURCE = "/F1"
#: zlib level of a picture's samples: a seal's picture is deflated once per process (:func:`raster`
#: keeps it) and embedded in every licence, so its size counts, not its time.
IMAGE_COMPRESSION = 6


def _version() -> str:
    try:
        return metadata.version("zhengyin")
    except metadata.PackageNotFoundError:
        return "0"


PRODUCER = f"zhengyin {_version()}"


def write_pdf(document: Document, *, font: Callable[[str], PdfFont] = EmbeddedFont) -> bytes:
    """The PDF of ``document``.

    A missing ``doc_id`` becomes a fresh uuid4 (32 hex digits); a missing ``created`` becomes
    now in China Standard Time, and an aware one is written in China Standard Time (a naive one
    as given, without offset). ``font`` makes the font that sets the text from the characters
    the document uses; the default, the embedded subset, is the only one that keeps PDF/A
    (benchmarks pass :class:`pdf.fonts.StandardCidFont` to measure what embedding costs).

    Raises PageModelError for anything but a Document, FontNotFound when no CJK font is
    installed and FontError when it is unusable.
    """
    if not isinstance(document, Document):
        raise PageModelError(f"write_pdf needs a pages.model.Document, not {type(document).__name__}")
    created = _creation_time(document.created)
    doc_id = document.resolved_id()
    objects = FileObjects()
    catalogue_ref, pages_ref = objects.reserve(), objects.reserve()
    chars = "".join(item.text for page in document.pages for item in page.items if isinstance(item, Text))
    text = _TextSetting(font(chars), objects) if chars else None
    pictures = _Pictures(objects)
    kids = [objects.indirect(_page(objects, page, text, pictures, pages_ref)) for page in document.pages]
    objects.set(pages_ref, {"Type": Name("Pages"), "Kids": kids, "Count": len(kids)})

    catalogue: dict[str, object] = {"Type": Name("Catalog"), "Pages": pages_ref, "Lang": LANGUAGE}
    if document.title:
        catalogue["ViewerPreferences"] = {"DisplayDocTitle": True}
    pdfa, info = pdfa_objects(objects, Metadata(
        document_id=doc_id, created=created, producer=PRODUCER, title=document.title,
        author=document.author, creator=document.creator, keywords=document.keywords,
        custom=document.custom))
    objects.set(catalogue_ref, catalogue | pdfa)
    # /ID: the permanent half names the document, the changing half is a digest of the content.
    return objects.write(HEADER, {"Root": catalogue_ref, "Info": info}, file_id=_file_id(doc_id))


#: ``%PDF-1.7`` and the comment of four bytes above 127 that marks the file binary (PDF/A).
HEADER = b"%PDF-1.7\n%\xbf\xf7\xa2\xfe\n"


def _creation_time(created: datetime | None) -> datetime:
    if created is None:
        return datetime.now(CHINA_STANDARD_TIME).replace(microsecond=0)
    return created.astimezone(CHINA_STANDARD_TIME) if created.tzinfo is not None else created


def _file_id(doc_id: str) -> bytes:
    """The permanent half of /ID: the document ID itself when it is a 128-bit hex value (as
    the writers' uuid4s are), so the PDF names its registry entry; otherwise its SHA-256, cut."""
    if re.fullmatch(r"[0-9a-fA-F]{32}", doc_id):
        return bytes.fromhex(doc_id)
    return hashlib.sha256(doc_id.encode("utf-8")).digest()[:16]


# -- content ----------------------------------------------------------------------------------

def _n(value: float, decimals: int = 3) -> str:
    """``value`` with at most ``decimals`` decimals and no trailing zeros (the default three:
    1/1000 pt = 0.35 µm)."""
    text = f"{value:.{decimals}f}".rstrip("0").rstrip(".")
    return "0" if text in ("-0", "") else text


def _rgb(color: tuple[int, int, int]) -> str:
    return " ".join(_n(c / 255) for c in color)


class _TextSetting:
    """The document's font, its resource, and the face set_text lays lines out with (looked
    up once: :func:`pages.fonts.cjk_face` resolves the font's path on every call)."""

    def __init__(self, font: PdfFont, objects: ObjectSink) -> None:
        self.font = font
        self.resource = font.objects(objects)
        self.face: FontFace = cjk_face()


_TRANSPARENCY = {"Type": Name("Group"), "S": Name("Transparency"), "CS": Name("DeviceRGB")}


def _page(objects: FileObjects, page: Page, text: _TextSetting | None, pictures: _Pictures,
          parent: Ref) -> dict[str, object]:
    height = page.height_mm
    ops: list[str] = []
    xobjects: dict[str, object] = {}
    has_text = transparent = False
    for item in page.items:
        if isinstance(item, Text):
            if text is None:
                raise PageModelError("a page with text needs the document's font")
            has_text = True
            ops.append(_text(item, text, height))
        elif isinstance(item, Image | QrCode):
            name, xobject, masked = pictures.get(item)
            xobjects[name] = xobject
            transparent = transparent or masked
            ops.append(_picture(item, name, height))
        elif isinstance(item, Line):
            ops.append(_line(item, height))
        else:
            ops.append(_rect(item, height))
    resources: dict[str, object] = {}
    if has_text:
        resources["Font"] = {FONT_RESOURCE.removeprefix("/"): text.resource}
    if xobjects:
        resources["XObject"] = {name.removeprefix("/"): xobject for name, xobject in xobjects.items()}
    ops_bytes = zlib_stream("\n".join(ops).encode("ascii"))
    content = objects.indirect(Stream({"Filter": Name("FlateDecode")}, ops_bytes))
    page_dict: dict[str, object] = {
        "Type": Name("Page"), "Parent": parent,
        "MediaBox": [0, 0, Raw(_n(page.width_mm * PT_PER_MM).encode()), Raw(_n(height * PT_PER_MM).encode())],
        "Resources": resources, "Contents": content}
    if transparent:
        page_dict["Group"] = _TRANSPARENCY
    return page_dict


def _text(item: Text, text: _TextSetting, page_height: float) -> str:
    run = set_text(item, text.face)
    size = run.size * PT_PER_MM
    color = _rgb(item.color)
    style = f"2 Tr {_n(size * BOLD_STROKE)} w {color} RG " if item.bold else ""
    # The size with five decimals: a line 100 mm long must not end 0.01 pt off for its rounding.
    return (f"q BT {FONT_RESOURCE} {_n(size, 5)} Tf {color} rg {style}1 0 0 1 {_n(run.x * PT_PER_MM)} "
            f"{_n((page_height - run.y) * PT_PER_MM)} Tm {text.font.show(item.text)} ET Q")


def _picture(item: Image | QrCode, name: str, page_height: float) -> str:
    w, h = (item.size, item.size) if isinstance(item, QrCode) else (item.w, item.h)
    x, y, w, h = (_n(v * PT_PER_MM) for v in (item.x, page_height - item.y - h, w, h))
    if isinstance(item, QrCode):  # the light modules and quiet zone, then the stencil in black
        return f"q 1 g {x} {y} {w} {h} re f 0 g {w} 0 0 {h} {x} {y} cm {name} Do Q"
    return f"q {w} 0 0 {h} {x} {y} cm {name} Do Q"


def _line(item: Line, page_height: float) -> str:
    return (f"q {_n(item.width * PT_PER_MM)} w {_rgb(item.color)} RG "
            f"{_n(item.x1 * PT_PER_MM)} {_n((page_height - item.y1) * PT_PER_MM)} m "
            f"{_n(item.x2 * PT_PER_MM)} {_n((page_height - item.y2) * PT_PER_MM)} l S Q")


def _rect(item: Rect, page_height: float) -> str:
    parts = ["q"]
    if item.stroke is not None:
        parts.append(f"{_n(item.line_width * PT_PER_MM)} w {_rgb(item.stroke)} RG")
    if item.fill is not None:
        parts.append(f"{_rgb(item.fill)} rg")
    parts.append(f"{_n(item.x * PT_PER_MM)} {_n((page_height - item.y - item.h) * PT_PER_MM)} "
                 f"{_n(item.w * PT_PER_MM)} {_n(item.h * PT_PER_MM)} re")
    paint = {(True, False): "S", (False, True): "f", (True, True): "B"}
    parts.append(paint[item.stroke is not None, item.fill is not None])
    parts.append("Q")
    return " ".join(parts)


# -- pictures ---------------------------------------------------------------------------------

@dataclass(frozen=True)
class Raster:
    """An image ready for an XObject: its samples as they go into the stream, and its alpha."""

    width: int
    height: int
    color_space: str  # "/DeviceGray" or "/DeviceRGB"
    bits: int
    data: bytes
    filter: str  # "/FlateDecode" or "/DCTDecode"
    smask: Raster | None = None
    stencil: bool = False  # a 1-bit /ImageMask (samples 0 paint, no colour space of its own)


def _flate(width: int, height: int, space: str, bits: int, samples: bytes,
           smask: Raster | None = None) -> Raster:
    data = zlib.compress(samples, IMAGE_COMPRESSION)
    return Raster(width, height, space, bits, data, "/FlateDecode", smask)


@functools.lru_cache(maxsize=32)
def raster(data: bytes, fmt: str) -> Raster:
    """``data`` (a PNG or JPEG file, ``fmt`` "png" or "jpeg") as PDF image samples; cached.
    Raises PageModelError for an image Pillow cannot read or one of more than the page model's
    MAX_IMAGE_PIXELS (callers other than the writer, e.g. a seal's picture, get the same bound)."""
    from PIL import Image as PILImage
    from PIL import UnidentifiedImageError

    try:
        with PILImage.open(io.BytesIO(data)) as image:
            if image.width * image.height > MAX_IMAGE_PIXELS:
                raise PageModelError(f"the {fmt.upper()} image is {image.width}x{image.height} pixels, "
                                     f"more than {MAX_IMAGE_PIXELS:,}")
            image.load()
            if fmt == "jpeg" and image.format == "JPEG" and image.mode in ("L", "RGB"):
                space = "/DeviceGray" if image.mode == "L" else "/DeviceRGB"
                return Raster(image.width, image.height, space, 8, data, "/DCTDecode")
            return _decoded(image)
    except (OSError, SyntaxError, ValueError, UnidentifiedImageError, PILImage.DecompressionBombError) as exc:
        raise PageModelError(f"the {fmt.upper()} image cannot be decoded: {exc}") from exc


def _decoded(image) -> Raster:
    """A decoded image as Flate samples: gray or RGB, 1 or 8 bits, alpha split off."""
    if image.mode == "1":
        return _flate(image.width, image.height, "/DeviceGray", 1, image.tobytes())
    if image.mode in ("I", "I;16", "I;16B", "I;16L"):
        image = image.point(lambda v: v / 256).convert("L")
    if image.mode == "P" or "transparency" in image.info:
        image = image.convert("RGBA" if "transparency" in image.info or image.mode == "PA" else "RGB")
    if image.mode not in ("L", "LA", "RGB", "RGBA"):
        image = image.convert("RGBA" if "A" in image.getbands() else "RGB")
    smask = None
    if image.mode in ("LA", "RGBA"):
        alpha = image.getchannel("A")
        image = image.convert("L" if image.mode == "LA" else "RGB")
        if alpha.getextrema() != (255, 255):  # fully opaque: no mask needed
            smask = _flate(alpha.width, alpha.height, "/DeviceGray", 8, alpha.tobytes())
    space = "/DeviceGray" if image.mode == "L" else "/DeviceRGB"
    return _flate(image.width, image.height, space, 8, image.tobytes(), smask)


@functools.lru_cache(maxsize=256)
def qr_raster(payload: str) -> Raster:
    """``payload``'s QR code, quiet zone included, one pixel per module, as a stencil mask
    (0 = dark = painted)."""
    symbol = qr_symbol(payload)
    side = symbol.side
    row_bytes = (side + 7) // 8
    pad = "1" * (row_bytes * 8 - side)  # the last byte's spare bits: white
    light = symbol.text.translate(_LIGHT_ONES)
    rows = b"".join(int(light[i:i + side] + pad, 2).to_bytes(row_bytes, "big")
                    for i in range(0, side * side, side))
    data = zlib_stream(rows)
    return Raster(side, side, "", 1, data, "/FlateDecode", stencil=True)


_LIGHT_ONES = str.maketrans("01", "10")


def image_stream(objects: ObjectSink, image: Raster) -> Stream:
    """The image XObject of ``image`` (its /SMask put into ``objects``), drawn in the unit
    square: what a page or a signature appearance places with ``w 0 0 h x y cm /Name Do``."""
    entries: dict[str, object] = {
        "Type": Name("XObject"), "Subtype": Name("Image"), "Width": image.width, "Height": image.height,
        "BitsPerComponent": image.bits, "Filter": Name(image.filter.removeprefix("/")), "Interpolate": False}
    if image.stencil:
        entries["ImageMask"] = True
    else:
        entries["ColorSpace"] = Name(image.color_space.removeprefix("/"))
    if image.smask is not None:
        entries["SMask"] = objects.indirect(image_stream(objects, image.smask))
    return Stream(entries, image.data)


def image_xobject(pdf: pikepdf.Pdf, data: bytes, fmt: str) -> pikepdf.Stream:
    """An image XObject in ``pdf`` for a PNG or JPEG file (alpha as /SMask): see :func:`image_stream`."""
    if fmt not in ("png", "jpeg"):
        raise PageModelError(f"images are 'png' or 'jpeg', not {fmt!r}")
    sink = PikepdfObjects(pdf)
    return sink.indirect(image_stream(sink, raster(data, fmt)))


def qr_xobject(pdf: pikepdf.Pdf, payload: str) -> pikepdf.Stream:
    """The QR code of ``payload`` (level M, quiet zone inside) as a stencil mask in ``pdf``: it
    paints the dark modules in the current fill colour; paint the square white first."""
    sink = PikepdfObjects(pdf)
    return sink.indirect(image_stream(sink, qr_raster(payload)))


class _Pictures:
    """The document's image XObjects, one per distinct picture, named /Im1, /Im2, ..."""

    def __init__(self, objects: ObjectSink) -> None:
        self.objects = objects
        self.made: dict[tuple[str, bytes | str], tuple[str, object, bool]] = {}

    def get(self, item: Image | QrCode) -> tuple[str, object, bool]:
        """The picture's resource name, its XObject and whether it has a soft mask."""
        key = ("qr", item.payload) if isinstance(item, QrCode) else (item.format, item.data)
        if key not in self.made:
            image = qr_raster(item.payload) if isinstance(item, QrCode) else raster(item.data, item.format)
            xobject = self.objects.indirect(image_stream(self.objects, image))
            self.made[key] = (f"/Im{len(self.made) + 1}", xobject, image.smask is not None)
        return self.made[key]
