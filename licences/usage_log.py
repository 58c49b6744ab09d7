"""The usage log (用证记录): every data-reuse access, in its own append-only table.

One row per request a department client made about a licence: who, which licence (when it
was found), which operation and fields, the stated purpose, when, under which grant and with
what outcome. The database refuses UPDATE and DELETE on the table (migration 0011), and each
row is written in the same transaction as its audit entry (``reuse.access``), so the two never
disagree. The holder reads the rows of their licence (:func:`usage_of_licence`: the rows naming
one of its versions, never those of another licence that had the same number); rows of
requests that found no licence have none and are seen by the audit only.

A request that was answered with a purpose-limited annotated copy (加注件,
:mod:`licences.annotated_copy`) records the copy in its row (migration 0012): its format, the
SM3 of its exact bytes (indexed: the public service recognises an uploaded copy by it, see
:mod:`verify_api.annotated_copies`), when it expires and the department's name as the copy
prints it (a client renamed later does not rename the copies it was given). Its ``fields`` are
every field of the licence — the copy prints them all, whatever the request's ``fields`` limited
the data to — so the holder's record says what was disclosed. A copy refused or failed is a row
too, with no copy: :data:`COPY_NOT_GRANTED`, :data:`COPY_LICENCE_NOT_VALID`,
:data:`COPY_NO_QR_PAYLOAD`, :data:`COPY_FAILED` or :data:`SEAL_UNAVAILABLE`.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import JSON, ForeignKey, Index, Integer, String, select
from sqlalchemy.orm import Mapped, mapped_column

from ledger.database import Base, Database, UtcDateTime

from .utc_text import iso_utc

#: Outcomes of a reuse request.
SERVED_DATA = "served-data"
SERVED_METADATA = "served-metadata"
NOT_FOUND = "not-found"
#: A licence number several of the client's types share, asked for without a type.
TYPE_REQUIRED = "licence-type-required"
#: An annotated copy asked for without a grant of all fields for the purpose (answered 403).
COPY_NOT_GRANTED = "annotated-copy-not-granted"
#: An annotated copy of a licence that is not valid now (suspended, expired, …; answered 409).
COPY_LICENCE_NOT_VALID = "annotated-copy-licence-not-valid"
#: An annotated copy of a licence recorded without its QR payload text (issued before annotated
#: copies existed; answered 409).
COPY_NO_QR_PAYLOAD = "annotated-copy-no-qr-payload"
#: The copy could not be made or sealed (a server fault; answered 500).
COPY_FAILED = "annotated-copy-failed"
#: The data service had no usable seal for the copy (answered 503).
SEAL_UNAVAILABLE = "seal-unavailable"
MAX_LIST = 500


class UsageRecord(Base):
    __tablename__ = "reuse_usage"
    __table_args__ = (Index("ix_reuse_usage_licence", "type_code", "licence_number"),
                      Index("ix_reuse_usage_identifier", "identifier"),
                      Index("ix_reuse_usage_client", "client_id"),
                      Index("ix_reuse_usage_copy_sm3", "copy_sm3"))

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    response_id: Mapped[str] = mapped_column(String(40), unique=True)
    at: Mapped[datetime] = mapped_column(UtcDateTime)
    client_id: Mapped[str] = mapped_column(ForeignKey("reuse_client.id"))
    operation: Mapped[str] = mapped_column(String(20))
    purpose: Mapped[str] = mapped_column(String(200))
    identifier: Mapped[str | None] = mapped_column(String(100))
    type_code: Mapped[str | None] = mapped_column(String(21))
    licence_number: Mapped[str | None] = mapped_column(String(100))
    grant_id: Mapped[str | None] = mapped_column(String(40))
    fields: Mapped[list[str]] = mapped_column(JSON)
    outcome: Mapped[str] = mapped_column(String(32))
    #: The annotated copy served with the answer (all None when there was none): its format, the
    #: SM3 of its bytes, its expiry and the client's name printed on it.
    copy_format: Mapped[str | None] = mapped_column(String(8))
    copy_sm3: Mapped[str | None] = mapped_column(String(64))
    copy_expires: Mapped[datetime | None] = mapped_column(UtcDateTime)
    copy_client_name: Mapped[str | None] = mapped_column(String(200))

    def as_dict(self, client_name: str | None = None) -> dict[str, Any]:
        return {"response_id": self.response_id, "at": iso_utc(self.at),
                "client_id": self.client_id, "client_name": client_name, "operation": self.operation,
                "purpose": self.purpose, "licence_identifier": self.identifier, "grant_id": self.grant_id,
                "fields": list(self.fields), "outcome": self.outcome,
                "annotated_copy": None if self.copy_sm3 is None else {
                    "format": self.copy_format, "sm3": self.copy_sm3, "client_name": self.copy_client_name,
                    "expires": iso_utc(self.copy_expires) if self.copy_expires else None}}


def usage_of_licence(db: Database, versions: Sequence[str], *, limit: int = 100
                     ) -> list[tuple[UsageRecord, str | None]]:
    """The usage rows of the licence whose ``versions`` these are
    (:func:`licences.succession.versions_of`), newest first, each with the client's name."""
    from .reuse_clients import DepartmentClient

    limit = max(1, min(int(limit), MAX_LIST))
    if not versions:
        return []
    with db.transaction() as s:
        rows = s.execute(select(UsageRecord, DepartmentClient.name)
                         .join(DepartmentClient, DepartmentClient.id == UsageRecord.client_id)
                         .where(UsageRecord.identifier.in_(list(versions)))
                         .order_by(UsageRecord.id.desc()).limit(limit)).all()
    return [(row, name) for row, name in rows]
