"""The life of an issued licence, and the licence library (证照库) that records it.

A licence is issued valid (01); it may be suspended (02) and resumed, revoked (07, 吊销) or
cancelled (03, 撤销) — both final —, deregistered (04, 注销), transferred out (06, 迁出), and
it expires (05) when its validity ends. :data:`TRANSITIONS` is the whole rule. Expiry is a
fact of the clock: a licence past the last day of its validity (China time, the day itself
included) *is* expired (:func:`effective_status`) whether or not the sweep
:meth:`LicenceLibrary.expire_due` has recorded it yet, and an act on it records the expiry first.

Change and renewal
------------------
Documents are never rewritten: a change (变更) or renewal (换证/延续) issues a new licence
version — the next version of the same identifier, whose metadata names the old one as
``previous_identifier`` — and the old version becomes *superseded*. DESIGN.md has no code
for that, so a superseded licence is status 99 (other), with ``superseded_by`` naming its
successor and the reason "superseded by <identifier>". Not 01 with a link: a verifier that
reads only the status must not call a replaced licence valid. A licence is superseded once
(``previous_identifier`` is unique), from valid only for a change, and from valid or expired
for a renewal; revocation and cancellation can still end a superseded version (fraud found later).

Every act is one transaction holding the licence row, its ``licence_event`` row and its audit
entry (``licence.issue`` … ``licence.expire``), so a failed audit write leaves the licence where
it was. The status moves by compare-and-set (``UPDATE … WHERE status = <as read>``), which
keeps two concurrent acts from both succeeding on SQLite too, where row locks do not exist.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Mapping
from datetime import UTC, date, datetime, time, timedelta, timezone
from typing import Any

from sqlalchemy import and_, or_, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from ledger.audit import AuditLog
from ledger.database import Database
from ledger.text import record_text

from .identifiers import LicenceIdentifier
from .metadata import LicenceMetadata, LicenceStatus
from .registry import LicenceEvent, LicenceRecord, allocate_serials
from .storage import DocumentStore

#: Licence validity is in days of China Standard Time (no daylight saving since 1991).
CHINA_TIME = timezone(timedelta(hours=8), "CST")
MAX_REASON_CHARS = 500
MAX_SOURCE_ID_CHARS = 200
MAX_PAGE_SIZE = 500

S = LicenceStatus
#: States whose validity end, once passed, makes the licence expired.
LIVE = frozenset({S.VALID, S.SUSPENDED})
#: States nothing leads out of.
FINAL = frozenset({S.CANCELLED, S.REVOKED})
SUPERSEDED = S.OTHER

#: act -> (states it may start from, state it leads to). issue starts from nothing.
TRANSITIONS: dict[str, tuple[frozenset[LicenceStatus], LicenceStatus]] = {
    "suspend": (frozenset({S.VALID}), S.SUSPENDED),
    "resume": (frozenset({S.SUSPENDED}), S.VALID),
    "revoke": (frozenset(S) - FINAL, S.REVOKED),
    "cancel": (frozenset(S) - FINAL, S.CANCELLED),
    "deregister": (frozenset({S.VALID, S.SUSPENDED, S.EXPIRED}), S.DEREGISTERED),
    "transfer": (frozenset({S.VALID}), S.TRANSFERRED),
    "expire": (LIVE, S.EXPIRED),
    "change": (frozenset({S.VALID}), SUPERSEDED),
    "renew": (frozenset({S.VALID, S.EXPIRED}), SUPERSEDED),
}
_DOCUMENT_MAGIC = {"ofd": (b"PK\x03\x04", "an OFD package (a zip file)"), "pdf": (b"%PDF-", "a PDF file")}


class LicenceError(Exception):
    """Base class of the licence library's errors."""


class LicenceRequestError(LicenceError, ValueError):
    """A request about a licence is malformed (bad reason, filter, metadata for the act, …)."""


class LicenceNotFound(LicenceError, LookupError):
    def __init__(self, identifier: str):
        self.identifier = identifier
        super().__init__(f"no licence {identifier} is in the licence library")


class LicenceExists(LicenceError):
    """The licence (or its source record, or a successor of its predecessor) is already recorded."""

    def __init__(self, field: str, value: str, existing: str | None):
        self.field, self.value, self.existing = field, value, existing
        where = f" (licence {existing})" if existing and existing != value else ""
        super().__init__(f"a licence with {field} {value} is already in the licence library{where}")


