"""The licence library on both databases: recording issued licences with their documents, every
lifecycle act and the illegal ones, change and renewal, expiry, history, audit, filters."""

from __future__ import annotations

import itertools
import threading
from datetime import UTC, date, datetime, timedelta

import pytest

from ca.names import credit_code_check_character
from ledger.audit import AuditLog
from licences import lifecycle
from licences.identifiers import IdentifierError, LicenceIdentifier
from licences.lifecycle import (
    LicenceExists,
    LicenceLibrary,
    LicenceNotFound,
    LicenceRequestError,
    LicenceStateError,
    effective_status,
    expiry_instant,
)
from licences.metadata import HolderCodeType, LicenceMetadata, LicenceStatus
from licences.storage import DocumentCorrupted, DocumentStore

S = LicenceStatus


def _credit_code(first17: str) -> str:
    return first17 + credit_code_check_character(first17)


ISSUER = "11350100MB0000000Y"
TYPE = _credit_code("11100000MB0143028") + "001"
OTHER_TYPE = TYPE[:18] + "002"

HOLDER = _credit_code("91350100MA0000001")
OTHER_HOLDER = _credit_code("91350100MA0000002")


@pytest.fixture
def library(db, tmp_path) -> LicenceLibrary:
    return LicenceLibrary(db, AuditLog(db), DocumentStore(tmp_path / "documents"), actor="licence-officer")


def _metadata(identifier: LicenceIdentifier, *, valid_until: date | None = date(2099, 12, 31),
              holder_code: str = HOLDER, previous: LicenceIdentifier | None = None,
              status: LicenceStatus = S.VALID) -> LicenceMetadata:
    return LicenceMetadata(
        identifier=identifier, type_name="营业执照", type_code=identifier.type_code,
        licence_number=f"N{identifier.serial}", name="营业执照",  # one number for every version
        issue_date=date(2020, 1, 2),
        issuer_name="示例市市场监督管理局", issuer_code=identifier.issuer_code,
        defining_authority="国家市场监督管理总局", valid_from=date(2020, 1, 2), valid_until=valid_until,
        area_code="350100", holder_name="示例科技有限公司", holder_code=holder_code,
        holder_code_type=HolderCodeType.CREDIT_CODE, version=identifier.version,
        previous_identifier=previous, status=status)


def _documents(metadata: LicenceMetadata) -> dict[str, bytes]:
    tag = metadata.identifier.text.encode()
    return {"ofd": b"PK\x03\x04 ofd of " + tag, "pdf": b"%PDF-1.7 pdf of " + tag}


def _issue(library: LicenceLibrary, *, type_code: str = TYPE, source_id: str | None = None, **kwargs):
    metadata = _metadata(library.allocate_identifier(type_code, ISSUER), **kwargs)
    return library.record_issued(metadata, {"名称": "示例科技有限公司"}, **_documents(metadata),
                                 source_id=source_id)


def _history(library: LicenceLibrary, identifier: str) -> list[tuple[str | None, str, str]]:
    return [(e.from_status, e.to_status, e.act) for e in library.events(identifier)]


def _acts(library: LicenceLibrary, identifier: str) -> list[str]:
    return [e.action for e in reversed(library.audit.entries(subject=f"licence:{identifier}"))]


def test_recording_an_issued_licence(library):
    record = _issue(library, source_id="legacy-1")
    ident = LicenceIdentifier.parse(record.identifier)
    assert (ident.type_code, ident.issuer_code, ident.serial, ident.version) == (TYPE, ISSUER, 1, 1)
    assert (record.type_code, record.issuer_code, record.serial, record.version) == (TYPE, ISSUER, 1, 1)
    assert record.status == "01" and record.holder_code == HOLDER and record.source_id == "legacy-1"
    assert record.valid_until == date(2099, 12, 31) and record.data == {"名称": "示例科技有限公司"}
    documents = _documents(_metadata(ident))
    assert library.document(record.identifier, "ofd") == documents["ofd"]
    assert library.document(record.identifier, "pdf") == documents["pdf"]
    assert library.store.exists(record.ofd_sm3) and library.store.exists(record.pdf_sm3)
    assert library.current_metadata(record.identifier) == _metadata(ident)
    assert library.find(ident).id == library.find(record.identifier).id == record.id
    assert library.find_by_source(ISSUER, TYPE, "legacy-1").identifier == record.identifier
    assert library.find_by_source(ISSUER, TYPE, "legacy-2") is None
    assert _history(library, record.identifier) == [(None, "01", "issue")]
    [entry] = library.audit.entries(subject=f"licence:{record.identifier}")
    assert entry.action == "licence.issue" and entry.actor == "licence-officer"
    assert entry.details["ofd_sm3"] == record.ofd_sm3 and entry.details["source_id"] == "legacy-1"
    assert HOLDER not in entry.payload and "示例科技" not in entry.payload  # no holder data in the audit log
    assert library.audit.verify().ok


