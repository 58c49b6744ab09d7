"""PKCS#10 requests: ours and OpenSSL's, proof of possession, and what is refused."""

from __future__ import annotations

import pytest
from asn1crypto import csr, pem

from ca.csr import build_csr, load_csr
from ca.errors import InvalidRequest
from ca.names import credit_code_of, subject_name
from hsm.hazmat import SM2PrivateKey
from hsm.sm2 import SM2PublicKey

GMT_DISTID = "distid:1234567812345678"
SUBJECT = "/C=CN/O=示例市市场监督管理局/CN=外部签章人/organizationIdentifier=11350100MB0000000Y"


def test_build_and_load_round_trip():
    key = SM2PrivateKey.generate()
    der = build_csr(key, subject_name("签章人", organisation="某局", credit_code="11350100MB0000000Y"))
    request = load_csr(der)
    assert request.public_key == key.public_key()
    assert credit_code_of(request.subject) == "11350100MB0000000Y"
    assert load_csr(pem.armor("CERTIFICATE REQUEST", der)).public_key == key.public_key()


def test_tampered_csr_is_refused():
    key = SM2PrivateKey.generate()
    der = bytearray(build_csr(key, subject_name("签章人")))
    der[der.find("签章人".encode())] ^= 1
    with pytest.raises(InvalidRequest, match="does not verify"):
        load_csr(bytes(der))


def test_csr_signed_by_another_key_is_refused():
    key, other = SM2PrivateKey.generate(), SM2PrivateKey.generate()
    info = csr.CertificationRequest.load(build_csr(key, subject_name("x")))["certification_request_info"]
    forged = csr.CertificationRequest({
        "certification_request_info": info,
        "signature_algorithm": {"algorithm": "sm2_sm3"},
        "signature": other.sign(info.dump()),
    }).dump()
    with pytest.raises(InvalidRequest, match="does not verify"):
        load_csr(forged)


@pytest.mark.parametrize("data", [b"", b"garbage", b"-----BEGIN CERTIFICATE REQUEST-----\nAAAA\n"])
def test_garbage_is_refused(data):
    with pytest.raises(InvalidRequest):
        load_csr(data)


def test_truncated_and_trailing_data_are_refused():
    der = build_csr(SM2PrivateKey.generate(), subject_name("x"))
    for bad in (der[:-1], der[:40], der + b"\x00"):
        with pytest.raises(InvalidRequest):
            load_csr(bad)


@pytest.mark.interop
def test_openssl_sm2_csr_is_accepted(openssl, tmp_path):
    openssl("genpkey", "-algorithm", "SM2", "-out", "k.pem", cwd=tmp_path, check=True)
    openssl("req", "-new", "-key", "k.pem", "-sm3", "-sigopt", GMT_DISTID, "-utf8", "-subj", SUBJECT,
            "-out", "r.pem", cwd=tmp_path, check=True)
    openssl("pkey", "-in", "k.pem", "-pubout", "-out", "pub.pem", cwd=tmp_path, check=True)
    request = load_csr((tmp_path / "r.pem").read_bytes())
    assert request.public_key == SM2PublicKey.from_pem((tmp_path / "pub.pem").read_bytes())
    assert request.subject.native["common_name"] == "外部签章人"
    assert credit_code_of(request.subject) == "11350100MB0000000Y"
    # The same request signed with OpenSSL's default (empty) ID is not a GM/T 0009 signature.
    openssl("req", "-new", "-key", "k.pem", "-sm3", "-utf8", "-subj", SUBJECT, "-out", "empty.pem",
            cwd=tmp_path, check=True)
    with pytest.raises(InvalidRequest, match="does not verify"):
        load_csr((tmp_path / "empty.pem").read_bytes())


@pytest.mark.interop
def test_openssl_tampered_csr_is_refused(openssl, tmp_path):
    openssl("genpkey", "-algorithm", "SM2", "-out", "k.pem", cwd=tmp_path, check=True)
    openssl("req", "-new", "-key", "k.pem", "-sm3", "-sigopt", GMT_DISTID, "-subj", "/CN=tamper me",
            "-outform", "DER", "-out", "r.der", cwd=tmp_path, check=True)
    der = bytearray((tmp_path / "r.der").read_bytes())
    der[der.find(b"tamper me")] ^= 0x20
    with pytest.raises(InvalidRequest, match="does not verify"):
        load_csr(bytes(der))


@pytest.mark.interop
def test_openssl_refuses_non_sm2_csr_as_we_do(openssl, tmp_path):
    openssl("genpkey", "-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256", "-out", "k.pem",
            cwd=tmp_path, check=True)
    openssl("req", "-new", "-key", "k.pem", "-sha256", "-subj", "/CN=p256", "-out", "r.pem", cwd=tmp_path,
            check=True)
    with pytest.raises(InvalidRequest, match="not an SM2"):
        load_csr((tmp_path / "r.pem").read_bytes())


@pytest.mark.interop
def test_openssl_accepts_our_csr(openssl, tmp_path):
    der = build_csr(SM2PrivateKey.generate(), subject_name("签章人", credit_code="11350100MB0000000Y"))
    (tmp_path / "ours.pem").write_bytes(pem.armor("CERTIFICATE REQUEST", der))
    result = openssl("req", "-in", "ours.pem", "-verify", "-noout", "-vfyopt", GMT_DISTID, cwd=tmp_path)
    assert result.returncode == 0 and "verify OK" in result.stdout + result.stderr, result.stderr
