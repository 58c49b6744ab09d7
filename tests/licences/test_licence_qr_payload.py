"""The licence QR payload: layout, strict decoding, offline verification, QR size and scanning."""

from __future__ import annotations

import base64
import json
from dataclasses import replace
from datetime import UTC, date, datetime, timedelta

import pytest
import qrcode
from qrcode.constants import ERROR_CORRECT_M

from ca.certificates import build_certificate
from ca.names import credit_code_check_character, subject_name
from ca.profiles import DEPARTMENT_SIGNER
from ca.verdict import INDETERMINATE, TOTAL_FAILED, TOTAL_PASSED
from hsm.hazmat import SM2PrivateKey
from hsm.signature import decode_signature
from hsm.sm3 import sm3
from licences.identifiers import LicenceIdentifier
from licences.qr_payload import (
    CLAIMS_BYTES,
    MAX_URL_CHARS,
    PAYLOAD_BYTES,
    QrClaims,
    QrPayloadError,
    canonical_json,
    decode_payload,
    encode_payload,
    key_id_of,
    licence_data_hash,
    verification_base,
    verify_payload,
    verify_qr_report,
)
from pages.qr import qr_matrix
from support.pki import make_pki

TYPE_CODE = "11100000MB0143028R001"
ISSUER = "11350100MB0000000Y"
BASE = "https://verify.example.gov.cn/V/"
ALPHANUMERIC = set("0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ $%*+-./:")
NOW = datetime(2026, 5, 20, 2, 0, tzinfo=UTC)
DATA = {"企业名称": "示例市某某科技有限公司", "注册资本": "100万元人民币", "成立日期": "2020-01-15"}


OTHER_ISSUER = "11350200MB0000000" + credit_code_check_character("11350200MB0000000")


class Department:
    """A department signer certificate carrying its credit code, as the CA issues them."""

    def __init__(self, pki, code: str, *, start: datetime | None = None, days: int = 30):
        self.key = SM2PrivateKey.generate()
        start = start or pki.now - timedelta(days=10)
        self.cert = build_certificate(
            profile=DEPARTMENT_SIGNER, subject=subject_name("示例市市场监督管理局", credit_code=code),
            subject_key=self.key.public_key(), signer=pki.root_key, issuer=pki.root,
            serial=int(start.timestamp()), not_before=start, not_after=start + timedelta(days=days))
        self.der = self.cert.dump()


@pytest.fixture(scope="module")
def pki():
    return make_pki(NOW)


@pytest.fixture(scope="module")
def dept(pki):
    return Department(pki, ISSUER)


def _identifier(serial: int = 42, version: int = 1) -> str:
    return LicenceIdentifier(TYPE_CODE, ISSUER, serial, version).text


def _claims(dept, **changes) -> QrClaims:
    claims = QrClaims.for_licence(_identifier(), DATA, valid_until=date(2030, 6, 30),
                                  signer_certificate=dept.der, issued_at=date(2026, 5, 20))
    return replace(claims, **changes)


def _raw(text: str) -> bytes:
    data = text.rsplit("/", 1)[-1]
    return base64.b32decode(data + "=" * (-len(data) % 8))


def _text(raw: bytes, base: str = "HTTPS://VERIFY.EXAMPLE.GOV.CN/V/") -> str:
    return base + base64.b32encode(raw).decode().rstrip("=")


def _signed(raw_claims: bytes, key: SM2PrivateKey) -> str:
    """A payload whose (possibly malformed) claims carry a valid signature."""
    return _text(raw_claims + decode_signature(key.sign(raw_claims)).to_raw())


# ---- round trip ----------------------------------------------------------------------------------

def test_round_trip_verifies_and_the_whole_url_is_alphanumeric(dept):
    claims = _claims(dept)
    text = encode_payload(claims, dept.key, BASE)
    assert text.startswith("HTTPS://VERIFY.EXAMPLE.GOV.CN/V/")
    assert set(text) <= ALPHANUMERIC
    assert len(_raw(text)) == PAYLOAD_BYTES
    decoded = decode_payload(text)
    assert decoded.claims == claims
    assert decoded.signed_bytes == _raw(text)[:CLAIMS_BYTES]
    assert dept.key.public_key().verify(decoded.signature, decoded.signed_bytes).form.value == "raw"
    result = verify_payload(text, [dept.der], at=NOW)
    assert result.ok and result.indication == TOTAL_PASSED and result.sub_indication is None
    assert [c.name for c in result.checks] == ["format", "signer-known", "signature", "signer-is-issuer",
                                               "validity", "certificate-validity"]
    assert result.claims == claims and result.certificate.dump() == dept.der


