"""Our signed PDFs as independent implementations see them: qpdf, pdfium, poppler, pyHanko, BouncyCastle.

* qpdf --check: no errors or warnings in any signed file (table and xref-stream originals,
  several signatures, certification, a rotated page).
* Rendering (pdfium through pypdfium2, poppler's pdftoppm): against the unsigned render, every
  changed pixel lies in the widget box and the changes fill it — the seal is where the placement
  says, at its size; seal red appears nowhere else. On a page shown rotated the picture stands
  upright. The CJK text of a licence from pdf.writer is still extracted (pdfium, pdftotext).
  pdfium draws widgets only with its form environment initialised, as a viewer does.
* pyHanko (read-only: it has no SM2) finds each signature field, the same /ByteRange and a
  SignedData it parses; its coverage analysis calls earlier signatures ENTIRE_REVISION and the
  last ENTIRE_FILE, and its diff policy judges the later signatures' updates permitted form
  filling — while an update that changes the page content is flagged.
* BouncyCastle's CMS verifier (tests/interop/java/CmsTool.java) accepts each /Contents over the
  bytes its /ByteRange covers, and rejects it when one covered byte changes.
"""

from __future__ import annotations

import io
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

import pikepdf
import pytest
from asn1crypto import parser
from PIL import Image as PILImage
from PIL import ImageChops

from pages.model import Document, Page, Rect, Text
from pdf.appearance import MM
from pdf.incremental import IncrementalUpdate, Ref, Stream
from pdf.revisions import read_revisions
from pdf.signing import PdfPlacement, sign_pdf
from pdf.writer import write_pdf
from seals.picture import seal_image
from support.java import BC_JARS, compile_java_tool, unavailable
from support.pki import make_pki

pytestmark = pytest.mark.interop

CMS_TOOL = Path(__file__).resolve().parent / "java" / "CmsTool.java"
TIMEOUT = 120
SCALE = 1.0  # render at 72 dpi: one pixel per point
LICENCE_TEXT = "中华人民共和国营业执照"


def red(pixel: tuple[int, int, int]) -> bool:
    r, g, b = pixel
    return r > 150 and g < 110 and b < 110


def red_pixels(image: PILImage.Image) -> int:
    data = image.convert("RGB").tobytes()
    return sum(1 for i in range(0, len(data), 3) if red((data[i], data[i + 1], data[i + 2])))


@dataclass(frozen=True)
class Case:
    original: bytes
    signed: bytes
    box_mm: tuple[float, float, float, float]  # (x, y, w, h) of the last seal's box, display mm
    inked: float = 1.0  # the fraction of the box, from the top, that the picture inks


def sign_with(pki, data: bytes, **kwargs) -> bytes:
    return sign_pdf(data, signer=pki.signer_key, certificate=pki.signer.dump(), chain=[pki.root.dump()],
                    **kwargs)


def licence() -> bytes:
    return write_pdf(Document(pages=(Page.a4([
        Text(20, 40, LICENCE_TEXT, 8), Text(20, 60, "统一社会信用代码 91350100M000100Y43", 4),
        Rect(15, 20, 180, 250)]),), title="营业执照"))


def pikepdf_original(*, object_streams: bool, rotate: int = 0) -> bytes:
    pdf = pikepdf.new()
    pdf.add_blank_page(page_size=(595.276, 841.89))
    pdf.pages[0].Contents = pdf.make_stream(b"0 0 1 rg 100 100 200 200 re f")
    if rotate:
        pdf.pages[0].Rotate = rotate
    out = io.BytesIO()
    pdf.save(out, object_stream_mode=pikepdf.ObjectStreamMode.generate if object_streams
             else pikepdf.ObjectStreamMode.disable)
    return out.getvalue()


def top_half_red_png() -> bytes:
    """60 × 30 mm at 254 dpi: the top half seal red, the bottom half transparent."""
    image = PILImage.new("RGBA", (600, 300), (0, 0, 0, 0))
    image.paste((230, 0, 0, 255), (0, 0, 600, 150))
    out = io.BytesIO()
    image.save(out, "PNG", dpi=(254, 254))
    return out.getvalue()


@pytest.fixture(scope="module")
def pki():
    face = seal_image("示例市市场监督管理局", "电子证照专用章")
    return make_pki(picture=(face.png, face.width_mm, face.height_mm))


@pytest.fixture(scope="module")
def face():
    return seal_image("示例市市场监督管理局", "电子证照专用章")


