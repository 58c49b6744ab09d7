"""CRLs: v2, CRL number, AKI, reason codes and invalidity dates; SM2 signature; OpenSSL."""

from __future__ import annotations

from datetime import datetime, timedelta

import pytest
from asn1crypto import crl

from ca.certificates import pem as certificate_pem
from ca.crl import REASONS, RevokedEntry, build_crl, load_crl, pem, verify_crl_signature
from ca.errors import InvalidRequest


@pytest.fixture(scope="module")
def revoked(pki):
    now = pki.now
    entries = [
        RevokedEntry(pki.leaves["seal-maker"].cert.serial_number, now - timedelta(hours=1), "key_compromise",
                     invalidity_date=now - timedelta(days=3)),
        RevokedEntry(0x1234, now - timedelta(hours=2), "superseded"),
        RevokedEntry(0x99, now - timedelta(hours=3)),
    ]
    return build_crl(issuer=pki.issuing.cert, signer=pki.issuing.key, entries=entries, number=42,
                     this_update=now, next_update=now + timedelta(days=7))


def test_crl_fields(pki, revoked):
    tbs = revoked["tbs_cert_list"]
    assert tbs["version"].native == "v2"
    assert tbs["issuer"] == pki.issuing.cert.subject
    assert revoked.crl_number_value.native == 42
    assert revoked.authority_key_identifier == pki.issuing.cert.key_identifier
    assert tbs["this_update"].native == pki.now and tbs["next_update"].native == pki.now + timedelta(days=7)
    assert revoked["signature_algorithm"]["algorithm"].dotted == "1.2.156.10197.1.501"
    by_serial = {e["user_certificate"].native: e for e in tbs["revoked_certificates"]}
    first = by_serial[pki.leaves["seal-maker"].cert.serial_number]
    assert first.crl_reason_value.native == "key_compromise"
    assert first.invalidity_date_value.native == pki.now - timedelta(days=3)
    assert by_serial[0x1234].crl_reason_value.native == "superseded"
    assert by_serial[0x1234].invalidity_date_value is None
    assert by_serial[0x99].crl_reason_value is None
    assert by_serial[0x99]["revocation_date"].native == pki.now - timedelta(hours=3)


def test_crl_signature(pki, revoked):
    assert verify_crl_signature(load_crl(revoked.dump()), pki.issuing.cert)
    assert not verify_crl_signature(load_crl(revoked.dump()), pki.root.cert)
    der = bytearray(revoked.dump())
    der[der.find(b"\x02\x02\x12\x34") + 3] ^= 1  # serial 0x1234 -> 0x1235
    assert not verify_crl_signature(load_crl(bytes(der)), pki.issuing.cert)


def test_empty_crl_has_no_revoked_certificates_field(pki):
    empty = build_crl(issuer=pki.issuing.cert, signer=pki.issuing.key, entries=[], number=1,
                      this_update=pki.now, next_update=pki.now + timedelta(days=1))
    assert empty["tbs_cert_list"]["revoked_certificates"].native is None
    assert verify_crl_signature(empty, pki.issuing.cert)


def test_all_rfc5280_reasons(pki):
    entries = [RevokedEntry(i + 1, pki.now, reason) for i, reason in enumerate(REASONS)]
    built = build_crl(issuer=pki.issuing.cert, signer=pki.issuing.key, entries=entries, number=2,
                      this_update=pki.now, next_update=pki.now + timedelta(days=1))
    reasons = [e.crl_reason_value.native for e in built["tbs_cert_list"]["revoked_certificates"]]
    assert sorted(reasons) == sorted(REASONS)


