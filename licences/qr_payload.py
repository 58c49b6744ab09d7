"""The licence QR code: a signed, compact, offline-verifiable claim that opens as a URL.

A phone camera opens ``HTTPS://VERIFY.EXAMPLE.GOV.CN/V/<data>`` on the public verification
service; anyone holding the issuers' published certificates can check the same text offline
(:func:`verify_payload`, ``zhengyin verify-qr``). ``<data>`` is RFC 4648 base32 (upper case,
no padding) of the fixed layout below, so the *whole* URL is in the QR alphanumeric mode
(``0-9 A-Z $%*+-./:`` and space; 5.5 bits a character) — base45 would be 6 % shorter but uses
space, ``%`` and ``+``, which a URL cannot carry as they are.

Format 1, 160 bytes, big-endian::

    off len
      0   1  format (1)
      1  13  type code: the credit code as a base-31 number (GB 32100 alphabet) x 1000 + its
             three-digit suffix
     14  12  issuer code: the credit code as a base-31 number
     26   8  serial
     34   2  version (1-999)
     36   2  issued_at, days since 1970-01-01 (a China Standard Time date): the day the
             code was signed, on which the signer certificate is checked
     38   2  valid_until, the same; 0xFFFF = long-term
     40  32  data_hash: SM3 of the licence data in RFC 8785 canonical JSON (:func:`licence_data_hash`)
     72  16  nonce, from ``secrets``
     88   8  key_id: the first 8 bytes of SM3 of the signer certificate (DER)
     96  64  SM2 signature r || s (GM/T 0009, default user ID) over bytes 0-95 as received

``issued_at`` is the day the issuer signed this code. For a licence issued now that is its
issue date (发证日期) too; for a legacy licence converted into an e-licence (存量转换) it means
"electronically issued on": the licence's own issue date is the historical one it prints and
its metadata records, and the code vouches for the conversion on the day it was made (which is
what the signer certificate must have been valid on).

The identifier is carried as its parts; its check character is recomputed, and type code and
issuer code are not repeated beside it. A fixed length means every licence under one base
URL gets a QR code of the same version: with ``HTTPS://VERIFY.EXAMPLE.GOV.CN/V/`` the URL is
288 characters, version 10 at level M (at most 311 characters, so bases up to 55 characters fit).

Why the lengths:

* data_hash is the whole SM3 digest. A 16-byte prefix would still need version 10 with the
  base above (263 characters; version 9 holds 262), and it leaves 2^64 collision resistance:
  an applicant who controls free-text fields could prepare two colliding data sets, have one
  issued and present the other. 256 bits keep the binding at SM2-256's level. (The documents
  themselves are protected by their seal signatures.)
* nonce: the public service finds a licence by (identifier, nonce) only, and identifiers are
  guessable (serials count up), so the nonce is what an online enumerator must guess. Each
  guess hits with probability 2^-k whichever licence it aims at; with k = 128 (the norm for
  capability URLs) 10^9 guesses a second for a century expect 10^-20 hits. 80 bits would
  give 10^-6, but the 6 bytes more cost 10 characters and free the argument from any
  assumption about rate limits, attacker scale or a weaker random source.
* key_id: 64 bits only pick the certificate among the few published; the signature decides,
  and every certificate with a matching key_id is tried.

The format byte keeps the signed bytes apart from anything else an issuer key signs (DER
starts with 0x30 or 0x31, XML with ``<``, PDF with ``%``).
"""

from __future__ import annotations

import base64
import binascii
import secrets
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta, timezone
from typing import Any

from asn1crypto import x509

from ca.names import CREDIT_CODE_ALPHABET, credit_code_of
from ca.signatures import certificate_public_key
from ca.validation import load_certificates, name_text
from ca.verdict import (
    EXPIRED,
    FORMAT_FAILURE,
    NO_SIGNING_CERTIFICATE_FOUND,
    NOT_YET_VALID,
    SIG_CONSTRAINTS_FAILURE,
    SIG_CRYPTO_FAILURE,
    Check,
    Judged,
    failed,
    passed,
)
from hsm.curve import N
from hsm.errors import HsmError, InvalidSignature
from hsm.keystore import Signer
from hsm.signature import SignatureForm, SignatureValue, decode_signature
from hsm.sm3 import sm3

