"""The seal office: applies for, approves, makes and administers a department's seals.

It is to seals what :class:`ca.authority.CertificateAuthority` is to certificates: every
move of a seal is one transaction holding the seal row, its ``seal_event`` row and its audit
entry (``seal.apply`` … ``seal.expire``), so a failed audit write leaves the seal where it
was. Making a seal also uses the key store and the CA, which keep their own records: the
signer keys and certificates are created first, and the seal refers to them only once its
own transaction commits; if that fails, the certificates just issued are revoked again
(best effort — each is in the CA registry and its audit trail either way).

The sealing code (ofd/, pdf/) asks :meth:`SealOffice.signing_identity` for everything it
needs to sign, and gets it only for an active seal within its validity whose signer
certificate is itself unrevoked and valid. That is always the seal's current version: a key
rotation (:mod:`seals.rotation`) adds a version, and the verifier's registry view
(:meth:`SealOffice.histories`) knows every version, each in use until the next took over.
"""

from __future__ import annotations

import contextlib
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import and_, func, or_, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from ca.authority import CertificateAuthority, utc_now
from ca.errors import InvalidRequest
from ca.issuer_crls import publish_issuer_crls
from ca.names import MAX_NAME_CHARS, subject_name, validate_credit_code
from ca.profiles import DEPARTMENT_SIGNER, SEAL_MAKER
from ca.registry import CertificateRecord
from hsm.errors import KeyNotFound
from hsm.keystore import KeyState, KeyStore, Signer
from hsm.sm3 import sm3
from ledger.audit import AuditLog
from ledger.database import Database
from ledger.text import record_text

from .lifecycle import (
    LIVE,
    TRANSITIONS,
    SealKind,
    SealNotFound,
    SealNotUsable,
    SealRefused,
    SealRequestError,
    SealStatus,
    area_code_of,
    compose_es_id,
    default_name,
    next_status,
)
from .make import SealContent, make_seal
from .picture import MAX_PURPOSE
from .registry import SealEvent, SealRecord, SealSigner, SealVersion
from .seal import Seal, read_seal

DEFAULT_VALID_DAYS = 3 * 365
#: A seal never outlives its signer certificate, whose profile allows this much.
MAX_VALID_DAYS = DEPARTMENT_SIGNER.validity.days
MAX_SIGNERS = 4
MAX_DEPARTMENT_CHARS = 40  # what fits the upper arc of a seal picture
MAX_HOLDER_CHARS = 20
MAX_REASON_CHARS = 500
#: Why a revoked seal's certificates are revoked, unless the caller knows better (key_compromise).
CERTIFICATE_REVOCATION_REASON = "cessation_of_operation"
#: What the registry says of a seal version once the next one signs (seal-status in reports).
SUPERSEDED = "superseded"
_SERIAL_ATTEMPTS = 5


@dataclass(frozen=True)
class SigningIdentity:
    """What signing with one seal needs: the seal, the signer key and its certificate path."""

    seal_der: bytes
    seal: Seal
    signer: Signer                 # a KeyRef: the private key stays in the key store
    signer_certificate: bytes      # DER, listed in the seal's certList
    chain: list[bytes]             # DER of the issuing CA, then the root

    @property
    def es_id(self) -> str:
        return self.seal.es_id


def signer_label(es_id: str, index: int = 0) -> str:
    """The key-store label of the seal's ``index``-th signer key."""
    return f"seal-{es_id}-signer" + (f"-{index + 1}" if index else "")


def _text(what: str, value: object, limit: int) -> str:
    return record_text(what, value, limit, SealRequestError)


def _reason(value: str | None) -> str | None:
    return None if value is None else _text("reason", value, MAX_REASON_CHARS)


def _aware(moment: datetime | None, what: str) -> datetime | None:
    if moment is not None and moment.tzinfo is None:
        raise SealRequestError(f"the {what} needs a time zone (e.g. 2026-01-02T03:04:05Z)")
    return None if moment is None else moment.astimezone(UTC)


