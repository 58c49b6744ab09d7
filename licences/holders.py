"""Holder credentials (持证人凭据): how the holder of a licence proves it to the public service.

The issuing side hands a holder a bearer token ``zyh_<credential id>_<secret>`` for one licence
(``zhengyin licence holder-credential``); the holder's app sends it to the public service to
show the licence live (亮证) and to manage who may reuse its data. The secret is 32 bytes from
:mod:`secrets`, shown once and kept only as a domain-separated SM3 bound to the credential id
(:mod:`ledger.bearer`, which says why a plain hash is enough for a 256-bit secret).

Bound to the licence, not to one version of it: the credential names the version it was issued
for, and every authentication follows that version's chain of changes and renewals
(``superseded_by``) to the version in force now. So a change or a renewal keeps the holder's
credential working, while a revoked (吊销) or cancelled (撤销) licence — and a deregistered or
transferred-out one, whose life here has ended too — stops it at once. A suspended or expired
licence keeps it: the holder may still show it (the verifier sees the red banner) and read who
used its data. A new licence that merely reuses the licence number is not followed.

Authentication has one answer for every failure (:class:`HolderAuthenticationFailed`): a
malformed token, an unknown id, a wrong secret, a revoked credential and a licence that has
ended are told apart only in the audit log, where failures are counted
(:class:`ledger.audit_tally.AuditTally`), not written one row per guess.
"""

from __future__ import annotations

import re
import secrets
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, NoReturn

from sqlalchemy import Index, String, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Mapped, mapped_column

from ledger import bearer
from ledger.audit import AuditLog
from ledger.audit_tally import AuditTally
from ledger.database import Base, Database, UtcDateTime

from .registry import LicenceRecord
from .states import LicenceNotFound, canonical_identifier
from .succession import Current, current_version, same_licence, versions_of

PURPOSE = "zhengyin-holder-credential"
PREFIX = "zyh"
ID_BYTES = 8
_TOKEN = re.compile(rf"{PREFIX}_([0-9a-f]{{{2 * ID_BYTES}}})_([0-9a-f]{{{2 * bearer.SECRET_BYTES}}})")
GENERIC_MESSAGE = "the holder credential is not valid"


class HolderCredentialRecord(Base):
    """One credential (migration 0010). ``licence_identifier`` is the version it was issued
    for; type, licence number and holder code are what every later version must keep."""

    __tablename__ = "holder_credential"
    __table_args__ = (Index("ix_holder_credential_licence", "type_code", "licence_number"),
                      Index("ix_holder_credential_identifier", "licence_identifier"))

    id: Mapped[int] = mapped_column(primary_key=True)
    credential_id: Mapped[str] = mapped_column(String(32), unique=True)
    secret_sm3: Mapped[str] = mapped_column(String(64))
    licence_identifier: Mapped[str] = mapped_column(String(100))
    type_code: Mapped[str] = mapped_column(String(21))
    licence_number: Mapped[str] = mapped_column(String(100))
    holder_code: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(UtcDateTime)
    created_by: Mapped[str] = mapped_column(String(200))
    revoked_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    revoked_by: Mapped[str | None] = mapped_column(String(200))


@dataclass(frozen=True)
class Holder:
    """Who authenticated: the holder of one licence (no secret in here)."""

    credential_id: str      # public id of the credential (not secret)
    licence_type: str       # type code
    licence_number: str     # the licence number: the credential follows new versions of it
    holder_code: str        # holder's ID/credit code

    def __repr__(self) -> str:  # the holder code is personal data: keep it out of logs by accident
        return f"Holder(credential_id={self.credential_id!r}, licence_type={self.licence_type!r})"


class HolderCredentialError(Exception):
    """Base class of the issuing side's errors about holder credentials."""


class HolderCredentialNotFound(HolderCredentialError, LookupError):
    def __init__(self, credential_id: str):
        self.credential_id = credential_id
        super().__init__(f"no holder credential {credential_id!r}")


class HolderCredentialRefused(HolderCredentialError):
    """The act is not allowed now (a credential for a revoked licence, revoking twice, …)."""


class HolderAuthenticationFailed(Exception):
    """A holder token does not authenticate. One generic message, never why."""

    def __init__(self) -> None:
        super().__init__(GENERIC_MESSAGE)


def credential_id_of(token: str | None) -> str | None:
    """The credential id of a well-formed token (nothing about whether it exists), else None."""
    match = _TOKEN.fullmatch(token.strip()) if isinstance(token, str) else None
    return match.group(1) if match else None


