"""Licences issued and recorded in groups (bulk conversion): each record's own outcome, one
durable sync and one transaction per group, nothing recorded when the group's transaction
fails, and the cached seal lookup seeing a seal suspended at once — on SQLite and PostgreSQL."""

from __future__ import annotations

import itertools
import os
import uuid
from datetime import UTC, datetime

import pytest
from sqlalchemy import func, select

from ca.names import credit_code_check_character
from keys_dev.domain import DEMO_DEPARTMENT_CODE
from ledger.audit import AuditRecord
from licences import issuance, storage
from licences.catalogue import LicenceDataError
from licences.identifiers import LicenceIdentifier
from licences.issuance import IssuedLicence, NoLicenceSeal
from licences.layout import LayoutError
from licences.lifecycle import LicenceExists
from licences.registry import LicenceRecord
from support.homes_on_databases import initialised_home
from trust.batch import _record_faults

BUSINESS = "11100000MB0000019L001"
_numbers = itertools.count(1)


@pytest.fixture(scope="module", params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def home(request, tmp_path_factory):
    url = request.getfixturevalue("postgres_url") if request.param == "postgresql" else None
    with initialised_home(tmp_path_factory.mktemp("group-home"), url) as path:
        yield path


@pytest.fixture
def td(home):
    from trust.domain import TrustDomain

    domain = TrustDomain.open(str(home))
    yield domain
    domain.close()


def _data(td, number: str | None = None, **changes) -> dict:
    data = dict(td.catalogue.get(BUSINESS).example)
    if number is None:
        first17 = f"91350103MA{next(_numbers):07d}"
        number = first17 + credit_code_check_character(first17)
    data["统一社会信用代码"] = number
    return data | changes


def _source() -> str:
    return f"G-{uuid.uuid4().hex[:12]}"


def _recorded(td, source_ids) -> dict[str, LicenceRecord]:
    with td.db.transaction() as s:
        return {r.source_id: r for r in s.scalars(select(LicenceRecord).where(LicenceRecord.source_id.in_(source_ids)))}


def _issue_group(td, records):
    return td.licence_desk.issue_group(BUSINESS, records, issuer_code=DEMO_DEPARTMENT_CODE, faults=_record_faults())


def test_each_record_of_a_group_gets_its_own_outcome(td):
    shared = _data(td)["统一社会信用代码"]
    records = [(_source(), _data(td)), (_source(), _data(td, 名称="")), (_source(), _data(td, shared)),
               (_source(), _data(td)), (_source(), _data(td, shared))]
    results = _issue_group(td, records)
    assert [type(r) for r in results] == [IssuedLicence, LicenceDataError, IssuedLicence, IssuedLicence,
                                          LicenceExists]
    assert results[4].field == "licence_number" and results[4].existing == results[2].identifier
    rows = _recorded(td, [s for s, _ in records])
    assert set(rows) == {records[i][0] for i in (0, 2, 3)}
    for index in (0, 2, 3):  # every row has its documents, and they are the ones returned
        row, issued = rows[records[index][0]], results[index]
        assert row.identifier == issued.identifier
        assert td.licences.document(row.identifier, "ofd") == issued.ofd
        assert td.licences.document(row.identifier, "pdf") == issued.pdf
    with td.db.transaction() as s:
        audited = s.scalar(select(func.count()).select_from(AuditRecord).where(
            AuditRecord.action == "licence.issue", AuditRecord.subject.in_(
                [f"licence:{rows[records[i][0]].identifier}" for i in (0, 2, 3)])))
    assert audited == 3


def _failing_on_second_call(monkeypatch, name: str, error: Exception) -> None:
    """issuance.``name`` raising ``error`` the second time it is called (the group's second
    licence: the group is made step by step, each step for every licence in order)."""
    real, calls = getattr(issuance, name), []

    def step(*args, **kwargs):
        calls.append(name)
        if len(calls) == 2:
            raise error
        return real(*args, **kwargs)

    monkeypatch.setattr(issuance, name, step)


@pytest.mark.parametrize("step", ["render", "write_pdf"])
def test_a_record_refused_while_its_documents_are_made_leaves_the_others_issued(td, monkeypatch, step):
    records = [(_source(), _data(td)) for _ in range(3)]
    _failing_on_second_call(monkeypatch, step, LayoutError("the field does not fit its box"))
    results = _issue_group(td, records)
    assert [type(r) for r in results] == [IssuedLicence, LayoutError, IssuedLicence]
    assert set(_recorded(td, [s for s, _ in records])) == {records[0][0], records[2][0]}
    first, third = (LicenceIdentifier.parse(results[i].identifier) for i in (0, 2))
    assert third.serial == first.serial + 2  # the refused record's serial is a gap, never reused
    for index in (0, 2):
        assert td.licences.document(results[index].identifier, "pdf") == results[index].pdf


def test_an_error_not_about_one_record_while_making_stops_the_group_and_records_nothing(td, monkeypatch):
    records = [(_source(), _data(td)) for _ in range(3)]
    _failing_on_second_call(monkeypatch, "seal_ofd", OSError("the key store is unreachable"))
    with pytest.raises(OSError, match="key store"):
        _issue_group(td, records)
    assert _recorded(td, [s for s, _ in records]) == {}


def test_a_group_is_made_durable_with_one_sync_and_committed_once(td, monkeypatch):
    from sqlalchemy import event

    syncs, fsyncs = [], []
    real_fsync = os.fsync
    monkeypatch.setattr(storage, "_syncfs", lambda root: syncs.append(root) or True)
    monkeypatch.setattr(storage.os, "fsync", lambda fd: fsyncs.append(fd) or real_fsync(fd))
    happened: list[str] = []

    def statement(_conn, _cursor, sql, *_args):
        words = sql.split()
        if words[:3] == ["INSERT", "INTO", "licence"]:
            happened.append("row")
        elif words[:2] == ["INSERT", "INTO"] and "licence_serial" in words[2]:
            happened.append("serials")

    def commit(_conn):
        happened.append("commit")

    engine = td.db.engine
    event.listen(engine, "before_cursor_execute", statement)
    event.listen(engine, "commit", commit)
    try:
        records = [(_source(), _data(td)) for _ in range(4)]
        results = _issue_group(td, records)
    finally:
        event.remove(engine, "before_cursor_execute", statement)
        event.remove(engine, "commit", commit)
    assert all(isinstance(r, IssuedLicence) for r in results)
    assert len(syncs) == 1 and fsyncs == []  # no file or directory fsynced one by one
    writes = [w for w in " ".join(happened).split("commit") if w.strip()]
    assert [w.split() for w in writes] == [["serials"], ["row"] * 4]  # two write transactions
    assert len(_recorded(td, [s for s, _ in records])) == 4


def test_a_group_whose_transaction_fails_records_nothing_and_can_be_done_again(td, monkeypatch):
    records = [(_source(), _data(td)) for _ in range(3)]
    calls = []
    real = td.audit.record_many

    def failing(entries, **kwargs):
        entries = list(entries)
        calls.extend(e.action for e in entries)
        if len(calls) >= 2:  # the second licence's audit entry: the whole group rolls back
            raise RuntimeError("the audit store is down")
        return real(entries, **kwargs)

    monkeypatch.setattr(td.audit, "record_many", failing)
    with pytest.raises(RuntimeError, match="audit store"):
        _issue_group(td, records)
    monkeypatch.undo()
    assert _recorded(td, [s for s, _ in records]) == {}  # documents perhaps on disk, no row
    again = _issue_group(td, records)  # the re-run issues them anew, once each
    assert all(isinstance(r, IssuedLicence) for r in again)
    assert set(_recorded(td, [s for s, _ in records])) == {s for s, _ in records}


def test_put_many_stores_each_document_once_and_checks_its_digest(tmp_path):
    store = storage.DocumentStore(tmp_path / "docs")
    digests = store.put_many([b"%PDF-one", b"%PDF-two", b"%PDF-one"])
    assert digests[0] == digests[2] != digests[1]
    assert store.get(digests[0]) == b"%PDF-one" and store.get(digests[1]) == b"%PDF-two"
    (store.path(digests[1])).write_bytes(b"damaged")
    assert store.put_many([b"%PDF-two"]) == [digests[1]] and store.get(digests[1]) == b"%PDF-two"
    with pytest.raises(TypeError):
        store.put_many(["text"])  # type: ignore[list-item]


def test_without_syncfs_each_file_and_directory_is_fsynced(tmp_path, monkeypatch):
    monkeypatch.setattr(storage, "_syncfs", lambda root: False)
    synced = []
    real_fsync = os.fsync
    monkeypatch.setattr(storage.os, "fsync", lambda fd: synced.append(fd) or real_fsync(fd))
    storage.DocumentStore(tmp_path / "docs").put_many([b"%PDF-a", b"%PDF-b"])
    assert len(synced) == 4  # two files, two directories


def test_a_seal_suspended_in_this_process_stops_issuing_at_once(td):
    desk, now = td.licence_desk, datetime.now(UTC)
    identity, _ = desk.licence_seal(DEMO_DEPARTMENT_CODE, now)  # now kept in the desk's cache
    assert desk.licence_seal(DEMO_DEPARTMENT_CODE, now)[0] is identity
    td.seals.suspend(identity.es_id, "token lost")
    try:
        with pytest.raises(NoLicenceSeal, match="none is active"):
            desk.issue(BUSINESS, _data(td), issuer_code=DEMO_DEPARTMENT_CODE)
        source = _source()
        with pytest.raises(NoLicenceSeal):
            _issue_group(td, [(source, _data(td))])
        assert _recorded(td, [source]) == {}
    finally:
        td.seals.resume(identity.es_id)
    assert desk.licence_seal(DEMO_DEPARTMENT_CODE, datetime.now(UTC))[0].es_id == identity.es_id
