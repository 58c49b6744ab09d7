"""Live presentations (亮证): a short-lived, single-use QR code a holder shows for their licence.

The public service holds no signing key, so a presentation is not signed: it is a random
256-bit token (base32, upper case, so that ``<base>/P/<token>`` stays in the QR code's compact
alphanumeric mode) kept server-side as its SM3 (:mod:`ledger.bearer`) with the licence it
presents, the credential that minted it, when it expires and when it was used. Whoever opens it
first, within its lifetime, sees that the licence was presented live and the licence's masked
verdict; every later, late or unknown opening gets one answer, :class:`PresentationNotValid`.
A screenshot of an old code is therefore worth nothing.

Consuming is one ``UPDATE … WHERE used_at IS NULL AND expires_at > now AND <credential not
revoked> RETURNING``: of two concurrent openings the database lets exactly one change the row
(PostgreSQL re-checks the condition after the first commit; SQLite serialises writers). The
audit entry of the opening is written in the same transaction. Refused openings are counted,
not written one row each (:class:`ledger.audit_tally.AuditTally`).
"""

from __future__ import annotations

import base64
import re
import secrets
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import NoReturn

from sqlalchemy import ForeignKey, String, delete, select, update
from sqlalchemy.orm import Mapped, mapped_column

from ledger import bearer
from ledger.audit import AuditLog
from ledger.audit_tally import AuditTally
from ledger.database import Base, Database, UtcDateTime
from licences.holders import Holder, HolderCredentialRecord
from licences.qr_url import verification_base

PURPOSE = "zhengyin-presentation"
TOKEN_BYTES = 32
#: 32 bytes in base32 without padding: 52 characters of A-Z and 2-7.
TOKEN = re.compile(r"[A-Z2-7]{52}")
PATH = "P/"
NOT_VALID_MESSAGE = "presentation not valid (expired or already used)"
#: Expired presentations are deleted this long after their expiry, a few at every minting.
KEEP_EXPIRED = timedelta(days=1)
PURGE_BATCH = 100


class PresentationRecord(Base):
    """One presentation (migration 0010); ``token_sm3`` is the only trace of its token."""

    __tablename__ = "holder_presentation"

    id: Mapped[int] = mapped_column(primary_key=True)
    token_sm3: Mapped[str] = mapped_column(String(64), unique=True)
    credential_id: Mapped[str] = mapped_column(String(32), ForeignKey("holder_credential.credential_id"),
                                               index=True)
    licence_identifier: Mapped[str] = mapped_column(String(100))
    created_at: Mapped[datetime] = mapped_column(UtcDateTime)
    expires_at: Mapped[datetime] = mapped_column(UtcDateTime, index=True)
    used_at: Mapped[datetime | None] = mapped_column(UtcDateTime)


class PresentationNotValid(Exception):
    """Unknown, expired, already used or revoked: one answer for all (never says which)."""

    def __init__(self) -> None:
        super().__init__(NOT_VALID_MESSAGE)


@dataclass(frozen=True)
class Presentation:
    """A minted presentation: ``url`` is what the QR code holds (shown once, not kept)."""

    url: str
    licence_identifier: str
    created_at: datetime
    expires_at: datetime

    def __repr__(self) -> str:  # the URL is a bearer secret
        return f"Presentation(licence_identifier={self.licence_identifier!r}, expires_at={self.expires_at!r})"


@dataclass(frozen=True)
class Opened:
    """A presentation consumed by this opening: which licence, when it was shown and opened."""

    licence_identifier: str
    presented_at: datetime
    opened_at: datetime


def token_hash(token: str) -> str:
    return bearer.secret_hash(PURPOSE, "", token)


def presentation_base(public_url: str) -> str:
    """``HTTPS://HOST/P/`` for the public URL (upper-cased scheme and host: QR alphanumeric)."""
    return verification_base(public_url.rstrip("/") + "/" + PATH)


