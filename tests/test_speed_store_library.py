"""Recording licences the fast way keeps every rule, on SQLite and PostgreSQL: the rows written with
SQLAlchemy Core come back as a query would give them, a group's rows, events and audit entries
are all there in order, a holder expired by the clock is released inside the group's transaction,
the library's one-query answer about taken numbers and converted records is right, and the
document store syncs every file a row is about to name."""

from __future__ import annotations

import dataclasses
import itertools
from datetime import UTC, date, datetime, timedelta

import pytest
from sqlalchemy import event, select
from sqlalchemy import inspect as orm_inspect

from ca.names import credit_code_check_character
from ledger.audit import AuditLog, AuditRecord
from licences import storage
from licences.identifiers import LicenceIdentifier
from licences.lifecycle import IssuedDocuments, LicenceExists, LicenceLibrary
from licences.metadata import HolderCodeType, LicenceMetadata, LicenceStatus
from licences.registry import LicenceEvent, LicenceRecord
from licences.storage import DocumentStore

S = LicenceStatus
ISSUER = "11350100MB0000000Y"
OTHER_ISSUER = "11350200MB00000004"


def _credit_code(first17: str) -> str:
    return first17 + credit_code_check_character(first17)


TYPE = _credit_code("11100000MB0143028") + "001"
OTHER_TYPE = TYPE[:18] + "002"
_numbers = itertools.count(1)


@pytest.fixture
def library(db, tmp_path) -> LicenceLibrary:
    return LicenceLibrary(db, AuditLog(db), DocumentStore(tmp_path / "documents"), actor="speed-test")


def _metadata(library: LicenceLibrary, *, number: str | None = None, type_code: str = TYPE,
              issuer: str = ISSUER, valid_until: date | None = date(2099, 12, 31)) -> LicenceMetadata:
    identifier = library.allocate_identifier(type_code, issuer)
    return LicenceMetadata(
        identifier=identifier, type_name="营业执照", type_code=type_code,
        licence_number=number or f"N-{next(_numbers)}", name="营业执照", issue_date=date(2020, 1, 2),
        issuer_name="示例市市场监督管理局", issuer_code=issuer, defining_authority="国家市场监督管理总局",
        valid_from=date(2020, 1, 2), valid_until=valid_until, area_code=issuer[2:8], holder_name="示例科技有限公司",
        holder_code=_credit_code("91350100MA0000001"), holder_code_type=HolderCodeType.CREDIT_CODE,
        version=identifier.version)


def _item(metadata: LicenceMetadata, source_id: str | None = None) -> IssuedDocuments:
    tag = metadata.identifier.text.encode()
    return IssuedDocuments(metadata, {"名称": "示例科技有限公司", "tag": metadata.identifier.text},
                           b"PK\x03\x04 ofd of " + tag, b"%PDF-1.7 pdf of " + tag, source_id,
                           f"{metadata.identifier.serial:032x}")


def _columns(record: LicenceRecord) -> dict:
    return {attribute.key: getattr(record, attribute.key) for attribute in LicenceRecord.__mapper__.column_attrs}


def _same_instant(a, b) -> bool:
    return a == b if not isinstance(a, datetime) else abs(a - b) < timedelta(microseconds=1)


def test_a_recorded_licence_is_returned_as_the_database_holds_it(library):
    item = _item(_metadata(library), source_id="S-1")
    record = library.record_issued(item.metadata, item.data, ofd=item.ofd, pdf=item.pdf,
                                   source_id=item.source_id, qr_nonce=item.qr_nonce)
    state = orm_inspect(record)
    assert state.detached and state.identity == (record.id,)  # as a query leaves it, nothing pending
    with library.db.transaction() as s:
        stored = s.get(LicenceRecord, record.id)
        given, loaded = _columns(record), _columns(stored)
    assert given.keys() == loaded.keys()
    for name in given:
        assert _same_instant(given[name], loaded[name]), name
    assert record.status == S.VALID.value and record.live_key == f"{TYPE}/{item.metadata.licence_number}"
    assert library.document(record.identifier, "ofd") == item.ofd


def test_a_group_records_every_row_event_and_audit_entry_in_its_order(library):
    items = [_item(_metadata(library), source_id=f"G-{n}") for n in range(5)]
    before = library.audit.verify().entries
    records = library.record_issued_group(items)
    assert [r.identifier for r in records] == [i.metadata.identifier.text for i in items]
    assert [r.id for r in records] == sorted(r.id for r in records)
    with library.db.transaction() as s:
        events = s.execute(select(LicenceEvent.licence_id, LicenceEvent.act, LicenceEvent.from_status,
                                  LicenceEvent.to_status, LicenceEvent.actor)
                           .where(LicenceEvent.licence_id.in_([r.id for r in records]))
                           .order_by(LicenceEvent.id)).all()
        audit = s.execute(select(AuditRecord.subject, AuditRecord.action).where(AuditRecord.seq > before)
                          .order_by(AuditRecord.seq)).all()
        rows = {r.identifier: r.source_id for r in s.scalars(
            select(LicenceRecord).where(LicenceRecord.id.in_([r.id for r in records])))}
    assert events == [(r.id, "issue", None, "01", "speed-test") for r in records]
    assert audit == [(f"licence:{r.identifier}", "licence.issue") for r in records]
    assert rows == {i.metadata.identifier.text: i.source_id for i in items}
    assert library.audit.verify().ok
    entry = library.audit.entries(subject=f"licence:{records[2].identifier}")[0]
    assert entry.details["ofd_sm3"] == records[2].ofd_sm3 and entry.details["source_id"] == "G-2"