class LicenceStateError(LicenceError):
    """An act the licence's current status does not allow (e.g. resuming a revoked licence)."""

    def __init__(self, identifier: str, status: str, act: str):
        self.identifier, self.status, self.act = identifier, str(status), act
        allowed = ", ".join(a for a, (sources, _) in TRANSITIONS.items() if status in sources) or "none"
        super().__init__(f"licence {identifier} is {_describe(status)}: it cannot {act} "
                         f"(acts allowed now: {allowed})")


def _describe(status: str) -> str:
    try:
        return f"{status} ({LicenceStatus(status).name.lower()})"
    except ValueError:
        return repr(status)


def next_status(identifier: str, status: str, act: str) -> LicenceStatus:
    """The status ``act`` leads to from ``status``; LicenceStateError when it is not allowed."""
    sources, target = TRANSITIONS[act]
    if status not in sources:
        raise LicenceStateError(identifier, status, act)
    return target


def china_date(moment: datetime) -> date:
    """The calendar day in China at ``moment`` (aware)."""
    return moment.astimezone(CHINA_TIME).date()


def expiry_instant(valid_until: date) -> datetime:
    """The first moment a licence valid until ``valid_until`` (inclusive) is no longer valid."""
    return datetime.combine(valid_until + timedelta(days=1), time(0), CHINA_TIME).astimezone(UTC)


def effective_status(status: str, valid_until: date | None, now: datetime) -> LicenceStatus:
    """The recorded status, or expired once ``now`` is past a live licence's last valid day."""
    if status in LIVE and valid_until is not None and now >= expiry_instant(valid_until):
        return S.EXPIRED
    return LicenceStatus(status)


def parse_status(value: str | LicenceStatus) -> LicenceStatus:
    """A status from its code (``"07"``) or name (``"revoked"``)."""
    text = str(value).strip()
    try:
        return LicenceStatus(text)
    except ValueError:
        pass
    try:
        return LicenceStatus[text.upper()]
    except KeyError:
        allowed = ", ".join(f"{s.value} ({s.name.lower()})" for s in LicenceStatus)
        raise LicenceRequestError(f"unknown licence status {value!r}; use one of: {allowed}") from None


def _identifier(value: str | LicenceIdentifier) -> str:
    """The canonical text of an identifier; IdentifierError says what is wrong with a bad one."""
    if isinstance(value, LicenceIdentifier):
        return value.text
    return LicenceIdentifier.parse(value.strip() if isinstance(value, str) else value).text


def _text(what: str, value: object, limit: int) -> str:
    return record_text(what, value, limit, LicenceRequestError)


def _reason(value: str | None, *, required: bool) -> str | None:
    if value is None and not required:
        return None
    return _text("reason", value, MAX_REASON_CHARS)


def _aware(moment: datetime | None, what: str) -> datetime | None:
    if moment is None:
        return None
    if not isinstance(moment, datetime) or moment.tzinfo is None:
        raise LicenceRequestError(f"the {what} must be a datetime with a time zone "
                                  "(e.g. 2026-01-02T03:04:05Z)")
    return moment.astimezone(UTC)


def _now() -> datetime:
    return datetime.now(UTC)


def _status_clause(status: LicenceStatus, today: date):
    """SQL for "the licence's effective status on ``today`` (China) is ``status``"."""
    live = LicenceRecord.status.in_([s.value for s in LIVE])
    if status is S.EXPIRED:
        return or_(LicenceRecord.status == status.value, and_(live, LicenceRecord.valid_until < today))
    if status in LIVE:
        return and_(LicenceRecord.status == status.value,
                    or_(LicenceRecord.valid_until.is_(None), LicenceRecord.valid_until >= today))
    return LicenceRecord.status == status.value


