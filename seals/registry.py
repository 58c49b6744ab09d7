"""The seal registry as database rows (tables made by migrations 0003 and 0008).

A seal row holds the exact SESeal DER the maker signed once it is made — the seal's *current
version*, the one that signs; the other columns index it (and hold what exists before it is
made: the application). A key rotation (:mod:`seals.rotation`) makes a new version of the
same seal (same esID, new signer key and certificate, a new SESeal): every version's DER and
fingerprint stay in ``seal_version``, because documents signed before still carry the old
one, and a verifier must recognise them as this seal's. Signer certificates stay in the CA
registry and are linked, not copied, each link naming the version whose certList lists it.
Every change of status is a row in ``seal_event``, which the database keeps append-only, as
it does the audit log.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import ForeignKey, Integer, LargeBinary, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from ca.registry import CertificateRecord
from ledger.database import Base, UtcDateTime

from .lifecycle import SealKind, SealStatus, effective_status


class SealSigner(Base):
    """One certificate listed in the certList (certListType 1) of one version of the seal, in
    list order."""

    __tablename__ = "seal_signer"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    seal_id: Mapped[int] = mapped_column(ForeignKey("seal.id"))
    version: Mapped[int] = mapped_column(Integer, default=1)  # the seal version (seal_version.version)
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


class SealVersion(Base):
    """One version of a made seal: the SESeal DER as the maker signed it, kept for ever.

    Version 1 is what :meth:`seals.office.SealOffice.make` made; each key rotation adds the
    next. ``superseded_at`` is when the next version took over signing (None for the current
    one): a document carrying this version and claiming a later signing time was not signed
    by this service."""

    __tablename__ = "seal_version"
    __table_args__ = (UniqueConstraint("seal_id", "version", name="uq_seal_version_seal_version"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    seal_id: Mapped[int] = mapped_column(ForeignKey("seal.id"))
    version: Mapped[int] = mapped_column(Integer)
    der: Mapped[bytes] = mapped_column(LargeBinary)
    fingerprint: Mapped[str] = mapped_column(String(64), unique=True)  # SM3 of the DER, hex
    made_at: Mapped[datetime] = mapped_column(UtcDateTime)
    valid_start: Mapped[datetime] = mapped_column(UtcDateTime)
    valid_end: Mapped[datetime] = mapped_column(UtcDateTime)
    superseded_at: Mapped[datetime | None] = mapped_column(UtcDateTime)


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
    #: The signer links of every version (a handful of rows); :attr:`certificates` picks the current.
    signers: Mapped[list[SealSigner]] = relationship(
        lazy="selectin", order_by=[SealSigner.version, SealSigner.position])

    @property
    def seal_kind(self) -> SealKind:
        return SealKind(self.kind)

    def status_at(self, now: datetime) -> SealStatus:
        """The status as it stands at ``now`` (expired once the validity end has passed)."""
        return effective_status(self.status, self.valid_end, now)

    @property
    def version(self) -> int:
        """The current seal version: the highest one (a rotation adds it and its signers in one
        transaction); 0 for a seal not made yet."""
        return max((s.version for s in self.signers), default=0)

    @property
    def certificates(self) -> list[CertificateRecord]:
        """The signer certificates of the current version, in certList order."""
        current = self.version
        return [s.certificate for s in self.signers if s.version == current]

    @property
    def all_certificates(self) -> list[CertificateRecord]:
        """The signer certificates of every version, oldest version first."""
        return [s.certificate for s in self.signers]
