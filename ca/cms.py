"""SM2 CMS SignedData (GB/T 35275, GM/T 0010, RFC 5652): make, read, verify.

OFD Sign-type signatures (SignedValue.dat) and PDF signatures (/Contents) both carry one
SignedData with one SM2/SM3 signer; this module serves both. Two flavours are written:

* ``"gbt35275"`` — ContentInfo types 1.2.156.10197.6.1.4.2.2 / .2.1, as ofdrw's GB/T 35275
  containers write them for OFD;
* ``"rfc5652"`` — id-signedData / id-data, which PDF readers, OpenSSL and BouncyCastle expect.

Both are SignedData v1 with one SignerInfo (issuer and serial number), digest SM3 and
signature SM2-with-SM3 (1.2.156.10197.1.501), the SM2 signature in DER over SM3(Z_A || M) with
the GM/T 0009 default user ID. With signed attributes (contentType, messageDigest,
signingTime, signingCertificateV2) M is the DER SET OF attributes; without them M is the
content itself, as in the Shandong "oesplugin" files whose content is SM3(Signature.xml).

Reading accepts what real producers write (SOURCES.md): either flavour of ContentInfo with
either flavour of data type inside, signature algorithm 1.2.156.10197.1.501, sm2sign
1.2.156.10197.1.301.1 or id-ecPublicKey, raw 64-byte r||s signatures, BER (BouncyCastle's
default output), and — only when asked, for PDF /Contents — trailing zero padding. It
verifies over the bytes as they stand in the file, never over a re-encoding, and states every
departure from DER in :attr:`SignedDataInfo.layout`. Chain and revocation are not judged
here: the caller hands :attr:`SignedDataInfo.certificates` to :func:`ca.validation.validate_path`.

:func:`estimated_size` bounds the output, so a PDF signer can reserve /Contents once.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Literal

from asn1crypto import algos, cms, core, tsp, x509

from hsm import oids
from hsm.errors import ASN1_PARSE_ERRORS, InvalidSignature, UnsupportedAlgorithm
from hsm.keystore import Signer
from hsm.signature import SignatureForm
from hsm.sm3 import sm3

from . import cms_build
from .certificates import utc
from .cms_asn1 import (
    DATA_TYPES,
    ID_DATA,
    ID_SIGNED_DATA,
    SIGNED_DATA_TYPES,
    ContentInfo,
    SignedData,
    scan_value,
)
from .cms_build import SignerPieces, signer_pieces
from .errors import CaError, InvalidRequest
from .signatures import certificate_public_key, sign_tbs, tbs_bytes
from .verdict import (
    CRYPTO_CONSTRAINTS_FAILURE,
    FORMAT_FAILURE,
    HASH_FAILURE,
    NO_SIGNING_CERTIFICATE_FOUND,
    SIG_CRYPTO_FAILURE,
    SIGNED_DATA_NOT_FOUND,
    Check,
    failed,
    passed,
    verdict,
)

Flavour = Literal["gbt35275", "rfc5652"]
FLAVOURS: dict[str, tuple[str, str]] = {
    "gbt35275": (oids.GBT35275_SIGNED_DATA, oids.GBT35275_DATA),
    "rfc5652": (ID_SIGNED_DATA, ID_DATA),
}
"""Flavour name -> (ContentInfo type, encapsulated content type)."""

SM2_SIGNATURE_ALGORITHMS = {
    oids.SM2_WITH_SM3: "SM2-with-SM3",
    oids.SM2_SIGN: "sm2sign",
    oids.EC_PUBLIC_KEY: "id-ecPublicKey",
}
"""signatureAlgorithm values real producers write for an SM2 signature over SM3."""
SHA256 = "2.16.840.1.101.3.4.2.1"
ESS_HASHES: dict[str, Callable[[bytes], bytes]] = {
    oids.SM3: sm3, SHA256: lambda data: hashlib.sha256(data).digest()}
"""signingCertificateV2 hashes accepted: SM3 (what we write) and SHA-256 (RFC 5035's default)."""

MAX_SIGNED_DATA_SIZE = 16 * 1024 * 1024
MAX_SM2_SIGNATURE_DER = 72
"""Longest DER SEQUENCE{r, s} for SM2: two 33-byte INTEGERs; what :func:`estimated_size` assumes."""
_NULL = b"\x05\x00"
_STANDARD_ATTRIBUTES = frozenset({"content_type", "message_digest", "signing_time", "signing_certificate_v2"})


class CmsFormatError(CaError, ValueError):
    """The bytes are not a readable SignedData with exactly one signer; the message says why."""


# ---- what a reader gets ---------------------------------------------------------------------

@dataclass(frozen=True)
class SignerId:
    """How a SignerInfo names its certificate: issuer and serial number, or a key identifier."""

    issuer: bytes | None = None          # DER Name
    serial_number: int | None = None
    key_identifier: bytes | None = None

    def describe(self) -> str:
        if self.key_identifier is not None:
            return f"subjectKeyIdentifier {self.key_identifier.hex()}"
        try:
            name = x509.Name.load(self.issuer).human_friendly
        except ASN1_PARSE_ERRORS:
            name = f"(a name asn1crypto cannot decode, {len(self.issuer or b'')} bytes)"
        return f"issuer {name}, serial {self.serial_number:#x}"


@dataclass(frozen=True)
class EssCertId:
    """One ESSCertIDv2 of a signingCertificateV2 attribute (RFC 5035)."""

    hash_algorithm: str                  # dotted OID
    cert_hash: bytes
    issuer_names: tuple[bytes, ...] = ()  # DER Names of the issuerSerial directoryNames
    serial_number: int | None = None


@dataclass(frozen=True)
class SignerInfo:
    """The one signer, as written: OIDs dotted, attribute values decoded, bytes untouched."""

    version: int
    sid: SignerId
    digest_algorithm: str                # dotted OID
    digest_algorithm_parameters: bytes | None
    signature_algorithm: str
    signature_algorithm_parameters: bytes | None
    signed_attrs_bytes: bytes | None
    """The SET OF signed attributes as signed: the file's bytes with [0] IMPLICIT made 0x31."""
    attribute_types: tuple[str, ...]     # dotted OIDs of the signed attributes, in file order
    content_type_attr: str | None
    message_digest: bytes | None
    signing_time: datetime | None
    signing_certificate_v2: tuple[EssCertId, ...] | None
    signature: bytes
    unsigned_attrs: tuple[tuple[str, tuple[bytes, ...]], ...] = ()  # (OID, DER of each value)


@dataclass(frozen=True)
class SignedDataInfo:
    """What :func:`read_signed_data` found; :func:`verify_signed_data` judges it."""

    content_type: str                    # dotted OID of the ContentInfo
    version: int
    digest_algorithms: tuple[str, ...]
    encap_content_type: str
    content: bytes | None                # None when detached
    certificates: tuple[bytes, ...]      # DER, in file order
    signer: SignerInfo
    signer_certificate: bytes | None     # the certificate matching signer.sid
    layout: tuple[str, ...]              # how the file departs from plain DER SignedData
    encoded: bytes                       # the ContentInfo as read, padding removed

    @property
    def detached(self) -> bool:
        return self.content is None


# ---- reading --------------------------------------------------------------------------------

def read_signed_data(data: bytes, *, allow_zero_padding: bool = False) -> SignedDataInfo:
    """Parse a ContentInfo holding a SignedData with exactly one SignerInfo.

    Trailing data is refused, except zero bytes when ``allow_zero_padding`` (PDF /Contents are
    reserved larger than the signature and padded with zeros). Raises :class:`CmsFormatError`.
    """
    if not isinstance(data, (bytes, bytearray, memoryview)):
        raise CmsFormatError(f"expected the SignedData bytes, got {type(data).__name__}")
    data = bytes(data)
    if not data:
        raise CmsFormatError("no SignedData: the value is empty")
    if len(data) > MAX_SIGNED_DATA_SIZE:
        raise CmsFormatError(f"SignedData of {len(data)} bytes exceeds the {MAX_SIGNED_DATA_SIZE}-byte limit")
    layout: list[str] = []
    try:
        size, ber = scan_value(data)
        body, rest = data[:size], data[size:]
        if rest:
            if not allow_zero_padding:
                raise CmsFormatError(f"{len(rest)} bytes of trailing data after the ContentInfo")
            if rest.strip(b"\x00"):
                raise CmsFormatError("trailing data after the ContentInfo is not zero padding")
            layout.append(f"zero padding: {len(rest)} bytes")
        layout.insert(0, "BER: " + ", ".join(sorted(ber)) if ber else "DER")
        # scan_value walked every TLV, so the structure is sound throughout; the fields
        # used below are parsed as they are read. Certificates are not parsed whole: real ones
        # break asn1crypto's name decoding (x500UniqueIdentifier as UTF8String in CEGN certs).
        return _read_content_info(ContentInfo.load(body, strict=True), body, layout)
    except CmsFormatError:
        raise
    except ASN1_PARSE_ERRORS as exc:
        raise CmsFormatError(f"malformed or truncated SignedData: {exc}") from exc


def _read_content_info(info: ContentInfo, body: bytes, layout: list[str]) -> SignedDataInfo:
    content_type = info["content_type"].dotted
    if content_type not in SIGNED_DATA_TYPES:
        raise CmsFormatError(f"ContentInfo type {content_type} is not signedData "
                             f"({ID_SIGNED_DATA} or {oids.GBT35275_SIGNED_DATA})")
    sd = info["content"]
    if not isinstance(sd, SignedData):
        raise CmsFormatError("ContentInfo carries no SignedData")
    encap = sd["encap_content_info"]
    encap_type = encap["content_type"].dotted
    content = _encapsulated_content(encap["content"], encap_type)

    parsed: list[x509.Certificate] = []
    certificate_set = sd["certificates"] if isinstance(sd["certificates"], cms.CertificateSet) else ()
    for i, choice in enumerate(certificate_set):
        if choice.name != "certificate":
            layout.append(f"certificate set entry of kind {choice.name} ignored")
            continue
        cert = choice.chosen
        try:  # what matching a signer needs; the rest is for path validation to judge
            cert.serial_number, cert.issuer.dump(), cert.public_key.dump()
        except ASN1_PARSE_ERRORS as exc:
            raise CmsFormatError(f"certificate {i + 1} of the SignedData is malformed: {exc}") from exc
        parsed.append(cert)
    if isinstance(sd["crls"], cms.RevocationInfoChoices):
        layout.append(f"{len(sd['crls'])} CRL(s) carried, not used here")

    count = len(sd["signer_infos"])
    if count != 1:
        raise CmsFormatError(f"expected exactly one SignerInfo, found {count}")
    signer = _read_signer(sd["signer_infos"][0], layout)
    if signer.content_type_attr and signer.content_type_attr != encap_type:
        layout.append(f"encapContentType {encap_type} with contentType attribute {signer.content_type_attr}")
    match = _matching_certificate(signer.sid, parsed)
    return SignedDataInfo(
        content_type=content_type, version=int(sd["version"]),
        digest_algorithms=tuple(a["algorithm"].dotted for a in sd["digest_algorithms"]),
        encap_content_type=encap_type, content=content,
        certificates=tuple(c.dump() for c in parsed), signer=signer,
        signer_certificate=match.dump() if match is not None else None,
        layout=tuple(layout), encoded=body)


def _encapsulated_content(value: core.Asn1Value, content_type: str) -> bytes | None:
    if isinstance(value, core.Void):
        return None
    if isinstance(value, (core.OctetString, core.ParsableOctetString)):
        return bytes(value.native)
    try:  # PKCS#7 content of a type we have no spec for: must still be an OCTET STRING
        return bytes(value.parse(core.OctetString).native)
    except ASN1_PARSE_ERRORS as exc:
        raise CmsFormatError(f"encapsulated content of type {content_type} is not an OCTET STRING") from exc


def _parameters(algorithm: algos.DigestAlgorithm | algos.SignedDigestAlgorithm) -> bytes | None:
    params = algorithm["parameters"]
    return None if isinstance(params, core.Void) else params.dump()


def _read_signer(si: cms.SignerInfo, layout: list[str]) -> SignerInfo:
    sid = si["sid"].chosen
    if si["sid"].name == "issuer_and_serial_number":
        signer_id = SignerId(issuer=sid["issuer"].dump(), serial_number=sid["serial_number"].native)
    else:
        signer_id = SignerId(key_identifier=sid.native)
    attrs = _read_signed_attributes(si["signed_attrs"], layout)
    unsigned = si["unsigned_attrs"]
    return SignerInfo(
        version=int(si["version"]), sid=signer_id,
        digest_algorithm=si["digest_algorithm"]["algorithm"].dotted,
        digest_algorithm_parameters=_parameters(si["digest_algorithm"]),
        signature_algorithm=si["signature_algorithm"]["algorithm"].dotted,
        signature_algorithm_parameters=_parameters(si["signature_algorithm"]),
        signature=si["signature"].native, **attrs,
        unsigned_attrs=tuple((a["type"].dotted, tuple(v.dump() for v in a["values"]))
                             for a in unsigned) if isinstance(unsigned, cms.CMSAttributes) else ())


def _read_signed_attributes(attrs: core.Asn1Value, layout: list[str]) -> dict:
    found: dict = {"signed_attrs_bytes": None, "attribute_types": (), "content_type_attr": None,
                   "message_digest": None, "signing_time": None, "signing_certificate_v2": None}
    if isinstance(attrs, core.Void):
        return found
    raw = tbs_bytes(attrs)
    if raw[0] != 0xA0:
        raise CmsFormatError("signed attributes are not tagged [0] IMPLICIT")
    found["signed_attrs_bytes"] = b"\x31" + raw[1:]
    if len(attrs) == 0:
        raise CmsFormatError("the signed attributes are an empty SET (RFC 5652 requires at least one)")
    encodings = [a.dump() for a in attrs]
    if encodings != sorted(encodings):
        layout.append("signed attributes not in DER SET order")
    if scan_value(raw)[1]:
        layout.append("signed attributes not DER")
    types = []
    for attr in attrs:
        name, values = attr["type"].native, attr["values"]
        types.append(attr["type"].dotted)
        if name not in _STANDARD_ATTRIBUTES:
            continue
        if found[_FIELD[name]] is not None:
            raise CmsFormatError(f"the {name} attribute appears more than once")
        if len(values) != 1:
            raise CmsFormatError(f"the {name} attribute must have exactly one value, it has {len(values)}")
        found[_FIELD[name]] = _ATTRIBUTE_READERS[name](values[0])
    found["attribute_types"] = tuple(types)
    return found


def _ess_cert_ids(value: tsp.SigningCertificateV2) -> tuple[EssCertId, ...]:
    ids = []
    for cid in value["certs"]:
        issuer_serial = cid["issuer_serial"]
        names: tuple[bytes, ...] = ()
        serial = None
        if not isinstance(issuer_serial, core.Void):
            # directoryName is [4] EXPLICIT: untag() gives the Name's own encoding
            names = tuple(g.chosen.untag().dump() for g in issuer_serial["issuer"]
                          if g.name == "directory_name")
            serial = issuer_serial["serial_number"].native
        algorithm = cid["hash_algorithm"]["algorithm"].dotted
        ids.append(EssCertId(algorithm, cid["cert_hash"].native, names, serial))
    return tuple(ids)


_FIELD = {"content_type": "content_type_attr", "message_digest": "message_digest",
          "signing_time": "signing_time", "signing_certificate_v2": "signing_certificate_v2"}
_ATTRIBUTE_READERS: dict[str, Callable] = {
    "content_type": lambda v: v.dotted,
    "message_digest": lambda v: v.native,
    # A GeneralizedTime without "Z" is read as UTC, as every other time here: never naive.
    "signing_time": lambda v: v.native if v.native.tzinfo else v.native.replace(tzinfo=UTC),
    "signing_certificate_v2": _ess_cert_ids,
}


def _matching_certificate(sid: SignerId, certs: Iterable[x509.Certificate]) -> x509.Certificate | None:
    """The first certificate that ``sid`` names (names compared as RFC 5280 §7.1 says)."""
    for cert in certs:
        if sid.issuer is not None:
            if cert.serial_number == sid.serial_number and same_name(cert.issuer.dump(), sid.issuer):
                return cert
        elif sid.key_identifier in (_subject_key_identifier(cert), _key_bits_sha1(cert)):
            return cert
    return None


def _subject_key_identifier(cert: x509.Certificate) -> bytes | None:
    try:
        return cert.key_identifier
    except ASN1_PARSE_ERRORS:  # an extension asn1crypto cannot decode: fall back to the key bits
        return None


def same_name(a: bytes, b: bytes) -> bool:
    """Two DER Names are the same name: byte-equal, or equal under RFC 5280 §7.1 comparison.

    A name asn1crypto cannot decode (x500UniqueIdentifier written as a UTF8String, as CEGN
    certificates do) can still match byte for byte.
    """
    if a == b:
        return True
    try:
        return x509.Name.load(a) == x509.Name.load(b)
    except ASN1_PARSE_ERRORS:
        return False


def _key_bits_sha1(cert: x509.Certificate) -> bytes:
    bits = cert["tbs_certificate"]["subject_public_key_info"]["public_key"].contents[1:]
    return hashlib.sha1(bits, usedforsecurity=False).digest()


# ---- verifying ------------------------------------------------------------------------------

@dataclass(frozen=True)
class CmsVerification:
    """The checks done on one SignedData, in order; ``ok`` only when every one passed."""

    checks: tuple[Check, ...]
    signature_form: SignatureForm | None = None
    signer_certificate: bytes | None = None

    @property
    def ok(self) -> bool:
        return bool(self.checks) and all(c.ok for c in self.checks)

    def check(self, name: str) -> Check | None:
        return next((c for c in self.checks if c.name == name), None)

    def verdict(self) -> tuple[str, str | None]:
        """(indication, sub-indication), as :func:`ca.verdict.verdict` derives them."""
        return verdict(self.checks)


def verify_signed_data(signed: SignedDataInfo | bytes, *, content: bytes | None = None,
                       digest: bytes | None = None, allow_zero_padding: bool = False) -> CmsVerification:
    """Verify the one signer of a SignedData over its content (encapsulated, or given here).

    ``signed`` is what :func:`read_signed_data` returned, or the raw bytes (then a parse
    failure is a failed ``format`` check, never an exception). For detached data pass the
    ``content`` or, when the signer used signed attributes, its SM3 ``digest``. Checks:
    format, algorithm, signer-certificate-present, signing-certificate (when the attribute is
    there), content-type and message-digest (with signed attributes), signature.
    ``allow_zero_padding`` applies to raw bytes, as in :func:`read_signed_data`.
    """
    if content is not None and digest is not None:
        raise ValueError("pass the content or its SM3 digest, not both")
    if digest is not None and len(digest) != 32:
        raise ValueError("digest must be the 32-byte SM3 digest of the content")
    if isinstance(signed, SignedDataInfo):
        info = signed
    else:
        try:
            info = read_signed_data(signed, allow_zero_padding=allow_zero_padding)
        except CmsFormatError as exc:
            return CmsVerification((failed("format", str(exc), FORMAT_FAILURE),))
    signer = info.signer
    checks = [passed("format", f"SignedData v{info.version}, {len(info.certificates)} certificate(s), "
                               f"{'detached' if info.detached else 'attached'}; " + "; ".join(info.layout))]
    algorithm = _algorithm_check(signer)
    checks.append(algorithm)
    cert = info.signer_certificate
    if cert is not None:
        checks.append(passed("signer-certificate-present",
                             f"the SignedData carries the certificate of {signer.sid.describe()}"))
    else:
        checks.append(failed("signer-certificate-present", f"no certificate in the SignedData matches "
                             f"{signer.sid.describe()}", NO_SIGNING_CERTIFICATE_FOUND))
    if signer.signing_certificate_v2 is not None:
        checks.append(_signing_certificate_check(signer.signing_certificate_v2, cert))
    signed_content, signed_digest, problem = _signed_content(info, content, digest)
    if signer.signed_attrs_bytes is not None:
        checks.append(_content_type_check(info))
        checks.append(problem or _message_digest_check(signer.message_digest, signed_digest))
        covered = signer.signed_attrs_bytes
    else:
        if problem is None and signed_content is None:
            problem = failed("message-digest", "without signed attributes the signature is over the content "
                                               "itself; its SM3 digest is not enough", SIGNED_DATA_NOT_FOUND)
        checks.append(problem or passed("message-digest", "no signed attributes: the signature covers the "
                                                          "content itself"))
        covered = signed_content
    signature_check, form = _signature_check(signer, cert, covered, algorithm.ok)
    checks.append(signature_check)
    return CmsVerification(tuple(checks), form, cert)


def _algorithm_check(signer: SignerInfo) -> Check:
    problems = []
    if signer.digest_algorithm != oids.SM3:
        problems.append(f"digestAlgorithm {signer.digest_algorithm} is not SM3 ({oids.SM3})")
    if signer.signature_algorithm not in SM2_SIGNATURE_ALGORITHMS:
        problems.append(f"signatureAlgorithm {signer.signature_algorithm} is not SM2 "
                        f"({', '.join(SM2_SIGNATURE_ALGORITHMS)})")
    for what, params in (("digest", signer.digest_algorithm_parameters),
                         ("signature", signer.signature_algorithm_parameters)):
        if params not in (None, _NULL):
            problems.append(f"the {what} algorithm carries unexpected parameters {params.hex()}")
    if problems:
        return failed("algorithm", "; ".join(problems) + "; only SM3 digests and SM2 signatures are accepted",
                      CRYPTO_CONSTRAINTS_FAILURE)
    name = SM2_SIGNATURE_ALGORITHMS[signer.signature_algorithm]
    return passed("algorithm", f"digest SM3, signature {name} ({signer.signature_algorithm})")


def _signing_certificate_check(ids: tuple[EssCertId, ...], cert: bytes | None) -> Check:
    name = "signing-certificate"
    if not ids:
        return failed(name, "signingCertificateV2 lists no certificate", FORMAT_FAILURE)
    if cert is None:
        return failed(name, "signingCertificateV2 names a certificate the SignedData does not carry",
                      NO_SIGNING_CERTIFICATE_FOUND)
    first = ids[0]
    hash_function = ESS_HASHES.get(first.hash_algorithm)
    if hash_function is None:
        return failed(name, f"signingCertificateV2 hash {first.hash_algorithm} is neither SM3 nor SHA-256",
                      CRYPTO_CONSTRAINTS_FAILURE)
    if hash_function(cert) != first.cert_hash:
        return failed(name, "signingCertificateV2 hash does not match the signer's certificate "
                            "(substituted certificate?)", NO_SIGNING_CERTIFICATE_FOUND)
    if first.serial_number is not None:
        parsed = x509.Certificate.load(cert)
        if first.serial_number != parsed.serial_number or not any(
                same_name(n, parsed.issuer.dump()) for n in first.issuer_names):
            return failed(name, "signingCertificateV2 issuerSerial does not name the signer's certificate",
                          NO_SIGNING_CERTIFICATE_FOUND)
    return passed(name, "signingCertificateV2 identifies the signer's certificate")


def _signed_content(info: SignedDataInfo, content: bytes | None, digest: bytes | None
                    ) -> tuple[bytes | None, bytes | None, Check | None]:
    """(content, its SM3, a failed message-digest check or None) from the file and the caller."""
    name = "message-digest"
    if info.content is not None:
        if content is not None and bytes(content) != info.content:
            return None, None, failed(name, "the content given differs from the content encapsulated "
                                            "in the SignedData", HASH_FAILURE)
        own = sm3(info.content)
        if digest is not None and digest != own:
            return None, None, failed(name, "the digest given is not SM3 of the encapsulated content",
                                      HASH_FAILURE)
        return info.content, own, None
    if content is not None:
        return bytes(content), sm3(content), None
    if digest is not None:
        return None, bytes(digest), None
    return None, None, failed(name, "detached SignedData: the signed content (or its SM3 digest) was "
                                    "not given", SIGNED_DATA_NOT_FOUND)


def _content_type_check(info: SignedDataInfo) -> Check:
    attr, encap = info.signer.content_type_attr, info.encap_content_type
    if attr is None:
        return failed("content-type", "the signed attributes lack contentType (RFC 5652 §5.3)",
                      FORMAT_FAILURE)
    if attr == encap:
        return passed("content-type", f"contentType attribute {attr} matches the encapsulated content type")
    if attr in DATA_TYPES and encap in DATA_TYPES:
        return passed("content-type", f"contentType attribute {attr} and encapContentType {encap} both "
                                      "mean data (GB/T 35275 / PKCS#7)")
    return failed("content-type", f"contentType attribute {attr} differs from encapContentType {encap}",
                  FORMAT_FAILURE)


def _message_digest_check(message_digest: bytes | None, content_digest: bytes | None) -> Check:
    if message_digest is None:
        return failed("message-digest", "the signed attributes lack messageDigest", FORMAT_FAILURE)
    if message_digest != content_digest:
        return failed("message-digest", "messageDigest is not SM3 of the content: the content was changed "
                                        "after signing, or is not the content that was signed", HASH_FAILURE)
    return passed("message-digest", "messageDigest equals SM3 of the content")


def _signature_check(signer: SignerInfo, cert: bytes | None, covered: bytes | None, algorithm_ok: bool
                     ) -> tuple[Check, SignatureForm | None]:
    name = "signature"
    if not algorithm_ok:
        return failed(name, "not checked: the algorithm is refused", CRYPTO_CONSTRAINTS_FAILURE), None
    if cert is None:
        return failed(name, "not checked: no certificate for the signer", NO_SIGNING_CERTIFICATE_FOUND), None
    if covered is None:
        return failed(name, "not checked: the signed content is not available", SIGNED_DATA_NOT_FOUND), None
    try:
        key = certificate_public_key(x509.Certificate.load(cert))
    except (UnsupportedAlgorithm, *ASN1_PARSE_ERRORS) as exc:
        return failed(name, f"the signer's certificate has no SM2 key: {exc}",
                      CRYPTO_CONSTRAINTS_FAILURE), None
    try:
        value = key.verify(signer.signature, covered)
    except InvalidSignature as exc:
        return failed(name, f"{exc}", SIG_CRYPTO_FAILURE), None
    what = "signed attributes" if signer.signed_attrs_bytes is not None else "content"
    return passed(name, f"SM2 signature ({value.form.value}) over the {what} verifies with the signer's "
                        "key and the default user ID"), value.form


# ---- making ---------------------------------------------------------------------------------

def sign_signed_data(*, signer: Signer, certificate: bytes, chain: Sequence[bytes] = (),
                     content: bytes | None = None, digest: bytes | None = None, detached: bool = True,
                     flavour: Flavour = "gbt35275", signed_attributes: bool = True,
                     signing_time: datetime | None = None, signing_time_attribute: bool = True,
                     extra_attributes: Iterable[cms.CMSAttribute] = ()) -> bytes:
    """A DER ContentInfo with one SM2/SM3 signer; see the module docstring for the layout.

    ``certificate`` is the signer's (DER or PEM) and must hold ``signer``'s key; ``chain`` is
    added after it. Give the ``content`` or, for detached data with signed attributes, its
    SM3 ``digest`` (a PDF signer hashes the byte ranges itself). ``signing_time`` defaults to
    now; ``signing_time_attribute=False`` leaves it out of the signed attributes (PAdES
    baseline signatures carry the time in the PDF's /M instead); ``extra_attributes`` are more
    signed attributes (not the four written here).
    ``flavour`` defaults to the national standard's OIDs (OFD); a PDF signer passes "rfc5652".
    The parts that depend only on the certificate and chain are encoded once and kept
    (:mod:`ca.cms_build`).
    """
    pieces = _pieces(certificate, chain)
    if pieces.public_key != signer.public_key():
        raise InvalidRequest("the signer's key is not the certificate's key; sign with the key the "
                             "certificate was issued for")
    return _build(lambda tbs: sign_tbs(signer, tbs)[1], pieces, content, digest, detached, flavour,
                  signed_attributes, signing_time, extra_attributes, signing_time_attribute)


def estimated_size(*, certificate: bytes, chain: Sequence[bytes] = (), content: bytes | None = None,
                   detached: bool = True, flavour: Flavour = "gbt35275", signed_attributes: bool = True,
                   signing_time: datetime | None = None, signing_time_attribute: bool = True,
                   extra_attributes: Iterable[cms.CMSAttribute] = ()) -> int:
    """An upper bound of the size :func:`sign_signed_data` gives for the same arguments.

    It builds the same structure around a longest-possible (72-byte) signature, so it is
    exact but for the few bytes a shorter DER signature saves; without ``signing_time`` it
    assumes the longer GeneralizedTime form. A PDF signer reserves this many bytes (twice,
    in hex) for /Contents before it knows the digest; content is needed only when attached.
    """
    pieces = _pieces(certificate, chain)
    placeholder = b"\x30\x46\x02\x21" + b"\x00" * 33 + b"\x02\x21" + b"\x00" * 33
    when = signing_time or (datetime(2050, 1, 1, tzinfo=UTC) if signed_attributes else None)
    digest = None if content is not None else b"\x00" * 32
    return len(_build(lambda _tbs: placeholder, pieces, content, digest, detached, flavour,
                      signed_attributes, when, extra_attributes, signing_time_attribute))


def _pieces(certificate: bytes, chain: Sequence[bytes]) -> SignerPieces:
    if not isinstance(certificate, (bytes, bytearray)) or not all(isinstance(c, (bytes, bytearray))
                                                                  for c in chain):
        raise InvalidRequest("the certificate and the chain must be bytes (DER or PEM)")
    return signer_pieces(bytes(certificate), tuple(bytes(c) for c in chain))


def _build(sign: Callable[[bytes], bytes], pieces: SignerPieces, content: bytes | None, digest: bytes | None,
           detached: bool, flavour: str, signed_attributes: bool, signing_time: datetime | None,
           extra_attributes: Iterable[cms.CMSAttribute], signing_time_attribute: bool = True) -> bytes:
    if flavour not in FLAVOURS:
        raise InvalidRequest(f"unknown flavour {flavour!r}; use one of {', '.join(FLAVOURS)}")
    signed_data_type, data_type = FLAVOURS[flavour]
    if content is not None and not isinstance(content, (bytes, bytearray)):
        raise InvalidRequest("content must be bytes")
    if content is None and digest is None:
        raise InvalidRequest("give the content to sign, or its SM3 digest")
    if digest is not None and (not isinstance(digest, (bytes, bytearray)) or len(digest) != 32):
        raise InvalidRequest("digest must be the 32-byte SM3 digest of the content")
    if content is not None and digest is not None and sm3(content) != digest:
        raise InvalidRequest("digest is not the SM3 digest of content; give one or the other")
    if not detached and content is None:
        raise InvalidRequest("an attached SignedData needs the content itself, not its digest")
    extras = [a if isinstance(a, cms.CMSAttribute) else cms.CMSAttribute(a) for a in extra_attributes]
    if not signed_attributes:
        if content is None:
            raise InvalidRequest("without signed attributes the signature is over the content itself; "
                                 "give the content")
        if extras or signing_time is not None:
            raise InvalidRequest("signing time and extra attributes need signed attributes")
    attributes = None
    if signed_attributes:
        when = utc(signing_time, "signing_time") if signing_time else datetime.now(UTC).replace(microsecond=0)
        for extra in extras:
            if extra["type"].native in _STANDARD_ATTRIBUTES:
                raise InvalidRequest(f"the {extra['type'].native} attribute is written here; "
                                     "do not pass it in extra_attributes")
        attributes = cms_build.signed_attributes(pieces, data_type, bytes(digest or sm3(content)),
                                                 when if signing_time_attribute else None,
                                                 [a.dump() for a in extras])
    return cms_build.assemble(sign, pieces, signed_data_type=signed_data_type, data_type=data_type,
                              content=content, attached=not detached, attributes=attributes)