@pytest.fixture(scope="module")
def cases(pki, face) -> dict[str, Case]:
    out: dict[str, Case] = {}
    original = licence()
    first = sign_with(pki, original, appearance_png=face.png, reason="电子证照签发", location="福州市")
    second = sign_with(pki, first, appearance_png=face.png, placement=PdfPlacement(x=120, y=150))
    out["licence, two seals"] = Case(first, second, (120, 150, face.width_mm, face.height_mm))
    page_w, page_h = 210.0, 297.0
    out["licence, default place"] = Case(original, first, (page_w - face.width_mm - 20,
                                                           page_h - face.height_mm - 30,
                                                           face.width_mm, face.height_mm))
    for streams in (False, True):
        plain = pikepdf_original(object_streams=streams)
        signed = sign_with(pki, plain, appearance_png=face.png, placement=PdfPlacement(x=30, y=40))
        out[f"pikepdf, {'xref stream' if streams else 'xref table'}"] = Case(
            plain, signed, (30, 40, face.width_mm, face.height_mm))
    certified = sign_with(pki, original, certify=2, appearance_png=None)
    out["certified, then approved"] = Case(certified, sign_with(pki, certified, appearance_png=face.png,
                                                                placement=PdfPlacement(x=10, y=10)),
                                           (10, 10, face.width_mm, face.height_mm))
    for rotate in (90, 270):
        rotated = pikepdf_original(object_streams=False, rotate=rotate)
        out[f"rotated {rotate}"] = Case(rotated, sign_with(pki, rotated, appearance_png=top_half_red_png(),
                                                           placement=PdfPlacement(x=200, y=20)),
                                        (200, 20, 60, 30), inked=0.5)
    return out


CASES = ["licence, two seals", "licence, default place", "pikepdf, xref table", "pikepdf, xref stream",
         "certified, then approved", "rotated 90", "rotated 270"]


def tool(name: str) -> str:
    path = shutil.which(name)
    if path is None:
        unavailable(f"{name} not found (apt-get install qpdf poppler-utils)")
    return path


# ---- qpdf ------------------------------------------------------------------------------------------

@pytest.mark.parametrize("name", CASES)
def test_qpdf_check_is_clean(cases, name, tmp_path):
    path = tmp_path / "signed.pdf"
    path.write_bytes(cases[name].signed)
    res = subprocess.run([tool("qpdf"), "--check", str(path)], capture_output=True, text=True, timeout=60,
                         check=False)
    assert res.returncode == 0, res.stdout + res.stderr
    assert "No syntax or stream encoding errors found" in res.stdout
    assert "WARNING" not in res.stdout + res.stderr


# ---- rendering ---------------------------------------------------------------------------------------

def render_pdfium(data: bytes) -> PILImage.Image:
    import pypdfium2 as pdfium

    document = pdfium.PdfDocument(data)
    try:
        document.init_forms()  # a viewer's form environment: pdfium leaves widgets to it
        page = document[0]
        return page.render(scale=SCALE, may_draw_forms=True).to_pil().convert("RGB")
    finally:
        document.close()


def render_poppler(data: bytes, tmp_path: Path) -> PILImage.Image:
    tmp_path.mkdir(parents=True, exist_ok=True)
    source = tmp_path / "in.pdf"
    source.write_bytes(data)
    res = subprocess.run([tool("pdftoppm"), "-r", str(int(72 * SCALE)), "-png", "-f", "1", "-l", "1",
                          str(source), str(tmp_path / "page")], capture_output=True, timeout=60, check=False)
    assert res.returncode == 0, res.stderr.decode(errors="replace")
    (png,) = tmp_path.glob("page*.png")
    with PILImage.open(png) as image:
        return image.convert("RGB")


def pixel_box(box_mm: tuple[float, float, float, float]) -> tuple[float, float, float, float]:
    x, y, w, h = (v * MM * SCALE for v in box_mm)
    return x, y, x + w, y + h


def check_seal_render(before: PILImage.Image, after: PILImage.Image, case: Case) -> None:
    assert before.size == after.size
    x, y, w, h = case.box_mm
    left, top, right, bottom = pixel_box((x, y, w, h * case.inked))
    changed = ImageChops.difference(before, after).point(lambda v: 255 if v > 40 else 0).getbbox()
    assert changed is not None, "the seal was not drawn"
    # every changed pixel is inside the box, and the seal face reaches (nearly) its edges
    assert changed[0] >= left - 2 and changed[1] >= top - 2, (changed, (left, top, right, bottom))
    assert changed[2] <= right + 2 and changed[3] <= bottom + 2, (changed, (left, top, right, bottom))
    assert changed[2] - changed[0] >= (right - left) * 0.9 and changed[3] - changed[1] >= (bottom - top) * 0.9
    inside = after.crop((int(left), int(top), int(right) + 1, int(bottom) + 1))
    in_box = red_pixels(inside)
    assert in_box > 0.03 * inside.width * inside.height
    assert red_pixels(after) - red_pixels(before) == pytest.approx(in_box, abs=in_box * 0.02)