from .identifiers import IdentifierError, LicenceIdentifier
from .jcs import canonical_json
from .qr_url import BASE_CHECK, QrPayloadError, base_check, payload_text, verification_base

FORMAT_VERSION = 1
DATA_HASH_BYTES = 32
NONCE_BYTES = 16
KEY_ID_BYTES = 8
SIGNATURE_BYTES = 64
CLAIMS_BYTES = 96
PAYLOAD_BYTES = CLAIMS_BYTES + SIGNATURE_BYTES
#: Alphanumeric-mode capacity of a version 10 QR code at error correction M.
MAX_URL_CHARS = 311
MAX_TEXT_CHARS = 1024  # anything longer is refused before it is read
LONG_TERM = 0xFFFF

CHINA_STANDARD_TIME = timezone(timedelta(hours=8), "CST")
EPOCH = date(1970, 1, 1)
LAST_DATE = EPOCH + timedelta(days=LONG_TERM - 1)

_BASE32 = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZ234567")
_CODE_RADIX = len(CREDIT_CODE_ALPHABET)
_CODE_LIMIT = _CODE_RADIX ** 18


# -- claims ------------------------------------------------------------------------------------

def key_id_of(certificate: bytes | x509.Certificate) -> bytes:
    """The key_id naming ``certificate`` (DER bytes or parsed): SM3(DER)[:8]."""
    der = certificate.dump() if isinstance(certificate, x509.Certificate) else bytes(certificate)
    return sm3(der)[:KEY_ID_BYTES]


def _plain_date(value: object, what: str, *, optional: bool = False) -> None:
    if value is None and optional:
        return
    if not isinstance(value, date) or isinstance(value, datetime):
        raise QrPayloadError(f"{what} must be a date, not {value!r}")
    if not EPOCH <= value <= LAST_DATE:
        raise QrPayloadError(f"{what} {value} is outside {EPOCH} to {LAST_DATE}, the range format 1 carries")


def _exact_bytes(value: object, size: int, what: str) -> None:
    if not isinstance(value, bytes) or len(value) != size:
        shown = f"{len(value)} bytes" if isinstance(value, bytes) else type(value).__name__
        raise QrPayloadError(f"{what} must be {size} bytes, not {shown}")


@dataclass(frozen=True)
class QrClaims:
    """What the issuer vouches for in a QR code. ``type_code`` and ``issuer_code`` must be
    the identifier's own (they are read from it on decoding); dates are China dates."""

    identifier: str
    type_code: str
    issuer_code: str
    valid_until: date | None
    data_hash: bytes
    nonce: bytes
    issued_at: date
    key_id: bytes

    def __post_init__(self) -> None:
        parsed = _identifier(self.identifier)
        if (self.type_code, self.issuer_code) != (parsed.type_code, parsed.issuer_code):
            raise QrPayloadError(f"type code {self.type_code!r} and issuer code {self.issuer_code!r} are not "
                                 f"those of identifier {self.identifier}")
        _plain_date(self.valid_until, "valid_until", optional=True)
        _plain_date(self.issued_at, "issued_at")
        _exact_bytes(self.data_hash, DATA_HASH_BYTES, "data_hash (SM3 of the licence data)")
        _exact_bytes(self.nonce, NONCE_BYTES, "nonce")
        _exact_bytes(self.key_id, KEY_ID_BYTES, "key_id")

    @classmethod
    def for_licence(cls, identifier: str, data: Mapping[str, Any], *, valid_until: date | None,
                    signer_certificate: bytes | x509.Certificate, issued_at: date) -> QrClaims:
        """The claims for a licence being issued: a fresh nonce, the hash of ``data``, the
        key_id of the certificate whose key will sign."""
        parsed = _identifier(identifier)
        return cls(identifier, parsed.type_code, parsed.issuer_code, valid_until, licence_data_hash(data),
                   secrets.token_bytes(NONCE_BYTES), issued_at, key_id_of(signer_certificate))

    def as_dict(self) -> dict[str, Any]:
        return {
            "identifier": self.identifier,
            "type_code": self.type_code,
            "issuer_code": self.issuer_code,
            "valid_until": self.valid_until.isoformat() if self.valid_until else None,
            "issued_at": self.issued_at.isoformat(),
            "data_hash": self.data_hash.hex(),
            "nonce": self.nonce.hex(),
            "key_id": self.key_id.hex(),
        }