def test_long_term_licence_and_the_longest_identifier_round_trip(dept):
    identifier = LicenceIdentifier(TYPE_CODE, ISSUER, 10 ** 18 - 1, 999).text
    claims = QrClaims.for_licence(identifier, DATA, valid_until=None, signer_certificate=dept.der,
                                  issued_at=date(2026, 5, 20))
    text = encode_payload(claims, dept.key, BASE)
    assert decode_payload(text).claims == claims
    result = verify_payload(text, [dept.der], at=NOW + timedelta(days=365 * 50))
    assert result.ok and result.claims.valid_until is None


def test_the_url_is_accepted_with_any_base_any_case_of_host_or_bare(dept):
    text = encode_payload(_claims(dept), dept.key, BASE)
    data = text.rsplit("/", 1)[-1]
    for variant in (text, text.lower(), "https://verify.example.gov.cn/V/" + data, data, data.lower(),
                    f"  {text}\n", "http://localhost:8001/V/" + data, "HTTPS://OTHER.EXAMPLE/A/B/" + data):
        assert verify_payload(variant, [dept.der], at=NOW).ok, variant


def test_pem_certificates_and_bundles_are_accepted(pki, dept):
    from ca.certificates import pem

    bundle = pem(pki.root) + pem(dept.cert)
    text = encode_payload(_claims(dept), dept.key, BASE)
    assert verify_payload(text, [bundle], at=NOW).ok
    assert verify_payload(text, [pki.signer.dump(), pem(dept.cert)], at=NOW).ok


def test_nonces_are_fresh_and_the_data_hash_binds_the_data(dept):
    a, b = _claims(dept), _claims(dept)
    assert a.nonce != b.nonce and len(a.nonce) == 16
    assert a.data_hash == sm3(canonical_json(DATA)) == licence_data_hash(dict(reversed(DATA.items())))
    assert licence_data_hash({**DATA, "注册资本": "200万元人民币"}) != a.data_hash
    assert a.key_id == sm3(dept.der)[:8] == key_id_of(dept.cert)


# ---- tampering -------------------------------------------------------------------------------------

def test_every_tampered_byte_fails(dept):
    raw = _raw(encode_payload(_claims(dept), dept.key, BASE))
    for index in range(len(raw)):
        for mask in (0x01, 0x80):
            tampered = bytearray(raw)
            tampered[index] ^= mask
            result = verify_payload(_text(bytes(tampered)), [dept.der], at=NOW)
            assert not result.ok, (index, mask)
            assert result.indication in (TOTAL_FAILED, INDETERMINATE)
            if index >= CLAIMS_BYTES:
                assert result.sub_indication == "SIG_CRYPTO_FAILURE", index


def test_tampered_claims_with_an_intact_format_fail_the_signature(dept):
    claims = _claims(dept)
    text = encode_payload(claims, dept.key, BASE)
    forged = encode_payload(replace(claims, valid_until=date(2099, 1, 1)), SM2PrivateKey.generate(), BASE)
    raw = _raw(forged)[:CLAIMS_BYTES] + _raw(text)[CLAIMS_BYTES:]  # new claims, the genuine signature
    result = verify_payload(_text(raw), [dept.der], at=NOW)
    assert result.sub_indication == "SIG_CRYPTO_FAILURE"
    assert result.claims.valid_until == date(2099, 1, 1)  # shown, but not vouched for
    assert verify_payload(_text(raw), [dept.der], at=NOW).as_dict()["ok"] is False


def test_a_base32_character_changed_fails(dept):
    text = encode_payload(_claims(dept), dept.key, BASE)
    head, data = text.rsplit("/", 1)
    for position in (0, 1, 50, 150, 254, 255):
        swapped = "A" if data[position] != "A" else "B"
        changed = f"{head}/{data[:position]}{swapped}{data[position + 1:]}"
        assert not verify_payload(changed, [dept.der], at=NOW).ok, position


