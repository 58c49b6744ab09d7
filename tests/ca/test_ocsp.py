"""OCSP: good / revoked / unknown, nonces, CertID hashes, who may sign, and OpenSSL's view."""

from __future__ import annotations

from datetime import timedelta

import pytest
from asn1crypto import ocsp

import ca.ocsp as ocsp_module
from ca.certificates import pem
from ca.errors import CaError, InvalidRequest
from ca.ocsp import CertificateStatus, build_request, read_response, respond
from hsm.hazmat import SM2PrivateKey


@pytest.fixture(scope="module")
def statuses(pki):
    revoked_at = pki.now - timedelta(hours=1)
    table = {
        pki.leaves["department-signer"].cert.serial_number: CertificateStatus("good"),
        pki.leaves["seal-maker"].cert.serial_number:
            CertificateStatus("revoked", revoked_at, "key_compromise"),
        pki.leaves["time-stamping"].cert.serial_number: CertificateStatus("revoked", revoked_at),
    }
    return lambda serial: table.get(serial, CertificateStatus("unknown"))


def _respond(pki, statuses, request: bytes, *, responder=None, **kwargs) -> bytes:
    responder = responder or pki.leaves["ocsp-responder"]
    return respond(request, issuer=pki.issuing.cert, responder=responder.cert, responder_signer=responder.key,
                   status_of=statuses, now=pki.now, **kwargs)


def _ask(pki, statuses, cert, **kwargs) -> CertificateStatus:
    request = build_request(cert, pki.issuing.cert, hash_algorithm=kwargs.pop("hash_algorithm", "sha1"))
    response = _respond(pki, statuses, request, **kwargs)
    return read_response(response, issuer=pki.issuing.cert, serial=cert.serial_number, request=request,
                         now=pki.now)


@pytest.mark.parametrize("hash_algorithm", ["sha1", "sm3"])
def test_good_revoked_unknown(pki, statuses, hash_algorithm):
    ask = lambda cert: _ask(pki, statuses, cert, hash_algorithm=hash_algorithm)  # noqa: E731
    assert ask(pki.leaves["department-signer"].cert) == CertificateStatus("good")
    revoked = ask(pki.leaves["seal-maker"].cert)
    assert revoked == CertificateStatus("revoked", pki.now - timedelta(hours=1), "key_compromise")
    assert ask(pki.leaves["time-stamping"].cert) == CertificateStatus("revoked", pki.now - timedelta(hours=1))
    assert ask(pki.leaves["ocsp-responder"].cert).state == "unknown"


def test_issuing_ca_may_answer_itself(pki, statuses):
    status = _ask(pki, statuses, pki.leaves["department-signer"].cert, responder=pki.issuing)
    assert status.state == "good"


def test_response_structure_and_nonce(pki, statuses):
    request = build_request(pki.leaves["department-signer"].cert, pki.issuing.cert)
    response = ocsp.OCSPResponse.load(_respond(pki, statuses, request))
    assert response["response_status"].native == "successful"
    basic = response.basic_ocsp_response
    data = basic["tbs_response_data"]
    assert basic["signature_algorithm"]["algorithm"].dotted == "1.2.156.10197.1.501"
    assert data["responder_id"].name == "by_key"
    assert [c.dump() for c in basic["certs"]] == [pki.leaves["ocsp-responder"].cert.dump()]
    assert data["produced_at"].native == pki.now
    single = data["responses"][0]
    assert single["next_update"].native == pki.now + timedelta(hours=1)
    sent = ocsp.OCSPRequest.load(request)
    assert single["cert_id"].dump() == sent["tbs_request"]["request_list"][0]["req_cert"].dump()
    assert response.nonce_value.native == sent.nonce_value.native and len(sent.nonce_value.native) == 16
    without = build_request(pki.leaves["department-signer"].cert, pki.issuing.cert, nonce=False)
    assert ocsp.OCSPResponse.load(_respond(pki, statuses, without)).nonce_value is None


def test_nonce_mismatch_is_refused(pki, statuses):
    cert = pki.leaves["department-signer"].cert
    response = _respond(pki, statuses, build_request(cert, pki.issuing.cert))
    with pytest.raises(CaError, match="nonce"):
        read_response(response, issuer=pki.issuing.cert, serial=cert.serial_number,
                      request=build_request(cert, pki.issuing.cert), now=pki.now)


