"""The data-service signer: the one key of the data-reuse service, and the offline check of
what it signs.

A data-reuse answer (:mod:`licences.reuse`) is ``{"body": {…}, "signature": {…}}``. The
signature is a *raw* SM2 signature (GM/T 0009: e = SM3(Z_A ‖ M), user ID
``1234567812345678``, DER SEQUENCE{r, s}, base64) over M = the RFC 8785 canonical JSON of
``body`` (:func:`licences.jcs.canonical_json`); ``signature.certificate_sm3`` is the SM3 of the
signer certificate's DER — the ``sm3_fingerprint`` of a ``data-service-signer`` entry of the
published trust list, where the certificate itself is. A raw signature rather than a CMS
SignedData: a department keeps one JSON file as evidence, and any SM2 tool checks it —

.. code-block:: sh

    # body.jcs: the canonical JSON of "body"; sig.der: base64-decoded "value";
    # pub.pem: the public key of the trust-list entry whose sm3_fingerprint is certificate_sm3
    openssl pkeyutl -verify -pubin -inkey pub.pem -rawin -in body.jcs -sigfile sig.der \\
        -digest sm3 -pkeyopt distid:1234567812345678

:func:`verify_reuse_response` does that and the rest offline (``zhengyin verify-reuse``): the
trust list must already be verified (:func:`trust.trust_list.verify_trust_list`); the signer
must be listed there as a valid ``data-service-signer``, chain to the list's root through its
issuing CA and have been valid when the body says it was issued.

An answer with a purpose-limited annotated copy (加注件) carries the copy's bytes beside the body,
``"annotated_copy_content": "<base64>"`` (unsigned), and names them in the signed body:
``annotated_copy`` = {format, media_type, sm3, expires, size}. :func:`verify_reuse_response`
checks that the content — and a copy file given to it, kept apart — is exactly what the signed
body names (SM3 and size): the signature vouches for the copy's bytes. The copy is itself a
sealed document, verified like any other (``zhengyin verify copy.pdf``).

The certificate is made on the internal side (:func:`ensure_data_signer`, ``zhengyin reuse
signer``: the CA issues it, audited) and ``zhengyin publish`` lists it; the data-reuse service
only signs with the key and reads its certificate.
"""

from __future__ import annotations

import base64
import binascii
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from asn1crypto import x509

from ca.authority import utc_now
from ca.registry import CertificateRecord
from ca.signatures import certificate_public_key
from ca.validation import Purpose, validate_path
from ca.verdict import (
    EXPIRED,
    FORMAT_FAILURE,
    HASH_FAILURE,
    NO_CERTIFICATE_CHAIN_FOUND,
    NOT_YET_VALID,
    REVOKED,
    SIG_CRYPTO_FAILURE,
    Check,
    Judged,
    failed,
    passed,
)
from hsm.errors import HsmError
from hsm.keystore import Signer
from hsm.sm2 import DEFAULT_UID
from hsm.sm3 import sm3
from licences.jcs import canonical_json
from licences.qr_url import QrPayloadError

from .domain import TrustDomain
from .service_signers import certify_service_key, usable_certificates

KEY_LABEL = "data-service-signer"
PROFILE = "data-service-signer"
ROLE = "data-service-signer"
ALGORITHM = "SM2-with-SM3"
ALGORITHM_OID = "1.2.156.10197.1.501"
USER_ID = DEFAULT_UID.decode("ascii")
RENEW_BEFORE = timedelta(days=30)
RESPONSE_FORMAT = "zhengyin-reuse-response"
DATA_SIGNING = Purpose("data_service_signing", frozenset({"digital_signature", "non_repudiation"}))


class DataSignerMissing(Exception):
    """There is no usable data-service signer certificate for the key: run `zhengyin reuse signer`."""


def _usable(records: list[CertificateRecord], now: datetime, margin: timedelta) -> list[CertificateRecord]:
    return usable_certificates(records, KEY_LABEL, now, margin)


def ensure_data_signer(td: TrustDomain, now: datetime | None = None) -> CertificateRecord:
    """The data-service signer's certificate, issued by the issuing CA (key generated in the key
    store, both audited) when none is usable for 30 more days. A key version any of whose
    certificates was revoked is rotated away first, never certified again."""
    now = now or utc_now()
    records = [r for r in td.ca.certificates(profile=PROFILE) if r.key_label == KEY_LABEL]
    usable = _usable(records, now, RENEW_BEFORE)
    if usable:
        return usable[-1]
    if td.ca.root(now) is None or td.ca.issuing(now) is None:
        raise DataSignerMissing("this home has no CA yet to certify the data-service signer: run "
                                "`zhengyin init`")
    return certify_service_key(td, label=KEY_LABEL, profile=PROFILE,
                               common_name="证印数据共享服务 (data service signer)",
                               organisation_of=td.ca.root(now), records=records, now=now)