def _identifier(text: object) -> LicenceIdentifier:
    try:
        parsed = LicenceIdentifier.parse(text)  # type: ignore[arg-type]
    except IdentifierError as exc:
        raise QrPayloadError(f"identifier: {exc}") from None
    if parsed.text != text:  # parse() accepts only the one spelling; keep it so
        raise QrPayloadError(f"identifier {text!r} is not in its canonical form {parsed.text}")
    return parsed


@dataclass(frozen=True)
class SignedPayload:
    """A decoded payload: the claims, the exact bytes the signature covers, and r || s."""

    claims: QrClaims
    signed_bytes: bytes
    signature: bytes


# -- the binary layout -------------------------------------------------------------------------

def _code_value(code: str) -> int:
    value = 0
    for ch in code:
        value = value * _CODE_RADIX + CREDIT_CODE_ALPHABET.index(ch)
    return value


def _code_text(value: int, what: str) -> str:
    if value >= _CODE_LIMIT:
        raise QrPayloadError(f"{what} field is out of range: it is no 18-character credit code")
    chars = []
    for _ in range(18):
        value, digit = divmod(value, _CODE_RADIX)
        chars.append(CREDIT_CODE_ALPHABET[digit])
    return "".join(reversed(chars))


def _days(day: date | None) -> int:
    return LONG_TERM if day is None else (day - EPOCH).days


def _claims_bytes(claims: QrClaims) -> bytes:
    parsed = _identifier(claims.identifier)
    type_value = _code_value(parsed.type_code[:18]) * 1000 + int(parsed.type_code[18:])
    return b"".join((
        bytes([FORMAT_VERSION]),
        type_value.to_bytes(13, "big"),
        _code_value(parsed.issuer_code).to_bytes(12, "big"),
        parsed.serial.to_bytes(8, "big"),
        parsed.version.to_bytes(2, "big"),
        _days(claims.issued_at).to_bytes(2, "big"),
        _days(claims.valid_until).to_bytes(2, "big"),
        claims.data_hash, claims.nonce, claims.key_id,
    ))


