"""pdf.verification: the evidence of documents signed by pdf.signing, and what it refuses.

Signed documents pass with every check named and the evidence filled in (format, revision,
certificates, signing time); permitted updates (further signatures, certification levels,
form filling, identical rewrites, unreferenced objects) keep them passing; the modification
rules refuse what they must and name it; pyHanko's own difference analysis agrees on the
permitted/refused split for the same files. Attacks are in test_pdf_attacks.py.
"""

from __future__ import annotations

import io
from datetime import UTC, datetime, timedelta, timezone

import pikepdf
import pytest

from ca.verdict import NOT_COVERED, TOTAL_FAILED, TOTAL_PASSED, verdict
from pages.model import Document, Page, Rect, Text
from pdf.errors import PdfFormatError
from pdf.incremental import IncrementalUpdate, Name, Ref, Stream
from pdf.revisions import read_revisions
from pdf.signing import sign_pdf
from pdf.verification import PADES, PKCS7, examine_pdf, read_pdf_date
from pdf.writer import write_pdf
from support.pki import make_pki

PKI = make_pki()
CST = timezone(timedelta(hours=8))
WHEN = datetime(2025, 3, 1, 9, 30, tzinfo=CST)
CHECKS = ["format", "byte-range", "algorithm", "signer-certificate-present", "signing-certificate",
          "content-type", "data-hash", "signature", "modifications"]


def sign(data: bytes, **options) -> bytes:
    options.setdefault("time", WHEN)
    return sign_pdf(data, signer=PKI.signer_key, certificate=PKI.signer.dump(), chain=[PKI.root.dump()],
                    **options)


def original(*, object_streams: bool = False, form_field: bool = False) -> bytes:
    pdf = pikepdf.new()
    pdf.add_blank_page(page_size=(595, 842))
    page = pdf.pages[0]
    page.Contents = pdf.make_stream(b"BT /F1 24 Tf 72 700 Td (Licence) Tj ET")
    N = pikepdf.Name
    page.Resources = pikepdf.Dictionary(Font=pikepdf.Dictionary(F1=pdf.make_indirect(pikepdf.Dictionary(
        Type=N.Font, Subtype=N.Type1, BaseFont=N.Helvetica))))
    if form_field:
        field = pdf.make_indirect(pikepdf.Dictionary(
            FT=N.Tx, T=pikepdf.String("holder"), Type=N.Annot, Subtype=N.Widget,
            Rect=[72, 600, 300, 630], F=4, P=page.obj))
        page.Annots = pdf.make_indirect(pikepdf.Array([field]))
        pdf.Root.AcroForm = pdf.make_indirect(pikepdf.Dictionary(Fields=[field]))
    out = io.BytesIO()
    mode = pikepdf.ObjectStreamMode.generate if object_streams else pikepdf.ObjectStreamMode.disable
    pdf.save(out, object_stream_mode=mode)
    return out.getvalue()


def update(data: bytes, edit) -> bytes:
    with pikepdf.open(io.BytesIO(data)) as pdf:
        upd = IncrementalUpdate(data, read_revisions(data))
        edit(pdf, upd)
        out, _ = upd.write()
    return out


def rewrite(obj, **changes) -> dict:
    values = {str(k): v for k, v in obj.items()}
    values.update({"/" + k: v for k, v in changes.items()})
    return values


def check(signature, name: str):
    return next(c for c in signature.checks if c.name == name)


def passes(signature) -> bool:
    return verdict(signature.checks) == (TOTAL_PASSED, None)


def fill_holder(pdf, upd, value: str = "张三"):
    field = next(f for f in pdf.Root.AcroForm.Fields if f.get("/FT") == "/Tx")
    ap = upd.new_ref()
    upd.put(ap, Stream({"Type": Name("XObject"), "Subtype": Name("Form"), "BBox": [0, 0, 228, 30]},
                       b"BT /F1 12 Tf 2 10 Td (Zhang San) Tj ET"))
    upd.put(Ref(*field.objgen), rewrite(field, V=value, AP={"N": ap}))