def test_bad_parameters(pki):
    common = dict(entries=[], number=1, this_update=pki.now, next_update=pki.now + timedelta(days=1))
    with pytest.raises(InvalidRequest, match="signer"):
        build_crl(issuer=pki.issuing.cert, signer=pki.root.key, **common)
    leaf = pki.leaves["seal-maker"]
    with pytest.raises(InvalidRequest, match="cRLSign"):
        build_crl(issuer=leaf.cert, signer=leaf.key, **common)
    with pytest.raises(InvalidRequest, match="reason"):
        build_crl(issuer=pki.issuing.cert, signer=pki.issuing.key,
                  **{**common, "entries": [RevokedEntry(1, pki.now, "lost")]})
    with pytest.raises(InvalidRequest, match="timezone"):
        build_crl(issuer=pki.issuing.cert, signer=pki.issuing.key,
                  **{**common, "entries": [RevokedEntry(1, datetime(2026, 1, 1))]})
    with pytest.raises(InvalidRequest, match="next_update"):
        build_crl(issuer=pki.issuing.cert, signer=pki.issuing.key, **{**common, "next_update": pki.now})
    with pytest.raises(InvalidRequest, match="CRL number"):
        build_crl(issuer=pki.issuing.cert, signer=pki.issuing.key, **{**common, "number": -1})


def test_load_pem_der_and_garbage(revoked):
    assert load_crl(pem(revoked)).dump() == revoked.dump()
    assert isinstance(load_crl(revoked.dump()), crl.CertificateList)
    for bad in (b"", b"nonsense", revoked.dump()[:-5], pem(revoked).replace(b"X509 CRL", b"CERTIFICATE")):
        with pytest.raises(InvalidRequest):
            load_crl(bad)


@pytest.mark.interop
def test_openssl_reads_reason_and_invalidity_date(pki, revoked, openssl, tmp_path):
    (tmp_path / "crl.pem").write_bytes(pem(revoked))
    text = openssl("crl", "-in", "crl.pem", "-noout", "-text", cwd=tmp_path, check=True).stdout
    for expected in ("Version 2", "SM2-with-SM3", "X509v3 CRL Number", "42",
                     "X509v3 Authority Key Identifier", "Key Compromise", "Superseded", "Invalidity Date",
                     "Serial Number: 1234"):
        assert expected in text, expected


@pytest.mark.interop
def test_openssl_crl_verify(pki, revoked, openssl, tmp_path, openssl_uses_gmt_default_id, resign):
    """`openssl crl -verify` says "verify OK".

    `openssl crl` has no distid option: OpenSSL < 4 checks CRL signatures with the empty ID.
    The same CRL re-signed with the empty ID shows OpenSSL accepts everything else about it.
    """
    (tmp_path / "issuing.pem").write_bytes(certificate_pem(pki.issuing.cert))
    (tmp_path / "crl.pem").write_bytes(pem(revoked))
    (tmp_path / "empty-id.pem").write_bytes(pem(resign(revoked, pki.issuing.key)))
    result = openssl("crl", "-in", "empty-id.pem", "-CAfile", "issuing.pem", "-verify", "-noout",
                     cwd=tmp_path)
    assert "verify OK" in result.stdout + result.stderr, result.stdout + result.stderr
    tampered = bytearray(resign(revoked, pki.issuing.key).dump())
    tampered[tampered.find(b"\x02\x02\x12\x34") + 3] ^= 1
    (tmp_path / "tampered.der").write_bytes(bytes(tampered))
    result = openssl("crl", "-in", "tampered.der", "-inform", "DER", "-CAfile", "issuing.pem", "-verify",
                     "-noout", cwd=tmp_path)
    assert "verify OK" not in result.stdout + result.stderr
    result = openssl("crl", "-in", "crl.pem", "-CAfile", "issuing.pem", "-verify", "-noout", cwd=tmp_path)
    if openssl_uses_gmt_default_id:
        assert "verify OK" in result.stdout + result.stderr, result.stdout + result.stderr
    else:
        pytest.skip("this OpenSSL checks SM2 CRL signatures with an empty ID and `openssl crl` has no "
                    "distid option; the empty-ID re-signed CRL verified")