def test_zero_signature_fails(dept):
    raw = _raw(encode_payload(_claims(dept), dept.key, BASE))
    result = verify_payload(_text(raw[:CLAIMS_BYTES] + bytes(64)), [dept.der], at=NOW)
    assert result.sub_indication == "SIG_CRYPTO_FAILURE" and "outside" in result.checks[-1].detail


# ---- certificates ------------------------------------------------------------------------------------

def test_unknown_certificate_is_indeterminate(pki, dept):
    text = encode_payload(_claims(dept), dept.key, BASE)
    result = verify_payload(text, [pki.signer.dump(), Department(pki, ISSUER).der], at=NOW)
    assert (result.indication, result.sub_indication) == (INDETERMINATE, "NO_SIGNING_CERTIFICATE_FOUND")
    assert result.checks[-1].name == "signer-known" and "2 certificates" in result.checks[-1].detail
    assert verify_payload(text, [], at=NOW).sub_indication == "NO_SIGNING_CERTIFICATE_FOUND"


def test_key_id_of_one_certificate_signed_by_another_key_fails(pki, dept):
    other = Department(pki, ISSUER)
    text = encode_payload(_claims(dept), other.key, BASE)  # names dept's certificate, other's key
    result = verify_payload(text, [dept.der, other.der], at=NOW)
    assert (result.indication, result.sub_indication) == (TOTAL_FAILED, "SIG_CRYPTO_FAILURE")


def test_a_certificate_of_another_department_cannot_vouch_for_this_issuer(pki):
    stranger = Department(pki, OTHER_ISSUER)
    text = encode_payload(_claims(stranger), stranger.key, BASE)  # claims ISSUER, signed by OTHER_ISSUER
    result = verify_payload(text, [stranger.der], at=NOW)
    assert result.sub_indication == "SIG_CONSTRAINTS_FAILURE"
    assert OTHER_ISSUER in result.checks[3].detail and ISSUER in result.checks[3].detail
    no_code = encode_payload(_claims(_Plain(pki)), pki.signer_key, BASE)
    assert verify_payload(no_code, [pki.signer.dump()], at=NOW).sub_indication == "SIG_CONSTRAINTS_FAILURE"


class _Plain:
    """make_pki's signer: a certificate without a credit code."""

    def __init__(self, pki):
        self.der = pki.signer.dump()


def test_certificate_must_be_valid_on_the_issue_date(pki, dept):
    expired = _claims(dept, issued_at=(dept.cert.not_valid_after + timedelta(days=1)).date())
    result = verify_payload(encode_payload(expired, dept.key, BASE), [dept.der], at=NOW + timedelta(days=60))
    assert (result.checks[-1].name, result.sub_indication) == ("certificate-validity", "EXPIRED")
    early = _claims(dept, issued_at=(dept.cert.not_valid_before - timedelta(days=2)).date())
    result = verify_payload(encode_payload(early, dept.key, BASE), [dept.der], at=NOW)
    assert (result.indication, result.sub_indication) == (INDETERMINATE, "NOT_YET_VALID")
    # a licence outliving its signer's certificate still verifies: the issue date is what counts
    assert verify_payload(encode_payload(_claims(dept), dept.key, BASE), [dept.der],
                          at=NOW + timedelta(days=900)).ok


# ---- validity ------------------------------------------------------------------------------------------

def test_expiry_is_judged_on_the_china_date(dept):
    text = encode_payload(_claims(dept, valid_until=date(2026, 6, 30)), dept.key, BASE)
    last_second = datetime(2026, 6, 30, 15, 59, 59, tzinfo=UTC)  # 23:59:59 in Beijing
    assert verify_payload(text, [dept.der], at=last_second).ok
    result = verify_payload(text, [dept.der], at=last_second + timedelta(seconds=1))
    assert (result.indication, result.sub_indication) == (TOTAL_FAILED, "EXPIRED")
    assert "2026-06-30" in result.checks[4].detail


def test_issue_date_after_the_verification_time_is_not_yet_valid(dept):
    text = encode_payload(_claims(dept, issued_at=date(2026, 5, 25)), dept.key, BASE)
    assert verify_payload(text, [dept.der], at=NOW).sub_indication == "NOT_YET_VALID"


def test_at_must_be_aware(dept):
    text = encode_payload(_claims(dept), dept.key, BASE)
    with pytest.raises(ValueError, match="timezone-aware"):
        verify_payload(text, [dept.der], at=datetime(2026, 5, 20))


