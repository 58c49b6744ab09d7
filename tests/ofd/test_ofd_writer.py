"""The OFD writer: package layout, XML structure, IDs, determinism, and independent readers."""

from __future__ import annotations

import io
import re
import uuid
from datetime import UTC, date, datetime, timedelta, timezone

import pytest
from fontTools.ttLib import TTFont
from PIL import Image as PILImage

from ofd.content import delta_x, number
from ofd.package import Package
from ofd.reader import read_ofd
from ofd.writer import CHINA_STANDARD_TIME, write_ofd
from ofd.xml import OFD_NS, attr, child, child_text, children, duplicate_ids, parse
from pages.fonts import cjk_face
from pages.model import Document, Image, Line, Page, PageModelError, QrCode, Rect, Text, set_text

QR_PAYLOAD = "https://verify.example.gov.cn/v/1.2.156.3005.2.11100000000013338W001"
ESCAPED = '<&>"名称\'s'
DOC_ID = "5f0c2d1e9a8b4c7d8e6f0a1b2c3d4e5f"
CREATED = datetime(2026, 5, 20, 10, 30, tzinfo=CHINA_STANDARD_TIME)
Q = f"{{{OFD_NS}}}"


def _png() -> bytes:
    out = io.BytesIO()
    PILImage.new("RGB", (30, 20), (200, 30, 30)).save(out, "PNG")
    return out.getvalue()


def _jpeg() -> bytes:
    out = io.BytesIO()
    PILImage.new("RGB", (30, 20), (30, 30, 200)).save(out, "JPEG")
    return out.getvalue()


def licence(**overrides) -> Document:
    first = Page.a4([
        Text(20, 30, "中华人民共和国营业执照", 8, bold=True),
        Text(105, 45, ESCAPED, 5, align="center", color=(200, 0, 0)),
        Text(190, 60, "统一社会信用代码 91110000MA01ABCD2X", 4, align="right"),
        Line(20, 70, 190, 70, width=0.5),
        Rect(20, 80, 80, 40, stroke=(0, 0, 0), fill=(230, 230, 250), line_width=0.8),
        Rect(110, 80, 30, 30, stroke=None, fill=(0, 128, 0)),
        Image(20, 150, 30, 20, _png(), "png"),
        Image(60, 150, 30, 20, _jpeg(), "jpeg"),
        QrCode(150, 150, 40, QR_PAYLOAD),
    ])
    second = Page(297, 210, [Text(10, 20, "第二页 登记机关（盖章）", 6), QrCode(240, 150, 40, QR_PAYLOAD)])
    fields = dict(pages=(first, second), title="营业执照 <副本>", author="某市市场监督管理局",
                  doc_id=DOC_ID, created=CREATED, keywords=("营业执照", "电子证照"),
                  custom={"证照编号": "A&B<1>", "持证主体": "某某有限公司"})
    fields.update(overrides)
    return Document(**fields)


@pytest.fixture(scope="module")
def written() -> bytes:
    return write_ofd(licence())


@pytest.fixture(scope="module")
def package(written) -> Package:
    return Package.open(written)


@pytest.fixture(scope="module")
def parts(package) -> dict:
    return {name: parse(package.read(name), name) for name in package.names if name.endswith(".xml")}


def test_package_entries_in_order(package):
    assert package.names == (
        "OFD.xml",
        "Doc_0/Document.xml",
        "Doc_0/PublicRes.xml",
        "Doc_0/DocumentRes.xml",
        "Doc_0/Pages/Page_0/Content.xml",
        "Doc_0/Pages/Page_1/Content.xml",
        "Doc_0/Res/font_1.ttf",
        "Doc_0/Res/image_1.png",
        "Doc_0/Res/image_2.jpg",
        "Doc_0/Res/image_3.png",
    )


def test_xml_is_utf8_with_declaration_and_ofd_prefix(package, parts):
    for name in parts:
        raw = package.read(name)
        assert raw.startswith(b'<?xml version="1.0" encoding="UTF-8"?>'), name
        assert raw.split(b"\n", 1)[1].startswith(b"<ofd:"), name
        assert b'xmlns:ofd="http://www.ofdspec.org/2016"' in raw, name
        assert parts[name].tag.startswith(Q), name


