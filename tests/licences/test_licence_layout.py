"""Licence layouts: each shipped type rendered to OFD and PDF, read back, drawn and looked at."""

from __future__ import annotations

import re
from datetime import date
from pathlib import Path

import pypdfium2
import pytest
import zxingcpp

from keys_dev.domain import DEMO_DEPARTMENT_CODE, DEMO_DEPARTMENT_NAME
from licences.catalogue import Catalogue
from licences.identifiers import LicenceIdentifier
from licences.layout import NO_LINE_START, LayoutError, field_values, render, seal_box, wrap
from ofd.reader import read_ofd
from ofd.writer import write_ofd
from pages.model import QrCode, Rect, Text, extent
from pdf.writer import write_pdf

SAMPLES = Path("/tmp/licence-samples")
ISSUE_DATE = date(2024, 5, 20)
QR = "https://verify.example.gov.cn/v/" + "Q7" * 60  # about the size of a signed payload

CATALOGUE = Catalogue.load()
TYPES = sorted(CATALOGUE, key=lambda t: t.code)


def _render(t, data):
    ident = LicenceIdentifier(t.code, DEMO_DEPARTMENT_CODE, 20240001)
    return render(t, data, identifier=ident, qr_payload=QR, issue_date=ISSUE_DATE,
                  issuer_name=DEMO_DEPARTMENT_NAME), ident


def _squash(text: str) -> str:
    return re.sub(r"\s+", "", text)


@pytest.fixture(params=TYPES, ids=[t.folder.name for t in TYPES])
def licence_type(request):
    return request.param


def test_renders_to_ofd_and_pdf_with_every_value(licence_type):
    t = licence_type
    document, ident = _render(t, t.example)
    values = field_values(t, t.example, issue_date=ISSUE_DATE, issuer_name=DEMO_DEPARTMENT_NAME)
    assert set(values) >= {f for f in t.example if f in {b.field for b in t.template.fields}}
    ofd = write_ofd(document)
    pdf = write_pdf(document)
    SAMPLES.mkdir(exist_ok=True)
    (SAMPLES / f"{t.folder.name}.ofd").write_bytes(ofd)
    (SAMPLES / f"{t.folder.name}.pdf").write_bytes(pdf)

    ofd_text = _squash("".join(read_ofd(ofd).text()))
    page = pypdfium2.PdfDocument(pdf)[0]
    textpage = page.get_textpage()
    pdf_text = _squash(textpage.get_text_range())
    for name, value in values.items():
        assert _squash(value) in ofd_text, (name, value)
        assert _squash(value) in pdf_text, (name, value)
    for text in (ofd_text, pdf_text):
        assert ident.text in text
        assert _squash(t.template.title.text) in text


@pytest.mark.slow
def test_qr_decodes_from_a_200_dpi_render(licence_type):
    document, _ = _render(licence_type, licence_type.example)
    page = pypdfium2.PdfDocument(write_pdf(document))[0]
    image = page.render(scale=200 / 72).to_pil()
    image.save(SAMPLES / f"{licence_type.folder.name}.png")
    decoded = zxingcpp.read_barcodes(image)
    assert [d.text for d in decoded if d.format == zxingcpp.BarcodeFormat.QRCode] == [QR]


def _layout_items(document):
    page = document.pages[0]
    return page, [i for i in page.items if not isinstance(i, Rect)]


def test_everything_inside_the_frame_and_nothing_overlaps(licence_type):
    document, _ = _render(licence_type, licence_type.example)
    _assert_tidy(licence_type, document)


def _assert_tidy(t, document):
    page, items = _layout_items(document)
    assert (page.width_mm, page.height_mm) == t.template.page_mm
    m = t.template.frame.inner_inset
    boxes = []
    for item in items:
        left, top, right, bottom = extent(item)
        assert left >= m and top >= m and right <= page.width_mm - m and bottom <= page.height_mm - m, item
        boxes.append((item, (left, top, right, bottom)))
    for i, (a, ba) in enumerate(boxes):
        for b, bb in boxes[i + 1:]:
            across = min(ba[2], bb[2]) - max(ba[0], bb[0])
            down = min(ba[3], bb[3]) - max(ba[1], bb[1])
            overlap = across > 0.01 and down > 0.01
            assert not overlap, (a, b)
    frames = [i for i in page.items if isinstance(i, Rect)]
    assert len(frames) == 2 and frames[0].line_width > frames[1].line_width  # the double rule


