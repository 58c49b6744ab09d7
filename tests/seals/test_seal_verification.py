"""Seal and seal-signature checks: every link, over the bytes as they stand, on real files and ours."""

from __future__ import annotations

import dataclasses
import zipfile
from datetime import UTC, datetime, timedelta

import pytest

from ca.certificates import build_certificate
from ca.names import subject_name
from ca.profiles import DEPARTMENT_SIGNER, ROOT_CA, SEAL_MAKER
from ca.verdict import INDETERMINATE, TOTAL_FAILED, TOTAL_PASSED, verdict
from hsm.hazmat import SM2PrivateKey
from hsm.sm3 import sm3
from seals.make import SealContent, make_seal, sign_with_seal
from seals.seal import BitString, CertDigest, read_seal
from seals.seal_signature import read_seal_signature
from seals.verification import maker_signature_check, seal_signature_checks, signer_in_seal_check
from support.paths import INTEROP

NOW = datetime(2026, 11, 1, 8, 0, tzinfo=UTC)
PNG = b"\x89PNG\r\n\x1a\n" + bytes(32)
DOC = b'<?xml version="1.0"?><ofd:Signature xmlns:ofd="http://www.ofdspec.org/2016"/>'
CHECKS = ("data-hash", "signature", "seal-maker-signature", "signer-in-seal", "seal-validity")

# (file, signature folder) -> outcome of each check in CHECKS (True passes), as the bytes deserve.
REAL = {
    ("ofdrw_1_zhejiang_vat_einvoice_2020_sesv4.ofd", "Sign_0"): (True, True, True, True, True),
    ("easyofd_guizhou_vat_special_einvoice_2022_sesv4.ofd", "Sign_0"): (True, True, True, True, True),
    ("ofdrw_v4signed_chongqing_test_einvoice_sesv4.ofd", "Sign_0"): (True, True, True, True, True),
    ("ofdrw_SignScaleError_zhejiang_einvoice_platform_sesv4.ofd", "Sign_0"): (True, True, True, True, True),
    ("ofdrw_zsbk_yunnan_2sigs_sesv4_modified_after_signing.ofd", "Sign_0"): (True, True, True, True, True),
    ("ofdrw_keyword_shandong_sesv4_rawrs_plus_gbt35275.ofd", "Sign_1"): (True, True, True, True, True),
    ("ofdrw_hist_kinggrid_auto_seal_sesv1.ofd", "Sign_0"): (True, True, True, True, True),
    ("ofdrw_allprotected_ofdrw_sesv4.ofd", "Sign_0"): (True, True, True, True, True),
    ("ofdrw_h_ofdrw_testseal_2sigs_sesv4.ofd", "Sign_1"): (True, True, True, True, True),
    # ofdrw's test fixture was re-signed in 2026 with a seal that expired in 2022.
    ("ofdrw_SESV4SignDoc_ofdrw_sesv4.ofd", "Sign_0"): (True, True, True, True, False),
    # Anzhengtong: the maker's signature verifies under no rule (SOURCES.md).
    ("ofdrw_hist_anzhengtong_manual_seal_sesv4.ofd", "Sign_0"): (True, True, False, True, True),
    # dms360: nothing but the maker signature and the dates hold.
    ("ofdrw_n_dms360_sesv1_does_not_verify.ofd", "Sign_0"): (False, False, True, False, True),
}


@pytest.mark.interop
@pytest.mark.parametrize("name, folder", sorted(REAL))
def test_real_seal_signatures_get_what_their_bytes_deserve(name, folder):
    with zipfile.ZipFile(INTEROP / "signed-ofd" / name) as z:
        value = read_seal_signature(z.read(f"Doc_0/Signs/{folder}/SignedValue.dat"))
        document = z.read(f"Doc_0/Signs/{folder}/Signature.xml")
    checks = seal_signature_checks(value, document)
    assert tuple(c.name for c in checks) == CHECKS
    assert tuple(c.ok for c in checks) == REAL[(name, folder)], [c.detail for c in checks]
    for check in checks:
        assert check.ok == (check.code == "")
    expected = TOTAL_PASSED if all(REAL[(name, folder)]) else TOTAL_FAILED
    assert verdict(checks)[0] == expected