def _read_claims(data: bytes) -> QrClaims:
    type_value = int.from_bytes(data[1:14], "big")
    type_code = _code_text(type_value // 1000, "type code") + f"{type_value % 1000:03d}"
    issuer_code = _code_text(int.from_bytes(data[14:26], "big"), "issuer code")
    serial, version = int.from_bytes(data[26:34], "big"), int.from_bytes(data[34:36], "big")
    issued, until = int.from_bytes(data[36:38], "big"), int.from_bytes(data[38:40], "big")
    if issued == LONG_TERM:
        raise QrPayloadError("issued_at holds the long-term marker; only valid_until may")
    try:
        identifier = LicenceIdentifier(type_code, issuer_code, serial, version).text
    except IdentifierError as exc:
        raise QrPayloadError(f"the identifier fields do not form a licence identifier: {exc}") from None
    return QrClaims(
        identifier=identifier, type_code=type_code, issuer_code=issuer_code,
        valid_until=None if until == LONG_TERM else EPOCH + timedelta(days=until),
        data_hash=data[40:72], nonce=data[72:88], issued_at=EPOCH + timedelta(days=issued),
        key_id=data[88:96])


# -- text: base32 and the URL ------------------------------------------------------------------

def encode_payload(claims: QrClaims, signer: Signer, base_url: str) -> str:
    """The QR text: ``base_url`` + base32 of the claims and the signer's SM2 signature.

    ``signer`` must hold the key of the certificate ``claims.key_id`` names (it is checked
    against the signer's own public key, so a broken key store never prints a dead QR code).
    Raises QrPayloadError if the URL would not fit a version 10 QR code at level M.
    """
    if not isinstance(claims, QrClaims):
        raise QrPayloadError(f"claims must be QrClaims, not {type(claims).__name__}")
    base = verification_base(base_url)
    signed = _claims_bytes(claims)
    try:
        value = decode_signature(signer.sign(signed))
        signer.public_key().verify(value, signed)
    except InvalidSignature as exc:
        raise QrPayloadError(f"the signer's signature does not verify with its own public key: {exc}") \
            from exc
    url = base + base64.b32encode(signed + value.to_raw()).decode("ascii").rstrip("=")
    if len(url) > MAX_URL_CHARS:
        raise QrPayloadError(f"the QR URL is {len(url)} characters; a version 10 QR code at level M "
                             f"holds {MAX_URL_CHARS}: shorten the base URL {base} by "
                             f"{len(url) - MAX_URL_CHARS} characters")
    return url


def _base32(data: str) -> bytes:
    if not data:
        raise QrPayloadError("QR text carries no payload after the URL")
    upper = data.upper()
    bad = "".join(dict.fromkeys(c for c in upper if c not in _BASE32))
    if bad:
        raise QrPayloadError(f"payload has characters outside base32 (A-Z, 2-7): {bad[:20]!r}")
    if len(upper) % 8 in (1, 3, 6):
        raise QrPayloadError(f"payload of {len(upper)} base32 characters is truncated (no whole byte count)")
    raw = base64.b32decode(upper + "=" * (-len(upper) % 8))
    if base64.b32encode(raw).decode("ascii").rstrip("=") != upper:
        raise QrPayloadError("payload's last base32 character has unused bits set: it was altered")
    return raw


def decode_payload(text: str) -> SignedPayload:
    """Read a QR text — the URL with any base and any case of scheme and host, or the bare
    base32 (either case) — strictly: any other format, length or field value is a
    QrPayloadError. Nothing here checks the signature; :func:`verify_payload` does."""
    if not isinstance(text, str):
        raise QrPayloadError(f"QR text must be a string, not {type(text).__name__}")
    if len(text) > MAX_TEXT_CHARS:
        raise QrPayloadError(f"QR text is {len(text)} characters; a licence QR text is at most "
                             f"{MAX_URL_CHARS}")
    try:
        raw = _base32(payload_text(text.strip()))
    except binascii.Error as exc:
        raise QrPayloadError(f"payload is not base32: {exc}") from None
    if raw[0] != FORMAT_VERSION:
        raise QrPayloadError(f"unknown QR payload format {raw[0]}; this verifier reads format "
                             f"{FORMAT_VERSION}")
    if len(raw) != PAYLOAD_BYTES:
        how = "truncated" if len(raw) < PAYLOAD_BYTES else "trailing bytes"
        raise QrPayloadError(f"payload is {len(raw)} bytes; format {FORMAT_VERSION} has exactly "
                             f"{PAYLOAD_BYTES} ({how})")
    return SignedPayload(_read_claims(raw), raw[:CLAIMS_BYTES], raw[CLAIMS_BYTES:])


# -- the licence data hash -----------------------------------------------------------------------

def licence_data_hash(data: Mapping[str, Any]) -> bytes:
    """SM3 of ``data`` in RFC 8785 (JCS) canonical JSON: one spelling per value, so any JCS
    implementation recomputes it from the licence data."""
    if not isinstance(data, Mapping):
        raise QrPayloadError(f"licence data must be a mapping, not {type(data).__name__}")
    return sm3(canonical_json(data))


# -- verification --------------------------------------------------------------------------------

@dataclass(frozen=True)
class QrVerification(Judged):
    """The checks on one QR text. ``claims`` is set whenever the text could be read — they
    are the issuer's word only when ``ok``."""

    checks: tuple[Check, ...]
    claims: QrClaims | None = None
    certificate: x509.Certificate | None = field(default=None, repr=False)

    @property
    def ok(self) -> bool:
        return bool(self.checks) and all(check.ok for check in self.checks)

    def as_dict(self) -> dict[str, Any]:
        signer = None
        if self.certificate is not None:
            tbs = self.certificate["tbs_certificate"]
            signer = {"subject": name_text(tbs["subject"]),
                      "serial": format(tbs["serial_number"].native, "X"),
                      "key_id": key_id_of(self.certificate).hex()}
        return {"kind": "qr", "ok": self.ok, "indication": self.indication,
                "sub_indication": self.sub_indication,
                "claims": self.claims.as_dict() if self.claims else None, "signer": signer,
                "checks": [check.as_dict() for check in self.checks]}


def _load(certificates: Iterable[bytes | x509.Certificate]) -> list[x509.Certificate]:
    if isinstance(certificates, bytes | bytearray | str):
        raise TypeError("certificates must be an iterable of certificates (DER or PEM bytes), not one value")
    loaded = []
    for item in certificates:
        loaded.extend([item] if isinstance(item, x509.Certificate) else load_certificates(bytes(item)))
    return loaded


def _china_day(at: datetime) -> date:
    if not isinstance(at, datetime) or at.tzinfo is None:
        raise ValueError(f"at must be a timezone-aware datetime, not {at!r}")
    return at.astimezone(CHINA_STANDARD_TIME).date()


def _signature_checks(signed: SignedPayload, candidates: list[x509.Certificate]
                      ) -> tuple[list[Check], x509.Certificate | None]:
    """Try each certificate the key_id names; the first whose key verifies is the signer."""
    r, s = int.from_bytes(signed.signature[:32], "big"), int.from_bytes(signed.signature[32:], "big")
    if not (1 <= r < N and 1 <= s < N):
        return [failed("signature", "signature r or s is outside [1, n-1]", SIG_CRYPTO_FAILURE)], None
    problems = []
    for cert in candidates:
        try:
            certificate_public_key(cert).verify(SignatureValue(r, s, SignatureForm.RAW), signed.signed_bytes)
        except HsmError as exc:
            problems.append(str(exc))
            continue
        return [passed("signature", "the SM2 signature over the claims verifies with the certificate's "
                       "key")], cert
    return [failed("signature", "SM2 signature does not verify: " + "; ".join(problems),
                   SIG_CRYPTO_FAILURE)], None


def _issuer_check(claims: QrClaims, cert: x509.Certificate) -> Check:
    code = credit_code_of(cert["tbs_certificate"]["subject"])
    if code == claims.issuer_code:
        return passed("signer-is-issuer", f"the certificate belongs to the issuing department {code}")
    whose = f"department {code}" if code else "no department (it carries no credit code)"
    return failed("signer-is-issuer", f"the certificate names {whose}, but the QR code claims issuer "
                  f"{claims.issuer_code}: only an issuer's own key signs its licences' QR codes",
                  SIG_CONSTRAINTS_FAILURE)


def _validity_check(claims: QrClaims, today: date) -> Check:
    if claims.issued_at > today:
        return failed("validity", f"issued on {claims.issued_at}, after the verification date {today}",
                      NOT_YET_VALID)
    if claims.valid_until is None:
        return passed("validity", "long-term licence (no end of validity)")
    if today > claims.valid_until:
        return failed("validity", f"the licence expired on {claims.valid_until} (checked on {today})",
                      EXPIRED)
    return passed("validity", f"valid until {claims.valid_until} (checked on {today})")


def _certificate_validity_check(claims: QrClaims, cert: x509.Certificate) -> Check:
    """The certificate must have been valid during the claimed issue day (China time)."""
    validity = cert["tbs_certificate"]["validity"]
    not_before, not_after = validity["not_before"].native, validity["not_after"].native
    day_start = datetime.combine(claims.issued_at, time(0), CHINA_STANDARD_TIME)
    window = f"{not_before.astimezone(UTC):%Y-%m-%d %H:%M}Z to {not_after.astimezone(UTC):%Y-%m-%d %H:%M}Z"
    if day_start >= not_after:
        return failed("certificate-validity", f"the certificate had expired ({window}) by the claimed "
                      f"issue date {claims.issued_at}", EXPIRED)
    if day_start + timedelta(days=1) <= not_before:
        return failed("certificate-validity", f"the certificate was not yet valid ({window}) on the claimed "
                      f"issue date {claims.issued_at}", NOT_YET_VALID)
    return passed("certificate-validity", f"the certificate ({window}) was valid on the issue date "
                  f"{claims.issued_at}")


def verify_payload(text: str, certificates: Iterable[bytes | x509.Certificate], *,
                   at: datetime, expected_base: str | None = None) -> QrVerification:
    """Check a QR text offline against the published issuer ``certificates`` (DER or PEM
    bytes, bundles allowed), at the time ``at``.

    Checks, in order: ``format``, ``signer-known`` (a certificate with the payload's key_id),
    ``signature``, ``signer-is-issuer`` (the certificate's credit code is the claimed issuer),
    ``validity`` (the licence at ``at``), ``certificate-validity`` (at the claimed issue
    date) and, when ``expected_base`` is given (the public service's base URL, e.g.
    ``https://verify.example.gov.cn/V/``), ``verification-base``: a URL under any other base
    fails. The certificates are taken as trusted: chain and revocation are the trust service's
    job. Unreadable certificates raise ca.validation.CertificateLoadError; a malformed
    ``expected_base`` raises QrPayloadError.
    """
    today = _china_day(at)
    pool = _load(certificates)
    if expected_base is not None:
        verification_base(expected_base)  # a configuration fault is raised, not judged
    try:
        signed = decode_payload(text)
    except QrPayloadError as exc:
        return QrVerification((failed("format", str(exc), FORMAT_FAILURE),))
    checks = [passed("format", f"format {FORMAT_VERSION} payload of {PAYLOAD_BYTES} bytes")]
    result = _verify_decoded(signed, pool, today, checks)
    if expected_base is not None:
        result = QrVerification((*result.checks, base_check(text, expected_base)), result.claims,
                                result.certificate)
    return result


def _verify_decoded(signed: SignedPayload, pool: list[x509.Certificate], today: date,
                    checks: list[Check]) -> QrVerification:
    claims = signed.claims
    candidates = [cert for cert in pool if key_id_of(cert) == claims.key_id]
    if not candidates:
        checks.append(failed("signer-known", f"no published certificate has key_id {claims.key_id.hex()} "
                             f"({len(pool)} certificates given)", NO_SIGNING_CERTIFICATE_FOUND))
        return QrVerification(tuple(checks), claims)
    checks.append(passed("signer-known", f"key_id {claims.key_id.hex()} names {len(candidates)} "
                         "published certificate(s)"))
    signature_checks, cert = _signature_checks(signed, candidates)
    checks.extend(signature_checks)
    if cert is None:
        return QrVerification(tuple(checks), claims)
    checks.extend((_issuer_check(claims, cert), _validity_check(claims, today),
                   _certificate_validity_check(claims, cert)))
    return QrVerification(tuple(checks), claims, cert)


def verify_qr_report(text: str, certificates: Iterable[bytes | x509.Certificate],
                     at: datetime, expected_base: str | None = None,
                     base_note: str | None = None) -> dict[str, Any]:
    """``zhengyin verify-qr TEXT``: the JSON-ready report of :func:`verify_payload`, with the
    verdict (TOTAL_PASSED / TOTAL_FAILED / INDETERMINATE), the claims and every check;
    ``expected_base`` adds the check that the code opens the public verification service.

    Without ``expected_base`` that check is not made, and the report says so under
    ``not_judged`` (``base_note`` says why): not a failure — the verifier has no base to compare
    with — but no reason to trust the address the code opens either."""
    report = verify_payload(text, certificates, at=at, expected_base=expected_base).as_dict()
    report["at"] = at.isoformat()
    report["not_judged"] = [] if expected_base is not None else [{
        "name": BASE_CHECK,
        "detail": "whether the code opens the public verification service was not judged: "
                  + (base_note or "no verification base to compare with was given")}]
    return report
