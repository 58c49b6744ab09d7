"""The validation engine: evidence from a document, judged against this verifier's trust.

The document rooms say what the bytes say (:mod:`ofd.verification`); this module adds what
only a relying party can decide — whether the signer's and the seal maker's certificates
chain to a trust anchor it accepts, and whether they were revoked — and turns it all into
one :class:`~trust.report.DocumentReport`.

Time. A signature claims when it was made; nothing here proves it (no time-stamp yet). The
certificates are first judged at the validation time. If they have expired or been revoked
since, they are judged again at the claimed signing time, with the CRLs current now: if they
were good then, the verdict is INDETERMINATE (OUT_OF_BOUNDS_NO_POE / REVOKED_NO_POE) as
EN 319 102-1 requires without a proof of existence; if they were bad even then, it is
TOTAL_FAILED. Revocation data comes only from configured sources (the home's own CA and
files given on the command line), never from URLs inside the document.

Proof of existence. The one time this verifier accepts as proven is a record it keeps itself:
the licence registry's row for a document with exactly these bytes (its SM3), written when the
service issued it (:class:`ProofOfExistence`, looked up by :attr:`TrustContext.registry_proof`).
A certificate revoked or expired since is then judged at that time, and a key-compromise
revocation counts from its invalidity date: a licence the registry shows was issued before
the compromise keeps its signature; one issued after fails REVOKED, and so does any document
the registry does not know (whoever holds a stolen key can write any signing time into it).

A purpose-limited annotated copy (加注件) also gets the document-level check
``annotated-copy-validity`` (:mod:`trust.copy_validity`): its sealed annotation says until when
it may be used, and after that the document fails EXPIRED though its seal still verifies.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Protocol

from asn1crypto import crl as asn1_crl
from asn1crypto import x509

from ca import validation as path
from ca.validation import Purpose, RevocationMode, validate_path
from ca.verdict import (
    CHAIN_CONSTRAINTS_FAILURE,
    EXPIRED,
    FORMAT_FAILURE,
    NO_CERTIFICATE_CHAIN_FOUND,
    NO_SIGNING_CERTIFICATE_FOUND,
    NOT_YET_VALID,
    OUT_OF_BOUNDS_NO_POE,
    REVOKED,
    REVOKED_NO_POE,
    SIG_CONSTRAINTS_FAILURE,
    TRY_LATER,
    Check,
    failed,
    passed,
)
from hsm.errors import ASN1_PARSE_ERRORS
from ofd.package import Package
from ofd.verification import examine_ofd
from seals.verification import issuer_text, load_certificate, subject_text

from .copy_validity import ofd_copy_check, pdf_copy_check
from .report import DocumentReport, SignatureReport


class UnsupportedDocument(ValueError):
    """The input is not a document kind this verifier reads (OFD today)."""


@dataclass(frozen=True)
class ProofOfExistence:
    """The document existed, byte for byte, at ``at`` — by a record its signer cannot forge
    (never the document's own claimed signing time)."""

    at: datetime
    source: str

    def as_dict(self) -> dict:
        return {"at": self.at.isoformat(), "source": self.source}


@dataclass(frozen=True)
class TrustContext:
    """What this verifier trusts: anchors, helpful intermediates, and revocation data."""

    anchors: tuple[x509.Certificate, ...] = ()
    intermediates: tuple[x509.Certificate, ...] = ()
    crls: tuple[asn1_crl.CertificateList, ...] = ()
    revocation: RevocationMode = "require"
    #: The seal makers (制章人) whose seals this verifier accepts. A chain to an anchor is not
    #: enough: any certificate under the anchor can sign a SESeal, and only a maker's seal
    #: says truthfully which department holds it and who may use it.
    seal_makers: tuple[x509.Certificate, ...] = ()
    #: The seal registry's history of the seals this verifier's own office made: seal bytes ->
    #: ((time, status), ...). A suspension is not in any CRL; only the registry knows it.
    seal_histories: Mapping[bytes, tuple[tuple[datetime, str], ...]] = field(default_factory=dict)
    #: Where a document's proof of existence comes from: its bytes -> the registry's record of
    #: them, or None (see the module docstring). None here: no registry, no proof.
    registry_proof: Callable[[bytes], ProofOfExistence | None] | None = field(default=None, compare=False)

    def anchor_names(self) -> tuple[str, ...]:
        return tuple(subject_text(a) for a in self.anchors)


_PATH_CODES = {
    path.NO_CERTIFICATE_CHAIN_FOUND: NO_CERTIFICATE_CHAIN_FOUND,
    path.EXPIRED: EXPIRED,
    path.NOT_YET_VALID: NOT_YET_VALID,
    path.REVOKED: REVOKED,
    path.REVOCATION_UNKNOWN: TRY_LATER,
}


def _path_detail(result: path.PathResult) -> str:
    return " <- ".join(subject_text(c) for c in result.path) or "(no path)"


def certificate_checks(
    leaf_der: bytes | None,
    *,
    purpose: Purpose,
    claimed: datetime | None,
    at: datetime,
    context: TrustContext,
    extra: Iterable[bytes] = (),
    prefix: str = "",
    proven: ProofOfExistence | None = None,
) -> list[Check]:
    """``certificate-chain`` and ``revocation`` checks for one certificate (``prefix`` names whose).

    With ``proven`` a certificate revoked or expired since is judged at the proven time first."""
    chain_name, revocation_name = f"{prefix}certificate-chain", f"{prefix}revocation"
    leaf = load_certificate(leaf_der) if leaf_der else None
    if leaf is None:
        why = "no readable certificate to validate"
        return [
            failed(chain_name, why, NO_SIGNING_CERTIFICATE_FOUND),
            failed(revocation_name, why, NO_SIGNING_CERTIFICATE_FOUND),
        ]
    helpers = [c for c in (load_certificate(d) for d in extra) if c is not None and c.dump() != leaf.dump()]

    def run(when: datetime, crl_time: datetime | None = None, at_proven: bool = False) -> path.PathResult:
        return validate_path(
            leaf,
            trust_anchors=context.anchors,
            intermediates=[*context.intermediates, *helpers],
            at=when,
            crls=context.crls,
            purpose=purpose,
            revocation=context.revocation,
            crl_time=crl_time,
            at_proven=at_proven,
        )

    result = run(at)
    subject = subject_text(leaf)
    if result.ok:
        revocation = [c.detail for c in result.checks if c.name == "revocation"]
        return [
            passed(chain_name, f"{_path_detail(result)} at {at.isoformat()}", subject),
            passed(revocation_name, "; ".join(revocation) or "revocation not checked by policy", subject),
        ]
    if proven is not None and result.code in (path.EXPIRED, path.REVOKED) and proven.at < at:
        then = run(proven.at, at, at_proven=True)
        if then.ok:
            why = f"valid at {proven.at.isoformat()}, when {proven.source}"
            return [
                passed(chain_name, f"{_path_detail(then)}; {why}", subject),
                passed(revocation_name, "; ".join(c.detail for c in then.checks if c.name == "revocation")
                       + f" ({result.failed.detail} since: the document is proven older)", subject),
            ]
    if claimed is not None and claimed.tzinfo is None:
        claimed = claimed.replace(tzinfo=UTC)  # a zone-less time, read as UTC as everywhere else
    # Without a claimed time, the earliest the signature can have been made: the certificate's start.
    earliest = claimed if claimed is not None else leaf["tbs_certificate"]["validity"]["not_before"].native
    if result.code in (path.EXPIRED, path.REVOKED) and earliest < at:
        then = run(earliest, at)
        if then.ok:
            code = OUT_OF_BOUNDS_NO_POE if result.code == path.EXPIRED else REVOKED_NO_POE
            when = (
                f"at the claimed signing time {earliest.isoformat()}"
                if claimed is not None
                else "when issued (the signature claims no signing time)"
            )
            detail = f"{result.failed.detail}; valid {when}, and nothing in the document proves the time"
            if code == OUT_OF_BOUNDS_NO_POE:
                return [
                    failed(chain_name, detail, code, result.failed.subject),
                    passed(
                        revocation_name,
                        "; ".join(c.detail for c in then.checks if c.name == "revocation") or "not checked",
                        subject,
                    ),
                ]
            return [
                passed(chain_name, f"{_path_detail(then)} at {earliest.isoformat()}", subject),
                failed(revocation_name, detail, code, result.failed.subject),
            ]
        result = then
    failure = result.failed
    code = _PATH_CODES.get(result.code, CHAIN_CONSTRAINTS_FAILURE)
    detail = f"{failure.name}: {failure.detail}" if failure else result.code
    if failure is not None and failure.name == "revocation":
        return [
            passed(chain_name, _path_detail(result), subject),
            failed(revocation_name, detail, code, failure.subject),
        ]
    return [
        failed(chain_name, detail, code, failure.subject if failure else subject),
        failed(revocation_name, "not checked: the certificate has no valid path", TRY_LATER, subject),
    ]


def seal_maker_check(maker_der: bytes, context: TrustContext) -> Check:
    """The seal's maker must be one this verifier was told to trust, by certificate."""
    maker = load_certificate(maker_der)
    subject = subject_text(maker) if maker is not None else None
    if maker is not None and any(maker.dump() == trusted.dump() for trusted in context.seal_makers):
        return passed(
            "seal-maker-trusted", "the seal maker is in this verifier's list of seal makers", subject
        )
    detail = (
        f"the seal maker is not among the {len(context.seal_makers)} seal maker(s) this verifier trusts"
        if context.seal_makers
        else "this verifier was given no seal makers to trust (--seal-maker)"
    )
    return failed("seal-maker-trusted", detail, CHAIN_CONSTRAINTS_FAILURE, subject)


def seal_status_check(seal_bytes: bytes, claimed: datetime | None, context: TrustContext,
                      proven: ProofOfExistence | None = None) -> Check | None:
    """For a seal of our own registry: was it in use when the signature says it was made, and
    has it been suspended or revoked since (then, as for a revocation, the time is unproven —
    unless ``proven`` shows the document existed while the seal was still active)?"""
    history = context.seal_histories.get(seal_bytes)
    if not history:
        return None
    if proven is not None:
        then = [status for at, status in history if at <= proven.at]
        if then and then[-1] == "active" and (claimed is None or claimed <= proven.at):
            return passed("seal-status", f"in use (active) in the seal registry at {proven.at.isoformat()}, "
                                         f"when {proven.source}")
    then = [status for at, status in history if claimed is None or at <= claimed]
    status_then = then[-1] if then else None
    if claimed is None or status_then != "active":
        return failed(
            "seal-status",
            f"the seal registry shows the seal {status_then or 'not yet in use'} at the claimed signing time",
            SIG_CONSTRAINTS_FAILURE,
        )
    since, now = history[-1]
    if now in ("suspended", "revoked"):
        return failed(
            "seal-status",
            f"the seal is {now} since {since.isoformat()}; nothing in the document proves it was used before",
            REVOKED_NO_POE,
        )
    return passed("seal-status", "in use (active) in the seal registry at the claimed signing time")


def _describe(der: bytes | None) -> dict | None:
    cert = load_certificate(der) if der else None
    if cert is None:
        return None
    tbs = cert["tbs_certificate"]
    out: dict = {"subject": subject_text(cert), "issuer": issuer_text(cert)}
    try:
        out["serial"] = format(tbs["serial_number"].native, "X")
        out["not_before"] = tbs["validity"]["not_before"].native.isoformat()
        out["not_after"] = tbs["validity"]["not_after"].native.isoformat()
    except ASN1_PARSE_ERRORS:
        out["unreadable"] = "serial number or validity cannot be decoded"
    return out


class Evidence(Protocol):
    """What a document room says about one signature: OFD's and PDF's evidence both are this."""

    format: str
    checks: tuple[Check, ...]
    signer_certificate: bytes | None
    certificates: tuple[bytes, ...]
    signing_time: datetime | None


def _signature_report(
    sig_id: str, evidence: Evidence, context: TrustContext, at: datetime,
    proven: ProofOfExistence | None = None,
) -> SignatureReport:
    """The evidence plus what only this verifier decides (chains, makers, registry); whatever
    goes wrong in deciding it is a failed check, never a pass or a crash."""
    try:
        return _judge(sig_id, evidence, context, at, proven)
    except Exception as exc:
        detail = f"the signature could not be judged ({exc.__class__.__name__}: {exc})"
        return SignatureReport(
            id=sig_id,
            format=evidence.format,
            checks=(*evidence.checks, failed("format", detail, FORMAT_FAILURE)),
        )


def _judge(sig_id: str, evidence: Evidence, context: TrustContext, at: datetime,
           proven: ProofOfExistence | None = None) -> SignatureReport:
    checks = list(evidence.checks)
    checks += certificate_checks(
        evidence.signer_certificate,
        purpose=path.SEAL_SIGNING,
        claimed=evidence.signing_time,
        at=at,
        context=context,
        extra=evidence.certificates,
        proven=proven,
    )
    seal = None
    if getattr(evidence, "seal", None) is not None:  # a seal signature (OFD Seal type)
        s = evidence.seal
        maker = load_certificate(s.maker_certificate)
        checks += certificate_checks(
            s.maker_certificate,
            purpose=path.SEAL_MAKING,
            claimed=s.create_date,
            at=at,
            context=context,
            prefix="seal-maker-",
            proven=proven,
        )
        checks.append(seal_maker_check(s.maker_certificate, context))
        status = seal_status_check(s.encoded, evidence.signing_time, context, proven)
        if status is not None:
            checks.append(status)
        seal = {
            "name": s.name,
            "esid": s.es_id,
            "type": s.seal_type,
            "layout": s.layout,
            "header_version": s.header_version,
            "vid": s.vid,
            "maker": subject_text(maker) if maker is not None else None,
            "valid_start": s.valid_start.isoformat(),
            "valid_end": s.valid_end.isoformat(),
            "picture": {
                "type": s.picture.type,
                "width_mm": s.picture.width_mm,
                "height_mm": s.picture.height_mm,
            },
        }
    return SignatureReport(
        id=sig_id,
        format=evidence.format,
        checks=tuple(checks),
        signer=_describe(evidence.signer_certificate),
        seal=seal,
        signing_time=evidence.signing_time,
    )


def registry_proof_of(data: bytes | Package, context: TrustContext) -> ProofOfExistence | None:
    """The registry's proof that ``data`` (the bytes, or an opened package's input bytes)
    existed; None without a registry, without a record, or for a package made in memory."""
    raw = data.raw if isinstance(data, Package) else data
    if context.registry_proof is None or not raw:
        return None
    return context.registry_proof(bytes(raw))


def validate_ofd(
    data: bytes | Package, context: TrustContext, at: datetime, known_certificates: Iterable[bytes] = ()
) -> DocumentReport:
    """Judge an OFD package. Raises :class:`ofd.errors.OfdError` if it cannot be read at all."""
    known = [*known_certificates, *(c.dump() for c in (*context.anchors, *context.intermediates))]
    evidence = examine_ofd(data, known)
    proven = registry_proof_of(data, context)
    signatures = tuple(_signature_report(s.entry.id, s, context, at, proven) for s in evidence.signatures)
    copy = ofd_copy_check(evidence, signatures, at)  # an annotated copy (加注件): still good?
    return DocumentReport(
        kind="ofd",
        validation_time=at,
        signatures=signatures,
        checks=(*evidence.checks, *([copy] if copy else [])),
        trust_anchors=context.anchor_names(),
    )


def validate_pdf(data: bytes, context: TrustContext, at: datetime) -> DocumentReport:
    """Judge a PDF. Raises :class:`pdf.errors.PdfFormatError` if it is not a readable PDF."""
    from pdf.verification import examine_pdf

    evidence = examine_pdf(data)
    proven = registry_proof_of(data, context)
    signatures = tuple(_signature_report(s.field_name, s, context, at, proven) for s in evidence.signatures)
    copy = pdf_copy_check(data, evidence, signatures, at)  # an annotated copy (加注件): still good?
    return DocumentReport(
        kind="pdf",
        validation_time=at,
        signatures=signatures,
        checks=(*evidence.checks, *([copy] if copy else [])),
        trust_anchors=context.anchor_names(),
    )


def validate_document(
    data: bytes, context: TrustContext, at: datetime, known_certificates: Iterable[bytes] = ()
) -> DocumentReport:
    """Any document this verifier reads, by its content (not its name)."""
    if data[:4] == b"PK\x03\x04":
        return validate_ofd(data, context, at, known_certificates)
    if data[:5] == b"%PDF-":
        return validate_pdf(data, context, at)
    raise UnsupportedDocument("neither an OFD package (ZIP) nor a PDF (%PDF-) by its first bytes")


def licence_registry_proof(db) -> Callable[[bytes], ProofOfExistence | None]:
    """A :attr:`TrustContext.registry_proof` reading this home's licence registry: a document
    whose SM3 is a licence's recorded OFD or PDF existed when that licence row was written."""
    from sqlalchemy import or_, select

    from hsm.sm3 import sm3
    from licences.registry import LicenceRecord

    def lookup(data: bytes) -> ProofOfExistence | None:
        digest = sm3(data).hex()
        with db.transaction() as s:
            row = s.execute(select(LicenceRecord.identifier, LicenceRecord.created_at)
                            .where(or_(LicenceRecord.ofd_sm3 == digest, LicenceRecord.pdf_sm3 == digest))
                            .order_by(LicenceRecord.created_at).limit(1)).first()
        if row is None:
            return None
        created = row.created_at if row.created_at.tzinfo else row.created_at.replace(tzinfo=UTC)
        return ProofOfExistence(created, f"the licence registry recorded it as licence {row.identifier}")

    return lookup
