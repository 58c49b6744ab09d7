"""The visible part of a signature: the seal picture in a widget box on a page.

Placements are given as a person measures a printed page: millimetres from the top-left corner
of the page as displayed. PDF draws in points from the bottom-left of the page's user space, and
a page may be rotated (/Rotate) and cropped (/CropBox, inherited from its /Pages ancestors like
/MediaBox), so :class:`PageGeometry` maps one to the other. The widget's appearance is a form
XObject drawing the picture so that it stands upright on the displayed page whatever /Rotate is.

The picture (RGBA PNG) becomes a DeviceRGB image with its alpha channel as a DeviceGray /SMask
— the transparent background of a seal face must let the text under it show, as ink on paper
does. The image is the document writer's own XObject for a picture (:func:`pdf.writer.image_stream`,
samples from :func:`pdf.writer.raster`, which caches them by the PNG's bytes: decoding and
compressing a print-resolution seal costs milliseconds that bulk issuance pays once per seal).
"""

from __future__ import annotations

import io
import math
from dataclasses import dataclass
from decimal import Decimal
from functools import lru_cache

import pikepdf
from PIL import Image, UnidentifiedImageError

from pages.model import PageModelError

from .errors import PdfError
from .incremental import IncrementalUpdate, Name, Ref, Stream, serialize
from .writer import PT_PER_MM, Raster, image_stream, raster

MM = PT_PER_MM
MAX_PICTURE_PIXELS = 40_000_000
_MAX_PAGE_TREE_DEPTH = 64


class AppearanceError(PdfError):
    """The seal picture cannot be drawn as asked: unreadable image, box off the page, odd page box."""


@dataclass(frozen=True)
class PageGeometry:
    """A page's visible box in user space (points) and its clockwise display rotation."""

    box: tuple[float, float, float, float]  # llx, lly, urx, ury
    rotate: int                              # 0, 90, 180 or 270

    @property
    def display_size_mm(self) -> tuple[float, float]:
        llx, lly, urx, ury = self.box
        width, height = (urx - llx) / MM, (ury - lly) / MM
        return (width, height) if self.rotate in (0, 180) else (height, width)

    def to_user(self, x: float, y: float) -> tuple[float, float]:
        """User-space point of (x, y) points from the displayed page's top-left, y downwards."""
        llx, lly, urx, ury = self.box
        if self.rotate == 0:
            return llx + x, ury - y
        if self.rotate == 90:
            return llx + y, lly + x
        if self.rotate == 180:
            return urx - x, lly + y
        return urx - y, ury - x


def _inherited(page: pikepdf.Dictionary, key: str) -> object:
    node, seen = page, set()
    for _ in range(_MAX_PAGE_TREE_DEPTH):
        if key in node:
            return node[key]
        parent = node.get("/Parent")
        if not isinstance(parent, pikepdf.Dictionary) or parent.objgen in seen:
            return None
        seen.add(parent.objgen)
        node = parent
    raise AppearanceError(f"the page tree is deeper than {_MAX_PAGE_TREE_DEPTH} levels or loops")


def _rectangle(value: object, what: str) -> tuple[float, float, float, float]:
    if not isinstance(value, pikepdf.Array) or len(value) != 4 or not all(
            isinstance(v, (int, Decimal)) and not isinstance(v, bool) for v in value):
        raise AppearanceError(f"the page's {what} is not a rectangle of four numbers")
    x1, y1, x2, y2 = (float(v) for v in value)
    return min(x1, x2), min(y1, y2), max(x1, x2), max(y1, y2)


def page_geometry(page: pikepdf.Dictionary) -> PageGeometry:
    """The geometry of ``page``, with /MediaBox, /CropBox and /Rotate inherited as ISO 32000 says."""
    media = _rectangle(_inherited(page, "/MediaBox"), "/MediaBox")
    box = media
    crop = _inherited(page, "/CropBox")
    if crop is not None:
        c = _rectangle(crop, "/CropBox")  # the crop box is clipped to the media box
        box = (max(c[0], media[0]), max(c[1], media[1]), min(c[2], media[2]), min(c[3], media[3]))
    if box[2] - box[0] <= 0 or box[3] - box[1] <= 0:
        raise AppearanceError("the page's visible box is empty")
    rotate = _inherited(page, "/Rotate")
    rotate = 0 if rotate is None else rotate
    if not isinstance(rotate, int) or isinstance(rotate, bool) or rotate % 90:
        raise AppearanceError(f"the page's /Rotate {rotate!r} is not a multiple of 90")
    return PageGeometry(box, rotate % 360)


