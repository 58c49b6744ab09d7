"""OCSP (RFC 6960): a responder function, and the client side for tests and tools.

:func:`respond` never raises on what a client sends: a request it cannot read gets a
``malformedRequest`` response, a request only about other CAs' certificates ``unauthorized``.
Responses are BasicOCSPResponses signed SM2-with-SM3 (default user ID), responderID byKey,
with the responder certificate attached and the request nonce (RFC 8954) echoed. CertIDs
hashed with SHA-1 (what OpenSSL and most clients send) and with SM3 are both understood; the
response repeats the CertID exactly as the client sent it.

:func:`pre_produce` makes the RFC 5019 "lightweight" kind instead: one SingleResponse for one
CertID, no nonce, signed ahead of time by whoever holds the keys, so that a service without
keys (the public verification service) can answer OCSP by handing out stored bytes.
:func:`read_request` gives that service the CertIDs and nonce of a request without signing.

:func:`read_response` trusts a response only if it is signed by the issuing CA itself, or by
a responder certificate the CA issued with the id-kp-OCSPSigning extended key usage.
"""

from __future__ import annotations

import hashlib
import secrets
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Literal

from asn1crypto import core, ocsp, x509

from hsm.errors import HsmError
from hsm.keystore import Signer
from hsm.sm3 import sm3

from .crl import REASONS
from .errors import CaError, InvalidRequest
from .signatures import (
    bit_string_bytes,
    certificate_public_key,
    sign_structure,
    tbs_bytes,
    verify_certificate_signature,
    verify_tbs,
)

MAX_REQUEST_BYTES = 64 * 1024
MAX_REQUESTS = 64
MAX_NONCE_BYTES = 32  # RFC 8954 §2.1
CLOCK_SKEW = timedelta(minutes=5)

_HASHES: dict[str, Callable[[bytes], bytes]] = {
    "sha1": lambda data: hashlib.sha1(data, usedforsecurity=False).digest(),
    "sha256": lambda data: hashlib.sha256(data).digest(),
    "sm3": sm3,
}


@dataclass(frozen=True)
class CertificateStatus:
    """What OCSP says about one certificate."""

    state: Literal["good", "revoked", "unknown"]
    revoked_at: datetime | None = None
    reason: str | None = None
    #: When the key is known or suspected to have been compromised (RFC 5280 §5.3.2, carried
    #: as a singleExtension, RFC 6960 §4.4): documents signed before it may still be good.
    invalidity_date: datetime | None = None


# ---- hashes that identify an issuer ----------------------------------------------------------
def _issuer_hashes(issuer: x509.Certificate, algorithm: str) -> tuple[bytes, bytes] | None:
    """(issuerNameHash, issuerKeyHash) of ``issuer`` under ``algorithm``; None if unsupported.

    The name hash is over the DER of the issuer's subject as it stands in its certificate,
    the key hash over the public key BIT STRING value (RFC 6960 §4.1.1).
    """
    digest = _HASHES.get(algorithm)
    if digest is None:
        return None
    subject = issuer["tbs_certificate"]["subject"].dump()
    key_bits = bit_string_bytes(issuer["tbs_certificate"]["subject_public_key_info"]["public_key"])
    return digest(subject), digest(key_bits)


def _key_sha1(cert: x509.Certificate) -> bytes:
    """ResponderID byKey: SHA-1 of the responder's public key bits (RFC 6960 §4.2.1)."""
    key_bits = bit_string_bytes(cert["tbs_certificate"]["subject_public_key_info"]["public_key"])
    return hashlib.sha1(key_bits, usedforsecurity=False).digest()


def cert_id_of(cert: x509.Certificate, issuer: x509.Certificate, hash_algorithm: str = "sha1") -> ocsp.CertId:
    """The CertID of ``cert`` (issued by ``issuer``) with its issuer hashed by ``hash_algorithm``."""
    hashes = _issuer_hashes(issuer, hash_algorithm)
    if hashes is None:
        raise InvalidRequest(f"unsupported CertID hash {hash_algorithm!r}; use one of: {', '.join(_HASHES)}")
    return ocsp.CertId({
        "hash_algorithm": {"algorithm": hash_algorithm},
        "issuer_name_hash": hashes[0],
        "issuer_key_hash": hashes[1],
        "serial_number": cert.serial_number,
    })


def _matches_issuer(cert_id: ocsp.CertId, issuer: x509.Certificate) -> bool:
    hashes = _issuer_hashes(issuer, cert_id["hash_algorithm"]["algorithm"].native)
    return hashes is not None and (
        bytes(cert_id["issuer_name_hash"]), bytes(cert_id["issuer_key_hash"])) == hashes


