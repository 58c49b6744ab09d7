"""Migration 0012 (annotated copies): the usage log's copy columns and index, the append-only
rule kept through upgrade and downgrade, and a downgrade that removes exactly what the upgrade
added (then upgrades again), on SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from alembic import command
from sqlalchemy import inspect, text
from sqlalchemy.exc import DBAPIError

from ledger.audit import AuditLog
from ledger.database import alembic_config
from licences.reuse_clients import ClientRegistry
from licences.usage_log import UsageRecord

COLUMNS = {"copy_format", "copy_sm3", "copy_expires", "copy_client_name"}


def _columns(db, table: str = "reuse_usage") -> set[str]:
    return {c["name"] for c in inspect(db.engine).get_columns(table)}


def _indexes(db) -> set[str]:
    return {i["name"] for i in inspect(db.engine).get_indexes("reuse_usage")}


def _alembic(db, action: str, revision: str) -> None:
    with db.engine.begin() as conn:
        cfg = alembic_config(db.url)
        cfg.attributes["connection"] = conn
        getattr(command, action)(cfg, revision)


def _append_only(db) -> None:
    for statement in ("UPDATE reuse_usage SET outcome = 'x'", "DELETE FROM reuse_usage"):
        with pytest.raises(DBAPIError, match="append-only"), db.engine.begin() as conn:
            conn.execute(text(statement))


def test_the_copy_columns_and_index_are_made_and_hold_a_copy(db):
    assert COLUMNS <= _columns(db) and "ix_reuse_usage_copy_sm3" in _indexes(db)
    assert "qr_payload" in _columns(db, "licence")
    assert "ix_reuse_usage_copy_sm3" in {i.name for i in UsageRecord.__table__.indexes}  # no ORM drift
    client, _ = ClientRegistry(db, AuditLog(db)).create("部门", [("11100000MB0000019L001", "data")], actor="t")
    expires = datetime.now(UTC).replace(microsecond=0) + timedelta(days=30)
    with db.transaction() as s:
        s.add(UsageRecord(response_id="resp-copy", at=datetime.now(UTC), client_id=client.id, operation="data",
                          purpose="事由", identifier="x", type_code=None, licence_number=None, grant_id="g",
                          fields=[], outcome="served-data", copy_format="pdf", copy_sm3="ab" * 32,
                          copy_expires=expires, copy_client_name="部门（加注时）"))
    with db.transaction() as s:
        row = s.query(UsageRecord).filter(UsageRecord.copy_sm3 == "ab" * 32).one()
        assert (row.copy_format, row.copy_expires, row.copy_client_name) == ("pdf", expires, "部门（加注时）")
    _append_only(db)


def test_downgrade_removes_the_columns_keeps_the_rule_and_upgrade_runs_again(db):
    client, _ = ClientRegistry(db, AuditLog(db)).create("部门", [("11100000MB0000019L001", "data")], actor="t")
    with db.transaction() as s:
        s.add(UsageRecord(response_id="resp-old", at=datetime.now(UTC), client_id=client.id, operation="metadata",
                          purpose="事由", identifier=None, type_code=None, licence_number=None, grant_id=None,
                          fields=[], outcome="not-found"))
    _alembic(db, "downgrade", "0011")
    assert not COLUMNS & _columns(db) and "ix_reuse_usage_copy_sm3" not in _indexes(db)
    assert "qr_payload" not in _columns(db, "licence")
    assert {"ix_reuse_usage_identifier", "ix_reuse_usage_client"} <= _indexes(db)  # 0011's stay
    with db.engine.begin() as conn:
        assert conn.execute(text("SELECT response_id FROM reuse_usage")).scalars().all() == ["resp-old"]
    _append_only(db)  # the triggers survive the downgrade (no table re-created)
    _alembic(db, "upgrade", "head")
    assert COLUMNS <= _columns(db) and "ix_reuse_usage_copy_sm3" in _indexes(db)
    assert "qr_payload" in _columns(db, "licence")
    _append_only(db)
    with db.engine.begin() as conn:
        assert conn.execute(text("SELECT copy_sm3 FROM reuse_usage")).scalars().all() == [None]
