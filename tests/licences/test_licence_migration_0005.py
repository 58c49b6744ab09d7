"""Revision 0005 on a library that already holds licences, on both databases: the columns and
the unique index it adds, live keys given to live rows (of old duplicates only the one live by
the clock, valid before suspended, newest), serial counters merged per issuer so that no serial
given under any type is given again; and back down to 0004."""

from __future__ import annotations

from datetime import date

import pytest
from alembic import command
from sqlalchemy import inspect, text
from sqlalchemy.exc import IntegrityError

from ca.names import credit_code_check_character
from ledger.audit import AuditLog
from ledger.database import Database, alembic_config
from licences.identifiers import LicenceIdentifier
from licences.lifecycle import LicenceExists, LicenceLibrary
from licences.metadata import HolderCodeType, LicenceMetadata
from licences.storage import DocumentStore

ISSUER, OTHER = "11350100MB0000000Y", "91350100MA0000000L"
HOLDER = "91350100MA0000001" + credit_code_check_character("91350100MA0000001")
T1, T2 = "11100000MB0000019L001", "11100000MB0000019L002"


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def old_db(request, tmp_path):
    """A database at revision 0004."""
    if request.param == "sqlite":
        database = Database(f"sqlite:///{tmp_path / 'old.db'}")
        database.migrate("0004")
        yield database
        database.dispose()
    else:
        make_schema_db = request.getfixturevalue("postgres_schema_factory")
        database, drop = make_schema_db(request.getfixturevalue("postgres_url"))
        try:
            database.migrate("0004")
            yield database
        finally:
            drop()


def _licence(conn, row_id: int, type_code: str, issuer: str, serial: int, number: str, status: str,
             valid_until: str | None = None, identifier: str | None = None) -> None:
    conn.execute(text(
        "INSERT INTO licence (id, identifier, type_code, issuer_code, serial, version, licence_number, "
        "holder_name, holder_code, status, status_changed_at, valid_from, valid_until, metadata, data, "
        "ofd_sm3, pdf_sm3, created_at) VALUES (:id, :ident, :type, :issuer, :serial, 1, :number, 'h', 'c', "
        ":status, '2026-01-01 00:00:00', '2020-01-01', :until, '{}', '{}', 'a', 'b', '2026-01-01 00:00:00')"),
        {"id": row_id, "ident": identifier or f"id-{row_id}", "type": type_code, "issuer": issuer,
         "serial": serial, "number": number, "status": status, "until": valid_until})


def test_upgrade_keeps_every_given_serial_and_keys_live_rows(old_db):
    with old_db.engine.begin() as conn:
        _licence(conn, 1, T1, ISSUER, 1, "N1", "01")
        _licence(conn, 2, T2, ISSUER, 7, "N1", "01")  # same number, other type: both live
        _licence(conn, 3, T1, ISSUER, 2, "N2", "07")  # revoked: not live
        _licence(conn, 4, T1, OTHER, 1, "N1", "02")   # an old duplicate of row 1, suspended, newer
        _licence(conn, 5, T2, OTHER, 1, "N3", "02")   # two suspended duplicates: the newer wins
        _licence(conn, 6, T2, ISSUER, 4, "N3", "02")
        conn.execute(text("INSERT INTO licence_serial VALUES (:i, :t, :n)"),
                     [{"i": ISSUER, "t": T1, "n": 5}, {"i": ISSUER, "t": T2, "n": 8},
                      {"i": OTHER, "t": T1, "n": 2}, {"i": "11350100MB0000035H", "t": T2, "n": 40}])
    old_db.migrate("0005")
    assert old_db.current_revision() == "0005"
    with old_db.engine.begin() as conn:
        keys = dict(conn.execute(text("SELECT id, live_key FROM licence ORDER BY id")).all())
        counters = dict(conn.execute(text("SELECT issuer_code, next_serial FROM licence_serial")).all())
    # valid (01) before suspended (02) whatever their age; of equals, the newest
    assert keys == {1: f"{T1}/N1", 2: f"{T2}/N1", 3: None, 4: None, 5: None, 6: f"{T2}/N3"}
    assert counters == {ISSUER: 8, OTHER: 2, "11350100MB0000035H": 40}


