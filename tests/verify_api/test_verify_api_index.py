"""Migration 0007: an uploaded file is matched against the register by two index look-ups
(licence.ofd_sm3, licence.pdf_sm3), not by scanning every licence; and back down to 0006."""

from __future__ import annotations

import pytest
from alembic import command
from sqlalchemy import inspect, text

from ledger.database import alembic_config
from verify_api.records import document_query

INDEXES = {"ix_licence_ofd_sm3": ["ofd_sm3"], "ix_licence_pdf_sm3": ["pdf_sm3"]}


def _indexes(db) -> dict[str, list[str]]:
    with db.engine.connect() as conn:
        return {i["name"]: i["column_names"] for i in inspect(conn).get_indexes("licence")
                if i["name"] in INDEXES}


def _plan(db) -> str:
    statement = document_query("ab" * 32).compile(db.engine, compile_kwargs={"literal_binds": True})
    with db.engine.begin() as conn:
        if db.dialect == "postgresql":
            conn.execute(text("SET LOCAL enable_seqscan = off"))  # an empty table would be scanned anyway
            return "\n".join(row[0] for row in conn.execute(text(f"EXPLAIN {statement}")))
        return "\n".join(row[-1] for row in conn.execute(text(f"EXPLAIN QUERY PLAN {statement}")))


def _downgrade(db, revision: str) -> None:
    with db.engine.begin() as conn:
        config = alembic_config(db.url)
        config.attributes["connection"] = conn
        command.downgrade(config, revision)


def test_document_lookups_use_the_indexes(db):
    assert _indexes(db) == INDEXES
    plan = _plan(db)
    if db.dialect == "postgresql":
        assert "ix_licence_ofd_sm3" in plan and "ix_licence_pdf_sm3" in plan, plan
    else:
        assert "USING INDEX ix_licence_ofd_sm3" in plan and "USING INDEX ix_licence_pdf_sm3" in plan, plan
        assert "SCAN licence" not in plan


def test_0007_goes_down_and_up_again(db):
    _downgrade(db, "0006")
    assert db.current_revision() == "0006" and _indexes(db) == {}
    if db.dialect == "sqlite":
        assert "SCAN licence" in _plan(db)  # what every upload cost before
    db.migrate("0007")
    assert _indexes(db) == INDEXES


@pytest.mark.parametrize("column", ["ofd_sm3", "pdf_sm3"])
def test_the_query_matches_either_document(db, column):
    with db.engine.begin() as conn:
        conn.execute(text(
            "INSERT INTO licence (id, identifier, type_code, issuer_code, serial, version, licence_number, "
            "holder_name, holder_code, status, status_changed_at, valid_from, metadata, data, ofd_sm3, pdf_sm3, "
            "created_at) VALUES (1, 'id-1', 't', 'i', 1, 1, 'n', 'h', 'c', '01', '2026-01-01 00:00:00', "
            "'2026-01-01', '{}', '{}', :ofd, :pdf, '2026-01-01 00:00:00')"),
            {"ofd": "ab" * 32 if column == "ofd_sm3" else "cd" * 32,
             "pdf": "ab" * 32 if column == "pdf_sm3" else "ef" * 32})
    with db.transaction() as session:
        (record,) = session.scalars(document_query("ab" * 32)).all()
        assert record.identifier == "id-1"
        assert session.scalars(document_query("00" * 32)).all() == []