@pytest.mark.parametrize("name", CASES)
def test_pdfium_draws_the_seal_in_its_box(cases, name):
    case = cases[name]
    check_seal_render(render_pdfium(case.original), render_pdfium(case.signed), case)


@pytest.mark.parametrize("name", CASES)
def test_poppler_draws_the_seal_in_its_box(cases, name, tmp_path):
    case = cases[name]
    before = render_poppler(case.original, tmp_path / "before")
    after = render_poppler(case.signed, tmp_path / "after")
    check_seal_render(before, after, case)


@pytest.mark.parametrize("name", ["rotated 90", "rotated 270"])
@pytest.mark.parametrize("renderer", ["pdfium", "poppler"])
def test_picture_stands_upright_on_a_rotated_page(cases, name, renderer, tmp_path):
    case = cases[name]
    image = render_pdfium(case.signed) if renderer == "pdfium" else render_poppler(case.signed, tmp_path)
    assert image.width > image.height  # A4 portrait shown landscape
    left, top, right, bottom = (round(v) for v in pixel_box(case.box_mm))
    middle = (top + bottom) // 2
    upper = red_pixels(image.crop((left + 2, top + 2, right - 2, middle - 2)))
    lower = red_pixels(image.crop((left + 2, middle + 2, right - 2, bottom - 2)))
    assert upper > 0.9 * (right - left - 4) * (middle - top - 4) and lower == 0


def test_licence_text_is_still_extracted(cases, tmp_path):
    import pypdfium2 as pdfium

    signed = cases["licence, two seals"].signed
    document = pdfium.PdfDocument(signed)
    try:
        assert LICENCE_TEXT in document[0].get_textpage().get_text_range()
    finally:
        document.close()
    (tmp_path / "signed.pdf").write_bytes(signed)
    res = subprocess.run([tool("pdftotext"), str(tmp_path / "signed.pdf"), "-"], capture_output=True,
                         timeout=60, check=False)
    assert res.returncode == 0 and LICENCE_TEXT in res.stdout.decode("utf-8")


# ---- pyHanko ---------------------------------------------------------------------------------------

def pyhanko_reader(data: bytes):
    from pyhanko.pdf_utils.reader import PdfFileReader

    return PdfFileReader(io.BytesIO(data))


def our_byte_ranges(data: bytes) -> list[list[int]]:
    with pikepdf.open(io.BytesIO(data)) as pdf:
        return [[int(v) for v in f.V.ByteRange] for f in pdf.Root.AcroForm.Fields if f.get("/FT") == "/Sig"]


@pytest.mark.parametrize("name", CASES)
def test_pyhanko_reads_fields_byte_ranges_and_signed_data(cases, name):
    from pyhanko.sign.diff_analysis import DEFAULT_DIFF_POLICY, DiffResult, ModificationLevel

    data = cases[name].signed
    reader = pyhanko_reader(data)
    signatures = reader.embedded_signatures
    assert [s.byte_range for s in signatures] == our_byte_ranges(data)
    for i, sig in enumerate(signatures):
        signer = sig.signed_data["signer_infos"][0]
        assert signer["digest_algorithm"]["algorithm"].dotted == "1.2.156.10197.1.401"
        assert signer["signature_algorithm"]["algorithm"].dotted == "1.2.156.10197.1.501"
        assert sig.sig_object["/SubFilter"] == "/adbe.pkcs7.detached"
        coverage = sig.evaluate_signature_coverage()
        last = i == len(signatures) - 1
        assert coverage.name == ("ENTIRE_FILE" if last else "ENTIRE_REVISION")
        if not last:
            policy = acrobat_like_policy() if sig.docmdp_level is not None else DEFAULT_DIFF_POLICY
            result = policy.review_file(reader, sig.signed_revision, field_mdp_spec=sig.fieldmdp,
                                        doc_mdp=sig.docmdp_level)
            assert isinstance(result, DiffResult), result
            assert result.modification_level <= ModificationLevel.FORM_FILLING


