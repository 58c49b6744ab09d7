"""Licence layouts: a type's ``layout.json`` read into a :class:`Template`, and :func:`render`,
which fills it with one licence's data as a :class:`pages.model.Document`.

Everything is in millimetres, origin top-left, y down (the page model's convention); a text's
``y`` is its baseline. A field is a label and a value box: the label at ``(x, y)``, the value
starting ``label_width`` further right, at most ``width`` wide and ``lines`` lines tall.
Values wrap at any character (CJK text has no spaces to break at), never starting a line with
closing punctuation; a value that needs more lines than the box has is set smaller, down to
``min_size``, and one that still does not fit is a :class:`LayoutError` naming the field —
a licence is never printed with part of its 经营范围 cut off.

A field's value comes from the licence data (``field``); ``default`` names what to print when
the data leaves it out: ``$issue_date`` or ``$issuer_name`` (the issuance supplies them), so
the 发证机关 and 发证日期 printed are the issuer's even when the data omits them.

Page sizes: ``A4`` (210 x 297 portrait), ``A4-landscape`` (297 x 210: the paper 营业执照 and
食品经营许可证 正本 are landscape A3 sheets; A4 keeps their proportions and prints anywhere)
and ``card`` (85.6 x 54, ISO/IEC 7810 ID-1, for certificates shown as a card).
"""

from __future__ import annotations

import functools
import itertools
import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date
from typing import TYPE_CHECKING, Any

from pages.fonts import FontFace, MissingGlyphs, cjk_face
from pages.model import Color, Document, Item, Page, PageModelError, QrCode, Rect, Text

from .identifiers import LicenceIdentifier

if TYPE_CHECKING:
    from .catalogue import LicenceType

PAGE_SIZES: dict[str, tuple[float, float]] = {
    "A4": (210.0, 297.0),
    "A4-landscape": (297.0, 210.0),
    "card": (85.6, 54.0),
}
LINE_HEIGHT = 1.5  # baseline to baseline, in font sizes
#: Characters a line must not start with (GB/T 15834 punctuation placement).
NO_LINE_START = set("，。、；：？！）》」』】〕”’%,.;:?!)]}")
DEFAULTS = ("$issue_date", "$issuer_name")
FORMATS = ("text", "date")
_SPACES = re.compile(r"\s+")


class LayoutError(ValueError):
    """A layout that cannot be read, or a value that cannot be set in its box."""


# -- the template ------------------------------------------------------------------------------

@dataclass(frozen=True)
class FieldBox:
    field: str
    label: str
    x: float
    y: float
    label_width: float
    width: float
    lines: int = 1
    size: float = 4.0
    min_size: float = 2.8
    format: str = "text"
    default: str | None = None
    label_size: float | None = None

    @property
    def value_x(self) -> float:
        return self.x + self.label_width

    def lines_at(self, size: float) -> int:
        """How many lines fit the box at ``size``: a one-line box stays one line; a taller one
        takes as many as fit its height (``lines`` lines at ``size``)."""
        if self.lines == 1:
            return 1
        return max(1, int(self.lines * self.size / size + 1e-9))


@dataclass(frozen=True)
class StaticText:
    text: str
    x: float
    y: float
    size: float
    align: str = "left"
    bold: bool = False
    width: float | None = None  # wrap into lines of this width
    color: Color = (0, 0, 0)


@dataclass(frozen=True)
class Box:
    x: float
    y: float
    w: float
    h: float


@dataclass(frozen=True)
class Frame:
    """The double rule round a licence: a heavy outer line and a light inner one."""

    inset: float = 8.0
    gap: float = 1.5
    outer: float = 0.9
    inner: float = 0.3
    color: Color = (150, 40, 40)

    @property
    def inner_inset(self) -> float:
        return self.inset + self.gap