@pytest.mark.parametrize("request_bytes", [b"", b"garbage", b"\x30\x03\x02\x01\x01", b"\x30" * 100])
def test_malformed_requests_get_malformed_request(pki, statuses, request_bytes):
    response = ocsp.OCSPResponse.load(_respond(pki, statuses, request_bytes))
    assert response["response_status"].native == "malformed_request"
    with pytest.raises(CaError, match="malformed_request"):
        read_response(response.dump(), issuer=pki.issuing.cert, serial=1, now=pki.now)


def test_truncated_request_and_oversized_nonce(pki, statuses):
    cert = pki.leaves["department-signer"].cert
    request = build_request(cert, pki.issuing.cert)
    assert ocsp.OCSPResponse.load(_respond(pki, statuses, request[:-3]))["response_status"].native \
        == "malformed_request"
    parsed = ocsp.OCSPRequest.load(request)
    parsed["tbs_request"]["request_extensions"][0]["extn_value"] = b"n" * 64
    assert ocsp.OCSPResponse.load(_respond(pki, statuses, parsed.dump()))["response_status"].native \
        == "malformed_request"


def test_request_for_another_issuer_is_unauthorized(pki, statuses):
    request = build_request(pki.issuing.cert, pki.root.cert)  # the issuing CA's own certificate
    response = ocsp.OCSPResponse.load(_respond(pki, statuses, request))
    assert response["response_status"].native == "unauthorized"


def test_response_signed_by_a_wrong_key_is_refused(pki, statuses, resign):
    cert = pki.leaves["department-signer"].cert
    request = build_request(cert, pki.issuing.cert, nonce=False)
    response = ocsp.OCSPResponse.load(_respond(pki, statuses, request))
    forged_basic = resign(response.basic_ocsp_response, SM2PrivateKey.generate(), uid=b"1234567812345678")
    forged = ocsp.OCSPResponse({"response_status": "successful", "response_bytes": {
        "response_type": "basic_ocsp_response", "response": forged_basic}}).dump()
    with pytest.raises(CaError, match="signature"):
        read_response(forged, issuer=pki.issuing.cert, serial=cert.serial_number, now=pki.now)
    # And the genuine one, for contrast.
    assert read_response(response.dump(), issuer=pki.issuing.cert, serial=cert.serial_number,
                         now=pki.now).state == "good"


def test_response_from_an_undelegated_responder_is_refused(pki, statuses, monkeypatch):
    cert = pki.leaves["department-signer"].cert
    with pytest.raises(InvalidRequest, match="OCSP signing"):
        _respond(pki, statuses, build_request(cert, pki.issuing.cert), responder=pki.leaves["seal-maker"])
    monkeypatch.setattr(ocsp_module, "_check_responder", lambda *args: None)
    response = _respond(pki, statuses, build_request(cert, pki.issuing.cert),
                        responder=pki.leaves["seal-maker"])
    with pytest.raises(CaError, match="not signed by the issuing CA"):
        read_response(response, issuer=pki.issuing.cert, serial=cert.serial_number, now=pki.now)
    # Nor is a root-signed response about the issuing CA's certificates.
    response = respond(build_request(cert, pki.issuing.cert), issuer=pki.root.cert, responder=pki.root.cert,
                       responder_signer=pki.root.key, status_of=statuses, now=pki.now)
    with pytest.raises(CaError):
        read_response(response, issuer=pki.issuing.cert, serial=cert.serial_number, now=pki.now)


def test_stale_and_future_responses_are_refused(pki, statuses):
    cert = pki.leaves["department-signer"].cert
    response = _respond(pki, statuses, build_request(cert, pki.issuing.cert, nonce=False))
    with pytest.raises(CaError, match="out of date"):
        read_response(response, issuer=pki.issuing.cert, serial=cert.serial_number,
                      now=pki.now + timedelta(hours=2))
    with pytest.raises(CaError, match="not valid at"):  # before the responder certificate
        read_response(response, issuer=pki.issuing.cert, serial=cert.serial_number,
                      now=pki.now - timedelta(hours=1))
    future = respond(build_request(cert, pki.issuing.cert, nonce=False), issuer=pki.issuing.cert,
                     responder=pki.leaves["ocsp-responder"].cert,
                     responder_signer=pki.leaves["ocsp-responder"].key,
                     status_of=statuses, now=pki.now + timedelta(hours=1))
    with pytest.raises(CaError, match="future"):
        read_response(future, issuer=pki.issuing.cert, serial=cert.serial_number,
                      now=pki.now + timedelta(minutes=10))
    with pytest.raises(CaError, match="no answer"):
        read_response(response, issuer=pki.issuing.cert, serial=cert.serial_number + 1, now=pki.now)


