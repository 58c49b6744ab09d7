"""Writing a SignedData by splicing DER: what :func:`ca.cms.sign_signed_data` sends out.

Every licence carries a PDF signature whose SignedData differs from the last one in three
fields only: the message digest, the signing time and the signature. Building it as a tree of
asn1crypto values cost ~12 ms, most of it re-encoding the signer's certificate, its chain and
the signingCertificateV2 attribute — the same bytes every time. So those are encoded once per
(certificate, chain), by asn1crypto, and kept by their exact bytes (:func:`signer_pieces`);
the varying fields are encoded here and the structure is put together with :mod:`ca.der`.

The output is the DER asn1crypto writes for the same structure (tests/ca/test_cms_build.py
compares the two byte for byte): SET OF members sorted, the certificates in a [0] IMPLICIT SET
OF, the signed attributes as [0] IMPLICIT and, signed, as the SET OF the signature covers.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime

from asn1crypto import algos, cms, core, tsp, x509

from hsm.sm2 import SM2PublicKey
from hsm.sm3 import sm3

from . import der
from .certificates import load_certificate
from .signatures import certificate_public_key, sm2_with_sm3

_VERSION_1 = der.tlv(0x02, b"\x01")
_SM3 = algos.DigestAlgorithm({"algorithm": "sm3"}).dump()
_SM2_WITH_SM3 = sm2_with_sm3().dump()
_CACHED_SIGNERS = 64


@dataclass(frozen=True)
class SignerPieces:
    """What a SignedData by one certificate (and chain) always holds, encoded once."""

    certificate: x509.Certificate
    public_key: SM2PublicKey
    certificates: bytes
    """[0] IMPLICIT SET OF Certificate: the signer's certificate and the chain."""
    sid: bytes
    """The SignerIdentifier: IssuerAndSerialNumber of the signer's certificate."""
    ess_attribute: bytes
    """The signingCertificateV2 attribute (RFC 5035): SM3 of the certificate, issuer and serial."""


@functools.lru_cache(maxsize=_CACHED_SIGNERS)
def signer_pieces(certificate: bytes, chain: tuple[bytes, ...]) -> SignerPieces:
    """The constant parts for ``certificate`` (DER or PEM) and ``chain``, kept by their bytes.

    Raises :class:`ca.errors.InvalidRequest` for an unreadable certificate (not kept: the next
    call tries again)."""
    cert = load_certificate(certificate)
    others = [load_certificate(c) for c in chain]
    choices = [cms.CertificateChoices(name="certificate", value=c).dump() for c in (cert, *others)]
    sid = cms.SignerIdentifier(name="issuer_and_serial_number", value={
        "issuer": cert.issuer, "serial_number": cert.serial_number}).dump()
    ess = tsp.SigningCertificateV2({"certs": [{
        "hash_algorithm": {"algorithm": "sm3"},
        "cert_hash": sm3(cert.dump()),
        "issuer_serial": {"issuer": [x509.GeneralName(name="directory_name", value=cert.issuer)],
                          "serial_number": cert.serial_number},
    }]}).dump()
    return SignerPieces(cert, certificate_public_key(cert), der.set_of(choices, 0xA0), sid,
                        _attribute("signing_certificate_v2", ess))


@functools.cache
def _attribute_type(name: str) -> bytes:
    return cms.CMSAttributeType(name).dump()


@functools.cache
def _object_identifier(dotted: str) -> bytes:
    return core.ObjectIdentifier(dotted).dump()


def _attribute(name: str, value: bytes) -> bytes:
    """Attribute ::= SEQUENCE { attrType, attrValues SET OF (one value) }."""
    return der.sequence(_attribute_type(name), der.set_of([value]))


def _time(when: datetime) -> bytes:
    # RFC 5652 §11.3: UTCTime for 1950-2049, GeneralizedTime otherwise.
    value = core.UTCTime(when) if 1950 <= when.year < 2050 else core.GeneralizedTime(when)
    return value.dump()


def signed_attributes(pieces: SignerPieces, data_type: str, message_digest: bytes, when: datetime | None,
                      extras: Sequence[bytes] = ()) -> bytes:
    """The SET OF signed attributes (tag 0x31, what the signature covers): contentType,
    messageDigest, signingTime (unless ``when`` is None), signingCertificateV2 and the DER
    ``extras``."""
    attributes = [_attribute("content_type", _object_identifier(data_type)),
                  _attribute("message_digest", der.octet_string(message_digest)),
                  pieces.ess_attribute, *extras]
    if when is not None:
        attributes.append(_attribute("signing_time", _time(when)))
    return der.set_of(attributes)


def assemble(sign: Callable[[bytes], bytes], pieces: SignerPieces, *, signed_data_type: str, data_type: str,
             content: bytes | None, attached: bool, attributes: bytes | None) -> bytes:
    """ContentInfo{signedData} with one SignerInfo. With ``attributes`` (the SET OF from
    :func:`signed_attributes`) ``sign`` gets those bytes, else the ``content`` itself; it returns
    the DER signature."""
    if attributes is not None:
        signature = sign(attributes)
        signed = b"\xa0" + attributes[1:]  # [0] IMPLICIT: same length, the tag replaced
    else:
        signature = sign(bytes(content))
        signed = b""
    signer_info = der.sequence(_VERSION_1, pieces.sid, _SM3, signed, _SM2_WITH_SM3,
                               der.octet_string(signature))
    encap = [_object_identifier(data_type)]
    if attached:
        encap.append(der.tlv(0xA0, der.octet_string(content)))
    signed_data = der.sequence(_VERSION_1, der.set_of([_SM3]), der.sequence(*encap), pieces.certificates,
                               der.set_of([signer_info]))
    return der.sequence(_object_identifier(signed_data_type), der.tlv(0xA0, signed_data))