@dataclass(frozen=True)
class Template:
    page_size: str
    title: StaticText
    fields: tuple[FieldBox, ...]
    qr: Box
    seal: Box
    identifier: StaticText
    frame: Frame
    texts: tuple[StaticText, ...] = ()
    seal_page: int = 0

    @property
    def page_mm(self) -> tuple[float, float]:
        return PAGE_SIZES[self.page_size]

    @functools.cached_property
    def _fixed(self) -> _FixedItems:
        return _FixedItems()

    @classmethod
    def from_json(cls, data: Mapping[str, Any], page_size: str, where: str = "layout") -> Template:
        """Read a layout.json object; LayoutError names the key that is wrong."""
        if page_size not in PAGE_SIZES:
            raise LayoutError(f"{where}: page size {page_size!r} is not one of {', '.join(PAGE_SIZES)}")
        if not isinstance(data, Mapping):
            raise LayoutError(f"{where}: must be a JSON object")
        _keys(data, where, required={"title", "fields", "qr", "seal", "identifier"},
              optional={"frame", "texts", "seal_page"})
        fields = data["fields"]
        if not isinstance(fields, list) or not fields:
            raise LayoutError(f"{where}.fields: must be a non-empty list")
        template = cls(
            page_size=page_size,
            title=_static(data["title"], f"{where}.title"),
            fields=tuple(_field(f, f"{where}.fields[{i}]") for i, f in enumerate(fields)),
            qr=_box(data["qr"], f"{where}.qr", square=True),
            seal=_box(data["seal"], f"{where}.seal"),
            identifier=_static({"text": "-", **_mapping(data["identifier"], f"{where}.identifier")},
                               f"{where}.identifier"),
            frame=_frame(data.get("frame", {}), f"{where}.frame"),
            texts=tuple(_static(t, f"{where}.texts[{i}]") for i, t in enumerate(_list(data, "texts", where))),
            seal_page=0,
        )
        if data.get("seal_page", 0) != 0:
            raise LayoutError(f"{where}.seal_page: licences are one page; the seal goes on page 0")
        names = [f.field for f in template.fields]
        if len(set(names)) != len(names):
            raise LayoutError(f"{where}.fields: a field is placed twice")
        template._check_boxes(where)
        return template

    def _check_boxes(self, where: str) -> None:
        """Boxes inside the inner frame, so a layout edit cannot push the QR or seal off it."""
        width, height = self.page_mm
        m = self.frame.inner_inset
        for name, box in (("qr", self.qr), ("seal", self.seal)):
            if box.x < m or box.y < m or box.x + box.w > width - m or box.y + box.h > height - m:
                raise LayoutError(f"{where}.{name}: the box {box} is not inside the frame "
                                  f"({m:g} mm from each edge of the {width:g} x {height:g} mm page)")
        for f in self.fields:
            if f.x < m or f.value_x + f.width > width - m:
                raise LayoutError(f"{where}: field {f.field!r} reaches outside the frame")


def _mapping(value: object, where: str) -> Mapping[str, Any]:
    if not isinstance(value, Mapping):
        raise LayoutError(f"{where}: must be a JSON object")
    return value


def _list(data: Mapping[str, Any], key: str, where: str) -> list[Any]:
    value = data.get(key, [])
    if not isinstance(value, list):
        raise LayoutError(f"{where}.{key}: must be a list")
    return value


def _keys(data: Mapping[str, Any], where: str, *, required: set[str], optional: set[str]) -> None:
    missing = sorted(required - set(data))
    unknown = sorted(set(data) - required - optional)
    if missing:
        raise LayoutError(f"{where}: missing {', '.join(missing)}")
    if unknown:
        raise LayoutError(f"{where}: unknown key(s) {', '.join(unknown)}")


def _num(data: Mapping[str, Any], key: str, where: str, default: float | None = None) -> float:
    value = data.get(key, default)
    if isinstance(value, bool) or not isinstance(value, int | float) or value < 0:
        raise LayoutError(f"{where}.{key}: must be a non-negative number, not {value!r}")
    return float(value)


def _color(data: Mapping[str, Any], where: str, default: Color) -> Color:
    value = data.get("color", list(default))
    if (not isinstance(value, list) or len(value) != 3
            or not all(isinstance(c, int) and 0 <= c <= 255 for c in value)):
        raise LayoutError(f"{where}.color: must be [r, g, b] with integers 0-255")
    return (value[0], value[1], value[2])