def test_full_lifecycle_with_history_and_audit(library):
    identifier = _issue(library).identifier
    library.suspend(identifier, "under investigation")
    library.resume(identifier)
    revoked = library.revoke(identifier, "licence obtained by fraud")
    assert revoked.status == "07" and revoked.status_reason == "licence obtained by fraud"
    assert library.find(identifier).status == "07"
    assert _history(library, identifier) == [
        (None, "01", "issue"), ("01", "02", "suspend"), ("02", "01", "resume"), ("01", "07", "revoke")]
    events = library.events(identifier)
    assert {e.actor for e in events} == {"licence-officer"}
    assert [e.reason for e in events] == [None, "under investigation", None, "licence obtained by fraud"]
    assert all(a.at <= b.at for a, b in itertools.pairwise(events))
    assert _acts(library, identifier) == ["licence.issue", "licence.suspend", "licence.resume",
                                          "licence.revoke"]
    assert library.audit.verify().ok


def _do(library, identifier, step):
    if step == "expire":
        assert [r.identifier for r in library.expire_due()] == [identifier]
    elif step == "change":
        _change(library, identifier)
    elif step == "resume":
        library.resume(identifier)
    else:
        getattr(library, step)(identifier, f"reason for {step}")


def _validity(steps) -> date:
    """A licence that the sweep can expire if the steps include it, else one valid for years."""
    return date(2024, 1, 31) if "expire" in steps else date(2099, 12, 31)


def _change(library, identifier, act="change"):
    old = LicenceIdentifier.parse(identifier)
    metadata = _metadata(old.next_version(), previous=old)
    return getattr(library, act)(identifier, metadata, {"名称": "新名称"}, **_documents(metadata),
                                 reason="名称变更")


@pytest.mark.parametrize("steps, act, target", [
    ((), "suspend", "02"), (("suspend",), "resume", "01"),
    ((), "revoke", "07"), (("suspend",), "revoke", "07"), (("expire",), "revoke", "07"),
    (("deregister",), "revoke", "07"), (("transfer",), "revoke", "07"), (("change",), "revoke", "07"),
    ((), "cancel", "03"), (("suspend",), "cancel", "03"), (("expire",), "cancel", "03"),
    (("deregister",), "cancel", "03"), (("change",), "cancel", "03"),
    ((), "deregister", "04"), (("suspend",), "deregister", "04"), (("expire",), "deregister", "04"),
    ((), "transfer", "06"),
])
def test_every_legal_transition(library, steps, act, target):
    identifier = _issue(library, valid_until=_validity(steps)).identifier
    for step in steps:
        _do(library, identifier, step)
    before = library.find(identifier).status
    entries = library.audit.verify().entries
    _do(library, identifier, act)
    assert library.find(identifier).status == target
    assert _history(library, identifier)[-1] == (before, target, act)
    assert library.audit.verify().entries == entries + 1 and library.audit.verify().ok
    assert library.audit.entries(subject=f"licence:{identifier}", limit=1)[0].action == f"licence.{act}"


