"""Appending several audit entries at once (AuditLog.record_many, which record() goes through):
one chain whatever the mix of calls, secrets refused before anything is written, the caller's
transaction in charge, the caller's pending ORM rows written first, ORM reads and insert events
in the same session as after an ORM flush — on SQLite and PostgreSQL."""

from __future__ import annotations

import itertools
import threading
from datetime import UTC, datetime

import pytest
from sqlalchemy import event, func, select
from sqlalchemy.orm import object_session

from ca.registry import CertificateRecord
from hsm.sm3 import sm3
from ledger.audit import GENESIS, AuditEntry, AuditError, AuditLog, AuditRecord


def _rows(db) -> list[AuditRecord]:
    with db.transaction() as s:
        return list(s.scalars(select(AuditRecord).order_by(AuditRecord.seq)))


def _entries(n: int, prefix: str = "s") -> list[AuditEntry]:
    return [AuditEntry("licence.issue", "cli:tester", f"{prefix}-{i}", {"n": i, "list": [i, "x"]})
            for i in range(n)]


def test_one_call_appends_its_entries_in_order_linked_by_hash(db):
    log = AuditLog(db)
    written = log.record_many(_entries(5))
    assert [r.seq for r in written] == [1, 2, 3, 4, 5]
    assert [r.subject for r in written] == [f"s-{i}" for i in range(5)]
    assert [r.details["n"] for r in written] == [0, 1, 2, 3, 4]
    assert written[0].prev_hash == GENESIS
    for before, after in itertools.pairwise(written):
        assert after.prev_hash == before.hash
    for r in written:
        assert r.hash == sm3(r.payload.encode()).hex()
    stored = _rows(db)
    assert [(r.seq, r.hash, r.prev_hash, r.payload) for r in stored] == \
        [(r.seq, r.hash, r.prev_hash, r.payload) for r in written]
    report = log.verify()
    assert report.ok and report.entries == 5 and report.head_hash == written[-1].hash


def test_mixed_single_and_group_appends_make_one_chain(db):
    log = AuditLog(db)
    first = log.record("key.generate", actor="cli:tester", subject="k-1", details={"version": 1})
    group = log.record_many(_entries(3, "a"))
    assert log.record_many([]) == []  # nothing to append: nothing written, the chain unmoved
    with db.transaction() as s:
        inside = log.record_many(_entries(2, "b"), session=s)
        single = log.record("key.rotate", actor="cli:tester", subject="k-1", session=s)
    last = log.record_many(_entries(1, "c"))
    chain = [first, *group, *inside, single, *last]
    assert [r.seq for r in chain] == list(range(1, 9))
    assert [r.prev_hash for r in chain] == [GENESIS] + [r.hash for r in chain[:-1]]
    assert [r.hash for r in _rows(db)] == [r.hash for r in chain]
    assert [r.action for r in _rows(db)] == ["key.generate"] + ["licence.issue"] * 5 + ["key.rotate",
                                                                                        "licence.issue"]
    report = log.verify()
    assert report.ok and report.entries == 8 and report.head_hash == chain[-1].hash


def test_the_returned_entries_are_what_a_read_gives(db):
    log = AuditLog(db)
    [entry] = log.record_many([AuditEntry("seal.suspend", "cli:tester", "seal:1", {"reason": "lost"})])
    [read] = log.entries(subject="seal:1")
    assert (entry.seq, entry.actor, entry.action, entry.subject, entry.payload, entry.hash, entry.details) == \
        (read.seq, read.actor, read.action, read.subject, read.payload, read.hash, read.details)
    at = read.at if read.at.tzinfo else read.at.replace(tzinfo=UTC)
    assert entry.at == at and abs((datetime.now(UTC) - at).total_seconds()) < 60


@pytest.mark.parametrize("secret_at", [0, 2])
def test_a_secret_in_any_entry_refuses_the_whole_call_before_anything_is_written(db, secret_at):
    log = AuditLog(db)
    log.record("key.generate", actor="cli:tester", subject="k", details={})
    entries = _entries(3)
    entries[secret_at] = AuditEntry("key.import", "cli:tester", "k", {"source": [{"Passphrase": "hunter2"}]})
    with pytest.raises(AuditError, match="secret"):
        log.record_many(entries)
    with db.transaction() as s:  # inside a caller's transaction too: nothing of the call is written
        with pytest.raises(AuditError, match="secret"):
            log.record_many(entries, session=s)
        assert s.scalar(select(func.count()).select_from(AuditRecord)) == 1
    assert log.verify().entries == 1 and "hunter2" not in repr([r.payload for r in _rows(db)])