def test_ofd_xml_doc_info(parts):
    root = parts["OFD.xml"]
    assert root.tag == Q + "OFD" and root.get("Version") == "1.0" and root.get("DocType") == "OFD"
    body = child(root, "DocBody")
    info = child(body, "DocInfo")
    order = [el.tag.removeprefix(Q) for el in info]
    assert order == ["DocID", "Title", "Author", "CreationDate", "Keywords", "Creator", "CreatorVersion",
                     "CustomDatas"]
    assert child_text(info, "DocID") == DOC_ID
    assert child_text(info, "Title") == "营业执照 <副本>"
    assert child_text(info, "Author") == "某市市场监督管理局"
    assert child_text(info, "CreationDate") == "2026-05-20"
    assert child_text(info, "Creator") == "zhengyin"
    assert child_text(info, "CreatorVersion")
    assert [k.text for k in children(child(info, "Keywords"), "Keyword")] == ["营业执照", "电子证照"]
    assert {attr(c, "Name"): c.text for c in children(child(info, "CustomDatas"), "CustomData")} == {
        "证照编号": "A&B<1>", "持证主体": "某某有限公司"}
    assert child_text(body, "DocRoot") == "Doc_0/Document.xml"


def _all_ids(parts) -> list[int]:
    return [int(el.get("ID")) for root in parts.values() for el in root.iter() if el.get("ID") is not None]


def test_ids_are_unique_and_max_unit_id_is_the_highest(parts):
    assert duplicate_ids(*parts.values()) == []
    ids = _all_ids(parts)
    assert len(ids) == len(set(ids))
    common = child(parts["Doc_0/Document.xml"], "CommonData")
    assert int(child_text(common, "MaxUnitID")) == max(ids)
    assert sorted(ids) == list(range(1, max(ids) + 1))  # one ID space, nothing skipped


def test_document_xml(package, parts):
    root = parts["Doc_0/Document.xml"]
    common = child(root, "CommonData")
    assert [el.tag.removeprefix(Q) for el in common] == ["MaxUnitID", "PageArea", "PublicRes", "DocumentRes"]
    assert child_text(child(common, "PageArea"), "PhysicalBox") == "0 0 210 297"
    assert child_text(common, "PublicRes") == "PublicRes.xml"
    assert child_text(common, "DocumentRes") == "DocumentRes.xml"
    pages = children(child(root, "Pages"), "Page")
    assert [p.get("BaseLoc") for p in pages] == ["Pages/Page_0/Content.xml", "Pages/Page_1/Content.xml"]
    for page in pages:
        assert package.resolve(page.get("BaseLoc"), "Doc_0/Document.xml") in package


def _text_objects(parts, page: int) -> list:
    return list(parts[f"Doc_0/Pages/Page_{page}/Content.xml"].iter(Q + "TextObject"))


def test_font_resource_is_a_subset_of_exactly_the_documents_characters(package, parts):
    res = parts["Doc_0/PublicRes.xml"]
    assert res.get("BaseLoc") == "Res"
    (font,) = children(child(res, "Fonts"), "Font")
    assert font.get("FontName") == font.get("FamilyName") == "WenQuanYi Zen Hei"
    path = package.resolve(f"Res/{child_text(font, 'FontFile')}", "Doc_0/PublicRes.xml")
    assert path == "Doc_0/Res/font_1.ttf"
    embedded = TTFont(io.BytesIO(package.read(path)))
    used = {ord(c) for page in (0, 1) for obj in _text_objects(parts, page)
            for c in child(obj, "TextCode").text}
    assert set(embedded.getBestCmap()) == used
    for page in (0, 1):
        assert {obj.get("Font") for obj in _text_objects(parts, page)} == {font.get("ID")}


def test_pictures_are_stored_once_and_referenced(package, parts):
    res = parts["Doc_0/DocumentRes.xml"]
    medias = {m.get("ID"): m for m in children(child(res, "MultiMedias"), "MultiMedia")}
    assert [(m.get("Type"), m.get("Format")) for m in medias.values()] == [
        ("Image", "PNG"), ("Image", "JPEG"), ("Image", "PNG")]
    for media in medias.values():
        assert f"Doc_0/Res/{child_text(media, 'MediaFile')}" in package
    refs = [obj.get("ResourceID") for page in (0, 1)
            for obj in parts[f"Doc_0/Pages/Page_{page}/Content.xml"].iter(Q + "ImageObject")]
    assert len(refs) == 4 and set(refs) == set(medias)  # the QR code on both pages is one resource
    assert package.read("Doc_0/Res/image_1.png") == _png()  # pictures keep their bytes
    assert package.read("Doc_0/Res/image_2.jpg") == _jpeg()