def current_data_signer(td: TrustDomain, now: datetime | None = None) -> CertificateRecord:
    """The certificate the data-reuse service signs with now (read only); DataSignerMissing."""
    usable = _usable(list(td.ca.certificates(profile=PROFILE, include_revoked=True)), now or utc_now(),
                     timedelta(0))
    if not usable:
        raise DataSignerMissing("there is no valid data-service signer certificate: run `zhengyin reuse "
                                "signer` on the internal side, then `zhengyin publish`")
    return usable[-1]


@dataclass(frozen=True)
class ResponseSigner:
    """Signs canonical answer bodies with the data-service key (a key store reference)."""

    signer: Signer
    certificate: bytes  # DER

    def __call__(self, content: bytes) -> dict[str, Any]:
        return {"algorithm": ALGORITHM, "algorithm_oid": ALGORITHM_OID, "user_id": USER_ID,
                "certificate_sm3": sm3(self.certificate).hex(),
                "value": base64.b64encode(self.signer.sign(content)).decode("ascii")}


# ---- verifying (offline) ---------------------------------------------------------------------

@dataclass(frozen=True)
class ReuseVerification(Judged):
    checks: tuple[Check, ...]
    body: dict[str, Any] | None = None
    signer: x509.Certificate | None = None

    @property
    def ok(self) -> bool:
        return bool(self.checks) and all(c.ok for c in self.checks)

    def as_dict(self) -> dict[str, Any]:
        return {"ok": self.ok, "indication": self.indication, "sub_indication": self.sub_indication,
                "response_id": (self.body or {}).get("response_id"),
                "signer": self.signer.subject.human_friendly if self.signer else None,
                "checks": [c.as_dict() for c in self.checks]}


def _parse_time(text: object) -> datetime:
    moment = datetime.fromisoformat(str(text).replace("Z", "+00:00"))
    if moment.tzinfo is None:
        raise ValueError("a time without a zone")
    return moment


COPY_CONTENT = "annotated_copy_content"


def _read(envelope: object) -> tuple[dict[str, Any], dict[str, Any], bytes, bytes, datetime]:
    if not isinstance(envelope, dict) or not {"body", "signature"} <= set(envelope) <= \
            {"body", "signature", COPY_CONTENT}:
        raise ValueError('an answer is {"body": …, "signature": …} (and "annotated_copy_content" '
                         "with a copy) and nothing else")
    body, signature = envelope["body"], envelope["signature"]
    if not isinstance(body, dict) or body.get("format") != RESPONSE_FORMAT or not isinstance(signature, dict):
        raise ValueError(f"the body is not a {RESPONSE_FORMAT} document")
    if signature.get("algorithm") != ALGORITHM or signature.get("user_id") != USER_ID:
        raise ValueError(f"the signature must be {ALGORITHM} with user ID {USER_ID}")
    value = base64.b64decode(str(signature.get("value", "")), validate=True)
    fingerprint = bytes.fromhex(str(signature.get("certificate_sm3", "")))
    if len(fingerprint) != 32 or not value:
        raise ValueError("certificate_sm3 must be 64 hex digits and value a base64 signature")
    return body, signature, value, fingerprint, _parse_time(body.get("issued_at"))