class Presentations:
    """Mints and consumes presentations of ``lifetime`` seconds under ``public_url``."""

    def __init__(self, db: Database, audit: AuditLog, *, lifetime: int, public_url: str,
                 now: Callable[[], datetime] | None = None, refusal_window: float = 60.0,
                 monotonic: Callable[[], float] | None = None):
        self.db, self.audit, self.lifetime = db, audit, timedelta(seconds=lifetime)
        self.base = presentation_base(public_url)
        self.now = now or (lambda: datetime.now(UTC))
        extra = {"clock": monotonic} if monotonic else {}
        self.refusals = AuditTally(audit, "licence.presentation.refused", actor="verify_api",
                                   subject="presentations", window=refusal_window, wall_clock=self.now,
                                   **extra)

    def mint(self, holder: Holder, identifier: str) -> Presentation:
        """A new presentation of licence ``identifier`` (the holder's current version, which the
        caller has resolved with :meth:`licences.holders.HolderCredentials.current_identifier`)."""
        token = base64.b32encode(secrets.token_bytes(TOKEN_BYTES)).decode().rstrip("=")
        now = self.now()
        expires = now + self.lifetime
        with self.db.transaction() as s:
            s.add(PresentationRecord(token_sm3=token_hash(token), credential_id=holder.credential_id,
                                     licence_identifier=identifier, created_at=now, expires_at=expires))
            s.flush()
            self.audit.record("licence.presentation.mint", actor=f"holder:{holder.credential_id}",
                              subject=f"licence:{identifier}",
                              details={"expires_at": expires.isoformat()}, session=s)
        self._purge(now)
        return Presentation(self.base + token, identifier, now, expires)

    def consume(self, token: str) -> Opened:
        """Use the presentation up, or PresentationNotValid; exactly one opening ever succeeds."""
        token = token.strip() if isinstance(token, str) else ""
        if not TOKEN.fullmatch(token):
            self._refused("malformed")
        digest, now = token_hash(token), self.now()
        in_force = (select(HolderCredentialRecord.credential_id)
                    .where(HolderCredentialRecord.revoked_at.is_(None)))
        with self.db.transaction() as s:
            used = s.execute(
                update(PresentationRecord)
                .where(PresentationRecord.token_sm3 == digest, PresentationRecord.used_at.is_(None),
                       PresentationRecord.expires_at > now, PresentationRecord.credential_id.in_(in_force))
                .values(used_at=now)
                .returning(PresentationRecord.licence_identifier, PresentationRecord.created_at,
                           PresentationRecord.credential_id)).first()
            if used is not None:
                identifier, created, credential = used
                self.audit.record("licence.presentation.open", actor="verify_api",
                                  subject=f"licence:{identifier}",
                                  details={"credential": credential, "presented_at": created.isoformat()},
                                  session=s)
                return Opened(identifier, created, now)
        self._refused(*self._why(digest, now))

    def flush_due(self) -> None:
        """Write the counted refusals if their window has passed (called periodically)."""
        self.refusals.flush()

    def close(self) -> None:
        """Write the refusals still counted to the audit log (at shutdown)."""
        self.refusals.close()

    def _why(self, digest: str, now: datetime) -> tuple[str, str | None]:
        """Why an opening was refused, for the audit tally only."""
        with self.db.transaction() as s:
            row = s.scalars(select(PresentationRecord).where(PresentationRecord.token_sm3 == digest)).first()
        if row is None:
            return "unknown", None
        reason = "used" if row.used_at is not None else "expired" if row.expires_at <= now else "revoked"
        return reason, f"licence:{row.licence_identifier}"

    def _refused(self, reason: str, subject: str | None = None) -> NoReturn:
        self.refusals.add(reason, subject)
        raise PresentationNotValid()

    def _purge(self, now: datetime) -> None:
        """Delete a few presentations expired more than :data:`KEEP_EXPIRED` ago (their opening
        is in the audit log; the rows only keep the table small)."""
        old = (select(PresentationRecord.id).where(PresentationRecord.expires_at < now - KEEP_EXPIRED)
               .limit(PURGE_BATCH))
        with self.db.transaction() as s:
            s.execute(delete(PresentationRecord).where(PresentationRecord.id.in_(old)))
