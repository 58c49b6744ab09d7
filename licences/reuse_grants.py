"""Holder grants (授权): a holder lets one department client read one licence's data.

A grant names the client, the licence version current when it was made (``identifier``: the
grant follows that version's chain of changes and renewals, as the holder's credential does, and
never reaches a new licence that reuses the licence number — :mod:`licences.succession`), the
fields (None: all of them),
the purpose (用证事由) the department must state to use it, and the moment it ends. It is read
from the database on every request — nothing caches it — so a revocation or the end of its
time stops it at once. Grants are never deleted: a revoked one keeps its row (the usage log
points at it); granting and revoking are audit entries.
"""

from __future__ import annotations

import secrets
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import JSON, ForeignKey, Index, String, select
from sqlalchemy.orm import Mapped, Session, mapped_column

from ledger.audit import AuditLog
from ledger.database import Base, Database, UtcDateTime

from .reuse_clients import DepartmentClient, ReuseError, ReuseRequestError
from .utc_text import iso_utc

MAX_GRANT = timedelta(days=366)
MIN_GRANT = timedelta(minutes=1)
MAX_FIELDS = 100
MAX_PURPOSE = 200


class GrantNotFound(ReuseError, LookupError):
    """No grant with this id for this holder's licence (another holder's reads the same)."""


class HolderGrant(Base):
    __tablename__ = "reuse_grant"
    __table_args__ = (Index("ix_reuse_grant_licence", "type_code", "licence_number"),
                      Index("ix_reuse_grant_identifier", "identifier"),
                      Index("ix_reuse_grant_client", "client_id"))

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    client_id: Mapped[str] = mapped_column(ForeignKey("reuse_client.id"))
    type_code: Mapped[str] = mapped_column(String(21))
    licence_number: Mapped[str] = mapped_column(String(100))
    identifier: Mapped[str] = mapped_column(String(100))  # the version current when granted
    granted_by: Mapped[str] = mapped_column(String(100))  # the holder credential's id
    fields: Mapped[list[str] | None] = mapped_column(JSON)
    purpose: Mapped[str] = mapped_column(String(200))
    granted_at: Mapped[datetime] = mapped_column(UtcDateTime)
    valid_until: Mapped[datetime] = mapped_column(UtcDateTime)
    revoked_at: Mapped[datetime | None] = mapped_column(UtcDateTime)

    def usable(self, now: datetime) -> bool:
        return self.revoked_at is None and self.granted_at <= now < self.valid_until

    def state(self, now: datetime) -> str:
        return "revoked" if self.revoked_at else "expired" if now >= self.valid_until else "active"

    def as_dict(self, now: datetime, client_name: str | None = None) -> dict[str, Any]:
        return {"id": self.id, "client_id": self.client_id, "client_name": client_name,
                "licence_identifier": self.identifier, "fields": self.fields, "purpose": self.purpose,
                "granted_at": iso_utc(self.granted_at), "valid_until": iso_utc(self.valid_until),
                "revoked_at": iso_utc(self.revoked_at) if self.revoked_at else None, "state": self.state(now)}


def normalise_purpose(purpose: object) -> str:
    """The purpose (用证事由) with its white space collapsed; ReuseRequestError if it is empty,
    longer than :data:`MAX_PURPOSE` characters or holds control characters."""
    if not isinstance(purpose, str):
        raise ReuseRequestError("a purpose (用证事由) is required")
    if any(ord(c) < 32 or 0x7F <= ord(c) < 0xA0 or c in "\u2028\u2029\u202a\u202b\u202c\u202d\u202e"
           for c in purpose if c not in " \t"):
        raise ReuseRequestError("the purpose (用证事由) may not hold control characters")
    text = " ".join(purpose.split())
    if not text:
        raise ReuseRequestError("a purpose (用证事由) is required")
    if len(text) > MAX_PURPOSE:
        raise ReuseRequestError(f"the purpose (用证事由) may be at most {MAX_PURPOSE} characters")
    return text


@dataclass(frozen=True)
class GrantedLicence:
    """The licence a holder grants access to, as their credential names it."""

    type_code: str
    licence_number: str
    identifier: str
    field_names: Sequence[str]  # the licence type's data fields (what may be granted)


