"""What the CA has issued and published, as database rows (tables made by migration 0002).

Certificates are stored as the exact DER that was signed; every other column is an index
into it, so the registry can always be checked against the certificates themselves.
Revocation is recorded on the certificate row (it is final: there is no "unrevoke").
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import ForeignKey, Integer, LargeBinary, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from ledger.database import Base, UtcDateTime


class CertificateRecord(Base):
    __tablename__ = "ca_certificate"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    serial: Mapped[str] = mapped_column(String(64))  # lower-case hex, no leading zeros
    issuer_id: Mapped[int | None] = mapped_column(ForeignKey("ca_certificate.id"))
    profile: Mapped[str] = mapped_column(String(32))
    subject: Mapped[str] = mapped_column(Text)
    credit_code: Mapped[str | None] = mapped_column(String(18))
    key_label: Mapped[str | None] = mapped_column(String(100))
    key_version: Mapped[int | None] = mapped_column(Integer)
    key_id: Mapped[str] = mapped_column(String(64))  # subject key identifier, hex
    not_before: Mapped[datetime] = mapped_column(UtcDateTime)
    not_after: Mapped[datetime] = mapped_column(UtcDateTime)
    fingerprint: Mapped[str] = mapped_column(String(64))  # SM3 of the DER, hex
    der: Mapped[bytes] = mapped_column(LargeBinary)
    renews_id: Mapped[int | None] = mapped_column(ForeignKey("ca_certificate.id"))
    issued_at: Mapped[datetime] = mapped_column(UtcDateTime)
    revoked_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    revocation_reason: Mapped[str | None] = mapped_column(String(32))
    invalidity_date: Mapped[datetime | None] = mapped_column(UtcDateTime)

    @property
    def serial_number(self) -> int:
        return int(self.serial, 16)

    @property
    def revoked(self) -> bool:
        return self.revoked_at is not None


class CrlRecord(Base):
    __tablename__ = "ca_crl"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    issuer_id: Mapped[int] = mapped_column(ForeignKey("ca_certificate.id"))
    number: Mapped[int] = mapped_column(Integer)
    this_update: Mapped[datetime] = mapped_column(UtcDateTime)
    next_update: Mapped[datetime] = mapped_column(UtcDateTime)
    der: Mapped[bytes] = mapped_column(LargeBinary)