@pytest.mark.parametrize("steps, act", [
    ((), "resume"), (("suspend",), "suspend"), (("suspend",), "transfer"), (("suspend",), "change"),
    (("revoke",), "revoke"), (("revoke",), "cancel"), (("revoke",), "resume"), (("revoke",), "renew"),
    (("cancel",), "revoke"), (("cancel",), "deregister"), (("deregister",), "resume"),
    (("deregister",), "deregister"), (("transfer",), "suspend"), (("transfer",), "deregister"),
    (("change",), "change"), (("change",), "renew"), (("change",), "suspend"), (("change",), "deregister"),
    (("expire",), "suspend"), (("expire",), "transfer"), (("expire",), "change"),
])
def test_illegal_transitions_are_refused_and_change_nothing(library, steps, act):
    identifier = _issue(library, valid_until=_validity(steps)).identifier
    for step in steps:
        _do(library, identifier, step)
    before, history = library.find(identifier).status, _history(library, identifier)
    entries = library.audit.verify().entries
    count = len(library.licences(limit=500))
    with pytest.raises(LicenceStateError) as caught:
        if act in ("change", "renew"):
            _change(library, identifier, act)
        else:
            _do(library, identifier, act)
    assert (caught.value.identifier, caught.value.status, caught.value.act) == (identifier, before, act)
    assert identifier in str(caught.value) and before in str(caught.value) and act in str(caught.value)
    assert library.find(identifier).status == before and _history(library, identifier) == history
    assert library.audit.verify().entries == entries and len(library.licences(limit=500)) == count


def test_change_supersedes_the_old_version_and_links_the_new(library):
    old = _issue(library).identifier
    new = _change(library, old)
    old_record = library.find(old)
    assert new.version == 2 and new.serial == old_record.serial and new.previous_identifier == old
    assert new.status == "01" and new.data == {"名称": "新名称"}
    assert old_record.status == "99" and old_record.superseded_by == new.identifier
    assert old_record.status_reason == f"superseded by {new.identifier}: 名称变更"
    assert _history(library, old) == [(None, "01", "issue"), ("01", "99", "change")]
    assert _history(library, new.identifier) == [(None, "01", "issue")]
    assert library.events(new.identifier)[0].reason == f"change of {old}: 名称变更"
    assert library.current_metadata(new.identifier).previous_identifier == LicenceIdentifier.parse(old)
    assert library.current_metadata(old).status is S.OTHER
    # The old version's documents are kept as they were.
    assert library.document(old, "ofd") == _documents(_metadata(LicenceIdentifier.parse(old)))["ofd"]
    assert _acts(library, old) == ["licence.issue", "licence.change"]
    assert _acts(library, new.identifier) == ["licence.issue"]
    assert library.audit.verify().ok


def test_renewal_of_an_expired_licence_records_the_expiry_first(library):
    old = _issue(library, valid_until=date(2024, 6, 30)).identifier
    assert library.status(old) is S.EXPIRED and library.find(old).status == "01"
    new = _change(library, old, "renew")
    assert library.find(old).status == "99" and library.find(old).superseded_by == new.identifier
    assert _history(library, old) == [(None, "01", "issue"), ("01", "05", "expire"), ("05", "99", "renew")]
    assert library.status(new.identifier) is S.VALID


@pytest.mark.parametrize("change", [
    lambda old: _metadata(old.next_version()),                          # no link to the old version
    lambda old: _metadata(old.next_version().next_version(), previous=old),  # skips a version
    lambda old: _metadata(LicenceIdentifier(old.type_code, old.issuer_code, 99, 2), previous=old),
    lambda old: _metadata(old.next_version(), previous=old, status=S.SUSPENDED),
])
def test_a_new_version_must_be_the_next_one_and_name_the_old(library, change):
    old = _issue(library).identifier
    metadata = change(LicenceIdentifier.parse(old))
    with pytest.raises(LicenceRequestError):
        library.change(old, metadata, {}, **_documents(metadata), reason="x")
    assert library.find(old).status == "01" and len(library.licences()) == 1


def test_change_needs_a_reason_and_an_existing_licence(library):
    old = LicenceIdentifier.parse(_issue(library).identifier)
    metadata = _metadata(old.next_version(), previous=old)
    with pytest.raises(LicenceRequestError, match="reason"):
        library.change(old, metadata, {}, **_documents(metadata), reason=" ")
    missing = LicenceIdentifier(TYPE, ISSUER, 77)
    metadata = _metadata(missing.next_version(), previous=missing)
    with pytest.raises(LicenceNotFound):
        library.change(missing, metadata, {}, **_documents(metadata), reason="x")