@dataclass(frozen=True)
class WidgetBox:
    """Where the widget sits in user space and how its appearance draws the picture."""

    rect: tuple[float, float, float, float]
    matrix: tuple[float, float, float, float, float, float]
    """Maps the image's unit square into the form's space (origin at the rect's lower left)."""

    @property
    def size(self) -> tuple[float, float]:
        return self.rect[2] - self.rect[0], self.rect[3] - self.rect[1]


def widget_box(geometry: PageGeometry, x: float, y: float, width: float, height: float) -> WidgetBox:
    """The widget for a ``width`` × ``height`` mm box at (``x``, ``y``) mm from the displayed
    page's top-left. Raises :class:`AppearanceError` if it is not wholly on the page."""
    page_w, page_h = geometry.display_size_mm
    if not (width > 0 and height > 0 and x >= 0 and y >= 0
            and x + width <= page_w + 0.001 and y + height <= page_h + 0.001):
        raise AppearanceError(f"a {width:g}×{height:g} mm seal at ({x:g}, {y:g}) mm does not fit the "
                              f"{page_w:.1f}×{page_h:.1f} mm page")
    X, Y, W, H = x * MM, y * MM, width * MM, height * MM
    corners = [geometry.to_user(X + dx, Y + dy) for dx in (0, W) for dy in (0, H)]
    llx, lly = min(u for u, _ in corners), min(v for _, v in corners)
    urx, ury = max(u for u, _ in corners), max(v for _, v in corners)

    def form(dx: float, dy: float) -> tuple[float, float]:
        u, v = geometry.to_user(X + dx, Y + dy)
        return u - llx, v - lly

    # The image's (0,0) is its bottom-left corner; its x axis runs along the displayed box's
    # bottom edge and its y axis up the displayed box's left edge.
    origin, right, top = form(0, H), form(W, H), form(0, 0)
    matrix = (right[0] - origin[0], right[1] - origin[1], top[0] - origin[0], top[1] - origin[1],
              origin[0], origin[1])
    return WidgetBox((llx, lly, urx, ury), matrix)


@dataclass(frozen=True)
class SealPicture:
    """A picture ready to embed (samples as :func:`pdf.writer.raster` encodes them, alpha as its
    /SMask) and the printed size its resolution (PNG pHYs) gives, when it states one."""

    raster: Raster
    size_mm: tuple[float, float] | None


@lru_cache(maxsize=16)
def read_picture(png: bytes) -> SealPicture:
    """Decode a PNG seal picture once; raises :class:`AppearanceError` if it is not one."""
    if not isinstance(png, bytes) or not png.startswith(b"\x89PNG\r\n\x1a\n"):
        raise AppearanceError("the appearance must be a PNG image (the seal picture, RGBA)")
    try:
        with Image.open(io.BytesIO(png)) as image:  # the header only: size and resolution
            width, height = image.size
            dpi = image.info.get("dpi")
    except (UnidentifiedImageError, OSError, ValueError, SyntaxError) as exc:
        raise AppearanceError(f"the seal picture is not a readable PNG: {exc}") from exc
    if width * height > MAX_PICTURE_PIXELS:
        raise AppearanceError(f"the seal picture has {width}×{height} pixels, more than "
                              f"{MAX_PICTURE_PIXELS:,}")
    try:
        samples = raster(png, "png")
    except PageModelError as exc:
        raise AppearanceError(f"the seal picture is not a readable PNG: {exc}") from exc
    size = None
    if dpi and all(isinstance(d, (int, float)) and d > 1 for d in dpi):
        size = (round(width / dpi[0] * 25.4, 1), round(height / dpi[1] * 25.4, 1))
    return SealPicture(samples, size)


def seal_appearance(update: IncrementalUpdate, picture: SealPicture, box: WidgetBox) -> Ref:
    """Put the image, its mask and the widget's appearance form into ``update``; the form's Ref."""
    image = update.indirect(image_stream(update, picture.raster))
    content = b"q " + b" ".join(serialize(_clean(v)) for v in box.matrix) + b" cm /Seal Do Q"
    return _form(update, box.size, {"XObject": {"Seal": image}}, content)


def empty_appearance(update: IncrementalUpdate) -> Ref:
    """The appearance of an invisible signature: an empty form (PDF/A wants every widget to have one)."""
    return _form(update, (0, 0), {}, b"")


def _form(update: IncrementalUpdate, size: tuple[float, float], resources: dict, content: bytes) -> Ref:
    ref = update.new_ref()
    update.put(ref, Stream({"Type": Name("XObject"), "Subtype": Name("Form"),
                            "BBox": [0, 0, _clean(size[0]), _clean(size[1])], "Resources": resources},
                           content))
    return ref


def _clean(value: float) -> float:
    """Round away float noise (1e-14 from the rotation arithmetic)."""
    rounded = round(value, 4)
    return 0.0 if math.isclose(rounded, 0.0, abs_tol=1e-9) else rounded
