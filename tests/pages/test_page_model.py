"""The page model: validation where bad values enter, text setting, QR images."""

from __future__ import annotations

import io
import math
import re
from datetime import datetime

import pytest
from PIL import Image as PILImage

from pages.fonts import cjk_face
from pages.model import (
    MAX_QR_BYTES,
    Document,
    Image,
    Line,
    Page,
    PageModelError,
    QrCode,
    Rect,
    Text,
    extent,
    set_text,
)
from pages.qr import PIXELS_PER_MODULE, QUIET_ZONE, qr_matrix, qr_png


def _png(size=(8, 6), color=(255, 0, 0)) -> bytes:
    out = io.BytesIO()
    PILImage.new("RGB", size, color).save(out, "PNG")
    return out.getvalue()


def _jpeg() -> bytes:
    out = io.BytesIO()
    PILImage.new("RGB", (8, 6), (0, 0, 255)).save(out, "JPEG")
    return out.getvalue()


def test_a4_page_with_every_kind_of_item():
    items = [Text(20, 30, "营业执照", 8), Image(10, 40, 30, 20, _png(), "png"),
             Image(50, 40, 30, 20, _jpeg(), "jpeg"), Line(10, 80, 200, 80),
             Rect(10, 90, 50, 20, fill=(240, 240, 240)), QrCode(160, 240, 40, "https://v.example/1")]
    page = Page.a4(items)
    assert (page.width_mm, page.height_mm) == (210.0, 297.0)
    assert page.items == tuple(items)  # a list becomes a tuple: the page is immutable


@pytest.mark.parametrize("make, fragment", [
    (lambda: Text(1, 10, "x", 0), "Text.size_mm must be positive"),
    (lambda: Text(1, 10, "x", -2), "Text.size_mm must be positive"),
    (lambda: Text(math.nan, 10, "x", 3), "Text.x must be a finite number"),
    (lambda: Text(1, math.inf, "x", 3), "Text.y must be a finite number"),
    (lambda: Text(True, 10, "x", 3), "Text.x must be a finite number"),
    (lambda: Text(1, 10, "", 3), "Text.text must not be empty"),
    (lambda: Text(1, 10, "   ", 3), "Text.text must not be empty"),
    (lambda: Text(1, 10, "two\nlines", 3), "U+000A"),
    (lambda: Text(1, 10, "bell\x07", 3), "U+0007"),
    (lambda: Text(1, 10, "x", 3, color=(0, 0, 256)), "Text.color"),
    (lambda: Text(1, 10, "x", 3, color=(0, 0)), "Text.color"),
    (lambda: Text(1, 10, "x", 3, align="justify"), "Text.align"),
    (lambda: Text(1, 10, "x", 3, bold="yes"), "Text.bold"),
    (lambda: Text(1, 10, "x", 3, max_width=0), "Text.max_width must be positive"),
    (lambda: Image(0, 0, 0, 5, _png(), "png"), "Image.w must be positive"),
    (lambda: Image(0, 0, 5, -1, _png(), "png"), "Image.h must be positive"),
    (lambda: Image(0, 0, 5, 5, _png(), "gif"), "Image.format must be 'png' or 'jpeg'"),
    (lambda: Image(0, 0, 5, 5, _jpeg(), "png"), "not a PNG file"),
    (lambda: Image(0, 0, 5, 5, _png(), "jpeg"), "not a JPEG file"),
    (lambda: Image(0, 0, 5, 5, _png()[:40], "png"), "not a readable PNG"),
    (lambda: Image(0, 0, 5, 5, b"\x89PNG\r\n\x1a\n" + b"\x00" * 30, "png"), "not a readable PNG"),
    (lambda: Line(0, 0, 10, 10, width=0), "Line.width must be positive"),
    (lambda: Line(0, 0, 10, 10, color=(-1, 0, 0)), "Line.color"),
    (lambda: Rect(0, 0, 10, 10, stroke=None, fill=None), "neither stroke nor fill"),
    (lambda: Rect(0, 0, 10, 0), "Rect.h must be positive"),
    (lambda: Rect(0, 0, 10, 10, line_width=-0.1), "Rect.line_width must be positive"),
    (lambda: QrCode(0, 0, 20, ""), "non-empty"),
    (lambda: QrCode(0, 0, 0, "x"), "QrCode.size must be positive"),
    (lambda: QrCode(0, 0, 20, "ab\ud800"), "lone surrogate at index 2"),
    (lambda: QrCode(0, 0, 20, "x" * (MAX_QR_BYTES + 1)), f"at most {MAX_QR_BYTES}"),
    (lambda: Page(0, 297), "Page.width_mm must be positive"),
    (lambda: Page(210, 6000), "at most 5080 mm"),
    (lambda: Page(210, 297, ("not an item",)), "Page.items[0] is a str"),
    (lambda: Document(()), "at least one page"),
    (lambda: Document((Text(1, 10, "x", 3),)), "Document.pages[0] is a Text"),
    (lambda: Document((Page.a4(),), title="a\x00b"), "Document.title"),
    (lambda: Document((Page.a4(),), doc_id="has space"), "Document.doc_id"),
    (lambda: Document((Page.a4(),), created="2026-01-01"), "Document.created must be a datetime"),
    (lambda: Document((Page.a4(),), custom={"k": 1}), "Document.custom['k'] must be a string"),
    (lambda: Document((Page.a4(),), custom={"": "v"}), "custom name must not be empty"),
    (lambda: Document((Page.a4(),), keywords=("ok", "")), "Document.keywords[1]"),
])
def test_bad_values_are_refused_naming_them(make, fragment):
    with pytest.raises(PageModelError, match=re.escape(fragment)):
        make()


