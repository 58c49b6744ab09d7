"""The PDF writer: page geometry, the embedded font, pictures, PDF/A-2b conventions, determinism,
and what independent readers (qpdf, poppler, pdfium, zxing-cpp) make of the result."""

from __future__ import annotations

import ctypes
import hashlib
import io
import os
import random
import re
import shutil
import struct
import subprocess
import sys
import uuid
import zlib
from datetime import UTC, datetime, timedelta, timezone

import pikepdf
import pytest
from fontTools.ttLib import TTFont
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st
from lxml import etree
from PIL import Image as PILImage
from PIL import ImageCms

from bench.pdf_speed import HANZI
from bench.pdf_speed import licence as bench_licence
from pages.fonts import cjk_face
from pages.model import Document, Image, Line, Page, PageModelError, QrCode, Rect, Text, extent, set_text
from pages.qr import qr_matrix
from pdf.pdfa import SRGB, srgb_profile
from pdf.writer import CHINA_STANDARD_TIME, PT_PER_MM, image_xobject, raster, write_pdf
from support.paths import REPO

QR_PAYLOAD = "https://verify.example.gov.cn/v/1.2.156.3005.2.11100000000013338W001"
ESCAPED = '()<>\\ 名称 "&\'s'
DOC_ID = "5f0c2d1e9a8b4c7d8e6f0a1b2c3d4e5f"
CREATED = datetime(2026, 5, 20, 10, 30, tzinfo=CHINA_STANDARD_TIME)
RED_ALPHA = (200, 30, 30, 128)
NS = {"x": "adobe:ns:meta/", "rdf": "http://www.w3.org/1999/02/22-rdf-syntax-ns#",
      "dc": "http://purl.org/dc/elements/1.1/", "xmp": "http://ns.adobe.com/xap/1.0/",
      "pdf": "http://ns.adobe.com/pdf/1.3/", "pdfaid": "http://www.aiim.org/pdfa/ns/id/",
      "xmpMM": "http://ns.adobe.com/xap/1.0/mm/"}


def _png(mode: str = "RGBA", color=RED_ALPHA, size=(30, 20)) -> bytes:
    out = io.BytesIO()
    PILImage.new(mode, size, color).save(out, "PNG")
    return out.getvalue()


def _jpeg(mode: str = "RGB", color=(30, 30, 200)) -> bytes:
    out = io.BytesIO()
    PILImage.new(mode, (30, 20), color).save(out, "JPEG", quality=95)
    return out.getvalue()


def licence(**overrides) -> Document:
    first = Page.a4([
        Text(20, 30, "中华人民共和国营业执照", 8, bold=True),
        Text(105, 45, ESCAPED, 5, align="center", color=(200, 0, 0)),
        Text(190, 60, "统一社会信用代码 91110000MA01ABCD2X", 4, align="right"),
        Text(20, 67, "住所：北京市朝阳区建国路一号大厦二十层", 4, max_width=40),
        Line(20, 72, 190, 72, width=0.5),
        Rect(20, 80, 80, 40, stroke=(0, 0, 0), fill=(230, 230, 250), line_width=0.8),
        Rect(110, 80, 30, 30, stroke=None, fill=(0, 128, 0)),
        Rect(150, 80, 30, 30, stroke=(0, 0, 255), line_width=1),
        Image(20, 150, 30, 20, _png(), "png"),
        Image(60, 150, 30, 20, _jpeg(), "jpeg"),
        Image(100, 150, 30, 20, _png(), "png"),  # the same picture again: stored once
        QrCode(150, 150, 40, QR_PAYLOAD),
    ])
    second = Page(297, 210, [Text(10, 20, "第二页 登记机关（盖章）", 6), QrCode(240, 150, 40, QR_PAYLOAD)])
    fields = dict(pages=(first, second), title="营业执照 (副本) <x> \\", author="某市市场监督管理局",
                  doc_id=DOC_ID, created=CREATED, keywords=("营业执照", "电子证照"),
                  custom={"证照编号": "A&B<1>", "持证主体": "某某有限公司"})
    fields.update(overrides)
    return Document(**fields)


def _texts(page: Page) -> list[Text]:
    return [item for item in page.items if isinstance(item, Text)]


@pytest.fixture(scope="module")
def written() -> bytes:
    return write_pdf(licence())


@pytest.fixture(scope="module")
def pdf(written) -> pikepdf.Pdf:
    return pikepdf.open(io.BytesIO(written))


@pytest.fixture(scope="module")
def font(pdf) -> pikepdf.Dictionary:
    return pdf.pages[0].Resources.Font.F1


@pytest.fixture(scope="module")
def program(font) -> TTFont:
    data = font.DescendantFonts[0].FontDescriptor.FontFile2.read_bytes()
    return TTFont(io.BytesIO(data))


