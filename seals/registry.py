"""The seal registry as database rows (tables made by migration 0003).

A seal row holds the exact SESeal DER the maker signed once it is made; the other columns
index it (and hold what exists before it is made: the application). Signer certificates stay
in the CA registry and are linked, not copied. Every change of status is a row in
``seal_event``, which the database keeps append-only, as it does the audit log.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import ForeignKey, Integer, LargeBinary, String, Text
from sqlalchemy.orm import Mapped, mapped_column, relationship

from ca.registry import CertificateRecord
from ledger.database import Base, UtcDateTime

from .lifecycle import SealKind, SealStatus, effective_status


class SealSigner(Base):
    """One certificate listed in the seal's certList (certListType 1), in list order."""

    __tablename__ = "seal_signer"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    seal_id: Mapped[int] = mapped_column(ForeignKey("seal.id"))
    position: Mapped[int] = mapped_column(Integer)
    certificate_id: Mapped[int] = mapped_column(ForeignKey("ca_certificate.id"))
    certificate: Mapped[CertificateRecord] = relationship(lazy="joined", innerjoin=True)


class SealEvent(Base):
    """One move of a seal's status: who, when, from what, to what, and why."""

    __tablename__ = "seal_event"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    seal_id: Mapped[int] = mapped_column(ForeignKey("seal.id"))
    from_status: Mapped[str | None] = mapped_column(String(16))
    to_status: Mapped[str] = mapped_column(String(16))
    actor: Mapped[str] = mapped_column(String(200))
    at: Mapped[datetime] = mapped_column(UtcDateTime)
    reason: Mapped[str | None] = mapped_column(Text)


class SealRecord(Base):
    __tablename__ = "seal"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    es_id: Mapped[str] = mapped_column(String(14))
    area_code: Mapped[str] = mapped_column(String(6))
    serial: Mapped[int] = mapped_column(Integer)
    kind: Mapped[str] = mapped_column(String(32))
    seal_type: Mapped[int] = mapped_column(Integer)
    name: Mapped[str] = mapped_column(String(200))
    department: Mapped[str] = mapped_column(String(200))
    credit_code: Mapped[str] = mapped_column(String(18))
    holder: Mapped[str | None] = mapped_column(String(100))  # the person of a personal seal
    status: Mapped[str] = mapped_column(String(16))           # as recorded; see effective_status
    status_changed_at: Mapped[datetime] = mapped_column(UtcDateTime)
    status_reason: Mapped[str | None] = mapped_column(Text)
    valid_days: Mapped[int] = mapped_column(Integer)
    valid_from: Mapped[datetime | None] = mapped_column(UtcDateTime)  # as applied for
    signer_count: Mapped[int] = mapped_column(Integer)
    applied_at: Mapped[datetime] = mapped_column(UtcDateTime)
    made_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    valid_start: Mapped[datetime | None] = mapped_column(UtcDateTime)
    valid_end: Mapped[datetime | None] = mapped_column(UtcDateTime)
    der: Mapped[bytes | None] = mapped_column(LargeBinary)
    fingerprint: Mapped[str | None] = mapped_column(String(64))  # SM3 of the DER, hex
    picture_type: Mapped[str | None] = mapped_column(String(8))
    width_mm: Mapped[int | None] = mapped_column(Integer)
    height_mm: Mapped[int | None] = mapped_column(Integer)
    signers: Mapped[list[SealSigner]] = relationship(lazy="selectin", order_by=SealSigner.position)

    @property
    def seal_kind(self) -> SealKind:
        return SealKind(self.kind)

    def status_at(self, now: datetime) -> SealStatus:
        """The status as it stands at ``now`` (expired once the validity end has passed)."""
        return effective_status(self.status, self.valid_end, now)

    @property
    def certificates(self) -> list[CertificateRecord]:
        return [s.certificate for s in self.signers]