@pytest.mark.interop
@pytest.mark.parametrize("name, ok", [
    ("ofdrw_UserV1.esl", True), ("ofdrw_UserV4.esl", True), ("ofdrw_UserV5.esl", True),
    ("ofdrw_UserV5_ts.esl", True), ("ofdrw_hist_UserV4_BER.esl", True), ("ofdrw_hist_UserV1_BER.esl", True),
    ("ofdrw_SESealData_hebeigede_v4.der", False),
])
def test_real_seal_maker_signatures(name, ok):
    check = maker_signature_check(read_seal((INTEROP / "seals" / name).read_bytes()))
    assert check.ok is ok and (check.code == "SIG_CRYPTO_FAILURE") is (not ok)


def test_raw_rs_signature_form_is_reported():
    path = INTEROP / "signed-ofd" / "ofdrw_keyword_shandong_sesv4_rawrs_plus_gbt35275.ofd"
    if not path.exists():
        pytest.skip("interop samples not present")
    with zipfile.ZipFile(path) as z:
        value = read_seal_signature(z.read("Doc_0/Signs/Sign_1/SignedValue.dat"))
    check = seal_signature_checks(value, None)[0]
    assert check.name == "signature" and check.ok and "(raw," in check.detail


# ---- seals we make, and every way of breaking them ----------------------------------------------
@pytest.fixture(scope="module")
def made():
    root_key, maker_key, signer_key, other_key = (SM2PrivateKey.generate() for _ in range(4))
    root = build_certificate(profile=ROOT_CA, subject=subject_name("Root"), subject_key=root_key.public_key(),
                             signer=root_key, issuer=None, serial=1, not_before=NOW - timedelta(days=1))

    def leaf(profile, key, cn, serial):
        return build_certificate(profile=profile, subject=subject_name(cn), subject_key=key.public_key(),
                                 signer=root_key, issuer=root, serial=serial,
                                 not_before=NOW - timedelta(days=1)).dump()

    maker_cert = leaf(SEAL_MAKER, maker_key, "制章人", 2)
    signer_cert = leaf(DEPARTMENT_SIGNER, signer_key, "签章人", 3)
    other_cert = leaf(DEPARTMENT_SIGNER, other_key, "别人", 4)
    content = SealContent(es_id="35010000000001", seal_type=1, name="示例市市场监督管理局电子证照专用章",
                          certificates=[signer_cert], create_date=NOW, valid_start=NOW,
                          valid_end=NOW + timedelta(days=365), picture_type="png", picture=PNG,
                          width_mm=40, height_mm=40)
    seal = make_seal(content, maker_certificate=maker_cert, maker=maker_key)
    return {"seal": seal, "signer": (signer_key, signer_cert), "other": (other_key, other_cert),
            "maker": (maker_key, maker_cert)}


def _sign(made, *, who="signer", time=NOW + timedelta(days=1), document=DOC, seal=None):
    key, cert = made[who]
    return sign_with_seal(seal or made["seal"], data_hash=sm3(document), property_info="/Doc_0/Signs/Sign_0",
                          signer=key, signer_certificate=cert, time=time)


def _outcome(value: bytes, document: bytes = DOC) -> dict[str, str]:
    return {c.name: c.code or "ok" for c in seal_signature_checks(read_seal_signature(value), document)}


def test_our_seal_signature_passes_every_check(made):
    assert set(_outcome(_sign(made)).values()) == {"ok"}


def test_changed_document_is_a_hash_failure(made):
    outcome = _outcome(_sign(made), DOC + b" ")
    assert outcome["data-hash"] == "HASH_FAILURE" and outcome["signature"] == "ok"


