"""Checking a seal and a seal signature over the bytes as they stand — the checks ofdrw skips.

A seal signature (SES_Signature) is only as good as each link in it: the document digest it
signs (``data-hash``), the signer's SM2 signature over TBS_Sign (``signature``), the seal
maker's signature over the seal (``seal-maker-signature``), the signer being one of the
seal's holders (``signer-in-seal``) and the seal being within its validity when it was used
(``seal-validity``). Each is one :class:`~ca.verdict.Check` whose failure code is an ETSI
sub-indication; certificate chains and revocation are judged above this room, against the
verifier's trust anchors.

Nothing here trusts a parse: a certificate or signature that cannot be read fails its check.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime

from asn1crypto import x509

from ca.signatures import certificate_public_key
from ca.validation import name_text
from ca.verdict import (
    FORMAT_FAILURE,
    HASH_FAILURE,
    NO_SIGNING_CERTIFICATE_FOUND,
    SIG_CONSTRAINTS_FAILURE,
    SIG_CRYPTO_FAILURE,
    Check,
    failed,
    passed,
)
from hsm import oids
from hsm.errors import ASN1_PARSE_ERRORS, HsmError
from hsm.signature import decode_bit_string_signature
from hsm.sm3 import sm3

from .seal import BitString, Seal
from .seal_signature import SealSignature

#: Signature algorithms accepted in seals and seal signatures: SM2-with-SM3, and the bare
#: sm2sign OID some producers write in its place (the digest is SM3 either way).
SEAL_ALGORITHMS = frozenset({oids.SM2_WITH_SM3, oids.SM2_SIGN})

#: Certificate digest algorithms of certListType 2 (the spelling varies between producers).
_DIGESTS: dict[str, Callable[[bytes], bytes]] = {"sm3": sm3, oids.SM3: sm3}


def _digest_function(algorithm: str) -> Callable[[bytes], bytes] | None:
    return _DIGESTS.get(algorithm.strip().lower())


def load_certificate(der: bytes) -> x509.Certificate | None:
    """The certificate in ``der`` with a readable public key, or None when it is not one.

    Only the structure and the key are required: real signer certificates carry names that
    asn1crypto cannot decode (GBK bytes in a TeletexString, a UTF8String where a BIT STRING
    is due) and an extension or two of the wrong shape. Such a certificate still names its
    key exactly; judging the rest is the chain check's business.
    """
    try:
        cert = x509.Certificate.load(der, strict=True)
        cert["tbs_certificate"]["subject_public_key_info"].native  # noqa: B018 - parse now
    except ASN1_PARSE_ERRORS:
        return None
    return cert


def _name(cert: x509.Certificate, which: str) -> str:
    """A name as text, or a placeholder when the producer's encoding defeats decoding."""
    try:
        return name_text(getattr(cert, which))
    except ASN1_PARSE_ERRORS:
        return f"(undecodable {which} name)"


def subject_text(cert: x509.Certificate) -> str:
    return _name(cert, "subject")


def issuer_text(cert: x509.Certificate) -> str:
    return _name(cert, "issuer")


def certificate_subject(der: bytes) -> str | None:
    cert = load_certificate(der)
    return subject_text(cert) if cert is not None else None


def _sm2_check(
    name: str, algorithm: str, certificate: bytes, signature: BitString, data: bytes, whose: str
) -> Check:
    if algorithm not in SEAL_ALGORITHMS:
        return failed(
            name, f"{whose} signature algorithm {algorithm} is not SM2-with-SM3", SIG_CRYPTO_FAILURE
        )
    cert = load_certificate(certificate)
    if cert is None:
        return failed(name, f"{whose} certificate cannot be read", NO_SIGNING_CERTIFICATE_FOUND)
    subject = subject_text(cert)
    try:
        key = certificate_public_key(cert)
        value = decode_bit_string_signature(signature.payload, signature.unused_bits)
        key.verify(value, data)
    except (HsmError, *ASN1_PARSE_ERRORS) as exc:
        return failed(name, f"{whose} signature does not verify: {exc}", SIG_CRYPTO_FAILURE, subject)
    return passed(
        name, f"{whose} SM2 signature verifies ({value.form.value}, {len(data)} signed bytes)", subject
    )