def version_history(moves: list[tuple[datetime, str]], version: int, made_at: datetime,
                    superseded_at: datetime | None) -> tuple[tuple[datetime, str], ...]:
    """The status moves of one seal version, from the seal's moves (oldest first).

    Version 1 has the seal's whole history (applied, approved, made, …). A later version exists
    from its rotation on: its history starts with the rotation's own event. Once superseded,
    the version is no longer in use: from then on its history says ``superseded`` where the
    seal itself is active, and keeps what the seal became otherwise (suspended, revoked), so a
    document carrying it is judged like any other after a suspension or revocation.
    """
    own = moves if version == 1 else [(at, status) for at, status in moves if at >= made_at]
    if superseded_at is None:
        return tuple(own)
    before = [(at, status) for at, status in own if at < superseded_at]
    after = [(at, SUPERSEDED if status == SealStatus.ACTIVE else status)
             for at, status in own if at >= superseded_at]
    then = before[-1][1] if before else SealStatus.ACTIVE
    marker = SUPERSEDED if then == SealStatus.ACTIVE else then  # a suspension stays one
    return (*before, (superseded_at, marker), *after)


def _status_clause(status: SealStatus, now: datetime):
    """SQL for "the seal's effective status at ``now`` is ``status``" (see effective_status)."""
    live = SealRecord.status.in_([s.value for s in LIVE])
    if status is SealStatus.EXPIRED:
        return or_(SealRecord.status == status.value, and_(live, SealRecord.valid_end < now))
    if status in LIVE:
        return and_(SealRecord.status == status.value, SealRecord.valid_end >= now)
    return SealRecord.status == status.value