def test_expiry_is_by_the_last_valid_day_in_china(library):
    identifier = _issue(library, valid_until=date(2024, 1, 31)).identifier
    end = expiry_instant(date(2024, 1, 31))
    assert end == datetime(2024, 1, 31, 16, 0, tzinfo=UTC)  # midnight in Beijing
    assert library.status(identifier, end - timedelta(seconds=1)) is S.VALID
    assert library.status(identifier, end) is S.EXPIRED
    assert effective_status("02", date(2024, 1, 31), end) is S.EXPIRED
    assert effective_status("07", date(2024, 1, 31), end) is S.REVOKED
    assert effective_status("01", None, datetime(2999, 1, 1, tzinfo=UTC)) is S.VALID  # long-term


def test_the_expiry_sweep(library, monkeypatch):
    monkeypatch.setattr(lifecycle, "_now", lambda: datetime(2024, 1, 15, tzinfo=UTC))  # issued back then
    due = _issue(library, valid_until=date(2024, 1, 31)).identifier
    suspended = _issue(library, valid_until=date(2024, 2, 29)).identifier
    library.suspend(suspended, "x")
    monkeypatch.undo()
    later = _issue(library, valid_until=date(2099, 1, 1)).identifier
    long_term = _issue(library, valid_until=None).identifier
    revoked = _issue(library, valid_until=date(2024, 1, 1)).identifier
    library.revoke(revoked, "x")
    assert {r.identifier for r in library.licences(status="05")} == {due, suspended}  # before the sweep
    swept = library.expire_due(datetime(2024, 2, 1, tzinfo=UTC))  # 2024-02-01 08:00 in China
    assert [r.identifier for r in swept] == [due]
    assert library.find(due).status == "05" and library.find(suspended).status == "02"
    assert _history(library, due)[-1] == ("01", "05", "expire")
    assert library.events(due)[-1].reason == "validity ended 2024-01-31"
    swept = library.expire_due()
    assert [r.identifier for r in swept] == [suspended]
    assert library.expire_due() == []
    assert {library.find(i).status for i in (later, long_term)} == {"01"}
    assert library.find(revoked).status == "07"
    # Revoking the licence the clock had expired recorded that expiry first: three in all.
    assert _history(library, revoked)[1:] == [("01", "05", "expire"), ("05", "07", "revoke")]
    assert len(library.audit.entries(action="licence.expire")) == 3 and library.audit.verify().ok


def test_an_act_on_a_licence_the_clock_expired_records_the_expiry_first(library):
    identifier = _issue(library, valid_until=date(2024, 1, 31)).identifier
    with pytest.raises(LicenceStateError) as caught:
        library.suspend(identifier, "x")
    assert caught.value.status == "05"
    assert _history(library, identifier) == [(None, "01", "issue")]  # the refused act recorded nothing
    library.deregister(identifier, "company dissolved")
    assert _history(library, identifier) == [(None, "01", "issue"), ("01", "05", "expire"),
                                             ("05", "04", "deregister")]


def test_status_at_a_time_from_the_history(library):
    before = datetime.now(UTC) - timedelta(seconds=1)
    identifier = _issue(library).identifier
    t_issued = datetime.now(UTC)
    library.suspend(identifier, "x")
    t_suspended = datetime.now(UTC)
    library.resume(identifier)
    t_resumed = datetime.now(UTC)
    library.revoke(identifier, "y")
    assert library.status_at(identifier, before) is None
    assert library.status_at(identifier, t_issued) is S.VALID
    assert library.status_at(identifier, t_suspended) is S.SUSPENDED
    assert library.status_at(identifier, t_resumed) is S.VALID
    assert library.status_at(identifier, datetime.now(UTC)) is S.REVOKED
    events = library.events(identifier)
    assert library.status_at(identifier, events[1].at) is S.SUSPENDED  # inclusive at the event's time
    assert library.status_at(identifier, events[1].at - timedelta(microseconds=1)) is S.VALID
    with pytest.raises(LicenceRequestError, match="time zone"):
        library.status_at(identifier, datetime.now())


def test_expiries_are_not_recorded_ahead_of_time(library):
    identifier = _issue(library, valid_until=date.today() + timedelta(days=10)).identifier
    with pytest.raises(LicenceRequestError, match="ahead of time"):
        library.expire_due(datetime.now(UTC) + timedelta(days=30))
    assert library.find(identifier).status == "01"


def test_status_at_applies_the_validity(library):
    identifier = _issue(library, valid_until=date.today() + timedelta(days=10)).identifier
    assert library.status_at(identifier, datetime.now(UTC) + timedelta(days=30)) is S.EXPIRED


