"""The audit log: append-only and hash-chained.

Every security-relevant act (key generation and rotation, certificate issuance and
revocation, seal and licence events, data access) is a row. Each row's ``hash`` is the SM3
of its canonical JSON ``payload``, and the payload holds the previous row's hash, so
removing, reordering or editing any row breaks the chain from there on. The database
refuses UPDATE and DELETE on the table (triggers from migration 0001); :meth:`AuditLog.verify`
finds what a privileged operator could still do by going around the database.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import BigInteger, DateTime, String, Text, select, text
from sqlalchemy.orm import Mapped, Session, mapped_column

from hsm.sm3 import sm3

from .database import Base, Database

GENESIS = "0" * 64
_SECRET_WORDS = ("private", "passphrase", "password", "secret", "scalar")


class AuditError(Exception):
    """An audit entry could not be written (the caller's act must not proceed)."""


class AuditRecord(Base):
    __tablename__ = "audit_log"

    seq: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    actor: Mapped[str] = mapped_column(String(200))
    action: Mapped[str] = mapped_column(String(64), index=True)
    subject: Mapped[str] = mapped_column(String(300), index=True)
    payload: Mapped[str] = mapped_column(Text)
    prev_hash: Mapped[str] = mapped_column(String(64))
    hash: Mapped[str] = mapped_column(String(64), unique=True)

    @property
    def details(self) -> dict[str, Any]:
        return json.loads(self.payload).get("details", {})


@dataclass(frozen=True)
class ChainReport:
    """The outcome of :meth:`AuditLog.verify`."""

    ok: bool
    entries: int
    head_hash: str
    broken_at: int | None = None
    problem: str | None = None

    def as_dict(self) -> dict[str, Any]:
        return {"ok": self.ok, "entries": self.entries, "head_hash": self.head_hash,
                "broken_at": self.broken_at, "problem": self.problem}


def _canonical(obj: dict[str, Any]) -> str:
    return json.dumps(obj, ensure_ascii=False, sort_keys=True, separators=(",", ":"))


def _refuse_secrets(details: Any, path: str = "details") -> None:
    """A safety net: secrets never reach the audit log, whatever a caller passes."""
    if isinstance(details, dict):
        for key, value in details.items():
            if any(word in str(key).lower() for word in _SECRET_WORDS):
                raise AuditError(f"refusing to write {path}.{key} to the audit log: it looks like a secret")
            _refuse_secrets(value, f"{path}.{key}")
    elif isinstance(details, list | tuple):
        for i, value in enumerate(details):
            _refuse_secrets(value, f"{path}[{i}]")


class AuditLog:
    """Appends to and checks the audit chain of one database."""

    def __init__(self, db: Database):
        self.db = db

    def record(self, action: str, *, actor: str, subject: str,
               details: dict[str, Any] | None = None, session: Session | None = None) -> AuditRecord:
        """Append one entry. Inside ``session`` it commits or rolls back with the caller's act."""
        details = details or {}
        _refuse_secrets(details)
        if session is not None:
            return self._append(session, action, actor, subject, details)
        with self.db.transaction() as own:
            return self._append(own, action, actor, subject, details)

    def _append(self, session: Session, action: str, actor: str, subject: str,
                details: dict[str, Any]) -> AuditRecord:
        if self.db.dialect == "postgresql":
            # Serialise appenders across processes and nodes for the rest of this transaction.
            session.execute(text("SELECT pg_advisory_xact_lock(hashtext('zhengyin.audit_log'))"))
        last = session.execute(
            select(AuditRecord.seq, AuditRecord.hash).order_by(AuditRecord.seq.desc()).limit(1)
        ).first()
        seq, prev = (last[0] + 1, last[1]) if last else (1, GENESIS)
        at = datetime.now(UTC)
        payload = _canonical({"seq": seq, "at": at.isoformat(), "actor": actor, "action": action,
                              "subject": subject, "details": details, "prev": prev})
        row = AuditRecord(seq=seq, at=at, actor=actor, action=action, subject=subject,
                          payload=payload, prev_hash=prev, hash=sm3(payload.encode()).hex())
        session.add(row)
        session.flush()
        return row

    def entries(self, *, action: str | None = None, subject: str | None = None,
                limit: int = 100) -> list[AuditRecord]:
        with self.db.transaction() as s:
            q = select(AuditRecord).order_by(AuditRecord.seq.desc()).limit(limit)
            if action:
                q = q.where(AuditRecord.action == action)
            if subject:
                q = q.where(AuditRecord.subject == subject)
            return list(s.scalars(q))

    def verify(self) -> ChainReport:
        """Walk the whole chain; report the first row whose content, hash or link is wrong."""
        prev, count = GENESIS, 0
        with self.db.transaction() as s:
            for row in s.scalars(select(AuditRecord).order_by(AuditRecord.seq).execution_options(
                    yield_per=1000)):
                count += 1
                problem = self._check_row(row, count, prev)
                if problem:
                    return ChainReport(False, count, prev, broken_at=row.seq, problem=problem)
                prev = row.hash
        return ChainReport(True, count, prev)

    @staticmethod
    def _check_row(row: AuditRecord, expected_seq: int, prev: str) -> str | None:
        if row.seq != expected_seq:
            return f"entry {expected_seq} is missing (next entry is {row.seq})"
        if sm3(row.payload.encode()).hex() != row.hash:
            return "the entry's content does not match its hash"
        try:
            p = json.loads(row.payload)
        except ValueError:
            return "the entry's payload is not JSON"
        if p.get("prev") != prev or row.prev_hash != prev:
            return "the entry does not link to the previous entry's hash"
        at = row.at if row.at.tzinfo else row.at.replace(tzinfo=UTC)
        stored = (p.get("seq"), p.get("actor"), p.get("action"), p.get("subject"))
        if stored != (row.seq, row.actor, row.action, row.subject) or \
                datetime.fromisoformat(p.get("at", "")) != at:
            return "the entry's columns differ from its hashed payload"
        return None
