"""Compromise response: a seal's signer key has leaked — contain it, then re-issue what it signed.

Declaring the compromise (:func:`declare_compromise`, under dual control: trust/approvals.py)
revokes the seal's signer certificates — of every seal version, since a thief holding an old
key version could otherwise sign a backdated document under its still valid certificate —
with reason keyCompromise and the invalidity date ``since`` (the time from which the key is
known or suspected to be in other hands), and publishes at once the CRL of each CA key that
issued one of them (ca.issuer_crls). From then on:

* the seal cannot sign (its certificates are revoked) until it is re-keyed;
* a document signed with the key fails verification (REVOKED) — unless this service's licence
  registry proves it existed before ``since`` (trust/validation.py, proof of existence): the
  licences issued before the compromise keep their signatures, those issued at or after it do
  not, and neither does anything a thief signs (the registry does not know it, and a signing
  time written into a document by whoever holds the key proves nothing).

:func:`affected_licences` lists the licences the compromised key signed at or after ``since``
(by the registry's record of when each was issued, and the signer certificate in its OFD).
:func:`reissue_affected` re-keys the seal (seals.rotation ``rotate_seal``: new key version,
new certificate, new seal version; the old key versions disabled) and issues each live
affected licence again as its next version (LicenceDesk.change, reason "re-issued after key
compromise"), linked to the old one,
reporting every licence's outcome; running it again skips what is already re-issued.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import select

from ca.issuer_crls import publish_issuer_crls
from ca.registry import CertificateRecord
from licences.lifecycle import LicenceStateError
from licences.registry import LicenceRecord
from seals.office import MAX_SIGNERS, signer_label
from seals.rotation import RotationIncomplete, rotate_seal

from .domain import TrustDomain

REISSUE_REASON = "re-issued after key compromise"
COMPROMISE_REASON = "key_compromise"


class CompromiseError(Exception):
    """The compromise cannot be declared or handled as asked (exit code: refused)."""


@dataclass(frozen=True)
class AffectedLicence:
    identifier: str
    type_code: str
    issued_at: datetime
    status: str
    superseded_by: str | None

    def as_dict(self) -> dict[str, Any]:
        return asdict(self) | {"issued_at": self.issued_at.isoformat()}


@dataclass(frozen=True)
class CompromiseReport:
    es_id: str
    since: datetime
    revoked: tuple[str, ...]            # certificate serials revoked now
    already_revoked: tuple[str, ...]    # listed by the seal, revoked before (reason kept)
    crl_number: int | None              # of the last CRL published (one per issuing CA key)
    affected: tuple[AffectedLicence, ...]
    kept: tuple[str, ...] = ()          # certificates of key versions made since the request

    def as_dict(self) -> dict[str, Any]:
        return {"esid": self.es_id, "since": self.since.isoformat(), "revoked": list(self.revoked),
                "already_revoked": list(self.already_revoked), "crl_number": self.crl_number,
                "kept": list(self.kept), "affected": [a.as_dict() for a in self.affected]}


@dataclass
class ReissueReport:
    es_id: str
    since: datetime
    rotation: dict[str, Any] | None = None
    reissued: list[dict[str, str]] = field(default_factory=list)   # {old, new}
    skipped: list[dict[str, str]] = field(default_factory=list)    # {identifier, reason}
    failed: list[dict[str, str]] = field(default_factory=list)     # {identifier, error}
    warnings: list[str] = field(default_factory=list)               # what is left for an officer

    @property
    def complete(self) -> bool:
        return not self.failed

    def as_dict(self) -> dict[str, Any]:
        return {"esid": self.es_id, "since": self.since.isoformat(), "rotation": self.rotation,
                "reissued": self.reissued, "skipped": self.skipped, "failed": self.failed,
                "warnings": self.warnings, "complete": self.complete}


def _aware(moment: datetime, what: str) -> datetime:
    if not isinstance(moment, datetime) or moment.tzinfo is None:
        raise CompromiseError(f"{what} needs a time zone (e.g. 2026-01-02T03:04:05Z)")
    return moment.astimezone(UTC)


def seal_certificates(domain: TrustDomain, es_id: str) -> list[CertificateRecord]:
    """Every signer certificate the CA issued for the seal's signer keys, any version, oldest first."""
    labels = [signer_label(es_id, i) for i in range(MAX_SIGNERS)]
    with domain.db.transaction() as s:
        return list(s.scalars(select(CertificateRecord).where(CertificateRecord.key_label.in_(labels))
                              .order_by(CertificateRecord.id)))


def declared_certificates(domain: TrustDomain, es_id: str, since: datetime) -> list[CertificateRecord]:
    """The seal's certificates already revoked for a compromise with invalidity date ``since``."""
    since = _aware(since, "the compromise time")
    return [c for c in seal_certificates(domain, es_id)
            if c.revoked and c.revocation_reason == COMPROMISE_REASON and c.invalidity_date is not None
            and c.invalidity_date.astimezone(UTC) == since]


