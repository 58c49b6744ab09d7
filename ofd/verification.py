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
from .xml import child, children, local_name, parse

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
def _digest(package: Package, path: str, cache: dict[str, bytes]) -> bytes:
    """SM3 of a package file, computed once however many signatures reference it."""
    if path not in cache:
        cache[path] = sm3(package.read(path))
    return cache[path]


def _reference_check(
    package: Package, signature: SignatureFile, cache: dict[str, bytes]
) -> tuple[Check, frozenset[str]]:
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
        elif _digest(package, ref.path, cache) != ref.check_value:
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


def examine_signature(
    ofd: OfdFile, entry: SignatureEntry, known: Iterable[bytes] = (), cache: dict[str, bytes] | None = None
) -> SignatureEvidence:
    """Every check of one signature. Whatever goes wrong inside becomes a failed check: an
    unforeseen defect in a hostile file is never a pass and never a crash."""
    try:
        return _examine(ofd, entry, tuple(known), {} if cache is None else cache)
    except Exception as exc:
        detail = f"the signature could not be examined ({exc.__class__.__name__}: {exc})"
        return SignatureEvidence(
            entry, UNKNOWN, (failed("format", detail, FORMAT_FAILURE),), own=frozenset({entry.path})
        )


def _examine(
    ofd: OfdFile, entry: SignatureEntry, known: tuple[bytes, ...], cache: dict[str, bytes]
) -> SignatureEvidence:
    package = ofd.package
    try:
        signature = read_signature_file(package, entry)
        value = package.read(signature.signed_value_path)
    except OfdError as exc:
        return SignatureEvidence(
            entry, UNKNOWN, (failed("format", str(exc), FORMAT_FAILURE),), own=frozenset({entry.path})
        )
    own = {entry.path, signature.signed_value_path}  # Seal.esl joins only once it is checked
    references, covered = _reference_check(package, signature, cache)
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
            if esl == ses.seal.encoded:
                own.add(signature.seal_path)
            else:
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
MAX_SIGNATURES = 256
MAX_DOC_BODIES = 16


def _unsigned_ofd_xml_rules(ofd: OfdFile) -> str | None:
    """What OFD.xml must not do when no signature protects it: say anything but "this one
    document, these signatures". A second DocBody, a Versions list or a repeated DocRoot could
    otherwise point a reader (or the coverage rule) somewhere no signature vouches for."""
    root = parse(ofd.package.read("OFD.xml"), "OFD.xml")
    bodies = children(root, "DocBody")
    if len(bodies) != 1:
        return f"{len(bodies)} DocBody elements"
    for name in ("DocRoot", "Signatures", "Versions", "DocInfo"):
        count = len(children(bodies[0], name))
        if name == "Versions" and count:
            return "a Versions list"
        if count > 1:
            return f"{count} {name} elements"
    return None


def _coverage(ofd: OfdFile, signatures: list[SignatureEvidence], lists: set[str]) -> Check:
    covered = frozenset().union(*(s.covered for s in signatures))
    exempt = frozenset().union(*(s.own for s in signatures)) | lists
    uncovered = [n for n in ofd.package.names if n not in covered and n not in exempt]
    notes = []
    if "OFD.xml" in uncovered:
        roots = [b.doc_root for b in ofd.bodies]
        problem = _unsigned_ofd_xml_rules(ofd)
        if problem is not None:
            return failed("coverage", f"OFD.xml is signed by no signature and holds {problem}", NOT_COVERED)
        if all(r in covered for r in roots):
            uncovered.remove("OFD.xml")
            notes.append("OFD.xml is not signed (some producers leave it out), the document it names is")
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


def _orphans(package: Package, listed: set[str]) -> list[Check]:
    """A signature file no list names: an entry was deleted from the unprotected Signatures.xml
    (a later signature covering the earlier one's files would otherwise hide the deletion)."""
    found = []
    for name in package.names:
        if name in listed or not name.lower().endswith(".xml"):
            continue
        data = package.read(name)
        if b"SignedInfo" not in data:
            continue
        try:
            root = parse(data, name)
        except OfdError:
            continue  # not XML we can read: coverage judges it like any other file
        if local_name(root) == "Signature" and child(root, "SignedInfo") is not None:
            found.append(name)
    if not found:
        return []
    return [
        failed(
            "signature-list",
            f"{', '.join(found[:10])}: signature(s) that no signature list names "
            "(removed from Signatures.xml after signing)",
            NOT_COVERED,
        )
    ]


def examine_ofd(data: bytes | Package, known_certificates: Iterable[bytes] = ()) -> OfdEvidence:
    """Read the package (raising OfdError if it is unreadable) and examine every signature."""
    ofd = read_ofd(data)
    package = ofd.package
    known = tuple(known_certificates)
    signatures: list[SignatureEvidence] = []
    lists: set[str] = set()
    listed: dict[str, str] = {}
    checks: list[Check] = []
    cache: dict[str, bytes] = {}
    if len(ofd.bodies) > MAX_DOC_BODIES:
        return OfdEvidence(
            ofd,
            (),
            (
                failed(
                    "format",
                    f"{len(ofd.bodies)} DocBody elements (at most {MAX_DOC_BODIES} are read)",
                    FORMAT_FAILURE,
                ),
            ),
        )
    for body in ofd.bodies:
        if body.signatures is None or body.signatures not in package:
            continue  # no list, or one named but absent (templates do that): unsigned so far
        try:
            listing = read_signature_list(package, body.signatures)
        except OfdError as exc:
            checks.append(failed("format", f"signature list unreadable: {exc}", FORMAT_FAILURE))
            continue
        lists.add(body.signatures)
        for entry in listing.entries:
            if len(signatures) >= MAX_SIGNATURES:
                checks.append(failed("format", f"more than {MAX_SIGNATURES} signatures", FORMAT_FAILURE))
                break
            if entry.path in listed:
                checks.append(
                    failed(
                        "signature-list",
                        f"signatures {listed[entry.path]} and {entry.id} are the same {entry.path}",
                        FORMAT_FAILURE,
                    )
                )
                continue
            listed[entry.path] = entry.id
            signatures.append(examine_signature(ofd, entry, known, cache))
    checks.extend(_orphans(package, set(listed)))
    if signatures:
        checks.append(_coverage(ofd, signatures, lists))
    return OfdEvidence(ofd, tuple(signatures), tuple(checks))
