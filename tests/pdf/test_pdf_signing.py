"""pdf.signing: SM2 signatures appended as incremental updates, their appearance, DocMDP.

What a verifier (ours or anyone's) relies on is checked from the raw bytes: the original is the
prefix, /ByteRange [0 a b c] leaves out exactly the /Contents hex string and reaches the end of
the revision, /Contents is the CMS and then zeros, the update redefines only the objects a
signature may change. The CMS is verified with ca.cms over the byte range. Third-party readers
(qpdf, pdfium, poppler, pyHanko, BouncyCastle) are in tests/interop/test_pdf_signing_interop.py.
"""

from __future__ import annotations

import io
import re
from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal

import pikepdf
import pytest
from PIL import Image as PILImage

from ca.cms import read_signed_data, verify_signed_data
from hsm.sm3 import sm3
from pages.model import Document, Page, Rect, Text
from pdf.appearance import MM
from pdf.incremental import Name, Raw, Ref, serialize
from pdf.signing import PdfPlacement, PdfSigningError, sign_pdf
from pdf.writer import write_pdf
from seals.picture import seal_image
from support.pki import make_pki

CST = timezone(timedelta(hours=8))
A4 = (595.276, 841.89)
ATTRIBUTES = {"1.2.840.113549.1.9.3", "1.2.840.113549.1.9.4", "1.2.840.113549.1.9.5",
              "1.2.840.113549.1.9.16.2.47"}  # contentType, messageDigest, signingTime, signingCertificateV2


# ---- inputs ---------------------------------------------------------------------------------

def classic_pdf(objects: dict[int, bytes], *, trailer: bytes = b"", eol: bytes = b"\n") -> bytes:
    """A PDF written by hand with a classic xref table (object 1 is the catalogue)."""
    out = bytearray(b"%PDF-1.7\n%\xe2\xe3\xcf\xd3\n")
    offsets = {}
    for number, body in sorted(objects.items()):
        offsets[number] = len(out)
        out += b"%d 0 obj\n" % number + body + b"\nendobj\n"
    size = max(objects) + 1
    xref = len(out)
    out += b"xref\n0 %d\n0000000000 65535 f\r\n" % size
    for number in range(1, size):
        out += b"%010d 00000 n\r\n" % offsets[number] if number in offsets else b"0000000000 65535 f\r\n"
    out += b"trailer\n<< /Size %d /Root 1 0 R %s>>\nstartxref\n%d\n%%%%EOF" % (size, trailer, xref) + eol
    return bytes(out)


CONTENT = b"0 0 1 rg 100 100 200 200 re f"
ONE_PAGE = {
    1: b"<< /Type /Catalog /Pages 2 0 R >>",
    2: b"<< /Type /Pages /Kids [3 0 R] /Count 1 /MediaBox [0 0 595.276 841.89] >>",  # inherited
    3: b"<< /Type /Page /Parent 2 0 R /Contents 4 0 R /Resources << >> >>",
    4: b"<< /Length %d >>\nstream\n%s\nendstream" % (len(CONTENT), CONTENT),
}


def pikepdf_pdf(*, object_streams: bool, pages: int = 1) -> bytes:
    pdf = pikepdf.new()
    for _ in range(pages):
        pdf.add_blank_page(page_size=A4)
        pdf.pages[-1].Contents = pdf.make_stream(CONTENT)
    out = io.BytesIO()
    mode = pikepdf.ObjectStreamMode.generate if object_streams else pikepdf.ObjectStreamMode.disable
    pdf.save(out, object_stream_mode=mode)
    return out.getvalue()


@pytest.fixture(scope="module")
def picture():
    return seal_image("示例市市场监督管理局", "电子证照专用章")


@pytest.fixture(scope="module")
def pki(picture):
    return make_pki(picture=(picture.png, picture.width_mm, picture.height_mm))


@pytest.fixture(scope="module")
def sign(pki, picture):
    def sign(data: bytes, **kwargs) -> bytes:
        kwargs.setdefault("appearance_png", picture.png)
        return sign_pdf(data, signer=kwargs.pop("signer", pki.signer_key), certificate=pki.signer.dump(),
                        chain=kwargs.pop("chain", [pki.root.dump()]), **kwargs)
    return sign