@pytest.mark.parametrize("item", [
    Rect(180, 10, 40, 10),                      # runs off the right edge
    Rect(0, 0, 10, 10),                         # the stroke's outer half is off the page
    Line(10, 296.9, 100, 296.9, width=0.5),     # likewise, at the bottom
    QrCode(-1, 10, 20, "x"),
    Image(10, 290, 20, 10, _png(), "png"),
    Text(200, 50, "营业执照", 5),               # text set past the right edge
    Text(10, 2, "营业执照", 5),                 # ascent above the top
    Text(5, 50, "营业执照", 5, align="right"),  # ends at x=5: starts left of the page
])
def test_items_must_lie_on_the_page(item):
    with pytest.raises(PageModelError, match=r"Page\.items\[0\] .* off the 210 x 297 mm page"):
        Page.a4([item])


def test_text_the_font_cannot_show_is_refused_at_the_page():
    with pytest.raises(PageModelError, match="U\\+1F600") as caught:
        Page.a4([Text(10, 20, "姓名😀", 5)])
    assert "姓名😀" in str(caught.value)


def test_alignment_and_fitting():
    face = cjk_face()
    width = face.text_width("法定代表人", 5)
    left = set_text(Text(20, 50, "法定代表人", 5))
    centre = set_text(Text(105, 50, "法定代表人", 5, align="center"))
    right = set_text(Text(190, 50, "法定代表人", 5, align="right"))
    assert left.x == 20 and left.width == pytest.approx(width)
    assert centre.x == pytest.approx(105 - width / 2)
    assert right.x + right.width == pytest.approx(190)
    assert left.y == centre.y == right.y == 50
    assert left.advances == tuple(face.advances("法定代表人", 5))

    fitted = set_text(Text(20, 50, "法定代表人", 5, max_width=width / 2))
    assert fitted.width == pytest.approx(width / 2)
    assert fitted.size == pytest.approx(2.5)
    roomy = set_text(Text(20, 50, "法定代表人", 5, max_width=width * 2))
    assert roomy.size == 5 and roomy.width == pytest.approx(width)

    box = extent(Text(20, 50, "法定代表人", 5))
    assert box == pytest.approx((20, 50 - face.ascent(5), 20 + width, 50 + face.descent(5)))


def test_document_metadata_is_read_only_and_ids_are_fresh():
    custom = {"证照编号": "A-1"}
    doc = Document([Page.a4()], title="许可证", custom=custom, keywords=["证照"],
                   created=datetime(2026, 3, 1, 9, 30))
    custom["证照编号"] = "changed"
    assert doc.custom["证照编号"] == "A-1"
    with pytest.raises(TypeError):
        doc.custom["x"] = "y"  # type: ignore[index]
    assert doc.pages == (Page.a4(),) and doc.keywords == ("证照",)
    first, second = doc.resolved_id(), doc.resolved_id()
    assert re.fullmatch(r"[0-9a-f]{32}", first) and first != second
    fixed = Document((Page.a4(),), doc_id="LIC-2026-0001")
    assert fixed.resolved_id() == "LIC-2026-0001"


# -- QR codes ----------------------------------------------------------------------------------

def test_qr_png_is_one_bit_with_a_quiet_zone_and_deterministic():
    payload = "https://verify.example.gov.cn/v/1.2.156.3005.2.11100000000013338W001"
    data = qr_png(payload)
    assert data == qr_png(payload)
    image = PILImage.open(io.BytesIO(data))
    assert image.format == "PNG" and image.mode == "1"
    modules = len(qr_matrix(payload))
    assert image.size == (modules * PIXELS_PER_MODULE,) * 2
    margin = QUIET_ZONE * PIXELS_PER_MODULE
    pixels = image.convert("L")
    ring = [pixels.getpixel((x, y)) for y in range(image.height) for x in range(image.width)
            if x < margin or y < margin or x >= image.width - margin or y >= image.height - margin]
    assert set(ring) == {255}
    assert pixels.getpixel((margin, margin)) == 0  # the finder pattern starts right inside it


def test_qr_payload_must_fit():
    with pytest.raises(PageModelError, match="does not fit"):
        qr_matrix("x" * (MAX_QR_BYTES + 10))
    with pytest.raises(PageModelError, match="non-empty"):
        qr_png("")


@pytest.mark.interop
@pytest.mark.parametrize("payload", [
    "https://verify.example.gov.cn/v/1.2.156.3005.2.11100000000013338W001?c=K",
    "电子证照 营业执照 91110000MA01ABCD2X",
])
def test_zxing_reads_the_payload_back_at_level_m(payload):
    zxingcpp = pytest.importorskip("zxingcpp")
    results = zxingcpp.read_barcodes(PILImage.open(io.BytesIO(qr_png(payload))).convert("L"))
    assert [r.text for r in results] == [payload]
    assert results[0].format == zxingcpp.BarcodeFormat.QRCode
    assert results[0].ec_level == "M"
