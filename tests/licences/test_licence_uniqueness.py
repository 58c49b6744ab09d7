"""What the licence library keeps unique on both databases, also under concurrent issuance:
one live licence per licence number (from any issuer), serials per issuer across its types."""

from __future__ import annotations

import threading
from datetime import date

import pytest

from ca.names import credit_code_check_character
from ledger.audit import AuditLog
from licences.identifiers import LicenceIdentifier
from licences.lifecycle import LicenceExists, LicenceLibrary, LicenceRequestError
from licences.metadata import HolderCodeType, LicenceMetadata, LicenceStatus
from licences.storage import DocumentStore

ISSUER = "11350100MB0000000Y"
OTHER_ISSUER = "91350100MA0000000L"
TYPE = "11100000MB0000019L001"
OTHER_TYPE = "11100000MB0000019L002"
HOLDER = "91350100MA0000001" + credit_code_check_character("91350100MA0000001")


@pytest.fixture
def library(db, tmp_path) -> LicenceLibrary:
    return LicenceLibrary(db, AuditLog(db), DocumentStore(tmp_path / "documents"), actor="licence-officer")


def _metadata(identifier: LicenceIdentifier, number: str, *, valid_from: date = date(2026, 1, 2),
              valid_until: date | None = None, previous: LicenceIdentifier | None = None) -> LicenceMetadata:
    return LicenceMetadata(
        identifier=identifier, type_name="营业执照", type_code=identifier.type_code, licence_number=number,
        name="营业执照", issue_date=valid_from, issuer_name="示例市市场监督管理局",
        issuer_code=identifier.issuer_code, defining_authority="国家市场监督管理总局", valid_from=valid_from,
        valid_until=valid_until, area_code="350100", holder_name="示例科技有限公司", holder_code=HOLDER,
        holder_code_type=HolderCodeType.CREDIT_CODE, version=identifier.version, previous_identifier=previous)


def _documents(identifier: LicenceIdentifier) -> dict[str, bytes]:
    tag = identifier.text.encode()
    return {"ofd": b"PK\x03\x04 ofd " + tag, "pdf": b"%PDF-1.7 pdf " + tag}


def _record(library: LicenceLibrary, number: str, *, issuer: str = ISSUER, type_code: str = TYPE, **kwargs):
    identifier = library.allocate_identifier(type_code, issuer)
    return library.record_issued(_metadata(identifier, number, **kwargs), {"n": number},
                                 **_documents(identifier))


def test_a_live_number_is_refused_from_any_issuer(library):
    first = _record(library, "N-1")
    with pytest.raises(LicenceExists) as caught:
        _record(library, "N-1", issuer=OTHER_ISSUER)
    assert (caught.value.field, caught.value.value, caught.value.existing) == ("licence_number", "N-1",
                                                                               first.identifier)
    assert _record(library, "N-1", type_code=OTHER_TYPE).licence_number == "N-1"  # another type's number
    assert library.live_licence(TYPE, "N-1").identifier == first.identifier


def test_a_live_number_holder_that_expired_by_the_clock_is_recorded_expired_first(library):
    old = _record(library, "N-2", valid_from=date(2020, 1, 1), valid_until=date(2021, 1, 1))
    assert library.live_licence(TYPE, "N-2") is None  # expired by the clock, no sweep yet
    new = _record(library, "N-2")
    assert library.find(old.identifier).status == LicenceStatus.EXPIRED.value
    assert [e.act for e in library.events(old.identifier)] == ["issue", "expire"]
    assert library.live_licence(TYPE, "N-2").identifier == new.identifier


def test_a_change_keeps_the_number_and_frees_it_from_the_old_version(library):
    first = _record(library, "N-3")
    new_id = LicenceIdentifier.parse(first.identifier).next_version()
    metadata = _metadata(new_id, "N-3", previous=LicenceIdentifier.parse(first.identifier))
    changed = library.change(first.identifier, metadata, {"n": "N-3"}, reason="变更", qr_nonce="AB" * 16,
                             **_documents(new_id))
    assert changed.live_key == f"{TYPE}/N-3" and changed.qr_nonce == "ab" * 16
    assert library.find(first.identifier).live_key is None


def test_a_malformed_qr_nonce_is_refused(library):
    identifier = library.allocate_identifier(TYPE, ISSUER)
    for bad in ("ab" * 15, "zz" * 16, 12):
        with pytest.raises(LicenceRequestError, match="qr_nonce"):
            library.record_issued(_metadata(identifier, "N-4"), {}, qr_nonce=bad, **_documents(identifier))


def test_concurrent_issues_of_one_number_record_exactly_one(library):
    threads = 6
    barrier = threading.Barrier(threads)
    ok: list[str] = []
    refused: list[LicenceExists] = []
    errors: list[BaseException] = []

    def work(index: int) -> None:
        issuer = ISSUER if index % 2 else OTHER_ISSUER
        identifier = library.allocate_identifier(TYPE, issuer)
        metadata = _metadata(identifier, "N-RACE")
        try:
            barrier.wait()
            ok.append(library.record_issued(metadata, {"i": index}, **_documents(identifier)).identifier)
        except LicenceExists as exc:
            refused.append(exc)
        except BaseException as exc:  # reported below: a thread's failure must fail the test
            errors.append(exc)

    workers = [threading.Thread(target=work, args=(i,)) for i in range(threads)]
    for w in workers:
        w.start()
    for w in workers:
        w.join(timeout=120)
    assert not errors, errors
    assert len(ok) == 1 and len(refused) == threads - 1
    assert {e.field for e in refused} == {"licence_number"}
    assert library.live_licence(TYPE, "N-RACE").identifier == ok[0]
    assert len(library.licences(type_code=TYPE, limit=100)) == 1


