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

One live licence per licence number
-----------------------------------
A licence number (统一社会信用代码, 许可证编号 …) has at most one live (valid or suspended)
licence of its type, whoever issued it: the row's ``live_key`` is set while it is live and
unique in the database, so two concurrent issuances cannot both record one. A change or
renewal frees the number from the old version in the transaction that records the new one;
it keeps the licence number and the holder code (a new version is of the same licence).
The QR nonce is recorded with each version (:meth:`LicenceLibrary.find_by_qr`).

Every act is one transaction holding the licence row, its ``licence_event`` row and its audit
entry (``licence.issue`` … ``licence.expire``), so a failed audit write leaves the licence where
it was. The status moves by compare-and-set (``UPDATE … WHERE status = <as read>``), which
keeps two concurrent acts from both succeeding on SQLite too, where row locks do not exist.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Iterator, Mapping, Sequence
from datetime import UTC, datetime
from typing import Any, NamedTuple

from sqlalchemy import bindparam, insert, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, make_transient_to_detached

from ledger.audit import AuditEntry, AuditLog
from ledger.database import Database
from ledger.text import record_text

from .identifiers import LicenceIdentifier
from .lookups import MAX_PAGE_SIZE, LicenceLookups
from .metadata import LicenceMetadata, LicenceStatus
from .registry import LicenceEvent, LicenceRecord, allocate_serials, live_key
from .states import (
    CHINA_TIME,
    FINAL,
    LIVE,
    SUPERSEDED,
    TRANSITIONS,
    LicenceError,
    LicenceExists,
    LicenceNotFound,
    LicenceRequestError,
    LicenceStateError,
    S,
    aware,
    canonical_identifier,
    china_date,
    china_today,
    describe,
    effective_status,
    expiry_instant,
    next_status,
    parse_status,
)
from .storage import DocumentStore

#: Names callers import from here (the rule and the errors live in :mod:`licences.states`,
#: the reading half of the library in :mod:`licences.lookups`).
__all__ = [
    "CHINA_TIME", "FINAL", "LIVE", "MAX_PAGE_SIZE", "MAX_REASON_CHARS", "MAX_SOURCE_ID_CHARS", "QR_NONCE",
    "SUPERSEDED", "TRANSITIONS", "LicenceError", "LicenceExists", "LicenceLibrary", "LicenceNotFound",
    "LicenceRequestError", "LicenceStateError", "Taken", "checked_reason", "china_date", "china_today",
    "effective_status", "expiry_instant", "next_status", "parse_status",
]

MAX_REASON_CHARS = 500
MAX_SOURCE_ID_CHARS = 200
#: The QR nonce as recorded: hex of 16 random bytes, lower case.
QR_NONCE = re.compile(r"[0-9a-f]{32}")
_DOCUMENT_MAGIC = {"ofd": (b"PK\x03\x04", "an OFD package (a zip file)"), "pdf": (b"%PDF-", "a PDF file")}

_LICENCE, _EVENT = LicenceRecord.__table__, LicenceEvent.__table__
#: The licence table's column for each attribute of LicenceRecord (``licence_metadata`` is
#: the column ``metadata``): new rows are written with SQLAlchemy Core, not the ORM.
_COLUMN_OF = {attribute.key: attribute.columns[0].key for attribute in LicenceRecord.__mapper__.column_attrs}
# The statements of recording and of :meth:`LicenceLibrary.taken`, built once: building and
# caching a statement anew costs more than running it.
_INSERT_LICENCE, _INSERT_EVENTS = insert(_LICENCE), insert(_EVENT)
_HOLDERS = (select(_LICENCE.c.id, _LICENCE.c.status, _LICENCE.c.valid_until)
            .where(_LICENCE.c.live_key.in_(bindparam("keys", expanding=True))).with_for_update())
_LIVE_KEYS = (select(_LICENCE.c.live_key, _LICENCE.c.identifier, _LICENCE.c.status, _LICENCE.c.valid_until)
              .where(_LICENCE.c.live_key.in_(bindparam("keys", expanding=True))))
_CONVERTED = (select(_LICENCE.c.source_id, _LICENCE.c.identifier)
              .where(_LICENCE.c.issuer_code == bindparam("issuer"), _LICENCE.c.type_code == bindparam("type"),
                     _LICENCE.c.source_id.in_(bindparam("ids", expanding=True))))