def test_an_identifier_or_source_record_is_recorded_once(library):
    record = _issue(library, source_id="R-1")
    metadata = _metadata(LicenceIdentifier.parse(record.identifier))
    with pytest.raises(LicenceExists) as caught:
        library.record_issued(metadata, {}, **_documents(metadata))
    assert caught.value.field == "identifier" and record.identifier in str(caught.value)
    with pytest.raises(LicenceExists) as caught:
        _issue(library, source_id="R-1")
    assert (caught.value.field, caught.value.existing) == ("source_id", record.identifier)
    assert _issue(library, source_id="R-1", type_code=OTHER_TYPE).source_id == "R-1"  # per type
    assert len(library.licences()) == 2 and library.audit.verify().ok


def _break_licence_audit(library, monkeypatch) -> None:
    real = library.audit.record_many

    def record_many(entries, **kwargs):
        entries = list(entries)
        if any(e.action.startswith("licence.") for e in entries):
            raise RuntimeError("audit store unavailable")
        return real(entries, **kwargs)

    monkeypatch.setattr(library.audit, "record_many", record_many)


def test_a_failed_audit_write_rolls_each_act_back(library, monkeypatch):
    identifier = _issue(library).identifier
    history = _history(library, identifier)
    _break_licence_audit(library, monkeypatch)
    metadata = _metadata(library.allocate_identifier(TYPE, ISSUER))
    with pytest.raises(RuntimeError):
        library.record_issued(metadata, {}, **_documents(metadata))
    with pytest.raises(LicenceNotFound):
        library.find(metadata.identifier)
    # No row without its documents; documents without a row stay behind, unreferenced.
    assert library.store.exists(library.store.put(_documents(metadata)["ofd"]))
    with pytest.raises(RuntimeError):
        library.suspend(identifier, "x")
    with pytest.raises(RuntimeError):
        _change(library, identifier)
    assert [r.identifier for r in library.licences()] == [identifier]
    assert library.find(identifier).status == "01" and library.find(identifier).superseded_by is None
    assert _history(library, identifier) == history
    monkeypatch.undo()
    assert library.suspend(identifier, "x").status == "02"
    assert library.audit.verify().ok


def test_concurrent_acts_on_one_licence_succeed_once(library):
    identifier = _issue(library).identifier
    barrier = threading.Barrier(4)
    outcomes: list[str] = []

    def suspend() -> None:
        barrier.wait()
        try:
            library.suspend(identifier, "concurrent")
            outcomes.append("ok")
        except LicenceStateError:
            outcomes.append("refused")

    workers = [threading.Thread(target=suspend) for _ in range(4)]
    for w in workers:
        w.start()
    for w in workers:
        w.join(timeout=60)
    assert sorted(outcomes) == ["ok", "refused", "refused", "refused"]
    assert _history(library, identifier) == [(None, "01", "issue"), ("01", "02", "suspend")]
    assert library.audit.verify().ok


def test_filters_and_pages(library):
    a = _issue(library).identifier
    b = _issue(library, holder_code=OTHER_HOLDER).identifier
    c = _issue(library, type_code=OTHER_TYPE).identifier
    d = _issue(library, valid_until=date(2024, 1, 1)).identifier
    library.suspend(b, "x")

    def ids(**filters):
        return [r.identifier for r in library.licences(**filters)]

    assert ids() == [a, b, c, d]
    assert ids(type_code=TYPE) == [a, b, d] and ids(type_code=OTHER_TYPE.lower()) == [c]
    assert ids(issuer_code=ISSUER) == [a, b, c, d] and ids(issuer_code=HOLDER) == []
    assert ids(holder_code=OTHER_HOLDER) == [b]
    assert ids(status="01") == [a, c] and ids(status=S.SUSPENDED) == [b]
    assert ids(status="expired") == [d] and ids(status="revoked") == []
    assert ids(status="01", now=datetime(2023, 6, 1, tzinfo=UTC)) == [a, c, d]
    assert ids(type_code=TYPE, status="01") == [a]
    assert ids(limit=3) == [a, b, c] and ids(limit=3, page=2) == [d] and ids(limit=3, page=3) == []


