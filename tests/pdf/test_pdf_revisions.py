"""pdf.revisions and pdf.syntax: revisions, xref sections and raw objects read from the bytes.

Files come from pikepdf (tables, xref streams with PNG predictors, object streams,
linearized), from pdf.signing (incremental updates of each kind) and by hand, for what no
library writes on purpose: wrong offsets, /Prev loops, updates that re-point objects into
signed bytes, hybrid sections.
"""

from __future__ import annotations

import io
import re

import pikepdf
import pytest

from pdf.errors import PdfFormatError
from pdf.revisions import (
    COMPRESSED,
    FREE,
    IN_USE,
    entry_as_of,
    object_as_of,
    open_revision,
    read_revisions,
    revision_ending_at,
)
from pdf.signing import sign_pdf
from pdf.syntax import MAX_DEPTH, Name, PdfDict, PdfString, Ref, Scanner, read_object_at
from support.pki import make_pki

PKI = make_pki()
CONTENT = b"0 0 1 rg 100 100 200 200 re f"


def pikepdf_file(*, object_streams: bool = False, linearize: bool = False, pages: int = 2) -> bytes:
    pdf = pikepdf.new()
    for _ in range(pages):
        pdf.add_blank_page(page_size=(595, 842))
        pdf.pages[-1].Contents = pdf.make_stream(CONTENT)
    out = io.BytesIO()
    mode = pikepdf.ObjectStreamMode.generate if object_streams else pikepdf.ObjectStreamMode.disable
    pdf.save(out, object_stream_mode=mode, linearize=linearize)
    return out.getvalue()


def sign(data: bytes) -> bytes:
    return sign_pdf(data, signer=PKI.signer_key, certificate=PKI.signer.dump(), chain=[PKI.root.dump()])


def by_hand(objects: list[tuple[int, bytes]], *, trailer: bytes = b"", offsets: dict[int, int] | None = None,
            eol: bytes = b"\n") -> bytes:
    out = bytearray(b"%PDF-1.7\n")
    where: dict[int, int] = {}
    for number, body in objects:
        where[number] = len(out)
        out += b"%d 0 obj\n%s\nendobj\n" % (number, body)
    where.update(offsets or {})
    size = max(where) + 1
    xref = len(out)
    out += b"xref\n0 %d\n0000000000 65535 f\r\n" % size
    for number in range(1, size):
        out += b"%010d 00000 n\r\n" % where[number] if number in where else b"0000000000 65535 f\r\n"
    out += b"trailer\n<< /Size %d /Root 1 0 R %s>>\nstartxref\n%d\n%%%%EOF" % (size, trailer, xref) + eol
    return bytes(out)


