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
from xml.sax.saxutils import escape

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


def _color(name: str, rgb: tuple[int, int, int]) -> str:
    return f'<ofd:{name} Value="{rgb[0]} {rgb[1]} {rgb[2]}"/>'


#: Gaps of DeltaX in thousandths of a millimetre, as text: a licence's lines repeat few of them.
_GAPS: dict[int, str] = {}


def _gap(thousandths: int) -> str:
    text = _GAPS.get(thousandths)
    if text is None:
        text = number(thousandths / 1000)
        if len(_GAPS) < 4096:
            _GAPS[thousandths] = text
    return text


def delta_x(advances: tuple[float, ...]) -> str | None:
    """DeltaX for a TextCode: the gap from each glyph to the next (None for one glyph).
    Rounded on cumulative positions, so thirty glyphs end where thirty exact advances do."""
    if len(advances) < 2:
        return None
    out, placed, exact = [], 0, 0.0
    for advance in advances[:-1]:
        exact += advance
        position = round(round(exact, 3) * 1000)  # whole thousandths, as round(exact, 3) gives
        out.append(_gap(position - placed))
        placed = position
    return " ".join(out)


def _text(item: Text, ids: IdSequence, font_id: int) -> str:
    run = set_text(item)
    pad = run.size * BOLD_STROKE / 2 if item.bold else 0.0
    box = numbers(run.x - pad, run.y - run.ascent - pad, run.width + 2 * pad,
                  run.ascent + run.descent + 2 * pad)
    head = f'<ofd:TextObject ID="{ids.next()}" Boundary="{box}" Font="{font_id}" Size="{number(run.size)}"'
    if item.bold:
        head += f' LineWidth="{number(run.size * BOLD_STROKE)}" Stroke="true" Weight="700"'
    colors = _color("FillColor", item.color)
    if item.bold:
        colors += _color("StrokeColor", item.color)
    code = f'<ofd:TextCode X="{number(pad)}" Y="{number(pad + run.ascent)}"'
    gaps = delta_x(run.advances)
    if gaps is not None:
        code += f' DeltaX="{gaps}"'
    return f"{head}>{colors}{code}>{escape(item.text)}</ofd:TextCode></ofd:TextObject>"


def _image(item: Image | QrCode, ids: IdSequence, resource_id: int) -> str:
    w, h = (item.size, item.size) if isinstance(item, QrCode) else (item.w, item.h)
    return (f'<ofd:ImageObject ID="{ids.next()}" Boundary="{numbers(item.x, item.y, w, h)}" '
            f'CTM="{numbers(w, 0, 0, h, 0, 0)}" ResourceID="{resource_id}"/>')


def _path(item: Line | Rect, ids: IdSequence) -> str:
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
    out = f'<ofd:PathObject ID="{ids.next()}" Boundary="{numbers(*box)}"'
    out += f' LineWidth="{number(width)}"' if stroke is not None else ' Stroke="false"'
    if fill is not None:
        out += ' Fill="true"'
    out += ">"
    if stroke is not None:
        out += _color("StrokeColor", stroke)
    if fill is not None:
        out += _color("FillColor", fill)
    return f"{out}<ofd:AbbreviatedData>{data}</ofd:AbbreviatedData></ofd:PathObject>"


def page_content(page: Page, ids: IdSequence, *, font_id: int | None,
                 pictures: Mapping[Item, int], own_area: bool) -> bytes:
    """Content.xml for ``page``. ``pictures`` gives the MultiMedia ID of each Image and
    QrCode item; ``own_area`` writes the page's PhysicalBox (when it differs from the
    document's default in Document.xml).

    Written as text: the fixed shape of a page's graphic units does not need a tree built
    element by element (what :func:`element` and :func:`serialize` do, for the other parts, a
    third of the cost of writing a licence's OFD); the bytes are those lxml serializes for the
    same tree — the double-quoted attributes in the order given, ``&``, ``<`` and ``>``
    escaped in text (the page model admits no control characters, so nothing else needs it),
    empty elements closed with ``/>`` — as tests/test_speed_docs_ofd.py checks.
    """
    parts = [XML_DECLARATION.decode("ascii"), f'<ofd:Page xmlns:ofd="{OFD_NS}">']
    if own_area:
        parts.append(f"<ofd:Area><ofd:PhysicalBox>{numbers(0, 0, page.width_mm, page.height_mm)}"
                     "</ofd:PhysicalBox></ofd:Area>")
    layer = f'<ofd:Layer ID="{ids.next()}" Type="Body"'
    body = []
    for item in page.items:
        if isinstance(item, Text):
            if font_id is None:
                raise ValueError("a page with text needs the document's font ID")
            body.append(_text(item, ids, font_id))
        elif isinstance(item, Image | QrCode):
            body.append(_image(item, ids, pictures[item]))
        else:
            body.append(_path(item, ids))
    parts.append(f"<ofd:Content>{layer}>{''.join(body)}</ofd:Layer></ofd:Content>" if body
                 else f"<ofd:Content>{layer}/></ofd:Content>")
    parts.append("</ofd:Page>")
    return "".join(parts).encode("utf-8")