# ---- what a signed document's evidence says ---------------------------------------------------
@pytest.mark.parametrize("object_streams", [False, True], ids=["table", "xref-stream"])
def test_signed_document_passes_with_every_check_named(object_streams):
    data = sign(original(object_streams=object_streams), reason="核发", location="福州")
    evidence = examine_pdf(data)
    (signature,) = evidence.signatures
    assert [c.name for c in signature.checks] == CHECKS
    assert passes(signature), [c for c in signature.checks if not c.ok]
    assert signature.field_name == "Signature1" and signature.format == PKCS7
    assert signature.signer_certificate == PKI.signer.dump()
    assert PKI.root.dump() in signature.certificates
    assert signature.signing_time == WHEN
    assert (signature.revision, signature.covered_to) == (2, len(data))
    assert (signature.reason, signature.location, signature.docmdp) == ("核发", "福州", None)
    assert [r.number for r in evidence.revisions] == [1, 2]
    (coverage,) = evidence.checks
    assert coverage.name == "coverage" and coverage.ok


def test_licence_pdf_from_the_writer_with_a_visible_seal():
    from seals.picture import seal_image

    picture = seal_image("示例市市场监督管理局", "电子证照专用章")
    page = Page.a4([Text(20, 40, "中华人民共和国 营业执照", 8), Rect(15, 20, 180, 250)])
    document = Document(pages=(page,), title="营业执照")
    data = sign(write_pdf(document), appearance_png=picture.png)
    (signature,) = examine_pdf(data).signatures
    assert passes(signature), [c for c in signature.checks if not c.ok]


def test_cades_subfilter_is_pades_b():
    (signature,) = examine_pdf(sign(original(), subfilter="ETSI.CAdES.detached")).signatures
    assert signature.format == PADES and passes(signature)


def test_accepts_bytearray_and_memoryview():
    data = sign(original())
    for form in (bytearray(data), memoryview(data)):
        assert passes(examine_pdf(form).signatures[0])


def test_unsigned_document_has_no_signature_evidence():
    data = original()
    evidence = examine_pdf(data)
    assert evidence.signatures == () and evidence.checks == () and len(evidence.revisions) == 1
    # a form field that is a signature field but unsigned is not a signature either
    empty = update(data, lambda pdf, upd: upd.put(Ref(*pdf.Root.objgen), rewrite(pdf.Root, AcroForm={
        "Fields": [], "SigFlags": 0})))
    assert examine_pdf(empty).signatures == ()


@pytest.mark.parametrize("data", [b"", b"not a pdf", b"%PDF-1.7\n" + b"\x00" * 100],
                         ids=["empty", "text", "header-and-zeros"])
def test_garbage_is_a_format_error(data):
    with pytest.raises(PdfFormatError):
        examine_pdf(data)


def test_truncated_signed_document_is_a_format_error():
    data = sign(original())
    with pytest.raises(PdfFormatError):
        examine_pdf(data[:-40])


# ---- sequences, certification and form filling -----------------------------------------------
def test_three_signatures_each_judged_on_what_followed_it():
    data = sign(sign(sign(original()), reason="second"), reason="third")
    evidence = examine_pdf(data)
    assert [s.revision for s in evidence.signatures] == [2, 3, 4]
    assert all(passes(s) for s in evidence.signatures)
    first = check(evidence.signatures[0], "modifications").detail
    assert "2 later revision(s)" in first and "'Signature2'" in first and "'Signature3'" in first


def test_certification_then_approval():
    data = sign(sign(original(), certify=2), reason="approval")
    evidence = examine_pdf(data)
    certification, approval = evidence.signatures
    assert certification.docmdp == 2 and approval.docmdp is None
    assert passes(certification) and passes(approval)


@pytest.mark.parametrize(("certify", "permitted"), [(None, True), (2, True), (3, True), (1, False)])
def test_form_filling_after_signing_follows_docmdp(certify, permitted):
    data = sign(original(form_field=True), certify=certify)
    filled = update(data, fill_holder)
    (signature,) = examine_pdf(filled).signatures
    modifications = check(signature, "modifications")
    assert modifications.ok is permitted, modifications.detail
    if permitted:
        assert "field 'holder' filled in" in modifications.detail and passes(signature)
    else:
        assert modifications.code == NOT_COVERED and verdict(signature.checks)[0] == TOTAL_FAILED


