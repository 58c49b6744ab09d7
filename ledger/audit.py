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
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import IO, Any

from sqlalchemy import BigInteger, DateTime, String, Text, inspect, select, text
from sqlalchemy.orm import Mapped, Session, make_transient_to_detached, mapped_column

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
    #: Where the checked entries start: the first entry's seq and the hash it links to
    #: (GENESIS for a whole log). An export from a time starts where it says; an auditor
    #: compares both with the source, as the head, to know nothing before it was dropped.
    first_seq: int | None = None
    after_hash: str | None = None

    def as_dict(self) -> dict[str, Any]:
        return {"ok": self.ok, "entries": self.entries, "head_hash": self.head_hash,
                "broken_at": self.broken_at, "problem": self.problem, "first_seq": self.first_seq,
                "after_hash": self.after_hash}


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


@dataclass(frozen=True)
class AuditEntry:
    """One entry to append with :meth:`AuditLog.record_many`: what was done, by whom, to what."""

    action: str
    actor: str
    subject: str
    details: Mapping[str, Any] = field(default_factory=dict)


_AUDIT_TABLE = AuditRecord.__table__
_MAPPER = AuditRecord.__mapper__
#: Compiled once (SQLAlchemy caches by statement): the chain's head, and the insert of entries.
_HEAD = select(_AUDIT_TABLE.c.seq, _AUDIT_TABLE.c.hash).order_by(_AUDIT_TABLE.c.seq.desc()).limit(1)
_INSERT = _AUDIT_TABLE.insert()
_LOCK = text("SELECT pg_advisory_xact_lock(hashtext('zhengyin.audit_log'))")


class AuditLog:
    """Appends to and checks the audit chain of one database."""

    def __init__(self, db: Database):
        self.db = db

    def record(self, action: str, *, actor: str, subject: str,
               details: dict[str, Any] | None = None, session: Session | None = None) -> AuditRecord:
        """Append one entry. Inside ``session`` it commits or rolls back with the caller's act."""
        return self.record_many([AuditEntry(action, actor, subject, details or {})], session=session)[0]

    def record_many(self, entries: Iterable[AuditEntry], *,
                    session: Session | None = None) -> list[AuditRecord]:
        """Append ``entries`` in order, as one append: every entry is checked for secrets before
        anything is written, then one head query, one INSERT. Inside ``session`` they commit or
        roll back with the caller's act. Returns the entries' rows, in order."""
        items = [(e.action, e.actor, e.subject, dict(e.details or {})) for e in entries]
        for *_, details in items:
            _refuse_secrets(details)
        if not items:
            return []
        if session is not None:
            return self._append(session, items)
        with self.db.transaction() as own:
            return self._append(own, items)

    def _append(self, session: Session,
                items: list[tuple[str, str, str, dict[str, Any]]]) -> list[AuditRecord]:
        """The chain computed here, the rows written with SQLAlchemy Core (no unit of work, no
        flush per entry) and handed back as the ORM would after a flush.

        The caller's pending ORM changes are flushed first, as an ORM append flushed them with
        its entry: whatever the caller's act wrote is in the database before the entries that
        record it, and a failing write fails before the chain moves. The returned rows are
        attached to ``session`` as loaded, so an ORM read of the audit log in the same session
        gives them, and the ORM's ``after_insert`` event fires for each (seals.identity_cache
        empties its signing identities on seal, CA and key entries that way) — ``before_insert``
        does not: nothing may change an entry that is already hashed."""
        connection = session.connection()
        if self.db.dialect == "postgresql":
            # Serialise appenders across processes and nodes for the rest of this transaction.
            connection.execute(_LOCK)
        session.flush()
        last = connection.execute(_HEAD).first()
        seq, prev = (last[0], last[1]) if last else (0, GENESIS)
        at = datetime.now(UTC)
        stamp = at.isoformat()
        rows = []
        for action, actor, subject, details in items:
            seq += 1
            payload = _canonical({"seq": seq, "at": stamp, "actor": actor, "action": action,
                                  "subject": subject, "details": details, "prev": prev})
            digest = sm3(payload.encode()).hex()
            rows.append({"seq": seq, "at": at, "actor": actor, "action": action, "subject": subject,
                         "payload": payload, "prev_hash": prev, "hash": digest})
            prev = digest
        connection.execute(_INSERT, rows)
        records = []
        for row in rows:
            record = AuditRecord(**row)
            make_transient_to_detached(record)  # as loaded: nothing to flush or refresh
            session.add(record)
            records.append(record)
        if _MAPPER.dispatch.after_insert:
            for record in records:
                _MAPPER.dispatch.after_insert(_MAPPER, connection, inspect(record))
        return records

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
        return ChainReport(True, count, prev, first_seq=1 if count else None, after_hash=GENESIS)

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


