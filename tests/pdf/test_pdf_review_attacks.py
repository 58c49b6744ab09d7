"""Attacks a review found after the first round: an old object stream rewritten without naming
its objects, a page XObject rewritten as "form filling" because a field shares it, and tiny xref
streams that asked for gigabytes. Each must fail the signature (or the parse), never pass."""

from __future__ import annotations

import io
import zlib

import pikepdf
import pytest

from ca.verdict import NOT_COVERED, TOTAL_FAILED, verdict
from pdf.errors import PdfFormatError
from pdf.incremental import IncrementalUpdate, Name, Ref, Stream
from pdf.revisions import read_revisions
from pdf.signing import sign_pdf
from pdf.verification import examine_pdf
from support.pki import make_pki

PKI = make_pki()
N = pikepdf.Name


def _sign(data: bytes) -> bytes:
    return sign_pdf(data, signer=PKI.signer_key, certificate=PKI.signer.dump(), chain=[PKI.root.dump()])


def _modifications(data: bytes):
    (signature,) = examine_pdf(data).signatures
    return signature, next(c for c in signature.checks if c.name == "modifications")


def _with_object_streams() -> bytes:
    pdf = pikepdf.new()
    pdf.add_blank_page(page_size=(595, 842))
    page = pdf.pages[0]
    page.Contents = pdf.make_stream(b"BT /F1 24 Tf 72 700 Td (Pay 100 yuan) Tj ET")
    font = pdf.make_indirect(pikepdf.Dictionary(Type=N.Font, Subtype=N.Type1, BaseFont=N.Helvetica))
    page.Resources = pikepdf.Dictionary(Font=pikepdf.Dictionary(F1=font))
    out = io.BytesIO()
    pdf.save(out, object_stream_mode=pikepdf.ObjectStreamMode.generate)
    return out.getvalue()


def test_rewriting_an_old_object_stream_is_a_change_to_what_it_holds():
    signed = _sign(_with_object_streams())
    revisions = read_revisions(signed)
    with pikepdf.open(io.BytesIO(signed)) as pdf:
        font_number = pdf.pages[0].Resources.Font.F1.objgen[0]
    entry = next(r.entries[font_number] for r in reversed(revisions) if font_number in r.entries)
    with pikepdf.open(io.BytesIO(signed)) as pdf:
        holder = pdf.get_object((entry.stream, 0))
        body, count, first = holder.read_bytes(), int(holder.N), int(holder.First)
    numbers = body[:first].split()
    pairs = [(int(numbers[2 * i]), int(numbers[2 * i + 1])) for i in range(count)]
    objects = []
    for i, (number, offset) in enumerate(pairs):
        end = pairs[i + 1][1] if i + 1 < count else len(body) - first
        text = body[first + offset : first + end].strip()
        if number == font_number:  # every "1" drawn as "9": the page now says "Pay 999 yuan"
            text = (
                b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica /Encoding << /Type /Encoding "
                b"/Differences [49 /nine 48 /nine] >> >>"
            )
        objects.append((number, text + b"\n"))
    header, data, at = b"", b"", 0
    for number, text in objects:
        header, data, at = header + b"%d %d " % (number, at), data + text, at + len(text)
    update = IncrementalUpdate(signed, revisions)
    update.put(
        Ref(entry.stream),
        Stream({"Type": Name("ObjStm"), "N": count, "First": len(header) + 1}, header + b"\n" + data),
    )
    attacked, _ = update.write()
    signature, modifications = _modifications(attacked)
    assert not modifications.ok and modifications.code == NOT_COVERED
    assert f"object {font_number} 0" in modifications.detail
    assert verdict(signature.checks)[0] == TOTAL_FAILED


def test_form_filling_cannot_rewrite_an_appearance_the_page_also_draws():
    pdf = pikepdf.new()
    pdf.add_blank_page(page_size=(595, 842))
    page = pdf.pages[0]
    shared = pdf.make_stream(
        b"BT /F1 24 Tf 0 5 Td (Pay 100 yuan) Tj ET", Type=N.XObject, Subtype=N.Form, BBox=[0, 0, 300, 40]
    )
    font = pdf.make_indirect(pikepdf.Dictionary(Type=N.Font, Subtype=N.Type1, BaseFont=N.Helvetica))
    shared.Resources = pikepdf.Dictionary(Font=pikepdf.Dictionary(F1=font))
    page.Contents = pdf.make_stream(b"q 1 0 0 1 72 700 cm /Fm0 Do Q")
    page.Resources = pikepdf.Dictionary(
        XObject=pikepdf.Dictionary(Fm0=shared), Font=pikepdf.Dictionary(F1=font)
    )
    field = pdf.make_indirect(
        pikepdf.Dictionary(
            FT=N.Tx,
            T=pikepdf.String("memo"),
            Type=N.Annot,
            Subtype=N.Widget,
            Rect=[72, 500, 372, 540],
            F=4,
            P=page.obj,
            AP=pikepdf.Dictionary(N=shared),
        )
    )
    page.Annots = pdf.make_indirect(pikepdf.Array([field]))
    pdf.Root.AcroForm = pdf.make_indirect(pikepdf.Dictionary(Fields=[field]))
    out = io.BytesIO()
    pdf.save(out, object_stream_mode=pikepdf.ObjectStreamMode.disable)
    signed = _sign(out.getvalue())
    with pikepdf.open(io.BytesIO(signed)) as doc:
        field = doc.Root.AcroForm.Fields[0]
        appearance = field.AP.N
        update = IncrementalUpdate(signed, read_revisions(signed))
        values = {str(k): v for k, v in field.items()}
        values["/V"] = pikepdf.String("memo text")
        update.put(Ref(*field.objgen), values)
        kept = {str(k): v for k, v in appearance.stream_dict.items() if str(k) not in ("/Length", "/Filter")}
        update.put(Ref(*appearance.objgen), Stream(kept, b"BT /F1 24 Tf 0 5 Td (Pay 999 yuan) Tj ET"))
        attacked, _ = update.write()
    signature, modifications = _modifications(attacked)
    assert not modifications.ok and verdict(signature.checks)[0] == TOTAL_FAILED


def _xref_stream_pdf(rows: bytes, dictionary: bytes) -> bytes:
    out = bytearray(b"%PDF-1.7\n")
    body = zlib.compress(rows, 9)
    at = len(out)
    out += (
        b"1 0 obj\n<< /Type /XRef "
        + dictionary
        + b" /Filter /FlateDecode /Length %d >>\nstream\n" % len(body)
    )
    out += body + b"\nendstream\nendobj\nstartxref\n%d\n%%%%EOF\n" % at
    return bytes(out)


@pytest.mark.parametrize(
    "dictionary, rows",
    [
        (b"/Size 0 /W [1 1 1] /Index [] /DecodeParms << /Predictor 12 /Columns 10000000000000 >>", b""),
        (b"/Size 0 /W [1 1 1] /Index [] /DecodeParms << /Predictor 12 /Columns /abc >>", b""),
        (b"/Size 1000000 /W [1 0 0]", b"\x01" * 1_000_000),
    ],
)
def test_tiny_xref_streams_that_ask_for_too_much_are_refused_quickly(dictionary, rows):
    with pytest.raises(PdfFormatError):
        examine_pdf(_xref_stream_pdf(rows, dictionary))