@pytest.fixture(params=["table", "stream"])
def original(request) -> bytes:
    return pikepdf_pdf(object_streams=request.param == "stream")


# ---- reading the result from its bytes --------------------------------------------------------

def startxref(data: bytes) -> int:
    return int(re.findall(rb"startxref\s+(\d+)\s+%%EOF", data)[-1])


def byte_ranges(data: bytes) -> list[list[int]]:
    return [[int(v) for v in m.split()] for m in re.findall(rb"/ByteRange \[([\d ]+?)\s*\]", data)]


def gap(data: bytes, byte_range: list[int]) -> bytes:
    return data[byte_range[1]:byte_range[2]]


def covered(data: bytes, byte_range: list[int]) -> bytes:
    _, a, b, c = byte_range
    return data[:a] + data[b:b + c]


def cms_of(data: bytes, byte_range: list[int]) -> bytes:
    return bytes.fromhex(gap(data, byte_range)[1:-1].decode("ascii"))


def redefined(original: bytes, signed: bytes) -> set[int]:
    """Object numbers the update writes (it writes every object plainly)."""
    return {int(n) for n in re.findall(rb"(?m)^(\d+) 0 obj", signed[len(original):])}


def existing(data: bytes) -> set[int]:
    with pikepdf.open(io.BytesIO(data)) as pdf:
        return {obj.objgen[0] for obj in pdf.objects}


def open_strict(data: bytes) -> pikepdf.Pdf:
    return pikepdf.open(io.BytesIO(data), attempt_recovery=False, inherit_page_attributes=False)


def signature_fields(pdf: pikepdf.Pdf) -> list[pikepdf.Dictionary]:
    return [f for f in pdf.Root.AcroForm.Fields if f.get("/FT") == pikepdf.Name.Sig]


def verify(data: bytes, byte_range: list[int]):
    return verify_signed_data(read_signed_data(cms_of(data, byte_range), allow_zero_padding=True),
                              digest=sm3(covered(data, byte_range)))


# ---- structure ---------------------------------------------------------------------------------

def test_update_keeps_the_original_and_leaves_out_exactly_contents(sign, original):
    out = sign(original, reason="电子证照签发", location="福州市")
    assert out.startswith(original)
    (br,) = byte_ranges(out)
    assert br[0] == 0 and br[2] + br[3] == len(out)  # covers up to the end of this revision
    hole = gap(out, br)
    assert hole[:1] == b"<" and hole[-1:] == b">" and re.fullmatch(rb"<[0-9A-F]+>", hole)
    assert out[br[1] - len(b"/Contents "):br[1]] == b"/Contents "
    cms = read_signed_data(cms_of(out, br), allow_zero_padding=True).encoded
    assert cms_of(out, br) == cms + bytes(len(cms_of(out, br)) - len(cms))  # the CMS, then zeros
    assert len(cms_of(out, br)) - len(cms) < 200  # reserved with a margin, not megabytes
    with open_strict(out) as pdf:
        (field,) = signature_fields(pdf)
        sig = field.V
        assert bytes(sig.Contents) == cms_of(out, br)  # the gap is this dictionary's /Contents
        assert list(sig.ByteRange) == br
        assert (sig.Type, sig.Filter, sig.SubFilter) == ("/Sig", "/Adobe.PPKLite", "/adbe.pkcs7.detached")
        assert str(sig.Reason) == "电子证照签发" and str(sig.Location) == "福州市"
        assert str(sig.Name) == "签章人"  # the certificate's common name
        assert pdf.Root.AcroForm.SigFlags == 3
        page = pdf.pages[0].obj
        assert field.objgen in [a.objgen for a in page.Annots]
        assert field.P.objgen == page.objgen and field.F == 4 and field.T == "Signature1"
        assert (field.Type, field.Subtype) == ("/Annot", "/Widget")
        appearance = field.AP.N
        assert appearance.Subtype == "/Form"
        image = appearance.Resources.XObject.Seal
        assert image.Subtype == "/Image" and image.SMask.ColorSpace == "/DeviceGray"
        assert (int(image.Width), int(image.Height)) == PILImage.open(io.BytesIO(
            seal_image("示例市市场监督管理局", "电子证照专用章").png)).size