# ---- export for an external auditor ---------------------------------------------------------
#: The first line of an export names its format; the last states what it holds.
EXPORT_FORMAT = "zhengyin-audit-export"
EXPORT_VERSION = 1


def export_jsonl(db: Database, out: IO[str], *, since: datetime | None = None) -> dict[str, Any]:
    """Write the audit log (from ``since``, default all) as JSON lines an auditor can re-verify
    offline, without this software: a header line, one line per entry, a trailer line.

    An entry line is ``{"seq", "hash", "payload"}``: ``payload`` is the exact text that was
    hashed (UTF-8), ``hash`` its SM3 in hex (``printf %s "$payload" | openssl dgst -sm3``), and
    the payload's ``prev`` is the previous entry's hash (``"0"*64`` before the first entry).
    :func:`verify_export` checks exactly that. An export from ``since`` starts at an entry
    whose ``prev`` is taken as given (the header's ``after_hash``). The trailer states the
    count and the head hash: compare it with the head ``zhengyin audit verify`` prints at the
    source (out of band), and entries cut off the end are found too. Returns the trailer.
    """
    if since is not None and since.tzinfo is None:
        raise ValueError("the export's start time needs a time zone")
    header_written, count, first_prev, head, first_seq = False, 0, None, None, None
    with db.transaction() as s:
        q = select(AuditRecord).order_by(AuditRecord.seq)
        if since is not None:
            q = q.where(AuditRecord.at >= since)
        for row in s.scalars(q.execution_options(yield_per=1000)):
            if not header_written:
                first_prev, first_seq = row.prev_hash, row.seq
                out.write(_canonical({"format": EXPORT_FORMAT, "version": EXPORT_VERSION, "hash": "sm3",
                                      "since": since.isoformat() if since else None,
                                      "after_hash": first_prev}) + "\n")
                header_written = True
            out.write(_canonical({"seq": row.seq, "hash": row.hash, "payload": row.payload}) + "\n")
            count, head = count + 1, row.hash
    if not header_written:
        out.write(_canonical({"format": EXPORT_FORMAT, "version": EXPORT_VERSION, "hash": "sm3",
                              "since": since.isoformat() if since else None, "after_hash": None}) + "\n")
    trailer = {"end": True, "entries": count, "first_seq": first_seq, "head_hash": head,
               "exported_at": datetime.now(UTC).isoformat()}
    out.write(_canonical(trailer) + "\n")
    return trailer


def verify_export(lines: Iterable[str], *, expected_head: str | None = None) -> ChainReport:
    """Re-verify an export of :func:`export_jsonl` (and, given ``expected_head``, that nothing
    was cut off its end): the first edited, inserted, reordered or deleted entry is reported.

    An export of the whole log (header ``since`` null) must start at entry 1, linked to
    GENESIS: entries deleted from its start are found without any knowledge of the source,
    however the header and trailer were edited to match. An export from a time starts at
    whatever entry and hash it states (the report's ``first_seq`` and ``after_hash``): only a
    comparison with the source tells whether entries before it were left out.
    """
    check = _ExportCheck()
    report = check.run(iter(lines))
    if report is None:
        report = check.finish(expected_head)
    return replace(report, first_seq=check.first_seq, after_hash=check.after_hash)