# -- file structure ---------------------------------------------------------------------------

def test_header_classic_xref_and_trailer(written, pdf):
    assert written.startswith(b"%PDF-1.7\n%")
    assert all(b >= 128 for b in written.split(b"\n")[1][1:5])  # the binary comment PDF/A wants
    assert written.rstrip().endswith(b"%%EOF") and written.count(b"%%EOF") == 1
    assert b"\nxref\n" in written and b"/ObjStm" not in written and b"/XRef" not in written
    first, second = (bytes(v) for v in pdf.trailer.ID)
    assert first == bytes.fromhex(DOC_ID) and len(second) == 16
    assert "/Encrypt" not in pdf.trailer


def test_pages_have_the_models_size_in_points(pdf):
    assert len(pdf.pages) == 2
    boxes = [[float(v) for v in page.MediaBox] for page in pdf.pages]
    assert boxes[0] == pytest.approx([0, 0, 210 * PT_PER_MM, 297 * PT_PER_MM], abs=1e-3)
    assert boxes[1] == pytest.approx([0, 0, 297 * PT_PER_MM, 210 * PT_PER_MM], abs=1e-3)


def test_one_font_for_the_whole_document(pdf):
    fonts = {page.Resources.Font.F1.objgen for page in pdf.pages}
    assert len(fonts) == 1
    assert all(set(page.Resources.Font.keys()) == {"/F1"} for page in pdf.pages)


def test_type0_font_structure(font):
    assert font.Subtype == "/Type0" and font.Encoding == "/Identity-H"
    (cid_font,) = font.DescendantFonts
    assert cid_font.Subtype == "/CIDFontType2"
    info = cid_font.CIDSystemInfo
    assert (str(info.Registry), str(info.Ordering), int(info.Supplement)) == ("Adobe", "Identity", 0)
    assert cid_font.CIDToGIDMap == "/Identity"
    descriptor = cid_font.FontDescriptor
    assert re.fullmatch(r"[A-Z]{6}\+WenQuanYiZenHei", str(descriptor.FontName)[1:])
    assert font.BaseFont == cid_font.BaseFont == descriptor.FontName
    program = descriptor.FontFile2
    assert program.Filter == "/FlateDecode" and int(program.Length1) == len(program.read_bytes())
    assert "/FontFile" not in descriptor and "/FontFile3" not in descriptor
    for key in ("/Flags", "/FontBBox", "/ItalicAngle", "/Ascent", "/Descent", "/CapHeight", "/StemV"):
        assert key in descriptor, key


def _used_chars(document: Document) -> set[str]:
    return {c for page in document.pages for item in _texts(page) for c in item.text}


def test_embedded_program_is_the_subset_of_exactly_the_used_characters(program):
    assert {chr(cp) for cp in program.getBestCmap()} == _used_chars(licence())
    assert program["maxp"].numGlyphs < 200


def _cmap_pairs(data: bytes) -> dict[int, str]:
    pairs = {}
    for block in re.findall(rb"beginbfchar\n(.*?)endbfchar", data, re.S):
        for code, text in re.findall(rb"<([0-9A-F]{4})> <([0-9A-F]+)>", block):
            pairs[int(code, 16)] = bytes.fromhex(text.decode()).decode("utf-16-be")
    return pairs


def test_cids_are_subset_glyph_ids_and_to_unicode_names_each(font, program):
    cmap = program.getBestCmap()
    order = program.getGlyphOrder()
    expected = {order.index(name): chr(cp) for cp, name in cmap.items()}
    assert _cmap_pairs(font.ToUnicode.read_bytes()) == expected


def _widths(cid_font) -> dict[int, float]:
    out, items = {}, list(cid_font.W)
    while items:
        first, run = int(items.pop(0)), items.pop(0)
        for offset, width in enumerate(run):
            out[first + offset] = float(width)
    return out


def test_widths_are_whole_units_within_half_a_unit_of_the_advances(font, program):
    widths = _widths(font.DescendantFonts[0])
    hmtx, order, upem = program["hmtx"].metrics, program.getGlyphOrder(), program["head"].unitsPerEm
    face = cjk_face()
    assert set(widths) == {order.index(n) for n in program.getBestCmap().values()}
    for cp, name in program.getBestCmap().items():
        cid = order.index(name)
        assert widths[cid] == round(hmtx[name][0] * 1000 / upem)
        assert widths[cid] == pytest.approx(face.advance(chr(cp), 1) * 1000, abs=0.5)


def _content(pdf, page: int) -> str:
    return pdf.pages[page].Contents.read_bytes().decode("ascii")


