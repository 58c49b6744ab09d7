"""SM2-with-SM3 signatures over certificates, CRLs, CSRs and OCSP responses.

One place decides which signature algorithm the CA writes and accepts, and over which bytes a
signature is checked. Verification is always over the TBS bytes exactly as they were received
(DESIGN.md, "verify over the exact bytes received"): asn1crypto re-encodes a structure once any
part of it has been touched, so :func:`tbs_bytes` refuses to hand back anything but the parsed
original.
"""

from __future__ import annotations

from typing import Any

from asn1crypto import algos, core, x509

import hsm.oids  # noqa: F401  (registers the SM OIDs with asn1crypto)
from hsm import oids
from hsm.errors import InvalidKey, InvalidSignature, UnsupportedAlgorithm
from hsm.keystore import Signer
from hsm.sm2 import DEFAULT_UID, SM2PublicKey

#: asn1crypto name of SM2-with-SM3 (1.2.156.10197.1.501), registered by :mod:`hsm.oids`.
SM2_WITH_SM3 = "sm2_sm3"
SM2_WITH_SM3_OID = oids.SM2_WITH_SM3


def sm2_with_sm3() -> algos.SignedDigestAlgorithm:
    """A fresh AlgorithmIdentifier for SM2-with-SM3, parameters absent.

    GM/T 0015 and OpenSSL write no parameters (not even NULL) for 1.2.156.10197.1.501.
    """
    return algos.SignedDigestAlgorithm({"algorithm": SM2_WITH_SM3})


def _require_sm2_sm3(algorithm: algos.SignedDigestAlgorithm) -> None:
    oid = algorithm["algorithm"].dotted
    if oid != oids.SM2_WITH_SM3:
        raise UnsupportedAlgorithm(
            f"signature algorithm {oid} is not SM2-with-SM3 ({oids.SM2_WITH_SM3}); "
            "only SM2-with-SM3 signatures are accepted")
    params = algorithm["parameters"]
    # Absent, or NULL as some producers write it; anything else is not SM2-with-SM3 as specified.
    if not isinstance(params, (core.Void, core.Null)) and params.contents not in (None, b""):
        raise UnsupportedAlgorithm("SM2-with-SM3 algorithm identifier carries unexpected parameters")


def sign_tbs(signer: Signer, tbs: bytes) -> tuple[algos.SignedDigestAlgorithm, bytes]:
    """Sign the DER ``tbs`` with SM2 over SM3(Z_A || tbs), default user ID.

    Returns the algorithm identifier to put beside the signature and the DER SEQUENCE{r, s}.
    """
    return sm2_with_sm3(), signer.sign(tbs, DEFAULT_UID)


def sign_structure(signer: Signer, tbs: core.Asn1Value
                   ) -> tuple[core.Asn1Value, algos.SignedDigestAlgorithm, bytes]:
    """Encode ``tbs`` once and sign exactly those bytes.

    Returns the TBS re-parsed from the signed bytes (so embedding it cannot re-encode it
    differently), the algorithm identifier and the signature — what a certificate, a CRL and
    an OCSP response each wrap in their own outer structure.
    """
    der = tbs.dump()
    algorithm, signature = sign_tbs(signer, der)
    return type(tbs).load(der), algorithm, signature


def verify_tbs(public_key: SM2PublicKey, tbs: bytes, algorithm: algos.SignedDigestAlgorithm,
               signature: bytes) -> bool:
    """True only if ``signature`` is a valid SM2-with-SM3 signature over ``tbs`` (default ID).

    A bad or unreadable signature gives False; an algorithm other than SM2-with-SM3 raises
    :class:`~hsm.errors.UnsupportedAlgorithm` so the caller can report it as such.
    """
    _require_sm2_sm3(algorithm)
    if isinstance(signature, (core.BitString, core.OctetBitString)):
        signature = bit_string_bytes(signature)
    try:
        public_key.verify(bytes(signature), tbs, DEFAULT_UID)
    except InvalidSignature:
        return False
    return True


def tbs_bytes(obj: Any) -> bytes:
    """The original encoding of a parsed TBS structure (tag, length and contents).

    asn1crypto keeps the bytes a value was parsed from in ``.contents`` and its ``.dump()``
    returns them unchanged unless the value was modified, in which case it re-encodes. A
    signature must be checked over the bytes as they stand in the file, so this refuses an
    object that was built rather than parsed, or has been modified since parsing.
    """
    is_mutated = getattr(obj, "_is_mutated", None)
    if is_mutated is not None and is_mutated():
        raise ValueError("the TBS structure was built or modified, not parsed; refusing re-encoded bytes")
    header = getattr(obj, "_header", None)
    contents = getattr(obj, "_contents", None)
    if header is None or contents is None:
        raise ValueError("tbs_bytes needs a parsed asn1crypto value, not a constructed one")
    # Indefinite-length (BER) values keep their end-of-contents octets in the trailer.
    return bytes(header) + bytes(contents) + bytes(getattr(obj, "_trailer", b"") or b"")


def certificate_public_key(cert: x509.Certificate) -> SM2PublicKey:
    """The SM2 public key of ``cert``; :class:`~hsm.errors.UnsupportedAlgorithm` if not SM2."""
    info = cert["tbs_certificate"]["subject_public_key_info"]
    try:
        return SM2PublicKey.from_spki(info)
    except InvalidKey as exc:
        raise UnsupportedAlgorithm(f"certificate key is not an SM2 key: {exc}") from exc
    except (ValueError, TypeError) as exc:
        raise UnsupportedAlgorithm(f"certificate public key cannot be read: {exc}") from exc


def verify_certificate_signature(cert: x509.Certificate, issuer_key: SM2PublicKey) -> bool:
    """True if ``cert`` carries a valid SM2-with-SM3 signature by ``issuer_key``."""
    tbs = cert["tbs_certificate"]
    return verify_tbs(issuer_key, tbs_bytes(tbs), cert["signature_algorithm"],
                      bit_string_bytes(cert["signature_value"]))


def bit_string_bytes(value: core.BitString | core.OctetBitString) -> bytes:
    """The octets of a BIT STRING as written, without the unused-bits count.

    Some producers strip trailing zero bits of the DER signature (declaring unused bits);
    :func:`hsm.signature.decode_signature` recognises that form, so hand it the octets as they
    stand instead of letting asn1crypto refuse or re-pad them.
    """
    contents = value.contents or b""
    if not contents:
        return b""
    return bytes(contents[1:])
