"""PKCS#10 certificate requests with SM2 keys (RFC 2986).

A CSR proves possession of the private key: its own SM2-with-SM3 signature (default user ID,
as ``openssl req -new -key k.pem -sm3 -sigopt distid:1234567812345678`` writes it) must verify
with the key it carries, over the CertificationRequestInfo bytes as received. Only the subject
and the key are taken from a CSR; extensions a requester asks for are ignored, because the
profile decides them.
"""

from __future__ import annotations

from dataclasses import dataclass

from asn1crypto import csr, x509

from hsm.errors import HsmError, UnsupportedAlgorithm
from hsm.keystore import Signer
from hsm.sm2 import SM2PublicKey

from .certificates import unarmor
from .errors import InvalidRequest
from .signatures import bit_string_bytes, sign_tbs, tbs_bytes, verify_tbs


@dataclass(frozen=True)
class CertificateRequest:
    """What the CA takes from a verified CSR."""

    subject: x509.Name
    public_key: SM2PublicKey


def load_csr(data: bytes) -> CertificateRequest:
    """Parse a PEM or DER CSR and verify its self-signature; InvalidRequest on any defect."""
    der = _unarmor_csr(data)
    try:
        request = csr.CertificationRequest.load(der, strict=True)
        request.native  # noqa: B018  (parse every field now, so malformed input fails here)
        info = request["certification_request_info"]
        if info["version"].native != "v1":
            raise InvalidRequest("CSR version must be v1 (0); regenerate it with a PKCS#10 tool")
        subject = info["subject"]
    except (ValueError, TypeError, OverflowError) as exc:
        raise InvalidRequest(f"not a readable PKCS#10 CSR ({exc}); supply a PEM or DER request") from exc
    try:
        public_key = SM2PublicKey.from_spki(info["subject_pk_info"])
    except (HsmError, ValueError, TypeError) as exc:
        raise InvalidRequest(f"the CSR's key is not an SM2 public key ({exc}); generate an SM2 key") from exc
    try:
        valid = verify_tbs(public_key, tbs_bytes(info), request["signature_algorithm"],
                           bit_string_bytes(request["signature"]))
    except UnsupportedAlgorithm as exc:
        raise InvalidRequest(f"{exc}; sign the CSR with SM3 (openssl req -sm3 -sigopt "
                             "distid:1234567812345678)") from exc
    if not valid:
        raise InvalidRequest("the CSR's signature does not verify with its own key (default SM2 ID "
                             "1234567812345678); the request was altered or signed with another ID")
    if not subject.chosen:
        raise InvalidRequest("the CSR has an empty subject; give a subject name")
    return CertificateRequest(subject=subject, public_key=public_key)


def _unarmor_csr(data: bytes) -> bytes:
    try:
        return unarmor(data, "CERTIFICATE REQUEST", "CSR")
    except InvalidRequest as first:
        try:
            return unarmor(data, "NEW CERTIFICATE REQUEST", "CSR")
        except InvalidRequest:
            raise first from None


def build_csr(signer: Signer, subject: x509.Name) -> bytes:
    """A DER PKCS#10 request for ``signer``'s key, signed SM2-with-SM3 (for tests and tools)."""
    info = csr.CertificationRequestInfo({
        "version": "v1",
        "subject": subject,
        "subject_pk_info": signer.public_key().to_spki(),
        "attributes": [],
    })
    info_der = info.dump()
    algorithm, signature = sign_tbs(signer, info_der)
    return csr.CertificationRequest({
        "certification_request_info": csr.CertificationRequestInfo.load(info_der),
        "signature_algorithm": algorithm,
        "signature": signature,
    }).dump()
