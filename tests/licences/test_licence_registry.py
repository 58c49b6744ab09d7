"""The licence tables on both databases: serial allocation under concurrency, unique rules,
and the append-only event history."""

from __future__ import annotations

import threading
from datetime import UTC, date, datetime

import pytest
from sqlalchemy import select, text
from sqlalchemy.exc import DBAPIError, IntegrityError

from licences.registry import (
    LicenceEvent,
    LicenceRecord,
    SerialCounter,
    allocate_serial,
    allocate_serials,
)

ISSUER = "11350100MB0000000Y"
TYPE = "11100000MB0143028K001"


def _allocate(db, issuer=ISSUER) -> int:
    with db.transaction() as s:
        return allocate_serial(s, issuer)


def test_serials_count_from_one_per_issuer(db):
    assert [_allocate(db) for _ in range(3)] == [1, 2, 3]
    assert _allocate(db, issuer="91350100MA0000000X") == 1
    assert _allocate(db) == 4
    with db.transaction() as s:
        counters = {c.issuer_code: c.next_serial for c in s.scalars(select(SerialCounter))}
    assert counters == {ISSUER: 5, "91350100MA0000000X": 2}


def test_a_block_of_serials_is_reserved_at_once(db):
    assert _allocate(db) == 1
    with db.transaction() as s:
        block = allocate_serials(s, ISSUER, 100)
    assert block == range(2, 102)
    assert _allocate(db) == 102


@pytest.mark.parametrize("count", [0, -1, 100_001, True, 1.5])
def test_a_bad_block_size_is_refused(db, count):
    with db.transaction() as s, pytest.raises(ValueError, match="count"):
        allocate_serials(s, ISSUER, count)


def test_a_rolled_back_allocation_is_not_counted(db):
    assert _allocate(db) == 1
    with pytest.raises(RuntimeError), db.transaction() as s:
        assert allocate_serial(s, ISSUER) == 2
        raise RuntimeError("issuance failed after allocating")
    assert _allocate(db) == 2  # rolled back with its transaction: nothing used, nothing skipped


def test_concurrent_allocations_never_repeat_a_serial(db):
    threads, per_thread = 8, 25
    barrier = threading.Barrier(threads)
    results: list[list[int]] = [[] for _ in range(threads)]
    errors: list[BaseException] = []

    def work(index: int) -> None:
        try:
            barrier.wait()
            for _ in range(per_thread):
                with db.transaction() as s:  # a session and a transaction per allocation
                    results[index].append(allocate_serial(s, ISSUER))
        except BaseException as exc:  # reported below: a thread's failure must fail the test
            errors.append(exc)

    workers = [threading.Thread(target=work, args=(i,)) for i in range(threads)]
    for w in workers:
        w.start()
    for w in workers:
        w.join(timeout=120)
    assert not errors, errors
    serials = [n for r in results for n in r]
    assert len(serials) == threads * per_thread == len(set(serials))
    assert sorted(serials) == list(range(1, threads * per_thread + 1))  # no gaps when nothing fails
    assert all(r == sorted(r) for r in results)  # each thread sees its serials increase
    assert _allocate(db) == threads * per_thread + 1


def _row(identifier: str, *, serial: int = 1, version: int = 1, source_id: str | None = None,
         previous: str | None = None, type_code: str = TYPE, issuer: str = ISSUER,
         live_key: str | None = None) -> LicenceRecord:
    now = datetime.now(UTC)
    return LicenceRecord(
        identifier=identifier, type_code=type_code, issuer_code=issuer, serial=serial, version=version,
        licence_number="N1", holder_name="某某公司", holder_code="91350100MA0000000X", status="01",
        status_changed_at=now, valid_from=date(2024, 1, 1), valid_until=None, licence_metadata={"a": 1},
        data={"字段": "值"}, ofd_sm3="0" * 64, pdf_sm3="1" * 64, previous_identifier=previous,
        source_id=source_id, created_at=now, live_key=live_key)


def _insert(db, *rows: LicenceRecord) -> None:
    with db.transaction() as s:
        s.add_all(rows)
        s.flush()


def test_rows_round_trip_with_json_and_dates(db):
    _insert(db, _row("id-1"))
    with db.transaction() as s:
        row = s.scalars(select(LicenceRecord)).one()
    assert row.data == {"字段": "值"} and row.licence_metadata == {"a": 1}
    assert row.valid_from == date(2024, 1, 1) and row.valid_until is None
    assert row.created_at.tzinfo is not None


@pytest.mark.parametrize("first, second", [
    ({"identifier": "same"}, {"identifier": "same", "serial": 2}),
    ({"identifier": "a"}, {"identifier": "b"}),  # same type, issuer, serial and version
    ({"identifier": "a", "source_id": "R1"}, {"identifier": "b", "serial": 2, "source_id": "R1"}),
    ({"identifier": "a", "previous": "old"}, {"identifier": "b", "serial": 2, "previous": "old"}),
    ({"identifier": "a", "live_key": "T/N1"},
     {"identifier": "b", "serial": 2, "issuer": "91350100MA0000000X", "live_key": "T/N1"}),
])
def test_unique_rules_are_enforced_by_the_database(db, first, second):
    _insert(db, _row(**first))
    with pytest.raises(IntegrityError):
        _insert(db, _row(**second))
    with db.transaction() as s:
        assert s.scalar(select(LicenceRecord.identifier)) == first["identifier"]
        assert len(list(s.scalars(select(LicenceRecord)))) == 1


def test_source_ids_are_unique_per_issuer_and_type_only(db):
    _insert(db, _row("a", source_id="R1"), _row("b", serial=2, source_id=None), _row("c", serial=3),
            _row("d", source_id="R1", issuer="91350100MA0000000X"),
            _row("e", source_id="R1", type_code="11100000MB0143028K002"))
    with db.transaction() as s:
        assert len(list(s.scalars(select(LicenceRecord)))) == 5


def test_licence_events_are_append_only(db):
    _insert(db, _row("a"))
    with db.transaction() as s:
        licence_id = s.scalar(select(LicenceRecord.id))
        s.add(LicenceEvent(licence_id=licence_id, from_status=None, to_status="01", act="issue",
                           actor="t", at=datetime.now(UTC)))
    for statement in ("UPDATE licence_event SET to_status = '07'", "DELETE FROM licence_event"):
        with pytest.raises(DBAPIError, match="append-only"), db.transaction() as s:
            s.execute(text(statement))
    if db.dialect == "postgresql":
        with pytest.raises(DBAPIError, match="append-only"), db.transaction() as s:
            s.execute(text("TRUNCATE licence_event"))
    with db.transaction() as s:
        assert [e.to_status for e in s.scalars(select(LicenceEvent))] == ["01"]


def test_an_event_needs_its_licence(db):
    with pytest.raises(IntegrityError), db.transaction() as s:
        s.add(LicenceEvent(licence_id=999, from_status=None, to_status="01", act="issue", actor="t",
                           at=datetime.now(UTC)))
        s.flush()


def test_live_keys_may_be_absent_on_any_number_of_rows(db):
    _insert(db, _row("a"), _row("b", serial=2), _row("c", serial=3, live_key="T/N1"))
    with db.transaction() as s:
        assert len(list(s.scalars(select(LicenceRecord)))) == 3


def test_migration_creates_the_tables_at_revision_0005(db):
    assert {"licence", "licence_event", "licence_serial"} <= set(db.table_names())
    assert db.current_revision() >= "0005"

