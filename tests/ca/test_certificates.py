"""Certificates: profiles, extensions, names and credit codes, signatures, and OpenSSL's view."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from asn1crypto import x509

from ca.certificates import asn1_time, build_certificate, load_certificate, new_serial, pem
from ca.errors import InvalidRequest
from ca.names import credit_code_check_character, credit_code_of, subject_name, validate_credit_code
from ca.profiles import ISSUING_CA, PROFILES, ROOT_CA, SEAL_MAKER, profile_named
from ca.signatures import (
    SM2_WITH_SM3,
    certificate_public_key,
    sign_tbs,
    tbs_bytes,
    verify_certificate_signature,
    verify_tbs,
)
from hsm.errors import UnsupportedAlgorithm
from hsm.hazmat import SM2PrivateKey

GMT_DISTID = "distid:1234567812345678"


def _ext(cert: x509.Certificate, name: str) -> x509.Extension | None:
    for ext in cert["tbs_certificate"]["extensions"]:
        if ext["extn_id"].native == name:
            return ext
    return None


# ---- names and credit codes ------------------------------------------------------------------
@pytest.mark.parametrize("code", ["11350100MB0000000Y", "91350100M000100Y43", "91110000600037341L"])
def test_valid_credit_codes(code):
    assert validate_credit_code(code) == code


@pytest.mark.parametrize("code", [
    "11350100MB0000000X",   # wrong check character
    "11350100MB0000000",    # 17 characters
    "11350100MB0000000YY",  # 19
    "11350100Mb0000000Y",   # lower case is not in the code set
    "I1350100MB0000000Y",   # I is not in the code set
    "",
])
def test_invalid_credit_codes(code):
    with pytest.raises(InvalidRequest, match="credit code"):
        validate_credit_code(code)


def test_check_character_is_gb32100():
    assert credit_code_check_character("11350100MB0000000") == "Y"


def test_subject_carries_credit_code_as_organization_identifier():
    name = subject_name("签章人", organisation="示例市市场监督管理局", credit_code="11350100MB0000000Y")
    assert credit_code_of(name) == "11350100MB0000000Y"
    kinds = {a["type"].native: type(a["value"].chosen).__name__ for rdn in name.chosen for a in rdn}
    assert kinds["organization_identifier"] == "UTF8String"
    assert kinds["common_name"] == "UTF8String" and kinds["country_name"] == "PrintableString"
    assert credit_code_of(subject_name("无代码")) is None
    etsi = x509.Name.build({"common_name": "x", "organization_identifier": "NTRCN-11350100MB0000000Y"})
    assert credit_code_of(etsi) == "11350100MB0000000Y"


def test_subject_rejects_bad_input():
    with pytest.raises(InvalidRequest, match="check character"):
        subject_name("x", credit_code="11350100MB0000000X")
    with pytest.raises(InvalidRequest):
        subject_name("  ")
    with pytest.raises(InvalidRequest):
        subject_name("x", country="China")


# ---- profiles ---------------------------------------------------------------------------------
def test_profiles_by_name():
    assert set(PROFILES) == {"root-ca", "issuing-ca", "seal-maker", "department-signer", "time-stamping",
                             "ocsp-responder", "trust-list-signer", "data-service-signer"}
    assert profile_named("seal-maker") is SEAL_MAKER
    with pytest.raises(InvalidRequest, match="root-ca, issuing-ca"):
        profile_named("nope")


# ---- the hierarchy ----------------------------------------------------------------------------
def test_chain_signatures_and_keys(pki):
    root, issuing = pki.root, pki.issuing
    assert verify_certificate_signature(root.cert, root.key.public_key())
    assert verify_certificate_signature(issuing.cert, root.key.public_key())
    for leaf in pki.leaves.values():
        assert verify_certificate_signature(leaf.cert, issuing.key.public_key())
        assert not verify_certificate_signature(leaf.cert, root.key.public_key())
        assert certificate_public_key(leaf.cert) == leaf.key.public_key()
        assert leaf.cert["signature_algorithm"]["algorithm"].dotted == "1.2.156.10197.1.501"
        assert leaf.cert["signature_algorithm"]["parameters"].native is None


def test_ca_extensions(pki):
    root, issuing = pki.root.cert, pki.issuing.cert
    assert root.self_signed == "maybe" and root.issuer == root.subject
    assert _ext(root, "basic_constraints")["critical"].native
    assert root.basic_constraints_value.native == {"ca": True, "path_len_constraint": 1}
    assert issuing.basic_constraints_value.native == {"ca": True, "path_len_constraint": 0}
    for cert in (root, issuing):
        assert _ext(cert, "key_usage")["critical"].native
        assert {"key_cert_sign", "crl_sign"} <= cert.key_usage_value.native
        assert cert.key_identifier == certificate_public_key(cert).key_identifier()
    assert issuing.authority_key_identifier == root.key_identifier
    assert root.authority_key_identifier == root.key_identifier
    assert issuing.crl_distribution_points[0]["distribution_point"].native == ["http://127.0.0.1:8080/crl/root.crl"]
    assert root.crl_distribution_points_value is None


def test_end_entity_extensions(pki):
    for name, leaf in pki.leaves.items():
        cert = leaf.cert
        assert cert.basic_constraints_value.native == {"ca": False, "path_len_constraint": None}
        assert not ({"key_cert_sign", "crl_sign"} & cert.key_usage_value.native)
        assert "digital_signature" in cert.key_usage_value.native
        assert cert.authority_key_identifier == pki.issuing.cert.key_identifier
        assert cert.ocsp_urls == ["http://127.0.0.1:8080/ocsp"]
        assert cert.certificate_policies_value.native[0]["policy_identifier"] == "1.2.156.112559.1.1.1"
        profile = PROFILES[name]
        eku = _ext(cert, "extended_key_usage")
        assert (eku is None) == (not profile.extended_key_usage)
    tsa = _ext(pki.leaves["time-stamping"].cert, "extended_key_usage")
    assert tsa["critical"].native and tsa["extn_value"].native == ["time_stamping"]
    ocsp_cert = pki.leaves["ocsp-responder"].cert
    assert ocsp_cert.extended_key_usage_value.native == ["ocsp_signing"]
    assert ocsp_cert.ocsp_no_check_value is not None
    signer = pki.leaves["department-signer"].cert
    assert credit_code_of(signer.subject) == "11350100MB0000000Y"
    gmt = [e for e in signer["tbs_certificate"]["extensions"] if e["extn_id"].dotted == "1.2.156.10260.4.1.4"]
    assert len(gmt) == 1 and not gmt[0]["critical"].native
    assert pki.leaves["department-signer"].cert.subject.native["common_name"] == "示例市市场监督管理局 签章人"


def test_validity_default_and_clipped(pki):
    leaf = pki.leaves["seal-maker"].cert
    assert leaf.not_valid_before == pki.now
    assert leaf.not_valid_after == pki.now + SEAL_MAKER.validity
    # A 30-year request under a 10-year issuing CA ends with the CA.
    key = SM2PrivateKey.generate()
    long = build_certificate(profile=SEAL_MAKER, subject=subject_name("long"), subject_key=key.public_key(),
                             signer=pki.issuing.key, issuer=pki.issuing.cert, serial=new_serial(),
                             not_before=pki.now, not_after=pki.now + timedelta(days=365 * 30))
    assert long.not_valid_after == pki.issuing.cert.not_valid_after


def test_time_encoding_switches_at_2050():
    assert asn1_time(datetime(2049, 12, 31, 23, 59, 59, tzinfo=UTC)).name == "utc_time"
    assert asn1_time(datetime(2050, 1, 1, tzinfo=UTC)).name == "general_time"
    root_key = SM2PrivateKey.generate()
    root = build_certificate(profile=ROOT_CA, subject=subject_name("late root"),
                             subject_key=root_key.public_key(), signer=root_key, issuer=None,
                             serial=new_serial(), not_before=datetime(2045, 1, 1, tzinfo=UTC))
    validity = root["tbs_certificate"]["validity"]
    assert validity["not_before"].name == "utc_time" and validity["not_after"].name == "general_time"


def test_serials_are_random_positive_and_fit_20_octets():
    serials = {new_serial() for _ in range(200)}
    assert len(serials) == 200
    assert all(0 < s < 2**159 for s in serials)


def test_signer_must_hold_the_issuer_key(pki):
    key = SM2PrivateKey.generate()
    common = dict(subject=subject_name("x"), subject_key=key.public_key(), serial=new_serial(),
                  not_before=pki.now)
    with pytest.raises(InvalidRequest, match="issuer"):
        build_certificate(profile=SEAL_MAKER, signer=pki.root.key, issuer=pki.issuing.cert, **common)
    with pytest.raises(InvalidRequest, match="self-signed"):
        build_certificate(profile=ROOT_CA, signer=pki.root.key, issuer=None, **common)
    with pytest.raises(InvalidRequest, match="not a CA profile"):
        build_certificate(profile=SEAL_MAKER, signer=key, issuer=None, **common)
    with pytest.raises(InvalidRequest, match="not a CA"):
        leaf = pki.leaves["seal-maker"]
        build_certificate(profile=SEAL_MAKER, signer=leaf.key, issuer=leaf.cert, **common)
    with pytest.raises(InvalidRequest, match="pathLenConstraint"):
        build_certificate(profile=ISSUING_CA, signer=pki.issuing.key, issuer=pki.issuing.cert, **common)
    with pytest.raises(InvalidRequest, match="timezone"):
        build_certificate(profile=SEAL_MAKER, signer=pki.issuing.key, issuer=pki.issuing.cert,
                          **{**common, "not_before": datetime(2030, 1, 1)})
    with pytest.raises(InvalidRequest, match="serial"):
        build_certificate(profile=SEAL_MAKER, signer=pki.issuing.key, issuer=pki.issuing.cert,
                          **{**common, "serial": 0})


def test_pem_der_round_trip_and_garbage(pki):
    cert = pki.leaves["department-signer"].cert
    assert load_certificate(pem(cert)).dump() == cert.dump()
    assert load_certificate(cert.dump()).dump() == cert.dump()
    wrong_pem = pem(cert).replace(b"CERTIFICATE", b"X")
    for bad in (b"", b"garbage", cert.dump()[:-10], cert.dump() + b"\x00", wrong_pem):
        with pytest.raises(InvalidRequest):
            load_certificate(bad)


# ---- signatures module ------------------------------------------------------------------------
def test_verify_tbs_rules(pki):
    key = SM2PrivateKey.generate()
    algorithm, signature = sign_tbs(key, b"tbs")
    assert algorithm["algorithm"].native == SM2_WITH_SM3
    assert verify_tbs(key.public_key(), b"tbs", algorithm, signature)
    assert not verify_tbs(key.public_key(), b"tbz", algorithm, signature)
    assert not verify_tbs(key.public_key(), b"tbs", algorithm, b"\x30\x00")
    assert not verify_tbs(key.public_key(), b"tbs", algorithm, key.sign(b"tbs", uid=b""))
    with pytest.raises(UnsupportedAlgorithm):
        verify_tbs(key.public_key(), b"tbs", pki.root.cert["signature_algorithm"].__class__(
            {"algorithm": "sha256_ecdsa"}), signature)


def test_tbs_bytes_are_the_parsed_original(pki):
    der = pki.root.cert.dump()
    cert = x509.Certificate.load(der)
    tbs = tbs_bytes(cert["tbs_certificate"])
    assert der.find(tbs) == 4 and len(tbs) > 200
    cert["tbs_certificate"]["serial_number"] = 7
    with pytest.raises(ValueError, match="refusing"):
        tbs_bytes(cert["tbs_certificate"])


def test_tampered_certificate_signature_fails(pki):
    der = bytearray(pki.leaves["seal-maker"].cert.dump())
    i = der.find("证印测试制章人".encode())
    der[i] ^= 1
    assert not verify_certificate_signature(x509.Certificate.load(bytes(der)), pki.issuing.key.public_key())


def test_non_sm2_certificate_key_is_unsupported(pki):
    cert = x509.Certificate.load(pki.root.cert.dump())
    spki = cert["tbs_certificate"]["subject_public_key_info"]
    spki["algorithm"] = {"algorithm": "ec", "parameters": ("named", "secp256r1")}
    with pytest.raises(UnsupportedAlgorithm):
        certificate_public_key(cert)


# ---- OpenSSL -----------------------------------------------------------------------------------
def _write(tmp_path, pki, leaf_name: str) -> None:
    (tmp_path / "root.pem").write_bytes(pem(pki.root.cert))
    (tmp_path / "issuing.pem").write_bytes(pem(pki.issuing.cert))
    (tmp_path / "leaf.pem").write_bytes(pem(pki.leaves[leaf_name].cert))


@pytest.mark.interop
@pytest.mark.parametrize("leaf_name", ["seal-maker", "department-signer", "time-stamping", "ocsp-responder"])
def test_openssl_verifies_each_link_with_the_gmt_default_id(pki, openssl, tmp_path, leaf_name):
    _write(tmp_path, pki, leaf_name)
    ok = openssl("verify", "-vfyopt", GMT_DISTID, "-CAfile", "root.pem", "issuing.pem", cwd=tmp_path)
    assert ok.stdout.strip() == "issuing.pem: OK", ok.stdout + ok.stderr
    ok = openssl("verify", "-vfyopt", GMT_DISTID, "-partial_chain", "-CAfile", "issuing.pem", "leaf.pem",
                 cwd=tmp_path)
    assert ok.stdout.strip() == "leaf.pem: OK", ok.stdout + ok.stderr
    # ... and with a different ID the same signatures do not verify: the ID is really in use.
    bad = openssl("verify", "-vfyopt", "distid:ALICE123@YAHOO.COM", "-partial_chain", "-CAfile",
                  "issuing.pem", "leaf.pem", cwd=tmp_path)
    assert bad.returncode != 0


@pytest.mark.interop
def test_openssl_verify_whole_chain(pki, openssl, tmp_path, openssl_uses_gmt_default_id, resign):
    """`openssl verify -CAfile root.pem -untrusted issuing.pem leaf.pem` prints OK.

    With OpenSSL < 4 (empty default ID, distid not passed to intermediates) the literal command
    can only accept a chain signed with the empty ID: the same certificates, re-signed so, prove
    that everything but the ID — encoding, names, extensions, key usages, path length,
    policies — satisfies OpenSSL's path validation.
    """
    _write(tmp_path, pki, "department-signer")
    command = ("verify", "-CAfile", "root.pem", "-untrusted", "issuing.pem", "leaf.pem")
    if openssl_uses_gmt_default_id:
        result = openssl(*command, cwd=tmp_path)
        assert result.stdout.strip() == "leaf.pem: OK", result.stdout + result.stderr
    d = tmp_path / "empty-id"
    d.mkdir()
    (d / "root.pem").write_bytes(pem(resign(pki.root.cert, pki.root.key)))
    (d / "issuing.pem").write_bytes(pem(resign(pki.issuing.cert, pki.root.key)))
    for name, leaf in pki.leaves.items():
        (d / "leaf.pem").write_bytes(pem(resign(leaf.cert, pki.issuing.key)))
        result = openssl(*command, "-check_ss_sig", "-x509_strict", "-policy_check", "-policy",
                         "1.2.156.112559.1.1.1", cwd=d)
        assert result.stdout.strip() == "leaf.pem: OK", (name, result.stdout + result.stderr)
    if not openssl_uses_gmt_default_id:
        pytest.skip("this OpenSSL verifies SM2 certificates with an empty ID and cannot pass the GM/T "
                    "0009 default ID to intermediates (openssl#23471); each link verified with -vfyopt")


@pytest.mark.interop
def test_openssl_rejects_a_tampered_leaf(pki, openssl, tmp_path):
    _write(tmp_path, pki, "seal-maker")
    der = bytearray(pki.leaves["seal-maker"].cert.dump())
    der[der.find("证印测试制章人".encode())] ^= 1
    (tmp_path / "leaf.pem").write_bytes(pem(x509.Certificate.load(bytes(der))))
    result = openssl("verify", "-vfyopt", GMT_DISTID, "-partial_chain", "-CAfile", "issuing.pem", "leaf.pem",
                     cwd=tmp_path)
    assert result.returncode != 0 and "signature failure" in result.stdout + result.stderr


@pytest.mark.interop
def test_openssl_text_shows_the_extensions(pki, openssl, tmp_path):
    _write(tmp_path, pki, "department-signer")
    text = openssl("x509", "-in", "leaf.pem", "-noout", "-text", cwd=tmp_path, check=True).stdout
    for expected in ("Signature Algorithm: SM2-with-SM3", "X509v3 Basic Constraints: critical", "CA:FALSE",
                     "X509v3 Key Usage: critical", "Digital Signature, Non Repudiation",
                     "X509v3 Subject Key Identifier", "X509v3 Authority Key Identifier",
                     "X509v3 CRL Distribution Points", "URI:http://127.0.0.1:8080/crl/issuing.crl",
                     "OCSP - URI:http://127.0.0.1:8080/ocsp", "Policy: 1.2.156.112559.1.1.1",
                     "organizationIdentifier = 11350100MB0000000Y", "ASN1 OID: SM2"):
        assert expected in text, expected
    (tmp_path / "issuing.pem").write_bytes(pem(pki.issuing.cert))
    text = openssl("x509", "-in", "issuing.pem", "-noout", "-text", cwd=tmp_path, check=True).stdout
    assert "CA:TRUE, pathlen:0" in text and "Certificate Sign, CRL Sign" in text
    (tmp_path / "tsa.pem").write_bytes(pem(pki.leaves["time-stamping"].cert))
    text = openssl("x509", "-in", "tsa.pem", "-noout", "-text", cwd=tmp_path, check=True).stdout
    assert "X509v3 Extended Key Usage: critical" in text and "Time Stamping" in text
    (tmp_path / "ocsp.pem").write_bytes(pem(pki.leaves["ocsp-responder"].cert))
    text = openssl("x509", "-in", "ocsp.pem", "-noout", "-text", cwd=tmp_path, check=True).stdout
    assert "OCSP Signing" in text and "OCSP No Check" in text