def _generalized(when: datetime) -> datetime:
    return when.astimezone(UTC).replace(microsecond=0)


# ---- responder --------------------------------------------------------------------------------
def _status_response(status: str) -> bytes:
    return ocsp.OCSPResponse({"response_status": status}).dump()


def _parse_request(request: bytes) -> ocsp.OCSPRequest | None:
    """The parsed request, or None for anything malformed, oversized or with a bad nonce."""
    if not isinstance(request, (bytes, bytearray)) or not request or len(request) > MAX_REQUEST_BYTES:
        return None
    try:
        parsed = ocsp.OCSPRequest.load(bytes(request), strict=True)
        parsed.native  # noqa: B018  (parse every field now, so malformed input fails here)
        requests = parsed["tbs_request"]["request_list"]
        if not 1 <= len(requests) <= MAX_REQUESTS:
            return None
        nonce = _request_nonce(parsed)
        if nonce is not None and not 1 <= len(nonce) <= MAX_NONCE_BYTES:
            return None
    except (ValueError, TypeError, OverflowError, KeyError):
        return None
    return parsed


def _request_nonce(request: ocsp.OCSPRequest) -> bytes | None:
    for extension in request["tbs_request"]["request_extensions"] or []:
        if extension["extn_id"].native == "nonce":
            return bytes(extension["extn_value"].parsed)
    return None


def _check_responder(issuer: x509.Certificate, responder: x509.Certificate, signer: Signer) -> None:
    """The responder must be the CA itself or a certificate it issued for OCSP signing."""
    try:
        responder_key = certificate_public_key(responder)
        issuer_key = certificate_public_key(issuer)
    except HsmError as exc:
        raise InvalidRequest(f"OCSP responder or issuer certificate has no SM2 key: {exc}") from exc
    if signer.public_key() != responder_key:
        raise InvalidRequest("the OCSP signer's key is not the responder certificate's key")
    if responder_key == issuer_key:
        return
    if not is_delegated_responder(responder, issuer):
        raise InvalidRequest("the OCSP responder certificate was not issued by this CA for OCSP "
                             "signing (id-kp-OCSPSigning); issue one with the ocsp-responder profile")


def is_delegated_responder(responder: x509.Certificate, issuer: x509.Certificate) -> bool:
    """Whether ``issuer``'s key signed ``responder`` with id-kp-OCSPSigning (RFC 6960 §4.2.2.2)."""
    eku = responder.extended_key_usage_value
    if eku is None or "ocsp_signing" not in eku.native:
        return False
    if responder.issuer != issuer.subject:
        return False
    return verify_certificate_signature(responder, certificate_public_key(issuer))


def _single_response(cert_id: ocsp.CertId, status: CertificateStatus, this_update: datetime,
                     next_update: datetime) -> dict:
    if status.state == "good":
        cert_status = ocsp.CertStatus(name="good", value=core.Null())
    elif status.state == "revoked":
        if status.revoked_at is None:
            raise InvalidRequest("a revoked status needs its revocation time")
        info: dict = {"revocation_time": _generalized(status.revoked_at)}
        if status.reason is not None:
            if status.reason not in REASONS:
                raise InvalidRequest(f"unknown revocation reason {status.reason!r}")
            info["revocation_reason"] = status.reason
        cert_status = ocsp.CertStatus(name="revoked", value=info)
    else:
        cert_status = ocsp.CertStatus(name="unknown", value=core.Null())
    single = {"cert_id": cert_id, "cert_status": cert_status, "this_update": _generalized(this_update),
              "next_update": _generalized(next_update)}
    if status.state == "revoked" and status.invalidity_date is not None:
        single["single_extensions"] = [{"extn_id": "invalidity_date", "critical": False,
                                        "extn_value": _generalized(status.invalidity_date)}]
    return single


def respond(request: bytes, *, issuer: x509.Certificate, responder: x509.Certificate,
            responder_signer: Signer, status_of: Callable[[int], CertificateStatus], now: datetime,
            validity: timedelta = timedelta(hours=1)) -> bytes:
    """Answer a DER OCSPRequest with a DER OCSPResponse.

    Client faults become OCSP error responses; a misconfigured responder (signer key not the
    responder's, responder not delegated by ``issuer``) raises InvalidRequest.
    """
    _check_responder(issuer, responder, responder_signer)
    parsed = _parse_request(request)
    if parsed is None:
        return _status_response("malformed_request")
    now = _generalized(now)
    responses = []
    ours = 0
    for item in parsed["tbs_request"]["request_list"]:
        cert_id = item["req_cert"]
        if _matches_issuer(cert_id, issuer):
            ours += 1
            status = status_of(cert_id["serial_number"].native)
        else:
            status = CertificateStatus("unknown")
        responses.append(_single_response(cert_id, status, now, now + validity))
    if ours == 0:
        return _status_response("unauthorized")

    return _signed_response(responder, responder_signer, responses, now, _request_nonce(parsed))


