"""The validation engine on OFD: documents we seal, every way of breaking them, and every real file.

Our documents are sealed with a small PKI made here (root = trust anchor, seal maker, signer,
a CRL from the root); each attack is a byte-level change to the sealed package.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from ca.crl import RevokedEntry
from hsm.hazmat import SM2PrivateKey
from ofd.package import Package, write_package
from ofd.sealing import Placement, SealingError, seal_ofd
from support.paths import INTEROP
from support.pki import PNG, Pki, make_pki
from support.verdicts import SEAL_SIGNATURE_CHECKS
from trust.validation import TrustContext, validate_document

NOW = datetime.now(UTC).replace(microsecond=0)
UNSIGNED = INTEROP / "unsigned-ofd"
SIGNED = INTEROP / "signed-ofd"


def _context(pki: Pki, *, anchors=True, crls=None, revocation="require") -> TrustContext:
    return TrustContext(
        anchors=(pki.root,) if anchors else (),
        seal_makers=(pki.maker,),
        crls=tuple(crls) if crls is not None else (pki.crl(),),
        revocation=revocation,
    )


@pytest.fixture(scope="module")
def pki() -> Pki:
    return make_pki(NOW)


def _seal(pki: Pki, data: bytes, **kw) -> bytes:
    kw.setdefault("time", NOW - timedelta(hours=2))
    return seal_ofd(data, seal=pki.seal, signer=pki.signer_key, signer_certificate=pki.signer.dump(), **kw)


@pytest.fixture(scope="module")
def hello() -> bytes:
    path = UNSIGNED / "ofdrw_helloworld.ofd"
    if not path.exists():
        pytest.skip("interop samples not present")
    return path.read_bytes()


@pytest.fixture(scope="module")
def twice(pki, hello) -> bytes:
    return _seal(pki, _seal(pki, hello), placement=Placement(x=10, y=10))


def _verdict(data: bytes, context: TrustContext, at: datetime = NOW):
    report = validate_document(data, context, at)
    return report.indication, report.sub_indication, report


def _entries(data: bytes) -> dict[str, bytes]:
    package = Package.open(data)
    return {name: package.read(name) for name in package.names}


def _rewrite(data: bytes, changes: dict[str, bytes | None]) -> bytes:
    entries = _entries(data)
    for name, value in changes.items():
        if value is None:
            del entries[name]
        else:
            entries[name] = value
    return write_package(entries)


# ---- what passes ---------------------------------------------------------------------------------
def test_sealed_once_passes_every_check(pki, hello):
    indication, sub, report = _verdict(_seal(pki, hello), _context(pki))
    assert (indication, sub) == ("TOTAL_PASSED", None)
    assert {c.name for c in report.signatures[0].checks} >= SEAL_SIGNATURE_CHECKS
    assert all(c.ok for c in report.signatures[0].checks) and report.checks[0].name == "coverage"
    data = report.as_dict()
    assert data["signatures"][0]["seal"]["name"] == "示例市市场监督管理局电子证照专用章"
    assert data["signatures"][0]["signer"]["subject"].startswith("CN=签章人")
    assert {"name", "passed", "detail"} <= set(data["signatures"][0]["checks"][0])


def test_two_signatures_in_sequence_both_pass(pki, twice):
    indication, _, report = _verdict(twice, _context(pki))
    assert indication == "TOTAL_PASSED" and [s.indication for s in report.signatures] == ["TOTAL_PASSED"] * 2
    # The second signature covers the first one's files.
    second = next(c for c in report.signatures[1].checks if c.name == "references")
    assert "Sign_0/SignedValue.dat" not in second.detail  # detail only lists failures
    refs = [r for r in _entries(twice)["Doc_0/Signs/Sign_1/Signature.xml"].split(b"FileRef=")[1:]]
    assert any(r.startswith(b'"/Doc_0/Signs/Sign_0/SignedValue.dat"') for r in refs)


def test_unsigned_document(hello, pki):
    assert _verdict(hello, _context(pki))[:2] == ("NO_SIGNATURE_FOUND", None)


# ---- trust, time and revocation ---------------------------------------------------------------------
def test_without_the_trust_anchor_it_cannot_tell(pki, hello):
    assert _verdict(_seal(pki, hello), _context(pki, anchors=False))[:2] == (
        "INDETERMINATE",
        "NO_CERTIFICATE_CHAIN_FOUND",
    )


def test_without_revocation_data_try_later(pki, hello):
    assert _verdict(_seal(pki, hello), _context(pki, crls=[]))[:2] == ("INDETERMINATE", "TRY_LATER")


def test_revoked_after_signing_without_proof_of_time(pki, hello):
    crl = pki.crl([RevokedEntry(3, NOW - timedelta(hours=1), "superseded")])
    assert _verdict(_seal(pki, hello), _context(pki, crls=[crl]))[:2] == ("INDETERMINATE", "REVOKED_NO_POE")


def test_revoked_before_signing(pki, hello):
    crl = pki.crl([RevokedEntry(3, NOW - timedelta(days=1), "superseded")])
    assert _verdict(_seal(pki, hello), _context(pki, crls=[crl]))[:2] == ("TOTAL_FAILED", "REVOKED")


def test_key_compromise_counts_whatever_the_signing_time(pki, hello):
    crl = pki.crl([RevokedEntry(3, NOW - timedelta(hours=1), "key_compromise")])
    assert _verdict(_seal(pki, hello), _context(pki, crls=[crl]))[:2] == ("TOTAL_FAILED", "REVOKED")


def test_after_the_certificate_expired(pki, hello):
    later = NOW + timedelta(days=40)
    context = _context(pki, crls=[pki.crl(at=later)])
    assert _verdict(_seal(pki, hello), context, later)[:2] == ("INDETERMINATE", "OUT_OF_BOUNDS_NO_POE")


# ---- attacks on the package -------------------------------------------------------------------------
def test_changed_page_content(pki, twice):
    content = _entries(twice)["Doc_0/Pages/Page_0/Content.xml"].replace("你好".encode(), "再见".encode())
    indication, sub, report = _verdict(
        _rewrite(twice, {"Doc_0/Pages/Page_0/Content.xml": content}), _context(pki)
    )
    assert (indication, sub) == ("TOTAL_FAILED", "HASH_FAILURE")
    assert "Content.xml" in next(c for c in report.signatures[0].checks if c.name == "references").detail


def test_added_file(pki, twice):
    indication, sub, report = _verdict(_rewrite(twice, {"Doc_0/Res/extra.png": PNG}), _context(pki))
    assert (indication, sub) == ("TOTAL_FAILED", "NOT_COVERED") and "extra.png" in report.checks[0].detail


def test_deleted_signature_entry(pki, twice):
    listing = _entries(twice)["Doc_0/Signs/Signatures.xml"]
    start = listing.index(b'<ofd:Signature ID="2"')
    end = listing.index(b"/>", start) + 2
    indication, sub, report = _verdict(
        _rewrite(twice, {"Doc_0/Signs/Signatures.xml": listing[:start] + listing[end:]}), _context(pki)
    )
    assert (indication, sub) == ("TOTAL_FAILED", "NOT_COVERED") and len(report.signatures) == 1
    assert "Sign_1" in report.checks[0].detail


def test_flipped_signature_type(pki, twice):
    listing = _entries(twice)["Doc_0/Signs/Signatures.xml"].replace(
        b'ID="1" Type="Seal"', b'ID="1" Type="Sign"'
    )
    indication, sub, _ = _verdict(_rewrite(twice, {"Doc_0/Signs/Signatures.xml": listing}), _context(pki))
    assert (indication, sub) == ("TOTAL_FAILED", "FORMAT_FAILURE")


def test_swapped_seal_file(pki, twice):
    indication, sub, _ = _verdict(
        _rewrite(twice, {"Doc_0/Signs/Sign_1/Seal.esl": pki.other_seal}), _context(pki)
    )
    assert indication == "TOTAL_FAILED" and sub in ("FORMAT_FAILURE", "HASH_FAILURE")


def test_moved_stamp(pki, twice):
    xml = _entries(twice)["Doc_0/Signs/Sign_1/Signature.xml"].replace(b'Boundary="10 10', b'Boundary="11 10')
    indication, sub, _ = _verdict(_rewrite(twice, {"Doc_0/Signs/Sign_1/Signature.xml": xml}), _context(pki))
    assert (indication, sub) == ("TOTAL_FAILED", "HASH_FAILURE")


def test_unreadable_input_is_an_error_not_a_verdict(pki):
    from ofd.errors import OfdError
    from trust.validation import UnsupportedDocument

    with pytest.raises(UnsupportedDocument):
        validate_document(b"not a document", _context(pki), NOW)
    with pytest.raises(OfdError):
        validate_document(b"PK\x03\x04" + bytes(40), _context(pki), NOW)


# ---- sealing refusals ------------------------------------------------------------------------------
def test_a_locked_document_is_not_sealed_again(pki):
    path = SIGNED / "ofdrw_allprotected_ofdrw_sesv4.ofd"
    with pytest.raises(SealingError, match="locked"):
        _seal(pki, path.read_bytes())


@pytest.mark.parametrize("placement", [Placement(page=5), Placement(x=200, y=10), Placement(x=-1, y=0)])
def test_stamp_must_be_on_a_page(pki, hello, placement):
    with pytest.raises(SealingError):
        _seal(pki, hello, placement=placement)


def test_signer_must_hold_the_seal(pki, hello):
    stranger = SM2PrivateKey.generate()
    with pytest.raises(SealingError, match="not one of seal"):
        seal_ofd(hello, seal=pki.seal, signer=stranger, signer_certificate=pki.root.dump())


# ---- every real file -------------------------------------------------------------------------------
# file -> (document indication, sub-indication, [(signature id, indication, sub-indication)]), no anchors
REAL = {
    "ofdrw_1_zhejiang_vat_einvoice_2020_sesv4.ofd": (
        "INDETERMINATE",
        "NO_CERTIFICATE_CHAIN_FOUND",
        [("2", "INDETERMINATE", "NO_CERTIFICATE_CHAIN_FOUND")],
    ),
    "ofdrw_v4signed_chongqing_test_einvoice_sesv4.ofd": (
        "INDETERMINATE",
        "NO_CERTIFICATE_CHAIN_FOUND",
        [("1", "INDETERMINATE", "NO_CERTIFICATE_CHAIN_FOUND")],
    ),
    "easyofd_guizhou_vat_special_einvoice_2022_sesv4.ofd": (
        "INDETERMINATE",
        "NO_CERTIFICATE_CHAIN_FOUND",
        [("2", "INDETERMINATE", "NO_CERTIFICATE_CHAIN_FOUND")],
    ),
    "ofdrw_SignScaleError_zhejiang_einvoice_platform_sesv4.ofd": (
        "INDETERMINATE",
        "NO_CERTIFICATE_CHAIN_FOUND",
        [("1", "INDETERMINATE", "NO_CERTIFICATE_CHAIN_FOUND")],
    ),
    "ofdrw_zsbk_yunnan_2sigs_sesv4_modified_after_signing.ofd": (
        "TOTAL_FAILED",
        "HASH_FAILURE",
        [("2", "TOTAL_FAILED", "HASH_FAILURE"), ("4", "TOTAL_FAILED", "HASH_FAILURE")],
    ),
    "ofdrw_keyword_shandong_sesv4_rawrs_plus_gbt35275.ofd": (
        "TOTAL_FAILED",
        "HASH_FAILURE",
        [("2", "TOTAL_FAILED", "HASH_FAILURE"), ("4", "TOTAL_FAILED", "HASH_FAILURE")],
    ),
    "ofdrw_testImageNotFound_topsec_gbt35275_pkcs9_2sigs.ofd": (
        "INDETERMINATE",
        "NO_CERTIFICATE_CHAIN_FOUND",
        [
            ("1", "INDETERMINATE", "NO_CERTIFICATE_CHAIN_FOUND"),
            ("2", "INDETERMINATE", "NO_CERTIFICATE_CHAIN_FOUND"),
        ],
    ),
    "ofdjs_ccb_bank_receipt_ofdrw_gbt35275_pkcs9.ofd": (
        "INDETERMINATE",
        "NO_CERTIFICATE_CHAIN_FOUND",
        [("1", "INDETERMINATE", "NO_CERTIFICATE_CHAIN_FOUND")],
    ),
    "ofdrw_hist_kinggrid_auto_seal_sesv1.ofd": (
        "INDETERMINATE",
        "NO_CERTIFICATE_CHAIN_FOUND",
        [("1", "INDETERMINATE", "NO_CERTIFICATE_CHAIN_FOUND")],
    ),
    # The seal maker's signature verifies under no rule: a seal whose maker cannot be shown.
    "ofdrw_hist_anzhengtong_manual_seal_sesv4.ofd": (
        "TOTAL_FAILED",
        "SIG_CRYPTO_FAILURE",
        [("2", "TOTAL_FAILED", "SIG_CRYPTO_FAILURE"), ("4", "TOTAL_FAILED", "SIG_CRYPTO_FAILURE")],
    ),
    "ofdrw_n_dms360_sesv1_does_not_verify.ofd": (
        "TOTAL_FAILED",
        "HASH_FAILURE",
        [("0", "TOTAL_FAILED", "HASH_FAILURE")],
    ),
    # Re-signed in 2026 with a seal that expired in 2022.
    "ofdrw_SESV4SignDoc_ofdrw_sesv4.ofd": (
        "TOTAL_FAILED",
        "SIG_CONSTRAINTS_FAILURE",
        [("1", "TOTAL_FAILED", "SIG_CONSTRAINTS_FAILURE")],
    ),
    "ofdrw_allprotected_ofdrw_sesv4.ofd": (
        "INDETERMINATE",
        "NO_CERTIFICATE_CHAIN_FOUND",
        [("001", "INDETERMINATE", "NO_CERTIFICATE_CHAIN_FOUND")],
    ),
    # The first signature protected Signatures.xml; the second signature changed it.
    "ofdrw_h_ofdrw_testseal_2sigs_sesv4.ofd": (
        "TOTAL_FAILED",
        "HASH_FAILURE",
        [("s001", "TOTAL_FAILED", "HASH_FAILURE"), ("s007", "INDETERMINATE", "NO_CERTIFICATE_CHAIN_FOUND")],
    ),
    # A bare SM2 signature carries no certificate: the signer must be supplied (see below).
    "ofdrw_DigitalSign_ofdrw_bare_sm2_sign.ofd": (
        "INDETERMINATE",
        "NO_SIGNING_CERTIFICATE_FOUND",
        [("s001", "INDETERMINATE", "NO_SIGNING_CERTIFICATE_FOUND")],
    ),
}


@pytest.mark.interop
def test_every_signed_sample_is_in_the_table():
    assert sorted(p.name for p in SIGNED.glob("*.ofd")) == sorted(REAL)


@pytest.mark.interop
@pytest.mark.parametrize("name", sorted(REAL))
def test_real_files_get_the_verdict_their_bytes_deserve(name):
    indication, sub, report = _verdict((SIGNED / name).read_bytes(), TrustContext(), NOW)
    expected = REAL[name]
    assert (indication, sub) == expected[:2], report.as_text()
    assert [(s.id, s.indication, s.sub_indication) for s in report.signatures] == expected[2]
    for signature in report.signatures:
        for check in signature.checks:
            assert check.ok == (check.code == ""), check


@pytest.mark.interop
def test_bare_signature_with_its_signer_supplied():
    from ca.validation import load_certificates

    user = load_certificates((INTEROP / "certs" / "ofdrw_USER_cert.pem").read_bytes())[0]
    report = validate_document(
        (SIGNED / "ofdrw_DigitalSign_ofdrw_bare_sm2_sign.ofd").read_bytes(),
        TrustContext(),
        NOW,
        known_certificates=[user.dump()],
    )
    checks = {c.name: c for c in report.signatures[0].checks}
    assert checks["signature"].ok and checks["references"].ok
    assert report.sub_indication == "NO_CERTIFICATE_CHAIN_FOUND"


@pytest.mark.interop
def test_ofdrw_root_as_anchor_lacks_keycertsign():
    from ca.validation import load_certificates

    root = load_certificates((INTEROP / "certs" / "ofdrw_ROOT_cert.pem").read_bytes())[0]
    report = validate_document(
        (SIGNED / "ofdrw_allprotected_ofdrw_sesv4.ofd").read_bytes(),
        TrustContext(anchors=(root,)),
        datetime(2021, 1, 1, tzinfo=UTC),
    )
    chain = next(c for c in report.signatures[0].checks if c.name == "certificate-chain")
    assert not chain.ok and "keyCertSign" in chain.detail
    assert report.indication == "INDETERMINATE"


@pytest.mark.parametrize("name, page", [("ofdrw_fptpl_invoice_template.ofd", 0), ("ofdrw_doc1File.ofd", 1)])
def test_other_unsigned_samples_seal_and_pass(pki, name, page):
    # fptpl's OFD.xml names a Signatures.xml it does not contain; doc1File has several pages.
    sealed = _seal(pki, (UNSIGNED / name).read_bytes(), placement=Placement(page=page, x=5, y=5))
    indication, _, report = _verdict(sealed, _context(pki))
    assert indication == "TOTAL_PASSED", report.as_text()
    listing = _entries(sealed)
    assert sum(1 for n in listing if n.endswith("Signatures.xml")) == 1


def test_sign_type_signature_with_gbt35275_signed_data(pki, hello):
    from ofd.sealing import sign_ofd

    signed = sign_ofd(hello, signer=pki.signer_key, signer_certificate=pki.signer.dump(), time=NOW)
    indication, _, report = _verdict(signed, _context(pki))
    assert indication == "TOTAL_PASSED", report.as_text()
    (signature,) = report.signatures
    assert signature.format == "gbt35275" and signature.seal is None
    assert b'Type="Sign"' in _entries(signed)["Doc_0/Signs/Signatures.xml"]
    # Then a seal on top: both stay valid.
    both = _seal(pki, signed)
    results = validate_document(both, _context(pki), NOW).signatures
    assert [s.indication for s in results] == ["TOTAL_PASSED"] * 2
    flipped = _entries(signed)["Doc_0/Signs/Signatures.xml"].replace(b'Type="Sign"', b'Type="Seal"')
    assert _verdict(_rewrite(signed, {"Doc_0/Signs/Signatures.xml": flipped}), _context(pki))[:2] == (
        "TOTAL_FAILED",
        "FORMAT_FAILURE",
    )


# ---- attacks found in review ----------------------------------------------------------------------
def _rogue_seal(pki, cert, key, name="示例市人民政府公章", es_id="35010099999999") -> bytes:
    from seals.make import SealContent, make_seal

    start = NOW - timedelta(days=1)
    content = SealContent(
        es_id=es_id,
        seal_type=1,
        name=name,
        certificates=[cert.dump()],
        create_date=start,
        valid_start=start,
        valid_end=NOW + timedelta(days=20),
        picture_type="png",
        picture=PNG,
        width_mm=40,
        height_mm=40,
    )
    return make_seal(content, maker_certificate=cert.dump(), maker=key)


def test_a_signer_cannot_make_its_own_seal(pki, hello):
    forged = _rogue_seal(pki, pki.signer, pki.signer_key)
    doc = seal_ofd(
        hello,
        seal=forged,
        signer=pki.signer_key,
        signer_certificate=pki.signer.dump(),
        time=NOW - timedelta(hours=1),
    )
    indication, sub, report = _verdict(doc, _context(pki))
    assert (indication, sub) == ("INDETERMINATE", "CHAIN_CONSTRAINTS_FAILURE")
    assert not next(c for c in report.signatures[0].checks if c.name == "seal-maker-trusted").ok


def test_a_time_stamping_key_neither_signs_nor_makes_seals(pki, hello):
    from ca.certificates import build_certificate
    from ca.names import subject_name
    from ca.profiles import TIME_STAMPING

    key = SM2PrivateKey.generate()
    tsa = build_certificate(
        profile=TIME_STAMPING,
        subject=subject_name("时间戳服务"),
        subject_key=key.public_key(),
        signer=pki.root_key,
        issuer=pki.root,
        serial=77,
        not_before=NOW - timedelta(days=2),
        not_after=NOW + timedelta(days=30),
    )
    doc = seal_ofd(
        hello,
        seal=_rogue_seal(pki, tsa, key),
        signer=key,
        signer_certificate=tsa.dump(),
        time=NOW - timedelta(hours=1),
    )
    context = TrustContext(anchors=(pki.root,), crls=(pki.crl(),), seal_makers=(tsa,))
    _, _, report = _verdict(doc, context)
    chain = next(c for c in report.signatures[0].checks if c.name == "certificate-chain")
    assert report.indication != "TOTAL_PASSED" and not chain.ok and "another service" in chain.detail


def test_deleting_the_first_of_two_signatures_fails(pki, twice):
    listing = _entries(twice)["Doc_0/Signs/Signatures.xml"]
    start = listing.index(b'<ofd:Signature ID="1"')
    end = listing.index(b"/>", start) + 2
    indication, sub, report = _verdict(
        _rewrite(twice, {"Doc_0/Signs/Signatures.xml": listing[:start] + listing[end:]}), _context(pki)
    )
    assert (indication, sub) == ("TOTAL_FAILED", "NOT_COVERED")
    assert any(c.name == "signature-list" and "Sign_0/Signature.xml" in c.detail for c in report.checks)


def test_two_entries_for_one_signature(pki, hello):
    sealed = _seal(pki, hello)
    listing = _entries(sealed)["Doc_0/Signs/Signatures.xml"]
    twin = listing.replace(
        b"</ofd:Signatures>",
        b'<ofd:Signature ID="9" Type="Seal" BaseLoc="/Doc_0/Signs/Sign_0/Signature.xml"/></ofd:Signatures>',
    )
    indication, sub, report = _verdict(_rewrite(sealed, {"Doc_0/Signs/Signatures.xml": twin}), _context(pki))
    assert (indication, sub) == ("TOTAL_FAILED", "FORMAT_FAILURE") and len(report.signatures) == 1


def _without_ofd_xml_reference(pki, hello) -> bytes:
    """Sealed the way KingGrid and Anzhengtong do it: OFD.xml left out of the References."""
    import ofd.sealing as sealing

    original = sealing._signature_xml

    def leave_out(*, references, **kw):
        return original(references={k: v for k, v in references.items() if k != "OFD.xml"}, **kw)

    sealing._signature_xml = leave_out
    try:
        return _seal(pki, hello)
    finally:
        sealing._signature_xml = original


@pytest.mark.parametrize(
    "smuggled",
    [
        b'<?xml version="1.0"?><ofd:Page xmlns:ofd="http://www.ofdspec.org/2016"><ofd:Content/></ofd:Page>',
        b'<?xml version="1.0"?><ofd:Signatures xmlns:ofd="http://www.ofdspec.org/2016"/>',
    ],
)
def test_unsigned_ofd_xml_cannot_smuggle_files_in(pki, hello, smuggled):
    signed = _without_ofd_xml_reference(pki, hello)
    assert _verdict(signed, _context(pki))[0] == "TOTAL_PASSED"
    ofd_xml = (
        _entries(signed)["OFD.xml"]
        .decode()
        .replace(
            "</ofd:OFD>",
            "<ofd:DocBody><ofd:DocRoot>Doc_0/Document.xml</ofd:DocRoot>"
            "<ofd:Signatures>/Doc_0/Tpls/Tpl_9/Content.xml</ofd:Signatures></ofd:DocBody></ofd:OFD>",
        )
        .encode()
    )
    attacked = _rewrite(signed, {"Doc_0/Tpls/Tpl_9/Content.xml": smuggled, "OFD.xml": ofd_xml})
    indication, sub, _ = _verdict(attacked, _context(pki))
    assert indication == "TOTAL_FAILED" and sub in ("NOT_COVERED", "FORMAT_FAILURE")


def test_sign_type_seal_file_is_not_exempt(pki, hello):
    from ofd.sealing import sign_ofd

    signed = sign_ofd(hello, signer=pki.signer_key, signer_certificate=pki.signer.dump(), time=NOW)
    xml = _entries(signed)["Doc_0/Signs/Sign_0/Signature.xml"]
    assert b"Seal" not in xml.split(b"SignedValue")[0].split(b"SignedInfo")[1]  # no Seal element written
    extra = _rewrite(signed, {"Doc_0/Signs/Sign_0/Seal.esl": pki.other_seal})
    assert _verdict(extra, _context(pki))[:2] == ("TOTAL_FAILED", "NOT_COVERED")


def test_a_damaged_signature_list_is_not_an_unsigned_document(pki, hello):
    sealed = _seal(pki, hello)
    broken = _rewrite(
        sealed, {"Doc_0/Signs/Signatures.xml": b"<ofd:Signatures xmlns:ofd='x'><ofd:Signature/>"}
    )
    assert _verdict(broken, _context(pki))[:2] == ("TOTAL_FAILED", "FORMAT_FAILURE")


def test_hostile_time_values_are_failures_not_crashes(pki, hello):
    sealed = _seal(pki, hello)
    entries = _entries(sealed)
    entries["Doc_0/Signs/Sign_0/SignedValue.dat"] = b"\x30\x03\x02\x01\x01"
    entries["Doc_0/Signs/Sign_0/Signature.xml"] = (
        entries["Doc_0/Signs/Sign_0/Signature.xml"]
        .replace(b"<ofd:SignatureDateTime>", b"<ofd:SignatureDateTime>20260101000000+9900<!--")
        .replace(b"</ofd:SignatureDateTime>", b"--></ofd:SignatureDateTime>")
    )
    indication, _, _ = _verdict(write_package(entries), _context(pki))
    assert indication == "TOTAL_FAILED"


def test_text_report_cannot_be_rewritten_by_escape_sequences():
    from trust.report import printable

    assert printable("章\x1b[6A\x1b[2KTOTAL_PASSED\u202e") == "章[6A[2KTOTAL_PASSED"


def test_stamps_get_ids_no_part_of_the_document_uses(pki, twice):
    from ofd.xml import duplicate_ids, parse

    package = Package.open(twice)
    roots = [parse(package.read(n), n) for n in package.names if n.endswith(".xml") and "Signatures" not in n]
    assert duplicate_ids(*roots) == []


def test_a_root_level_signature_list(pki, hello):
    entries = _entries(hello)
    entries["OFD.xml"] = entries["OFD.xml"].replace(
        b"</ofd:DocRoot>", b"</ofd:DocRoot><ofd:Signatures>/Signatures.xml</ofd:Signatures>"
    )
    sealed = _seal(pki, write_package(entries))
    assert "Sign_0/Signature.xml" in _entries(sealed)
    assert _verdict(sealed, _context(pki))[0] == "TOTAL_PASSED"


def test_sign_type_takes_no_stamp_position(pki, hello):
    from ofd.sealing import sign_ofd

    with pytest.raises(SealingError, match="no stamp"):
        sign_ofd(
            hello, signer=pki.signer_key, signer_certificate=pki.signer.dump(), placement=Placement(x=5, y=5)
        )
    with pytest.raises(SealingError, match="page 3"):
        sign_ofd(
            hello, signer=pki.signer_key, signer_certificate=pki.signer.dump(), placement=Placement(page=2)
        )
