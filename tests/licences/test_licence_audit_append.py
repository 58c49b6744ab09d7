"""The licence library's audit entries go in one append per act or group (AuditLog.record_many):
in the licences' order, one head query and one INSERT for a group, and an audit append that
fails rolls the act or the whole group back — on SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import date

import pytest
from sqlalchemy import event

from ca.names import credit_code_check_character
from ledger.audit import AuditLog
from licences.lifecycle import IssuedDocuments, LicenceLibrary, LicenceNotFound
from licences.metadata import HolderCodeType, LicenceMetadata
from licences.storage import DocumentStore

ISSUER = "11350100MB0000000Y"
TYPE = "11100000MB0143028" + credit_code_check_character("11100000MB0143028") + "001"


@pytest.fixture
def library(db, tmp_path) -> LicenceLibrary:
    return LicenceLibrary(db, AuditLog(db), DocumentStore(tmp_path / "documents"), actor="licence-officer")


def _item(library: LicenceLibrary, source_id: str) -> IssuedDocuments:
    identifier = library.allocate_identifier(TYPE, ISSUER)
    first17 = f"91350100MA{identifier.serial:07d}"
    metadata = LicenceMetadata(
        identifier=identifier, type_name="营业执照", type_code=identifier.type_code,
        licence_number=f"N{identifier.serial}", name="营业执照", issue_date=date(2020, 1, 2),
        issuer_name="示例市市场监督管理局", issuer_code=identifier.issuer_code,
        defining_authority="国家市场监督管理总局", valid_from=date(2020, 1, 2), valid_until=date(2099, 12, 31),
        area_code="350100", holder_name="示例科技有限公司", holder_code=first17 + credit_code_check_character(first17),
        holder_code_type=HolderCodeType.CREDIT_CODE, version=identifier.version)
    tag = identifier.text.encode()
    return IssuedDocuments(metadata, {"名称": "示例科技有限公司"}, b"PK\x03\x04 ofd of " + tag,
                           b"%PDF-1.7 pdf of " + tag, source_id=source_id)


def _audit_statements(library: LicenceLibrary, act) -> list[str]:
    seen: list[str] = []

    def statement(_conn, _cursor, sql, *_args):
        if "audit_log" in sql:
            seen.append(sql.strip() if "pg_advisory" in sql else " ".join(sql.split()[:3]))

    event.listen(library.db.engine, "before_cursor_execute", statement)
    try:
        act()
    finally:
        event.remove(library.db.engine, "before_cursor_execute", statement)
    return seen


def test_a_groups_entries_are_one_head_query_and_one_insert_in_the_licences_order(library):
    items = [_item(library, f"R-{i}") for i in range(5)]
    outcomes: list = []
    statements = _audit_statements(library, lambda: outcomes.extend(library.record_issued_group(items)))
    lock = ["SELECT pg_advisory_xact_lock(hashtext('zhengyin.audit_log'))"] if library.db.dialect == "postgresql" \
        else []  # PostgreSQL: appenders serialised first, before the head is read
    assert statements == [*lock, "SELECT audit_log.seq, audit_log.hash", "INSERT INTO audit_log"]
    identifiers = [o.identifier for o in outcomes]
    entries = list(reversed(library.audit.entries(action="licence.issue")))
    assert [e.subject for e in entries] == [f"licence:{i}" for i in identifiers]
    assert [e.details["source_id"] for e in entries] == [f"R-{i}" for i in range(5)]
    assert [e.seq for e in entries] == [1, 2, 3, 4, 5]
    assert library.audit.verify().ok


def test_an_act_on_an_expired_licence_appends_its_expiry_first(library, monkeypatch):
    [record] = library.record_issued_group([_item(library, "R-1")])
    from licences import lifecycle

    monkeypatch.setattr(lifecycle, "_now", lambda real=lifecycle._now: real().replace(year=2100))
    library.revoke(record.identifier, "fraud")
    acts = [e.action for e in reversed(library.audit.entries(subject=f"licence:{record.identifier}"))]
    assert acts == ["licence.issue", "licence.expire", "licence.revoke"] and library.audit.verify().ok


def _break_audit_append(library, monkeypatch, *, after: int = 0) -> list[int]:
    """The audit store fails on licence entries (after ``after`` good appends): what each call held."""
    real, calls = library.audit.record_many, []

    def record_many(entries, **kwargs):
        entries = list(entries)
        calls.append(len(entries))
        if any(e.action.startswith("licence.") for e in entries) and len(calls) > after:
            raise RuntimeError("audit store unavailable")
        return real(entries, **kwargs)

    monkeypatch.setattr(library.audit, "record_many", record_many)
    return calls


def test_a_failed_audit_append_rolls_the_whole_group_back(library, monkeypatch):
    items = [_item(library, f"G-{i}") for i in range(3)]
    calls = _break_audit_append(library, monkeypatch)
    with pytest.raises(RuntimeError, match="audit store"):
        library.record_issued_group(items)
    assert calls == [3]  # the group's entries in one append
    monkeypatch.undo()
    for item in items:
        with pytest.raises(LicenceNotFound):
            library.find(item.metadata.identifier)
    assert library.audit.verify().entries == 0
    assert len(library.record_issued_group(items)) == 3  # and it can be done again
    assert library.audit.verify().ok and library.audit.verify().entries == 3


def test_a_failed_audit_append_rolls_each_act_back(library, monkeypatch):
    [record] = library.record_issued_group([_item(library, "A-1")])
    history = [(e.from_status, e.to_status, e.act) for e in library.events(record.identifier)]
    _break_audit_append(library, monkeypatch)
    item = _item(library, "A-2")
    with pytest.raises(RuntimeError):
        library.record_issued(item.metadata, item.data, ofd=item.ofd, pdf=item.pdf)
    with pytest.raises(LicenceNotFound):
        library.find(item.metadata.identifier)
    with pytest.raises(RuntimeError):
        library.suspend(record.identifier, "x")
    monkeypatch.undo()
    assert library.find(record.identifier).status == "01"
    assert [(e.from_status, e.to_status, e.act) for e in library.events(record.identifier)] == history
    assert library.audit.verify().ok and library.audit.verify().entries == 1
    assert library.suspend(record.identifier, "x").status == "02" and library.audit.verify().entries == 2