_SHOW = re.compile(r"/F1 ([\d.]+) Tf .*? 1 0 0 1 ([\d.-]+) ([\d.-]+) Tm (<[0-9a-f]+> Tj|\[[^\]]*\] TJ) ET")


def _glyph_positions(operation: str, x: float, size: float,
                     widths: dict[int, float]) -> list[tuple[int, float]]:
    """Where a reader puts each glyph of a Tj/TJ operation (ISO 32000 §9.4.4)."""
    out = []
    for token in re.findall(r"<[0-9a-f]+>|-?[\d.]+", operation):
        if token.startswith("<"):
            codes = bytes.fromhex(token[1:-1])
            for i in range(0, len(codes), 2):
                cid = int.from_bytes(codes[i:i + 2], "big")
                out.append((cid, x))
                x += widths[cid] / 1000 * size
        else:
            x -= float(token) / 1000 * size
    return out


def test_every_glyph_is_drawn_where_set_text_puts_it(pdf, font, program):
    shown = _SHOW.findall(_content(pdf, 0))
    texts = _texts(licence().pages[0])
    assert len(shown) == len(texts)
    order = program.getGlyphOrder()
    cid_of = {chr(cp): order.index(name) for cp, name in program.getBestCmap().items()}
    widths = _widths(font.DescendantFonts[0])
    adjusted = 0
    for item, (size, x, y, operation) in zip(texts, shown, strict=True):
        run = set_text(item)
        assert float(size) == pytest.approx(run.size * PT_PER_MM, abs=1e-3)
        assert float(y) == pytest.approx((297 - item.y) * PT_PER_MM, abs=1e-3)
        glyphs = _glyph_positions(operation, float(x), float(size), widths)
        assert [cid for cid, _ in glyphs] == [cid_of[c] for c in item.text]
        exact = run.x
        for (_, position), advance in zip(glyphs, run.advances, strict=True):
            assert position == pytest.approx(exact * PT_PER_MM, abs=2e-3)
            exact += advance
        adjusted += operation.endswith("TJ")
    assert adjusted >= 1  # the ASCII lines need corrections; all-CJK lines (1000 units) do not
    assert shown[0][3].endswith(" Tj")


def test_bold_is_filled_and_stroked_in_the_text_colour(pdf):
    lines = _content(pdf, 0).split("\n")
    bold = lines[0]
    size = 8 * PT_PER_MM
    assert f" 2 Tr {size / 30:.3f} w 0 0 0 RG " in bold
    assert all(" Tr " not in line for line in lines[1:])
    assert " 0.784 0 0 rg " in lines[1]  # (200, 0, 0)
    assert all(line.startswith("q ") and line.endswith(" Q") for line in lines)


def test_lines_and_rectangles(pdf):
    lines = _content(pdf, 0).split("\n")
    k = PT_PER_MM

    def n(v: float) -> str:
        return f"{v:.3f}".rstrip("0").rstrip(".")

    assert f"q {n(0.5 * k)} w 0 0 0 RG {n(20 * k)} {n(225 * k)} m {n(190 * k)} {n(225 * k)} l S Q" in lines
    framed = f"{n(20 * k)} {n(177 * k)} {n(80 * k)} {n(40 * k)} re B Q"
    assert any(line.endswith(framed) and "0.902 0.902 0.98 rg" in line for line in lines)
    assert any(line.endswith(" re f Q") and "0 0.502 0 rg" in line and " RG" not in line for line in lines)
    assert any(line.endswith(" re S Q") and "0 0 1 RG" in line and " rg" not in line for line in lines)


def _xobjects(pdf, page: int) -> dict[str, pikepdf.Stream]:
    return dict(pdf.pages[page].Resources.XObject.items())


def test_png_with_alpha_becomes_rgb_with_an_smask(pdf):
    xobjects = _xobjects(pdf, 0)
    assert len(xobjects) == 3  # the repeated PNG is one XObject
    png = xobjects["/Im1"]
    assert (png.ColorSpace, int(png.BitsPerComponent), png.Filter) == ("/DeviceRGB", 8, "/FlateDecode")
    assert (int(png.Width), int(png.Height)) == (30, 20) and png.Interpolate is False
    assert png.read_bytes() == bytes(RED_ALPHA[:3]) * 600
    mask = png.SMask
    assert (mask.ColorSpace, int(mask.BitsPerComponent)) == ("/DeviceGray", 8)
    assert mask.read_bytes() == bytes([RED_ALPHA[3]]) * 600
    assert pdf.pages[0].Group.S == "/Transparency" and pdf.pages[0].Group.CS == "/DeviceRGB"
    assert "/Group" not in pdf.pages[1]  # only a QR code there: nothing transparent
    assert _content(pdf, 0).count("/Im1 Do") == 2


