"""What an OFD package's own bytes say about its signatures — every check short of trust.

For each signature listed in Signatures.xml: ``format`` (the files parse, the Type matches
what SignedValue.dat really is, Seal.esl is the embedded seal, stamps sit on real pages),
``references`` (base64(SM3(file)) == CheckValue for every Reference) and the checks of its
kind: for a Seal-type signature those of :mod:`seals.verification`; for a Sign-type one the
GB/T 35275 SignedData checks of :mod:`ca.cms` (or a bare SM2 signature over Signature.xml,
as ofdrw's deprecated DigitalSignContainer wrote, whose signer must be supplied).

For the package: ``coverage``. Signatures.xml is usually unprotected, so a verifier cannot
trust it alone: every file of the package must be covered by some signature's References
(a later signature may cover an earlier one's files), except the signature files themselves
and OFD.xml when the documents it points to are covered (KingGrid and Anzhengtong leave it
out, because adding a signature changes it). A file added or a signature entry deleted
after signing is therefore uncovered and fails the document.

Certificate chains, revocation and trust anchors are the trust room's: the evidence carries
the signer's certificate, the other certificates found and the claimed signing time.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime

from ca.verdict import (
    CRYPTO_CONSTRAINTS_FAILURE,
    FORMAT_FAILURE,
    HASH_FAILURE,
    NO_SIGNING_CERTIFICATE_FOUND,
    NOT_COVERED,
    SIGNED_DATA_NOT_FOUND,
    Check,
    failed,
    passed,
)
from hsm.errors import HsmError, InvalidSignature
from hsm.oids import SM3_NAMES
from hsm.signature import decode_signature
from hsm.sm3 import sm3
from seals.errors import SealError
from seals.seal import Seal
from seals.seal_signature import SealSignature, read_seal_signature
from seals.time import parse_time
from seals.verification import certificate_subject, load_certificate, seal_signature_checks

from .errors import OfdError
from .package import Package
from .reader import OfdFile, read_ofd
from .signatures import SEAL, SIGN, SignatureEntry, SignatureFile, read_signature_file, read_signature_list

SES_V4 = "ses-v4"
SES_V1 = "ses-v1"
GBT35275 = "gbt35275"
BARE_SM2 = "sm2"
UNKNOWN = "unknown"


@dataclass(frozen=True)
class SignatureEvidence:
    entry: SignatureEntry
    format: str
    checks: tuple[Check, ...]
    file: SignatureFile | None = None
    signer_certificate: bytes | None = None
    certificates: tuple[bytes, ...] = ()  # every certificate the signature carries
    signing_time: datetime | None = None  # as the signature claims it (no proof of existence)
    seal: Seal | None = None
    covered: frozenset[str] = frozenset()  # files its References name (matching or not)
    own: frozenset[str] = frozenset()  # Signature.xml, SignedValue.dat, Seal.esl


@dataclass(frozen=True)
class OfdEvidence:
    ofd: OfdFile
    signatures: tuple[SignatureEvidence, ...]
    checks: tuple[Check, ...] = field(default_factory=tuple)  # document level: coverage, signature lists


# ---- the signature value ------------------------------------------------------------------------
def _seal_signature(value: bytes) -> SealSignature | None:
    try:
        return read_seal_signature(value)
    except SealError:
        return None


def _sign_type(
    value: bytes, signature: SignatureFile, known: Iterable[bytes]
) -> tuple[str, list[Check], dict]:
    """A Sign-type SignedValue: GB/T 35275 SignedData, else a bare SM2 signature."""
    from ca.cms import CmsFormatError, read_signed_data, verify_signed_data

    try:
        info = read_signed_data(value)
    except CmsFormatError as exc:
        bare = _bare_signature(value, signature.raw, known)
        if bare is not None:
            return BARE_SM2, *bare
        return (
            UNKNOWN,
            [
                failed(
                    "format",
                    f"SignedValue is neither an SES_Signature, a GB/T 35275 "
                    f"SignedData nor an SM2 signature value: {exc}",
                    FORMAT_FAILURE,
                )
            ],
            {},
        )
    checks = [passed("format", f"{signature.entry.path}: GB/T 35275 SignedData")]
    digest = sm3(signature.raw)
    if info.content is not None and info.content not in (signature.raw, digest):
        checks.append(
            failed(
                "data-hash",
                "the encapsulated content is neither Signature.xml nor its SM3 digest",
                HASH_FAILURE,
            )
        )
        result = verify_signed_data(info)
    else:
        what = "SM3(Signature.xml)" if info.content == digest else "Signature.xml"
        checks.append(passed("data-hash", f"the signed content is {what}"))
        result = verify_signed_data(info, content=info.content if info.content is not None else signature.raw)
    checks.extend(c for c in result.checks if c.name != "format")
    time = info.signer.signing_time
    return (
        GBT35275,
        checks,
        {
            "signer_certificate": info.signer_certificate,
            "certificates": tuple(info.certificates),
            "signing_time": time,
        },
    )


def _bare_signature(value: bytes, signed: bytes, known: Iterable[bytes]) -> tuple[list[Check], dict] | None:
    """ofdrw DigitalSignContainer: an SM2 signature over Signature.xml, no certificate inside."""
    try:
        signature = decode_signature(value)
    except InvalidSignature:
        return None
    checks = [passed("format", "bare SM2 signature over Signature.xml (no certificate in the file)")]
    for der in known:
        cert = load_certificate(der)
        if cert is None:
            continue
        from ca.signatures import certificate_public_key

        try:
            certificate_public_key(cert).verify(signature, signed)
        except HsmError:
            continue
        checks.append(
            passed(
                "signature",
                f"SM2 signature verifies with the supplied certificate of {certificate_subject(der)}",
            )
        )
        return checks, {"signer_certificate": der}
    checks.append(
        failed(
            "signature",
            "the file carries no certificate and none supplied verifies this signature",
            NO_SIGNING_CERTIFICATE_FOUND,
        )
    )
    return checks, {}


# ---- one signature ------------------------------------------------------------------------------
def _reference_check(package: Package, signature: SignatureFile) -> tuple[Check, frozenset[str]]:
    method = signature.check_method
    if not signature.references:
        return failed("references", "the signature protects no file", FORMAT_FAILURE), frozenset()
    if method is not None and method not in SM3_NAMES:
        return failed(
            "references", f"CheckMethod {method!r} is not SM3", CRYPTO_CONSTRAINTS_FAILURE
        ), frozenset()
    missing, changed, good = [], [], []
    for ref in signature.references:
        if ref.path not in package:
            missing.append(ref.path)
        elif sm3(package.read(ref.path)) != ref.check_value:
            changed.append(ref.path)
        else:
            good.append(ref.path)
    total = len(signature.references)
    named = frozenset(good + changed)  # a changed file is this signature's failure, not a coverage gap
    if changed:
        return failed(
            "references",
            f"{len(changed)} of {total} signed file(s) changed after signing: {', '.join(changed[:10])}",
            HASH_FAILURE,
        ), named
    if missing:
        return failed(
            "references",
            f"{len(missing)} of {total} signed file(s) missing: {', '.join(missing[:10])}",
            SIGNED_DATA_NOT_FOUND,
        ), named
    return passed("references", f"{total}/{total} files match their SM3 CheckValue"), named


def _stamp_check(ofd: OfdFile, signature: SignatureFile) -> Check | None:
    pages = {p.id for body in ofd.bodies for p in body.document.pages}
    stray = [s.page_ref for s in signature.stamp_annots if s.page_ref not in pages]
    if stray:
        return failed(
            "format",
            f"stamp on page ID(s) {', '.join(map(str, stray))} that the document does not have",
            FORMAT_FAILURE,
        )
    return None


def examine_signature(ofd: OfdFile, entry: SignatureEntry, known: Iterable[bytes] = ()) -> SignatureEvidence:
    package = ofd.package
    try:
        signature = read_signature_file(package, entry)
        value = package.read(signature.signed_value_path)
    except OfdError as exc:
        return SignatureEvidence(
            entry, UNKNOWN, (failed("format", str(exc), FORMAT_FAILURE),), own=frozenset({entry.path})
        )
    own = {entry.path, signature.signed_value_path} | (
        {signature.seal_path} if signature.seal_path else set()
    )
    references, covered = _reference_check(package, signature)
    ses = _seal_signature(value)
    extra: dict = {}
    if ses is not None:
        kind = SES_V4 if ses.layout == "v4" else SES_V1
        checks = [passed("format", f"{entry.path}: SES_Signature {ses.layout} (TBS version {ses.version})")]
        if entry.type != SEAL:
            checks = [
                failed(
                    "format",
                    f"Signatures.xml says Type={entry.type_written!r} but SignedValue is "
                    "an SES_Signature (a seal)",
                    FORMAT_FAILURE,
                )
            ]
        if signature.seal_path is not None:
            esl = package.read(signature.seal_path) if signature.seal_path in package else None
            if esl != ses.seal.encoded:
                checks.append(
                    failed(
                        "format",
                        f"{signature.seal_path} is not the seal inside the signature",
                        FORMAT_FAILURE,
                    )
                )
        checks.append(references)
        checks.extend(seal_signature_checks(ses, signature.raw))
        extra = {
            "signer_certificate": ses.signer_certificate,
            "seal": ses.seal,
            "signing_time": ses.time_info,
            "certificates": (ses.signer_certificate, ses.seal.maker_certificate, *ses.seal.certificates),
        }
    else:
        kind, sign_checks, extra = _sign_type(value, signature, known)
        if entry.type != SIGN and kind != UNKNOWN:
            sign_checks[0] = failed(
                "format",
                f"Signatures.xml says Type={entry.type_written or 'Seal (default)'}"
                f" but SignedValue is not a seal signature ({kind})",
                FORMAT_FAILURE,
            )
        checks = [sign_checks[0], references, *sign_checks[1:]]
        if extra.get("signing_time") is None and signature.signature_date_time:
            try:
                extra["signing_time"] = parse_time(signature.signature_date_time)
            except SealError:
                pass
    stamp = _stamp_check(ofd, signature)
    if stamp is not None:
        checks.insert(1, stamp)
    return SignatureEvidence(
        entry, kind, tuple(checks), signature, covered=covered, own=frozenset(own), **extra
    )


# ---- the package --------------------------------------------------------------------------------
def _coverage(ofd: OfdFile, signatures: list[SignatureEvidence], lists: set[str]) -> Check:
    covered = frozenset().union(*(s.covered for s in signatures))
    exempt = frozenset().union(*(s.own for s in signatures)) | lists
    uncovered = [n for n in ofd.package.names if n not in covered and n not in exempt]
    notes = []
    if "OFD.xml" in uncovered:
        roots = [b.doc_root for b in ofd.bodies]
        if all(r in covered for r in roots):
            uncovered.remove("OFD.xml")
            notes.append("OFD.xml is not signed (some producers leave it out), the documents it names are")
    if uncovered:
        return failed(
            "coverage",
            f"{len(uncovered)} file(s) no signature protects: {', '.join(uncovered[:10])}",
            NOT_COVERED,
        )
    return passed(
        "coverage",
        f"every file of the package is protected by a signature{'; ' if notes else ''}{'; '.join(notes)}",
    )


def examine_ofd(data: bytes | Package, known_certificates: Iterable[bytes] = ()) -> OfdEvidence:
    """Read the package (raising OfdError if it is unreadable) and examine every signature."""
    ofd = read_ofd(data)
    known = tuple(known_certificates)
    signatures: list[SignatureEvidence] = []
    lists: set[str] = set()
    checks: list[Check] = []
    for body in ofd.bodies:
        if body.signatures is None:
            continue
        lists.add(body.signatures)
        try:
            listing = read_signature_list(ofd.package, body.signatures)
        except OfdError as exc:
            checks.append(failed("format", f"signature list unreadable: {exc}", FORMAT_FAILURE))
            continue
        for entry in listing.entries:
            signatures.append(examine_signature(ofd, entry, known))
    if signatures:
        checks.append(_coverage(ofd, signatures, lists))
    return OfdEvidence(ofd, tuple(signatures), tuple(checks))