def _signed_response(responder: x509.Certificate, signer: Signer, responses: list[dict],
                     produced_at: datetime, nonce: bytes | None) -> bytes:
    """A successful OCSPResponse: BasicOCSPResponse, responderID byKey, responder certificate attached."""
    data: dict = {
        "responder_id": ocsp.ResponderId(name="by_key", value=_key_sha1(responder)),
        "produced_at": _generalized(produced_at),
        "responses": responses,
    }
    if nonce is not None:
        data["response_extensions"] = [{"extn_id": "nonce", "critical": False, "extn_value": nonce}]
    signed_tbs, algorithm, signature = sign_structure(signer, ocsp.ResponseData(data))
    basic = ocsp.BasicOCSPResponse({
        "tbs_response_data": signed_tbs,
        "signature_algorithm": algorithm,
        "signature": signature,
        "certs": [responder],
    })
    return ocsp.OCSPResponse({
        "response_status": "successful",
        "response_bytes": {"response_type": "basic_ocsp_response", "response": basic},
    }).dump()


def pre_produce(cert: x509.Certificate, *, issuer: x509.Certificate, responder: x509.Certificate,
                responder_signer: Signer, status: CertificateStatus, this_update: datetime,
                next_update: datetime, hash_algorithm: str = "sha1") -> bytes:
    """An RFC 5019 pre-produced response about ``cert``: one SingleResponse whose CertID uses
    ``hash_algorithm``, no nonce, producedAt = thisUpdate. The responder is checked as in
    :func:`respond`; InvalidRequest for a window that ends before it starts or a status of
    "unknown" (a responder that knows nothing answers ``unauthorized`` instead)."""
    _check_responder(issuer, responder, responder_signer)
    if next_update <= this_update:
        raise InvalidRequest("an OCSP response's nextUpdate must be after its thisUpdate")
    if status.state == "unknown":
        raise InvalidRequest("a pre-produced OCSP response says good or revoked; leave unknown ones out")
    single = _single_response(cert_id_of(cert, issuer, hash_algorithm), status, this_update, next_update)
    return _signed_response(responder, responder_signer, [single], this_update, None)


def status_response(status: Literal["malformed_request", "unauthorized", "try_later", "internal_error"]
                    ) -> bytes:
    """An unsigned OCSP error response (RFC 6960 §2.3), e.g. ``unauthorized`` for a CertID the
    responder has no answer for."""
    return _status_response(status)


@dataclass(frozen=True)
class OcspRequestSummary:
    """What a responder needs of a request: its CertIDs (as sent) and the nonce, if any."""

    cert_ids: tuple[ocsp.CertId, ...]
    nonce: bytes | None


def read_request(request: bytes, *, max_bytes: int = MAX_REQUEST_BYTES) -> OcspRequestSummary | None:
    """The CertIDs and nonce of a DER OCSPRequest; None if it is malformed, larger than
    ``max_bytes``, has no or too many requests, or an out-of-range nonce."""
    if not isinstance(request, (bytes, bytearray)) or len(request) > max_bytes:
        return None
    parsed = _parse_request(request)
    if parsed is None:
        return None
    return OcspRequestSummary(tuple(item["req_cert"] for item in parsed["tbs_request"]["request_list"]),
                              _request_nonce(parsed))


def issuer_hashes(issuer: x509.Certificate, hash_algorithm: str) -> tuple[bytes, bytes] | None:
    """(issuerNameHash, issuerKeyHash) of ``issuer`` under ``hash_algorithm`` (None if unsupported)."""
    return _issuer_hashes(issuer, hash_algorithm)


# ---- client -----------------------------------------------------------------------------------
def build_request(cert: x509.Certificate, issuer: x509.Certificate, nonce: bool = True, *,
                  hash_algorithm: Literal["sha1", "sm3"] = "sha1") -> bytes:
    """A DER OCSPRequest for ``cert``, CertID hashed with SHA-1 (default) or SM3."""
    if hash_algorithm not in ("sha1", "sm3"):
        raise InvalidRequest(f"unsupported CertID hash {hash_algorithm!r}; use 'sha1' or 'sm3'")
    tbs: dict = {"request_list": [{"req_cert": cert_id_of(cert, issuer, hash_algorithm)}]}
    if nonce:
        tbs["request_extensions"] = [{"extn_id": "nonce", "critical": False,
                                      "extn_value": secrets.token_bytes(16)}]
    return ocsp.OCSPRequest({"tbs_request": tbs}).dump()