def test_a_counter_behind_the_licences_is_moved_past_them(old_db):
    with old_db.engine.begin() as conn:
        _licence(conn, 1, T1, ISSUER, 12, "N1", "01")
        conn.execute(text("INSERT INTO licence_serial VALUES (:i, :t, 3)"), {"i": ISSUER, "t": T2})
    old_db.migrate("0005")
    with old_db.engine.begin() as conn:
        assert conn.execute(text("SELECT next_serial FROM licence_serial")).scalar_one() == 13


def test_downgrade_continues_every_pair_from_the_issuers_counter(old_db):
    with old_db.engine.begin() as conn:
        _licence(conn, 1, T1, ISSUER, 1, "N1", "01")
        _licence(conn, 2, T2, ISSUER, 2, "N2", "01")
        conn.execute(text("INSERT INTO licence_serial VALUES (:i, :t, 3)"), {"i": ISSUER, "t": T1})
    old_db.migrate("0005")
    with old_db.engine.begin() as conn:
        cfg = alembic_config(old_db.url)
        cfg.attributes["connection"] = conn
        command.downgrade(cfg, "0004")
    with old_db.engine.begin() as conn:
        rows = set(conn.execute(text("SELECT issuer_code, type_code, next_serial FROM licence_serial")).all())
        columns = {c for c in conn.execute(text("SELECT * FROM licence")).keys()}
    assert rows == {(ISSUER, T1, 3), (ISSUER, T2, 3)}
    assert not {"qr_nonce", "live_key"} & columns


def test_upgrade_adds_the_columns_and_the_unique_index(old_db):
    old_db.migrate("0005")
    schema = inspect(old_db.engine)
    columns = {c["name"]: c for c in schema.get_columns("licence")}
    assert columns["qr_nonce"]["nullable"] and columns["live_key"]["nullable"]
    assert columns["qr_nonce"]["type"].length == 32
    [index] = [i for i in schema.get_indexes("licence") if i["name"] == "uq_licence_live_key"]
    assert index["column_names"] == ["live_key"] and index["unique"]
    assert {c["name"] for c in schema.get_columns("licence_serial")} == {"issuer_code", "next_serial"}
    assert schema.get_pk_constraint("licence_serial")["constrained_columns"] == ["issuer_code"]
    with old_db.engine.begin() as conn:  # the index refuses a second live key, on each database
        _licence(conn, 1, T1, ISSUER, 1, "N1", "01")
        conn.execute(text(f"UPDATE licence SET live_key = '{T1}/N1'"))
    with pytest.raises(IntegrityError), old_db.engine.begin() as conn:
        _licence(conn, 2, T1, ISSUER, 2, "N1", "01")
        conn.execute(text(f"UPDATE licence SET live_key = '{T1}/N1' WHERE id = 2"))


def test_an_expired_by_clock_duplicate_does_not_take_the_key_from_a_live_one(old_db, tmp_path):
    live, expired = LicenceIdentifier(T1, ISSUER, 1), LicenceIdentifier(T1, ISSUER, 2)
    with old_db.engine.begin() as conn:
        _licence(conn, 1, T1, ISSUER, 1, "N1", "01", None, live.text)              # long-term, older
        _licence(conn, 2, T1, ISSUER, 2, "N1", "01", "2020-12-31", expired.text)  # newer, ended by the clock
    old_db.migrate("0005")
    library = LicenceLibrary(old_db, AuditLog(old_db), DocumentStore(tmp_path / "docs"), actor="t")
    assert library.live_licence(T1, "N1").identifier == live.text
    identifier = library.allocate_identifier(T1, ISSUER)
    metadata = LicenceMetadata(
        identifier=identifier, type_name="营业执照", type_code=T1, licence_number="N1", name="营业执照",
        issue_date=date(2026, 1, 2), issuer_name="示例市市场监督管理局", issuer_code=ISSUER,
        defining_authority="国家市场监督管理总局", valid_from=date(2026, 1, 2), valid_until=None,
        area_code="350100", holder_name="示例科技有限公司", holder_code=HOLDER,
        holder_code_type=HolderCodeType.CREDIT_CODE, version=1)
    with pytest.raises(LicenceExists) as caught:  # the number is still the live licence's
        library.record_issued(metadata, {}, ofd=b"PK\x03\x04 ofd", pdf=b"%PDF-1.7 pdf")
    assert (caught.value.field, caught.value.existing) == ("licence_number", live.text)