def _static(value: object, where: str) -> StaticText:
    data = _mapping(value, where)
    _keys(data, where, required={"text", "x", "y", "size"},
          optional={"align", "bold", "width", "color"})
    if not isinstance(data["text"], str) or not data["text"]:
        raise LayoutError(f"{where}.text: must be a non-empty string")
    align = data.get("align", "left")
    if align not in ("left", "center", "right"):
        raise LayoutError(f"{where}.align: must be left, center or right")
    return StaticText(data["text"], _num(data, "x", where), _num(data, "y", where), _num(data, "size", where),
                      align, bool(data.get("bold", False)),
                      _num(data, "width", where) if "width" in data else None, _color(data, where, (0, 0, 0)))


def _field(value: object, where: str) -> FieldBox:
    data = _mapping(value, where)
    _keys(data, where, required={"field", "label", "x", "y", "label_width", "width"},
          optional={"lines", "size", "min_size", "format", "default", "label_size"})
    if not isinstance(data["field"], str) or not data["field"]:
        raise LayoutError(f"{where}.field: must be a non-empty string")
    if not isinstance(data["label"], str):
        raise LayoutError(f"{where}.label: must be a string (empty: no label)")
    lines = data.get("lines", 1)
    if not isinstance(lines, int) or isinstance(lines, bool) or lines < 1:
        raise LayoutError(f"{where}.lines: must be a positive integer")
    fmt = data.get("format", "text")
    if fmt not in FORMATS:
        raise LayoutError(f"{where}.format: must be one of {', '.join(FORMATS)}")
    default = data.get("default")
    if default is not None and default not in DEFAULTS:
        raise LayoutError(f"{where}.default: must be one of {', '.join(DEFAULTS)}")
    size = _num(data, "size", where, 4.0)
    min_size = _num(data, "min_size", where, round(size * 0.7, 2))
    if not 0 < min_size <= size:
        raise LayoutError(f"{where}.min_size: must be positive and at most size")
    return FieldBox(data["field"], data["label"], _num(data, "x", where), _num(data, "y", where),
                    _num(data, "label_width", where), _num(data, "width", where), lines, size, min_size,
                    fmt, default, _num(data, "label_size", where) if "label_size" in data else None)


def _box(value: object, where: str, *, square: bool = False) -> Box:
    data = _mapping(value, where)
    if square:
        _keys(data, where, required={"x", "y", "size"}, optional=set())
        size = _num(data, "size", where)
        return Box(_num(data, "x", where), _num(data, "y", where), size, size)
    _keys(data, where, required={"x", "y", "w", "h"}, optional=set())
    return Box(*(_num(data, k, where) for k in ("x", "y", "w", "h")))


def _frame(value: object, where: str) -> Frame:
    data = _mapping(value, where)
    _keys(data, where, required=set(), optional={"inset", "gap", "outer", "inner", "color"})
    base = Frame()
    return Frame(_num(data, "inset", where, base.inset), _num(data, "gap", where, base.gap),
                 _num(data, "outer", where, base.outer), _num(data, "inner", where, base.inner),
                 _color(data, where, base.color))


# -- wrapping ----------------------------------------------------------------------------------