# ---- strict decoding ----------------------------------------------------------------------------------

@pytest.mark.parametrize(("text", "reason"), [
    ("", "no payload"),
    ("HTTPS://VERIFY.EXAMPLE.GOV.CN/V/", "no payload"),
    ("AB1CD", "outside base32"),
    ("ABCDEFGH=", "outside base32"),
    ("ABC", "truncated"),
    ("AA", "unknown QR payload format 0"),
    ("ftp://verify.example.gov.cn/V/AAAA", "'ftp' URL"),
    ("https://verify.example.gov.cn/V/AAAA?x=1", "query or fragment"),
    ("https://verify.example.gov.cn", "no path"),
    ("V/AAAA", "neither"),
    ("A" * 1025, "1025 characters"),
])
def test_bad_text_is_a_clear_format_error(text, reason, dept):
    with pytest.raises(QrPayloadError, match=reason):
        decode_payload(text)
    result = verify_payload(text, [dept.der], at=NOW)
    assert (result.ok, result.sub_indication, result.checks[0].name) == (False, "FORMAT_FAILURE", "format")
    assert reason in result.checks[0].detail and result.claims is None


def test_lengths_versions_and_unused_bits(dept):
    raw = _raw(encode_payload(_claims(dept), dept.key, BASE))
    with pytest.raises(QrPayloadError, match="trailing bytes"):
        decode_payload(_text(raw + b"\x00"))
    with pytest.raises(QrPayloadError, match="truncated"):
        decode_payload(_text(raw[:-1]))
    with pytest.raises(QrPayloadError, match="unknown QR payload format 2"):
        decode_payload(_text(b"\x02" + raw[1:]))
    with pytest.raises(QrPayloadError, match="must be a string"):
        decode_payload(b"HTTPS://X/V/AAAA")


def test_unused_bits_in_the_last_character_are_refused():
    data = base64.b32encode(b"\x01").decode().rstrip("=")  # "AE": 10 bits carry 8, the last 2 zero
    assert data == "AE"
    with pytest.raises(QrPayloadError, match="unused bits"):
        decode_payload("AF")  # the same byte with an unused bit set: a second spelling, refused


@pytest.mark.parametrize(("offset", "value", "reason"), [
    (1, b"\xff" * 13, "type code field is out of range"),
    (14, b"\xff" * 12, "issuer code field is out of range"),
    (26, bytes(8), "serial"),
    (34, bytes(2), "version"),
    (34, (1000).to_bytes(2, "big"), "version"),
    (36, b"\xff\xff", "long-term marker"),
    (14, (1).to_bytes(12, "big"), "check character"),  # 00000000000000001: wrong GB 32100 check
])
def test_signed_but_malformed_fields_are_format_failures(dept, offset, value, reason):
    raw = bytearray(_raw(encode_payload(_claims(dept), dept.key, BASE))[:CLAIMS_BYTES])
    raw[offset:offset + len(value)] = value
    text = _signed(bytes(raw), dept.key)
    with pytest.raises(QrPayloadError, match=reason):
        decode_payload(text)
    assert verify_payload(text, [dept.der], at=NOW).sub_indication == "FORMAT_FAILURE"


# ---- making claims and URLs ----------------------------------------------------------------------------

def test_claims_are_checked_when_made(dept):
    good = _claims(dept)
    for changes, reason in [
        ({"type_code": "11100000MB0143028R002"}, "not those of identifier"),
        ({"issuer_code": OTHER_ISSUER}, "not those of identifier"),
        ({"identifier": good.identifier.replace(".42.", ".042.")}, "identifier"),
        ({"nonce": bytes(10)}, "nonce must be 16 bytes"),
        ({"data_hash": bytes(16)}, "data_hash .* must be 32 bytes"),
        ({"key_id": "00" * 8}, "key_id must be 8 bytes"),
        ({"issued_at": datetime(2026, 5, 20, tzinfo=UTC)}, "issued_at must be a date"),
        ({"valid_until": date(2200, 1, 1)}, "outside 1970-01-01"),
        ({"issued_at": date(1969, 12, 31)}, "outside"),
    ]:
        with pytest.raises(QrPayloadError, match=reason):
            replace(good, **changes)