def test_a_group_releases_a_number_whose_holder_the_clock_has_expired(library):
    old = _item(_metadata(library, number="N-EXPIRING", valid_until=date(2021, 6, 30)))
    expired = library.record_issued(old.metadata, old.data, ofd=old.ofd, pdf=old.pdf)
    assert expired.status == S.VALID.value  # recorded valid; the clock has expired it since
    assert library.taken(TYPE, ISSUER, numbers=["N-EXPIRING"]).holders == {}  # it holds nothing
    fresh = [_item(_metadata(library)), _item(_metadata(library, number="N-EXPIRING"))]
    records = library.record_issued_group(fresh)
    assert all(isinstance(r, LicenceRecord) for r in records)
    assert library.find(expired.identifier).status == S.EXPIRED.value
    assert [e.act for e in library.events(expired.identifier)] == ["issue", "expire"]
    assert library.taken(TYPE, ISSUER, numbers=["N-EXPIRING"]).holders == {"N-EXPIRING": records[1].identifier}


def test_a_holder_another_transaction_expires_meanwhile_is_expired_once(library):
    """The holders are found with one light query; the one to expire is read again, whole: on
    SQLite reads run outside the transaction until its first write, so another issuance may
    have recorded the expiry in between (then this one must not try to record it again)."""
    if library.db.dialect != "sqlite":
        pytest.skip("PostgreSQL locks the holder's row at the first query (FOR UPDATE)")
    old = _item(_metadata(library, number="N-RACED", valid_until=date(2021, 6, 30)))
    expired = library.record_issued(old.metadata, old.data, ofd=old.ofd, pdf=old.pdf)
    fired = []

    def meanwhile(_conn, _cursor, statement, *_args) -> None:
        if statement.startswith("SELECT licence.id, licence.status, licence.valid_until") and not fired:
            fired.append(statement)
            library.expire_due()  # another transaction records the expiry right after the query

    new = _item(_metadata(library, number="N-RACED"))
    event.listen(library.db.engine, "after_cursor_execute", meanwhile)
    try:
        record = library.record_issued(new.metadata, new.data, ofd=new.ofd, pdf=new.pdf)
    finally:
        event.remove(library.db.engine, "after_cursor_execute", meanwhile)
    assert fired
    assert [e.act for e in library.events(expired.identifier)] == ["issue", "expire"]
    assert library.taken(TYPE, ISSUER, numbers=["N-RACED"]).holders == {"N-RACED": record.identifier}
    assert library.audit.verify().ok


def test_a_group_with_a_number_taken_meanwhile_records_the_others(library):
    taken = _item(_metadata(library, number="N-TAKEN"))
    holder = library.record_issued(taken.metadata, taken.data, ofd=taken.ofd, pdf=taken.pdf)
    group = [_item(_metadata(library), "T-1"), _item(_metadata(library, number="N-TAKEN"), "T-2"),
             _item(_metadata(library), "T-3")]
    outcomes = library.record_issued_group(group)
    assert isinstance(outcomes[0], LicenceRecord) and isinstance(outcomes[2], LicenceRecord)
    assert isinstance(outcomes[1], LicenceExists) and outcomes[1].field == "licence_number"
    assert outcomes[1].existing == holder.identifier
    assert library.taken(TYPE, ISSUER, source_ids=["T-1", "T-2", "T-3"]).converted == {
        "T-1": outcomes[0].identifier, "T-3": outcomes[2].identifier}
    assert library.audit.verify().ok