def test_jpeg_passes_through(pdf):
    jpeg = _xobjects(pdf, 0)["/Im2"]
    assert jpeg.Filter == "/DCTDecode" and jpeg.ColorSpace == "/DeviceRGB"
    assert jpeg.read_raw_bytes() == _jpeg()


def test_qr_code_is_a_stencil_with_one_pixel_per_module_on_a_white_square(pdf):
    qr = _xobjects(pdf, 0)["/Im3"]
    side = len(qr_matrix(QR_PAYLOAD))
    assert (int(qr.Width), int(qr.Height), int(qr.BitsPerComponent)) == (side, side, 1)
    assert qr.ImageMask is True and "/ColorSpace" not in qr and "/Decode" not in qr
    assert qr.Interpolate is False
    assert _xobjects(pdf, 1)["/Im3"].objgen == qr.objgen  # same payload on page 2: the same image
    rows, row_bytes = qr.read_bytes(), (side + 7) // 8
    painted = [[not rows[y * row_bytes + x // 8] & (0x80 >> x % 8) for x in range(side)] for y in range(side)]
    assert painted == qr_matrix(QR_PAYLOAD)  # sample 0 paints: exactly the dark modules
    k = PT_PER_MM

    def n(v: float) -> str:
        return f"{v:.3f}".rstrip("0").rstrip(".")

    box = f"{n(150 * k)} {n(107 * k)} {n(40 * k)} {n(40 * k)}"
    assert f"q 1 g {box} re f 0 g {n(40 * k)} 0 0 {n(40 * k)} {n(150 * k)} {n(107 * k)} cm /Im3 Do Q" in (
        _content(pdf, 0).split("\n"))


@pytest.mark.interop
def test_qr_image_decodes(pdf):
    zxingcpp = pytest.importorskip("zxingcpp")
    mask = pikepdf.PdfImage(_xobjects(pdf, 0)["/Im3"]).as_pil_image().convert("L")
    image = PILImage.eval(mask, lambda v: 255 - v) if mask.getpixel((0, 0)) == 0 else mask
    big = image.resize((image.width * 4,) * 2, PILImage.Resampling.NEAREST)
    assert [r.text for r in zxingcpp.read_barcodes(big)] == [QR_PAYLOAD]


@pytest.mark.parametrize(("data", "space", "bits", "alpha"), [
    (_png("1", 1), "/DeviceGray", 1, False),
    (_png("L", 90), "/DeviceGray", 8, False),
    (_png("LA", (90, 10)), "/DeviceGray", 8, True),
    (_png("RGBA", (1, 2, 3, 255)), "/DeviceRGB", 8, False),  # opaque alpha: no mask
    (_png("P", 7), "/DeviceRGB", 8, False),
    (_png("I;16", 40000), "/DeviceGray", 8, False),
])
def test_every_png_kind_becomes_gray_or_rgb(data, space, bits, alpha):
    image = raster(data, "png")
    assert (image.color_space, image.bits, image.smask is not None) == (space, bits, alpha)
    expected = PILImage.open(io.BytesIO(data))
    samples = zlib.decompress(image.data)
    if expected.mode == "I;16":
        assert samples == bytes([40000 // 256]) * 600
    elif expected.mode == "P":
        assert samples == bytes(expected.convert("RGB").tobytes())


def test_palette_png_with_transparency_gets_a_mask():
    out = io.BytesIO()
    image = PILImage.new("P", (4, 4), 0)
    image.putpalette([255, 0, 0, 0, 255, 0])
    image.putpixel((0, 0), 1)
    image.save(out, "PNG", transparency=0)
    picture = raster(out.getvalue(), "png")
    assert picture.color_space == "/DeviceRGB" and picture.smask is not None
    assert zlib.decompress(picture.smask.data) == bytes([255] + [0] * 15)


def _png_header_only(width: int, height: int) -> bytes:
    """A PNG whose header claims ``width`` x ``height`` and that holds no pixels."""
    def chunk(kind: bytes, body: bytes) -> bytes:
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))

    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 1, 0, 0, 0, 0))
            + chunk(b"IEND", b""))


def test_images_that_are_too_big_or_broken_are_refused():
    with pytest.raises(PageModelError, match=r"10000x6000 pixels, more than 50,000,000"):
        raster(_png_header_only(10000, 6000), "png")
    with pytest.raises(PageModelError, match="the PNG image cannot be decoded"):
        raster(_png_header_only(10, 10), "png")
    with pytest.raises(PageModelError, match="the JPEG image cannot be decoded"):
        raster(b"\xff\xd8\xff\xe0 not really", "jpeg")
    with pytest.raises(PageModelError, match="'png' or 'jpeg', not 'gif'"):
        image_xobject(pikepdf.new(), _png(), "gif")