def acrobat_like_policy():
    """pyHanko's default policy, but allowing a new *visible* signature field after a
    certification, as Acrobat does (pyHanko's default is stricter there, by its own account)."""
    from pyhanko.sign.diff_analysis import DEFAULT_DIFF_POLICY, FormUpdatingRule, StandardDiffPolicy
    from pyhanko.sign.diff_analysis.rules.form_field_rules import (
        GenericFieldModificationRule,
        SigFieldCreationRule,
        SigFieldModificationRule,
    )

    return StandardDiffPolicy(global_rules=DEFAULT_DIFF_POLICY.global_rules, form_rule=FormUpdatingRule(
        field_rules=[SigFieldCreationRule(allow_new_visible_after_certify=True), SigFieldModificationRule(),
                     GenericFieldModificationRule()]))


def test_pyhanko_on_signatures_after_a_certification(cases, pki):
    """pyHanko's default accepts an invisible approval after a P=2 certification and refuses a
    visible one for exactly its documented stricter-than-Acrobat rule, nothing else."""
    from pyhanko.sign.diff_analysis import DEFAULT_DIFF_POLICY, DiffResult, SuspiciousModification
    from pyhanko.sign.fields import MDPPerm

    visible = cases["certified, then approved"].signed
    invisible = sign_with(pki, cases["certified, then approved"].original, appearance_png=None)
    for data, accepted in ((invisible, True), (visible, False)):
        reader = pyhanko_reader(data)
        certification, approval = reader.embedded_signatures
        assert certification.docmdp_level == MDPPerm.FILL_FORMS and approval.docmdp_level is None
        result = DEFAULT_DIFF_POLICY.review_file(reader, certification.signed_revision,
                                                 field_mdp_spec=certification.fieldmdp,
                                                 doc_mdp=certification.docmdp_level)
        if accepted:
            assert isinstance(result, DiffResult), result
        else:
            assert isinstance(result, SuspiciousModification)
            assert "only allowed after an approval signature, not a certification" in str(result)


def test_pyhanko_flags_a_changed_page_after_signing(cases):
    """The negative control: an update that swaps the page's content is not form filling."""
    from pyhanko.sign.diff_analysis import DEFAULT_DIFF_POLICY, SuspiciousModification

    signed = cases["pikepdf, xref table"].signed
    with pikepdf.open(io.BytesIO(signed)) as pdf:
        page = pdf.pages[0].obj
        items = dict(page.items())
        ref = Ref(*page.objgen)
    update = IncrementalUpdate(signed, read_revisions(signed))
    content = update.new_ref()
    update.put(content, Stream({}, b"1 0 0 rg 0 0 595 842 re f"))
    update.put(ref, {**items, "/Contents": content})
    tampered, _ = update.write()
    reader = pyhanko_reader(tampered)
    (sig,) = reader.embedded_signatures
    result = DEFAULT_DIFF_POLICY.review_file(reader, sig.signed_revision, field_mdp_spec=sig.fieldmdp,
                                             doc_mdp=sig.docmdp_level)
    assert isinstance(result, SuspiciousModification), result


# ---- BouncyCastle ------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def bc_cms(tmp_path_factory) -> list[str]:
    classpath = compile_java_tool(tmp_path_factory, CMS_TOOL, BC_JARS)
    return ["java", "-Xshare:auto", "-XX:TieredStopAtLevel=1", "-cp", classpath, "CmsTool", "batch"]


def test_bouncycastle_verifies_contents_over_the_byte_range(cases, bc_cms, tmp_path):
    jobs, expected = [], []
    for name in CASES:
        data = cases[name].signed
        for a0, a, b, c in our_byte_ranges(data):
            assert a0 == 0
            padded = bytes.fromhex(data[a + 1:b - 1].decode("ascii"))
            _, _, _, header, body, _ = parser.parse(padded)  # the CMS without the zero padding
            cms = padded[:len(header) + len(body)]
            content = data[:a] + data[b:b + c]
            jobs.append(f"verify {cms.hex()} {content.hex()}")
            expected.append("ok")
            changed = content[:100] + bytes([content[100] ^ 1]) + content[101:]
            jobs.append(f"verify {cms.hex()} {changed.hex()}")
            expected.append("bad-digest")
    (tmp_path / "jobs.txt").write_text("\n".join(jobs) + "\n", encoding="ascii")
    res = subprocess.run([*bc_cms, str(tmp_path / "jobs.txt")], capture_output=True, timeout=TIMEOUT,
                         check=False)
    assert res.returncode == 0, res.stderr.decode(errors="replace")
    assert res.stdout.decode("ascii").splitlines() == expected
