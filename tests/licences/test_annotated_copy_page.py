"""The annotated copy's page (licences.annotated_copy), without a service: the request's rules,
and the layout — the licence page untouched, the
band below it, the watermark everywhere but over the QR code, the annotation in the metadata."""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any

import pytest

from keys_dev.domain import DEMO_DEPARTMENT_CODE, DEMO_DEPARTMENT_NAME
from licences.annotated_copy import (
    COPY_LABEL,
    WATERMARK,
    Annotation,
    CopyRequest,
    annotated_document,
    licence_document,
    watermark_text,
)
from licences.catalogue import Catalogue
from licences.identifiers import LicenceIdentifier
from licences.layout import render
from pages.model import QrCode, Rect, Text, extent
from pdf.writer import write_pdf


@pytest.mark.parametrize(("value", "problem"), [
    ({"format": "docx"}, "pdf or ofd"), ({}, "pdf or ofd"), ({"format": "pdf", "valid_days": 0}, "1 to 90"),
    ({"format": "pdf", "valid_days": 91}, "1 to 90"), ({"format": "pdf", "valid_days": True}, "1 to 90"),
    ({"format": "pdf", "valid_days": 7.5}, "1 to 90"), ({"format": "pdf", "x": 1}, "no field 'x'"),
    ("pdf", "annotated_copy must be"),
])
def test_a_copy_request_is_checked(value, problem):
    with pytest.raises(ValueError, match=problem):
        CopyRequest.checked(value)


def test_a_copy_request_defaults_to_30_days():
    assert CopyRequest.checked({"format": "ofd"}) == CopyRequest("ofd", 30)
    assert CopyRequest.checked({"format": "pdf", "valid_days": 90}).media_type == "application/pdf"


@dataclass
class _Record:
    """What annotated_document reads of a licence row."""

    identifier: str
    data: dict[str, Any]
    licence_metadata: dict[str, Any]
    qr_nonce: str | None = None
    extra: dict = field(default_factory=dict)


def _annotation(identifier: str, purpose: str = "办理住房公积金贷款") -> Annotation:
    now = datetime(2026, 3, 4, 5, 6, 7, tzinfo=UTC)
    return Annotation.for_request(CopyRequest("pdf", 10), purpose=purpose, client_id="dept-1",
                                  client_name="市住房公积金管理中心", now=now, response_id="resp-abc",
                                  identifier=identifier)


@pytest.fixture(params=["11100000MB0000019L001", "11100000MB0000027F001"])
def licence(request, monkeypatch):
    """A licence page model with a real (stand-in signed) QR payload, no home needed."""
    licence_type = Catalogue.load().get(request.param)
    identifier = LicenceIdentifier(request.param, DEMO_DEPARTMENT_CODE, 7, 1).text
    data = dict(licence_type.example)
    record = _Record(identifier, data, {"issue_date": "2026-01-02", "issuer_name": DEMO_DEPARTMENT_NAME})
    payload = "HTTP://LOCALHOST:8081/V/TESTPAYLOAD"
    # the payload check (the register's QR text is this version's) is tested in the service tests
    import licences.annotated_copy as module

    monkeypatch.setattr(module, "check_payload", lambda payload, record: None)
    return licence_type, record, payload


def test_the_licence_page_is_the_issued_one_and_the_band_is_below_it(licence):
    licence_type, record, payload = licence
    issued = render(licence_type, record.data, identifier=record.identifier, qr_payload=payload,
                    issue_date=date(2026, 1, 2), issuer_name=DEMO_DEPARTMENT_NAME)
    assert licence_document(licence_type, record, payload) == issued
    annotation = _annotation(record.identifier)
    document, seal = annotated_document(licence_type, record, payload, annotation)
    (page,) = document.pages
    (original,) = issued.pages
    assert page.width_mm == original.width_mm and page.height_mm > original.height_mm + seal.height
    # every item of the licence is there, unchanged and in order
    items = list(page.items)
    start = items.index(original.items[0])
    assert tuple(items[start:start + len(original.items)]) == original.items
    band = items[start + len(original.items):]
    assert all(extent(i)[1] >= original.height_mm - 1e-6 for i in band)  # nothing of the band on the licence
    assert isinstance(band[0], Rect) and band[0].stroke == (200, 30, 30)
    texts = " ".join(i.text for i in band if isinstance(i, Text))
    for words in ("加注件", "用证单位", "市住房公积金管理中心", "用证事由", annotation.purpose, "加注时间",
                  "2026-03-04 13:06:07", "有效期至", "2026-03-14 13:06:07", "加注编号", "resp-abc"):
        assert words in texts, words
    left, top, right, bottom = extent(band[0])
    assert left <= seal.x and seal.x + seal.width <= right and top <= seal.y
    assert seal.y + seal.height <= bottom and bottom <= page.height_mm
    assert not any(isinstance(i, Text) and extent(i)[2] > seal.x and extent(i)[3] > seal.y
                   and extent(i)[1] < seal.y + seal.height for i in band)  # no text under the seal