def test_text_objects_carry_every_glyph_advance(parts):
    face = cjk_face()
    page = licence().pages[0]
    texts = [item for item in page.items if isinstance(item, Text)]
    objects = _text_objects(parts, 0)
    assert len(objects) == len(texts)
    for item, obj in zip(texts, objects, strict=True):
        run = set_text(item)
        code = child(obj, "TextCode")
        assert code.text == item.text
        x, y, w, h = (float(v) for v in obj.get("Boundary").split())
        deltas = [float(v) for v in code.get("DeltaX").split()]
        assert len(deltas) == len(item.text) - 1
        start = x + float(code.get("X"))
        assert start == pytest.approx(run.x, abs=1e-3)
        assert y + float(code.get("Y")) == pytest.approx(item.y, abs=1e-3)  # on the baseline
        last = face.advance(item.text[-1], run.size)
        assert start + sum(deltas) + last == pytest.approx(run.x + run.width, abs=2e-3)
        assert float(obj.get("Size")) == pytest.approx(run.size, abs=1e-3)
        assert x >= 0 and y >= 0 and x + w <= 210 and y + h <= 297
        assert child(obj, "FillColor").get("Value") == " ".join(map(str, item.color))
    bold = objects[0]
    assert bold.get("Weight") == "700" and bold.get("Stroke") == "true"
    assert child(bold, "StrokeColor").get("Value") == "0 0 0"
    assert objects[1].get("Weight") is None


def test_special_characters_survive(package, parts):
    raw = package.read("Doc_0/Pages/Page_0/Content.xml")
    assert b"&lt;&amp;&gt;" in raw
    assert child(_text_objects(parts, 0)[1], "TextCode").text == ESCAPED


def test_paths_and_images(parts):
    layer = child(child(parts["Doc_0/Pages/Page_0/Content.xml"], "Content"), "Layer")
    assert layer.get("Type") == "Body"
    line, framed, filled = layer.iter(Q + "PathObject")
    assert line.get("Boundary") == "19.75 69.75 170.5 0.5" and line.get("LineWidth") == "0.5"
    assert child_text(line, "AbbreviatedData") == "M 0.25 0.25 L 170.25 0.25"
    assert [el.tag.removeprefix(Q) for el in framed] == ["StrokeColor", "FillColor", "AbbreviatedData"]
    assert framed.get("Fill") == "true" and framed.get("Boundary") == "19.6 79.6 80.8 40.8"
    assert child_text(framed, "AbbreviatedData") == "M 0.4 0.4 L 80.4 0.4 L 80.4 40.4 L 0.4 40.4 C"
    assert filled.get("Stroke") == "false" and child(filled, "StrokeColor") is None
    assert child(filled, "FillColor").get("Value") == "0 128 0"
    png, _jpeg_object, qr = layer.iter(Q + "ImageObject")
    assert (png.get("Boundary"), png.get("CTM")) == ("20 150 30 20", "30 0 0 20 0 0")
    assert (qr.get("Boundary"), qr.get("CTM")) == ("150 150 40 40", "40 0 0 40 0 0")


def test_page_area_only_where_the_size_differs(parts):
    assert child(parts["Doc_0/Pages/Page_0/Content.xml"], "Area") is None
    area = child(parts["Doc_0/Pages/Page_1/Content.xml"], "Area")
    assert child_text(area, "PhysicalBox") == "0 0 297 210"


def test_same_document_same_bytes(written):
    assert write_ofd(licence()) == written


def test_fresh_doc_id_and_creation_date_when_absent(written):
    first = Package.open(write_ofd(licence(doc_id=None, created=None)))
    second = Package.open(write_ofd(licence(doc_id=None, created=None)))
    ids = [child_text(child(child(parse(p.read("OFD.xml"), "OFD.xml"), "DocBody"), "DocInfo"), "DocID")
           for p in (first, second)]
    assert ids[0] != ids[1]
    for value in ids:
        assert re.fullmatch(r"[0-9a-f]{32}", value) and uuid.UUID(value).version == 4
    info = child(child(parse(first.read("OFD.xml"), "OFD.xml"), "DocBody"), "DocInfo")
    today = datetime.now(timezone(timedelta(hours=8))).date()
    assert date.fromisoformat(child_text(info, "CreationDate")) in (today, today - timedelta(days=1))


def test_creation_date_is_on_beijings_clock():
    evening_utc = datetime(2026, 5, 19, 20, 0, tzinfo=UTC)
    info = child(child(parse(Package.open(write_ofd(licence(created=evening_utc))).read("OFD.xml"), "o"),
                       "DocBody"), "DocInfo")
    assert child_text(info, "CreationDate") == "2026-05-20"
    naive = Package.open(write_ofd(licence(created=datetime(2026, 5, 19, 23, 59))))
    info = child(child(parse(naive.read("OFD.xml"), "o"), "DocBody"), "DocInfo")
    assert child_text(info, "CreationDate") == "2026-05-19"


