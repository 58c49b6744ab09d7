"""Known attacks on PDF signatures, each built here from a document signed by pdf.signing.

Every attack must end TOTAL_FAILED with the check that defeats it failing, named:
incremental saving (content changed in an update), signature wrapping (the signature
dictionary moved away from the /ByteRange gap), universal signature forgery (/Contents and
/ByteRange values that make naive verifiers skip the hash), shadow attacks (hide, replace,
hide-and-replace through an xref-only update), and their cousins found in the literature
(a reference dangling at signing time, the "sneaky signature" field, freed objects, added
annotations, hybrid xref disagreements). The permitted updates — a second signature, DSS
validation data, filling a form field — must keep passing. (Mladenov et al., CCS 2019;
Mainka et al., NDSS 2021 and S&P 2021.)
"""

from __future__ import annotations

import io
import re

import pikepdf
import pytest

from ca.verdict import FORMAT_FAILURE, HASH_FAILURE, NOT_COVERED, TOTAL_FAILED, TOTAL_PASSED, verdict
from pdf.errors import PdfFormatError
from pdf.incremental import IncrementalUpdate, Name, Raw, Ref, Stream
from pdf.revisions import read_revisions
from pdf.signing import sign_pdf
from pdf.syntax import read_object_at
from pdf.verification import PdfEvidence, examine_pdf
from support.pki import make_pki

PKI = make_pki()
BENIGN = b"BT /F1 24 Tf 72 700 Td (Pay 100 yuan) Tj ET"
EVIL = b"BT /F1 24 Tf 72 700 Td (Pay 999 yuan) Tj ET"
WHITE_BOX = b"1 1 1 rg 60 680 400 60 re f"
CONTENT_CHANGED = r"object 4 0 \(page 1 /Contents\) changed"


# ---- the forger's toolkit ---------------------------------------------------------------------
def stream(content: bytes) -> bytes:
    return b"<< /Length %d >>\nstream\n%s\nendstream" % (len(content), content)


def assemble(objects: list[tuple[int, bytes]], *, size: int | None = None) -> bytes:
    """A hand-written PDF; the xref points at the *last* body written for each number."""
    out = bytearray(b"%PDF-1.7\n%\xe2\xe3\xcf\xd3\n")
    offsets: dict[int, int] = {}
    for number, body in objects:
        offsets[number] = len(out)
        out += b"%d 0 obj\n%s\nendobj\n" % (number, body)
    size = size or max(offsets) + 1
    xref = len(out)
    out += b"xref\n0 %d\n0000000000 65535 f\r\n" % size
    for number in range(1, size):
        out += b"%010d 00000 n\r\n" % offsets[number] if number in offsets else b"0000000000 65535 f\r\n"
    out += b"trailer\n<< /Size %d /Root 1 0 R >>\nstartxref\n%d\n%%%%EOF\n" % (size, xref)
    return bytes(out)