BASIC = [(1, b"<< /Type /Catalog /Pages 2 0 R >>"), (2, b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>"),
         (3, b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 595 842] >>")]


def assert_entries_point_at_their_objects(data: bytes, revision) -> None:
    for number, entry in revision.entries.items():
        if entry.kind == IN_USE:
            assert re.match(rb"%d %d obj" % (number, entry.generation), data[entry.offset:entry.offset + 20])


# ---- files as libraries write them ------------------------------------------------------------
def test_one_revision_with_a_table():
    data = pikepdf_file()
    (revision,) = read_revisions(data)
    assert (revision.number, revision.start, revision.end, revision.kind) == (1, 0, len(data), "table")
    with pikepdf.open(io.BytesIO(data)) as pdf:
        assert revision.defined == {o.objgen[0] for o in pdf.objects}
    assert revision.problems == ()
    assert revision.trailer["Root"] == Ref(1, 0)
    assert_entries_point_at_their_objects(data, revision)


def test_xref_stream_with_predictor_and_object_streams():
    data = pikepdf_file(object_streams=True)
    assert b"/Predictor" in data or b"/DecodeParms" in data
    (revision,) = read_revisions(data)
    assert revision.kind == "stream" and revision.problems == ()
    kinds = {e.kind for e in revision.entries.values()}
    assert COMPRESSED in kinds and IN_USE in kinds
    with pikepdf.open(io.BytesIO(data)) as pdf:
        assert {o.objgen[0] for o in pdf.objects} <= revision.defined
        pages = {p.obj.objgen[0] for p in pdf.pages}
    assert all(revision.entries[n].kind == COMPRESSED for n in pages)  # pages live in an object stream


def test_linearized_file_is_one_revision_of_two_sections():
    data = pikepdf_file(linearize=True)
    (revision,) = read_revisions(data)
    assert len(revision.sections) == 2 and revision.end == len(data)
    assert revision.sections[0] < revision.sections[1]  # the first-page section is the newest
    assert revision.problems == ()


@pytest.mark.parametrize("object_streams", [False, True], ids=["table", "stream"])
def test_signed_twice_gives_three_revisions_back_to_back(object_streams):
    original = pikepdf_file(object_streams=object_streams)
    once = sign(original)
    twice = sign(once)
    revisions = read_revisions(twice)
    assert [r.number for r in revisions] == [1, 2, 3]
    assert [r.end for r in revisions] == [len(original), len(once), len(twice)]
    assert [r.start for r in revisions] == [0, len(original), len(once)]
    assert revisions[1].kind == revisions[2].kind == ("stream" if object_streams else "table")
    for revision in revisions:
        assert revision.problems == ()
        assert_entries_point_at_their_objects(twice, revision)
    with pikepdf.open(io.BytesIO(twice)) as pdf:
        second = pdf.Root.AcroForm.Fields[1].V.objgen[0]
        root = pdf.Root.objgen[0]
    assert second in revisions[2].defined and second not in revisions[1].defined
    assert root in revisions[1].defined  # the catalogue gains /AcroForm with the first signature
    assert revision_ending_at(revisions, len(once)) is revisions[1]
    assert revision_ending_at(revisions, len(once) - 1) is None


def test_open_revision_shows_the_document_as_it_was():
    once = sign(pikepdf_file())
    revisions = read_revisions(once)
    with open_revision(once, revisions[0]) as before, open_revision(once, revisions[1]) as after:
        assert "/AcroForm" not in before.Root and "/AcroForm" in after.Root


def test_entry_and_object_as_of():
    once = sign(pikepdf_file())
    revisions = read_revisions(once)
    rev, entry = entry_as_of(revisions, 1, 2)
    assert rev.number == 2 and entry.kind == IN_USE
    assert entry_as_of(revisions, 1, 1)[0].number == 1
    assert entry_as_of(revisions, 10_000, 2) is None
    rev, obj = object_as_of(once, revisions, Ref(1, 0), 1)
    assert isinstance(obj.value, PdfDict) and "AcroForm" not in obj.value
    with pytest.raises(PdfFormatError, match="generation"):
        object_as_of(once, revisions, Ref(1, 3), 2)


def test_end_of_line_after_eof_belongs_to_the_revision():
    for eol in (b"\r\n", b"\n", b"\r", b""):
        data = by_hand(BASIC, eol=eol)
        (revision,) = read_revisions(data)
        assert revision.end == len(data), eol


def test_trailing_bytes_are_not_part_of_any_revision():
    data = by_hand(BASIC)
    (revision,) = read_revisions(data + b"\n\n  ")
    assert revision.end == len(data)


# ---- a hybrid-reference file ------------------------------------------------------------------
def _hybrid(conflict: bool = False) -> bytes:
    font = b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>"
    header = b"5 0 "
    objstm = b"<< /Type /ObjStm /N 1 /First %d /Length %d >>\nstream\n%s%s\nendstream" % (
        len(header), len(header) + len(font), header, font)
    page = b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 595 842] /Resources << /Font << /F1 5 0 R >> >> >>"
    out = bytearray(b"%PDF-1.5\n")
    offsets = {}
    for number, body in [(1, BASIC[0][1]), (2, BASIC[1][1]), (3, page), (6, objstm)]:
        offsets[number] = len(out)
        out += b"%d 0 obj\n%s\nendobj\n" % (number, body)
    rows = b"\x02" + (6).to_bytes(4, "big") + b"\x00\x00"
    if conflict:
        rows += b"\x01" + offsets[2].to_bytes(4, "big") + b"\x00\x00"  # says object 3 is where 2 is
    offsets[7] = len(out)
    index = b"[5 1 3 1]" if conflict else b"[5 1]"
    out += b"7 0 obj\n<< /Type /XRef /Size 8 /W [1 4 2] /Index %s /Length %d >>\n" % (index, len(rows))
    out += b"stream\n%s\nendstream\nendobj\n" % rows
    xref = len(out)
    out += b"xref\n0 5\n0000000000 65535 f\r\n"  # object 5 is left to the /XRefStm, as Word writes it
    for number in (1, 2, 3, 4, None, 6, 7):
        if number is None:
            out += b"6 2\n"
        else:
            out += b"%010d 00000 n\r\n" % offsets[number] if number in offsets else b"0000000000 00000 f\r\n"
    out += b"trailer\n<< /Size 8 /Root 1 0 R /XRefStm %d >>\nstartxref\n%d\n%%%%EOF\n" % (offsets[7], xref)
    return bytes(out)


def test_hybrid_file_reads_the_stream_entries():
    data = _hybrid()
    (revision,) = read_revisions(data)
    assert revision.kind == "hybrid" and revision.problems == ()
    assert revision.entries[5].kind == COMPRESSED and revision.entries[5].stream == 6
    with pikepdf.open(io.BytesIO(data)) as pdf:  # a hybrid-aware reader sees the font
        assert pdf.pages[0].Resources.Font.F1.BaseFont == "/Helvetica"


def test_hybrid_file_whose_table_and_stream_disagree_is_flagged():
    (revision,) = read_revisions(_hybrid(conflict=True))
    assert any("object 3" in p and "readers would disagree" in p for p in revision.problems)


# ---- flaws a reader survives and a verifier reports ---------------------------------------------
def test_offset_that_does_not_hold_its_object():
    data = by_hand(BASIC, offsets={3: 9})  # object 3's entry points at object 1
    (revision,) = read_revisions(data)
    assert any("object 3 0" in p and "'1 0 obj' begins" in p for p in revision.problems)


def test_entry_past_size():
    data = by_hand(BASIC)
    data = data.replace(b"/Size 4", b"/Size 3")
    (revision,) = read_revisions(data)
    assert any("past the trailer's /Size 3" in p for p in revision.problems)


def _xref_only(data: bytes, entries: bytes, extra: bytes = b"") -> bytes:
    revisions = read_revisions(data)
    out = bytearray(data) + extra
    xref = len(out)
    out += b"xref\n" + entries + b"trailer\n<< /Size 10 /Root 1 0 R /Prev %d >>\nstartxref\n%d\n%%%%EOF\n" % (
        revisions[-1].sections[0], xref)
    return bytes(out)


def test_update_that_re_points_an_object_into_the_signed_bytes():
    data = by_hand([*BASIC, (4, b"(hidden)")])
    hidden_at = data.index(b"4 0 obj")
    attacked = _xref_only(data, b"3 1\n%010d 00000 n\r\n" % hidden_at)
    revisions = read_revisions(attacked)
    assert len(revisions) == 2
    assert any("its xref entry points at offset" in p for p in revisions[1].problems)  # 3 -> '4 0 obj'
    attacked = _xref_only(data, b"4 1\n%010d 00000 n\r\n" % hidden_at)
    (problem,) = read_revisions(attacked)[1].problems
    assert "re-pointed to offset" in problem and "inside revision 1" in problem


def test_update_that_re_points_an_object_into_an_old_object_stream():
    data = pikepdf_file(object_streams=True)
    (revision,) = read_revisions(data)
    compressed = next(e for e in revision.entries.values() if e.kind == COMPRESSED)
    row = b"\x02" + compressed.stream.to_bytes(4, "big") + b"\x00\x00"
    out = bytearray(data)
    at = len(out)
    rows = row + b"\x01" + len(data).to_bytes(4, "big") + b"\x00\x00"  # object 1 stays; 99 is this stream
    out += b"99 0 obj\n<< /Type /XRef /Size 100 /W [1 4 2] /Index [1 1 99 1] /Root 1 0 R /Prev %d " % (
        revision.sections[0]) + b"/Length %d >>\n" % len(rows)
    out += b"stream\n%s\nendstream\nendobj\n" % rows
    out += b"startxref\n%d\n%%%%EOF\n" % at
    revisions = read_revisions(bytes(out))
    assert any("object 1 is re-pointed into object stream" in p for p in revisions[1].problems)


# ---- no chain to walk: PdfFormatError -----------------------------------------------------------
@pytest.mark.parametrize("data", [b"", b"hello", b"%PDF-1.7\n", b"\x00" * 4096,
                                  b"%PDF-1.7\nstartxref\n%%EOF"],
                         ids=["empty", "text", "header-only", "zeros", "no-number"])
def test_not_a_pdf(data):
    with pytest.raises(PdfFormatError):
        read_revisions(data)


def test_no_header():
    data = by_hand(BASIC)
    with pytest.raises(PdfFormatError, match="header"):
        read_revisions(b"x" * 2000 + data[9:])


def test_truncated():
    data = by_hand(BASIC)
    for cut in (10, len(data) // 2, len(data) - 30):
        with pytest.raises(PdfFormatError):
            read_revisions(data[:cut])


def test_startxref_pointing_at_nothing():
    data = by_hand(BASIC)
    bad = re.sub(rb"startxref\n\d+", b"startxref\n12", data)
    with pytest.raises(PdfFormatError, match="neither 'xref' nor an xref stream"):
        read_revisions(bad)
    with pytest.raises(PdfFormatError, match="outside"):
        read_revisions(re.sub(rb"startxref\n\d+", b"startxref\n999999", data))


def test_prev_loop():
    data = by_hand(BASIC)
    xref = int(re.search(rb"startxref\n(\d+)", data).group(1))
    looped = data.replace(b"/Root 1 0 R ", b"/Root 1 0 R /Prev %d " % xref)
    with pytest.raises(PdfFormatError, match="loops"):
        read_revisions(looped)


def test_prev_that_is_not_an_offset():
    data = by_hand(BASIC).replace(b"/Root 1 0 R ", b"/Root 1 0 R /Prev (x) ")
    with pytest.raises(PdfFormatError, match="/Prev"):
        read_revisions(data)


def test_startxref_back_into_the_original_leaves_the_rest_outside_every_revision():
    once = sign(pikepdf_file())
    revisions = read_revisions(once)
    out = once + b"startxref\n%d\n%%%%EOF\n" % revisions[0].sections[0]
    (only,) = read_revisions(out)
    assert only.end == revisions[0].end  # what follows belongs to no revision: verification reports it


def test_update_whose_section_lies_inside_the_revision_it_updates():
    """A newer section placed before the one it updates: only a linearized original may do that."""
    data = by_hand(BASIC)
    main = int(re.search(rb"startxref\n(\d+)", data).group(1))
    early = b"xref\n0 1\n0000000000 65535 f\r\ntrailer\n<< /Size 4 /Root 1 0 R /Prev %010d >>\n"
    at = data.index(b"3 0 obj")
    shifted = len(early % 0)
    body = data[:at] + early % (main + shifted) + data[at:]
    def moved(m):
        offset = int(m.group(1))
        return b"%010d 00000 n" % (offset + shifted if offset >= at else offset)

    body = re.sub(rb"(\d{10}) 00000 n", moved, body)
    body = re.sub(rb"startxref\n\d+", b"startxref\n%d" % at, body)
    with pytest.raises(PdfFormatError, match="comes before the section"):
        read_revisions(body)


def test_absurd_subsection():
    data = by_hand(BASIC).replace(b"xref\n0 4\n", b"xref\n0 99999999\n")
    with pytest.raises(PdfFormatError, match="impossible"):
        read_revisions(data)


# ---- pdf.syntax ---------------------------------------------------------------------------------
def test_values_and_spans():
    raw = (b"<< /A 1 /B -2.5 /C true /D null /E /N#61me /F (a\\(b\\)\\n\\101) /G <4142 4> /H [1 0 R 2] "
           b"/I << >> >>")
    value = Scanner(raw).read_value()
    assert value == {"A": 1, "B": -2.5, "C": True, "D": None, "E": "Name", "F": b"a(b)\nA", "G": b"AB@",
                     "H": [Ref(1, 0), 2], "I": {}}
    assert isinstance(value["E"], Name) and isinstance(value["F"], PdfString) and not value["F"].hex
    assert value["G"].hex
    start, end = value.spans["H"]
    assert raw[start:end] == b"[1 0 R 2]"
    assert value.duplicates == []


def test_duplicate_keys_are_recorded():
    value = Scanner(b"<< /Contents <00> /Contents <01> >>").read_value()
    assert value.duplicates == ["Contents"] and value["Contents"] == b"\x01"


@pytest.mark.parametrize(("raw", "message"), [
    (b"(unterminated", "unterminated literal"), (b"<41", "unterminated hex"),
    (b"<4x>", "neither a hex digit"),
    (b"<< 1 2 >>", "key must be a name"), (b"foo", "unexpected keyword"), (b"[" * (MAX_DEPTH + 2), "deeper"),
    (b"", "end of data"), (b")", "unexpected"),
])
def test_malformed_values(raw, message):
    with pytest.raises(PdfFormatError, match=message):
        Scanner(raw).read_value()


def test_read_object_at_with_a_stream():
    data = b"junk 7 0 obj\n<< /Length 5 >>\nstream\r\nhello\nendstream\nendobj\n"
    obj = read_object_at(data, 5)
    assert (obj.number, obj.generation) == (7, 0) and data[obj.stream[0]:obj.stream[1]] == b"hello"
    assert data[obj.end - 6:obj.end] == b"endobj"
    with pytest.raises(PdfFormatError, match="does not end at 'endstream'"):
        read_object_at(data.replace(b"/Length 5", b"/Length 3"), 5)
    with pytest.raises(PdfFormatError, match="no 'N G obj'"):
        read_object_at(data, 0)
    indirect = data.replace(b"/Length 5", b"/Length 9 0 R")
    assert read_object_at(indirect, 5).stream is not None  # found by its endstream


def test_free_entries_are_recorded():
    data = by_hand(BASIC)
    (revision,) = read_revisions(data)
    assert revision.entries[0].kind == FREE and 0 not in revision.freed
