"""Migration 0011 (data reuse): its tables, the usage log's append-only rule, and a downgrade
that removes exactly what the upgrade made (then upgrades again), on SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from alembic import command
from sqlalchemy import inspect, text
from sqlalchemy.exc import DBAPIError

from ledger.audit import AuditLog
from ledger.database import alembic_config
from licences.reuse_clients import ClientRegistry
from licences.usage_log import UsageRecord

TABLES = {"reuse_client", "reuse_permission", "reuse_grant", "reuse_usage"}


def _usage(db) -> str:
    client, _ = ClientRegistry(db, AuditLog(db)).create("部门", [("11100000MB0000019L001", "data")], actor="t")
    with db.transaction() as s:
        s.add(UsageRecord(response_id="resp-1", at=datetime.now(UTC), client_id=client.id, operation="metadata",
                          purpose="事由", identifier=None, type_code=None, licence_number=None, grant_id=None,
                          fields=[], outcome="not-found"))
    return client.id


def test_the_tables_are_made(db):
    assert TABLES <= set(db.table_names())
    indexes = {i["name"] for i in inspect(db.engine).get_indexes("reuse_grant")}
    assert {"ix_reuse_grant_licence", "ix_reuse_grant_client"} <= indexes


def test_the_orm_models_declare_the_migrations_indexes_and_keys(db):
    """What the ORM says about the 0010/0011 tables is what the migrations made (no drift)."""
    from licences.holders import HolderCredentialRecord
    from licences.reuse_grants import HolderGrant
    from licences.usage_log import UsageRecord
    from verify_api.presentations import PresentationRecord

    inspector = inspect(db.engine)
    for model in (HolderGrant, UsageRecord, HolderCredentialRecord, PresentationRecord):
        table = model.__table__
        made = {i["name"] for i in inspector.get_indexes(table.name)}
        declared = {i.name for i in table.indexes}
        assert declared and declared <= made, table.name
    assert {"ix_reuse_grant_identifier", "ix_reuse_usage_identifier"} <= \
        {i.name for t in (HolderGrant, UsageRecord) for i in t.__table__.indexes}
    keys = inspector.get_foreign_keys("holder_presentation")
    assert [(k["referred_table"], k["referred_columns"]) for k in keys] == [("holder_credential", ["credential_id"])]
    assert {fk.target_fullname for fk in PresentationRecord.__table__.foreign_keys} == \
        {"holder_credential.credential_id"}


@pytest.mark.parametrize("statement", ["UPDATE reuse_usage SET outcome = 'served-data'", "DELETE FROM reuse_usage"])
def test_the_usage_log_is_append_only(db, statement):
    _usage(db)
    with pytest.raises(DBAPIError, match="append-only"), db.engine.begin() as conn:
        conn.execute(text(statement))
    with db.engine.begin() as conn:
        assert conn.execute(text("SELECT outcome FROM reuse_usage")).scalars().all() == ["not-found"]


def test_downgrade_removes_what_upgrade_made_and_upgrade_runs_again(db):
    _usage(db)
    with db.engine.begin() as conn:
        cfg = alembic_config(db.url)
        cfg.attributes["connection"] = conn
        command.downgrade(cfg, "0010")
    assert not TABLES & set(db.table_names())
    if db.dialect == "postgresql":
        with db.engine.begin() as conn:
            assert conn.execute(text("SELECT count(*) FROM pg_proc WHERE proname = 'reuse_usage_append_only'"
                                     )).scalar_one() == 0
    else:
        with db.engine.begin() as conn:
            assert conn.execute(text("SELECT count(*) FROM sqlite_master WHERE type = 'trigger' "
                                     "AND name LIKE 'reuse_usage%'")).scalar_one() == 0
    db.migrate()
    assert TABLES <= set(db.table_names())
    _usage(db)