@pytest.mark.parametrize(("base", "expected"), [
    ("https://verify.example.gov.cn/V/", "HTTPS://VERIFY.EXAMPLE.GOV.CN/V/"),
    ("HTTPS://Verify.Example.gov.cn/V", "HTTPS://VERIFY.EXAMPLE.GOV.CN/V/"),
    ("https://verify.example.gov.cn:8443/DZZZ/V/", "HTTPS://VERIFY.EXAMPLE.GOV.CN:8443/DZZZ/V/"),
    ("https://verify.example.gov.cn", "HTTPS://VERIFY.EXAMPLE.GOV.CN/"),
    ("http://localhost:8001/V/", "HTTP://LOCALHOST:8001/V/"),
])
def test_base_urls_are_normalised(base, expected):
    assert verification_base(base) == expected


@pytest.mark.parametrize(("base", "reason"), [
    ("https://verify.example.gov.cn/v/", "upper-case"),
    ("https://verify.example.gov.cn/V/?x=", "upper-case"),
    ("https://verify.example.gov.cn/V%20/", "upper-case"),
    ("verify.example.gov.cn/V/", "http"),
    ("http://verify.example.gov.cn/V/", "must use https"),
    ("https://user@verify.example.gov.cn/V/", "upper-case"),
    (None, "must be a string"),
])
def test_bad_base_urls_are_refused(base, reason):
    with pytest.raises(QrPayloadError, match=reason):
        verification_base(base)


def test_a_base_url_too_long_for_version_10_is_refused(dept):
    base = "https://verify.example.gov.cn/" + "A" * 60 + "/"
    with pytest.raises(QrPayloadError, match="version 10 QR code at level M holds 311"):
        encode_payload(_claims(dept), dept.key, base)


def test_a_signer_that_does_not_hold_its_key_is_refused(dept):
    class Broken:
        def public_key(self):
            return SM2PrivateKey.generate().public_key()

        def sign(self, data, uid=b"1234567812345678"):
            return dept.key.sign(data, uid)

    with pytest.raises(QrPayloadError, match="own public key"):
        encode_payload(_claims(dept), Broken(), BASE)


# ---- QR size and scanning --------------------------------------------------------------------------------

def _qr_version(text: str) -> int:
    code = qrcode.QRCode(error_correction=ERROR_CORRECT_M)
    code.add_data(text)
    code.make(fit=True)
    return code.version


def test_qr_version_at_level_m_is_at_most_10_for_the_longest_identifier(dept):
    longest = LicenceIdentifier(TYPE_CODE, ISSUER, 10 ** 18 - 1, 999).text
    assert len(longest) == 80  # 18-digit serial, version 999
    claims = QrClaims.for_licence(longest, DATA, valid_until=date(2149, 6, 5), signer_certificate=dept.der,
                                  issued_at=date(2026, 5, 20))
    text = encode_payload(claims, dept.key, BASE)
    assert len(text) == 288 and _qr_version(text) == 10
    assert len(qr_matrix(text)) == 17 + 4 * 10 + 2 * 4  # what pages.qr draws: version 10, quiet zone 4
    shortest = encode_payload(replace(claims, identifier=_identifier(1, 1)), dept.key, BASE)
    assert len(shortest) == len(text)  # fixed layout: one QR version per base URL
    at_limit = encode_payload(claims, dept.key, "https://verify.example.gov.cn/" + "A" * 24 + "/")
    assert len(at_limit) == MAX_URL_CHARS and _qr_version(at_limit) == 10


@pytest.mark.interop
def test_qr_decodes_with_zxing_from_a_200_dpi_render_of_the_pdf_page(dept):
    pdfium = pytest.importorskip("pypdfium2")
    zxingcpp = pytest.importorskip("zxingcpp")
    from pages.model import Document, Page, QrCode, Text
    from pdf.writer import write_pdf

    text = encode_payload(_claims(dept), dept.key, BASE)
    page = Page.a4([Text(20, 30, "营业执照", 8), QrCode(165, 250, 25, text)])
    pdf = write_pdf(Document(pages=(page,), title="营业执照"))
    document = pdfium.PdfDocument(pdf)
    try:
        image = document[0].render(scale=200 / 72).to_pil().convert("L")
    finally:
        document.close()
    assert image.width == round(210 / 25.4 * 200)
    results = zxingcpp.read_barcodes(image)
    assert [r.format for r in results] == [zxingcpp.BarcodeFormat.QRCode]
    assert results[0].text == text
    assert verify_payload(results[0].text, [dept.der], at=NOW).ok