def maker_signature_check(seal: Seal) -> Check:
    """The seal maker's signature over what that layout's maker signs (see :mod:`seals.seal`)."""
    rule = "DER SEQUENCE{sealInfo, cert, alg}" if seal.layout == "v1" else "SES_SealInfo as it stands"
    check = _sm2_check(
        "seal-maker-signature",
        seal.maker_algorithm,
        seal.maker_certificate,
        seal.maker_signature,
        seal.maker_signed_bytes,
        "seal maker's",
    )
    return Check(check.name, check.ok, f"{check.detail}; over {rule}", check.subject, check.code)


def signer_in_seal_check(seal: Seal, signer_certificate: bytes) -> Check:
    """The signer must hold the seal: its certificate (or its digest) is in the certList."""
    name = "signer-in-seal"
    subject = certificate_subject(signer_certificate)
    if seal.certificates and signer_certificate in seal.certificates:
        return passed(
            name,
            f"signer certificate is #{seal.certificates.index(signer_certificate) + 1} "
            f"of the seal's {len(seal.certificates)}",
            subject,
        )
    for n, digest in enumerate(seal.cert_digests, 1):
        function = _digest_function(digest.algorithm)
        if function is not None and function(signer_certificate) == digest.value:
            return passed(
                name,
                f"signer certificate's {digest.algorithm} digest is #{n} of the seal's "
                f"{len(seal.cert_digests)}",
                subject,
            )
    listed = len(seal.certificates) or len(seal.cert_digests)
    unknown = sorted({d.algorithm for d in seal.cert_digests if _digest_function(d.algorithm) is None})
    detail = f"signer certificate is not among the seal's {listed} listed certificate(s)"
    if unknown:
        detail += f" (digest algorithm(s) {', '.join(unknown)} not supported)"
    return failed(name, detail, SIG_CONSTRAINTS_FAILURE, subject)


def seal_validity_check(seal: Seal, at: datetime) -> Check:
    """The seal was within its validity at the signing time the signature claims."""
    span = f"{seal.valid_start.isoformat()} .. {seal.valid_end.isoformat()}"
    if not seal.valid_start <= at <= seal.valid_end:
        return failed(
            "seal-validity",
            f"signed at {at.isoformat()}, outside the seal's validity {span}",
            SIG_CONSTRAINTS_FAILURE,
            seal.es_id,
        )
    return passed("seal-validity", f"signed at {at.isoformat()}, within {span}", seal.es_id)


def data_hash_check(signature: SealSignature, signed_document: bytes) -> Check:
    """dataHash must be SM3 of the signed document bytes (an OFD's Signature.xml)."""
    expected = sm3(signed_document)
    got = signature.data_hash
    if got.unused_bits:
        return failed(
            "data-hash", f"dataHash BIT STRING declares {got.unused_bits} unused bits", FORMAT_FAILURE
        )
    if got.payload != expected:
        return failed(
            "data-hash",
            f"dataHash {got.payload.hex()} is not SM3 of the signed data ({expected.hex()})",
            HASH_FAILURE,
        )
    return passed("data-hash", f"dataHash = SM3 of the {len(signed_document)} signed bytes")


def seal_signature_checks(signature: SealSignature, signed_document: bytes | None) -> list[Check]:
    """Every check this room can make on a seal signature (``signed_document`` None: no data-hash)."""
    checks = []
    if signed_document is not None:
        checks.append(data_hash_check(signature, signed_document))
    checks.append(
        _sm2_check(
            "signature",
            signature.algorithm,
            signature.signer_certificate,
            signature.signature,
            signature.signed_bytes,
            "signer's",
        )
    )
    checks.append(maker_signature_check(signature.seal))
    checks.append(signer_in_seal_check(signature.seal, signature.signer_certificate))
    checks.append(seal_validity_check(signature.seal, signature.time_info))
    return checks