def test_update_cross_reference_has_the_originals_form(sign, original):
    out = sign(original)
    prev = startxref(original)
    new = startxref(out)
    assert new > len(original)
    if original[prev:prev + 4] == b"xref":
        assert out[new:new + 4] == b"xref"
        trailer = out[out.index(b"trailer", new):]
        assert re.search(rb"/Prev %d\b" % prev, trailer)
    else:
        assert re.match(rb"\d+ 0 obj\s*<<[^>]*/Type /XRef", out[new:new + 200])
        assert re.search(rb"/Prev %d\b" % prev, out[new:new + 400])
    with open_strict(out) as pdf:
        assert len(signature_fields(pdf)) == 1
        assert pdf.trailer.ID == open_strict(original).trailer.ID


def test_cms_verifies_over_the_byte_range(sign, pki, original):
    when = datetime(2025, 3, 4, 5, 6, 7, tzinfo=UTC)
    out = sign(original, time=when)
    (br,) = byte_ranges(out)
    info = read_signed_data(cms_of(out, br), allow_zero_padding=True)
    result = verify(out, br)
    assert result.ok, result.checks
    assert info.content_type == "1.2.840.113549.1.7.2" and info.detached
    assert set(info.signer.attribute_types) == ATTRIBUTES
    assert info.signer.message_digest == sm3(covered(out, br))
    assert info.signer.signing_time == when
    assert info.certificates == (pki.signer.dump(), pki.root.dump())
    assert info.signer.signature_algorithm == "1.2.156.10197.1.501"
    # One byte changed anywhere the range covers breaks it: before and after /Contents.
    for at in (20, br[2] + 5, len(out) - 10):
        changed = out[:at] + bytes([out[at] ^ 1]) + out[at + 1:]
        assert [c.name for c in verify(changed, br).checks if not c.ok] == ["message-digest"]


def test_m_is_written_in_the_times_own_offset(sign, original):
    when = datetime(2025, 1, 2, 3, 4, 5, 999, tzinfo=CST)
    out = sign(original, time=when)
    (br,) = byte_ranges(out)
    assert b"/M (D:20250102030405+08'00')" in out[len(original):]
    assert read_signed_data(cms_of(out, br), allow_zero_padding=True).signer.signing_time == \
        when.replace(microsecond=0).astimezone(UTC)
    assert b"/M (D:20250101190405Z)" in sign(original, time=when.astimezone(UTC))


def test_cades_subfilter(sign, original):
    out = sign(original, subfilter="ETSI.CAdES.detached")
    (br,) = byte_ranges(out)
    assert b"/SubFilter /ETSI.CAdES.detached" in out[len(original):]
    assert verify(out, br).ok
    # PAdES baseline: the claimed time is /M's; the CMS carries no signingTime attribute.
    signer = read_signed_data(cms_of(out, br), allow_zero_padding=True).signer
    assert signer.signing_time is None and signer.signing_certificate_v2 is not None
    assert "1.2.840.113549.1.9.5" not in signer.attribute_types


def test_signatures_in_sequence_each_stay_valid(sign, original):
    first = sign(original, reason="初审")
    second = sign(first, reason="复核", placement=PdfPlacement(x=20, y=20))
    third = sign(second, appearance_png=None)
    assert second.startswith(first) and third.startswith(second)
    ranges = byte_ranges(third)
    assert len(ranges) == 3
    assert [r[2] + r[3] for r in ranges] == [len(first), len(second), len(third)]  # each its revision
    for br in ranges:
        assert verify(third, br).ok
    with open_strict(third) as pdf:
        assert [str(f.T) for f in signature_fields(pdf)] == ["Signature1", "Signature2", "Signature3"]
        assert len(pdf.pages[0].Annots) == 3