def test_cmyk_jpeg_is_converted_to_rgb():
    picture = raster(_jpeg("CMYK", (0, 255, 0, 0)), "jpeg")
    assert picture.filter == "/FlateDecode" and picture.color_space == "/DeviceRGB"
    r, g, b = zlib.decompress(picture.data)[:3]
    assert r > 230 and g < 25 and b > 230  # magenta


def test_gray_jpeg_passes_through_as_gray():
    data = _jpeg("L", 128)
    picture = raster(data, "jpeg")
    assert (picture.filter, picture.color_space, picture.data) == ("/DCTDecode", "/DeviceGray", data)


# -- PDF/A-2b -------------------------------------------------------------------------------

def test_output_intent_carries_an_srgb_profile(pdf):
    (intent,) = pdf.Root.OutputIntents
    assert intent.S == "/GTS_PDFA1" and str(intent.OutputConditionIdentifier) == SRGB
    profile = intent.DestOutputProfile
    assert int(profile.N) == 3
    data = profile.read_bytes()
    assert data == srgb_profile() == srgb_profile()
    assert data[8:12] == bytes([4, 0x20, 0, 0]) and data[36:40] == b"acsp"
    parsed = ImageCms.ImageCmsProfile(io.BytesIO(data))
    assert "sRGB" in ImageCms.getProfileDescription(parsed)
    assert ImageCms.getProfileInfo(parsed) is not None


def _xmp(pdf) -> etree._Element:
    stream = pdf.Root.Metadata
    assert stream.Type == "/Metadata" and stream.Subtype == "/XML" and "/Filter" not in stream
    raw = stream.read_raw_bytes()
    assert raw.startswith("<?xpacket begin=\"\ufeff\"".encode()) and raw.endswith(b'<?xpacket end="w"?>')
    return etree.fromstring(raw, etree.XMLParser(resolve_entities=False, no_network=True))


def _one(root, path: str) -> str:
    (value,) = root.xpath(path, namespaces=NS)
    return value


def test_xmp_declares_pdfa_2b_and_agrees_with_info(pdf):
    xmp, info = _xmp(pdf), pdf.docinfo
    assert _one(xmp, "//pdfaid:part/text()") == "2"
    assert _one(xmp, "//pdfaid:conformance/text()") == "B"
    assert _one(xmp, "//dc:title/rdf:Alt/rdf:li[@xml:lang='x-default']/text()") == str(info.Title)
    assert str(info.Title) == "营业执照 (副本) <x> \\"
    assert _one(xmp, "//dc:creator/rdf:Seq/rdf:li/text()") == str(info.Author) == "某市市场监督管理局"
    assert _one(xmp, "//pdf:Keywords/text()") == str(info.Keywords) == "营业执照, 电子证照"
    assert xmp.xpath("//dc:subject/rdf:Bag/rdf:li/text()", namespaces=NS) == ["营业执照", "电子证照"]
    assert _one(xmp, "//pdf:Producer/text()") == str(info.Producer)
    assert str(info.Producer).startswith("zhengyin ")
    assert _one(xmp, "//xmp:CreatorTool/text()") == str(info.Creator) == "zhengyin"
    assert str(info.CreationDate) == str(info.ModDate) == "D:20260520103000+08'00'"
    assert _one(xmp, "//xmp:CreateDate/text()") == "2026-05-20T10:30:00+08:00"
    assert _one(xmp, "//xmp:ModifyDate/text()") == "2026-05-20T10:30:00+08:00"
    assert _one(xmp, "//xmpMM:DocumentID/text()") == DOC_ID


def test_pikepdf_reads_the_same_metadata(pdf):
    with pdf.open_metadata(set_pikepdf_as_editor=False, update_docinfo=False) as meta:
        assert meta.pdfa_status == "2B"
        assert meta["dc:title"] == "营业执照 (副本) <x> \\"


def test_custom_entries_and_catalogue(pdf):
    assert str(pdf.docinfo[pikepdf.Name("/证照编号")]) == "A&B<1>"
    assert str(pdf.docinfo[pikepdf.Name("/持证主体")]) == "某某有限公司"
    assert str(pdf.Root.Lang) == "zh-CN" and pdf.Root.ViewerPreferences.DisplayDocTitle is True


@pytest.mark.parametrize(("overrides", "message"), [
    (dict(custom={"Title": "x"}), r"custom name 'Title' is a standard PDF /Info entry"),
    (dict(custom={"名" * 43: "x"}), r"129 bytes in UTF-8; PDF/A allows names of at most 127"),
    (dict(title="题" * 16384), r"Document\.title takes 32,770 bytes as a PDF string"),
    (dict(custom={"备注": "注" * 16384}), r"Document\.custom\['备注'\] takes 32,770 bytes"),
])
def test_metadata_pdfa_cannot_carry_is_refused(overrides, message):
    with pytest.raises(PageModelError, match=message):
        write_pdf(licence(**overrides))