def test_changing_a_field_beyond_its_value_is_refused():
    data = sign(original(form_field=True))

    def edit(pdf, upd):
        field = next(f for f in pdf.Root.AcroForm.Fields if f.get("/FT") == "/Tx")
        upd.put(Ref(*field.objgen), rewrite(field, V="x", Rect=[0, 0, 595, 842]))

    modifications = check(examine_pdf(update(data, edit)).signatures[0], "modifications")
    assert not modifications.ok and "field 'holder': /Rect changed" in modifications.detail


def test_adding_a_text_field_is_refused():
    data = sign(original())

    def edit(pdf, upd):
        field = upd.new_ref()
        page = pdf.pages[0].obj
        upd.put(field, {"FT": Name("Tx"), "T": "extra", "V": "x", "Type": Name("Annot"),
                        "Subtype": Name("Widget"), "Rect": [0, 0, 10, 10], "P": Ref(*page.objgen)})
        form = pdf.Root.AcroForm
        upd.put(Ref(*form.objgen), rewrite(form, Fields=[*form.Fields, field]))
        upd.put(Ref(*page.objgen), rewrite(page, Annots=[*page.Annots, field]))

    modifications = check(examine_pdf(update(data, edit)).signatures[0], "modifications")
    assert not modifications.ok and "not a signature field" in modifications.detail


def test_identical_rewrite_and_unreferenced_objects_are_permitted():
    data = sign(original())

    def edit(pdf, upd):
        font = pdf.pages[0].Resources.Font.F1
        upd.put(Ref(*font.objgen), dict(font.items()))
        upd.put(upd.new_ref(), Stream({}, b"nobody points here"))

    (signature,) = examine_pdf(update(data, edit)).signatures
    assert passes(signature), check(signature, "modifications").detail
    assert "rewritten unchanged" in check(signature, "modifications").detail


def test_unsigned_update_after_the_last_signature_is_named_by_coverage():
    data = sign(original())
    changed = update(data, lambda pdf, upd: upd.put(Ref(*pdf.pages[0].Contents.objgen), Stream({}, b"")))
    evidence = examine_pdf(changed)
    (coverage,) = evidence.checks
    assert not coverage.ok and coverage.code == NOT_COVERED and "page 1 /Contents" in coverage.detail


# ---- pyHanko's difference analysis agrees -----------------------------------------------------
def _pyhanko_permits(data: bytes) -> bool:
    from pyhanko.pdf_utils.reader import PdfFileReader
    from pyhanko.sign.diff_analysis import DEFAULT_DIFF_POLICY, SuspiciousModification
    from pyhanko.sign.validation.pdf_embedded import SignatureCoverageLevel

    reader = PdfFileReader(io.BytesIO(data))
    signature = reader.embedded_signatures[0]
    signature.coverage = signature.evaluate_signature_coverage()  # pyHanko's own byte-range reading
    assert signature.coverage == SignatureCoverageLevel.ENTIRE_REVISION
    result = signature.evaluate_modifications(DEFAULT_DIFF_POLICY)
    return not isinstance(result, SuspiciousModification)


@pytest.mark.interop
def test_pyhanko_agrees_on_what_is_permitted():
    signed = sign(original(form_field=True))
    cases = {
        "second signature": sign(signed),
        "form filled": update(signed, fill_holder),
        "content changed": update(signed, lambda pdf, upd: upd.put(Ref(*pdf.pages[0].Contents.objgen),
                                                                   Stream({}, b"BT ET"))),
        "font replaced": update(signed, lambda pdf, upd: upd.put(
            Ref(*pdf.pages[0].Resources.Font.F1.objgen),
            {"Type": Name("Font"), "Subtype": Name("Type1"), "BaseFont": Name("Courier")})),
    }
    for label, data in cases.items():
        ours = check(examine_pdf(data).signatures[0], "modifications").ok
        assert ours == _pyhanko_permits(data), label


