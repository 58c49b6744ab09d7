"""Reading the licence library: a licence by identifier, by QR code, by licence number or source
record; pages of the library; a licence's history, status and documents.

:class:`LicenceLookups` is the reading half of :class:`licences.lifecycle.LicenceLibrary`
(which adds recording and the acts); nothing here writes. Statuses are *effective* ones: a
live licence past its last valid day reads as expired (05) before any sweep records it.
"""

from __future__ import annotations

import dataclasses
import hmac
from datetime import UTC, date, datetime

from sqlalchemy import and_, bindparam, or_, select
from sqlalchemy import inspect as sa_inspect
from sqlalchemy.orm import make_transient_to_detached

from ledger.database import Database

from .identifiers import IdentifierError, LicenceIdentifier
from .metadata import LicenceMetadata, LicenceStatus
from .registry import LicenceEvent, LicenceRecord, live_key
from .states import (
    LIVE,
    LicenceNotFound,
    LicenceRequestError,
    S,
    aware,
    canonical_identifier,
    china_date,
    effective_status,
    parse_status,
)
from .storage import DocumentStore

MAX_PAGE_SIZE = 500
DOCUMENT_KINDS = ("ofd", "pdf")
#: What an unknown licence's nonce is compared with: no recorded nonce (32 hex digits) equals it.
_NO_NONCE = b"-" * 32


_QR_NONCE = (select(LicenceRecord.id, LicenceRecord.qr_nonce)
             .where(LicenceRecord.identifier == bindparam("identifier")))
_ROW_BY_ID = select(LicenceRecord.__table__).where(LicenceRecord.__table__.c.id == bindparam("id"))
#: (mapped attribute, column name) of every column of a licence row.
_ROW_ATTRIBUTES = tuple((attribute.key, attribute.columns[0].name)
                        for attribute in sa_inspect(LicenceRecord).column_attrs)


def _now() -> datetime:
    return datetime.now(UTC)


def status_clause(status: LicenceStatus, today: date):
    """SQL for "the licence's effective status on ``today`` (China) is ``status``"."""
    live = LicenceRecord.status.in_([s.value for s in LIVE])
    if status is S.EXPIRED:
        return or_(LicenceRecord.status == status.value, and_(live, LicenceRecord.valid_until < today))
    if status in LIVE:
        return and_(LicenceRecord.status == status.value,
                    or_(LicenceRecord.valid_until.is_(None), LicenceRecord.valid_until >= today))
    return LicenceRecord.status == status.value


class LicenceLookups:
    """The reading half of the licence library (``db`` holds the rows, ``store`` the documents)."""

    db: Database
    store: DocumentStore

    def find(self, identifier: str | LicenceIdentifier) -> LicenceRecord:
        """The licence row; IdentifierError for a malformed identifier, LicenceNotFound if absent."""
        key = canonical_identifier(identifier)
        with self.db.transaction() as s:
            record = s.scalars(select(LicenceRecord).where(LicenceRecord.identifier == key)).first()
        if record is None:
            raise LicenceNotFound(key)
        return record

    def find_by_qr(self, identifier: str, nonce_hex: str) -> LicenceRecord | None:
        """The licence a QR code names, or None — for an unknown or malformed identifier and
        for a wrong nonce alike, so that the public service answers an enumerator the same way
        whatever it guessed.

        Only the row's id and nonce are read before the nonce is compared (in constant time,
        against a stand-in when the identifier is unknown), so a known identifier with a wrong
        nonce costs what an unknown one does: no licence row is loaded or decoded for it. The
        row is loaded only on a match."""
        try:
            key = canonical_identifier(identifier)
        except IdentifierError:
            key = None
        given = nonce_hex.strip().lower().encode("ascii", "replace") if isinstance(nonce_hex, str) else b""
        if key is None:
            return None  # malformed: the register cannot hold it
        # One read-only connection and SQLAlchemy Core, not two ORM sessions: this is the public
        # QR page's one look-up, and the ORM's unit of work cost more than both statements.
        with self.db.engine.connect() as conn:
            found = conn.execute(_QR_NONCE, {"identifier": key}).first()
            row_id, recorded = found if found is not None else (None, None)
            expected = recorded.encode("ascii") if recorded else _NO_NONCE
            if not hmac.compare_digest(expected, given) or row_id is None or not recorded:
                return None
            row = conn.execute(_ROW_BY_ID, {"id": row_id}).mappings().first()
        if row is None:
            return None
        record = LicenceRecord(**{attribute: row[column] for attribute, column in _ROW_ATTRIBUTES})
        make_transient_to_detached(record)  # the stored row, detached: never INSERTed again if added
        return record

    def live_licence(self, type_code: str, licence_number: str, now: datetime | None = None
                     ) -> LicenceRecord | None:
        """The live (valid or suspended at ``now``) licence of ``type_code`` numbered
        ``licence_number``, if there is one: at most one is, whoever issued it."""
        now = aware(now, "time") or _now()
        with self.db.transaction() as s:
            record = s.scalars(select(LicenceRecord).where(
                LicenceRecord.live_key == live_key(type_code, licence_number))).first()
        if record is None or effective_status(record.status, record.valid_until, now) not in LIVE:
            return None
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
        now = aware(now, "time") or _now()
        q = select(LicenceRecord)
        for column, value in ((LicenceRecord.type_code, type_code), (LicenceRecord.issuer_code, issuer_code)):
            if value is not None:
                q = q.where(column == str(value).strip().upper())
        if holder_code is not None:
            q = q.where(LicenceRecord.holder_code == str(holder_code).strip())
        if status is not None:
            q = q.where(status_clause(parse_status(status), china_date(now)))
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
        return effective_status(record.status, record.valid_until, aware(now, "time") or _now())

    def status_at(self, identifier: str | LicenceIdentifier, when: datetime) -> LicenceStatus | None:
        """The status the licence had at ``when``, from its history; None before it was issued."""
        when = aware(when, "time")
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
        status = effective_status(record.status, record.valid_until, aware(now, "time") or _now())
        return dataclasses.replace(issued, status=status)

    def document(self, identifier: str | LicenceIdentifier, kind: str) -> bytes:
        """The licence's signed ``"ofd"`` or ``"pdf"``, checked against the SM3 in its row."""
        if kind not in DOCUMENT_KINDS:
            raise LicenceRequestError(f"a licence's documents are 'ofd' and 'pdf', not {kind!r}")
        record = self.find(identifier)
        return self.store.get(record.ofd_sm3 if kind == "ofd" else record.pdf_sm3)