def test_taken_says_which_numbers_are_held_live_and_which_records_are_converted(library):
    def issue(number: str, *, type_code: str = TYPE, issuer: str = ISSUER, source_id: str | None = None):
        item = _item(_metadata(library, number=number, type_code=type_code, issuer=issuer))
        return library.record_issued(item.metadata, item.data, ofd=item.ofd, pdf=item.pdf, source_id=source_id)

    valid = issue("N-VALID", source_id="SRC-1")
    suspended = issue("N-SUSPENDED")
    library.suspend(suspended.identifier, "under review")
    revoked = issue("N-REVOKED")
    library.revoke(revoked.identifier, "fraud")
    other_type = issue("N-VALID", type_code=OTHER_TYPE, source_id="SRC-2")
    other_issuer = issue("N-ELSEWHERE", issuer=OTHER_ISSUER, source_id="SRC-1")

    found = library.taken(TYPE, ISSUER, numbers=["N-VALID", "N-SUSPENDED", "N-REVOKED", "N-ELSEWHERE", "N-NONE"],
                          source_ids=["SRC-1", "SRC-2", "SRC-NONE"])
    # A number is held whoever issued the licence; a source record is the issuer's and type's own.
    assert found.holders == {"N-VALID": valid.identifier, "N-SUSPENDED": suspended.identifier,
                             "N-ELSEWHERE": other_issuer.identifier}
    assert found.converted == {"SRC-1": valid.identifier}
    assert library.taken(OTHER_TYPE, ISSUER, numbers=["N-VALID"], source_ids=["SRC-2"]) == (
        {"N-VALID": other_type.identifier}, {"SRC-2": other_type.identifier})
    later = datetime(2100, 1, 1, tzinfo=UTC)  # after 2099-12-31: every holder has expired by then
    assert library.taken(TYPE, ISSUER, numbers=["N-VALID", "N-SUSPENDED"], now=later).holders == {}
    assert library.taken(TYPE, ISSUER) == ({}, {})


def test_taken_answers_for_more_numbers_than_one_statement_may_carry(library):
    items = [_item(_metadata(library, number=f"BULK-{n}")) for n in (0, 777, 1100)]
    for item in items:
        library.record_issued(item.metadata, item.data, ofd=item.ofd, pdf=item.pdf)
    asked = [f"BULK-{n}" for n in range(1200)]  # three slices of the IN list
    assert library.taken(TYPE, ISSUER, numbers=asked).holders == {
        i.metadata.licence_number: i.metadata.identifier.text for i in items}


def test_a_new_version_is_recorded_with_its_event_and_the_old_one_superseded(library):
    first = _item(_metadata(library))
    old = library.record_issued(first.metadata, first.data, ofd=first.ofd, pdf=first.pdf)
    parsed = LicenceIdentifier.parse(old.identifier)
    metadata = dataclasses.replace(first.metadata, identifier=parsed.next_version(), version=2,
                                   previous_identifier=parsed)
    new = library.change(old.identifier, metadata, first.data, ofd=b"PK\x03\x04 v2", pdf=b"%PDF-1.7 v2",
                         reason="address changed")
    assert orm_inspect(new).detached and new.previous_identifier == old.identifier
    assert library.find(old.identifier).status == S.OTHER.value
    assert [(e.act, e.reason) for e in library.events(new.identifier)] == [
        ("issue", f"change of {old.identifier}: address changed")]
    assert library.taken(TYPE, ISSUER, numbers=[first.metadata.licence_number]).holders == {
        first.metadata.licence_number: new.identifier}


# -- the document store ------------------------------------------------------------------------

def _count_syncs(monkeypatch) -> tuple[list, list, list]:
    files, directories, whole = [], [], []
    monkeypatch.setattr(storage, "_fsync_path", lambda path: files.append(path))
    monkeypatch.setattr(storage.DocumentStore, "_sync_directory", staticmethod(lambda d: directories.append(d)))
    monkeypatch.setattr(storage, "_syncfs", lambda root: whole.append(root) or True)
    return files, directories, whole


def test_one_licence_syncs_its_own_files_and_a_group_the_file_system(tmp_path, monkeypatch):
    files, directories, whole = _count_syncs(monkeypatch)
    store = DocumentStore(tmp_path / "docs")
    pair = store.put_many([b"PK\x03\x04 one", b"%PDF- one"])
    assert sorted(files) == sorted(store.path(d) for d in pair) and whole == []
    assert sorted(directories) == sorted(store.path(d).parent for d in pair)
    files.clear()
    directories.clear()
    store.put_many([b"%%PDF- group %d" % n for n in range(storage.SYNCFS_FROM)])
    assert whole == [store.root] and files == [] and directories == []


def test_a_file_found_holding_the_bytes_is_synced_before_a_row_may_name_it(tmp_path, monkeypatch):
    store = DocumentStore(tmp_path / "docs")
    data = b"%PDF- written a moment ago by another process"
    digest = storage.sm3(data).hex()
    store.path(digest).parent.mkdir(parents=True)
    store.path(digest).write_bytes(data)  # not synced by whoever wrote it
    files, directories, _ = _count_syncs(monkeypatch)
    assert store.put_many([data]) == [digest]
    assert files == [store.path(digest)] and directories == [store.path(digest).parent]


def test_a_document_damaged_under_its_name_is_replaced_and_synced(tmp_path, monkeypatch):
    store = DocumentStore(tmp_path / "docs")
    data = b"PK\x03\x04 the sealed OFD"
    digest = store.put(data)
    store.path(digest).write_bytes(b"PK\x03\x04 half written")  # what a crash before the sync can leave
    files, _, _ = _count_syncs(monkeypatch)
    assert store.put(data) == digest and store.get(digest) == data
    assert files == [store.path(digest)]
    assert [p.name for p in store.path(digest).parent.iterdir()] == [digest]  # no temporary left