def test_update_redefines_only_what_a_signature_may_change(sign, original):
    """First signature: the catalogue (gains /AcroForm) and the page (gains /Annots); second: the
    AcroForm (/Fields) and the page, not the catalogue. Everything else is new."""
    with open_strict(original) as pdf:
        catalogue, page = pdf.Root.objgen[0], pdf.pages[0].obj.objgen[0]
    first = sign(original)
    old = existing(original)
    assert redefined(original, first) & old == {catalogue, page}
    with open_strict(first) as pdf:
        acroform = pdf.Root.AcroForm.objgen[0]
    second = sign(first)
    assert redefined(first, second) & existing(first) == {acroform, page}


def test_existing_form_and_annotations_are_kept():
    """A direct AcroForm with a text field and an indirect /Annots array holding a link."""
    objects = {
        **ONE_PAGE,
        1: b"<< /Type /Catalog /Pages 2 0 R /AcroForm << /Fields [5 0 R] /DA (/Helv 0 Tf 0 g) >> >>",
        3: b"<< /Type /Page /Parent 2 0 R /Contents 4 0 R /Resources << >> /Annots 6 0 R >>",
        5: b"<< /FT /Tx /T (holder) /V (\\346\\235\\216) /Rect [10 10 100 30] /Type /Annot /Subtype /Widget "
           b"/P 3 0 R >>",
        6: b"[5 0 R 7 0 R]",
        7: b"<< /Type /Annot /Subtype /Link /Rect [0 0 10 10] /A << /S /URI /URI (https://example.org) >> >>",
    }
    original = classic_pdf(objects)
    pki = make_pki()
    out = sign_pdf(original, signer=pki.signer_key, certificate=pki.signer.dump())
    assert redefined(original, out) & set(objects) == {1, 6}  # catalogue (direct AcroForm), Annots array
    with open_strict(out) as pdf:
        form = pdf.Root.AcroForm
        assert len(form.Fields) == 2 and form.Fields[0].objgen == (5, 0) and form.Fields[1].FT == "/Sig"
        assert form.DA == "/Helv 0 Tf 0 g" and form.SigFlags == 3
        assert [a.objgen[0] for a in pdf.pages[0].Annots][:2] == [5, 7]
        assert bytes(pdf.get_object(5, 0).V) == "李".encode()
    assert verify(out, byte_ranges(out)[0]).ok


def test_invisible_signature(sign, original):
    out = sign(original, appearance_png=None)
    with open_strict(out) as pdf:
        (field,) = signature_fields(pdf)
        assert list(field.Rect) == [0, 0, 0, 0]
        assert field.AP.N.Subtype == "/Form" and "/XObject" not in field.AP.N.Resources
    assert b"/Subtype /Image" not in out[len(original):]
    assert verify(out, byte_ranges(out)[0]).ok


def test_original_without_final_newline_or_id():
    original = classic_pdf(ONE_PAGE, eol=b"")
    assert original.endswith(b"%%EOF")
    pki = make_pki()
    out = sign_pdf(original, signer=pki.signer_key, certificate=pki.signer.dump())
    assert out.startswith(original + b"\n")
    with open_strict(out) as pdf:
        assert len(pdf.trailer.ID) == 2
        assert len(signature_fields(pdf)) == 1
    assert verify(out, byte_ranges(out)[0]).ok


def test_licence_pdf_from_the_writer(sign):
    document = Document(pages=(Page.a4([Text(20, 40, "中华人民共和国 营业执照", 8),
                                        Rect(15, 20, 180, 250)]),), title="营业执照")
    original = write_pdf(document)
    out = sign(original)
    assert out.startswith(original) and verify(out, byte_ranges(out)[0]).ok
    with open_strict(out) as pdf:
        assert "/OutputIntents" in pdf.Root and "/Metadata" in pdf.Root  # PDF/A parts untouched


# ---- where the seal goes -------------------------------------------------------------------------

def widget_rect(data: bytes, index: int = -1) -> list[float]:
    with open_strict(data) as pdf:
        return [float(v) for v in signature_fields(pdf)[index].Rect]


def test_placement_in_mm_from_the_top_left(sign, original):
    out = sign(original, placement=PdfPlacement(x=20, y=30, width=40, height=30))
    expected = [20 * MM, A4[1] - 60 * MM, 60 * MM, A4[1] - 30 * MM]
    assert widget_rect(out) == pytest.approx(expected, abs=0.01)