def test_dates_keep_the_instant_in_beijing_time():
    pdf = pikepdf.open(io.BytesIO(write_pdf(licence(created=datetime(2026, 5, 19, 20, 0, tzinfo=UTC)))))
    assert str(pdf.docinfo.CreationDate) == "D:20260520040000+08'00'"
    naive = pikepdf.open(io.BytesIO(write_pdf(licence(created=datetime(2026, 5, 19, 23, 59, 7)))))
    assert str(naive.docinfo.CreationDate) == "D:20260519235907"
    assert _one(_xmp(naive), "//xmp:CreateDate/text()") == "2026-05-19T23:59:07"


# -- determinism and edges --------------------------------------------------------------------

def test_same_document_same_bytes(written):
    assert write_pdf(licence()) == written


def test_another_id_another_file_id():
    other = pikepdf.open(io.BytesIO(write_pdf(licence(doc_id="licence-0001"))))
    first = bytes(other.trailer.ID[0])
    assert len(first) == 16 and first != bytes.fromhex(DOC_ID)
    assert _one(_xmp(other), "//xmpMM:DocumentID/text()") == "licence-0001"


def test_fresh_id_and_time_when_absent():
    ids = []
    for _ in range(2):
        pdf = pikepdf.open(io.BytesIO(write_pdf(licence(doc_id=None, created=None))))
        ids.append(bytes(pdf.trailer.ID[0]))
        assert uuid.UUID(bytes=ids[-1]).version == 4
        stamp = datetime.strptime(str(pdf.docinfo.CreationDate)[2:16], "%Y%m%d%H%M%S")
        now = datetime.now(timezone(timedelta(hours=8))).replace(tzinfo=None)
        assert abs(now - stamp) < timedelta(minutes=5)
    assert ids[0] != ids[1]


def test_document_without_text_or_pictures():
    pdf = pikepdf.open(io.BytesIO(write_pdf(Document((Page.a4([Rect(10, 10, 20, 20)]),), doc_id=DOC_ID,
                                                     created=CREATED))))
    assert dict(pdf.pages[0].Resources.items()) == {}
    assert len(pdf.Root.OutputIntents) == 1
    minimal = pikepdf.open(io.BytesIO(write_pdf(Document((Page.a4(),), created=CREATED))))
    assert "/Title" not in minimal.docinfo and "/ViewerPreferences" not in minimal.Root
    assert not _xmp(minimal).xpath("//dc:title", namespaces=NS)


def test_only_documents_are_written():
    with pytest.raises(PageModelError, match=r"needs a pages\.model\.Document"):
        write_pdf(Page.a4())  # type: ignore[arg-type]


def test_text_beyond_the_bmp_is_embedded_and_mapped():
    face = cjk_face()
    wide = next(chr(cp) for cp in range(0x20000, 0x2FFFF) if face.covers(chr(cp)))
    pdf = pikepdf.open(io.BytesIO(write_pdf(Document((Page.a4([Text(20, 30, f"A{wide}中", 8)]),),
                                                     created=CREATED))))
    font = pdf.pages[0].Resources.Font.F1
    assert wide in _cmap_pairs(font.ToUnicode.read_bytes()).values()


# -- independent readers ------------------------------------------------------------------------

def _need(tool: str) -> str:
    path = shutil.which(tool)
    if path is None:
        pytest.skip(f"{tool} is not installed (Debian: qpdf / poppler-utils)")
    return path