def _longest(t) -> dict:
    """The example with every free-text field at its maximum length of full-width characters."""
    data = dict(t.example)
    for name, spec in t.schema["properties"].items():
        if spec.get("type") == "string" and "maxLength" in spec and "enum" not in spec \
                and "format" not in spec and spec.get("pattern", "").startswith("^[^"):
            data[name] = "国" * spec["maxLength"]
    t.validate(data)
    return data


def test_longest_values_fit_their_boxes(licence_type):
    data = _longest(licence_type)
    document, _ = _render(licence_type, data)
    _assert_tidy(licence_type, document)
    text = _squash("".join(read_ofd(write_ofd(document)).text()))
    for name, value in field_values(licence_type, data, issue_date=ISSUE_DATE,
                                    issuer_name=DEMO_DEPARTMENT_NAME).items():
        assert _squash(value) in text, name
    if licence_type.name == "营业执照":
        (SAMPLES / "business_licence-longest.pdf").write_bytes(write_pdf(document))


def test_long_value_wraps_and_shrinks():
    t = CATALOGUE.get("11100000MB0000019L001")
    document, _ = _render(t, _longest(t))
    scope = [i for i in document.pages[0].items if isinstance(i, Text) and i.text.startswith("国国")]
    sizes = {i.size_mm for i in scope}
    assert min(sizes) < 4.0  # 经营范围 was set smaller to fit
    assert len({i.y for i in scope}) > 11  # and took more lines than at the nominal size


def test_value_too_long_for_its_box_is_an_error():
    t = CATALOGUE.get("11100000MB0000019L001")
    data = dict(t.example, 经营范围="国" * 2000)  # beyond maxLength: render is the last guard
    with pytest.raises(LayoutError, match="经营范围"):
        _render(t, data)


def test_character_the_font_lacks_names_the_field():
    t = CATALOGUE.get("11100000MB0000027F001")
    with pytest.raises(LayoutError, match=r"姓名.*U\+"):
        _render(t, dict(t.example, 姓名="林\U0002A6D6"))  # a CJK Extension B character


def test_defaults_fill_issuer_and_date():
    t = CATALOGUE.get("11100000MB0000019L001")
    data = {k: v for k, v in t.example.items() if k not in ("登记机关", "发证日期")}
    values = field_values(t, data, issue_date=date(2025, 1, 2), issuer_name="另一市场监督管理局")
    assert values["登记机关"] == "另一市场监督管理局" and values["发证日期"] == "2025年01月02日"


def test_qr_and_identifier_and_seal_box(licence_type):
    document, ident = _render(licence_type, licence_type.example)
    items = document.pages[0].items
    [qr] = [i for i in items if isinstance(i, QrCode)]
    assert qr.payload == QR and qr.size >= 25
    assert any(isinstance(i, Text) and i.text.endswith(ident.text) and i.size_mm < 3 for i in items)
    page_index, x, y, w, h = seal_box(licence_type)
    page = document.pages[page_index]
    m = licence_type.template.frame.inner_inset
    assert m <= x and x + w <= page.width_mm - m and m <= y and y + h <= page.height_mm - m
    assert w >= 40 and h >= 40  # a 42 mm round official seal fits
    assert document.custom["LicenceIdentifier"] == ident.text


def test_identifier_text_is_parsed():
    t = TYPES[0]
    with pytest.raises(ValueError, match="check character"):
        render(t, t.example, identifier=LicenceIdentifier(t.code, DEMO_DEPARTMENT_CODE, 5).text[:-1] + "#",
               qr_payload=QR, issue_date=ISSUE_DATE, issuer_name=DEMO_DEPARTMENT_NAME)


def test_wrap_keeps_every_character_and_no_line_starts_with_closing_punctuation():
    text = "热食类食品制售，冷食类食品制售；自制饮品制售。预包装食品销售、散装食品销售（含冷藏冷冻食品）" * 3
    for width in (20, 33.3, 47, 80):
        lines = wrap(text, width, 4)
        assert "".join(lines) == text
        assert all(line[0] not in NO_LINE_START for line in lines)
        assert len(lines) > 1