def test_default_placement_is_bottom_right_at_the_pictures_size(sign, original, picture):
    out = sign(original)
    llx, lly, urx, ury = widget_rect(out)
    assert (urx - llx, ury - lly) == pytest.approx((picture.width_mm * MM, picture.height_mm * MM), abs=0.05)
    assert A4[0] - urx == pytest.approx(20 * MM, abs=0.05) and lly == pytest.approx(30 * MM, abs=0.05)
    half = sign(original, placement=PdfPlacement(width=picture.width_mm / 2))  # height keeps the ratio
    llx, lly, urx, ury = widget_rect(half)
    assert (urx - llx, ury - lly) == pytest.approx((picture.width_mm * MM / 2, picture.height_mm * MM / 2),
                                                   abs=0.05)


def test_crop_box_and_second_page():
    objects = {
        1: b"<< /Type /Catalog /Pages 2 0 R >>",
        2: b"<< /Type /Pages /Kids [3 0 R 5 0 R] /Count 2 /MediaBox [0 0 595.276 841.89] /Resources << >> >>",
        3: b"<< /Type /Page /Parent 2 0 R /Contents 4 0 R >>",
        4: b"<< /Length 0 >>\nstream\n\nendstream",
        5: b"<< /Type /Page /Parent 2 0 R /Contents 4 0 R /CropBox [100 200 500 800] >>",
    }
    pki = make_pki()
    png = seal_image("示例单位").png
    out = sign_pdf(classic_pdf(objects), signer=pki.signer_key, certificate=pki.signer.dump(),
                   appearance_png=png, placement=PdfPlacement(page=1, x=10, y=10, width=20, height=20))
    with open_strict(out) as pdf:
        (field,) = signature_fields(pdf)
        assert field.P.objgen == (5, 0) and "/Annots" not in pdf.pages[0]
    assert widget_rect(out) == pytest.approx([100 + 10 * MM, 800 - 30 * MM, 100 + 30 * MM, 800 - 10 * MM],
                                             abs=0.01)


@pytest.mark.parametrize(("rotate", "expected"), [
    # display box 30 mm from the left, 10 mm from the top, 40 × 20 mm, on an A4 page shown rotated
    (90, [10, 30, 30, 70]),                  # user x from display y, user y from display x
    (180, [A4[0] / MM - 70, 10, A4[0] / MM - 30, 30]),
    (270, [A4[0] / MM - 30, A4[1] / MM - 70, A4[0] / MM - 10, A4[1] / MM - 30]),
])
def test_rotated_page_placement(rotate, expected):
    objects = {**ONE_PAGE, 2: ONE_PAGE[2].replace(b"/Count 1", b"/Count 1 /Rotate %d" % rotate)}
    pki = make_pki()
    out = sign_pdf(classic_pdf(objects), signer=pki.signer_key, certificate=pki.signer.dump(),
                   appearance_png=seal_image("示例单位").png,
                   placement=PdfPlacement(x=30, y=10, width=40, height=20))
    assert widget_rect(out) == pytest.approx([v * MM for v in expected], abs=0.01)


# ---- DocMDP ------------------------------------------------------------------------------------

def docmdp(data: bytes) -> tuple[int, int] | None:
    """(P, signature object number) of the catalogue's /Perms /DocMDP, as a reader finds it."""
    with open_strict(data) as pdf:
        if "/Perms" not in pdf.Root:
            return None
        sig = pdf.Root.Perms.DocMDP
        (reference,) = sig.Reference
        assert reference.Type == "/SigRef" and reference.TransformMethod == "/DocMDP"
        assert reference.TransformParams.Type == "/TransformParams" and reference.TransformParams.V == "/1.2"
        assert signature_fields(pdf)[0].V.objgen == sig.objgen  # the certification is the first
        return int(reference.TransformParams.P), sig.objgen[0]


@pytest.mark.parametrize("level", [1, 2, 3])
def test_certification_signature(sign, original, level):
    out = sign(original, certify=level)
    assert docmdp(out)[0] == level
    assert verify(out, byte_ranges(out)[0]).ok
    if level == 1:
        with pytest.raises(PdfSigningError, match="P=1"):
            sign(out)
    else:
        approved = sign(out)
        assert docmdp(approved)[0] == level and len(byte_ranges(approved)) == 2
        assert all(verify(approved, br).ok for br in byte_ranges(approved))
        with pytest.raises(PdfSigningError, match="first"):
            sign(approved, certify=2)


