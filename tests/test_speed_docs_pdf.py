"""The PDF written directly (pdf.incremental.FileObjects) holds the objects pikepdf makes from the
same builders, in the file syntax PDF/A-2 asks for (ISO 19005-2 §6.1), and it reads back as one
sound revision with our own reader and with qpdf."""

from __future__ import annotations

import io
import re
from datetime import datetime, timedelta, timezone
from decimal import Decimal

import pikepdf
import pytest
from PIL import Image as PILImage

from pages.model import Document, Image, Line, Page, QrCode, Rect, Text
from pdf.fonts import EmbeddedFont, StandardCidFont
from pdf.incremental import FileObjects, Name, PikepdfObjects, Raw, Ref, Stream
from pdf.pdfa import Metadata, pdfa_objects
from pdf.revisions import read_revisions
from pdf.writer import PRODUCER, image_xobject, qr_xobject, write_pdf

CST = timezone(timedelta(hours=8))
PAYLOAD = "HTTP://LOCALHOST:8081/V/" + "M3" * 90


def _png(mode: str, color) -> bytes:
    out = io.BytesIO()
    PILImage.new(mode, (24, 16), color).save(out, "PNG")
    return out.getvalue()


def _jpeg() -> bytes:
    out = io.BytesIO()
    PILImage.new("RGB", (24, 16), (10, 90, 200)).save(out, "JPEG")
    return out.getvalue()


PICTURES = {"alpha": _png("RGBA", (200, 30, 30, 128)), "gray": _png("L", 90), "jpeg": _jpeg()}


def document(**overrides) -> Document:
    first = Page.a4([Text(20, 30, "营业执照 (副本) <A&B> \\", 6, bold=True),
                     Text(190, 50, "统一社会信用代码 91110000MA01ABCD2X", 4, align="right"),
                     Line(20, 60, 190, 60), Rect(20, 70, 50, 30, fill=(230, 230, 250)),
                     Image(20, 120, 24, 16, PICTURES["alpha"], "png"),
                     Image(50, 120, 24, 16, PICTURES["gray"], "png"),
                     Image(80, 120, 24, 16, PICTURES["jpeg"], "jpeg"),
                     QrCode(150, 150, 40, PAYLOAD)])
    second = Page(297, 210, [Text(10, 20, "第二页", 6)])
    fields = dict(pages=(first, second), title="营业执照", author="某市市场监督管理局",
                  doc_id="5f0c2d1e9a8b4c7d8e6f0a1b2c3d4e5f", created=datetime(2026, 5, 20, 10, 30, tzinfo=CST),
                  keywords=("营业执照", "电子证照"), custom={"证照编号": "A&B<1>", "持证主体": "某某有限公司"})
    fields.update(overrides)
    return Document(**fields)


def graph(value, seen: frozenset = frozenset()):
    """A pikepdf object and everything it refers to as comparable values (what a reader sees:
    not object numbers, /Length or the page tree's back pointer)."""
    if isinstance(value, pikepdf.Stream):
        entries = tuple(sorted((str(k), graph(v, seen)) for k, v in value.items() if k != "/Length"))
        return "stream", entries, value.read_raw_bytes()
    if isinstance(value, pikepdf.Dictionary):
        if value.is_indirect and value.objgen in seen:
            return ("seen",)
        seen = seen | {value.objgen} if value.is_indirect else seen
        return "dict", tuple(sorted((str(k), graph(v, seen)) for k, v in value.items() if k != "/Parent"))
    if isinstance(value, pikepdf.Array):
        return "array", tuple(graph(v, seen) for v in value)
    if isinstance(value, pikepdf.Name):
        return "name", str(value)
    if isinstance(value, pikepdf.String):
        return "string", bytes(value)
    if isinstance(value, Decimal):
        return "number", float(value)
    return "value", value


@pytest.fixture(scope="module")
def written() -> bytes:
    return write_pdf(document())


@pytest.fixture(scope="module")
def pdf(written) -> pikepdf.Pdf:
    return pikepdf.open(io.BytesIO(written))


def test_font_is_the_object_pikepdf_makes_from_the_same_builder(pdf):
    chars = "".join(item.text for page in document().pages for item in page.items if isinstance(item, Text))
    made = pikepdf.new()  # kept: its objects live as long as it does
    expected = EmbeddedFont(chars).dictionary(made)
    for page in pdf.pages:
        assert graph(page.Resources.Font.F1) == graph(expected)


def test_pictures_are_the_xobjects_pikepdf_makes(pdf):
    xobjects = pdf.pages[0].Resources.XObject
    made = pikepdf.new()
    expected = [image_xobject(made, PICTURES["alpha"], "png"), image_xobject(made, PICTURES["gray"], "png"),
                image_xobject(made, PICTURES["jpeg"], "jpeg"), qr_xobject(made, PAYLOAD)]
    assert sorted(str(k) for k in xobjects.keys()) == ["/Im1", "/Im2", "/Im3", "/Im4"]
    assert [graph(xobjects[f"/Im{i}"]) for i in range(1, 5)] == [graph(x) for x in expected]
    assert pdf.pages[0].Group.S == "/Transparency"  # the soft mask of the first picture
    assert "/Group" not in pdf.pages[1]