def _contained(certificate: CertificateRecord, since: datetime) -> bool:
    """Revoked for a key compromise from ``since`` or earlier: nothing it signed at or after
    ``since`` passes without the registry's proof that it existed before."""
    invalid = certificate.invalidity_date
    return certificate.revoked and certificate.revocation_reason == COMPROMISE_REASON and \
        invalid is not None and invalid.astimezone(UTC) <= since


def check_compromise(domain: TrustDomain, params: dict[str, Any]) -> tuple[str, dict[str, Any]]:
    """Check a request to declare ``params['es_id']`` compromised since ``params['since']``
    (for trust.approvals): a made seal with a signer certificate still unrevoked, a past time.

    The request pins the certificates to revoke: every unrevoked certificate of the seal's
    signer keys now, of every seal version (``serials``). Should the seal be rotated before
    the second officer approves, the approval still revokes these — the leaked ones — and
    not merely what the seal lists by then."""
    from .approvals import text_param, time_param

    record = domain.seals.find(text_param(params, "es_id", 14))  # SealNotFound
    since = time_param(params.get("since"), "since")
    if since > datetime.now(UTC):
        raise CompromiseError("the compromise time cannot be in the future")
    live = [c.serial for c in seal_certificates(domain, record.es_id) if not c.revoked]
    if not live:
        raise CompromiseError(f"seal {record.es_id} has no unrevoked signer certificate: "
                              "nothing is left to revoke (re-key it, or list with --since the declared time)")
    return f"seal:{record.es_id}", {"es_id": record.es_id, "since": since.isoformat(), "serials": live}


def declare_compromise(domain: TrustDomain, es_id: str, since: datetime,
                       serials: Sequence[str] | None = None) -> CompromiseReport:
    """Revoke the leaked certificates (keyCompromise, invalidity date ``since``), publish the
    CRL of every CA key that issued one, audit it, and list the affected licences. Runs as an
    approved request.

    ``serials`` are the certificates the request pinned (default: every unrevoked certificate
    of the seal's signer keys now). Revoked are those and every other unrevoked certificate of
    the same key versions (the key is what leaked, whichever certificate vouches for it); a
    certificate of a key version made since the request (a rotation meanwhile) is kept. A
    pinned certificate revoked meanwhile otherwise than for a compromise from ``since`` (say
    as superseded from a later rotation) would leave the leaked key trusted for what it signs
    in between: the rest is revoked all the same, and the declaration fails, saying so.
    """
    since = _aware(since, "the compromise time")
    record = domain.seals.find(es_id)
    of_seal = seal_certificates(domain, record.es_id)
    if serials is None:
        serials = [c.serial for c in of_seal if not c.revoked]
    by_serial = {c.serial: c for c in of_seal}
    pinned = []
    for serial in serials:
        certificate = by_serial.get(domain.ca.find(serial).serial)  # CertificateNotFound
        if certificate is None:
            raise CompromiseError(f"certificate {serial} is not one of seal {record.es_id}'s signer "
                                  "certificates")
        pinned.append(certificate)
    leaked_keys = {(c.key_label, c.key_version) for c in pinned}
    targets = [c for c in of_seal if not c.revoked and (c.key_label, c.key_version) in leaked_keys]
    kept = [c.serial for c in of_seal if not c.revoked and (c.key_label, c.key_version) not in leaked_keys]
    weak = [c for c in pinned if c.revoked and not _contained(c, since)]
    before = [c.serial for c in pinned if c.revoked]
    revoked = [domain.ca.revoke(c.serial, COMPROMISE_REASON, invalidity_date=since) for c in targets]
    if not revoked and not weak:
        raise CompromiseError(f"seal {record.es_id} has no unrevoked signer certificate left to revoke")
    crls = publish_issuer_crls(domain.ca, revoked)
    affected = affected_licences(domain, record.es_id, since)
    details = {"since": since.isoformat(), "revoked": [c.serial for c in revoked], "already_revoked": before,
               "kept": kept, "crl_numbers": [c.number for c in crls], "affected": len(affected),
               "not_contained": [c.serial for c in weak]}
    domain.audit.record("seal.compromise", actor=domain.actor, subject=f"seal:{record.es_id}",
                        details=details)
    if weak:
        listed = ", ".join(f"{c.serial} ({c.revocation_reason} from "
                           f"{(c.invalidity_date or c.revoked_at).isoformat()})" for c in weak)
        raise CompromiseError(f"seal {record.es_id}: certificate(s) {listed} were revoked meanwhile, "
                              f"since {since.isoformat()}, and a revocation cannot be redone: "
                              "what the leaked key signed before that revocation still passes (the other "
                              "certificates are revoked now); check those documents by hand")
    return CompromiseReport(record.es_id, since, tuple(c.serial for c in revoked), tuple(before),
                            crls[-1].number if crls else None, tuple(affected), tuple(kept))