def test_certification_only_as_the_first_signature(sign, original):
    with pytest.raises(PdfSigningError, match="must be the document's first"):
        sign(sign(original), certify=2)


# ---- fields --------------------------------------------------------------------------------------

def test_field_names(sign, original):
    named = sign(original, field_name="审批")
    with open_strict(named) as pdf:
        assert [str(f.T) for f in signature_fields(pdf)] == ["审批"]
    with pytest.raises(PdfSigningError, match="already has a field named '审批'"):
        sign(named, field_name="审批")
    after = sign(named)
    with open_strict(after) as pdf:
        assert [str(f.T) for f in signature_fields(pdf)] == ["审批", "Signature1"]


# ---- refusals ------------------------------------------------------------------------------------

def encrypted(user_password: str) -> bytes:
    pdf = pikepdf.new()
    pdf.add_blank_page(page_size=A4)
    out = io.BytesIO()
    pdf.save(out, encryption=pikepdf.Encryption(owner="owner", user=user_password))
    return out.getvalue()


def png_without_resolution() -> bytes:
    out = io.BytesIO()
    PILImage.new("RGBA", (40, 40), (230, 0, 0, 255)).save(out, "PNG")
    return out.getvalue()


NO_RESOURCES = ONE_PAGE[3].replace(b" /Resources << >>", b"")  # qpdf would add /Resources to the page
REFUSED = {
    "encrypted, empty user password": ({"data": lambda o: encrypted("")}, "encrypted"),
    "encrypted, user password": ({"data": lambda o: encrypted("secret")}, "encrypted"),
    "not a PDF": ({"data": lambda o: b"GIF89a" + bytes(100)}, "not a PDF"),
    "text, not bytes": ({"data": lambda o: o.decode("latin-1")}, "expected the PDF's bytes"),
    "truncated": ({"data": lambda o: o[:-60]}, "cannot sign|not a readable PDF"),
    "startxref off": ({"data": lambda o: o[:o.rindex(b"startxref")] + b"startxref\n17\n%%EOF\n"},
                      "xref offset 17 points at neither"),
    "needs repair": ({"data": lambda o: classic_pdf({**ONE_PAGE, 3: NO_RESOURCES})},
                     "needed repair.*Resources"),
    "trailing garbage": ({"data": lambda o: o + b"garbage after the end"}, "follow the final %%EOF"),
    "no such page": ({"placement": PdfPlacement(page=3)}, "page 4 does not exist"),
    "off the page": ({"placement": PdfPlacement(x=190, y=10, width=40, height=40)}, "does not fit"),
    "negative": ({"placement": PdfPlacement(x=-1)}, "non-negative"),
    "nan": ({"placement": PdfPlacement(width=float("nan"), height=20)}, "finite"),
    "unknown subfilter": ({"subfilter": "adbe.x509.rsa_sha1"}, "unknown /SubFilter"),
    "docmdp 4": ({"certify": 4}, "DocMDP level"),
    "docmdp True": ({"certify": True}, "DocMDP level"),
    "not a png": ({"appearance_png": b"\xff\xd8\xff\xe0 jpeg"}, "must be a PNG"),
    "broken png": ({"appearance_png": b"\x89PNG\r\n\x1a\n" + bytes(40)}, "not a readable PNG"),
    "png without resolution": ({"appearance_png": png_without_resolution()}, "width and height"),
    "naive time": ({"time": datetime(2025, 1, 1)}, "timezone-aware"),
    "dotted field name": ({"field_name": "a.b"}, "without '.'"),
    "text certificate chain": ({"chain": ["-----BEGIN CERTIFICATE-----"]}, "must be bytes"),
}


@pytest.mark.parametrize("case", REFUSED)
def test_refused_with_a_clear_error(sign, case):
    original = pikepdf_pdf(object_streams=False)
    kwargs, message = REFUSED[case]
    kwargs = dict(kwargs)
    data = kwargs.pop("data", lambda o: o)(original)
    with pytest.raises(PdfSigningError, match=message):
        sign(data, **kwargs)