# ---- report ------------------------------------------------------------------------------------------------

def test_report_is_json_ready(dept):
    text = encode_payload(_claims(dept), dept.key, BASE)
    report = verify_qr_report(text, [dept.der], NOW)
    again = json.loads(json.dumps(report, ensure_ascii=False))
    assert again["indication"] == TOTAL_PASSED and again["ok"] is True
    assert again["claims"]["identifier"] == _identifier() and again["claims"]["valid_until"] == "2030-06-30"
    assert again["signer"]["key_id"] == key_id_of(dept.der).hex() and ISSUER in again["signer"]["subject"]
    assert again["checks"][0]["name"] == "format" and again["at"] == NOW.isoformat()
    bad = verify_qr_report("garbage!", [dept.der], NOW)
    assert (bad["indication"], bad["claims"], bad["signer"]) == (TOTAL_FAILED, None, None)


def test_unreadable_certificates_raise_a_clear_error(dept):
    from ca.validation import CertificateLoadError

    text = encode_payload(_claims(dept), dept.key, BASE)
    with pytest.raises(CertificateLoadError):
        verify_payload(text, [b"not a certificate"], at=NOW)
    with pytest.raises(TypeError, match="iterable"):
        verify_payload(text, dept.der, at=NOW)


# ---- canonical JSON (RFC 8785) --------------------------------------------------------------------------

@pytest.mark.parametrize(("value", "expected"), [
    (333333333.33333329, "333333333.3333333"),  # RFC 8785 §3.2.2.3 examples
    (1e30, "1e+30"),
    (4.50, "4.5"),
    (2e-3, "0.002"),
    (0.000000000000000000000000001, "1e-27"),
    (-0.0, "0"),
    (100.0, "100"),
    (1e21, "1e+21"),
    (1e20, "100000000000000000000"),
    (1e-7, "1e-7"),
    (1e-6, "0.000001"),
    (5e-324, "5e-324"),
    (-1.7976931348623157e308, "-1.7976931348623157e+308"),
    (2 ** 53 - 1, "9007199254740991"),
])
def test_canonical_numbers(value, expected):
    assert canonical_json([value]) == f"[{expected}]".encode()


def test_canonical_strings_and_key_order():
    expected = '"€$\\u000f\\nA\'B\\"\\\\\\\\\\"/\x7f"'  # RFC 8785 §3.2.2.2, plus DEL kept as is
    assert canonical_json("\u20ac$\u000f\nA'B\"\\\\\"/\x7f") == expected.encode()
    keys = {"\u20ac": 1, "\r": 2, "\ufb33": 3, "1": 4, "\U0001f600": 5, "\u0080": 6, "\u00f6": 7}
    assert canonical_json(keys).decode() == (
        '{"\\r":2,"1":4,"\u0080":6,"\u00f6":7,"\u20ac":1,"\U0001f600":5,"\ufb33":3}')  # UTF-16 order
    assert canonical_json({"b": [True, None, {"a": "x"}], "a": 1}) == b'{"a":1,"b":[true,null,{"a":"x"}]}'


@pytest.mark.parametrize(("value", "reason"), [
    ({"d": date(2026, 1, 1)}, "is a date"),
    ({"n": float("nan")}, "nan"),
    ({"n": 2 ** 53}, "beyond"),
    ({1: "x"}, "not a string"),
    ({"s": "\ud800"}, "lone surrogate"),
])
def test_canonical_json_refuses_what_json_lacks(value, reason):
    with pytest.raises(QrPayloadError, match=reason):
        canonical_json(value)
    with pytest.raises(QrPayloadError, match="mapping"):
        licence_data_hash(["not", "a", "mapping"])


# ---- the verification base -------------------------------------------------------------------------

def test_a_code_under_the_expected_base_passes_in_any_case_of_scheme_and_host(dept):
    text = encode_payload(_claims(dept), dept.key, BASE)
    data = text.rsplit("/", 1)[-1]
    for variant in (text, "https://verify.example.gov.cn/V/" + data, data):
        result = verify_payload(variant, [dept.der], at=NOW, expected_base=BASE)
        assert result.ok and result.checks[-1].name == "verification-base", variant