def wrap(text: str, width: float, size: float, face: FontFace | None = None) -> list[str]:
    """Break ``text`` into lines no wider than ``width`` mm at font size ``size`` mm (with
    ``face``, default the CJK face).

    Breaks fall between any two characters, except that a line never starts with closing
    punctuation (the character before it moves down with it) and spaces at a break vanish.
    """
    face = face or cjk_face()
    # Each exactly face.advance(ch, size), from the face's table of unit advances.
    advances = [u * size / face.units_per_em for u in face.unit_advances(text)]
    if advances and not text[0].isspace():
        # The running widths the loop below compares only grow, so when the last is within
        # ``width`` no break is made: the line is the text (most values are one line).
        *_, total = itertools.accumulate(advances)
        if total <= width + 1e-9:
            line = text.rstrip()
            return [line] if line else []
    lines: list[str] = []
    current: list[str] = []
    current_advances: list[float] = []
    used = 0.0
    for ch, advance in zip(text, advances, strict=True):
        if current and used + advance > width + 1e-9:
            carry: list[str] = []
            carry_advances: list[float] = []
            if ch in NO_LINE_START and len(current) > 1:
                carry, carry_advances = [current.pop()], [current_advances.pop()]
            lines.append("".join(current).rstrip())
            if carry and carry[0].isspace():
                carry, carry_advances = [], []
            current, current_advances = carry, carry_advances
            used = sum(current_advances)
        if not current and ch.isspace():
            continue
        current.append(ch)
        current_advances.append(advance)
        used += advance
    if current:
        lines.append("".join(current).rstrip())
    return [line for line in lines if line]


def fit(text: str, box: FieldBox, face: FontFace | None = None) -> tuple[float, list[str]]:
    """The largest size from ``box.size`` down to ``box.min_size`` at which ``text`` wraps into
    ``box.lines`` lines, and those lines; LayoutError when even ``min_size`` is too big."""
    face = face or cjk_face()
    size = box.size
    while True:
        lines = wrap(text, box.width, size, face)
        fits = all(face.text_width(s, size) <= box.width + 1e-6 for s in lines)
        if len(lines) <= box.lines_at(size) and fits:
            return size, lines
        if size <= box.min_size:
            raise LayoutError(
                f"{box.label.replace(chr(0x3000), '')} ({box.field}): {len(text)} characters do not fit "
                f"the {box.width:g} mm wide box even at {box.min_size:g} mm type; shorten the value")
        size = max(box.min_size, round(size * 0.93, 3))


# -- rendering ---------------------------------------------------------------------------------

def seal_box(licence_type: LicenceType) -> tuple[int, float, float, float, float]:
    """Where the issuer's seal goes: ``(page index, x, y, w, h)`` in mm, top-left origin."""
    s = licence_type.template.seal
    return licence_type.template.seal_page, s.x, s.y, s.w, s.h


def format_value(value: object, fmt: str) -> str:
    """A data value as printed: dates as 2024年05月10日, everything else as its text."""
    if fmt == "date":
        if isinstance(value, str):
            try:
                value = date.fromisoformat(value)
            except ValueError:
                raise LayoutError(f"{value!r} is not an ISO date (YYYY-MM-DD)") from None
        if isinstance(value, date):
            return f"{value.year}年{value.month:02d}月{value.day:02d}日"
        raise LayoutError(f"{value!r} is not a date")
    if isinstance(value, bool):
        return "是" if value else "否"
    if isinstance(value, int | float):
        return f"{value:g}" if isinstance(value, float) else str(value)
    return _SPACES.sub(" ", str(value)).strip()


def _static_items(t: StaticText, face: FontFace | None = None) -> list[Item]:
    if t.width is None:
        return [Text(t.x, t.y, t.text, t.size, color=t.color, bold=t.bold, align=t.align)]  # type: ignore[arg-type]
    lines = wrap(t.text, t.width, t.size, face)
    return [Text(t.x, t.y + i * t.size * LINE_HEIGHT, line, t.size, color=t.color, bold=t.bold,
                 align=t.align, max_width=t.width)  # type: ignore[arg-type]
            for i, line in enumerate(lines)]


def _frame_items(frame: Frame, width: float, height: float) -> list[Item]:
    inner = frame.inner_inset
    return [Rect(frame.inset, frame.inset, width - 2 * frame.inset, height - 2 * frame.inset,
                 stroke=frame.color, line_width=frame.outer),
            Rect(inner, inner, width - 2 * inner, height - 2 * inner,
                 stroke=frame.color, line_width=frame.inner)]


