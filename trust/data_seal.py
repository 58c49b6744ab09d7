"""The data service's own seal: what seals a purpose-limited annotated copy (加注件).

The data-reuse service holds exactly one key, the data-service signer's
(:mod:`trust.reuse_signing`). A copy it hands a department must still be a sealed document any
verifier of this home accepts, so the data service has an electronic seal (GB/T 38540 SESeal,
kind ``official``, named ``<organisation>数据共享专用章``) made by the home's seal maker whose
certList names the data-service-signer *certificate* — no second key. It is made on the internal
side, like the certificate (:func:`ensure_data_seal`, run by ``zhengyin reuse signer``), through
the seal office's audited steps (apply → approve → make → activate) and kept in the seal
registry, so the verification trust of the home knows it (seal maker, seal-status). The reuse
service only reads it (:func:`current_data_seal`) and signs with its one key
(:func:`seal_copy`).

The seal follows the certificate: while the current data-service-signer certificate is listed by
an active seal valid for 30 more days, nothing is made; a renewed or rotated certificate gets a
new seal (new esID). Earlier seals stay in the registry as they were, so the copies they sealed
keep verifying.

What the seal verifier asks of the signer certificate (:data:`ca.validation.SEAL_SIGNING`):
digitalSignature or nonRepudiation in keyUsage and no extendedKeyUsage that dedicates it to
time-stamping or OCSP. The ``data-service-signer`` profile has both bits and no EKU: nothing to
change in ca/.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import select

from ca.authority import certificate_of, utc_now
from ca.errors import InvalidRequest
from ca.names import validate_credit_code
from ca.registry import CertificateRecord
from licences.annotated_copy import SealBox
from ofd.sealing import Placement, seal_ofd
from ofd.writer import ofd_package
from pages.model import Document
from pdf.writer import write_pdf
from seals.errors import SealError
from seals.lifecycle import SealStatus
from seals.office import MAX_VALID_DAYS, SigningIdentity
from seals.registry import SealRecord, SealSigner
from seals.seal import read_seal

from .domain import TrustDomain
from .reuse_signing import KEY_LABEL, RENEW_BEFORE, DataSignerMissing
from .signing import seal_pdf

SEAL_KIND = "official"
SEAL_PURPOSE = "数据共享专用章"
#: The development home's data service has no registered organisation: this code (GB 32100
#: check character valid, no real organisation) stands in; production must give its own.
DEVELOPMENT_CREDIT_CODE = "12110000MB00000335"
log = logging.getLogger(__name__)


class DataSealMissing(DataSignerMissing):
    """No usable data-service seal lists the current signer certificate: run `zhengyin reuse signer`."""


def _listing(td: TrustDomain, certificate_id: int) -> list[SealRecord]:
    """Seals whose current version lists this certificate, newest first."""
    with td.db.transaction() as s:
        rows = s.scalars(select(SealRecord).join(SealSigner, SealSigner.seal_id == SealRecord.id)
                         .where(SealSigner.certificate_id == certificate_id)
                         .order_by(SealRecord.id.desc())).unique().all()
    return [r for r in rows if any(c.id == certificate_id for c in r.certificates)]


def data_seals(td: TrustDomain) -> list[SealRecord]:
    """Every seal ever made for the data-service signer key, oldest first."""
    with td.db.transaction() as s:
        rows = s.scalars(select(SealRecord).join(SealSigner, SealSigner.seal_id == SealRecord.id)
                         .join(CertificateRecord, CertificateRecord.id == SealSigner.certificate_id)
                         .where(CertificateRecord.key_label == KEY_LABEL)
                         .order_by(SealRecord.id)).unique().all()
    return list(rows)


def _valid_through(record: SealRecord, now: datetime, margin: timedelta) -> bool:
    """Made, valid now and for ``margin`` more."""
    return (record.der is not None and record.valid_start is not None and record.valid_end is not None
            and record.valid_start <= now and record.valid_end > now + margin)


def _usable(record: SealRecord, now: datetime, margin: timedelta) -> bool:
    return record.status_at(now) is SealStatus.ACTIVE and _valid_through(record, now, margin)


def unfinished_applications(td: TrustDomain) -> list[SealRecord]:
    """Data-service seal applications never made — a `zhengyin reuse signer` that stopped after
    the seal office registered or approved the seal (a crash, a refused make) — oldest first.

    They are recognised as this module applies for them: kind ``official``, one signer, a name
    ending in :data:`SEAL_PURPOSE`, still applied or approved, with no SESeal and no signer
    certificate (a seal of the data service is the only kind that is named so)."""
    with td.db.transaction() as s:
        rows = s.scalars(select(SealRecord).where(
            SealRecord.kind == SEAL_KIND, SealRecord.signer_count == 1, SealRecord.der.is_(None),
            SealRecord.name.endswith(SEAL_PURPOSE),
            SealRecord.status.in_([SealStatus.APPLIED.value, SealStatus.APPROVED.value]))
            .order_by(SealRecord.id)).unique().all()
    return [r for r in rows if not r.signers]


@dataclass(frozen=True)
class DataSealOutcome:
    """What :func:`ensure_data_seal` did: the seal that now lists the signer certificate; whether it
    became active in this run (``made``); the esID of an unfinished application it finished
    instead of applying again (``finished``); those it withdrew as superseded (``superseded``)."""

    record: SealRecord
    made: bool
    finished: str | None = None
    superseded: tuple[str, ...] = ()


def _reaches(record: SealRecord, now: datetime) -> bool:
    """Whether an unfinished application, made now, would give a seal usable now and for
    :data:`RENEW_BEFORE` more (its validity was set from the certificate of its own day)."""
    start = record.valid_from or now
    return start <= now and max(start, now) + timedelta(days=record.valid_days) > now + RENEW_BEFORE


def ensure_data_seal(td: TrustDomain, signer: CertificateRecord, *, credit_code: str | None = None,
                     department: str | None = None, now: datetime | None = None) -> DataSealOutcome:
    """The active data-service seal listing ``signer`` (the current data-service-signer
    certificate), made when none is usable for 30 more days.

    A run that stopped half-way is completed, not repeated: a seal already made for ``signer`` and
    never activated is activated; an application never made (:func:`unfinished_applications`)
    for the same organisation and still long enough is approved if need be and made — so a
    re-run never leaves a second row behind. Unfinished applications that do not fit (another
    organisation was given, or their validity is too short now) are withdrawn (``seal.revoke``,
    reason naming the seal that replaced them): they were never made, so no certificate or
    document depends on them. Every step is the seal office's, audited.

    ``credit_code`` and ``department`` name the data service's organisation on the seal; by
    default those of the latest data-service seal or application, else the signer certificate's
    organisation and — in development only — :data:`DEVELOPMENT_CREDIT_CODE`. DataSealMissing
    explains what to give when neither is known, or the seal office refuses."""
    now = now or utc_now()
    office = td.seals
    listing = _listing(td, signer.id)
    for record in listing:
        if _usable(record, now, RENEW_BEFORE):
            return DataSealOutcome(record, False)
    unfinished = unfinished_applications(td)
    for record in listing:  # made for this certificate, never activated
        if record.status_at(now) is SealStatus.MADE and _valid_through(record, now, RENEW_BEFORE):
            try:
                activated = office.activate(record.es_id)
            except SealError as exc:
                raise DataSealMissing(f"the data service's seal {record.es_id} cannot be activated: "
                                      f"{exc}") from None
            return DataSealOutcome(activated, True, finished=record.es_id,
                                   superseded=_withdraw(td, unfinished, activated.es_id))
    if listing:  # a certificate is listed by one seal only: that one must be brought back, or go
        record = listing[0]
        status = record.status_at(now)
        until = record.valid_end.isoformat() if record.valid_end else "-"
        advice = "resume it (`zhengyin seal resume`), or revoke it" if status is SealStatus.SUSPENDED \
            else "revoke it"
        raise DataSealMissing(
            f"the data-service signer certificate {signer.serial} is listed by seal {record.es_id} "
            f"({status.value}, valid until {until}), which cannot serve for 30 more days, and a "
            f"certificate is listed by one seal only: {advice} — a revoked seal's certificate goes with "
            "it, and the next `zhengyin reuse signer` certifies a new key and makes a new seal")
    latest = max([*data_seals(td), *unfinished], key=lambda r: r.id, default=None)
    if credit_code is None:
        credit_code = latest.credit_code if latest else \
            (None if td.settings.production else DEVELOPMENT_CREDIT_CODE)
    if credit_code is None:
        raise DataSealMissing("the data service's seal needs its organisation's unified social credit code: "
                              "give --credit-code")
    try:
        credit_code = validate_credit_code(credit_code.strip().upper())
    except InvalidRequest as exc:
        raise DataSealMissing(str(exc)) from None
    if department is None:
        organisation = certificate_of(signer).subject.native.get("organization_name")
        department = latest.department if latest else (organisation or "数据共享服务")
    name = f"{department}{SEAL_PURPOSE}"
    resumable = next((r for r in reversed(unfinished) if (r.credit_code, r.name) == (credit_code, name)
                      and _reaches(r, now)), None)
    start = max(now, signer.not_before)
    days = min(MAX_VALID_DAYS, math.floor((signer.not_after - start).total_seconds() / 86400))
    if days < 1:
        raise DataSealMissing(f"the data-service signer certificate {signer.serial} ends within a day: "
                              "renew it first")
    why = f"the data service's seal for signer certificate {signer.serial} (zhengyin reuse signer)"
    try:
        if resumable is None:
            record = office.apply(department, credit_code, SEAL_KIND, name=name, valid_days=days,
                                  valid_from=start)
        else:
            record = resumable
            why += f", finishing the application of {record.applied_at.isoformat()} left unfinished"
        if record.status_at(now) is SealStatus.APPLIED:
            office.approve(record.es_id, reason=why)
        office.make(record.es_id, signer_certificates=[signer], picture_purpose=SEAL_PURPOSE)
        made = office.activate(record.es_id)
    except SealError as exc:
        raise DataSealMissing(f"the data service's seal cannot be made: {exc}") from None
    if resumable is not None:
        td.audit.record("reuse.data_seal_resumed", actor=td.actor, subject=f"seal:{made.es_id}", details={
            "certificate": signer.serial, "applied_at": made.applied_at.isoformat()})
    return DataSealOutcome(made, True, finished=None if resumable is None else made.es_id,
                           superseded=_withdraw(td, [r for r in unfinished if r.id != made.id], made.es_id))


def _withdraw(td: TrustDomain, unfinished: list[SealRecord], replacement: str) -> tuple[str, ...]:
    """Withdraw the unfinished applications that the seal ``replacement`` supersedes (audited)."""
    done = []
    for record in unfinished:
        try:
            td.seals.revoke(record.es_id, f"superseded by the data service's seal {replacement}: this "
                            "application was left unfinished and was never made")
        except SealError as exc:  # moved on meanwhile (e.g. another officer acted on it): keep going
            log.warning("unfinished data-service seal application %s not withdrawn: %s", record.es_id, exc)
            continue
        done.append(record.es_id)
    return tuple(done)


def current_data_seal(td: TrustDomain, signer: CertificateRecord, now: datetime | None = None
                      ) -> SigningIdentity:
    """What the reuse service seals copies with: the active data-service seal listing the
    current signer certificate, the key store's signer for it (the one key) and the chain.
    Read only; DataSealMissing when there is none usable now."""
    now = now or utc_now()
    for record in _listing(td, signer.id):
        if _usable(record, now, timedelta(0)) and record.der is not None:
            return SigningIdentity(seal_der=record.der, seal=read_seal(record.der),
                                   signer=td.keys.signer(KEY_LABEL, signer.key_version),
                                   signer_certificate=signer.der, chain=td.seals.chain_of(signer))
    raise DataSealMissing("there is no active data-service seal for the current signer certificate: run "
                          "`zhengyin reuse signer` on the internal side")


def seal_copy(identity: SigningIdentity, document: Document, fmt: str, box: SealBox, when: datetime) -> bytes:
    """``document`` written as ``fmt`` ("pdf" or "ofd") and sealed with the data service's seal at
    ``box`` — a Seal-type SES signature in OFD, an SM2 CMS signature with the seal's picture in PDF,
    as every seal of this home signs (:mod:`trust.signing`)."""
    placement = Placement(page=box.page, x=box.x, y=box.y, width=box.width, height=box.height)
    if fmt == "pdf":
        return seal_pdf(write_pdf(document), identity, placement, "seal", when)
    if fmt == "ofd":
        return seal_ofd(ofd_package(document), seal=identity.seal_der, signer=identity.signer,
                        signer_certificate=identity.signer_certificate, placement=placement, time=when)
    raise ValueError(f"a copy is pdf or ofd, not {fmt!r}")