def test_the_watermark_covers_the_licence_but_never_the_qr_code(licence):
    licence_type, record, payload = licence
    annotation = _annotation(record.identifier)
    document, _ = annotated_document(licence_type, record, payload, annotation)
    (page,) = document.pages
    qr = next(i for i in page.items if isinstance(i, QrCode))
    marks = [i for i in page.items if isinstance(i, Text) and i.color == WATERMARK]
    assert len(marks) >= 8 and all(m.text in (watermark_text(annotation) + "　　") * 9 for m in marks)
    assert watermark_text(annotation) == "仅供办理住房公积金贷款使用 · 有效期至2026-03-14"
    assert page.items.index(marks[-1]) < page.items.index(qr)  # drawn first: under the licence
    for mark in marks:
        left, top, right, bottom = extent(mark)
        apart = right <= qr.x - 2 or left >= qr.x + qr.size + 2 or bottom <= qr.y - 2 or top >= qr.y + qr.size + 2
        assert apart, mark
    rows = {round(m.y, 3) for m in marks}
    assert max(rows) - min(rows) > page.height_mm * 0.6  # across the page, not one corner


def test_the_metadata_carries_the_annotation(licence):
    licence_type, record, payload = licence
    annotation = _annotation(record.identifier, "入学资格审核")
    document, _ = annotated_document(licence_type, record, payload, annotation)
    assert document.custom["AnnotationPurpose"] == "入学资格审核"
    assert document.custom["AnnotationExpires"] == "2026-03-14T05:06:07Z"
    assert document.custom["AnnotatedLicence"] == document.custom["LicenceIdentifier"] == record.identifier
    assert "加注件" in document.title and "加注件" in document.keywords


def test_a_long_purpose_wraps_inside_the_band(licence):
    licence_type, record, payload = licence
    purpose = "核验" * 100
    document, _ = annotated_document(licence_type, record, payload, _annotation(record.identifier, purpose))
    (page,) = document.pages
    lines = [i.text for i in page.items if isinstance(i, Text) and i.color == (0, 0, 0) and i.text.startswith("核验")]
    assert "".join(lines) == purpose and len(lines) > 2
    assert all(extent(i)[2] <= page.width_mm for i in page.items)


def test_an_annotation_expires_valid_days_after_it_is_made():
    annotation = _annotation("x")
    assert annotation.expires - annotation.created == timedelta(days=10)


def test_the_copy_label_sits_beside_the_qr_code_clear_of_the_licence(licence):
    licence_type, record, payload = licence
    original = licence_document(licence_type, record, payload).pages[0]
    document, _ = annotated_document(licence_type, record, payload, _annotation(record.identifier))
    (page,) = document.pages
    qr = next(i for i in page.items if isinstance(i, QrCode))
    (label,) = [i for i in page.items if isinstance(i, Text) and i.text == COPY_LABEL]
    left, top, right, bottom = extent(label)
    assert label.color == (200, 30, 30) and label.bold
    assert right <= qr.x and qr.x - right < 3  # just left of the code, outside its box
    assert qr.y < (top + bottom) / 2 < qr.y + qr.size  # level with it

    def overlaps(item) -> bool:
        a = extent(item)
        return a[0] < right and left < a[2] and a[1] < bottom and top < a[3]

    assert not [i for i in original.items if isinstance(i, (Text, QrCode)) and overlaps(i)]
    marks = [i for i in page.items if isinstance(i, Text) and i.color == WATERMARK]
    assert not [m for m in marks if overlaps(m)]


def test_the_watermark_survives_a_greyscale_print(licence):
    """Rendered and turned grey (as a copier or a fax does), the watermark's strokes are still
    clearly darker than the paper: the old (246, 206, 206) gave no pixel below 219."""
    import pypdfium2

    licence_type, record, payload = licence
    document, _ = annotated_document(licence_type, record, payload, _annotation(record.identifier))
    (page,) = document.pages
    scale = 150 / 25.4  # pixels per mm at 150 dpi
    image = pypdfium2.PdfDocument(write_pdf(document))[0].render(scale=150 / 72).to_pil().convert("L")
    others = [extent(i) for i in page.items
              if isinstance(i, QrCode) or (isinstance(i, Text) and i.color != WATERMARK)]
    darkest = []
    for mark in [i for i in page.items if isinstance(i, Text) and i.color == WATERMARK][:6]:
        left, top, right, bottom = extent(mark)
        if any(o[0] < right and left < o[2] and o[1] < bottom and top < o[3] for o in others):
            continue  # a mark under licence text: its darkness is the text's
        box = tuple(round(v * scale) for v in (left, top, right, bottom))
        darkest.append(image.crop(box).getextrema()[0])
    assert darkest and max(darkest) <= 190, darkest
    rows = sorted({round(m.y, 3) for m in page.items if isinstance(m, Text) and m.color == WATERMARK})
    assert max(b - a for a, b in itertools.pairwise(rows)) <= 3.2 * 5.0  # a row every 3 sizes