def test_serials_are_per_issuer_across_types(library):
    serials = [library.allocate_identifier(t, ISSUER).serial for t in (TYPE, OTHER_TYPE, TYPE, OTHER_TYPE)]
    assert serials == [1, 2, 3, 4]
    assert library.allocate_identifier(TYPE, OTHER_ISSUER).serial == 1
    assert library.allocate_serials(ISSUER, OTHER_TYPE, 10) == range(5, 15)


def test_concurrent_allocation_across_types_never_repeats_a_serial(library):
    threads, per_thread = 6, 15
    barrier = threading.Barrier(threads)
    results: list[list[int]] = [[] for _ in range(threads)]
    errors: list[BaseException] = []

    def work(index: int) -> None:
        try:
            barrier.wait()
            for _ in range(per_thread):
                type_code = TYPE if index % 2 else OTHER_TYPE
                results[index].append(library.allocate_identifier(type_code, ISSUER).serial)
        except BaseException as exc:  # reported below
            errors.append(exc)

    workers = [threading.Thread(target=work, args=(i,)) for i in range(threads)]
    for w in workers:
        w.start()
    for w in workers:
        w.join(timeout=120)
    assert not errors, errors
    serials = sorted(n for r in results for n in r)
    assert serials == list(range(1, threads * per_thread + 1))


def test_find_by_qr_on_a_licence_recorded_without_a_nonce_finds_nothing(library):
    record = _record(library, "N-5")
    assert record.qr_nonce is None
    assert library.find_by_qr(record.identifier, "0" * 32) is None
    assert library.find_by_qr(record.identifier, "") is None



def _race(threads: int, act) -> tuple[list, list[BaseException]]:
    """Run ``act(index)`` in ``threads`` threads started together: (results, exceptions)."""
    barrier = threading.Barrier(threads)
    results: list = []
    errors: list[BaseException] = []

    def work(index: int) -> None:
        try:
            barrier.wait()
            results.append(act(index))
        except BaseException as exc:  # sorted out by the caller: a thread's failure must show
            errors.append(exc)

    workers = [threading.Thread(target=work, args=(i,)) for i in range(threads)]
    for w in workers:
        w.start()
    for w in workers:
        w.join(timeout=120)
    return results, errors


@pytest.mark.parametrize("round_", range(3))
def test_concurrent_issues_over_a_clock_expired_holder_say_the_number_is_taken(library, round_):
    """Every issuance reads the expired holder and releases it; all but one lose the race. A
    loser must hear LicenceExists for the licence number (the winner's licence), not a state
    error about the old licence, which it never named (SQLite: no row locks, a stale read)."""
    number = f"N-EXP-{round_}"
    old = _record(library, number, valid_from=date(2020, 1, 1), valid_until=date(2020, 12, 31))
    identifiers = [library.allocate_identifier(TYPE, ISSUER) for _ in range(6)]

    def issue(index: int) -> str:
        identifier = identifiers[index]
        return library.record_issued(_metadata(identifier, number), {"i": index},
                                     **_documents(identifier)).identifier

    ok, errors = _race(len(identifiers), issue)
    assert len(ok) == 1, errors
    assert all(isinstance(e, LicenceExists) and e.field == "licence_number" for e in errors), errors
    assert {e.existing for e in errors} <= {ok[0]}
    assert library.find(old.identifier).status == LicenceStatus.EXPIRED.value
    assert [e.act for e in library.events(old.identifier)] == ["issue", "expire"]
    assert library.live_licence(TYPE, number).identifier == ok[0]


def test_find_by_qr_reads_no_licence_row_for_a_wrong_nonce(library):
    """Only the id and the nonce are read before the comparison: a known identifier with a wrong
    nonce costs what an unknown one does (no row, data or metadata loaded for it)."""
    from sqlalchemy import event

    identifier = library.allocate_identifier(TYPE, ISSUER)
    big = {f"字段{i}": "经营范围" * 200 for i in range(20)}
    record = library.record_issued(_metadata(identifier, "N-QR"), big, qr_nonce="ab" * 16,
                                   **_documents(identifier))
    statements: list[str] = []

    def seen(conn, cursor, statement, parameters, context, executemany) -> None:
        statements.append(statement)

    event.listen(library.db.engine, "before_cursor_execute", seen)
    try:
        assert library.find_by_qr(record.identifier, "cd" * 16) is None
        wrong = list(statements)
        found = library.find_by_qr(record.identifier, "AB" * 16)
    finally:
        event.remove(library.db.engine, "before_cursor_execute", seen)
    selects = [s for s in wrong if s.lstrip().upper().startswith("SELECT")]
    assert selects and all("licence.data" not in s and "licence.metadata" not in s for s in selects), selects
    assert found is not None and found.identifier == record.identifier and found.data == big