@pytest.mark.interop
def test_qpdf_check_is_clean(written, tmp_path):
    path = tmp_path / "licence.pdf"
    path.write_bytes(written)
    result = subprocess.run([_need("qpdf"), "--check", str(path)], capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "No syntax or stream encoding errors found" in result.stdout
    assert "WARNING" not in result.stdout + result.stderr


@pytest.mark.interop
def test_poppler_lists_the_font_as_embedded_subset_with_tounicode(written, tmp_path):
    path = tmp_path / "licence.pdf"
    path.write_bytes(written)
    out = subprocess.run([_need("pdffonts"), str(path)], capture_output=True, text=True, check=True).stdout
    (row,) = out.splitlines()[2:]
    assert re.match(r"[A-Z]{6}\+WenQuanYiZenHei\s+CID TrueType\s+Identity-H\s+yes yes yes ", row), row


@pytest.mark.interop
def test_pdftotext_extracts_the_models_text(written, tmp_path):
    path = tmp_path / "licence.pdf"
    path.write_bytes(written)
    out = subprocess.run([_need("pdftotext"), "-enc", "UTF-8", str(path), "-"], capture_output=True,
                         check=True).stdout.decode("utf-8")
    pages = out.split("\f")
    for index, page in enumerate(licence().pages):
        lines = [line for line in pages[index].splitlines() if line.strip()]
        assert lines == [item.text for item in _texts(page)]


@pytest.mark.interop
def test_pdfium_extracts_the_text_of_each_line_in_its_box(written):
    pdfium = pytest.importorskip("pypdfium2")
    document = pdfium.PdfDocument(written)
    for index, page in enumerate(licence().pages):
        text_page = document[index].get_textpage()
        height = page.height_mm
        for item in _texts(page):
            left, top, right, bottom = extent(item)
            got = text_page.get_text_bounded(left * PT_PER_MM, (height - bottom) * PT_PER_MM,
                                             right * PT_PER_MM, (height - top) * PT_PER_MM)
            assert got == item.text


def _pdfium_glyphs(written: bytes, page: int = 0) -> list[tuple[str, float, float]]:
    """Every character pdfium reads on ``page``, with its origin in points; the spaces and line
    breaks pdfium makes up between text objects are left out."""
    pdfium = pytest.importorskip("pypdfium2")
    raw = pytest.importorskip("pypdfium2.raw")
    text_page = pdfium.PdfDocument(written)[page].get_textpage()
    out = []
    for index in range(text_page.count_chars()):
        if raw.FPDFText_IsGenerated(text_page.raw, index):
            continue
        x, y = ctypes.c_double(), ctypes.c_double()
        raw.FPDFText_GetCharOrigin(text_page.raw, index, ctypes.byref(x), ctypes.byref(y))
        char = raw.FPDFText_GetUnicode(text_page.raw, index)
        out.append((chr(char), x.value, y.value))
    return out


@pytest.mark.interop
def test_pdfium_places_every_glyph_where_set_text_does(written):
    origins = _pdfium_glyphs(written)
    expected = []
    for item in _texts(licence().pages[0]):
        run = set_text(item)
        start = run.x
        for char, advance in zip(item.text, run.advances, strict=True):
            expected.append((char, start * PT_PER_MM, (297 - item.y) * PT_PER_MM))
            start += advance
    assert [c for c, _, _ in origins] == [c for c, _, _ in expected]
    for (_, x, y), (char, ex, ey) in zip(origins, expected, strict=True):
        assert x == pytest.approx(ex, abs=0.05) and y == pytest.approx(ey, abs=0.05), char


def _render_pdfium(written: bytes, page: int = 0) -> PILImage.Image:
    pdfium = pytest.importorskip("pypdfium2")
    return pdfium.PdfDocument(written)[page].render(scale=100 / 72).to_pil().convert("RGB")


def _render_poppler(written: bytes, tmp_path, page: int = 0) -> PILImage.Image:
    path = tmp_path / "licence.pdf"
    path.write_bytes(written)
    subprocess.run([_need("pdftoppm"), "-r", "100", "-f", str(page + 1), "-l", str(page + 1), "-png",
                    str(path), str(tmp_path / "render")], check=True)
    (png,) = tmp_path.glob("render*.png")
    return PILImage.open(png).convert("RGB")


@pytest.fixture(params=["pdfium", "poppler"])
def rendered(request, written, tmp_path) -> PILImage.Image:
    if request.param == "pdfium":
        return _render_pdfium(written)
    return _render_poppler(written, tmp_path)


def _box(image: PILImage.Image, box: tuple[float, float, float, float]) -> PILImage.Image:
    scale = image.width / 210
    return image.crop(tuple(round(v * scale) for v in box))


def _ink(image: PILImage.Image, box) -> float:
    gray = _box(image, box).convert("L").tobytes()
    return sum(1 for v in gray if v < 128) / len(gray)


def _mean(image: PILImage.Image, box) -> tuple[float, float, float]:
    region = _box(image, box)
    pixels = region.tobytes()
    count = len(pixels) // 3
    return tuple(sum(pixels[i::3]) / count for i in range(3))


@pytest.mark.interop
def test_renders_text_pictures_and_shapes_where_the_model_puts_them(rendered):
    for item in _texts(licence().pages[0]):
        left, top, right, bottom = extent(item)
        assert _ink(rendered, (left, top, right, bottom)) > 0.03, item.text
    assert _ink(rendered, (20, 180, 140, 280)) == 0  # below everything: blank
    assert _ink(rendered, (25, 85, 95, 115)) == 0  # inside the framed rectangle: only its fill
    assert _mean(rendered, (25, 85, 95, 115)) == pytest.approx((230, 230, 250), abs=3)
    assert _mean(rendered, (112, 82, 138, 108)) == pytest.approx((0, 128, 0), abs=3)
    assert _mean(rendered, (152, 82, 178, 108)) == pytest.approx((255, 255, 255), abs=1)  # stroke only
    # half-transparent red over white, and the JPEG's blue
    assert _mean(rendered, (22, 152, 48, 168)) == pytest.approx((227, 142, 142), abs=4)
    assert _mean(rendered, (62, 152, 88, 168)) == pytest.approx((30, 30, 200), abs=8)


@pytest.mark.interop
def test_qr_code_decodes_from_the_render(rendered):
    zxingcpp = pytest.importorskip("zxingcpp")
    region = _box(rendered, (145, 145, 195, 195)).convert("L")
    assert [r.text for r in zxingcpp.read_barcodes(region)] == [QR_PAYLOAD]
    inside = _box(rendered, (151, 151, 189, 189)).convert("L").tobytes()
    assert sum(1 for v in inside if 40 < v < 215) / len(inside) < 0.02  # crisp: black and white
    module = 40 / len(qr_matrix(QR_PAYLOAD))
    finder = (150 + 4.5 * module, 150 + 4.5 * module)  # the top-left finder's outer ring: dark
    assert _ink(rendered, (*finder, finder[0] + 0.1, finder[1] + 0.1)) == 1
    assert _ink(rendered, (150.2, 150.2, 150 + 3.8 * module, 150 + 3.8 * module)) == 0  # quiet zone


@pytest.mark.interop
def test_bold_renders_heavier_than_regular(written):
    image = _render_pdfium(written)
    bold = Document((Page.a4([Text(20, 30, "中华人民共和国营业执照", 8)]),), created=CREATED)
    regular = _render_pdfium(write_pdf(bold))
    run = set_text(_texts(licence().pages[0])[0])
    box = (run.x, run.y - run.ascent, run.x + run.width, run.y + run.descent)
    assert _ink(image, box) > _ink(regular, box) * 1.1


@pytest.mark.interop
def test_second_page_renders_landscape_with_its_text(written, tmp_path):
    for image in (_render_pdfium(written, 1), _render_poppler(written, tmp_path, 1)):
        assert image.width > image.height
        scale = image.width / 297
        left, top, right, bottom = extent(_texts(licence().pages[1])[0])
        region = image.crop((round(left * scale), round(top * scale), round(right * scale),
                             round(bottom * scale))).convert("L").tobytes()
        assert sum(1 for v in region if v < 128) / len(region) > 0.03


@pytest.mark.slow
def test_same_bytes_in_fresh_processes_whatever_the_hash_seed():
    """Set and dict order must not leak into the file: each process hashes strings differently."""
    script = ("import hashlib, random, sys\n"
              "from bench.pdf_speed import licence\n"
              "from pdf.writer import write_pdf\n"
              "sys.stdout.write(hashlib.sha256(write_pdf(licence(random.Random(5), 5))).hexdigest())\n")
    digests = set()
    for seed in ("1", "2", "12345"):
        result = subprocess.run([sys.executable, "-c", script], cwd=REPO, capture_output=True, text=True,
                                env={**os.environ, "PYTHONHASHSEED": seed}, check=True)
        digests.add(result.stdout)
    assert digests == {hashlib.sha256(write_pdf(bench_licence(random.Random(5), 5))).hexdigest()}


_POOL = "".join(sorted(set("".join(chr(c) for c in range(0x20, 0x7F)) + "（）《》、。，：；“”—…·￥"
                           + HANZI[::37])))


@pytest.mark.interop
@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.text(alphabet=_POOL, min_size=1, max_size=30), min_size=1, max_size=6))
def test_any_text_comes_back_out_exactly(lines):
    """Whatever mix of CJK, ASCII, spaces and PDF delimiters a line holds, pdfium reads it as
    written, each character on its line's baseline."""
    page = Page.a4([Text(10, 20 + 15 * i, line, 5, max_width=190) for i, line in enumerate(lines)
                    if line.strip()])
    assume(page.items)
    glyphs = _pdfium_glyphs(write_pdf(Document((page,), doc_id=DOC_ID, created=CREATED)))
    read: dict[float, str] = {}
    for char, _, y in glyphs:
        baseline = round(297 - y / PT_PER_MM, 2)
        read[baseline] = read.get(baseline, "") + char
    # pdfium reports a hyphen that ends a line as U+0002 (its soft-hyphen marker for words
    # broken across lines); the PDF maps that glyph to "-", as pdftotext reads it.
    read = {y: text[:-1] + "-" if text.endswith("\x02") else text for y, text in read.items()}
    assert read == {item.y: item.text for item in _texts(page)}