def document(page: bytes = b"/Contents 4 0 R", extra: list[tuple[int, bytes]] = (), *,
             size: int | None = None) -> bytes:
    """One A4 page with Helvetica as /F1 (object 5) and content stream 4 (BENIGN)."""
    return assemble([
        (1, b"<< /Type /Catalog /Pages 2 0 R >>"),
        (2, b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>"),
        (3, b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 595 842] /Resources << /Font << /F1 5 0 R >> >> "
            + page + b" >>"),
        (4, stream(BENIGN)),
        (5, b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>"),
        *extra,
    ], size=size)


def sign(data: bytes, **options) -> bytes:
    return sign_pdf(data, signer=PKI.signer_key, certificate=PKI.signer.dump(), chain=[PKI.root.dump()],
                    **options)


def update(data: bytes, edit) -> bytes:
    """``data`` plus one incremental update written by ``edit(pdf, IncrementalUpdate)``."""
    with pikepdf.open(io.BytesIO(data)) as pdf:
        upd = IncrementalUpdate(data, read_revisions(data))
        edit(pdf, upd)
        out, _ = upd.write()
    return out


def rewrite(obj: pikepdf.Object, **changes) -> dict:
    """An existing dictionary's entries with some replaced (None removes the key)."""
    values = {str(k): v for k, v in obj.items()}
    for key, value in changes.items():
        if value is None:
            values.pop("/" + key, None)
        else:
            values["/" + key] = value
    return values


def xref_only_update(data: bytes, entries: dict[int, int], *, extra: bytes = b"") -> bytes:
    """An update that writes no object at all: just xref entries (number -> offset) and a trailer."""
    revisions = read_revisions(data)
    last = revisions[-1]
    out = bytearray(data) + b"\n" + extra
    xref = len(out)
    out += b"xref\n"
    for number, offset in sorted(entries.items()):
        out += b"%d 1\n%010d 00000 n\r\n" % (number, offset)
    size = last.trailer["Size"]
    out += b"trailer\n<< /Size %d /Root 1 0 R /Prev %d >>\nstartxref\n%d\n%%%%EOF\n" % (
        size, last.sections[0], xref)
    return bytes(out)


def same_length(data: bytes, old: bytes, new: bytes, *, start: int = 0) -> bytes:
    """Replace ``old`` (first occurrence after ``start``) by ``new`` padded with spaces: no offset moves."""
    at = data.index(old, start)
    assert len(new) <= len(old)
    return data[:at] + new.ljust(len(old)) + data[at + len(old):]


def signature_object(data: bytes):
    """The raw signature dictionary of the first signature (where its xref entry says)."""
    with pikepdf.open(io.BytesIO(data)) as pdf:
        number = pdf.Root.AcroForm.Fields[0].V.objgen[0]
    revisions = read_revisions(data)
    entry = next(r.entries[number] for r in reversed(revisions) if number in r.entries)
    return read_object_at(data, entry.offset)


def only(evidence: PdfEvidence):
    assert len(evidence.signatures) >= 1
    return evidence.signatures[0]


def check(signature, name: str):
    found = [c for c in signature.checks if c.name == name]
    assert found, f"no {name} check in {[c.name for c in signature.checks]}"
    return found[0]


def assert_defeated(data: bytes, name: str, code: str, *, mentions: str | None = None):
    """The first signature is TOTAL_FAILED, by check ``name`` with ``code`` (mentioning ``mentions``)."""
    signature = only(examine_pdf(data))
    c = check(signature, name)
    assert not c.ok, c.detail
    assert c.code == code, (c.code, c.detail)
    if mentions is not None:
        assert re.search(mentions, c.detail), c.detail
    assert verdict(signature.checks)[0] == TOTAL_FAILED
    return signature


@pytest.fixture(scope="module")
def signed() -> bytes:
    data = sign(document())
    assert verdict(only(examine_pdf(data)).checks) == (TOTAL_PASSED, None)
    return data


# ---- incremental saving attack --------------------------------------------------------------
def test_update_that_changes_page_content_fails_naming_the_object(signed):
    def edit(pdf, upd):
        upd.put(Ref(4), Stream({}, EVIL))

    attacked = update(signed, edit)
    with pikepdf.open(io.BytesIO(attacked)) as pdf:  # what a reader shows: the evil text
        assert pdf.pages[0].Contents.read_bytes() == EVIL
    signature = assert_defeated(attacked, "modifications", NOT_COVERED, mentions=CONTENT_CHANGED)
    assert check(signature, "data-hash").ok and check(signature, "signature").ok  # its own bytes are intact
    coverage = examine_pdf(attacked).checks[0]
    assert not coverage.ok and coverage.code == NOT_COVERED


def test_update_that_adds_a_page_fails(signed):
    def edit(pdf, upd):
        page = upd.new_ref()
        upd.put(page, {"Type": Name("Page"), "Parent": Ref(2), "MediaBox": [0, 0, 595, 842],
                       "Contents": Ref(4)})
        upd.put(Ref(2), {"Type": Name("Pages"), "Kids": [Ref(3), page], "Count": 2})

    assert_defeated(update(signed, edit), "modifications", NOT_COVERED, mentions=r"object 2 0 \(page tree\)")


def test_update_that_changes_the_catalogue_fails(signed):
    def edit(pdf, upd):
        action = upd.new_ref()
        upd.put(action, {"S": Name("JavaScript"), "JS": "app.alert(1)"})
        upd.put(Ref(*pdf.Root.objgen), rewrite(pdf.Root, OpenAction=action))

    assert_defeated(update(signed, edit), "modifications", NOT_COVERED, mentions="/OpenAction")


# ---- signature wrapping -----------------------------------------------------------------------
def test_signature_dictionary_moved_after_a_new_revision_fails_byte_range(signed):
    """The signed dictionary (same /ByteRange, same /Contents) is copied into an update that also
    rewrites the page: the hash still matches the signed bytes, but the gap is not this /Contents."""
    sig = signature_object(signed)
    body = signed[sig.start:sig.end]
    body = body[body.index(b"obj") + 3:body.rindex(b"endobj")]

    def edit(pdf, upd):
        upd.put(Ref(4), Stream({}, EVIL))
        upd.put(Ref(sig.number), Raw(body.strip()))

    attacked = update(signed, edit)
    signature = assert_defeated(attacked, "byte-range", FORMAT_FAILURE,
                                mentions="is not this dictionary's /Contents")
    assert check(signature, "data-hash").ok  # the naive check passes: that is the attack


# ---- universal signature forgery --------------------------------------------------------------
def _contents_token(data: bytes) -> bytes:
    sig = signature_object(data)
    a, b = sig.value.spans["Contents"]
    return data[a:b]


def test_empty_contents(signed):
    attacked = same_length(signed, _contents_token(signed), b"<>")
    assert_defeated(attacked, "format", FORMAT_FAILURE, mentions="/Contents")


def test_null_contents(signed):
    attacked = same_length(signed, _contents_token(signed), b"null")
    assert_defeated(attacked, "format", FORMAT_FAILURE, mentions="/Contents is null")


def test_zero_contents(signed):
    token = _contents_token(signed)
    attacked = same_length(signed, token, b"<" + b"0" * (len(token) - 2) + b">")
    assert_defeated(attacked, "format", FORMAT_FAILURE, mentions="empty")


def _byte_range_token(data: bytes) -> tuple[bytes, list[int]]:
    sig = signature_object(data)
    a, b = sig.value.spans["ByteRange"]
    return data[a:b], sig.value["ByteRange"]


@pytest.mark.parametrize(("make", "mentions"), [
    (lambda br: b"", "missing"),
    (lambda br: b"[0 0 0 0]", "overlapping"),
    (lambda br: b"[0 %d %d]" % (br[1], br[2]), "not four integers"),
    (lambda br: b"[0 %d %d %d 0]" % (br[1], br[2], br[3]), "not four integers"),
    (lambda br: b"[1 %d %d %d]" % (br[1], br[2], br[3]), "starts at 1"),
    (lambda br: b"[0 %d %d %d]" % (br[1], br[2], br[3] - 10), "not the end of a revision"),
    (lambda br: b"[0 %d %d %d]" % (br[1], br[2], br[3] + 10), "past the end"),
    (lambda br: b"[0 -%d %d %d]" % (br[1], br[2], br[3]), "negative"),
    (lambda br: b"[0 %d %d %d]" % (br[2], br[1], br[3]), "overlapping"),
    (lambda br: b"[0 %d %d %d]" % (br[1] - 1, br[2], br[3]), "is not this dictionary's /Contents"),
    (lambda br: b"[0 %d.0 %d %d]" % (br[1], br[2], br[3]), "not four integers"),
], ids=["missing", "zeros", "three", "five", "not-at-0", "short", "beyond-file", "negative", "overlapping",
        "gap-off-by-one", "real-number"])
def test_forged_byte_range(signed, make, mentions):
    token, br = _byte_range_token(signed)
    replacement = make(br)
    attacked = (same_length(signed, b"/ByteRange " + token, b"") if not replacement
                else same_length(signed, token, replacement))
    assert_defeated(attacked, "byte-range", FORMAT_FAILURE, mentions=mentions)


def test_byte_range_not_covering_an_appended_revision(signed):
    """A range that stops at revision 2 while the file goes on is not forgery by itself — the
    appended revision is judged; here it replaces the content, so coverage fails."""
    attacked = update(signed, lambda pdf, upd: upd.put(Ref(4), Stream({}, EVIL)))
    evidence = examine_pdf(attacked)
    assert only(evidence).revision == 2 and len(evidence.revisions) == 3
    assert not evidence.checks[0].ok and evidence.checks[0].code == NOT_COVERED


def test_non_zero_padding_after_the_cms(signed):
    token = _contents_token(signed)
    assert token.endswith(b"00>")
    attacked = same_length(signed, token, token[:-3] + b"01>")
    assert_defeated(attacked, "format", FORMAT_FAILURE, mentions="not zero padding")


def test_contents_with_non_hex_characters(signed):
    token = _contents_token(signed)
    attacked = same_length(signed, token, token[:-3] + b" 0>")
    assert_defeated(attacked, "format", FORMAT_FAILURE, mentions="hex digits")


def test_signature_value_flipped(signed):
    token = _contents_token(signed)
    hexes = token[1:-1].rstrip(b"0")
    flipped = hexes[:-2] + (b"00" if hexes[-2:] != b"00" else b"11")
    attacked = same_length(signed, token, b"<" + flipped + token[1 + len(hexes):])
    signature = only(examine_pdf(attacked))
    assert verdict(signature.checks)[0] == TOTAL_FAILED
    assert not check(signature, "signature").ok or not check(signature, "format").ok


def test_covered_byte_changed(signed):
    attacked = same_length(signed, b"(Pay 100 yuan)", b"(Pay 900 yuan)")
    assert_defeated(attacked, "data-hash", HASH_FAILURE)


def test_duplicate_contents_key_is_refused():
    """A signature dictionary that says /Contents twice: readers disagree about which counts."""
    data = sign(document())
    token = _contents_token(data)
    sig = signature_object(data)
    # put a second /Contents after /Type /Sig by recycling the /M value's room
    m_start, m_end = sig.value.spans["M"]
    room = data[m_start:m_end]
    attacked = data[:m_start] + b"() /Contents <>".ljust(len(room))[:len(room)] + data[m_end:]
    assert len(room) >= len(b"() /Contents <>"), room
    signature = only(examine_pdf(attacked))
    assert not check(signature, "format").ok and "twice" in check(signature, "format").detail
    assert token  # the real /Contents is still there


# ---- shadow attacks ---------------------------------------------------------------------------
def test_shadow_hide_overlay_removed_by_an_update():
    """Signed: benign text covered by a white box, evil text below it. The update drops the box."""
    data = sign(document(b"/Contents [4 0 R 6 0 R 7 0 R]", [(6, stream(WHITE_BOX)), (7, stream(EVIL))]))

    def edit(pdf, upd):
        upd.put(Ref(3), rewrite(pdf.pages[0].obj, Contents=[Ref(4), Ref(7)]))

    assert_defeated(update(data, edit), "modifications", NOT_COVERED,
                    mentions=r"object 3 0 \(page 1\) changed: /Contents")


def test_shadow_hide_covering_annotation_removed():
    annot = b"<< /Type /Annot /Subtype /Square /Rect [60 680 460 740] /IC [1 1 1] /C [1 1 1] /F 4 >>"
    data = sign(document(b"/Contents 4 0 R /Annots [6 0 R]", [(6, annot)]))

    def edit(pdf, upd):
        annots = [a for a in pdf.pages[0].Annots if a.objgen != (6, 0)]
        upd.put(Ref(3), rewrite(pdf.pages[0].obj, Annots=annots))

    assert_defeated(update(data, edit), "modifications", NOT_COVERED, mentions="lost 1 annotation")


def test_shadow_replace_font(signed):
    def edit(pdf, upd):
        upd.put(Ref(5), {"Type": Name("Font"), "Subtype": Name("Type1"), "BaseFont": Name("Courier")})

    assert_defeated(update(signed, edit), "modifications", NOT_COVERED,
                    mentions=r"object 5 0 \(page 1 /Resources /Font /F1\) changed")


def test_shadow_replace_identical_looking_bytes(signed):
    """The same content, recompressed: different bytes, same look — still a change to a signed object."""
    import zlib

    def edit(pdf, upd):
        upd.put(Ref(4), Stream({"Filter": Name("FlateDecode")}, zlib.compress(BENIGN)))

    assert_defeated(update(signed, edit), "modifications", NOT_COVERED, mentions="object 4 0")


def test_shadow_hide_and_replace_by_xref_only_update():
    """Two bodies of object 4 in the signed file; the xref used the benign one. An update with no
    object at all re-points 4 at the evil body."""
    original = document(extra=[(4, stream(BENIGN))])
    evil_first = assemble([
        (1, b"<< /Type /Catalog /Pages 2 0 R >>"), (2, b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>"),
        (3, b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 595 842] /Resources << /Font << /F1 5 0 R >> >>"
            b" /Contents 4 0 R >>"),
        (4, stream(EVIL)), (5, b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>"),
        (4, stream(BENIGN)),
    ])
    assert original  # (the helper above is the usual document; this one hides the evil body)
    data = sign(evil_first)
    with pikepdf.open(io.BytesIO(data)) as pdf:
        assert pdf.pages[0].Contents.read_bytes() == BENIGN
    evil_at = data.index(b"4 0 obj\n<< /Length %d >>\nstream\n%s" % (len(EVIL), EVIL))
    attacked = xref_only_update(data, {4: evil_at})
    with pikepdf.open(io.BytesIO(attacked)) as pdf:
        assert pdf.pages[0].Contents.read_bytes() == EVIL
    signature = assert_defeated(attacked, "modifications", NOT_COVERED, mentions="re-pointed to offset")
    assert "object 4 0 (page 1 /Contents) changed" in check(signature, "modifications").detail
    assert any("re-pointed" in p for p in read_revisions(attacked)[-1].problems)


def test_reference_dangling_when_signed_now_resolves():
    """The signed page's content array (object 6, which signing leaves alone) lists a stream 99
    that does not exist; an update defines it, without touching the array or the page."""
    data = sign(document(b"/Contents 6 0 R", [(6, b"[4 0 R 99 0 R]")]))

    def edit(pdf, upd):
        ref = upd.new_ref()
        while ref.number < 99:
            ref = upd.new_ref()
        assert ref == Ref(99)
        upd.put(ref, Stream({}, WHITE_BOX + b" " + EVIL))

    attacked = update(data, edit)
    assert_defeated(attacked, "modifications", NOT_COVERED,
                    mentions="led nowhere when signed|changed without this update writing it")


def test_object_freed_after_signing(signed):
    revisions = read_revisions(signed)
    out = bytearray(signed)
    xref = len(out)
    out += b"xref\n0 1\n0000000000 65535 f\r\n4 1\n0000000000 00001 f\r\n"
    out += b"trailer\n<< /Size %d /Root 1 0 R /Prev %d >>\nstartxref\n%d\n%%%%EOF\n" % (
        revisions[-1].trailer["Size"], revisions[-1].sections[0], xref)
    assert_defeated(bytes(out), "modifications", NOT_COVERED,
                    mentions=r"object 4 0 \(page 1 /Contents\) freed")


def test_number_reused_with_a_new_generation(signed):
    def edit(pdf, upd):
        upd.put(Ref(4, 1), Stream({}, EVIL))

    assert_defeated(update(signed, edit), "modifications", NOT_COVERED, mentions="generation 1")


def test_sneaky_signature_field_without_signature(signed):
    """A new signature field, unsigned, whose appearance paints over the page (S&P 2021)."""
    def edit(pdf, upd):
        ap, field = upd.new_ref(), upd.new_ref()
        upd.put(ap, Stream({"Type": Name("XObject"), "Subtype": Name("Form"), "BBox": [0, 0, 400, 60]},
                           WHITE_BOX + b" " + EVIL))
        upd.put(field, {"FT": Name("Sig"), "T": "Sneaky", "Type": Name("Annot"), "Subtype": Name("Widget"),
                        "Rect": [60, 680, 460, 740], "F": 4, "P": Ref(3), "AP": {"N": ap}})
        form = pdf.Root.AcroForm
        upd.put(Ref(*form.objgen), rewrite(form, Fields=[*form.Fields, field]))
        page = pdf.pages[0].obj
        upd.put(Ref(3), rewrite(page, Annots=[*page.Annots, field]))

    assert_defeated(update(signed, edit), "modifications", NOT_COVERED, mentions="without a signature")


def test_free_text_annotation_added(signed):
    def edit(pdf, upd):
        annot = upd.new_ref()
        upd.put(annot, {"Type": Name("Annot"), "Subtype": Name("FreeText"), "Rect": [60, 680, 460, 740],
                        "Contents": "Pay 999 yuan", "DA": "/Helv 24 Tf 0 g"})
        page = pdf.pages[0].obj
        upd.put(Ref(3), rewrite(page, Annots=[*page.Annots, annot]))

    assert_defeated(update(signed, edit), "modifications", NOT_COVERED, mentions="FreeText")


def test_hybrid_update_whose_table_and_stream_disagree(signed):
    """A hybrid section: the table keeps object 4, the /XRefStm re-points it. Readers disagree."""
    revisions = read_revisions(signed)
    out = bytearray(signed)
    evil_at = len(out)
    out += b"4 0 obj\n" + stream(EVIL) + b"\nendobj\n"
    four = next(r.entries[4] for r in reversed(revisions) if 4 in r.entries)
    stm_at = len(out)
    row = b"\x01" + evil_at.to_bytes(4, "big") + b"\x00\x00"
    out += b"7777 0 obj\n<< /Type /XRef /Size 7778 /W [1 4 2] /Index [4 1] /Length %d >>\n" % len(row)
    out += b"stream\n%s\nendstream\nendobj\n" % row
    xref = len(out)
    out += b"xref\n4 1\n%010d 00000 n\r\ntrailer\n<< /Size 7778 /Root 1 0 R /Prev %d /XRefStm %d >>\n" \
           b"startxref\n%d\n%%%%EOF\n" % (four.offset, revisions[-1].sections[0], stm_at, xref)
    attacked = bytes(out)
    assert any("readers would disagree" in p for p in read_revisions(attacked)[-1].problems)
    assert_defeated(attacked, "modifications", NOT_COVERED, mentions="readers would disagree")


def test_certified_p1_forbids_even_a_permitted_change():
    data = sign(document(), certify=1)

    def edit(pdf, upd):
        certs = upd.new_ref()
        upd.put(certs, Stream({}, PKI.root.dump()))
        upd.put(Ref(*pdf.Root.objgen), rewrite(pdf.Root, DSS={"Certs": [certs]}))

    signature = assert_defeated(update(data, edit), "modifications", NOT_COVERED, mentions="P=1")
    assert signature.docmdp == 1


# ---- permitted updates still pass -------------------------------------------------------------
def test_second_signature_is_permitted(signed):
    twice = sign(signed, reason="second")
    evidence = examine_pdf(twice)
    assert [s.field_name for s in evidence.signatures] == ["Signature1", "Signature2"]
    for signature in evidence.signatures:
        assert verdict(signature.checks) == (TOTAL_PASSED, None), [c for c in signature.checks if not c.ok]
    assert "signature field 'Signature2' added" in check(evidence.signatures[0], "modifications").detail
    assert evidence.checks[0].ok


def test_dss_is_permitted(signed):
    def edit(pdf, upd):
        certs, crl, vri = upd.new_ref(), upd.new_ref(), upd.new_ref()
        upd.put(certs, Stream({}, PKI.root.dump()))
        upd.put(crl, Stream({}, PKI.crl().dump()))
        upd.put(vri, {"Cert": [certs], "CRL": [crl]})
        upd.put(Ref(*pdf.Root.objgen), rewrite(pdf.Root, DSS={"Certs": [certs], "CRLs": [crl],
                                                                "VRI": {"A" * 40: vri}}))

    with_dss = update(signed, edit)
    evidence = examine_pdf(with_dss)
    assert verdict(only(evidence).checks) == (TOTAL_PASSED, None)
    assert "validation data (DSS)" in check(only(evidence), "modifications").detail
    assert evidence.checks[0].ok and "permitted" in evidence.checks[0].detail


def test_dss_cannot_launder_a_document_object(signed):
    """DSS may add validation streams, but not rewrite an object the page uses by listing it."""
    def edit(pdf, upd):
        upd.put(Ref(4), Stream({}, EVIL))
        upd.put(Ref(*pdf.Root.objgen), rewrite(pdf.Root, DSS={"Certs": [Ref(4)]}))

    assert_defeated(update(signed, edit), "modifications", NOT_COVERED, mentions=CONTENT_CHANGED)


def test_trailing_garbage_after_the_last_eof(signed):
    evidence = examine_pdf(signed + b"% nothing to see\n(Pay 999 yuan)\n")
    assert not evidence.checks[0].ok and "belong to no revision" in evidence.checks[0].detail
    assert evidence.checks[0].code == NOT_COVERED


def test_objects_appended_without_an_xref_section_are_unreadable(signed):
    """Readers that reconstruct a damaged file would pick these objects up; we refuse the file."""
    with pytest.raises(PdfFormatError, match="no startxref reaches"):
        examine_pdf(signed + b"4 0 obj\n" + stream(EVIL) + b"\nendobj\n")


def test_new_field_reusing_an_existing_signature(signed):
    """A second field pointing at the first signature's dictionary would show a valid signature with
    an appearance of the forger's choosing."""
    def edit(pdf, upd):
        first = pdf.Root.AcroForm.Fields[0]
        ap, field = upd.new_ref(), upd.new_ref()
        upd.put(ap, Stream({"Type": Name("XObject"), "Subtype": Name("Form"), "BBox": [0, 0, 400, 60]}, EVIL))
        upd.put(field, {"FT": Name("Sig"), "T": "Copy", "Type": Name("Annot"), "Subtype": Name("Widget"),
                        "Rect": [60, 680, 460, 740], "F": 4, "P": Ref(3), "AP": {"N": ap},
                        "V": Ref(*first.V.objgen)})
        form = pdf.Root.AcroForm
        upd.put(Ref(*form.objgen), rewrite(form, Fields=[*form.Fields, field]))
        page = pdf.pages[0].obj
        upd.put(Ref(3), rewrite(page, Annots=[*page.Annots, field]))

    assert_defeated(update(signed, edit), "modifications", NOT_COVERED, mentions="reuses signature field")


def test_existing_widget_shown_on_another_page():
    data = sign(assemble([
        (1, b"<< /Type /Catalog /Pages 2 0 R >>"), (2, b"<< /Type /Pages /Kids [3 0 R 6 0 R] /Count 2 >>"),
        (3, b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 595 842] /Resources << >> /Contents 4 0 R >>"),
        (4, stream(BENIGN)), (6, b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 595 842] /Resources << >> >>"),
    ]), appearance_png=None)

    def edit(pdf, upd):
        widget = pdf.Root.AcroForm.Fields[0]
        upd.put(Ref(6), rewrite(pdf.pages[1].obj, Annots=[Ref(*widget.objgen)]))

    assert_defeated(update(data, edit), "modifications", NOT_COVERED, mentions="was already there")


def test_perms_added_after_an_approval_signature(signed):
    def edit(pdf, upd):
        sig = pdf.Root.AcroForm.Fields[0].V
        upd.put(Ref(*pdf.Root.objgen), rewrite(pdf.Root, Perms={"DocMDP": Ref(*sig.objgen)}))

    assert_defeated(update(signed, edit), "modifications", NOT_COVERED, mentions="/Perms")


def test_dss_listing_a_document_object_does_not_make_it_validation_data(signed):
    """Revision 3 lists the page's content stream in /DSS (harmless by itself); revision 4 then
    rewrites that stream "as validation data". The stream is the page's, and stays judged as such."""
    def list_it(pdf, upd):
        upd.put(Ref(*pdf.Root.objgen), rewrite(pdf.Root, DSS={"Certs": [Ref(4)]}))

    def rewrite_it(pdf, upd):
        upd.put(Ref(4), Stream({}, EVIL))

    listed = update(signed, list_it)
    assert check(only(examine_pdf(listed)), "modifications").ok
    assert_defeated(update(listed, rewrite_it), "modifications", NOT_COVERED, mentions=CONTENT_CHANGED)