class _FixedItems:
    """What a template prints on every licence, made once: the frame, title and fixed texts
    (per face, which wraps them) and each field's label. Items are frozen and a page holds a
    tuple of them, so licences share them without sharing anything they could change.
    Made where the licence would make them, so a fault is raised where it was before; a copy
    or pickle of the template starts empty (a face is no part of a template)."""

    def __init__(self) -> None:
        self.heads: dict[FontFace, tuple[Item, ...]] = {}
        self.labels: dict[int, Text] = {}

    def __reduce__(self) -> tuple[type[_FixedItems], tuple[()]]:
        return _FixedItems, ()

    def head(self, template: Template, face: FontFace) -> tuple[Item, ...]:
        """The frame, the title and the fixed texts, in drawing order."""
        head = self.heads.get(face)
        if head is None:
            items = _frame_items(template.frame, *template.page_mm)
            items += _static_items(template.title, face)
            for text in template.texts:
                items += _static_items(text, face)
            head = self.heads[face] = tuple(items)
        return head

    def label(self, index: int, box: FieldBox) -> Text:
        """The label of ``box``, the template's field ``index`` (a label not blank)."""
        label = self.labels.get(index)
        if label is None:
            label = self.labels[index] = Text(box.x, box.y, box.label, box.label_size or box.size,
                                              max_width=box.label_width * 0.95)
        return label


def field_values(licence_type: LicenceType, data: Mapping[str, Any], *, issue_date: date,
                 issuer_name: str) -> dict[str, str]:
    """Each placed field's text as printed (fields the data leaves out and that have no
    default are not printed)."""
    context = {"$issue_date": issue_date, "$issuer_name": issuer_name}
    out: dict[str, str] = {}
    for box in licence_type.template.fields:
        value = data.get(box.field)
        if value is None or value == "":
            if box.default is None:
                continue
            value = context[box.default]
        try:
            text = format_value(value, box.format)
        except LayoutError as exc:
            raise LayoutError(f"{box.field}: {exc}") from None
        if text:
            out[box.field] = text
    return out


def render(licence_type: LicenceType, data: Mapping[str, Any], *, identifier: LicenceIdentifier | str,
           qr_payload: str, issue_date: date, issuer_name: str) -> Document:
    """The licence as a one-page document: frame, title, labels and values, the QR code and the
    identifier in small print. The seal is not drawn: the issuer seals at :func:`seal_box`.

    ``data`` should have passed ``licence_type.validate``; a value that does not fit its box or
    holds a character the font cannot show raises LayoutError naming the field.
    """
    template = licence_type.template
    if not isinstance(identifier, LicenceIdentifier):
        identifier = LicenceIdentifier.parse(identifier)
    ident = identifier.text
    width, height = template.page_mm
    face = cjk_face()
    fixed = template._fixed
    items: list[Item] = list(fixed.head(template, face))
    values = field_values(licence_type, data, issue_date=issue_date, issuer_name=issuer_name)
    for index, box in enumerate(template.fields):
        if box.field not in values:
            continue
        value = values[box.field]
        try:
            size, lines = fit(value, box, face)
        except MissingGlyphs:  # fit measures every character before anything else
            missing = face.missing(value)
            raise LayoutError(f"{box.field}: the licence font has no glyph for "
                              f"{', '.join(f'{c} (U+{ord(c):04X})' for c in missing)}") from None
        if box.label.strip():
            items.append(fixed.label(index, box))
        for i, line in enumerate(lines):
            items.append(Text(box.value_x, box.y + i * size * LINE_HEIGHT, line, size, max_width=box.width))
    items.append(QrCode(template.qr.x, template.qr.y, template.qr.w, qr_payload))
    t = template.identifier
    items.append(Text(t.x, t.y, f"证照标识：{ident}", t.size, color=t.color, align=t.align,  # type: ignore[arg-type]
                      max_width=width - 2 * template.frame.inner_inset - 2))
    try:
        page = Page(width, height, tuple(items))
    except PageModelError as exc:
        raise LayoutError(f"{licence_type.code} layout: {exc}") from exc
    return Document(
        pages=(page,),
        title=f"{licence_type.name} {ident}",
        author=issuer_name,
        keywords=(licence_type.name, "电子证照"),
        custom={"LicenceIdentifier": ident, "LicenceTypeCode": licence_type.code},
    )