@pytest.mark.interop
def test_stricter_than_pyhanko_on_an_unsigned_signature_field():
    """pyHanko lets an update add an empty signature field with any appearance (the "sneaky
    signature" of Mainka et al.); we refuse it: the appearance can paint over signed content."""
    signed = sign(original())

    def sneaky(pdf, upd):
        ap, field = upd.new_ref(), upd.new_ref()
        upd.put(ap, Stream({"Type": Name("XObject"), "Subtype": Name("Form"), "BBox": [0, 0, 400, 60]},
                           b"1 1 1 rg 0 0 400 60 re f"))
        page = pdf.pages[0].obj
        upd.put(field, {"FT": Name("Sig"), "T": "Sneaky", "Type": Name("Annot"), "Subtype": Name("Widget"),
                        "Rect": [60, 680, 460, 740], "F": 4, "P": Ref(*page.objgen), "AP": {"N": ap}})
        form = pdf.Root.AcroForm
        upd.put(Ref(*form.objgen), rewrite(form, Fields=[*form.Fields, field]))
        upd.put(Ref(*page.objgen), rewrite(page, Annots=[*page.Annots, field]))

    data = update(signed, sneaky)
    assert _pyhanko_permits(data)
    assert not check(examine_pdf(data).signatures[0], "modifications").ok


# ---- small readers ----------------------------------------------------------------------------
@pytest.mark.parametrize(("raw", "expected"), [
    (b"D:20250301093000+08'00'", datetime(2025, 3, 1, 9, 30, tzinfo=CST)),
    (b"D:20250301013000Z", datetime(2025, 3, 1, 1, 30, tzinfo=UTC)),
    (b"D:20250301093000+08'00", datetime(2025, 3, 1, 9, 30, tzinfo=CST)),
    (b"D:2025", datetime(2025, 1, 1, tzinfo=UTC)),
    (b"D:20251301000000Z", None), (b"2025", None), (None, None),
])
def test_pdf_dates(raw, expected):
    assert read_pdf_date(raw) == expected


def test_validation_data_updated_in_place_is_permitted():
    data = sign(original())
    holder = {}

    def add(pdf, upd):
        certs = upd.new_ref()
        holder["certs"] = certs
        upd.put(certs, Stream({}, PKI.root.dump()))
        upd.put(Ref(*pdf.Root.objgen), rewrite(pdf.Root, DSS={"Certs": [certs]}))

    def refresh(pdf, upd):
        upd.put(holder["certs"], Stream({}, PKI.signer.dump()))

    twice = update(update(data, add), refresh)
    (signature,) = examine_pdf(twice).signatures
    assert passes(signature), check(signature, "modifications").detail
    assert check(signature, "modifications").detail.count("validation data (DSS)") == 2


def test_document_rewritten_whole_no_longer_matches_its_byte_range():
    """qpdf (or any editor that saves the whole file) moves every offset: the signature is broken."""
    data = sign(original())
    with pikepdf.open(io.BytesIO(data)) as pdf:
        out = io.BytesIO()
        pdf.save(out, object_stream_mode=pikepdf.ObjectStreamMode.generate)
    (signature,) = examine_pdf(out.getvalue()).signatures
    assert not check(signature, "byte-range").ok and verdict(signature.checks)[0] == TOTAL_FAILED


@pytest.mark.parametrize("value", ["direct", "null", "literal"])
def test_signature_value_that_is_not_a_signature_dictionary(value):
    pdf = pikepdf.new()
    pdf.add_blank_page(page_size=(595, 842))
    sig = pikepdf.Dictionary(Type=pikepdf.Name.Sig, Filter=pikepdf.Name("/Adobe.PPKLite"),
                             SubFilter=pikepdf.Name("/adbe.pkcs7.detached"), ByteRange=[0, 1, 2, 3],
                             Contents=pikepdf.String("abc"))
    if value == "literal":  # an indirect dictionary whose /Contents is a literal string
        sig = pdf.make_indirect(sig)
    field = pdf.make_indirect(pikepdf.Dictionary(FT=pikepdf.Name.Sig, T=pikepdf.String("S"),
                                                 V=sig if value != "null" else None))
    if value == "null":
        field.V = pikepdf.Dictionary()  # a direct empty dictionary
    pdf.Root.AcroForm = pikepdf.Dictionary(Fields=[field])
    out = io.BytesIO()
    pdf.save(out)
    data = out.getvalue().replace(b"<616263>", b"(abc)   ")  # qpdf writes a /Sig's /Contents in hex
    (signature,) = examine_pdf(data).signatures
    assert not check(signature, "format").ok and verdict(signature.checks)[0] == TOTAL_FAILED
    if value == "literal":
        assert "not a hex string" in check(signature, "format").detail