class SealOffice:
    def __init__(self, db: Database, keys: KeyStore, ca: CertificateAuthority, audit: AuditLog, *,
                 actor: str):
        self.db, self.keys, self.ca, self.audit, self.actor = db, keys, ca, audit, actor

    # ---- lookups ---------------------------------------------------------------------------
    def find(self, es_id: str) -> SealRecord:
        key = es_id.strip() if isinstance(es_id, str) else ""
        with self.db.transaction() as s:
            record = s.scalars(select(SealRecord).where(SealRecord.es_id == key)).first() if key else None
        if record is None:
            raise SealNotFound(str(es_id))
        return record

    def seals(self, department_code: str | None = None, status: str | None = None, *,
              kind: str | None = None, now: datetime | None = None) -> list[SealRecord]:
        """The registry, oldest first; ``status`` is the effective one (expired by the clock too)."""
        now = _aware(now, "time") or utc_now()
        q = select(SealRecord).order_by(SealRecord.id)
        if department_code:
            q = q.where(SealRecord.credit_code == department_code.strip().upper())
        if kind:
            q = q.where(SealRecord.kind == SealKind.parse(kind).value)
        if status:
            try:
                wanted = SealStatus(status.strip().lower())
            except ValueError:
                raise SealRequestError(f"unknown seal status {status!r}; use one of: "
                                       f"{', '.join(s.value for s in SealStatus)}") from None
            q = q.where(_status_clause(wanted, now))
        with self.db.transaction() as s:
            return list(s.scalars(q))

    def events(self, es_id: str) -> list[SealEvent]:
        """The seal's history, oldest first."""
        record = self.find(es_id)
        with self.db.transaction() as s:
            return list(s.scalars(select(SealEvent).where(SealEvent.seal_id == record.id)
                                  .order_by(SealEvent.id)))

    def versions(self, es_id: str) -> list[SealVersion]:
        """Every version of the seal, oldest first (empty for a seal not made yet)."""
        record = self.find(es_id)
        with self.db.transaction() as s:
            return list(s.scalars(select(SealVersion).where(SealVersion.seal_id == record.id)
                                  .order_by(SealVersion.version)))

    def histories(self) -> dict[bytes, tuple[tuple[datetime, str], ...]]:
        """Every version of every made seal with its status moves (oldest first), keyed by the
        version's bytes (what a signature embeds): what a verifier needs to know whether the
        seal was in use at a time. A superseded version reads ``superseded`` from the rotation
        on (see :func:`version_history`)."""
        with self.db.transaction() as s:
            events = s.execute(select(SealEvent.seal_id, SealEvent.at, SealEvent.to_status)
                               .order_by(SealEvent.id)).all()
            versions = s.execute(select(SealVersion.seal_id, SealVersion.version, SealVersion.der,
                                        SealVersion.made_at, SealVersion.superseded_at)).all()
            current = s.execute(select(SealRecord.id, SealRecord.der)
                                .where(SealRecord.der.is_not(None))).all()
        moves: dict[int, list[tuple[datetime, str]]] = {}
        for seal_id, at, status in events:
            moves.setdefault(seal_id, []).append((at, status))
        out = {bytes(der): version_history(moves.get(seal_id, []), version, made_at, superseded_at)
               for seal_id, version, der, made_at, superseded_at in versions}
        for seal_id, der in current:  # a seal row without version rows (written by other means)
            out.setdefault(bytes(der), tuple(moves.get(seal_id, [])))
        return out

    # ---- the acts --------------------------------------------------------------------------
    def apply(self, department: str, credit_code: str, kind: str, *, name: str | None = None,
              holder: str | None = None, valid_days: int = DEFAULT_VALID_DAYS,
              valid_from: datetime | None = None, signers: int = 1) -> SealRecord:
        """Register an application for a seal of ``department`` and give it its seal code.

        ``holder`` is the person whose name a legal representative's seal carries (required
        for that kind, refused for the others). ``valid_from`` defaults to the making time.
        """
        department = _text("department name", department, MAX_DEPARTMENT_CHARS)
        try:
            code = validate_credit_code(str(credit_code).strip().upper())
        except InvalidRequest as exc:
            raise SealRequestError(str(exc)) from None
        chosen = SealKind.parse(kind)
        if chosen is SealKind.LEGAL_REPRESENTATIVE:
            if holder is None:
                raise SealRequestError("a legal representative's seal needs the holder's name (holder=…)")
            holder = _text("holder's name", holder, MAX_HOLDER_CHARS)
        elif holder is not None:
            raise SealRequestError(f"a {chosen.value} seal is the department's; it has no personal holder")
        seal_name = _text("seal name", name if name is not None else default_name(chosen, department, holder),
                          MAX_NAME_CHARS)
        if isinstance(valid_days, bool) or not isinstance(valid_days, int) or \
                not 1 <= valid_days <= MAX_VALID_DAYS:
            raise SealRequestError(f"valid_days must be a whole number of days from 1 to {MAX_VALID_DAYS} "
                                   f"(the signer certificate's longest validity), not {valid_days!r}")
        if isinstance(signers, bool) or not isinstance(signers, int) or not 1 <= signers <= MAX_SIGNERS:
            raise SealRequestError(f"a seal has 1 to {MAX_SIGNERS} signer keys, not {signers!r}")
        valid_from = _aware(valid_from, "validity start")
        area = area_code_of(code)
        for attempt in range(_SERIAL_ATTEMPTS):
            try:
                return self._register(department, code, area, chosen, seal_name, holder, valid_days,
                                      valid_from, signers)
            except IntegrityError:
                if attempt == _SERIAL_ATTEMPTS - 1:
                    raise SealRefused(f"could not allocate a seal code in area {area}: "
                                      "too many concurrent applications; try again") from None
        raise AssertionError("unreachable")

    def _register(self, department: str, code: str, area: str, kind: SealKind, name: str,
                  holder: str | None, valid_days: int, valid_from: datetime | None,
                  signers: int) -> SealRecord:
        now = utc_now()
        with self.db.transaction() as s:
            last = s.scalar(select(func.max(SealRecord.serial)).where(SealRecord.area_code == area))
            serial = (last or 0) + 1
            record = SealRecord(
                es_id=compose_es_id(area, serial), area_code=area, serial=serial, kind=kind.value,
                seal_type=kind.rule.seal_type, name=name, department=department, credit_code=code,
                holder=holder, status=SealStatus.APPLIED.value, status_changed_at=now,
                valid_days=valid_days, valid_from=valid_from, signer_count=signers, applied_at=now)
            s.add(record)
            s.flush()
            self._log(s, record, "apply", None, now, None, {
                "department": department, "credit_code": code, "kind": kind.value,
                "type": kind.rule.seal_type, "name": name, "holder": holder, "valid_days": valid_days,
                "valid_from": valid_from.isoformat() if valid_from else None, "signers": signers})
        return record

    def approve(self, es_id: str, *, reason: str | None = None) -> SealRecord:
        return self._act(es_id, "approve", reason=_reason(reason))

    def make(self, es_id: str, *, signer_certificates: Sequence[CertificateRecord] | None = None,
             picture_purpose: str | None = None) -> SealRecord:
        """Signer key(s), their department-signer certificate(s), the picture and the SESeal.

        The seal is valid from its requested start (or now) for its ``valid_days``, and never
        longer than its signer certificates (which the issuing CA's validity may shorten).

        ``signer_certificates`` makes the seal for certificates (and keys) that exist already —
        a service that must hold exactly one key, such as the data-reuse service, has its seal
        list that key's certificate instead of a key made for the seal. There must be one per
        signer the seal was applied for, each unrevoked, valid from the seal's start and with an
        active key in this store; they are the caller's, so a failed make leaves them as they
        were (the ones this method issues are revoked again), and none may be listed by another
        seal already (the registry links a certificate to one seal). ``picture_purpose`` is the text
        under the star (default: the kind's, see :data:`seals.lifecycle.KIND_RULES`).
        """
        now = utc_now()
        record = self.find(es_id)
        next_status(record.es_id, record.status_at(now), "make")  # before any key is made
        if picture_purpose is not None:  # checked before any key or certificate is made
            picture_purpose = _text("picture purpose", picture_purpose, MAX_PURPOSE)
        maker = self.maker_certificate(now)
        start = max(record.valid_from or now, now)
        end = start + timedelta(days=record.valid_days)
        supplied = self._supplied(record, signer_certificates, start)
        issued: list[CertificateRecord] = []
        try:
            for index in range(record.signer_count if supplied is None else 0):
                label = signer_label(record.es_id, index)
                self._signer_key(label)
                common_name = record.name if index == 0 else f"{record.name} #{index + 1}"
                subject = subject_name(common_name[:MAX_NAME_CHARS], organisation=record.department,
                                       credit_code=record.credit_code)
                issued.append(self.ca.issue(DEPARTMENT_SIGNER.name, subject, key_label=label,
                                            not_before=start, not_after=end))
            signers = issued if supplied is None else supplied
            # A seal never outlives the certificates that vouch for it, its maker's included: a
            # verifier could not tell a seal used after its maker expired from a forged one.
            end = min([end, maker.not_after, *(c.not_after for c in signers)])
            picture = self._picture(record, picture_purpose)
            der = make_seal(SealContent(
                es_id=record.es_id, seal_type=record.seal_type, name=record.name,
                certificates=[c.der for c in signers], create_date=now, valid_start=start, valid_end=end,
                picture_type="png", picture=picture.png, width_mm=picture.width_mm,
                height_mm=picture.height_mm), maker_certificate=maker.der,
                maker=self.keys.signer(maker.key_label, maker.key_version))
            with self.db.transaction() as s:
                locked = self._locked(s, record.es_id)
                fingerprint = sm3(der).hex()
                locked.der, locked.fingerprint, locked.made_at = der, fingerprint, now
                locked.valid_start, locked.valid_end = start, end
                locked.picture_type = "png"
                locked.width_mm, locked.height_mm = picture.width_mm, picture.height_mm
                s.add(SealVersion(seal_id=locked.id, version=1, der=der, fingerprint=fingerprint, made_at=now,
                                  valid_start=start, valid_end=end))
                for position, certificate in enumerate(signers):
                    s.add(SealSigner(seal_id=locked.id, version=1, position=position,
                                     certificate_id=certificate.id))
                self._move(s, locked, "make", now, None, {
                    "fingerprint_sm3": fingerprint, "valid_start": start.isoformat(),
                    "valid_end": end.isoformat(), "maker_serial": maker.serial,
                    "certificates": [c.serial for c in signers],
                    "keys": [f"{c.key_label}/v{c.key_version}" for c in signers],
                    "certificates_supplied": supplied is not None,
                    "signer_profiles": sorted({c.profile for c in signers})})
        except BaseException:
            self._withdraw(issued)
            raise
        return self.find(record.es_id)

    def _supplied(self, record: SealRecord, certificates: Sequence[CertificateRecord] | None,
                  start: datetime) -> list[CertificateRecord] | None:
        """The caller's signer certificates for :meth:`make`, checked (SealRefused says why not)."""
        if certificates is None:
            return None
        current = [self.ca.find(c.serial) for c in certificates]  # the CA's word now
        if len(current) != record.signer_count:
            raise SealRefused(f"seal {record.es_id} was applied for {record.signer_count} signer(s), "
                              f"but {len(current)} certificate(s) were given")
        if len({c.id for c in current}) != len(current):
            raise SealRefused(f"seal {record.es_id}: the same signer certificate was given twice")
        with self.db.transaction() as s:
            taken = s.execute(select(SealSigner.certificate_id, SealRecord.es_id)
                              .join(SealRecord, SealRecord.id == SealSigner.seal_id)
                              .where(SealSigner.certificate_id.in_([c.id for c in current]))).first()
        if taken is not None:  # the registry lists a certificate in one seal only
            serial = next(c.serial for c in current if c.id == taken[0])
            raise SealRefused(f"signer certificate {serial} is already listed by seal {taken[1]}: a "
                              "certificate vouches for one seal only")
        for certificate in current:
            problem = self._signer_problem(certificate, start)
            if problem is not None:
                raise SealRefused(f"seal {record.es_id} cannot list signer certificate "
                                  f"{certificate.serial}: {problem[1]}")
        return current

    def activate(self, es_id: str) -> SealRecord:
        return self._act(es_id, "activate")

    def suspend(self, es_id: str, reason: str) -> SealRecord:
        """Stop signing with the seal for now; :meth:`resume` undoes it."""
        return self._act(es_id, "suspend", reason=_reason(reason))

    def resume(self, es_id: str, reason: str | None = None) -> SealRecord:
        return self._act(es_id, "resume", reason=_reason(reason))

    def revoke(self, es_id: str, reason: str, *,
               certificate_reason: str = CERTIFICATE_REVOCATION_REASON) -> SealRecord:
        """Withdraw the seal for good, and revoke its signer certificates through the CA —
        those of every version: a superseded version's certificate kept valid for the documents
        it signed goes with the seal.

        The certificates go first: should the seal's own transaction then fail, the seal can
        no longer sign (its certificates are revoked) and revoking it again completes the act.
        ``certificate_reason`` is an RFC 5280 reason; give ``key_compromise`` after a compromise.
        """
        reason = _reason(reason)
        now = utc_now()
        record = self.find(es_id)
        next_status(record.es_id, record.status_at(now), "revoke")
        revoked_any = False
        for certificate in record.all_certificates:
            if not certificate.revoked:
                self.ca.revoke(certificate.serial, certificate_reason)
                revoked_any = True
        if revoked_any:  # relying parties learn it from the next CRL: publish it now
            publish_issuer_crls(self.ca, record.all_certificates)  # each issuing CA key's CRL
        return self._act(record.es_id, "revoke", reason=reason,
                         details={"certificate_reason": certificate_reason,
                                  "certificates": [c.serial for c in record.all_certificates]})

    def expire_due(self, now: datetime | None = None) -> list[SealRecord]:
        """Record as expired every made seal whose validity ended before ``now`` (a sweep)."""
        now = _aware(now, "time") or utc_now()
        with self.db.transaction() as s:
            due = list(s.scalars(select(SealRecord.es_id).where(
                SealRecord.status.in_([st.value for st in LIVE]), SealRecord.valid_end < now)
                .order_by(SealRecord.id)))
        return [self._act(es_id, "expire", now=now) for es_id in due]

    # ---- signing ---------------------------------------------------------------------------
    def signing_identity(self, es_id: str, at: datetime | None = None) -> SigningIdentity:
        """The seal and a signer for it, if the seal may sign at ``at`` (default now)."""
        now = utc_now()
        at = _aware(at, "signing time") or now
        record = self.find(es_id)
        refusals = {SealStatus.REVOKED: "revoked", SealStatus.EXPIRED: "expired",
                    SealStatus.SUSPENDED: "suspended"}
        status = SealStatus(record.status)
        if status in refusals:
            why = f" ({record.status_reason})" if record.status_reason else ""
            raise SealNotUsable(record.es_id, refusals[status], f"the seal was {status.value} on "
                                f"{record.status_changed_at:%Y-%m-%d %H:%M} UTC{why}")
        if status is not SealStatus.ACTIVE:
            raise SealNotUsable(record.es_id, "not-active", f"the seal is {status.value}, not yet active")
        assert record.valid_start is not None and record.valid_end is not None and record.der is not None
        if at < record.valid_start:
            raise SealNotUsable(record.es_id, "not-yet-valid",
                                f"it is valid from {record.valid_start.isoformat()}, after {at.isoformat()}")
        if record.valid_end < max(at, now):
            raise SealNotUsable(record.es_id, "expired", f"its validity ended {record.valid_end.isoformat()}")
        problems: list[tuple[str, str]] = []
        for certificate in record.certificates:
            problem = self._signer_problem(certificate, at)
            if problem is not None:
                problems.append(problem)
                continue
            return SigningIdentity(
                seal_der=record.der, seal=read_seal(record.der),
                signer=self.keys.signer(certificate.key_label, certificate.key_version),
                signer_certificate=certificate.der, chain=self.chain_of(certificate))
        reason, detail = problems[0] if problems else ("no-signer", "it lists no signer certificate")
        raise SealNotUsable(record.es_id, reason, detail)

    def _signer_problem(self, certificate: CertificateRecord, at: datetime) -> tuple[str, str] | None:
        current = self.ca.find(certificate.serial)  # the CA's word now, not the copy loaded with the seal
        if current.revoked:
            return "certificate-revoked", (f"signer certificate {current.serial} was revoked on "
                                           f"{current.revoked_at:%Y-%m-%d} ({current.revocation_reason})")
        if at < current.not_before:
            return "certificate-not-yet-valid", (f"signer certificate {current.serial} is valid from "
                                                 f"{current.not_before.isoformat()}")
        if at > current.not_after or utc_now() > current.not_after:
            return "certificate-expired", (f"signer certificate {current.serial} expired "
                                           f"{current.not_after.isoformat()}")
        if current.key_label is None or current.key_version is None:
            return "key-unavailable", f"signer certificate {current.serial} has no key in this key store"
        try:
            versions = {v.version: v for v in self.keys.versions(current.key_label)}
        except KeyNotFound:
            versions = {}
        version = versions.get(current.key_version)
        if version is None or version.state is not KeyState.ACTIVE:
            state = version.state.value if version else "missing"
            return "key-unavailable", (f"signer key {current.key_label}/v{current.key_version} is {state}")
        return None

    def chain_of(self, certificate: CertificateRecord) -> list[bytes]:
        """The DER of the CA certificates above ``certificate`` (its issuing CA, then the root),
        from the CA registry: what a signature embeds beside the signer certificate."""
        chain: list[bytes] = []
        with self.db.transaction() as s:
            issuer_id = certificate.issuer_id
            while issuer_id is not None and len(chain) < 4:
                issuer = s.get(CertificateRecord, issuer_id)
                if issuer is None:
                    break
                chain.append(issuer.der)
                issuer_id = issuer.issuer_id if issuer.issuer_id != issuer.id else None
        return chain

    # ---- moving a seal ---------------------------------------------------------------------
    def _locked(self, s: Session, es_id: str) -> SealRecord:
        record = s.scalars(select(SealRecord).where(SealRecord.es_id == es_id).with_for_update()).first()
        if record is None:
            raise SealNotFound(es_id)
        return record

    def _act(self, es_id: str, act: str, *, reason: str | None = None, details: dict[str, Any] | None = None,
             now: datetime | None = None) -> SealRecord:
        with self.db.transaction() as s:
            record = self._locked(s, self.find(es_id).es_id)
            self._move(s, record, act, now or utc_now(), reason, details or {})
        return record

    def _move(self, s: Session, record: SealRecord, act: str, now: datetime, reason: str | None,
              details: dict[str, Any]) -> None:
        """Check ``act`` against the seal's status at ``now``, then record it (event + audit)."""
        current = record.status_at(now)
        if act == "expire":
            if current is not SealStatus.EXPIRED or record.status == SealStatus.EXPIRED:
                raise SealRefused(f"seal {record.es_id} is {record.status} and valid until "
                                  f"{record.valid_end}; it cannot expire at {now.isoformat()}")
            current = SealStatus(record.status)
            reason = reason or f"validity ended {record.valid_end.isoformat()}"
        target = next_status(record.es_id, current, act)
        if current is SealStatus.EXPIRED and record.status != SealStatus.EXPIRED:
            # The clock expired it and no sweep recorded that yet: record it first, so the
            # seal's history has no gap.
            self._move(s, record, "expire", now, None, {})
        previous = record.status
        record.status, record.status_changed_at, record.status_reason = target.value, utc_now(), reason
        self._log(s, record, act, previous, record.status_changed_at, reason, details)

    def _log(self, s: Session, record: SealRecord, act: str, previous: str | None, at: datetime,
             reason: str | None, details: dict[str, Any]) -> None:
        assert act == "apply" or act in TRANSITIONS
        s.add(SealEvent(seal_id=record.id, from_status=previous, to_status=record.status, actor=self.actor,
                        at=at, reason=reason))
        s.flush()
        self.audit.record(f"seal.{act}", actor=self.actor, subject=f"seal:{record.es_id}", details={
            "from": previous, "to": record.status, "reason": reason, **details}, session=s)

    # ---- making ----------------------------------------------------------------------------
    def maker_certificate(self, now: datetime) -> CertificateRecord:
        """The valid seal-maker certificate with a key in this store that lasts longest."""
        candidates = [c for c in self.ca.certificates(profile=SEAL_MAKER.name, include_revoked=False)
                      if c.key_label and c.not_before <= now <= c.not_after]
        if not candidates:
            raise SealRefused("there is no valid seal-maker certificate with a key in this key store: "
                              "issue one (`zhengyin ca issue --profile seal-maker --key LABEL …`) "
                              "or run `zhengyin init`")
        return max(candidates, key=lambda c: c.not_after)  # the one that lasts longest

    def _signer_key(self, label: str) -> None:
        """Create the signer key, or keep the one an earlier, failed make left behind."""
        try:
            self.keys.versions(label)
        except KeyNotFound:
            self.keys.generate(label)

    @staticmethod
    def _picture(record: SealRecord, purpose: str | None = None):
        from .picture import seal_image

        rule = record.seal_kind.rule
        text = record.holder if record.seal_kind is SealKind.LEGAL_REPRESENTATIVE else record.department
        return seal_image(text, rule.purpose if purpose is None else purpose, shape=rule.shape,
                          code=record.es_id)

    def _withdraw(self, issued: list[CertificateRecord]) -> None:
        """Revoke certificates a failed make issued, so no unlisted signer certificate stays valid."""
        for certificate in issued:
            with contextlib.suppress(Exception):
                self.ca.revoke(certificate.serial, CERTIFICATE_REVOCATION_REASON)