def read_response(data: bytes, *, issuer: x509.Certificate, serial: int, request: bytes | None = None,
                  now: datetime | None = None) -> CertificateStatus:
    """The status of ``serial`` from a verified OCSP response; CaError on any failure.

    Checks the response signature, that the signer is ``issuer`` or a responder it delegated
    (id-kp-OCSPSigning), that the answer is about ``issuer``'s certificate, that it is current
    at ``now`` (default: the present, 5 minutes' skew) and, given the ``request``, that its
    nonce is echoed.
    """
    now = _generalized(now or datetime.now(UTC))
    try:
        response = ocsp.OCSPResponse.load(bytes(data), strict=True)
        response.native  # noqa: B018
    except (ValueError, TypeError, OverflowError) as exc:
        raise CaError(f"not a readable OCSP response: {exc}") from exc
    status = response["response_status"].native
    if status != "successful":
        raise CaError(f"the OCSP responder answered {status!r}")
    response_bytes = response["response_bytes"]
    if response_bytes["response_type"].native != "basic_ocsp_response":
        raise CaError("the OCSP response is not a BasicOCSPResponse")
    basic = response_bytes["response"].parsed
    tbs = basic["tbs_response_data"]

    signer = _find_signer(basic, issuer, now)
    try:
        valid = verify_tbs(certificate_public_key(signer), tbs_bytes(tbs), basic["signature_algorithm"],
                           bit_string_bytes(basic["signature"]))
    except HsmError as exc:
        raise CaError(f"the OCSP response signature cannot be checked: {exc}") from exc
    if not valid:
        raise CaError("the OCSP response signature does not verify with the responder's key")

    if request is not None:
        try:
            expected = _request_nonce(ocsp.OCSPRequest.load(request))
        except (ValueError, TypeError) as exc:
            raise CaError(f"the OCSP request given for the nonce check is unreadable: {exc}") from exc
        echoed = None
        for extension in tbs["response_extensions"] or []:
            if extension["extn_id"].native == "nonce":
                echoed = bytes(extension["extn_value"].parsed)
        if expected is not None and echoed != expected:
            raise CaError("the OCSP response does not echo the request nonce (possible replay)")

    for single in tbs["responses"]:
        cert_id = single["cert_id"]
        if cert_id["serial_number"].native != serial or not _matches_issuer(cert_id, issuer):
            continue
        this_update = single["this_update"].native
        next_update = single["next_update"].native
        if this_update > now + CLOCK_SKEW:
            raise CaError("the OCSP response is dated in the future")
        if next_update is not None and next_update < now - CLOCK_SKEW:
            raise CaError("the OCSP response is out of date (nextUpdate has passed)")
        cert_status = single["cert_status"]
        if cert_status.name == "good":
            return CertificateStatus("good")
        if cert_status.name == "revoked":
            info = cert_status.chosen
            invalid = next((e["extn_value"].native for e in single["single_extensions"]
                            if e["extn_id"].native == "invalidity_date"), None)
            return CertificateStatus("revoked", revoked_at=info["revocation_time"].native,
                                     reason=info["revocation_reason"].native, invalidity_date=invalid)
        return CertificateStatus("unknown")
    raise CaError(f"the OCSP response has no answer for serial {serial:x} of this issuer")


def _find_signer(basic: ocsp.BasicOCSPResponse, issuer: x509.Certificate, now: datetime) -> x509.Certificate:
    """The certificate named by responderID: the issuer itself or a delegated responder."""
    responder_id = basic["tbs_response_data"]["responder_id"]
    candidates = [issuer, *(basic["certs"] or [])]

    def named(cert: x509.Certificate) -> bool:
        if responder_id.name == "by_key":
            return _key_sha1(cert) == bytes(responder_id.chosen)
        return cert.subject == responder_id.chosen

    for cert in candidates:
        if not named(cert):
            continue
        try:
            if cert is issuer or certificate_public_key(cert) == certificate_public_key(issuer):
                return cert
            if is_delegated_responder(cert, issuer):
                validity = cert["tbs_certificate"]["validity"]
                if not validity["not_before"].native <= now <= validity["not_after"].native:
                    raise CaError(f"the OCSP responder certificate is not valid at {now:%Y-%m-%d %H:%M:%S}Z")
                return cert
        except HsmError:
            continue
    raise CaError("the OCSP response is not signed by the issuing CA or a responder it authorised "
                  "for OCSP signing")