def test_responder_key_must_match(pki, statuses):
    with pytest.raises(InvalidRequest, match="key"):
        respond(b"", issuer=pki.issuing.cert, responder=pki.leaves["ocsp-responder"].cert,
                responder_signer=pki.issuing.key, status_of=statuses, now=pki.now)


# ---- OpenSSL -----------------------------------------------------------------------------------
@pytest.mark.interop
def test_openssl_request_is_answered_and_openssl_reads_the_answer(pki, statuses, openssl, tmp_path):
    (tmp_path / "issuing.pem").write_bytes(pem(pki.issuing.cert))
    for name in ("department-signer", "seal-maker"):
        (tmp_path / f"{name}.pem").write_bytes(pem(pki.leaves[name].cert))
    openssl("ocsp", "-issuer", "issuing.pem", "-cert", "department-signer.pem", "-cert", "seal-maker.pem",
            "-reqout", "req.der", cwd=tmp_path, check=True)
    (tmp_path / "resp.der").write_bytes(_respond(pki, statuses, (tmp_path / "req.der").read_bytes()))
    # -noverify: the signature check is below; here OpenSSL matches CertIDs, nonce and statuses.
    result = openssl("ocsp", "-respin", "resp.der", "-reqin", "req.der", "-issuer", "issuing.pem",
                     "-cert", "department-signer.pem", "-cert", "seal-maker.pem", "-noverify", "-resp_text",
                     cwd=tmp_path, check=True)
    out = result.stdout + result.stderr
    assert "department-signer.pem: good" in out and "seal-maker.pem: revoked" in out, out
    assert "Reason: keyCompromise" in out
    assert "WARNING: no nonce" not in out and "nonce verify error" not in out


@pytest.mark.interop
def test_openssl_verifies_the_response_signature(pki, statuses, openssl, tmp_path, resign,
                                                 openssl_uses_gmt_default_id):
    """`openssl ocsp -respin … -issuer issuing.pem -CAfile root.pem` verifies the SM2 response.

    `openssl ocsp` has no distid option; OpenSSL < 4 checks every signature on the way (the
    response, the responder certificate, the issuing CA) with the empty ID. With all of them
    re-signed so, OpenSSL's full RFC 6960 responder check passes; our own signatures are
    checked as they are only where OpenSSL uses the GM/T 0009 default ID.
    """
    responder = pki.leaves["ocsp-responder"]
    cert = pki.leaves["department-signer"].cert
    request = build_request(cert, pki.issuing.cert)
    response = ocsp.OCSPResponse.load(_respond(pki, statuses, request))
    (tmp_path / "issuing.pem").write_bytes(pem(pki.issuing.cert))
    (tmp_path / "root.pem").write_bytes(pem(pki.root.cert))
    (tmp_path / "resp.der").write_bytes(response.dump())
    command = ("ocsp", "-respin", "resp.der", "-issuer", "issuing.pem", "-CAfile", "root.pem", "-resp_text")

    d = tmp_path / "empty-id"
    d.mkdir()
    issuing_e = resign(pki.issuing.cert, pki.root.key)
    (d / "root.pem").write_bytes(pem(resign(pki.root.cert, pki.root.key)) + pem(issuing_e))
    (d / "issuing.pem").write_bytes(pem(issuing_e))
    basic = response.basic_ocsp_response
    rebuilt = ocsp.BasicOCSPResponse({
        "tbs_response_data": basic["tbs_response_data"], "signature_algorithm": basic["signature_algorithm"],
        "signature": b"", "certs": [resign(responder.cert, pki.issuing.key)]})
    basic_e = resign(ocsp.BasicOCSPResponse.load(rebuilt.dump()), responder.key)
    (d / "resp.der").write_bytes(ocsp.OCSPResponse({"response_status": "successful", "response_bytes": {
        "response_type": "basic_ocsp_response", "response": basic_e}}).dump())
    result = openssl(*command, cwd=d)
    assert "Response verify OK" in result.stdout + result.stderr, result.stdout + result.stderr
    assert "Cert Status: good" in result.stdout

    result = openssl(*command, cwd=tmp_path)
    if openssl_uses_gmt_default_id:
        assert "Response verify OK" in result.stdout + result.stderr, result.stdout + result.stderr
    else:
        pytest.skip("this OpenSSL checks SM2 OCSP signatures with an empty ID and `openssl ocsp` has no "
                    "distid option; the empty-ID re-signed response verified")