def affected_licences(domain: TrustDomain, es_id: str, since: datetime) -> list[AffectedLicence]:
    """The licences the seal's compromised key signed at or after ``since``, oldest first.

    Candidates are the seal's department's licences the registry recorded at or after
    ``since``; a candidate is affected when its OFD's signer certificate is one the compromise
    revoked (another seal of the department, or the seal after re-keying, is not affected)."""
    from ofd.errors import OfdError
    from ofd.verification import examine_ofd

    since = _aware(since, "the compromise time")
    record = domain.seals.find(es_id)
    compromised = {c.der for c in declared_certificates(domain, record.es_id, since)}
    if not compromised:
        return []
    with domain.db.transaction() as s:
        candidates = list(s.scalars(select(LicenceRecord).where(
            LicenceRecord.issuer_code == record.credit_code, LicenceRecord.created_at >= since)
            .order_by(LicenceRecord.created_at, LicenceRecord.id)))
    out = []
    for licence in candidates:
        try:
            evidence = examine_ofd(domain.licences.store.get(licence.ofd_sm3))
        except OfdError:
            continue  # not readable as OFD: the document store's own checks report it
        if any(sig.signer_certificate in compromised for sig in evidence.signatures):
            out.append(AffectedLicence(licence.identifier, licence.type_code, licence.created_at,
                                       licence.status, licence.superseded_by))
    return out


def _rotation_dict(rotation: Any) -> dict[str, Any]:
    if hasattr(rotation, "as_dict"):
        return rotation.as_dict()
    try:
        return {k: (v.isoformat() if isinstance(v, datetime) else v) for k, v in asdict(rotation).items()
                if isinstance(v, str | int | float | bool | datetime | None)}
    except TypeError:
        return {"rotated": True}


Progress = Callable[[int, int, str, str], None]  # done, total, identifier, outcome


def reissue_affected(domain: TrustDomain, es_id: str, since: datetime, *,
                     progress: Progress | None = None) -> ReissueReport:
    """Re-key the seal if it still lists a compromised certificate, then issue every live
    affected licence again as its next version; each licence's outcome is in the report."""
    since = _aware(since, "the compromise time")
    record = domain.seals.find(es_id)
    declared = declared_certificates(domain, record.es_id, since)
    if not declared:
        raise CompromiseError(f"no compromise of seal {record.es_id} since {since.isoformat()} has been "
                              "declared (and approved) yet: run `zhengyin keys compromised` without "
                              "--reissue first")
    report = ReissueReport(record.es_id, since)
    compromised = {c.serial for c in declared}
    if any(c.serial in compromised or c.revoked for c in record.certificates):
        try:
            rotation = rotate_seal(domain.seals, record.es_id,
                                   reason=f"key compromised since {since.isoformat()}")
        except RotationIncomplete as exc:  # the new version signs: re-issue, and say what is left
            rotation = exc.rotation
            report.warnings.append(str(exc))
        report.rotation = _rotation_dict(rotation)
    affected = affected_licences(domain, record.es_id, since)
    desk = domain.licence_desk
    for done, licence in enumerate(affected, 1):
        outcome = _reissue_one(domain, desk, licence, report)
        if progress is not None:
            progress(done, len(affected), licence.identifier, outcome)
    domain.audit.record("seal.compromise_reissue", actor=domain.actor, subject=f"seal:{record.es_id}",
                        details={"since": since.isoformat(), "reissued": len(report.reissued),
                                 "skipped": len(report.skipped), "failed": len(report.failed),
                                 "rotation": report.rotation is not None})
    return report


def _reissue_one(domain: TrustDomain, desk: Any, licence: AffectedLicence, report: ReissueReport) -> str:
    current = domain.licences.find(licence.identifier)
    if current.superseded_by:
        report.skipped.append({"identifier": licence.identifier,
                               "reason": f"already superseded by {current.superseded_by}"})
        return "skipped"
    try:
        issued = desk.change(current.identifier, current.data, issuer_code=current.issuer_code,
                             reason=REISSUE_REASON)
    except Exception as exc:  # one licence's failure is its outcome; the others still go
        # A licence that is not valid now (suspended, revoked, expired…) is not re-issued as valid.
        kind = "skipped" if isinstance(exc, LicenceStateError) else "failed"
        entry = {"identifier": licence.identifier, ("reason" if kind == "skipped" else "error"): str(exc)}
        (report.skipped if kind == "skipped" else report.failed).append(entry)
        return kind
    report.reissued.append({"old": licence.identifier, "new": issued.identifier})
    return "reissued"