def copy_checks(envelope: dict[str, Any], body: dict[str, Any], copy: bytes | None) -> list[Check]:
    """The annotated copy's bytes — the envelope's ``annotated_copy_content`` and ``copy`` (a
    file kept apart), each that is there — against what the signed body names."""
    named = body.get("annotated_copy")
    candidates: list[tuple[str, bytes]] = []
    if COPY_CONTENT in envelope:
        try:
            candidates.append(("the answer's annotated_copy_content",
                               base64.b64decode(str(envelope[COPY_CONTENT]), validate=True)))
        except (binascii.Error, ValueError) as exc:
            return [failed("annotated-copy", f"annotated_copy_content is not base64: {exc}", FORMAT_FAILURE)]
    if copy is not None:
        candidates.append(("the copy file", copy))
    if not candidates:
        return []
    if not isinstance(named, dict) or not isinstance(named.get("sm3"), str):
        return [failed("annotated-copy", "the signed body names no annotated copy", FORMAT_FAILURE)]
    checks = []
    for what, data in candidates:
        digest = sm3(data).hex()
        if digest != named["sm3"].lower() or len(data) != named.get("size"):
            checks.append(failed("annotated-copy", f"{what} is not the copy the answer vouches for: its SM3 "
                                 f"is {digest} ({len(data)} bytes), the signed body names {named['sm3']} "
                                 f"({named.get('size')} bytes)", HASH_FAILURE))
        else:
            checks.append(passed("annotated-copy", f"{what} is the {named.get('format')} copy the signed "
                                 f"body names (SM3 {digest}, {len(data)} bytes), valid until "
                                 f"{named.get('expires')}"))
    return checks


def verify_reuse_response(envelope: object, trust_list: dict[str, Any], copy: bytes | None = None
                          ) -> ReuseVerification:
    """Check a data-reuse answer against a trust list document that was itself verified, and
    an annotated copy (its content in the answer, and ``copy`` if given) against the signed body."""
    try:
        body, _, value, fingerprint, issued_at = _read(envelope)
        content = canonical_json(body)
    except (ValueError, TypeError, binascii.Error, QrPayloadError) as exc:
        return ReuseVerification((failed("format", f"the answer cannot be read: {exc}", FORMAT_FAILURE),))
    checks = [passed("format", f"answer {body.get('response_id')} issued {body.get('issued_at')}")]
    entries = [e for e in trust_list.get("certificates", []) if e.get("sm3_fingerprint") == fingerprint.hex()]
    entry = next((e for e in entries if e.get("role") == ROLE), None)
    if entry is None:
        checks.append(failed("signer-listed", "the trust list names no data-service signer with this "
                             "certificate's SM3 fingerprint", NO_CERTIFICATE_CHAIN_FOUND))
        return ReuseVerification(tuple(checks), body)
    signer = x509.Certificate.load(base64.b64decode(entry["certificate"]))
    if entry.get("status") == "revoked":
        checks.append(failed("signer-listed", f"the trust list marks the signer revoked "
                             f"({entry.get('revoked_at')}, {entry.get('revocation_reason')})", REVOKED))
        return ReuseVerification(tuple(checks), body, signer)
    checks.append(passed("signer-listed", f"listed as data-service signer: {entry.get('subject')}"))
    validity = signer["tbs_certificate"]["validity"]
    not_before, not_after = validity["not_before"].native, validity["not_after"].native
    if not not_before <= issued_at <= not_after:
        code = NOT_YET_VALID if issued_at < not_before else EXPIRED
        checks.append(failed("signer-validity", f"the signer's certificate was not valid at {issued_at}",
                             code))
    else:
        checks.append(passed("signer-validity", "the certificate was valid when the answer was issued"))
    # Every CA certificate the list has not revoked: one that has since expired (a rotation left
    # it behind) still vouches for answers issued while it was valid — path validation judges
    # that at issued_at.
    listed = [e for e in trust_list.get("certificates", []) if e.get("status") != "revoked"]
    roots = [base64.b64decode(e["certificate"]) for e in listed if e.get("role") == "root"]
    issuing = [base64.b64decode(e["certificate"]) for e in listed if e.get("role") == "issuing-ca"]
    path = validate_path(signer, trust_anchors=roots, intermediates=issuing, at=issued_at,
                         purpose=DATA_SIGNING, revocation="off")
    if path.ok:
        checks.append(passed("signer-chain", "chains to the trust list's root: "
                             + " <- ".join(c.subject.human_friendly for c in path.path)))
    else:
        why = path.failed.detail if path.failed else path.code
        checks.append(failed("signer-chain", f"the signer does not chain to the trust list's root: {why}",
                             NO_CERTIFICATE_CHAIN_FOUND))
    try:
        certificate_public_key(signer).verify(value, content)
        checks.append(passed("signature", "the SM2 signature over the canonical body verifies"))
    except HsmError as exc:
        checks.append(failed("signature", f"the SM2 signature does not verify: {exc}", SIG_CRYPTO_FAILURE))
    checks += copy_checks(envelope, body, copy)  # type: ignore[arg-type]  # _read checked: a dict
    return ReuseVerification(tuple(checks), body, signer)
