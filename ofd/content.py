"""A page of the page model as an OFD Content.xml (GB/T 33190-2016 §9-§12).

Each item becomes one graphic unit in a single body layer, in drawing order:

* Text -> TextObject. Boundary is the line box; TextCode sits at X=0 and Y=ascent inside
  it, with a DeltaX for every glyph advance (from the embedded font's own metrics, rounded
  cumulatively so the error never grows along a line), so no reader's metrics matter.
  Bold is Weight="700" and an outline in the text colour, because the embedded face has no
  bold cut and readers do not embolden on their own.
* Image, QrCode -> ImageObject: Boundary is the box, CTM="w 0 0 h 0 0" maps the image's unit
  square onto it (CTM coordinates are relative to the Boundary, as conforming producers write).
* Line, Rect -> PathObject with AbbreviatedData relative to a Boundary that includes the
  stroke's half width, so readers that clip to the Boundary draw the whole stroke.

Numbers are in millimetres with at most three decimals (1 µm; far below what prints).
"""

from __future__ import annotations

from collections.abc import Mapping

from lxml import etree

from pages.model import Image, Item, Line, Page, QrCode, Rect, Text, set_text

from .xml import OFD_NS

XML_DECLARATION = b'<?xml version="1.0" encoding="UTF-8"?>\n'
BOLD_STROKE = 1 / 30  # outline width for bold, as a fraction of the font size


class IdSequence:
    """The document's one ID space (GB/T 33190 §7.4: IDs are unique within a document)."""

    def __init__(self) -> None:
        self.last = 0

    def next(self) -> int:
        self.last += 1
        return self.last


def number(value: float) -> str:
    """``value`` with at most three decimals and no trailing zeros: 12.5, 0.333, 7."""
    text = f"{value:.3f}".rstrip("0").rstrip(".")
    return "0" if text in ("-0", "") else text


def numbers(*values: float) -> str:
    return " ".join(number(v) for v in values)


def element(parent: etree._Element | None, name: str, text: str | None = None,
            **attrs: str) -> etree._Element:
    """An ``ofd:`` element (the root when ``parent`` is None), attributes in the order given."""
    tag = f"{{{OFD_NS}}}{name}"
    el = etree.Element(tag, nsmap={"ofd": OFD_NS}) if parent is None else etree.SubElement(parent, tag)
    for key, value in attrs.items():
        el.set(key, value)
    if text is not None:
        el.text = text
    return el


def serialize(root: etree._Element) -> bytes:
    """UTF-8 with the declaration every producer writes (double quotes), no pretty printing."""
    return XML_DECLARATION + etree.tostring(root, encoding="UTF-8")


def _color(parent: etree._Element, name: str, rgb: tuple[int, int, int]) -> None:
    element(parent, name, Value=" ".join(str(c) for c in rgb))


def delta_x(advances: tuple[float, ...]) -> str | None:
    """DeltaX for a TextCode: the gap from each glyph to the next (None for one glyph).
    Rounded on cumulative positions, so thirty glyphs end where thirty exact advances do."""
    if len(advances) < 2:
        return None
    out, placed, exact = [], 0.0, 0.0
    for advance in advances[:-1]:
        exact += advance
        position = round(exact, 3)
        out.append(number(position - placed))
        placed = position
    return " ".join(out)


def _text(layer: etree._Element, item: Text, ids: IdSequence, font_id: int) -> None:
    run = set_text(item)
    pad = run.size * BOLD_STROKE / 2 if item.bold else 0.0
    box = (run.x - pad, run.y - run.ascent - pad, run.width + 2 * pad, run.ascent + run.descent + 2 * pad)
    attrs = {"ID": str(ids.next()), "Boundary": numbers(*box), "Font": str(font_id), "Size": number(run.size)}
    if item.bold:
        attrs.update(LineWidth=number(run.size * BOLD_STROKE), Stroke="true", Weight="700")
    obj = element(layer, "TextObject", **attrs)
    _color(obj, "FillColor", item.color)
    if item.bold:
        _color(obj, "StrokeColor", item.color)
    code = {"X": number(pad), "Y": number(pad + run.ascent)}
    gaps = delta_x(run.advances)
    if gaps is not None:
        code["DeltaX"] = gaps
    element(obj, "TextCode", item.text, **code)


def _image(layer: etree._Element, item: Image | QrCode, ids: IdSequence, resource_id: int) -> None:
    w, h = (item.size, item.size) if isinstance(item, QrCode) else (item.w, item.h)
    element(layer, "ImageObject", ID=str(ids.next()), Boundary=numbers(item.x, item.y, w, h),
            CTM=numbers(w, 0, 0, h, 0, 0), ResourceID=str(resource_id))


def _path(layer: etree._Element, item: Line | Rect, ids: IdSequence) -> None:
    if isinstance(item, Line):
        half = item.width / 2
        left, top = min(item.x1, item.x2) - half, min(item.y1, item.y2) - half
        box = (left, top, abs(item.x2 - item.x1) + item.width, abs(item.y2 - item.y1) + item.width)
        data = (f"M {numbers(item.x1 - left, item.y1 - top)} "
                f"L {numbers(item.x2 - left, item.y2 - top)}")
        stroke, fill, width = item.color, None, item.width
    else:
        half = item.line_width / 2 if item.stroke is not None else 0.0
        box = (item.x - half, item.y - half, item.w + 2 * half, item.h + 2 * half)
        x0, y0, x1, y1 = half, half, half + item.w, half + item.h
        data = (f"M {numbers(x0, y0)} L {numbers(x1, y0)} L {numbers(x1, y1)} "
                f"L {numbers(x0, y1)} C")
        stroke, fill, width = item.stroke, item.fill, item.line_width
    attrs = {"ID": str(ids.next()), "Boundary": numbers(*box)}
    if stroke is not None:
        attrs["LineWidth"] = number(width)
    else:
        attrs["Stroke"] = "false"
    if fill is not None:
        attrs["Fill"] = "true"
    obj = element(layer, "PathObject", **attrs)
    if stroke is not None:
        _color(obj, "StrokeColor", stroke)
    if fill is not None:
        _color(obj, "FillColor", fill)
    element(obj, "AbbreviatedData", data)


def page_content(page: Page, ids: IdSequence, *, font_id: int | None,
                 pictures: Mapping[Item, int], own_area: bool) -> bytes:
    """Content.xml for ``page``. ``pictures`` gives the MultiMedia ID of each Image and
    QrCode item; ``own_area`` writes the page's PhysicalBox (when it differs from the
    document's default in Document.xml)."""
    root = element(None, "Page")
    if own_area:
        area = element(root, "Area")
        element(area, "PhysicalBox", numbers(0, 0, page.width_mm, page.height_mm))
    content = element(root, "Content")
    layer = element(content, "Layer", ID=str(ids.next()), Type="Body")
    for item in page.items:
        if isinstance(item, Text):
            if font_id is None:
                raise ValueError("a page with text needs the document's font ID")
            _text(layer, item, ids, font_id)
        elif isinstance(item, Image | QrCode):
            _image(layer, item, ids, pictures[item])
        else:
            _path(layer, item, ids)
    return serialize(root)