class HolderCredentials:
    """Issues, revokes and checks holder credentials; every issue and revocation is audited,
    failed authentications are counted (``failure_window`` seconds an audit entry)."""

    def __init__(self, db: Database, audit: AuditLog, *, now: Callable[[], datetime] | None = None,
                 failure_window: float = 60.0, monotonic: Callable[[], float] | None = None):
        self.db, self.audit = db, audit
        self.now = now or (lambda: datetime.now(UTC))
        extra = {"clock": monotonic} if monotonic else {}
        self.failures = AuditTally(audit, "licence.holder_credential.auth_failed", actor="verify_api",
                                   subject="holder-credentials", window=failure_window,
                                   wall_clock=self.now, **extra)

    # ---- the issuing side ----------------------------------------------------------------
    def issue(self, identifier: str, *, actor: str) -> tuple[str, str]:
        """A new credential for the licence ``identifier``: (credential id, token). The token is
        the only copy of the secret. IdentifierError, LicenceNotFound, or HolderCredentialRefused
        when the licence's current version has ended (revoked, cancelled, …)."""
        key = canonical_identifier(identifier)
        with self.db.transaction() as s:
            record = s.scalars(select(LicenceRecord).where(LicenceRecord.identifier == key)).first()
            if record is None:
                raise LicenceNotFound(key)
            current = current_version(s, record, self.now())
        if not current.usable:
            state = current.status.name.lower() if current.status else "unknown"
            raise HolderCredentialRefused(f"licence {key} is {state} now: its holder cannot be given "
                                          "a credential")
        licence = current.record
        for _ in range(3):
            credential_id, secret = secrets.token_hex(ID_BYTES), bearer.new_secret()
            row = HolderCredentialRecord(
                credential_id=credential_id, secret_sm3=bearer.secret_hash(PURPOSE, credential_id, secret),
                licence_identifier=licence.identifier, type_code=licence.type_code,
                licence_number=licence.licence_number, holder_code=licence.holder_code,
                created_at=self.now(), created_by=actor)
            try:
                with self.db.transaction() as s:
                    s.add(row)
                    s.flush()
                    self.audit.record("licence.holder_credential.issue", actor=actor,
                                      subject=f"holder-credential:{credential_id}",
                                      details={"licence": licence.identifier, "asked_for": key}, session=s)
            except IntegrityError:  # an id drawn twice: 2^-64, but never reuse one
                continue
            return credential_id, f"{PREFIX}_{credential_id}_{secret}"
        raise HolderCredentialError("could not draw an unused credential id; try again")

    def revoke(self, credential_id: str, *, actor: str) -> None:
        """Revoke a credential at once: its next use is refused."""
        credential_id = str(credential_id).strip()
        with self.db.transaction() as s:
            row = s.scalars(select(HolderCredentialRecord)
                            .where(HolderCredentialRecord.credential_id == credential_id)).first()
            if row is None:
                raise HolderCredentialNotFound(credential_id)
            moved = s.execute(update(HolderCredentialRecord)
                              .where(HolderCredentialRecord.id == row.id,
                                     HolderCredentialRecord.revoked_at.is_(None))
                              .values(revoked_at=self.now(), revoked_by=actor))
            if moved.rowcount != 1:
                raise HolderCredentialRefused(f"holder credential {credential_id} is already revoked")
            self.audit.record("licence.holder_credential.revoke", actor=actor,
                              subject=f"holder-credential:{credential_id}",
                              details={"licence": row.licence_identifier}, session=s)

    def credentials_of(self, identifier: str) -> list[dict[str, Any]]:
        """The credentials of a licence (any version of it, not another licence reusing its number),
        oldest first, without secrets."""
        key = canonical_identifier(identifier)
        with self.db.transaction() as s:
            record = s.scalars(select(LicenceRecord).where(LicenceRecord.identifier == key)).first()
            if record is None:
                raise LicenceNotFound(key)
            current = current_version(s, record, self.now()).record or record
            rows = s.scalars(select(HolderCredentialRecord).where(
                HolderCredentialRecord.licence_identifier.in_(versions_of(s, current)))
                .order_by(HolderCredentialRecord.id))
            return [{"credential_id": r.credential_id, "issued_for": r.licence_identifier,
                     "created_at": r.created_at.isoformat(), "created_by": r.created_by,
                     "revoked_at": r.revoked_at.isoformat() if r.revoked_at else None} for r in rows]

    # ---- the public side -----------------------------------------------------------------
    def authenticate(self, token: str) -> Holder:
        """The holder a token belongs to, if its secret matches, it is not revoked and its
        licence has not ended; HolderAuthenticationFailed (one answer) otherwise."""
        match = _TOKEN.fullmatch(token.strip()) if isinstance(token, str) else None
        credential_id, secret = match.groups() if match else ("", "")
        row = None
        if match:
            with self.db.transaction() as s:
                row = s.scalars(select(HolderCredentialRecord)
                                .where(HolderCredentialRecord.credential_id == credential_id)).first()
        if not bearer.matches(row.secret_sm3 if row else None, PURPOSE, credential_id, secret) or row is None:
            self._failed("malformed" if not match else "unknown" if row is None else "mismatch",
                         credential_id if row is not None else None)
        assert row is not None
        reason = self._unusable(row)
        if reason:
            self._failed(reason, row.credential_id)
        self.failures.flush()
        return Holder(row.credential_id, row.type_code, row.licence_number, row.holder_code)

    def current_identifier(self, holder: Holder) -> str:
        """The identifier of the version of the holder's licence in force now (it follows
        changes and renewals); HolderAuthenticationFailed if the credential or licence ended."""
        with self.db.transaction() as s:
            row = s.scalars(select(HolderCredentialRecord)
                            .where(HolderCredentialRecord.credential_id == holder.credential_id)).first()
            if row is None or row.revoked_at is not None:
                raise HolderAuthenticationFailed()
            start = s.scalars(select(LicenceRecord)
                              .where(LicenceRecord.identifier == row.licence_identifier)).first()
            current = current_version(s, start, self.now()) if start is not None else Current(None, None)
        if not current.usable or not same_licence(row, current.record):
            raise HolderAuthenticationFailed()
        return current.record.identifier

    def flush_due(self) -> None:
        """Write the counted failures if their window has passed (called periodically)."""
        self.failures.flush()

    def close(self) -> None:
        """Write the failures still counted to the audit log (at shutdown)."""
        self.failures.close()

    # ---- helpers ---------------------------------------------------------------------------
    def _failed(self, reason: str, credential_id: str | None) -> NoReturn:
        self.failures.add(reason, f"holder-credential:{credential_id}" if credential_id else None)
        raise HolderAuthenticationFailed()

    def _unusable(self, row: HolderCredentialRecord) -> str | None:
        if row.revoked_at is not None:
            return "revoked"
        try:
            self.current_identifier(Holder(row.credential_id, row.type_code, row.licence_number,
                                           row.holder_code))
        except HolderAuthenticationFailed:
            return "licence_ended"
        return None