def test_entries_roll_back_with_the_callers_transaction(db):
    log = AuditLog(db)
    log.record_many(_entries(2, "kept"))
    with pytest.raises(RuntimeError), db.transaction() as s:
        log.record_many(_entries(3, "lost"), session=s)
        log.record("cert.issue", actor="cli:tester", subject="serial-1", session=s)
        assert s.scalar(select(func.count()).select_from(AuditRecord)) == 6  # seen in the transaction
        raise RuntimeError("the act failed after its audit entries")
    assert [r.subject for r in _rows(db)] == ["kept-0", "kept-1"]
    after = log.record_many(_entries(1, "next"))  # the chain goes on from what was kept
    assert after[0].seq == 3 and log.verify().ok and log.verify().entries == 3


def _certificate(serial: str) -> CertificateRecord:
    now = datetime.now(UTC)
    return CertificateRecord(serial=serial, profile="test", subject="CN=test", key_id="k", not_before=now,
                             not_after=now, fingerprint=sm3(serial.encode()).hex(), der=b"\x30\x00",
                             issued_at=now)


def test_the_callers_pending_orm_rows_are_written_before_the_entries(db):
    log = AuditLog(db)
    log.record("key.generate", actor="cli:tester", subject="k", details={})
    with db.transaction() as s:
        cert = _certificate("01")
        s.add(cert)  # pending, not flushed: the append writes it first, as an ORM flush did
        with s.no_autoflush:
            written = log.record_many(_entries(2), session=s)
        assert cert.id is not None and cert not in s.new
        assert [r.seq for r in written] == [2, 3]
        # An ORM read of the audit log in the same session: the appended rows, the same objects.
        rows = list(s.scalars(select(AuditRecord).order_by(AuditRecord.seq)))
        assert [r.seq for r in rows] == [1, 2, 3] and rows[1] is written[0] and rows[2] is written[1]
        assert rows[2].details["n"] == 1
        cert.profile = "changed"  # a later change of the caller's row: flushed, the entries untouched
        s.flush()
        assert not s.dirty
    assert log.verify().ok and log.verify().entries == 3
    with db.transaction() as s:
        assert s.scalar(select(CertificateRecord.profile).where(CertificateRecord.serial == "01")) == "changed"


def test_a_failing_pending_row_fails_the_append_before_the_chain_moves(db):
    log = AuditLog(db)
    with db.transaction() as s:
        s.add(_certificate("dup"))
    with pytest.raises(Exception, match=r"(?i)unique|duplicate"), db.transaction() as s:
        s.add(_certificate("dup"))
        log.record_many(_entries(2), session=s)
    assert log.verify().entries == 0


def test_the_orm_insert_event_fires_for_each_entry_in_the_callers_session(db):
    seen = []

    def inserted(_mapper, _connection, row):
        seen.append((row.seq, row.action, object_session(row)))

    event.listen(AuditRecord, "after_insert", inserted)
    try:
        log = AuditLog(db)
        with db.transaction() as s:
            log.record_many(_entries(2), session=s)
            log.record("seal.revoke", actor="cli:tester", subject="seal:1", session=s)
            assert seen == [(1, "licence.issue", s), (2, "licence.issue", s), (3, "seal.revoke", s)]
        log.record("ca.crl", actor="cli:tester", subject="crl:1")
    finally:
        event.remove(AuditRecord, "after_insert", inserted)
    assert [(seq, action) for seq, action, _ in seen][-1] == (4, "ca.crl") and seen[-1][2] is not None


def test_concurrent_group_appends_keep_one_chain_on_postgresql(db):
    if db.dialect != "postgresql":
        pytest.skip("SQLite serialises its writers by the file lock; the advisory lock is PostgreSQL's")
    log, errors = AuditLog(db), []

    def append(worker: int) -> None:
        try:
            for round_ in range(5):
                with db.transaction() as s:
                    log.record_many(_entries(3, f"w{worker}-{round_}"), session=s)
                    log.record("key.use", actor="cli:tester", subject=f"w{worker}", session=s)
        except Exception as exc:  # reported below
            errors.append(exc)

    threads = [threading.Thread(target=append, args=(w,)) for w in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    report = log.verify()
    assert report.ok and report.entries == 4 * 5 * 4
    rows = _rows(db)
    for worker, round_ in itertools.product(range(4), range(5)):  # each transaction's entries adjacent
        seqs = [r.seq for r in rows if r.subject.startswith(f"w{worker}-{round_}-")]
        assert seqs == list(range(seqs[0], seqs[0] + 3))