class GrantBook:
    """Holders' grants: given, listed and revoked by the holder; looked up by the reuse service."""

    def __init__(self, db: Database, audit: AuditLog):
        self.db, self.audit = db, audit

    def grant(self, licence: GrantedLicence, client_id: str, *, purpose: str, valid_until: datetime,
              fields: Iterable[str] | None, granted_by: str, now: datetime | None = None) -> HolderGrant:
        """A new grant; ReuseRequestError for an inactive client, a bad time, purpose or field."""
        now = (now or datetime.now(UTC)).replace(microsecond=0)  # answers are timed to the second
        purpose = normalise_purpose(purpose)
        if not isinstance(valid_until, datetime) or valid_until.tzinfo is None:
            raise ReuseRequestError("valid_until must be a time with a zone")
        if not now + MIN_GRANT <= valid_until <= now + MAX_GRANT:
            raise ReuseRequestError(f"valid_until must be from one minute to {MAX_GRANT.days} days from now")
        chosen = None if fields is None else _checked_fields(fields, licence.field_names)
        with self.db.transaction() as s:
            client = s.get(DepartmentClient, client_id) if isinstance(client_id, str) else None
        if client is None or client.revoked_at is not None:
            raise ReuseRequestError(f"there is no active department client {str(client_id)[:40]!r}")
        row = HolderGrant(id="grant-" + secrets.token_hex(12), client_id=client.id,
                          type_code=licence.type_code,
                          licence_number=licence.licence_number, identifier=licence.identifier,
                          granted_by=granted_by, fields=chosen, purpose=purpose, granted_at=now,
                          valid_until=valid_until.astimezone(UTC))
        with self.db.transaction() as s:
            s.add(row)
            s.flush()
            self.audit.record("reuse.grant", actor=f"holder:{granted_by}", subject=f"reuse-grant:{row.id}",
                              details={"client_id": client.id, "licence": licence.identifier,
                                       "fields": chosen, "purpose": purpose,
                                       "valid_until": iso_utc(row.valid_until)}, session=s)
        return row

    def for_licence(self, versions: Sequence[str]) -> list[HolderGrant]:
        """Every grant ever made on this licence — on any of its ``versions``
        (:func:`licences.succession.versions_of`) — newest first."""
        if not versions:
            return []
        with self.db.transaction() as s:
            return list(s.scalars(select(HolderGrant).where(HolderGrant.identifier.in_(list(versions)))
                                  .order_by(HolderGrant.granted_at.desc(), HolderGrant.id)))

    def revoke(self, grant_id: str, versions: Sequence[str], *, revoked_by: str,
               now: datetime | None = None) -> HolderGrant:
        """Revoke one of this licence's grants (made on one of its ``versions``) at once;
        GrantNotFound for any other id."""
        now = now or datetime.now(UTC)
        with self.db.transaction() as s:
            row = s.get(HolderGrant, grant_id, with_for_update=True) if isinstance(grant_id, str) else None
            if row is None or row.identifier not in versions:
                raise GrantNotFound("no such grant on your licence")
            if row.revoked_at is None:
                row.revoked_at = now
                self.audit.record("reuse.grant.revoke", actor=f"holder:{revoked_by}",
                                  subject=f"reuse-grant:{row.id}",
                                  details={"client_id": row.client_id, "licence": row.identifier}, session=s)
        return row

    @staticmethod
    def usable_grant(session: Session, client_id: str, versions: Sequence[str], purpose: str,
                     now: datetime) -> HolderGrant | None:
        """The newest grant this client may use now on this licence (made on one of its
        ``versions``) for exactly this purpose. The caller has checked that the licence's current
        version still lets its holder act (:attr:`licences.succession.Current.usable`)."""
        if not versions:
            return None
        rows = session.scalars(select(HolderGrant).where(
            HolderGrant.client_id == client_id, HolderGrant.identifier.in_(list(versions)),
            HolderGrant.purpose == purpose,
            HolderGrant.revoked_at.is_(None), HolderGrant.valid_until > now)
            .order_by(HolderGrant.granted_at.desc(), HolderGrant.id))
        return next((row for row in rows if row.usable(now)), None)


def _checked_fields(fields: Iterable[str], known: Sequence[str]) -> list[str]:
    chosen = list(dict.fromkeys(fields))
    if not chosen or len(chosen) > MAX_FIELDS:
        raise ReuseRequestError(f"name 1 to {MAX_FIELDS} fields, or none for all of them")
    unknown = [f for f in chosen if not isinstance(f, str) or f not in known]
    if unknown:
        raise ReuseRequestError(f"this licence has no field {str(unknown[0])[:100]!r}")
    return chosen