def test_wrong_key_for_the_certificate(sign, pki, original):
    with pytest.raises(PdfSigningError, match="not the certificate's key"):
        sign(original, signer=pki.root_key)


def test_the_box_must_fit_the_displayed_page(sign):
    objects = {**ONE_PAGE, 3: ONE_PAGE[3].replace(b"/Resources", b"/Rotate 90 /Resources")}
    rotated = classic_pdf(objects)  # displayed 297 mm wide, 210 mm high
    sign(rotated, placement=PdfPlacement(x=250, y=10, width=40, height=40))
    with pytest.raises(PdfSigningError, match=r"does not fit the 297\.0×210\.0 mm page"):
        sign(rotated, placement=PdfPlacement(x=10, y=180, width=40, height=40))


def test_broken_page_tree_is_refused(sign):
    objects = {**ONE_PAGE, 2: b"<< /Type /Pages /Kids [3 0 R] /Count 1 /MediaBox [0 0 foo 1] >>"}
    with pytest.raises(PdfSigningError):
        sign(classic_pdf(objects))


def test_appearance_stream_draws_the_picture_into_the_box(sign, original):
    """The form's content maps the image's unit square onto its BBox, no more."""
    out = sign(original, placement=PdfPlacement(x=20, y=30, width=40, height=30))
    with open_strict(out) as pdf:
        form = signature_fields(pdf)[0].AP.N
        bbox = [float(v) for v in form.BBox]
        content = form.read_bytes()
    assert bbox == pytest.approx([0, 0, 40 * MM, 30 * MM], abs=0.01)
    numbers = [float(v) for v in content.split()[1:7]]
    assert content.endswith(b"cm /Seal Do Q")
    assert numbers == pytest.approx([40 * MM, 0, 0, 30 * MM, 0, 0], abs=0.01)


# ---- originals of other shapes, and our own verifier ------------------------------------------------

def test_linearized_original(sign):
    pdf = pikepdf.open(io.BytesIO(pikepdf_pdf(object_streams=False, pages=2)))
    out = io.BytesIO()
    pdf.save(out, linearize=True)
    original = out.getvalue()
    signed = sign(original, placement=PdfPlacement(page=1))
    assert signed.startswith(original)
    assert re.search(rb"/Prev %d\b" % startxref(original), signed[len(original):])
    assert verify(signed, byte_ranges(signed)[0]).ok
    with open_strict(signed) as pdf:
        assert signature_fields(pdf)[0].P.objgen == pdf.pages[1].obj.objgen


def test_inconsistent_cross_references_are_refused(sign):
    """An xref entry that does not point at its object: a verifier could not tell what is signed."""
    original = classic_pdf(ONE_PAGE)
    entry = b"%010d 00000 n" % original.index(b"4 0 obj")
    broken = original.replace(entry, b"%010d 00000 n" % original.index(b"3 0 obj"))
    assert broken != original
    with pytest.raises(PdfSigningError, match=r"inconsistent.*object 4"):
        sign(broken)


def test_our_verifier_passes_what_we_sign(sign, original):
    from pdf.verification import examine_pdf

    certified = sign(original, certify=2, reason="签发")
    documents = {"one": sign(original), "certified and approved": sign(certified),
                 "three": sign(sign(sign(original), appearance_png=None), placement=PdfPlacement(x=10, y=10))}
    for name, data in documents.items():
        evidence = examine_pdf(data)
        assert len(evidence.signatures) == len(byte_ranges(data)), name
        failed = [(s.field_name, c.name, c.detail) for s in evidence.signatures for c in s.checks if not c.ok]
        failed += [("document", c.name, c.detail) for c in evidence.checks if not c.ok]
        assert failed == [], name
    assert examine_pdf(documents["certified and approved"]).signatures[0].docmdp == 2


# ---- the update's object syntax --------------------------------------------------------------------