class _ExportCheck:
    """The state of one :func:`verify_export` walk: header, entries so far, trailer."""

    def __init__(self) -> None:
        self.prev: str | None = None
        self.seq: int | None = None
        self.count = 0
        self.trailer: dict[str, Any] | None = None
        self.whole = False
        self.first_seq: int | None = None
        self.after_hash: str | None = None

    def fail(self, problem: str, broken_at: int | None = None) -> ChainReport:
        return ChainReport(False, self.count, self.prev or GENESIS, broken_at=broken_at, problem=problem)

    def run(self, it: Iterator[str]) -> ChainReport | None:
        """Walk the lines: a failing report, or None when every entry checked out."""
        try:
            header = json.loads(next(it))
        except (StopIteration, ValueError):
            return self.fail("not an audit export: no header line")
        if not isinstance(header, dict) or header.get("format") != EXPORT_FORMAT or \
                header.get("version") != EXPORT_VERSION:
            return self.fail("not an audit export of a known format and version")
        self.whole = header.get("since") is None
        self.prev = self.after_hash = header.get("after_hash")
        if self.whole and self.prev not in (GENESIS, None):
            return self.fail("an export of the whole log starts at the genesis hash, its header names "
                             "another: entries were removed from its start")
        for number, line in enumerate(it, start=2):
            problem = self.line(number, line)
            if problem is not None:
                return problem
        return None

    def line(self, number: int, line: str) -> ChainReport | None:
        if self.trailer is not None:
            return self.fail(f"line {number}: data after the trailer")
        try:
            item = json.loads(line)
            if item.get("end") is True:
                self.trailer = item
                return None
            payload_text, stated_hash = item["payload"], item["hash"]
            payload = json.loads(payload_text)
        except (ValueError, KeyError, TypeError, AttributeError):
            return self.fail(f"line {number}: not an entry of an audit export", self.seq)
        self.count += 1
        at_seq = payload.get("seq") if isinstance(payload, dict) else None
        first = self.seq is None
        in_order = isinstance(at_seq, int) and item.get("seq") == at_seq and \
            (first or at_seq == self.seq + 1)
        if not in_order:
            expected = "its first entry" if first else f"entry {self.seq + 1}"
            return self.fail(f"line {number}: {expected} is missing or out of order",
                             at_seq if isinstance(at_seq, int) else None)
        if first:
            self.first_seq = at_seq
            if self.whole and at_seq != 1:
                return self.fail(f"line {number}: an export of the whole log starts at entry 1, this one at "
                                 f"entry {at_seq}: entries were removed from its start", at_seq)
        if sm3(payload_text.encode()).hex() != stated_hash:
            return self.fail("the entry's content does not match its hash", at_seq)
        if self.prev is None and at_seq == 1:
            self.prev = self.after_hash = GENESIS
        if payload.get("prev") != self.prev:
            return self.fail("the entry does not link to the previous entry's hash", at_seq)
        self.prev, self.seq = stated_hash, at_seq
        return None

    def finish(self, expected_head: str | None) -> ChainReport:
        head, trailer = self.prev or GENESIS, self.trailer
        if trailer is None:
            return self.fail("the export has no trailer: it was cut off")
        if trailer.get("entries") != self.count or \
                trailer.get("head_hash") != (self.prev if self.count else None):
            return self.fail("the trailer does not match the entries (some were added or removed at the end)")
        if trailer.get("first_seq") != self.first_seq:
            return self.fail(f"the trailer says the export starts at entry {trailer.get('first_seq')}, "
                             f"its entries start at {self.first_seq}")
        if expected_head is not None and head != expected_head.strip().lower():
            return self.fail(f"the export ends at {head}, not at the expected head {expected_head}: entries "
                             "are missing or the chain was rewritten")
        return ChainReport(True, self.count, head)