def test_one_flipped_byte_in_the_signed_tbs_fails_the_signature(made):
    value = bytearray(_sign(made))
    start = value.index(b"/Doc_0/Signs/Sign_0")
    value[start + 1] ^= 0x01  # inside propertyInfo, within TBS_Sign
    assert _outcome(bytes(value))["signature"] == "SIG_CRYPTO_FAILURE"


def test_a_forged_seal_fails_the_maker_check(made):
    seal = bytearray(made["seal"])
    at = seal.index("电子证照专用章".encode())
    seal[at:at + 6] = "合同".encode()  # rename the seal: same length, maker signature now wrong
    outcome = _outcome(_sign(made, seal=bytes(seal)))
    assert outcome["seal-maker-signature"] == "SIG_CRYPTO_FAILURE" and outcome["signature"] == "ok"


def test_a_signer_the_seal_does_not_list(made):
    outcome = _outcome(_sign(made, who="other"))
    assert outcome["signer-in-seal"] == "SIG_CONSTRAINTS_FAILURE" and outcome["signature"] == "ok"


@pytest.mark.parametrize("time", [NOW - timedelta(seconds=1), NOW + timedelta(days=366)])
def test_a_seal_used_outside_its_validity(made, time):
    assert _outcome(_sign(made, time=time))["seal-validity"] == "SIG_CONSTRAINTS_FAILURE"


def test_signer_by_certificate_digest(made):
    seal = read_seal(made["seal"])
    _, cert = made["signer"]
    by_digest = dataclasses.replace(seal, certificates=(), cert_list_type=2,
                                    cert_digests=(CertDigest("SM3", sm3(cert)),))
    assert signer_in_seal_check(by_digest, cert).ok
    assert not signer_in_seal_check(by_digest, made["other"][1]).ok
    unknown = dataclasses.replace(by_digest, cert_digests=(CertDigest("MD5", b"\0" * 16),))
    check = signer_in_seal_check(unknown, cert)
    assert not check.ok and "MD5" in check.detail


def test_unreadable_certificates_and_signatures_never_pass(made):
    value = read_seal_signature(_sign(made))
    garbage_cert = dataclasses.replace(value, signer_certificate=b"\x30\x03\x02\x01\x01")
    checks = {c.name: c for c in seal_signature_checks(garbage_cert, DOC)}
    assert checks["signature"].code == "NO_SIGNING_CERTIFICATE_FOUND"
    assert verdict(checks.values())[0] == TOTAL_FAILED  # signer-in-seal fails too
    garbage_sig = dataclasses.replace(value, signature=BitString(b"\x30\x02\x01", 0))
    codes = {c.name: c.code for c in seal_signature_checks(garbage_sig, DOC)}
    assert codes["signature"] == "SIG_CRYPTO_FAILURE"
    other_alg = dataclasses.replace(value, algorithm="1.2.840.10045.4.3.2")  # ecdsa-with-SHA256
    check = seal_signature_checks(other_alg, DOC)[1]
    assert check.code == "SIG_CRYPTO_FAILURE" and "not SM2-with-SM3" in check.detail


def test_verdict_prefers_a_failure_to_an_unknown():
    from ca.verdict import failed, passed

    assert verdict([passed("a", ""), failed("b", "", "NO_CERTIFICATE_CHAIN_FOUND"),
                    failed("c", "", "HASH_FAILURE")]) == (TOTAL_FAILED, "HASH_FAILURE")
    assert verdict([failed("b", "", "NO_CERTIFICATE_CHAIN_FOUND")]) == (INDETERMINATE,
                                                                        "NO_CERTIFICATE_CHAIN_FOUND")
    assert verdict([passed("a", "")]) == (TOTAL_PASSED, None)
    with pytest.raises(ValueError, match="sub-indication"):
        failed("x", "", "NOT_A_CODE")