@pytest.mark.parametrize("filters, message", [
    ({"status": "valid-ish"}, "unknown licence status"), ({"status": "08"}, "01 \\(valid\\)"),
    ({"page": 0}, "page"), ({"limit": 0}, "limit"), ({"limit": 501}, "limit"), ({"page": "2"}, "page"),
    ({"now": datetime(2024, 1, 1)}, "time zone"),
])
def test_bad_filters_are_refused(library, filters, message):
    with pytest.raises(LicenceRequestError, match=message):
        library.licences(**filters)


def test_bad_records_are_refused_and_store_nothing(library):
    metadata = _metadata(library.allocate_identifier(TYPE, ISSUER))
    docs = _documents(metadata)
    cases = [
        (dict(metadata=metadata.as_dict(), data={}, **docs), "LicenceMetadata"),
        (dict(metadata=_metadata(metadata.identifier, status=S.SUSPENDED), data={}, **docs), "status 01"),
        (dict(metadata=_metadata(metadata.identifier, previous=LicenceIdentifier(TYPE, ISSUER, 9)),
              data={}, **docs), "change\\(\\) or renew\\(\\)"),
        (dict(metadata=metadata, data=["not", "an", "object"], **docs), "JSON object"),
        (dict(metadata=metadata, data={"when": datetime.now(UTC)}, **docs), "JSON"),
        (dict(metadata=metadata, data={"x": float("nan")}, **docs), "JSON"),
        (dict(metadata=metadata, data={}, ofd=docs["pdf"], pdf=docs["ofd"]), "OFD package"),
        (dict(metadata=metadata, data={}, ofd=docs["ofd"], pdf=b"not a pdf"), "PDF"),
        (dict(metadata=metadata, data={}, ofd="PK\x03\x04", pdf=docs["pdf"]), "OFD"),
        (dict(metadata=metadata, data={}, **docs, source_id=""), "source record ID"),
        (dict(metadata=metadata, data={}, **docs, source_id="x" * 201), "at most 200"),
    ]
    for kwargs, message in cases:
        with pytest.raises(LicenceRequestError, match=message):
            library.record_issued(**kwargs)
    assert library.licences() == [] and not [p for p in library.store.root.rglob("*") if p.is_file()]
    assert library.audit.entries(action="licence.issue") == []


@pytest.mark.parametrize("reason", ["", "   ", "x" * 501, "a\x00b", None])
def test_acts_that_need_a_reason_refuse_a_bad_one(library, reason):
    identifier = _issue(library).identifier
    for act in ("suspend", "revoke", "cancel", "deregister", "transfer"):
        with pytest.raises(LicenceRequestError, match="reason"):
            getattr(library, act)(identifier, reason)
    assert library.find(identifier).status == "01"


def test_lookups_of_malformed_or_unknown_identifiers(library):
    good = LicenceIdentifier(TYPE, ISSUER, 1)
    mistyped = good.text[:-1] + ("1" if good.check == "0" else "0")
    with pytest.raises(IdentifierError, match="check character"):
        library.find(mistyped)
    with pytest.raises(IdentifierError):
        library.suspend("../../etc/passwd", "x")
    with pytest.raises(LicenceNotFound) as caught:
        library.revoke(LicenceIdentifier(TYPE, ISSUER, 5), "x")
    assert caught.value.identifier == LicenceIdentifier(TYPE, ISSUER, 5).text
    with pytest.raises(LicenceRequestError, match="'ofd' and 'pdf'"):
        library.document(_issue(library).identifier, "docx")


def test_a_corrupted_document_is_reported_not_served(library):
    record = _issue(library)
    library.store.path(record.pdf_sm3).write_bytes(b"%PDF-1.7 tampered")
    with pytest.raises(DocumentCorrupted):
        library.document(record.identifier, "pdf")


def test_allocated_identifiers_are_new_and_bad_codes_use_no_serial(library):
    first = library.allocate_identifier(TYPE, ISSUER)
    with pytest.raises(IdentifierError):
        library.allocate_identifier(TYPE[:18] + "00X", ISSUER)
    with pytest.raises(IdentifierError):
        library.allocate_identifier(TYPE, "11350100MB0000000A")
    second = library.allocate_identifier(TYPE, ISSUER)
    assert (first.serial, second.serial, second.version) == (1, 2, 1)