class IssuedDocuments(NamedTuple):
    """One signed licence for :meth:`LicenceLibrary.record_issued_group`."""

    metadata: LicenceMetadata
    data: Mapping[str, Any]
    ofd: bytes
    pdf: bytes
    source_id: str | None = None
    qr_nonce: str | None = None
    qr_payload: str | None = None  # the QR code's text, kept for annotated copies (revision 0012)


class Taken(NamedTuple):
    """What :meth:`LicenceLibrary.taken` found: licence numbers held and source records converted."""

    #: licence number -> identifier of the live licence (valid or suspended) that holds it
    holders: dict[str, str]
    #: source record ID -> identifier of the licence converted from it
    converted: dict[str, str]


class _NewRow(NamedTuple):
    """A licence version about to be recorded, checked: what :meth:`LicenceLibrary._insert` writes."""

    metadata: LicenceMetadata
    data: Mapping[str, Any]
    ofd_sm3: str
    pdf_sm3: str
    source_id: str | None
    qr_nonce: str | None
    reason: str | None = None
    details: Mapping[str, Any] = {}
    qr_payload: str | None = None


class _Event(NamedTuple):
    """One act to record as a ``licence_event`` row and its audit entry (:meth:`LicenceLibrary._log`)."""

    licence_id: int
    identifier: str
    act: str
    previous: str | None
    status: str
    at: datetime
    reason: str | None
    details: Mapping[str, Any]


def _parts(values: Sequence[str], size: int = 500) -> Iterator[Sequence[str]]:
    """``values`` in slices small enough for one IN list on any database."""
    for start in range(0, len(values), size):
        yield values[start:start + size]


def _identifier(value: str | LicenceIdentifier) -> str:
    return canonical_identifier(value)


def _text(what: str, value: object, limit: int) -> str:
    return record_text(what, value, limit, LicenceRequestError)


def _reason(value: str | None, *, required: bool) -> str | None:
    if value is None and not required:
        return None
    return _text("reason", value, MAX_REASON_CHARS)


def _nonce(value: str | None) -> str | None:
    """The QR nonce as recorded (32 lower-case hex digits), or None when there is none."""
    if value is None:
        return None
    if not isinstance(value, str) or not QR_NONCE.fullmatch(value.lower()):
        raise LicenceRequestError(f"qr_nonce must be the hex of the QR code's 16-byte nonce (32 hex digits), "
                                  f"not {value!r}")
    return value.lower()


def checked_reason(value: str | None, *, required: bool) -> str | None:
    """A reason as the library records it; LicenceRequestError when it is missing (and
    ``required``) or unfit. Callers that sign before recording check it first with this."""
    return _reason(value, required=required)


def _check_same_licence(old: LicenceRecord, metadata: LicenceMetadata) -> None:
    """A new version is of the same licence: its licence number and holder code are the old
    version's. Anything else is a new licence (issue it) or a transfer, not a change — and a
    change would otherwise free the old number and hand the licence to someone else."""
    for what, was, now in (("licence number", old.licence_number, metadata.licence_number),
                           ("holder code", old.holder_code, metadata.holder_code)):
        if was != now:
            raise LicenceRequestError(f"a new version of {old.identifier} keeps its {what} {was}; "
                                      f"{now} is another licence's (issue that one anew)")


def _aware(moment: datetime | None, what: str) -> datetime | None:
    return aware(moment, what)


def _now() -> datetime:
    return datetime.now(UTC)