@pytest.mark.parametrize("base", ["HTTPS://VERIFY.EXAMPLE.GOV.CN.EVIL.EXAMPLE/V/",
                                  "HTTPS://VERIFY.EXAMPLE.GOV.CN/", "HTTPS://VERIFY.EXAMPLE.GOV.CN/V/X/",
                                  "HTTP://VERIFY.EXAMPLE.GOV.CN/V/", "https://verify.example.gov.cn/v/"])
def test_a_valid_payload_under_another_base_fails(dept, base):
    data = encode_payload(_claims(dept), dept.key, BASE).rsplit("/", 1)[-1]
    result = verify_payload(base + data, [dept.der], at=NOW, expected_base=BASE)
    failed_checks = [c.name for c in result.checks if not c.ok]
    assert failed_checks == ["verification-base"] and result.indication == "TOTAL_FAILED"
    assert verify_payload(base + data, [dept.der], at=NOW).ok  # without an expected base: not judged
    report = verify_qr_report(base + data, [dept.der], NOW, expected_base=BASE)
    assert report["ok"] is False and report["checks"][-1]["name"] == "verification-base"


def test_a_malformed_expected_base_is_a_configuration_error(dept):
    text = encode_payload(_claims(dept), dept.key, BASE)
    with pytest.raises(QrPayloadError, match="base URL"):
        verify_payload(text, [dept.der], at=NOW, expected_base="ftp://verify.example.gov.cn/V/")


@pytest.mark.parametrize(("expected", "host"), [
    (BASE, "verıfy.example.gov.cn"),                                 # dotless i: 'ı'.upper() == 'I'
    ("https://zhengshu.example.gov.cn/V/", "zhengſhu.example.gov.cn"),  # long s: 'ſ'.upper() == 'S'
    ("https://localhost:8081/V/", "localhoſt:8081"),
])
def test_no_unicode_case_mapping_reaches_the_base_comparison(dept, expected, host):
    """With str.upper() these hosts — other hosts to any browser (IDNA xn--…) — compared equal
    to the service's. Only ASCII is folded, and only once the text is ASCII; such a text is not
    a licence code at all."""
    from licences.qr_url import base_check

    data = encode_payload(_claims(dept), dept.key, BASE).rsplit("/", 1)[-1]
    text = f"https://{host}/V/{data}"
    check = base_check(text, expected)
    assert not check.ok and "non-ASCII" in check.detail
    result = verify_payload(text, [dept.der], at=NOW, expected_base=expected)
    assert not result.ok and result.checks[0].name == "format" and "non-ASCII" in result.checks[0].detail


def test_a_long_s_or_dotless_i_in_the_payload_does_not_decode(dept):
    text = encode_payload(_claims(dept), dept.key, BASE)
    head, data = text.rsplit("/", 1)
    for letter, lookalike in (("I", "ı"), ("S", "ſ")):
        if letter in data:
            with pytest.raises(QrPayloadError, match="non-ASCII"):
                decode_payload(f"{head}/{data.replace(letter, lookalike, 1)}")


def test_a_base_outside_the_qr_alphanumeric_set_fails(dept):
    from licences.qr_url import base_check

    data = encode_payload(_claims(dept), dept.key, BASE).rsplit("/", 1)[-1]
    for text in (f"https://verify.example.gov.cn@evil.example/V/{data}",
                 f"https://verify_example.gov.cn/V/{data}"):
        check = base_check(text, BASE)
        assert not check.ok and "alphanumeric" in check.detail, text
    assert base_check(f"https://verify.example.gov.cn/V/{data}", BASE).ok  # ASCII folding still applies


def test_a_non_ascii_base_url_is_refused():
    with pytest.raises(QrPayloadError, match="non-ASCII"):
        verification_base("https://verıfy.example.gov.cn/V/")


def test_without_an_expected_base_the_report_says_the_base_was_not_judged(dept):
    text = encode_payload(_claims(dept), dept.key, BASE)
    report = verify_qr_report(text, [dept.der], NOW, base_note="no --base")
    assert report["ok"] and "verification-base" not in [c["name"] for c in report["checks"]]
    assert [n["name"] for n in report["not_judged"]] == ["verification-base"]
    assert "no --base" in report["not_judged"][0]["detail"]
    assert verify_qr_report(text, [dept.der], NOW, expected_base=BASE)["not_judged"] == []
