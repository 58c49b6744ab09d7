"""The signing service's tables (migration 0006): API keys and stored idempotent responses.

``service_api_key`` holds what a key may do and the SM3 of its secret, never the secret.
``service_idempotency`` remembers the first answer to a request carrying an
``Idempotency-Key``; its unique (api key, idempotency key) pair is what makes two
concurrent retries create one licence, on SQLite and on PostgreSQL alike.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from ledger.database import Base, UtcDateTime


class ApiKeyRecord(Base):
    __tablename__ = "service_api_key"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    key_id: Mapped[str] = mapped_column(String(32), unique=True)
    secret_sm3: Mapped[str] = mapped_column(String(64))
    department: Mapped[str] = mapped_column(String(18))  # the issuer's credit code
    types: Mapped[list[str]] = mapped_column(JSON)  # licence type codes, or ["*"]
    operations: Mapped[list[str]] = mapped_column(JSON)
    label: Mapped[str] = mapped_column(String(200))
    created_at: Mapped[datetime] = mapped_column(UtcDateTime)
    created_by: Mapped[str] = mapped_column(String(200))
    expires_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    revoked_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    revoked_reason: Mapped[str | None] = mapped_column(Text)


class IdempotencyRecord(Base):
    __tablename__ = "service_idempotency"
    __table_args__ = (UniqueConstraint("api_key_id", "idempotency_key", name="uq_service_idempotency_key"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    api_key_id: Mapped[str] = mapped_column(String(32))
    idempotency_key: Mapped[str] = mapped_column(String(255))
    fingerprint: Mapped[str] = mapped_column(String(64))  # SM3 of the request, hex
    state: Mapped[str] = mapped_column(String(10))  # "pending" or "done"
    status_code: Mapped[int | None] = mapped_column(Integer)
    response: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime)
    completed_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