def test_documents_without_text_or_pictures_have_no_empty_resources():
    shapes = Package.open(write_ofd(Document((Page.a4([Rect(10, 10, 20, 20)]),), doc_id=DOC_ID,
                                             created=CREATED)))
    assert shapes.names == ("OFD.xml", "Doc_0/Document.xml", "Doc_0/Pages/Page_0/Content.xml")
    common = child(parse(shapes.read("Doc_0/Document.xml"), "Document.xml"), "CommonData")
    assert child(common, "PublicRes") is None and child(common, "DocumentRes") is None
    blank = Package.open(write_ofd(Document((Page.a4(),), doc_id=DOC_ID, created=CREATED)))
    assert child_text(child(parse(blank.read("Doc_0/Document.xml"), "d"), "CommonData"), "MaxUnitID") == "2"


def test_only_documents_are_written():
    with pytest.raises(PageModelError, match=r"needs a pages\.model\.Document"):
        write_ofd(Page.a4())  # type: ignore[arg-type]


def test_numbers_are_compact():
    assert [number(v) for v in (12.0, 0.1 + 0.2, 1 / 3, -0.0001, 2.5, 1e-9, 210)] == [
        "12", "0.3", "0.333", "0", "2.5", "0", "210"]


def test_delta_x_rounding_does_not_accumulate():
    advances = (10 / 3,) * 31
    deltas = [float(v) for v in delta_x(advances).split()]
    assert len(deltas) == 30
    assert sum(deltas) == pytest.approx(100, abs=1e-9)
    assert delta_x((4.0,)) is None


def test_our_reader_reads_it_back(written):
    ofd = read_ofd(written)
    body = ofd.bodies[0]
    assert body.info.doc_id == DOC_ID and body.info.title == "营业执照 <副本>"
    assert body.document.physical_box == (0.0, 0.0, 210.0, 297.0)
    assert len(body.document.pages) == 2
    first, second = ofd.text()
    for item in licence().pages[0].items:
        if isinstance(item, Text):
            assert item.text in first
    assert "第二页 登记机关（盖章）" in second


@pytest.mark.interop
def test_the_embedded_qr_code_decodes():
    zxingcpp = pytest.importorskip("zxingcpp")
    package = Package.open(write_ofd(licence()))
    image = PILImage.open(io.BytesIO(package.read("Doc_0/Res/image_3.png")))
    assert [r.text for r in zxingcpp.read_barcodes(image.convert("L"))] == [QR_PAYLOAD]


# -- an independent reader: easyofd ---------------------------------------------------------------

@pytest.fixture
def easyofd(monkeypatch, tmp_path):
    """easyofd, quiet, working in a scratch directory (it writes embedded fonts to the cwd)."""
    module = pytest.importorskip("easyofd")
    from loguru import logger

    logger.disable("easyofd")
    monkeypatch.chdir(tmp_path)
    return module


@pytest.mark.interop
def test_easyofd_reads_pages_and_text(easyofd, written):
    reader = easyofd.OFD()
    reader.read(written, fmt="binary")
    (doc,) = reader.data
    assert doc["default_page_size"] == [0.0, 0.0, 210.0, 297.0]
    assert doc["page_size"][1] == [0.0, 0.0, 297.0, 210.0]
    assert len(doc["page_id_map"]) == 2
    texts = [[t["text"] for t in doc["page_info"][page]["text_list"]] for page in (0, 1)]
    expected = [[i.text for i in p.items if isinstance(i, Text)] for p in licence().pages]
    assert texts == expected
    font = next(iter(doc["fonts"].values()))
    assert font["FontFile"] == "font_1.ttf" and font["font_b64"]


@pytest.mark.interop
def test_easyofd_renders_text_and_qr_where_we_put_them(easyofd, written):
    """easyofd draws text only with a reportlab font named 宋体; we register our embedded
    subset under that name, so the text it draws comes from the font inside our package."""
    zxingcpp = pytest.importorskip("zxingcpp")
    from reportlab.pdfbase import pdfmetrics
    from reportlab.pdfbase.ttfonts import TTFont as ReportlabFont

    embedded = Package.open(written).read("Doc_0/Res/font_1.ttf")
    pdfmetrics.registerFont(ReportlabFont("宋体", io.BytesIO(embedded)))
    reader = easyofd.OFD()
    reader.read(written, fmt="binary")
    first = reader.to_jpg()[0].convert("L")
    scale = first.width / 210

    def ink(box) -> float:
        left, top, right, bottom = (round(v * scale) for v in box)
        region = first.crop((left, top, right, bottom)).tobytes()
        return sum(1 for v in region if v < 128) / len(region)

    for item in licence().pages[0].items:
        if isinstance(item, Text):
            run = set_text(item)
            assert ink((run.x, run.y - run.ascent, run.x + run.width, run.y + run.descent)) > 0.05, item.text
    assert ink((20, 180, 140, 280)) == 0  # below everything: blank
    qr = first.crop(tuple(round(v * scale) for v in (145, 145, 195, 195)))
    assert [r.text for r in zxingcpp.read_barcodes(qr)] == [QR_PAYLOAD]

