"""Seals and seal signatures we make read back through the same readers as anyone's, and verify
with the OpenSSL CLI over the bytes GB/T 38540 says are signed."""

from __future__ import annotations

import subprocess
from datetime import UTC, datetime, timedelta

import pytest
from asn1crypto import x509

from ca.certificates import build_certificate
from ca.names import subject_name
from ca.profiles import DEPARTMENT_SIGNER, ROOT_CA, SEAL_MAKER
from hsm.hazmat import SM2PrivateKey
from hsm.signature import decode_bit_string_signature
from hsm.sm3 import sm3
from seals.errors import SealError
from seals.make import SealContent, make_seal, sign_with_seal
from seals.seal import read_seal
from seals.seal_signature import read_seal_signature

NOW = datetime(2026, 11, 1, 8, 0, tzinfo=UTC)
PNG = b"\x89PNG\r\n\x1a\n" + bytes(32)


@pytest.fixture(scope="module")
def parties():
    root_key, maker_key, signer_key = (SM2PrivateKey.generate() for _ in range(3))
    root = build_certificate(profile=ROOT_CA, subject=subject_name("Root"), subject_key=root_key.public_key(),
                             signer=root_key, issuer=None, serial=1, not_before=NOW - timedelta(days=1))

    def leaf(profile, key, cn, serial):
        return build_certificate(profile=profile, subject=subject_name(cn), subject_key=key.public_key(),
                                 signer=root_key, issuer=root, serial=serial,
                                 not_before=NOW - timedelta(days=1))

    return {"maker": (maker_key, leaf(SEAL_MAKER, maker_key, "制章人", 2)),
            "signer": (signer_key, leaf(DEPARTMENT_SIGNER, signer_key, "签章人", 3))}


def _content(signer_cert: x509.Certificate, **changes) -> SealContent:
    values = {"es_id": "11350100MB0000000Y0001", "seal_type": 2, "name": "示例市市场监督管理局电子证照专用章",
              "certificates": [signer_cert.dump()], "create_date": NOW, "valid_start": NOW,
              "valid_end": NOW + timedelta(days=365), "picture_type": "png", "picture": PNG,
              "width_mm": 42, "height_mm": 42}
    return SealContent(**(values | changes))


def _openssl_verifies(tmp_path, cert: x509.Certificate, data: bytes, signature: bytes) -> bool:
    (tmp_path / "c.der").write_bytes(cert.dump())
    (tmp_path / "m").write_bytes(data)
    (tmp_path / "s").write_bytes(signature)
    subprocess.run(["openssl", "x509", "-inform", "DER", "-in", str(tmp_path / "c.der"), "-pubkey", "-noout",
                    "-out", str(tmp_path / "p.pem")], check=True, capture_output=True, timeout=30)
    command = ["openssl", "pkeyutl", "-verify", "-pubin", "-inkey", str(tmp_path / "p.pem"), "-rawin",
               "-in", str(tmp_path / "m"), "-sigfile", str(tmp_path / "s"), "-digest", "sm3",
               "-pkeyopt", "distid:1234567812345678"]
    return subprocess.run(command, capture_output=True, timeout=30).returncode == 0


@pytest.mark.interop
def test_seal_and_signature_round_trip_and_verify_with_openssl(parties, tmp_path):
    maker_key, maker_cert = parties["maker"]
    signer_key, signer_cert = parties["signer"]
    seal_bytes = make_seal(_content(signer_cert), maker_certificate=maker_cert.dump(), maker=maker_key)
    seal = read_seal(seal_bytes)
    assert (seal.layout, seal.header_version, seal.ber, seal.cert_list_type) == ("v4", 4, False, 1)
    assert seal.name == "示例市市场监督管理局电子证照专用章" and seal.certificates == (signer_cert.dump(),)
    assert seal.valid_end == NOW + timedelta(days=365) and seal.picture.type == "PNG"
    assert seal.maker_signature.unused_bits == 0
    assert _openssl_verifies(tmp_path, maker_cert, seal.maker_signed_bytes, seal.maker_signature.payload)

    signature_xml = b"<ofd:Signature>...</ofd:Signature>"
    value = sign_with_seal(seal_bytes, data_hash=sm3(signature_xml),
                           property_info="/Doc_0/Signs/Sign_0/Signature.xml", signer=signer_key,
                           signer_certificate=signer_cert.dump(), time=NOW)
    parsed = read_seal_signature(value)
    assert (parsed.layout, parsed.version, parsed.time_info) == ("v4", 4, NOW)
    assert parsed.data_hash.payload == sm3(signature_xml) and parsed.seal.encoded == seal_bytes
    assert _openssl_verifies(tmp_path, signer_cert, parsed.signed_bytes, parsed.signature.payload)
    signer_key.public_key().verify(decode_bit_string_signature(parsed.signature.payload), parsed.signed_bytes)


@pytest.mark.parametrize("changes, message", [
    ({"certificates": []}, "at least one"),
    ({"valid_end": NOW}, "end after"),
    ({"picture_type": "tiff"}, "picture type"),
    ({"width_mm": 0}, "millimetres"),
    ({"valid_start": datetime(2026, 1, 1)}, "timezone"),
])
def test_bad_content_is_refused(parties, changes, message):
    maker_key, maker_cert = parties["maker"]
    _, signer_cert = parties["signer"]
    with pytest.raises(SealError, match=message):
        make_seal(_content(signer_cert, **changes), maker_certificate=maker_cert.dump(), maker=maker_key)