def test_pdfa_parts_are_what_pikepdf_makes(pdf):
    doc = document()
    made = pikepdf.new()
    sink = PikepdfObjects(made)
    catalogue, info = pdfa_objects(sink, Metadata(
        document_id=doc.doc_id, created=doc.created, producer=PRODUCER, title=doc.title, author=doc.author,
        creator=doc.creator, keywords=doc.keywords, custom=doc.custom))
    assert graph(pdf.Root.OutputIntents) == graph(sink.convert(catalogue["OutputIntents"]))
    assert graph(pdf.Root.Metadata) == graph(catalogue["Metadata"])
    assert graph(pdf.trailer.Info) == graph(info)
    assert str(pdf.docinfo[pikepdf.Name("/证照编号")]) == "A&B<1>"
    assert pdf.Root.Lang == "zh-CN" and pdf.Root.ViewerPreferences.DisplayDocTitle is True


def test_file_syntax_pdfa_asks_for(written):
    assert written.startswith(b"%PDF-1.7\n%") and all(b > 127 for b in written[10:14])
    assert written.endswith(b"startxref\n%d\n%%%%EOF\n" % written.rindex(b"xref\n0 "))
    assert written.count(b"%%EOF") == 1 and b"/ObjStm" not in written and b"/XRef" not in written
    xref = written.rindex(b"xref\n0 ")
    count = int(re.match(rb"xref\n0 (\d+)\n", written[xref:]).group(1))
    table = written[xref:].split(b"\n", 2)[2]
    assert table.startswith(b"0000000000 65535 f\r\n")
    for number in range(1, count):
        entry = table[20 * number:20 * number + 20]
        assert re.fullmatch(rb"\d{10} 00000 n\r\n", entry)  # 20 bytes each
        offset = int(entry[:10])
        assert written.startswith(b"%d 0 obj\n" % number, offset)
    trailer = pikepdf.open(io.BytesIO(written)).trailer
    assert int(trailer.Size) == count and len(trailer.ID) == 2 and all(len(bytes(i)) == 16 for i in trailer.ID)
    # every stream: /Length is exactly the bytes between the end of line after "stream" and the
    # end of line before "endstream"
    for match in re.finditer(rb"/Length (\d+) >>\nstream\n", written):
        end = match.end() + int(match.group(1))
        assert written[end:end + 10] == b"\nendstream"


def test_one_sound_revision_for_our_reader_and_for_qpdf(written, pdf):
    revisions = read_revisions(written)
    assert len(revisions) == 1 and not revisions[0].problems and revisions[0].end == len(written)
    assert not pdf.get_warnings() and pdf.check_pdf_syntax() == []
    assert len(pdf.pages) == 2


def test_same_document_same_bytes_and_content_changes_the_second_id(written):
    assert write_pdf(document()) == written
    other = pikepdf.open(io.BytesIO(write_pdf(document(title="另一个"))))
    first = pikepdf.open(io.BytesIO(written)).trailer.ID
    assert bytes(other.trailer.ID[0]) == bytes(first[0]) and bytes(other.trailer.ID[1]) != bytes(first[1])


def test_the_baseline_font_writes_the_same_as_through_pikepdf():
    doc = document()
    written = pikepdf.open(io.BytesIO(write_pdf(doc, font=StandardCidFont)))
    made = pikepdf.new()
    expected = StandardCidFont("营业执照").dictionary(made)
    assert graph(written.pages[0].Resources.Font.F1) == graph(expected)


def test_file_objects_number_in_order_and_write_every_value_kind():
    objects = FileObjects()
    catalogue = objects.reserve()
    stream = objects.indirect(Stream({"Filter": Name("FlateDecode")}, b"x\x9c\x03\x00\x00\x00\x00\x01"))
    pages = objects.indirect({"Type": Name("Pages"), "Kids": [], "Count": 0})
    objects.set(catalogue, {"Type": Name("Catalog"), "Pages": pages, "S": stream, "N": None, "T": True,
                            "R": Raw(b"1.5"), "H": b"\x01\xff", "U": "中", "A": "a(b)", "F": 0.25})
    assert (catalogue, stream, pages) == (Ref(1), Ref(2), Ref(3))
    data = objects.write(b"%PDF-1.7\n%\xbf\xf7\xa2\xfe\n", {"Root": catalogue}, file_id=b"\x00" * 16)
    pdf = pikepdf.open(io.BytesIO(data))
    root = pdf.Root
    assert bytes(root.H) == b"\x01\xff" and str(root.U) == "中" and str(root.A) == "a(b)" and float(root.F) == 0.25
    assert "/N" not in root and root.T is True  # a null entry is an absent one and float(root.R) == 1.5 and root.S.read_bytes() == b""
    assert bytes(pdf.trailer.ID[0]) == b"\x00" * 16 and not pdf.get_warnings()


def test_unknown_values_are_refused():
    objects = FileObjects()
    objects.indirect({1})
    with pytest.raises(TypeError, match="cannot write a set"):
        objects.write(b"%PDF-1.7\n", {})
    with pytest.raises(TypeError, match="cannot make a set"):
        PikepdfObjects(pikepdf.new()).convert({1})
