"""The audit chain: appends link by hash, the database refuses edits, verify finds tampering."""

from __future__ import annotations

import itertools
import json

import pytest
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError, IntegrityError

from hsm.sm3 import sm3
from ledger.audit import GENESIS, AuditError, AuditLog


def _fill(log: AuditLog, n: int = 4) -> None:
    for i in range(n):
        log.record("key.generate", actor="cli:tester", subject=f"key-{i}", details={"version": 1})


def test_chain_links_each_entry_to_the_previous(db):
    log = AuditLog(db)
    _fill(log)
    rows = sorted(log.entries(limit=10), key=lambda r: r.seq)
    assert [r.seq for r in rows] == [1, 2, 3, 4]
    assert rows[0].prev_hash == GENESIS
    for before, after in itertools.pairwise(rows):
        assert after.prev_hash == before.hash
    report = log.verify()
    assert report.ok and report.entries == 4 and report.head_hash == rows[-1].hash


def test_empty_chain_verifies(db):
    report = AuditLog(db).verify()
    assert report.ok and report.entries == 0 and report.head_hash == GENESIS


@pytest.mark.parametrize("statement", [
    "UPDATE audit_log SET actor = 'mallory'",
    "DELETE FROM audit_log WHERE seq = 2",
])
def test_database_refuses_edits(db, statement):
    _fill(AuditLog(db))
    with pytest.raises((IntegrityError, DBAPIError)), db.engine.begin() as conn:
        conn.execute(text(statement))
    assert AuditLog(db).verify().ok


def _bypass_triggers_and(db, statement: str, **params) -> None:
    """What an operator with raw database access could do: drop the guard, then edit."""
    with db.engine.begin() as conn:
        if db.dialect == "sqlite":
            conn.exec_driver_sql("DROP TRIGGER audit_log_no_update")
            conn.exec_driver_sql("DROP TRIGGER audit_log_no_delete")
        else:
            conn.exec_driver_sql("ALTER TABLE audit_log DISABLE TRIGGER USER")
        conn.execute(text(statement), params)


def test_verify_finds_an_edited_payload(db):
    log = AuditLog(db)
    _fill(log)
    row = next(r for r in log.entries() if r.seq == 2)
    forged = json.loads(row.payload)
    forged["subject"] = "another-key"
    _bypass_triggers_and(db, "UPDATE audit_log SET payload = :p, subject = 'another-key' WHERE seq = 2",
                         p=json.dumps(forged))
    report = log.verify()
    assert not report.ok and report.broken_at == 2
    assert "hash" in report.problem


def test_verify_finds_a_rehashed_entry_by_the_broken_link(db):
    log = AuditLog(db)
    _fill(log)
    row = next(r for r in log.entries() if r.seq == 2)
    forged = json.loads(row.payload)
    forged["actor"] = "mallory"
    payload = json.dumps(forged, ensure_ascii=False, sort_keys=True, separators=(",", ":"))
    _bypass_triggers_and(db, "UPDATE audit_log SET payload = :p, actor = 'mallory', hash = :h WHERE seq = 2",
                         p=payload, h=sm3(payload.encode()).hex())
    report = log.verify()
    assert not report.ok and report.broken_at == 3
    assert "link" in report.problem


def test_verify_finds_a_deleted_entry(db):
    log = AuditLog(db)
    _fill(log)
    _bypass_triggers_and(db, "DELETE FROM audit_log WHERE seq = 3")
    report = log.verify()
    assert not report.ok and report.broken_at == 4 and "missing" in report.problem


def test_columns_must_match_the_payload(db):
    log = AuditLog(db)
    _fill(log)
    _bypass_triggers_and(db, "UPDATE audit_log SET action = 'key.rotate' WHERE seq = 1")
    report = log.verify()
    assert not report.ok and report.broken_at == 1 and "columns" in report.problem


def test_secrets_are_refused_and_nothing_is_written(db):
    log = AuditLog(db)
    with pytest.raises(AuditError, match="secret"):
        log.record("key.import", actor="cli:tester", subject="k",
                   details={"source": {"passphrase": "hunter2"}})
    assert log.verify().entries == 0


def test_an_entry_rolls_back_with_the_callers_transaction(db):
    log = AuditLog(db)
    with pytest.raises(RuntimeError), db.transaction() as session:
        log.record("cert.issue", actor="cli:tester", subject="serial-1", session=session)
        raise RuntimeError("issuance failed after the audit entry")
    assert log.verify().entries == 0