@pytest.mark.parametrize(("value", "expected"), [
    (Name("Sig"), b"/Sig"),
    (Name("A B#(x)"), b"/A#20B#23#28x#29"),
    (Name("印"), b"/#E5#8D#B0"),
    ("a (b) c\\", b"(a \\(b\\) c\\\\)"),
    ("电子证照", b"<FEFF" + "电子证照".encode("utf-16-be").hex().upper().encode() + b">"),
    ("line\nbreak", b"<FEFF" + "line\nbreak".encode("utf-16-be").hex().upper().encode() + b">"),
    (b"\x00\xff", b"<00FF>"),
    (1e-7, b"0"), (-0.0, b"0"), (2.5, b"2.5"), (1e20, b"100000000000000000000"), (1 / 3, b"0.3333"),
    (Decimal("1.50"), b"1.5"), (True, b"true"), (None, b"null"), (7, b"7"),
    (Ref(12, 3), b"12 3 R"),
    ([1, Name("X"), [Ref(2)]], b"[1 /X [2 0 R]]"),
    ({"Type": Name("Sig"), "/P": 2}, b"<< /Type /Sig /P 2 >>"),
    (Raw(b"[0 1 2 3]"), b"[0 1 2 3]"),
])
def test_serialize(value, expected):
    assert serialize(value) == expected


def test_serialized_objects_read_back_with_pikepdf():
    """What the writer produces for names and strings is what a PDF parser reads."""
    value = {"Name": Name("A B#(x)"), "Text": "a (b) c\\ 电子证照", "Bytes": b"\x00\xff", "N": 1 / 3}
    parsed = pikepdf.Object.parse(serialize(value))
    assert parsed.Name == "/A B#(x)" and str(parsed.Text) == "a (b) c\\ 电子证照"
    assert bytes(parsed.Bytes) == b"\x00\xff" and float(parsed.N) == pytest.approx(0.3333)


def test_damaged_inputs_give_a_signing_error_or_a_sound_signature(sign):
    """Truncations and byte changes anywhere: PdfSigningError, never another exception; and when
    the damage leaves a signable file, the signature added verifies over its byte range."""
    import random

    rng = random.Random(20250101)
    originals = [pikepdf_pdf(object_streams=False), pikepdf_pdf(object_streams=True), classic_pdf(ONE_PAGE)]
    originals.append(sign(originals[0]))
    signed = 0
    for _ in range(400):
        data = bytearray(rng.choice(originals))
        if rng.random() < 0.3:
            del data[rng.randrange(len(data)):]
        else:
            for _ in range(rng.randint(1, 3)):
                data[rng.randrange(len(data))] = rng.randrange(256)
        try:
            out = sign(bytes(data), appearance_png=None)
        except PdfSigningError:
            continue
        signed += 1
        assert out.startswith(bytes(data)) and verify(out, byte_ranges(out)[-1]).ok
    assert signed > 0  # some damage (inside a content stream, say) leaves the file signable


def test_the_signed_file_is_hashed_from_its_signed_part_and_exactly(sign, monkeypatch):
    """Signing remembers the bytes before /Contents (hsm.sm3): the store's SM3 of the signed
    file starts from that state, and is still exactly SM3 of the file's bytes."""
    from cryptography.hazmat.primitives import hashes

    from hsm import sm3 as sm3_module

    def reference(data: bytes) -> bytes:
        h = hashes.Hash(hashes.SM3())
        h.update(data)
        return h.finalize()

    sm3_module.forget_prefixes()
    hits: list[int] = []
    original_state = sm3_module._state_after
    monkeypatch.setattr(sm3_module, "_state_after",
                        lambda entry: hits.append(len(entry.prefix)) or original_state(entry))
    document = Document(pages=(Page.a4([Text(20, 30, "中华人民共和国营业执照" * 2, 6)]),))
    out = sign(write_pdf(document), time=datetime.now(UTC))
    start = out.rindex(b"/Contents <") + len(b"/Contents ")
    assert hits == [start]  # the signature's own digest computed the state once
    assert sm3(out) == reference(out) and hits == [start, start]
    tampered = bytearray(out)
    tampered[start - 20] ^= 1
    assert sm3(bytes(tampered)) == reference(bytes(tampered)) and hits == [start, start]
    sm3_module.forget_prefixes()