class LicenceLibrary(LicenceLookups):
    """The licence library: records issued licences and their documents, and every act on them.

    It signs nothing: the issuance pipeline makes and seals the documents and hands them over
    with the metadata they were made from.
    """

    def __init__(self, db: Database, audit: AuditLog, store: DocumentStore, *, actor: str):
        self.db, self.audit, self.store, self.actor = db, audit, store, actor

    # ---- identifiers -----------------------------------------------------------------------
    def allocate_serials(self, issuer_code: str, type_code: str, count: int = 1) -> range:
        """Reserve ``count`` serials of ``issuer_code`` for licences of ``type_code``, in a
        transaction of their own (a failed issuance leaves a gap).

        The counter is the issuer's, shared by all its types: a serial is given once per issuer.
        Both codes are checked first, so a malformed one spends nothing.
        """
        LicenceIdentifier(type_code, issuer_code, 1)
        with self.db.transaction() as s:
            return allocate_serials(s, issuer_code, count)

    def allocate_identifier(self, type_code: str, issuer_code: str) -> LicenceIdentifier:
        """The identifier (version 001) of a new licence, with a serial never given before."""
        serial = self.allocate_serials(issuer_code, type_code).start  # checks the codes first
        return LicenceIdentifier(type_code, issuer_code, serial, 1)

    # ---- before issuing ----------------------------------------------------------------------
    def taken(self, type_code: str, issuer_code: str, *, numbers: Iterable[str] = (),
              source_ids: Iterable[str] = (), now: datetime | None = None) -> Taken:
        """Which of ``numbers`` a live licence of ``type_code`` holds at ``now`` (whoever issued
        it: see "One live licence per licence number"), and which of ``source_ids`` ``issuer_code``
        has converted into a licence of ``type_code`` already.

        What issuing asks before it spends a serial or a signature — for one licence or a whole
        group of a bulk conversion — in one transaction with one query per kind asked about,
        instead of one transaction per question. A holder expired by the clock holds nothing.
        The database's unique rules stay the last word when the row is recorded.
        """
        now = _aware(now, "time") or _now()
        keys = {live_key(type_code, number): number for number in numbers}
        wanted = sorted(set(source_ids))
        holders: dict[str, str] = {}
        converted: dict[str, str] = {}
        if not keys and not wanted:
            return Taken(holders, converted)
        with self.db.transaction() as s:
            connection = s.connection()
            for part in _parts(sorted(keys)):
                for key, identifier, status, valid_until in connection.execute(_LIVE_KEYS, {"keys": part}):
                    if effective_status(status, valid_until, now) in LIVE:
                        holders[keys[key]] = identifier
            for part in _parts(wanted):
                converted.update(connection.execute(
                    _CONVERTED, {"issuer": issuer_code, "type": type_code, "ids": part}).all())
        return Taken(holders, converted)

    # ---- recording issued licences ---------------------------------------------------------
    def record_issued(self, metadata: LicenceMetadata, data: Mapping[str, Any], *, ofd: bytes, pdf: bytes,
                      source_id: str | None = None, qr_nonce: str | None = None,
                      qr_payload: str | None = None) -> LicenceRecord:
        """Store the signed documents, then the licence row (status 01) with its event and audit.

        The documents are written first: a row is never without them. Should the row then
        fail (a duplicate identifier or ``source_id``, the audit store down), the documents
        stay behind as unreferenced content-addressed files — harmless, and reused if the
        same bytes are recorded again.

        ``qr_nonce`` is the hex of the random part of the QR code printed on the documents
        (what :meth:`find_by_qr` matches). A second live licence of the type with the same
        licence number is refused (LicenceExists, field ``licence_number``), by the database
        too; a holder of the number that has expired by the clock is recorded expired first.
        """
        self._check_new(metadata, data, expected_previous=None)
        qr_nonce = _nonce(qr_nonce)
        if source_id is not None:
            source_id = _text("source record ID", source_id, MAX_SOURCE_ID_CHARS)
        ofd_sm3, pdf_sm3 = self._store(ofd, pdf)
        try:
            with self.db.transaction() as s:
                return self._insert(s, [_NewRow(metadata, data, ofd_sm3, pdf_sm3, source_id, qr_nonce,
                                                qr_payload=qr_payload)], _now())[0]
        except IntegrityError:
            raise self._conflict(metadata, source_id) from None

    def record_issued_group(self, items: Sequence[IssuedDocuments]) -> list[LicenceRecord | LicenceError]:
        """Record several issued licences at once (bulk conversion): each item's outcome, in order.

        All documents are stored and made durable together (:meth:`DocumentStore.put_many`),
        then every row goes into one transaction — one commit for the group instead of one per
        licence, the rows written with SQLAlchemy Core and the events in one statement. An item the
        library refuses by itself (bad metadata or source ID) is that item's outcome; should the
        transaction fail on a unique rule (a licence number or source ID taken meanwhile, also by
        another item of the group), the group is recorded one by one with :meth:`record_issued`,
        so each item gets its own LicenceExists or row.
        The rule of :meth:`record_issued` holds for each: no row without its documents.
        """
        outcomes: list[LicenceRecord | LicenceError | None] = [None] * len(items)
        ready: list[tuple[int, IssuedDocuments, str | None, str | None]] = []
        for index, item in enumerate(items):
            try:
                self._check_new(item.metadata, item.data, expected_previous=None)
                nonce = _nonce(item.qr_nonce)
                source_id = None if item.source_id is None else \
                    _text("source record ID", item.source_id, MAX_SOURCE_ID_CHARS)
                self._store_check(item.ofd, item.pdf)
            except LicenceError as exc:
                outcomes[index] = exc
                continue
            ready.append((index, item, source_id, nonce))
        if not ready:
            return [o for o in outcomes if o is not None]
        digests = self.store.put_many([d for _, item, _, _ in ready for d in (item.ofd, item.pdf)])
        rows = [_NewRow(item.metadata, item.data, digests[2 * n], digests[2 * n + 1], source_id, nonce,
                        qr_payload=item.qr_payload) for n, (_, item, source_id, nonce) in enumerate(ready)]
        try:
            with self.db.transaction() as s:
                records = self._insert(s, rows, _now())
            for (index, *_), record in zip(ready, records, strict=True):
                outcomes[index] = record
        except IntegrityError:
            for index, item, source_id, nonce in ready:
                try:
                    outcomes[index] = self.record_issued(item.metadata, item.data, ofd=item.ofd, pdf=item.pdf,
                                                         source_id=source_id, qr_nonce=nonce,
                                                         qr_payload=item.qr_payload)
                except LicenceError as exc:
                    outcomes[index] = exc
        settled = [o for o in outcomes if o is not None]
        if len(settled) != len(items):  # every item is settled above; never shift the outcomes
            raise AssertionError("internal error: an item of the group has no outcome")
        return settled

    def change(self, identifier: str | LicenceIdentifier, metadata: LicenceMetadata,
               data: Mapping[str, Any], *, ofd: bytes, pdf: bytes, reason: str,
               qr_nonce: str | None = None, qr_payload: str | None = None) -> LicenceRecord:
        """Record the changed licence (the next version) and supersede ``identifier`` (from 01)."""
        return self._supersede("change", identifier, metadata, data, ofd, pdf,
                               _reason(reason, required=True), _nonce(qr_nonce), qr_payload)

    def renew(self, identifier: str | LicenceIdentifier, metadata: LicenceMetadata,
              data: Mapping[str, Any], *, ofd: bytes, pdf: bytes, reason: str | None = None,
              qr_nonce: str | None = None, qr_payload: str | None = None) -> LicenceRecord:
        """Record the renewed licence (the next version) and supersede ``identifier`` (from 01 or 05)."""
        return self._supersede("renew", identifier, metadata, data, ofd, pdf, _reason(reason, required=False),
                               _nonce(qr_nonce), qr_payload)

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

    # ---- recording -------------------------------------------------------------------------
    def _check_new(self, metadata: LicenceMetadata, data: Mapping[str, Any],
                   expected_previous: str | None) -> None:
        if not isinstance(metadata, LicenceMetadata):
            raise LicenceRequestError(f"metadata must be a LicenceMetadata, not {type(metadata).__name__}")
        if metadata.status is not S.VALID:
            raise LicenceRequestError(f"a licence is recorded as issued with status 01 (valid), "
                                      f"not {describe(metadata.status)}")
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
        """Both documents stored and durable together (one sync pass for the pair)."""
        self._store_check(ofd, pdf)
        ofd_sm3, pdf_sm3 = self.store.put_many([ofd, pdf])
        return ofd_sm3, pdf_sm3

    @staticmethod
    def _store_check(ofd: bytes, pdf: bytes) -> None:
        for kind, document in (("ofd", ofd), ("pdf", pdf)):
            magic, what = _DOCUMENT_MAGIC[kind]
            if not isinstance(document, bytes) or not document.startswith(magic):
                raise LicenceRequestError(f"the {kind} document must be the bytes of {what}")

    def _insert(self, s: Session, rows: Sequence[_NewRow], now: datetime) -> list[LicenceRecord]:
        """Insert new licence versions (status 01) with their events and audit entries; the rows
        as LicenceRecord objects, detached as a query would give them after the transaction.

        SQLAlchemy Core, not the ORM: no unit of work and no flush per object. Each row is one
        INSERT whose id comes back with it (SQLite executes a multi-row INSERT … RETURNING row by
        row anyway, to keep the ids in order), the events of all rows one executemany; the audit
        entries follow in the rows' order. A unique rule broken by any row (by another
        transaction or by a row of the same group) is the caller's IntegrityError, and the
        transaction records nothing."""
        self._release_expired(s, [live_key(r.metadata.identifier.type_code, r.metadata.licence_number)
                                  for r in rows], now)
        connection = s.connection()
        records = []
        for row in rows:
            values = self._attributes(row, now)
            # qr_payload None is left out: a schema before revision 0012 takes the row as before
            licence_id = connection.execute(_INSERT_LICENCE, {_COLUMN_OF[k]: v for k, v in values.items()
                                                              if v is not None or k != "qr_payload"}
                                            ).inserted_primary_key[0]
            record = LicenceRecord(id=licence_id, superseded_by=None, **values)
            make_transient_to_detached(record)  # as loaded: nothing left to flush or refresh
            records.append(record)
        # The audit log is kept for ever and cannot be edited: it names the licence and its
        # documents, never the holder (their data is in the licence row, which can be corrected).
        self._log(s, [_Event(record.id, record.identifier, "issue", None, record.status, now, row.reason, {
            "type_code": record.type_code, "issuer_code": record.issuer_code, "serial": record.serial,
            "version": record.version, "ofd_sm3": row.ofd_sm3, "pdf_sm3": row.pdf_sm3,
            "source_id": row.source_id, "previous": record.previous_identifier, **row.details})
            for record, row in zip(records, rows, strict=True)])
        return records

    @staticmethod
    def _attributes(row: _NewRow, now: datetime) -> dict[str, Any]:
        """The new licence row's values, by LicenceRecord attribute."""
        metadata, ident = row.metadata, row.metadata.identifier
        return dict(
            identifier=ident.text, type_code=ident.type_code, issuer_code=ident.issuer_code,
            serial=ident.serial, version=ident.version, licence_number=metadata.licence_number,
            holder_name=metadata.holder_name, holder_code=metadata.holder_code, status=S.VALID.value,
            status_changed_at=now, status_reason=row.reason, valid_from=metadata.valid_from,
            valid_until=metadata.valid_until, licence_metadata=metadata.as_dict(), data=dict(row.data),
            ofd_sm3=row.ofd_sm3, pdf_sm3=row.pdf_sm3,
            previous_identifier=metadata.previous_identifier.text if metadata.previous_identifier else None,
            source_id=row.source_id, created_at=now, qr_nonce=row.qr_nonce, qr_payload=row.qr_payload,
            live_key=live_key(ident.type_code, metadata.licence_number))

    def _release_expired(self, s: Session, keys: Sequence[str], now: datetime) -> None:
        """Record as expired each holder of one of ``keys`` that the clock has expired, so that
        its licence number is free for a new licence (a live holder keeps it: the insert fails).

        One query for all the keys (usually it finds no holder at all); only an expired holder
        is loaded whole, under its row lock, to be moved.

        Another transaction may have moved the holder since it was read (SQLite has no row
        locks: two issuances can both read the expired holder). Then losing the compare-and-set
        means the number was released already — by an expiry, or by an issuance that gave it
        to a new licence, in which case this insert's unique ``live_key`` fails and the caller
        hears LicenceExists for the licence number, not a state error about a licence it never
        named."""
        holders = s.connection().execute(_HOLDERS, {"keys": sorted(set(keys))}).all()
        for licence_id, status, valid_until in holders:
            if effective_status(status, valid_until, now) is not S.EXPIRED:
                continue
            # Read again, whole and locked: until this transaction's first write SQLite reads
            # outside it, so the holder may have been moved since the query above.
            holder = s.get(LicenceRecord, licence_id, with_for_update=True, populate_existing=True)
            if holder is not None and LicenceStatus(holder.status) in LIVE and \
                    effective_status(holder.status, holder.valid_until, now) is S.EXPIRED:
                self._move(s, holder, "expire", now, None, {}, lost_is_done=True)

    def _conflict(self, metadata: LicenceMetadata, source_id: str | None) -> LicenceError:
        """Which unique rule a failed insert broke, said so that the caller can act on it."""
        ident = metadata.identifier
        key = live_key(ident.type_code, metadata.licence_number)
        with self.db.transaction() as s:
            if s.scalar(select(LicenceRecord.id).where(LicenceRecord.identifier == ident.text)):
                return LicenceExists("identifier", ident.text, ident.text)
            holder = s.scalar(select(LicenceRecord.identifier).where(LicenceRecord.live_key == key))
        # The source record first: "already converted" is what a resumed conversion acts on.
        if source_id is not None:
            existing = self.find_by_source(ident.issuer_code, ident.type_code, source_id)
            if existing is not None:
                return LicenceExists("source_id", source_id, existing.identifier)
        if holder is not None and holder != ident.text:
            return LicenceExists("licence_number", metadata.licence_number, holder)
        if metadata.previous_identifier is not None:
            return LicenceExists("previous_identifier", metadata.previous_identifier.text, None)
        return LicenceExists("type, issuer, serial and version", ident.text, None)

    def _supersede(self, act: str, identifier: str | LicenceIdentifier, metadata: LicenceMetadata,
                   data: Mapping[str, Any], ofd: bytes, pdf: bytes, reason: str | None,
                   qr_nonce: str | None, qr_payload: str | None = None) -> LicenceRecord:
        old = _identifier(identifier)
        self._check_new(metadata, data, expected_previous=old)
        expected = LicenceIdentifier.parse(old).next_version()
        if metadata.identifier != expected:
            raise LicenceRequestError(f"the {act}d licence of {old} must have the next version's identifier "
                                      f"{expected.text}, not {metadata.identifier.text}")
        previous = self.find(old)  # LicenceNotFound before any document is stored
        _check_same_licence(previous, metadata)
        ofd_sm3, pdf_sm3 = self._store(ofd, pdf)
        new = metadata.identifier.text
        why = f"superseded by {new}" + (f": {reason}" if reason else "")
        try:
            with self.db.transaction() as s:
                record = self._load(s, old)
                now = _now()
                self._move(s, record, act, now, why, {"superseded_by": new}, superseded_by=new)
                return self._insert(s, [_NewRow(metadata, data, ofd_sm3, pdf_sm3, None, qr_nonce,
                                                f"{act} of {old}" + (f": {reason}" if reason else ""),
                                                {"act": act}, qr_payload)], now)[0]
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
              details: dict[str, Any], *, lost_is_done: bool = False, **columns: Any) -> None:
        """Check ``act`` against the licence's status at ``now``, then record it (event + audit).
        A lost compare-and-set is a LicenceStateError, or nothing at all with ``lost_is_done``
        (an act another transaction's move makes moot)."""
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
        if target not in LIVE:
            columns["live_key"] = None  # the licence number is free for a new licence
        moved = s.execute(update(LicenceRecord)
                          .where(LicenceRecord.id == record.id, LicenceRecord.status == previous)
                          .values(status=target.value, status_changed_at=now, status_reason=reason,
                                  **columns))
        if moved.rowcount != 1:  # another transaction moved it since we read it
            if lost_is_done:
                return
            fresh = s.scalar(select(LicenceRecord.status).where(LicenceRecord.id == record.id))
            raise LicenceStateError(record.identifier, fresh or previous, act)
        self._log(s, [_Event(record.id, record.identifier, act, previous, target.value, now, reason,
                             details)])

    def _log(self, s: Session, events: Sequence[_Event]) -> None:
        """The ``licence_event`` rows of ``events`` (one INSERT), then their audit entries in order
        (one append: a group's entries cost one head query and one INSERT, not one each)."""
        for event in events:
            assert event.act == "issue" or event.act in TRANSITIONS
        s.connection().execute(_INSERT_EVENTS, [
            {"licence_id": e.licence_id, "from_status": e.previous, "to_status": e.status, "act": e.act,
             "actor": self.actor, "at": e.at, "reason": e.reason} for e in events])
        self.audit.record_many([
            AuditEntry(f"licence.{e.act}", self.actor, f"licence:{e.identifier}",
                       {"from": e.previous, "to": e.status, "reason": e.reason, **e.details})
            for e in events], session=s)
