"""The licence library (证照库) as database rows (tables made by migration 0004).

A licence row holds the metadata as issued (``metadata``), the licence data the documents
were rendered from (``data``) and the SM3 of its signed OFD and PDF in the document store;
the other columns index them, and ``status`` is the only thing that changes afterwards (with
``superseded_by`` when a change or renewal replaces it). Every change of status is a row in
``licence_event``, which the database keeps append-only, as it does the audit log.

Serials are counted per issuer in ``licence_serial`` (across all its licence types, so that
a serial names one licence of an issuer whatever its type): one atomic
``INSERT … ON CONFLICT DO UPDATE … RETURNING`` per allocation on both databases, so two
transactions can never receive the same serial. A serial allocated by a transaction that
later fails is simply never used (gaps are allowed; reuse is not): the identifier's unique
constraint is the last word either way.

``live_key`` (``<type code>/<licence number>`` while the licence is valid or suspended, NULL
otherwise) is unique, so the database itself refuses a second live licence with the same
licence number, however many issuances race (revision 0005).
"""

from __future__ import annotations

import functools
from datetime import date, datetime
from typing import Any, ClassVar

from sqlalchemy import JSON, BigInteger, Date, FetchedValue, ForeignKey, Integer, String, Text, bindparam
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Mapped, Session, mapped_column

from ledger.database import Base, DatabaseError, UtcDateTime

#: The most serials one call may reserve (bulk conversion reserves blocks).
MAX_SERIAL_BLOCK = 100_000


class LicenceRecord(Base):
    __tablename__ = "licence"
    #: ``qr_payload`` (a FetchedValue: left out of an INSERT that does not set it) is not fetched
    #: back after an insert either, so rows are still written on a schema before revision 0012.
    __mapper_args__: ClassVar[dict[str, Any]] = {"eager_defaults": False}

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    identifier: Mapped[str] = mapped_column(String(100), unique=True)
    type_code: Mapped[str] = mapped_column(String(21))
    issuer_code: Mapped[str] = mapped_column(String(18))
    serial: Mapped[int] = mapped_column(BigInteger)
    version: Mapped[int] = mapped_column(Integer)
    licence_number: Mapped[str] = mapped_column(String(100))
    holder_name: Mapped[str] = mapped_column(String(200))
    holder_code: Mapped[str] = mapped_column(String(64))
    status: Mapped[str] = mapped_column(String(2))  # a LicenceStatus code, as recorded
    status_changed_at: Mapped[datetime] = mapped_column(UtcDateTime)
    status_reason: Mapped[str | None] = mapped_column(Text)
    valid_from: Mapped[date] = mapped_column(Date)
    valid_until: Mapped[date | None] = mapped_column(Date)  # None: long-term (长期)
    # ``metadata`` is taken by SQLAlchemy's declarative base; the column keeps the plain name.
    licence_metadata: Mapped[dict[str, Any]] = mapped_column("metadata", JSON)
    data: Mapped[dict[str, Any]] = mapped_column(JSON)
    ofd_sm3: Mapped[str] = mapped_column(String(64), index=True)
    pdf_sm3: Mapped[str] = mapped_column(String(64), index=True)
    previous_identifier: Mapped[str | None] = mapped_column(String(100), unique=True)
    superseded_by: Mapped[str | None] = mapped_column(String(100))
    source_id: Mapped[str | None] = mapped_column(String(200))
    created_at: Mapped[datetime] = mapped_column(UtcDateTime)
    #: Hex of the QR code's 16-byte random part (None for licences recorded before revision 0005).
    qr_nonce: Mapped[str | None] = mapped_column(String(32))
    #: The text of the QR code printed on the documents, as the issuer signed it (revision 0012):
    #: an annotated copy prints it again. None for licences recorded before. Deferred, and left
    #: out of INSERTs that do not set it: only the copy reads it, and code that runs on a schema
    #: before 0012 (the migration tests' down-and-up) still reads and writes rows.
    qr_payload: Mapped[str | None] = mapped_column(Text, deferred=True, server_default=FetchedValue())
    #: ``<type code>/<licence number>`` while the licence is live (valid or suspended), else None;
    #: unique, so the database refuses a second live licence with one licence number.
    live_key: Mapped[str | None] = mapped_column(String(130), unique=True)


class LicenceEvent(Base):
    """One act on a licence: which, from what status to what, who, when and why."""

    __tablename__ = "licence_event"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    licence_id: Mapped[int] = mapped_column(ForeignKey("licence.id"))
    from_status: Mapped[str | None] = mapped_column(String(2))
    to_status: Mapped[str] = mapped_column(String(2))
    act: Mapped[str] = mapped_column(String(16))
    actor: Mapped[str] = mapped_column(String(200))
    at: Mapped[datetime] = mapped_column(UtcDateTime)
    reason: Mapped[str | None] = mapped_column(Text)


def live_key(type_code: str, licence_number: str) -> str:
    """The value of ``live_key`` for a live licence of ``type_code`` numbered ``licence_number``."""
    return f"{type_code}/{licence_number}"


class SerialCounter(Base):
    """The next serial to give out for one issuer (whatever the licence type)."""

    __tablename__ = "licence_serial"

    issuer_code: Mapped[str] = mapped_column(String(18), primary_key=True)
    next_serial: Mapped[int] = mapped_column(BigInteger)


_INSERTS = {"postgresql": postgresql.insert, "sqlite": sqlite.insert}


@functools.cache
def _advance(dialect: str):
    """The one statement that reads and advances an issuer's counter, for ``dialect``: built
    once (bound parameters ``issuer``, ``end`` and ``count``), not per allocation."""
    insert = _INSERTS.get(dialect)
    if insert is None:
        raise DatabaseError(f"serial allocation supports SQLite and PostgreSQL, not {dialect}")
    table = SerialCounter.__table__
    return (insert(table)
            .values(issuer_code=bindparam("issuer"), next_serial=bindparam("end"))
            .on_conflict_do_update(index_elements=[table.c.issuer_code],
                                   set_={"next_serial": table.c.next_serial + bindparam("count")})
            .returning(table.c.next_serial))


def allocate_serials(session: Session, issuer_code: str, count: int) -> range:
    """Reserve ``count`` consecutive serials (from 1 up) for ``issuer_code``, for any licence type.

    One statement reads and advances the counter under the row's lock, which is held to the
    end of ``session``'s transaction: concurrent allocators for the same issuer wait for it,
    others do not. Allocate in a short transaction of its own (or first in a transaction) so
    that the lock is brief and, on SQLite, the write lock is taken before any read.
    """
    if isinstance(count, bool) or not isinstance(count, int) or not 1 <= count <= MAX_SERIAL_BLOCK:
        raise ValueError(f"count must be a whole number from 1 to {MAX_SERIAL_BLOCK}, not {count!r}")
    statement = _advance(session.get_bind().dialect.name)
    end = session.connection().execute(statement, {"issuer": issuer_code, "end": 1 + count,
                                                   "count": count}).scalar_one()
    return range(end - count, end)


def allocate_serial(session: Session, issuer_code: str) -> int:
    """The next unused serial of ``issuer_code`` (see :func:`allocate_serials`)."""
    return allocate_serials(session, issuer_code, 1).start