class LicenceLibrary:
    """The licence library: records issued licences and their documents, and every act on them.

    It signs nothing: the issuance pipeline makes and seals the documents and hands them over
    with the metadata they were made from.
    """

    def __init__(self, db: Database, audit: AuditLog, store: DocumentStore, *, actor: str):
        self.db, self.audit, self.store, self.actor = db, audit, store, actor

    # ---- identifiers -----------------------------------------------------------------------
    def allocate_serials(self, issuer_code: str, type_code: str, count: int = 1) -> range:
        """Reserve ``count`` serials in a transaction of their own (a failed issuance leaves a gap)."""
        with self.db.transaction() as s:
            return allocate_serials(s, issuer_code, type_code, count)

    def allocate_identifier(self, type_code: str, issuer_code: str) -> LicenceIdentifier:
        """The identifier (version 001) of a new licence, with a serial never given before."""
        LicenceIdentifier(type_code, issuer_code, 1)  # refuse bad codes before using up a serial
        serial = self.allocate_serials(issuer_code, type_code).start
        return LicenceIdentifier(type_code, issuer_code, serial, 1)

    # ---- recording issued licences ---------------------------------------------------------
    def record_issued(self, metadata: LicenceMetadata, data: Mapping[str, Any], *, ofd: bytes, pdf: bytes,
                      source_id: str | None = None) -> LicenceRecord:
        """Store the signed documents, then the licence row (status 01) with its event and audit.

        The documents are written first: a row is never without them. Should the row then
        fail (a duplicate identifier or ``source_id``, the audit store down), the documents
        stay behind as unreferenced content-addressed files — harmless, and reused if the
        same bytes are recorded again.
        """
        self._check_new(metadata, data, expected_previous=None)
        if source_id is not None:
            source_id = _text("source record ID", source_id, MAX_SOURCE_ID_CHARS)
        ofd_sm3, pdf_sm3 = self._store(ofd, pdf)
        try:
            with self.db.transaction() as s:
                return self._insert(s, metadata, data, ofd_sm3, pdf_sm3, source_id, _now(), None, {})
        except IntegrityError:
            raise self._conflict(metadata, source_id) from None

    def change(self, identifier: str | LicenceIdentifier, metadata: LicenceMetadata,
               data: Mapping[str, Any], *, ofd: bytes, pdf: bytes, reason: str) -> LicenceRecord:
        """Record the changed licence (the next version) and supersede ``identifier`` (from 01)."""
        return self._supersede("change", identifier, metadata, data, ofd, pdf,
                               _reason(reason, required=True))

    def renew(self, identifier: str | LicenceIdentifier, metadata: LicenceMetadata,
              data: Mapping[str, Any], *, ofd: bytes, pdf: bytes, reason: str | None = None) -> LicenceRecord:
        """Record the renewed licence (the next version) and supersede ``identifier`` (from 01 or 05)."""
        return self._supersede("renew", identifier, metadata, data, ofd, pdf, _reason(reason, required=False))

    # ---- the acts --------------------------------------------------------------------------
    def suspend(self, identifier: str | LicenceIdentifier, reason: str) -> LicenceRecord:
        """Suspend (暂停) the licence for now; :meth:`resume` lifts the suspension."""
        return self._act(identifier, "suspend", _reason(reason, required=True))

    def resume(self, identifier: str | LicenceIdentifier, reason: str | None = None) -> LicenceRecord:
        return self._act(identifier, "resume", _reason(reason, required=False))

    def revoke(self, identifier: str | LicenceIdentifier, reason: str) -> LicenceRecord:
        """Revoke (吊销, 07): final."""
        return self._act(identifier, "revoke", _reason(reason, required=True))

    def cancel(self, identifier: str | LicenceIdentifier, reason: str) -> LicenceRecord:
        """Cancel (撤销, 03): the grant is withdrawn; final."""
        return self._act(identifier, "cancel", _reason(reason, required=True))

    def deregister(self, identifier: str | LicenceIdentifier, reason: str) -> LicenceRecord:
        """Deregister (注销, 04): the holder gave it up or ceased to exist; only revoke or cancel follow."""
        return self._act(identifier, "deregister", _reason(reason, required=True))

    def transfer(self, identifier: str | LicenceIdentifier, reason: str) -> LicenceRecord:
        """Transfer out (迁出, 06) to another issuer's jurisdiction (say where in ``reason``)."""
        return self._act(identifier, "transfer", _reason(reason, required=True))

    def expire_due(self, now: datetime | None = None) -> list[LicenceRecord]:
        """Record as expired every live licence whose last valid day is before ``now`` (a sweep).

        ``now`` may lie in the past (what was due then is due now) but not in the future: the
        library records what has happened, and every event carries the time it was recorded.
        """
        real = _now()
        now = _aware(now, "time") or real
        if now > real:
            raise LicenceRequestError(f"cannot record expiries ahead of time ({now.isoformat()} is in the "
                                      "future); licences past their validity already count as expired")
        with self.db.transaction() as s:
            due = list(s.scalars(select(LicenceRecord.identifier).where(
                LicenceRecord.status.in_([st.value for st in LIVE]),
                LicenceRecord.valid_until < china_date(now)).order_by(LicenceRecord.id)))
        expired = []
        for identifier in due:
            try:
                expired.append(self._act(identifier, "expire", None))
            except LicenceStateError:
                continue  # another act ended it meanwhile
        return expired

    # ---- lookups ---------------------------------------------------------------------------
    def find(self, identifier: str | LicenceIdentifier) -> LicenceRecord:
        """The licence row; IdentifierError for a malformed identifier, LicenceNotFound if absent."""
        key = _identifier(identifier)
        with self.db.transaction() as s:
            record = s.scalars(select(LicenceRecord).where(LicenceRecord.identifier == key)).first()
        if record is None:
            raise LicenceNotFound(key)
        return record

    def find_by_source(self, issuer_code: str, type_code: str, source_id: str) -> LicenceRecord | None:
        """The licence converted from source record ``source_id``, or None if it has not been yet
        (what a resumed bulk conversion asks before issuing a record)."""
        with self.db.transaction() as s:
            return s.scalars(select(LicenceRecord).where(
                LicenceRecord.issuer_code == issuer_code, LicenceRecord.type_code == type_code,
                LicenceRecord.source_id == source_id)).first()

    def licences(self, *, type_code: str | None = None, issuer_code: str | None = None,
                 status: str | LicenceStatus | None = None, holder_code: str | None = None,
                 page: int = 1, limit: int = 50, now: datetime | None = None) -> list[LicenceRecord]:
        """One page of the library, oldest first; ``status`` is the effective one at ``now``."""
        for name, value, top in (("page", page, None), ("limit", limit, MAX_PAGE_SIZE)):
            if isinstance(value, bool) or not isinstance(value, int) or value < 1 or (top and value > top):
                bound = f"from 1 to {top}" if top else "of at least 1"
                raise LicenceRequestError(f"{name} must be a whole number {bound}, not {value!r}")
        now = _aware(now, "time") or _now()
        q = select(LicenceRecord)
        for column, value in ((LicenceRecord.type_code, type_code), (LicenceRecord.issuer_code, issuer_code)):
            if value is not None:
                q = q.where(column == str(value).strip().upper())
        if holder_code is not None:
            q = q.where(LicenceRecord.holder_code == str(holder_code).strip())
        if status is not None:
            q = q.where(_status_clause(parse_status(status), china_date(now)))
        q = q.order_by(LicenceRecord.id).offset((page - 1) * limit).limit(limit)
        with self.db.transaction() as s:
            return list(s.scalars(q))

    def events(self, identifier: str | LicenceIdentifier) -> list[LicenceEvent]:
        """The licence's history, oldest first."""
        record = self.find(identifier)
        with self.db.transaction() as s:
            return list(s.scalars(select(LicenceEvent).where(LicenceEvent.licence_id == record.id)
                                  .order_by(LicenceEvent.at, LicenceEvent.id)))

    def status(self, identifier: str | LicenceIdentifier, now: datetime | None = None) -> LicenceStatus:
        """The licence's effective status at ``now`` (expired by the clock included)."""
        record = self.find(identifier)
        return effective_status(record.status, record.valid_until, _aware(now, "time") or _now())

    def status_at(self, identifier: str | LicenceIdentifier, when: datetime) -> LicenceStatus | None:
        """The status the licence had at ``when``, from its history; None before it was issued."""
        when = _aware(when, "time")
        if when is None:
            raise LicenceRequestError("status_at needs the time to look at")
        record = self.find(identifier)
        with self.db.transaction() as s:
            last = s.scalars(select(LicenceEvent.to_status).where(
                LicenceEvent.licence_id == record.id, LicenceEvent.at <= when)
                .order_by(LicenceEvent.at.desc(), LicenceEvent.id.desc()).limit(1)).first()
        return None if last is None else effective_status(last, record.valid_until, when)

    def current_metadata(self, identifier: str | LicenceIdentifier,
                         now: datetime | None = None) -> LicenceMetadata:
        """The metadata as issued, with the status it has at ``now`` (the JSON export's content)."""
        record = self.find(identifier)
        issued = LicenceMetadata.from_dict(record.licence_metadata)
        status = effective_status(record.status, record.valid_until, _aware(now, "time") or _now())
        return dataclasses.replace(issued, status=status)

    def document(self, identifier: str | LicenceIdentifier, kind: str) -> bytes:
        """The licence's signed ``"ofd"`` or ``"pdf"``, checked against the SM3 in its row."""
        if kind not in _DOCUMENT_MAGIC:
            raise LicenceRequestError(f"a licence's documents are 'ofd' and 'pdf', not {kind!r}")
        record = self.find(identifier)
        return self.store.get(record.ofd_sm3 if kind == "ofd" else record.pdf_sm3)

    # ---- recording -------------------------------------------------------------------------
    def _check_new(self, metadata: LicenceMetadata, data: Mapping[str, Any],
                   expected_previous: str | None) -> None:
        if not isinstance(metadata, LicenceMetadata):
            raise LicenceRequestError(f"metadata must be a LicenceMetadata, not {type(metadata).__name__}")
        if metadata.status is not S.VALID:
            raise LicenceRequestError(f"a licence is recorded as issued with status 01 (valid), "
                                      f"not {_describe(metadata.status)}")
        previous = metadata.previous_identifier.text if metadata.previous_identifier else None
        if previous != expected_previous:
            if expected_previous is None:
                raise LicenceRequestError(f"the metadata names a previous licence ({previous}): record a new "
                                          "version with change() or renew(), not record_issued()")
            raise LicenceRequestError(f"the new version's metadata must name {expected_previous} as its "
                                      f"previous_identifier, not {previous}")
        if not isinstance(data, Mapping):
            raise LicenceRequestError(f"the licence data must be a JSON object, not {type(data).__name__}")
        try:
            json.dumps(dict(data), ensure_ascii=False, allow_nan=False)
        except (TypeError, ValueError) as exc:
            raise LicenceRequestError(f"the licence data cannot be stored as JSON: {exc}") from None

    def _store(self, ofd: bytes, pdf: bytes) -> tuple[str, str]:
        for kind, document in (("ofd", ofd), ("pdf", pdf)):
            magic, what = _DOCUMENT_MAGIC[kind]
            if not isinstance(document, bytes) or not document.startswith(magic):
                raise LicenceRequestError(f"the {kind} document must be the bytes of {what}")
        return self.store.put(ofd), self.store.put(pdf)

    def _insert(self, s: Session, metadata: LicenceMetadata, data: Mapping[str, Any], ofd_sm3: str,
                pdf_sm3: str, source_id: str | None, now: datetime, reason: str | None,
                details: dict[str, Any]) -> LicenceRecord:
        ident = metadata.identifier
        previous = metadata.previous_identifier.text if metadata.previous_identifier else None
        record = LicenceRecord(
            identifier=ident.text, type_code=ident.type_code, issuer_code=ident.issuer_code,
            serial=ident.serial, version=ident.version, licence_number=metadata.licence_number,
            holder_name=metadata.holder_name, holder_code=metadata.holder_code, status=S.VALID.value,
            status_changed_at=now, status_reason=reason, valid_from=metadata.valid_from,
            valid_until=metadata.valid_until, licence_metadata=metadata.as_dict(), data=dict(data),
            ofd_sm3=ofd_sm3, pdf_sm3=pdf_sm3, previous_identifier=previous, source_id=source_id,
            created_at=now)
        s.add(record)
        s.flush()
        # The audit log is kept for ever and cannot be edited: it names the licence and its
        # documents, never the holder (their data is in the licence row, which can be corrected).
        self._log(s, record, "issue", None, now, reason, {
            "type_code": ident.type_code, "issuer_code": ident.issuer_code, "serial": ident.serial,
            "version": ident.version, "ofd_sm3": ofd_sm3, "pdf_sm3": pdf_sm3, "source_id": source_id,
            "previous": previous, **details})
        return record

    def _conflict(self, metadata: LicenceMetadata, source_id: str | None) -> LicenceError:
        """Which unique rule a failed insert broke, said so that the caller can act on it."""
        ident = metadata.identifier
        with self.db.transaction() as s:
            if s.scalar(select(LicenceRecord.id).where(LicenceRecord.identifier == ident.text)):
                return LicenceExists("identifier", ident.text, ident.text)
        if source_id is not None:
            existing = self.find_by_source(ident.issuer_code, ident.type_code, source_id)
            if existing is not None:
                return LicenceExists("source_id", source_id, existing.identifier)
        if metadata.previous_identifier is not None:
            return LicenceExists("previous_identifier", metadata.previous_identifier.text, None)
        return LicenceExists("type, issuer, serial and version", ident.text, None)

    def _supersede(self, act: str, identifier: str | LicenceIdentifier, metadata: LicenceMetadata,
                   data: Mapping[str, Any], ofd: bytes, pdf: bytes, reason: str | None) -> LicenceRecord:
        old = _identifier(identifier)
        self._check_new(metadata, data, expected_previous=old)
        expected = LicenceIdentifier.parse(old).next_version()
        if metadata.identifier != expected:
            raise LicenceRequestError(f"the {act}d licence of {old} must have the next version's identifier "
                                      f"{expected.text}, not {metadata.identifier.text}")
        self.find(old)  # LicenceNotFound before any document is stored
        ofd_sm3, pdf_sm3 = self._store(ofd, pdf)
        new = metadata.identifier.text
        why = f"superseded by {new}" + (f": {reason}" if reason else "")
        try:
            with self.db.transaction() as s:
                record = self._load(s, old)
                now = _now()
                self._move(s, record, act, now, why, {"superseded_by": new}, superseded_by=new)
                return self._insert(s, metadata, data, ofd_sm3, pdf_sm3, None, now,
                                    f"{act} of {old}" + (f": {reason}" if reason else ""), {"act": act})
        except IntegrityError:
            raise self._conflict(metadata, None) from None

    # ---- moving a licence ------------------------------------------------------------------
    def _load(self, s: Session, identifier: str) -> LicenceRecord:
        record = s.scalars(select(LicenceRecord).where(LicenceRecord.identifier == identifier)
                           .with_for_update()).first()
        if record is None:
            raise LicenceNotFound(identifier)
        return record

    def _act(self, identifier: str | LicenceIdentifier, act: str, reason: str | None) -> LicenceRecord:
        key = _identifier(identifier)
        with self.db.transaction() as s:
            record = self._load(s, key)
            self._move(s, record, act, _now(), reason, {})  # the time read under the row's lock
        return record

    def _move(self, s: Session, record: LicenceRecord, act: str, now: datetime, reason: str | None,
              details: dict[str, Any], **columns: Any) -> None:
        """Check ``act`` against the licence's status at ``now``, then record it (event + audit)."""
        recorded = LicenceStatus(record.status)
        current = effective_status(recorded, record.valid_until, now)
        if act == "expire":
            if current is not S.EXPIRED or recorded is S.EXPIRED:
                raise LicenceStateError(record.identifier, recorded, act)
            current = recorded
            reason = reason or f"validity ended {record.valid_until.isoformat()}"
        target = next_status(record.identifier, current, act)
        if current is S.EXPIRED and recorded is not S.EXPIRED:
            # The clock expired it and no sweep recorded that yet: record it first, so the
            # licence's history has no gap.
            self._move(s, record, "expire", now, None, {})
        previous = record.status
        moved = s.execute(update(LicenceRecord)
                          .where(LicenceRecord.id == record.id, LicenceRecord.status == previous)
                          .values(status=target.value, status_changed_at=now, status_reason=reason,
                                  **columns))
        if moved.rowcount != 1:  # another transaction moved it since we read it
            fresh = s.scalar(select(LicenceRecord.status).where(LicenceRecord.id == record.id))
            raise LicenceStateError(record.identifier, fresh or previous, act)
        self._log(s, record, act, previous, now, reason, details)

    def _log(self, s: Session, record: LicenceRecord, act: str, previous: str | None, at: datetime,
             reason: str | None, details: dict[str, Any]) -> None:
        assert act == "issue" or act in TRANSITIONS
        s.add(LicenceEvent(licence_id=record.id, from_status=previous, to_status=record.status, act=act,
                           actor=self.actor, at=at, reason=reason))
        s.flush()
        self.audit.record(f"licence.{act}", actor=self.actor, subject=f"licence:{record.identifier}",
                          details={"from": previous, "to": record.status, "reason": reason, **details},
                          session=s)
