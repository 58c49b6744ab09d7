"""Certificate revocation lists (RFC 5280 §5), v2, signed SM2-with-SM3.

Each CRL carries a CRL number and the issuer's authority key identifier; each entry its
revocation date and, when known, the reason code and the invalidity date (when the key is
believed to have been compromised — earlier than the revocation, which matters for
documents signed in between).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from asn1crypto import crl, x509

from hsm.errors import HsmError
from hsm.keystore import Signer

from .certificates import asn1_time, is_ca_certificate, issuer_key_identifier, unarmor, utc
from .errors import CaError, InvalidRequest
from .signatures import bit_string_bytes, certificate_public_key, sign_structure, tbs_bytes, verify_tbs

#: RFC 5280 §5.3.1 CRLReason names (asn1crypto spelling), in code order (7 is unused).
REASONS: tuple[str, ...] = (
    "unspecified", "key_compromise", "ca_compromise", "affiliation_changed", "superseded",
    "cessation_of_operation", "certificate_hold", "remove_from_crl", "privilege_withdrawn",
    "aa_compromise",
)
MAX_CRL_NUMBER_BITS = 159  # RFC 5280 §5.2.3: at most 20 octets


@dataclass(frozen=True)
class RevokedEntry:
    """One revoked certificate as the CRL lists it."""

    serial: int
    revoked_at: datetime
    reason: str | None = None
    invalidity_date: datetime | None = None


def _entry(entry: RevokedEntry) -> dict:
    serial = entry.serial
    if not isinstance(serial, int) or serial <= 0:
        raise InvalidRequest(f"revoked serial {entry.serial!r} must be a positive integer")
    extensions = []
    if entry.reason is not None:
        if entry.reason not in REASONS:
            raise InvalidRequest(f"unknown revocation reason {entry.reason!r}; "
                                 f"use one of {', '.join(REASONS)}")
        extensions.append({"extn_id": "crl_reason", "critical": False, "extn_value": entry.reason})
    if entry.invalidity_date is not None:
        # InvalidityDate is always GeneralizedTime (RFC 5280 §5.3.2).
        extensions.append({"extn_id": "invalidity_date", "critical": False,
                           "extn_value": utc(entry.invalidity_date, "invalidity_date")})
    value: dict = {"user_certificate": serial,
                   "revocation_date": asn1_time(utc(entry.revoked_at, "revoked_at"))}
    if extensions:
        value["crl_entry_extensions"] = extensions
    return value


def build_crl(*, issuer: x509.Certificate, signer: Signer, entries: Sequence[RevokedEntry], number: int,
              this_update: datetime, next_update: datetime) -> crl.CertificateList:
    """Build and sign a v2 CRL for ``issuer``; returned parsed from its own DER."""
    try:
        issuer_key = certificate_public_key(issuer)
    except HsmError as exc:
        raise InvalidRequest(f"issuer certificate has no usable SM2 key: {exc}") from exc
    if signer.public_key() != issuer_key:
        raise InvalidRequest("the signer's key is not the CRL issuer's key; sign with the CA's own key")
    ku = issuer.key_usage_value
    if not is_ca_certificate(issuer) or ku is None or "crl_sign" not in ku.native:
        raise InvalidRequest("the CRL issuer must be a CA certificate with the cRLSign key usage")
    if not isinstance(number, int) or number < 0 or number.bit_length() > MAX_CRL_NUMBER_BITS:
        raise InvalidRequest("CRL number must be a non-negative integer of at most 159 bits")
    start, end = utc(this_update, "this_update"), utc(next_update, "next_update")
    if end <= start:
        raise InvalidRequest("next_update must be later than this_update")

    tbs_value: dict = {
        "version": "v2",
        "signature": {"algorithm": "sm2_sm3"},
        "issuer": issuer.subject,
        "this_update": asn1_time(start),
        "next_update": asn1_time(end),
        "crl_extensions": [
            {"extn_id": "authority_key_identifier", "critical": False,
             "extn_value": {"key_identifier": issuer_key_identifier(issuer, issuer_key)}},
            {"extn_id": "crl_number", "critical": False, "extn_value": number},
        ],
    }
    revoked = [_entry(e) for e in sorted(entries, key=lambda e: (utc(e.revoked_at, "revoked_at"), e.serial))]
    if revoked:  # RFC 5280 §5.1.2.6: absent, not empty, when nothing is revoked
        tbs_value["revoked_certificates"] = revoked
    signed_tbs, algorithm, signature = sign_structure(signer, crl.TbsCertList(tbs_value))
    der = crl.CertificateList({
        "tbs_cert_list": signed_tbs,
        "signature_algorithm": algorithm,
        "signature": signature,
    }).dump()
    result = crl.CertificateList.load(der)
    if not verify_crl_signature(result, issuer):
        raise CaError("the signer produced a CRL signature that does not verify with the CA's key; "
                      "check the key store and the key version in use")
    return result


def verify_crl_signature(certificate_list: crl.CertificateList, issuer: x509.Certificate) -> bool:
    """True if the CRL is signed SM2-with-SM3 by ``issuer``'s key, over the bytes as parsed."""
    tbs = tbs_bytes(certificate_list["tbs_cert_list"])
    return verify_tbs(certificate_public_key(issuer), tbs, certificate_list["signature_algorithm"],
                      bit_string_bytes(certificate_list["signature"]))


def load_crl(data: bytes) -> crl.CertificateList:
    """A CRL from PEM (``X509 CRL``) or DER; InvalidRequest on garbage or truncation."""
    der = unarmor(data, "X509 CRL", "CRL")
    try:
        result = crl.CertificateList.load(der, strict=True)
        result.native  # noqa: B018  (parse every field now, so malformed input fails here)
    except (ValueError, TypeError, OverflowError) as exc:
        raise InvalidRequest(f"not a readable CRL ({exc}); supply a PEM or DER CRL") from exc
    return result


def pem(certificate_list: crl.CertificateList) -> bytes:
    """PEM ``X509 CRL`` block."""
    from asn1crypto import pem as pem_armor

    return pem_armor.armor("X509 CRL", certificate_list.dump())
